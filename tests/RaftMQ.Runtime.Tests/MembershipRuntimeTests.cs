using System.Collections.Concurrent;
using System.Text;
using System.Threading.Channels;
using RaftMQ.Raft;
using RaftMQ.Storage;
using RaftMQ.Transport;

namespace RaftMQ.Runtime.Tests;

/// <summary>
/// The runtime's membership calls on four real runtimes over real storage, connected in process: node 4 starts with
/// no configuration, is added as a learner, promoted by the leader once caught up, and serves; the leader removes
/// itself; refusals carry the core's status and the leader hint.
/// </summary>
public sealed class MembershipRuntimeTests : IAsyncLifetime
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    private readonly string _directory = Path.Combine(Path.GetTempPath(), "raftmq-membership-tests", Guid.NewGuid().ToString("N")[..12]);
    private readonly ConcurrentDictionary<ulong, Action<RaftMessage>> _receivers = new();
    private readonly RaftRuntime[] _nodes = new RaftRuntime[4];

    public Task InitializeAsync()
    {
        for (var i = 0; i < 4; i++)
        {
            var id = (ulong)(i + 1);
            var options = new RaftRuntimeOptions
            {
                // Node 4 joins later: it starts with no voters and waits for a leader that added it. A long election
                // timeout (1 s), so that a busy machine that starves the loops does not start elections mid-test.
                Raft = new RaftOptions { Id = id, Voters = id == 4 ? [] : [1, 2, 3], ElectionTicks = 100, HeartbeatTicks = 2, RandomSeed = 31 + id },
                Node = new NodeDriverOptions { Forwarding = new ProposalForwarding { Results = new IntCodec(), Timeout = Deadline } },
                TickInterval = TimeSpan.FromMilliseconds(10),
                PromoteCaughtUpLearners = true,
            };
            _nodes[i] = new RaftRuntime(options, NodeStorage.Open(Path.Combine(_directory, "n" + id)), new AppendMachine(), new Endpoint(this, id));
            _nodes[i].Start();
        }
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        foreach (var node in _nodes) await node.DisposeAsync();
        if (Directory.Exists(_directory)) Directory.Delete(_directory, recursive: true);
    }

    private RaftRuntime Node(ulong id) => _nodes[id - 1];

    /// <summary>Waits until the voters among <paramref name="ids"/> agree on one leader, and returns it.</summary>
    private async Task<ulong> StableLeaderAsync(ulong[] ids, CancellationToken ct)
    {
        while (true)
        {
            var changed = ids.Select(i => Node(i).SoftStateChanged).ToArray();
            var leader = Node(ids[0]).Status.Leader;
            if (leader != 0 && ids.Contains(leader) && ids.All(i => Node(i).Status.Leader == leader) && Node(leader).Status.Role == Role.Leader) return leader;
            await Task.WhenAny(changed).WaitAsync(ct);
        }
    }

    /// <summary>Completes when node <paramref name="id"/>'s configuration satisfies <paramref name="condition"/>.</summary>
    private static Task WhenConfigurationAsync(RaftRuntime node, Func<ClusterConfiguration, bool> condition, CancellationToken ct)
    {
        var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        node.ConfigurationChanged += c =>
        {
            if (condition(c)) reached.TrySetResult();
        };
        if (condition(node.Configuration)) reached.TrySetResult();
        return reached.Task.WaitAsync(ct);
    }

    [Fact]
    public async Task A_learner_is_added_with_its_address_promoted_once_caught_up_and_serves_and_the_leader_removes_itself()
    {
        using var timeout = new CancellationTokenSource(Deadline);
        var leader = await StableLeaderAsync([1, 2, 3], timeout.Token);
        for (var i = 0; i < 20; i++) await Node(leader).ProposeAsync(Encoding.UTF8.GetBytes("before" + i), timeout.Token);
        var follower = leader % 3 + 1;

        var refused = await Should.ThrowAsync<MembershipChangeException>(() => Node(follower).AddLearnerAsync(4, null, timeout.Token));
        refused.Status.ShouldBe(MembershipStatus.NotLeader);
        refused.LeaderHint.ShouldBe(leader);
        refused.OutcomeUnknown.ShouldBeFalse();

        var promotedEverywhere = Task.WhenAll(_nodes.Select(n => WhenConfigurationAsync(n, c => c.IsVoter(4), timeout.Token)));
        var added = await Node(leader).AddLearnerAsync(4, new Dictionary<ulong, byte[]> { [4] = "n4"u8.ToArray() }, timeout.Token);
        added.Configuration.Learners.ShouldBe([4UL]);
        added.Configuration.AddressOf(4).ToArray().ShouldBe("n4"u8.ToArray());
        Node(leader).CommittedConfiguration.IsMember(4).ShouldBeTrue();
        await promotedEverywhere;
        Node(4).Configuration.Voters.ShouldBe([1UL, 2, 3, 4]);
        Node(4).Configuration.AddressOf(4).ToArray().ShouldBe("n4"u8.ToArray());
        var (read, readLeader) = await Node(4).ReadConfigurationAsync(timeout.Token);
        read.IsVoter(4).ShouldBeTrue();
        readLeader.ShouldBe(leader);
        (await Node(4).ProposeOrRouteAsync(() => "through 4"u8.ToArray(), timeout.Token)).ShouldBeOfType<ProposeOutcome.Applied>();

        var again = await Should.ThrowAsync<MembershipChangeException>(() => Node(leader).AddLearnerAsync(4, null, timeout.Token));
        again.Status.ShouldBe(MembershipStatus.AlreadyMember);
        (await Should.ThrowAsync<MembershipChangeException>(() => Node(leader).RemoveMemberAsync(9, timeout.Token))).Status.ShouldBe(MembershipStatus.UnknownMember);

        var removed = await Node(leader).RemoveMemberAsync(leader, timeout.Token);
        removed.Configuration.IsMember(leader).ShouldBeFalse();
        ulong[] rest = [.. new ulong[] { 1, 2, 3, 4 }.Where(i => i != leader)];
        var next = await StableLeaderAsync(rest, timeout.Token);
        next.ShouldNotBe(leader);
        (await Node(rest[0]).ProposeOrRouteAsync(() => "after"u8.ToArray(), timeout.Token)).ShouldBeOfType<ProposeOutcome.Applied>();
    }

    private sealed class Endpoint(MembershipRuntimeTests network, ulong id) : ITransport
    {
        private readonly Channel<RaftMessage> _inbound = Channel.CreateUnbounded<RaftMessage>();

        public ChannelReader<RaftMessage> Inbound => _inbound.Reader;

        public void SetReceiver(Action<RaftMessage> receiver) => network._receivers[id] = receiver;

        public Task StartAsync(CancellationToken cancellationToken = default) => Task.CompletedTask;

        public void Send(RaftMessage message)
        {
            if (network._receivers.TryGetValue(message.To, out var receiver)) receiver(message);
        }

        public ValueTask DisposeAsync()
        {
            network._receivers.TryRemove(id, out _);
            return ValueTask.CompletedTask;
        }
    }
}

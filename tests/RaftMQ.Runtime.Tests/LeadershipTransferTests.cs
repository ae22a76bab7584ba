using System.Collections.Concurrent;
using System.Text;
using System.Threading.Channels;
using RaftMQ.Raft;
using RaftMQ.Storage;
using RaftMQ.Transport;

namespace RaftMQ.Runtime.Tests;

/// <summary>
/// <see cref="RaftRuntime.TransferLeadershipAsync"/> on three real runtimes over real storage, connected by an
/// in-process network, with forwarding of proposals on.
/// </summary>
public sealed class LeadershipTransferTests : IAsyncLifetime
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    private readonly string _directory = Path.Combine(Path.GetTempPath(), "raftmq-transfer-tests", Guid.NewGuid().ToString("N")[..12]);
    private readonly InProcessNetwork _network = new();
    private readonly AppendMachine[] _machines = [new(), new(), new()];
    private RaftRuntime[] _nodes = [];

    public Task InitializeAsync()
    {
        _nodes = InProcessCluster.Start(_directory, _network, _machines, seed: 11, Deadline);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        foreach (var node in _nodes) await node.DisposeAsync();
        if (Directory.Exists(_directory)) Directory.Delete(_directory, recursive: true);
    }

    private RaftRuntime Node(ulong id) => _nodes[id - 1];

    /// <summary>Waits until every node agrees on one leader, and returns it.</summary>
    private async Task<ulong> StableLeaderAsync(CancellationToken ct)
    {
        while (true)
        {
            var changed = _nodes.Select(n => n.SoftStateChanged).ToArray();
            var leader = _nodes[0].Status.Leader;
            if (leader != 0 && _nodes.All(n => n.Status.Leader == leader) && Node(leader).Status.Role == Role.Leader) return leader;
            await Task.WhenAny(changed).WaitAsync(ct);
        }
    }

    [Fact]
    public async Task A_transfer_to_a_named_node_makes_it_the_leader_and_it_accepts_writes()
    {
        using var timeout = new CancellationTokenSource(Deadline);
        var leader = await StableLeaderAsync(timeout.Token);
        var target = leader % 3 + 1;
        var done = await Node(leader).TransferLeadershipAsync(target, timeout.Token);
        done.Leader.ShouldBe(target);
        Node(leader).Status.Role.ShouldNotBe(Role.Leader);
        (await StableLeaderAsync(timeout.Token)).ShouldBe(target);
        var outcome = await Node(target).ProposeOrRouteAsync(() => Encoding.UTF8.GetBytes("after"), timeout.Token);
        outcome.ShouldBeOfType<ProposeOutcome.Applied>();
    }

    [Fact]
    public async Task A_transfer_with_no_target_picks_another_voter()
    {
        using var timeout = new CancellationTokenSource(Deadline);
        var leader = await StableLeaderAsync(timeout.Token);
        var done = await Node(leader).TransferLeadershipAsync(0, timeout.Token);
        done.Leader.ShouldNotBe(leader);
        done.Leader.ShouldBeInRange(1UL, 3UL);
        done.Term.ShouldBeGreaterThan(0UL);
        (await StableLeaderAsync(timeout.Token)).ShouldBe(done.Leader);
    }

    [Fact]
    public async Task A_follower_refuses_with_the_leader_and_a_leader_refuses_bad_targets()
    {
        using var timeout = new CancellationTokenSource(Deadline);
        var leader = await StableLeaderAsync(timeout.Token);
        var follower = leader % 3 + 1;
        var notLeader = await Should.ThrowAsync<LeadershipTransferException>(() => Node(follower).TransferLeadershipAsync(leader, timeout.Token));
        notLeader.Status.ShouldBe(MembershipStatus.NotLeader);
        notLeader.LeaderHint.ShouldBe(leader);
        notLeader.Message.ShouldContain($"node {leader} is");

        var unknown = await Should.ThrowAsync<LeadershipTransferException>(() => Node(leader).TransferLeadershipAsync(9, timeout.Token));
        unknown.Status.ShouldBe(MembershipStatus.UnknownMember);
        unknown.Message.ShouldContain("node 9");

        var self = await Should.ThrowAsync<LeadershipTransferException>(() => Node(leader).TransferLeadershipAsync(leader, timeout.Token));
        self.Status.ShouldBe(MembershipStatus.InvalidTarget);
        // Nothing moved.
        (await StableLeaderAsync(timeout.Token)).ShouldBe(leader);
    }

    [Fact]
    public async Task A_transfer_to_an_unreachable_node_is_abandoned_and_a_proposal_made_meanwhile_is_applied_once_here()
    {
        using var timeout = new CancellationTokenSource(Deadline);
        var leader = await StableLeaderAsync(timeout.Token);
        var target = leader % 3 + 1;
        _network.Isolate(target);
        // The transfer is queued on the loop before the proposal, so the proposal meets it.
        var transfer = Node(leader).TransferLeadershipAsync(target, timeout.Token);
        var proposal = Node(leader).ProposeOrRouteAsync(() => Encoding.UTF8.GetBytes("during"), timeout.Token);
        var abandoned = await Should.ThrowAsync<LeadershipTransferException>(() => transfer);
        abandoned.Abandoned.ShouldBeTrue();
        abandoned.Message.ShouldContain("did not take over");
        Node(leader).Status.Role.ShouldBe(Role.Leader);
        (await proposal).ShouldBeOfType<ProposeOutcome.Applied>();
        var items = await Node(leader).ReadAsync(() => _machines[leader - 1].Items.ToList(), timeout.Token);
        items.Count(i => i == "during").ShouldBe(1);
    }

    [Fact]
    public async Task Proposals_made_during_transfers_are_applied_exactly_once()
    {
        using var timeout = new CancellationTokenSource(Deadline);
        var leader = await StableLeaderAsync(timeout.Token);
        using var stop = new CancellationTokenSource();
        var outcomes = new ConcurrentDictionary<string, ProposeOutcome>();
        var progress = new Progress();
        // Two writers per node, each proposing distinct commands one after another until told to stop.
        var writers = Enumerable.Range(0, 6).Select(w => Task.Run(async () =>
        {
            for (var n = 0; !stop.IsCancellationRequested && !timeout.IsCancellationRequested; n++)
            {
                var command = $"w{w}-{n}";
                outcomes[command] = await _nodes[w % 3].ProposeOrRouteAsync(() => Encoding.UTF8.GetBytes(command), timeout.Token);
                progress.Add();
            }
        })).ToArray();
        try
        {
            // Let the writers get going, then move leadership around four times: named targets and "most up to date".
            // A transfer the target does not complete within an election timeout is abandoned by design (the old
            // leader leads on); on a loaded machine its fsyncs can take that long, so an abandoned attempt is one more
            // interleaving for the writers, and the same move is asked for again until four have happened.
            await progress.WaitForAsync(20, timeout.Token);
            for (var t = 0; t < 4;)
            {
                var target = t % 2 == 0 ? leader % 3 + 1 : 0;
                LeadershipTransferred done;
                try
                {
                    done = await Node(leader).TransferLeadershipAsync(target, timeout.Token);
                }
                catch (LeadershipTransferException e) when (e.Abandoned)
                {
                    // The old leader leads on, unless the target's late campaign still won: ask again of whoever leads.
                    leader = await StableLeaderAsync(timeout.Token);
                    continue;
                }
                if (target != 0) done.Leader.ShouldBe(target);
                leader = await StableLeaderAsync(timeout.Token);
                leader.ShouldBe(done.Leader);
                await progress.WaitForAsync(progress.Count + 10, timeout.Token);
                t++;
            }
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAll(writers);
        }

        outcomes.Values.Where(o => o is not ProposeOutcome.Applied).ShouldBeEmpty();
        // Every command once, on every node, in the same order.
        var expected = outcomes.Keys.OrderBy(k => k).ToList();
        var reference = await Node(leader).ReadWaitingForLeaderAsync(() => _machines[leader - 1].Items.ToList(), timeout.Token);
        reference.OrderBy(k => k).ShouldBe(expected);
        reference.Distinct().Count().ShouldBe(reference.Count);
        for (var i = 0; i < 3; i++)
        {
            var machine = _machines[i];
            var items = await _nodes[i].ReadWaitingForLeaderAsync(() => machine.Items.ToList(), timeout.Token);
            items.ShouldBe(reference);
        }
    }

    /// <summary>A count of finished proposals that can be waited on.</summary>
    private sealed class Progress
    {
        private readonly Lock _lock = new();
        private readonly List<(int Count, TaskCompletionSource Reached)> _waiters = [];
        private int _count;

        public int Count
        {
            get
            {
                lock (_lock) return _count;
            }
        }

        public void Add()
        {
            lock (_lock)
            {
                _count++;
                foreach (var w in _waiters.Where(w => w.Count <= _count).ToList())
                {
                    w.Reached.TrySetResult();
                    _waiters.Remove(w);
                }
            }
        }

        public Task WaitForAsync(int count, CancellationToken ct)
        {
            lock (_lock)
            {
                if (_count >= count) return Task.CompletedTask;
                var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _waiters.Add((count, reached));
                return reached.Task.WaitAsync(ct);
            }
        }
    }
}

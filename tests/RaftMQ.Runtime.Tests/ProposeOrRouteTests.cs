using System.Text;
using System.Threading.Channels;
using RaftMQ.Raft;
using RaftMQ.Storage;
using RaftMQ.Transport;

namespace RaftMQ.Runtime.Tests;

/// <summary><see cref="RaftRuntime.ProposeOrRouteAsync"/> on a real runtime over real storage, without peers.</summary>
public sealed class ProposeOrRouteTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "raftmq-propose-tests", Guid.NewGuid().ToString("N")[..12]);

    private RaftRuntime Start(
        IStateMachine stateMachine, IReadOnlyList<ulong> voters, int maxEntryBytes = 4 << 20, ProposalForwarding? forwarding = null)
    {
        var options = new RaftRuntimeOptions
        {
            Raft = new RaftOptions { Id = 1, Voters = voters, ElectionTicks = 5, RandomSeed = 7, MaxEntryBytes = maxEntryBytes },
            TickInterval = TimeSpan.FromMilliseconds(10),
            Node = new NodeDriverOptions { Forwarding = forwarding },
        };
        var runtime = new RaftRuntime(options, NodeStorage.Open(_directory), stateMachine, new NoPeers());
        runtime.Start();
        return runtime;
    }

    [Fact]
    public async Task A_single_node_applies_the_command_and_builds_it_once()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var machine = new AppendMachine();
        await using var runtime = Start(machine, [1]);
        var built = 0;
        var outcome = await runtime.ProposeOrRouteAsync(
            () =>
            {
                built++;
                return Encoding.UTF8.GetBytes("x");
            },
            timeout.Token);
        outcome.ShouldBe(new ProposeOutcome.Applied(1));
        built.ShouldBe(1);
        machine.Items.ShouldBe(["x"]);
    }

    [Fact]
    public async Task The_leader_proposes_what_prepare_returns_after_admission_and_never_prepares_a_refused_command()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var machine = new AppendMachine();
        var prepared = new List<string>();
        var forwarding = new ProposalForwarding
        {
            Results = new IntCodec(),
            Admit = c => c.Span[0] == (byte)'x' ? new ProposalRefusal("no", "refused") : null,
            Prepare = c =>
            {
                lock (prepared) prepared.Add(Encoding.UTF8.GetString(c.Span));
                return Encoding.UTF8.GetBytes("stamped:" + Encoding.UTF8.GetString(c.Span));
            },
        };
        await using var runtime = Start(machine, [1], forwarding: forwarding);
        var original = Encoding.UTF8.GetBytes("y");
        (await runtime.ProposeOrRouteAsync(() => original, timeout.Token)).ShouldBe(new ProposeOutcome.Applied(1));
        (await runtime.ProposeOrRouteAsync(() => Encoding.UTF8.GetBytes("x"), timeout.Token)).ShouldBeOfType<ProposeOutcome.Refused>();
        (await runtime.ProposeOrRouteAsync(() => Encoding.UTF8.GetBytes("z"), timeout.Token)).ShouldBe(new ProposeOutcome.Applied(2));
        var items = await runtime.ReadWaitingForLeaderAsync(() => machine.Items.ToArray(), timeout.Token);
        items.ShouldBe(["stamped:y", "stamped:z"]);
        lock (prepared) prepared.ShouldBe(["y", "z"]);
        original.ShouldBe(Encoding.UTF8.GetBytes("y"));
    }

    [Fact]
    public async Task A_deadline_that_passes_before_a_leader_is_known_leaves_the_command_not_applied()
    {
        // Node 2 never answers, so node 1 cannot win an election.
        await using var runtime = Start(new AppendMachine(), [1, 2]);
        using var deadline = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        var built = 0;
        var outcome = await runtime.ProposeOrRouteAsync(
            () =>
            {
                built++;
                return new byte[1];
            },
            deadline.Token);
        var notApplied = outcome.ShouldBeOfType<ProposeOutcome.NotApplied>();
        notApplied.Reason.ShouldBe(NotAppliedReason.NoLeader);
        built.ShouldBe(0);
    }

    [Fact]
    public async Task A_command_over_the_limit_is_not_applied_and_says_why()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var machine = new AppendMachine();
        await using var runtime = Start(machine, [1], maxEntryBytes: 1024);
        var outcome = await runtime.ProposeOrRouteAsync(() => new byte[2048], timeout.Token);
        var notApplied = outcome.ShouldBeOfType<ProposeOutcome.NotApplied>();
        notApplied.Reason.ShouldBe(NotAppliedReason.TooLarge);
        notApplied.Message.ShouldContain("2048");
        machine.Applies.ShouldBe(0);
        // The node goes on serving.
        (await runtime.ProposeOrRouteAsync(() => Encoding.UTF8.GetBytes("y"), timeout.Token)).ShouldBe(new ProposeOutcome.Applied(1));
    }

    [Fact]
    public async Task A_stopped_node_proposes_nothing_and_says_so()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var runtime = Start(new AppendMachine(), [1]);
        await runtime.WaitForLeaderAsync(timeout.Token);
        await runtime.DisposeAsync();
        var outcome = await runtime.ProposeOrRouteAsync(() => new byte[1], timeout.Token);
        outcome.ShouldBeOfType<ProposeOutcome.NotApplied>().Reason.ShouldBe(NotAppliedReason.Stopped);
    }

    public void Dispose()
    {
        if (Directory.Exists(_directory)) Directory.Delete(_directory, recursive: true);
    }

    /// <summary>A transport for a node without peers: nothing to send, nothing arrives.</summary>
    internal sealed class NoPeers : ITransport
    {
        private readonly Channel<RaftMessage> _inbound = Channel.CreateUnbounded<RaftMessage>();

        public ChannelReader<RaftMessage> Inbound => _inbound.Reader;

        public void SetReceiver(Action<RaftMessage> receiver)
        {
        }

        public Task StartAsync(CancellationToken cancellationToken = default) => Task.CompletedTask;

        public void Send(RaftMessage message)
        {
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}

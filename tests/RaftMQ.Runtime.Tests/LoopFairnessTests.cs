using System.Text;
using RaftMQ.Raft;
using RaftMQ.Storage;

namespace RaftMQ.Runtime.Tests;

/// <summary>
/// The node stays fair and stable under a fill: small proposals are not queued behind the leader's in-flight bytes
/// (pacing), and a loop held up for several election timeouts does not, once it catches up, step a leader down.
/// </summary>
public sealed class LoopFairnessTests : IDisposable
{
    private const int Large = 100_000;
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "raftmq-fairness-tests", Guid.NewGuid().ToString("N")[..12]);
    private readonly List<NodeDriver> _drivers = [];

    private NodeDriver Open(ulong[] voters, NodeDriverOptions options, AppendMachine machine, RecordingHost host)
    {
        var driver = new NodeDriver(
            new RaftOptions { Id = 1, Voters = voters, ElectionTicks = 5, RandomSeed = 3 }, options,
            NodeStorage.Open(_directory), machine, host, readContextSeed: 99);
        _drivers.Add(driver);
        return driver;
    }

    private static void ElectAlone(NodeDriver driver)
    {
        for (int i = 0; i < 50 && driver.Raft.Role != Role.Leader; i++)
        {
            driver.Tick();
            driver.ProcessReady();
        }
        driver.Raft.Role.ShouldBe(Role.Leader);
        driver.ProcessReady(); // the term's no-op is committed
    }

    /// <summary>Node 1 of {1, 2, 3} wins an election with node 2's (pre-)votes.</summary>
    private static void ElectWithVotes(NodeDriver driver)
    {
        for (int i = 0; i < 50 && driver.Raft.Role == Role.Follower; i++)
        {
            driver.Tick();
            driver.ProcessReady();
        }
        driver.Raft.Role.ShouldBe(Role.PreCandidate);
        driver.Step(new RequestVoteResponse(2, 1, driver.Raft.Term + 1, true, PreVote: true));
        driver.ProcessReady();
        driver.Raft.Role.ShouldBe(Role.Candidate);
        driver.Step(new RequestVoteResponse(2, 1, driver.Raft.Term, true, PreVote: false));
        driver.ProcessReady();
        driver.Raft.Role.ShouldBe(Role.Leader);
    }

    private static byte[] Command(string tag, int size)
    {
        var bytes = new byte[size];
        Array.Fill(bytes, (byte)'.');
        Encoding.ASCII.GetBytes(tag).CopyTo(bytes, 0);
        return bytes;
    }

    private static string Tag(string item) => item.TrimEnd('.');

    [Fact]
    public void A_small_command_is_proposed_ahead_of_large_ones_held_back_by_the_bytes_in_flight()
    {
        var machine = new AppendMachine();
        var driver = Open([1], new NodeDriverOptions { MaxProposalBytesInFlight = Large }, machine, new RecordingHost());
        ElectAlone(driver);
        var first = new TaskCompletionSource<object?>();
        var second = new TaskCompletionSource<object?>();
        var small = new TaskCompletionSource<object?>();
        driver.Propose(Command("large-1", Large), first).Index.ShouldBeGreaterThan(0UL); // nothing in flight: proposed
        driver.Propose(Command("large-2", Large), second).Index.ShouldBe(0UL); // held: the bound is reached
        driver.HeldProposals.ShouldBe(1);
        driver.Propose(Command("small", 100), small).Index.ShouldBeGreaterThan(0UL); // small: proposed at once
        driver.ProposedBytesInFlight.ShouldBe(Large + 100);

        driver.ProcessReady();

        machine.Items.Select(Tag).ShouldBe(["large-1", "small", "large-2"]);
        first.Task.IsCompletedSuccessfully.ShouldBeTrue();
        second.Task.IsCompletedSuccessfully.ShouldBeTrue();
        small.Task.IsCompletedSuccessfully.ShouldBeTrue();
        driver.HeldProposals.ShouldBe(0);
        driver.ProposedBytesInFlight.ShouldBe(0);
    }

    [Fact]
    public void A_held_command_whose_caller_gave_up_is_never_proposed()
    {
        var machine = new AppendMachine();
        var driver = Open([1], new NodeDriverOptions { MaxProposalBytesInFlight = Large }, machine, new RecordingHost());
        ElectAlone(driver);
        driver.Propose(Command("large-1", Large), new TaskCompletionSource<object?>());
        var abandoned = new TaskCompletionSource<object?>();
        driver.Propose(Command("large-2", Large), abandoned);
        driver.HeldProposals.ShouldBe(1);
        abandoned.TrySetCanceled(); // what RaftRuntime.ProposeAsync does when its caller's deadline fires

        driver.ProcessReady();

        machine.Items.Select(Tag).ShouldBe(["large-1"]);
        driver.HeldProposals.ShouldBe(0);
    }

    [Fact]
    public void Without_pacing_commands_enter_the_log_in_arrival_order()
    {
        var machine = new AppendMachine();
        var driver = Open([1], new NodeDriverOptions(), machine, new RecordingHost());
        ElectAlone(driver);
        driver.Propose(Command("large-1", Large), new TaskCompletionSource<object?>());
        driver.Propose(Command("large-2", Large), new TaskCompletionSource<object?>());
        driver.Propose(Command("small", 100), new TaskCompletionSource<object?>());
        driver.HeldProposals.ShouldBe(0);
        driver.ProcessReady();
        machine.Items.Select(Tag).ShouldBe(["large-1", "large-2", "small"]);
    }

    [Fact]
    public void Large_commands_beyond_the_held_bound_are_refused_as_overloaded()
    {
        var driver = Open([1], new NodeDriverOptions { MaxProposalBytesInFlight = Large, MaxHeldProposals = 1 }, new AppendMachine(), new RecordingHost());
        ElectAlone(driver);
        driver.Propose(Command("large-1", Large), new TaskCompletionSource<object?>());
        driver.Propose(Command("large-2", Large), new TaskCompletionSource<object?>());
        var refused = new TaskCompletionSource<object?>();
        driver.Propose(Command("large-3", Large), refused).Status.ShouldBe(ProposeStatus.Overloaded);
        refused.Task.Exception!.InnerException.ShouldBeOfType<NodeOverloadedException>();
    }

    [Fact]
    public void Commands_held_by_a_leader_that_steps_down_are_refused_as_not_leader()
    {
        var driver = Open([1, 2, 3], new NodeDriverOptions { MaxProposalBytesInFlight = Large }, new AppendMachine(), new RecordingHost());
        ElectWithVotes(driver);
        driver.Propose(Command("large-1", Large), new TaskCompletionSource<object?>()); // in flight: nobody acknowledges
        var held = new TaskCompletionSource<object?>();
        driver.Propose(Command("large-2", Large), held);
        driver.ProcessReady();
        driver.HeldProposals.ShouldBe(1);
        held.Task.IsCompleted.ShouldBeFalse();

        driver.Step(new Heartbeat(2, 1, driver.Raft.Term + 1, 0, 0)); // node 2 leads a newer term
        driver.ProcessReady();

        driver.Raft.Role.ShouldBe(Role.Follower);
        driver.HeldProposals.ShouldBe(0);
        held.Task.Exception!.InnerException.ShouldBeOfType<NotLeaderException>().LeaderId.ShouldBe(2UL);
    }

    [Fact]
    public void A_leader_that_heard_from_its_quorum_keeps_leading_after_its_loop_was_held_up_for_several_election_timeouts()
    {
        var driver = Open([1, 2, 3], new NodeDriverOptions(), new AppendMachine(), new RecordingHost());
        ElectWithVotes(driver);
        var term = driver.Raft.Term;
        // The loop was held up for three election timeouts; the followers' answers waited in the inbox and are
        // handled first, then the ticks that elapsed meanwhile are caught up.
        driver.Step(new HeartbeatResponse(2, 1, term, 0));
        driver.Step(new HeartbeatResponse(3, 1, term, 0));
        driver.Tick(3 * 5);
        driver.ProcessReady();
        driver.Raft.Role.ShouldBe(Role.Leader);
        driver.Raft.Term.ShouldBe(term);
    }

    [Fact]
    public void A_leader_that_hears_from_nobody_still_steps_down_after_an_election_timeout()
    {
        var driver = Open([1, 2, 3], new NodeDriverOptions(), new AppendMachine(), new RecordingHost());
        ElectWithVotes(driver);
        for (int i = 0; i < 3 && driver.Raft.Role == Role.Leader; i++)
        {
            driver.Tick(3 * 5);
            driver.ProcessReady();
        }
        driver.Raft.Role.ShouldNotBe(Role.Leader);
    }

    public void Dispose()
    {
        foreach (var d in _drivers)
        {
            d.Dispose();
            d.Storage.Dispose();
        }
        if (Directory.Exists(_directory)) Directory.Delete(_directory, recursive: true);
    }

    private sealed class RecordingHost : INodeHost
    {
        public List<RaftMessage> Sent { get; } = [];

        public TimeProvider Time => TimeProvider.System;

        public void Send(RaftMessage message) => Sent.Add(message);

        public void WriteSnapshotInBackground(SnapshotJob job) => job.Write();
    }
}

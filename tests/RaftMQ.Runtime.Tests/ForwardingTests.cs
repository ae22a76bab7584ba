using System.Text;
using RaftMQ.Raft;
using RaftMQ.Storage;

namespace RaftMQ.Runtime.Tests;

/// <summary>Forwarding of proposals, driven one step at a time on <see cref="NodeDriver"/> over real storage.</summary>
public sealed class ForwardingTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "raftmq-forward-tests", Guid.NewGuid().ToString("N")[..12]);
    private readonly List<NodeDriver> _drivers = [];

    private (NodeDriver Driver, TestHost Host, AppendMachine Machine) Create(
        ulong id, IReadOnlyList<ulong> voters, ProposalForwarding? forwarding, ulong seed = 1000, string? directory = null)
    {
        var host = new TestHost();
        var machine = new AppendMachine();
        var driver = new NodeDriver(
            new RaftOptions { Id = id, Voters = voters, ElectionTicks = 5, RandomSeed = 3, MaxEntryBytes = 1024 },
            new NodeDriverOptions { Forwarding = forwarding },
            NodeStorage.Open(Path.Combine(_directory, directory ?? $"n{id}-{_drivers.Count}")), machine, host, seed);
        _drivers.Add(driver);
        return (driver, host, machine);
    }

    private static ProposalForwarding Forwarding(
        Func<ReadOnlyMemory<byte>, ProposalRefusal?>? admit = null, int maxInFlight = 16, int maxOutstanding = 16,
        Func<ReadOnlyMemory<byte>, ReadOnlyMemory<byte>>? prepare = null) =>
        new()
        {
            Results = new IntCodec(), Admit = admit, Prepare = prepare, MaxForwardedInFlight = maxInFlight,
            MaxOutstandingForwards = maxOutstanding, Timeout = TimeSpan.FromSeconds(5),
        };

    /// <summary>A Prepare hook that prefixes <paramref name="mark"/> and counts its calls.</summary>
    private sealed class Marker(string mark)
    {
        public int Calls { get; private set; }

        public ReadOnlyMemory<byte> Prepare(ReadOnlyMemory<byte> command)
        {
            Calls++;
            return Encoding.UTF8.GetBytes(mark + Encoding.UTF8.GetString(command.Span));
        }
    }

    /// <summary>A single-voter node 1 that has elected itself.</summary>
    private (NodeDriver Driver, TestHost Host, AppendMachine Machine) Leader(ProposalForwarding? forwarding, string? directory = null)
    {
        var leader = Create(1, [1], forwarding, directory: directory);
        for (int i = 0; i < 50 && leader.Driver.Raft.Role != Role.Leader; i++)
        {
            leader.Driver.Tick();
            leader.Driver.ProcessReady();
        }
        leader.Driver.Raft.Role.ShouldBe(Role.Leader);
        leader.Host.Sent.Clear();
        return leader;
    }

    [Fact]
    public void A_forward_whose_leader_stopped_leading_and_whose_link_is_down_becomes_unknown_at_once()
    {
        var (driver, host, _) = Follower(Forwarding());
        var forwarded = new TaskCompletionSource<ForwardResult>();
        driver.Forward(Bytes("a"), forwarded);
        // Node 2's connection closes (its process was killed) while this node still believes it leads: keep waiting,
        // the link may come back and node 2 answer.
        host.Down.Add(2);
        for (int i = 0; i < 3; i++) driver.Tick();
        forwarded.Task.IsCompleted.ShouldBeFalse("a link down is no sign that node 2 stopped leading");
        // A new command is not sent over the link that is down: certainly not applied, the caller routes again.
        host.Sent.Clear();
        var unsent = new TaskCompletionSource<ForwardResult>();
        driver.Forward(Bytes("b"), unsent);
        Done(unsent).Status.ShouldBe(ForwardStatus.NotLeader);
        Done(unsent).LeaderHint.ShouldBe(2UL);
        host.Sent.OfType<ForwardProposal>().ShouldBeEmpty();
        driver.OutstandingForwards.ShouldBe(1);
        // Node 3 leads term 2: node 2 stopped leading and cannot answer over a closed link. Given up as the leader
        // changes, with no tick in between.
        driver.Step(new Heartbeat(3, 1, 2, 0, 0));
        driver.ProcessReady();
        Done(forwarded).Status.ShouldBe(ForwardStatus.Unknown);
        ((UnknownReason)Done(forwarded).Reason).ShouldBe(UnknownReason.LeaderLost);
        driver.OutstandingForwards.ShouldBe(0);
    }

    [Fact]
    public void A_forward_to_a_deposed_leader_whose_link_is_up_still_waits_for_its_answer()
    {
        var (driver, host, _) = Follower(Forwarding());
        host.Down.Add(3); // another peer's link being down changes nothing
        var forwarded = new TaskCompletionSource<ForwardResult>();
        driver.Forward(Bytes("a"), forwarded);
        var forward = host.Sent.OfType<ForwardProposal>().Single();
        driver.Step(new Heartbeat(3, 1, 2, 0, 0));
        driver.ProcessReady();
        driver.Tick();
        forwarded.Task.IsCompleted.ShouldBeFalse("node 2 is deposed but reachable: it answers once it learns its entry's fate");
        driver.Step(Applied(from: 2, forward.RequestId));
        Done(forwarded).Status.ShouldBe(ForwardStatus.Applied);
    }

    /// <summary>Node 1 of {1, 2, 3}, following node 2 in term 1.</summary>
    private (NodeDriver Driver, TestHost Host, AppendMachine Machine) Follower(ProposalForwarding? forwarding, ulong seed = 1000)
    {
        var follower = Create(1, [1, 2, 3], forwarding, seed);
        follower.Driver.Step(new Heartbeat(2, 1, 1, 0, 0));
        follower.Driver.ProcessReady();
        follower.Driver.Raft.Leader.ShouldBe(2UL);
        follower.Host.Sent.Clear();
        return follower;
    }

    private static byte[] Bytes(string s) => Encoding.UTF8.GetBytes(s);

    [Fact]
    public void A_leader_proposes_a_forwarded_command_and_answers_with_the_encoded_result()
    {
        var (driver, host, machine) = Leader(Forwarding());
        driver.Step(new ForwardProposal(2, 1, 1, 77, Bytes("a")));
        driver.ProcessReady();
        machine.Items.ShouldBe(["a"]);
        var answer = host.Sent.OfType<ForwardResult>().ShouldHaveSingleItem();
        answer.To.ShouldBe(2UL);
        answer.RequestId.ShouldBe(77UL);
        answer.Status.ShouldBe(ForwardStatus.Applied);
        new IntCodec().Decode(answer.Payload.Span).ShouldBe(1);
        driver.ForwardedInFlight.ShouldBe(0);
    }

    [Fact]
    public void The_result_travels_back_to_the_follower_and_completes_its_caller()
    {
        var (leader, leaderHost, machine) = Leader(Forwarding());
        var (follower, followerHost, _) = Create(3, [1, 2, 3], Forwarding());
        // Node 3 follows node 1 (whose own configuration differs: the driver routes by the leader it knows).
        follower.Step(new Heartbeat(1, 3, 5, 0, 0));
        follower.ProcessReady();
        followerHost.Sent.Clear();
        var completion = new TaskCompletionSource<ForwardResult>();
        follower.Forward(Bytes("b"), completion);
        var forward = followerHost.Sent.OfType<ForwardProposal>().ShouldHaveSingleItem();
        forward.To.ShouldBe(1UL);
        leader.Step(forward with { To = 1 });
        leader.ProcessReady();
        var answer = leaderHost.Sent.OfType<ForwardResult>().ShouldHaveSingleItem();
        answer.To.ShouldBe(3UL);
        completion.Task.IsCompleted.ShouldBeFalse();
        follower.Step(answer);
        completion.Task.IsCompletedSuccessfully.ShouldBeTrue();
        Done(completion).Status.ShouldBe(ForwardStatus.Applied);
        new IntCodec().Decode(Done(completion).Payload.Span).ShouldBe(1);
        machine.Items.ShouldBe(["b"]);
        follower.OutstandingForwards.ShouldBe(0);
    }

    [Fact]
    public void A_follower_answers_not_leader_with_the_leader_it_knows()
    {
        var (driver, host, machine) = Follower(Forwarding());
        driver.Step(new ForwardProposal(3, 1, 1, 5, Bytes("c")));
        driver.ProcessReady();
        var answer = host.Sent.OfType<ForwardResult>().ShouldHaveSingleItem();
        answer.Status.ShouldBe(ForwardStatus.NotLeader);
        answer.LeaderHint.ShouldBe(2UL);
        answer.RequestId.ShouldBe(5UL);
        driver.Raft.LastIndex.ShouldBe(0UL);
        machine.Applies.ShouldBe(0);
    }

    [Fact]
    public void The_admission_check_refuses_before_anything_is_proposed_and_its_detail_travels()
    {
        var (driver, host, machine) = Leader(Forwarding(admit: c => c.Span[0] == (byte)'x' ? new ProposalRefusal("disk-full", "no room", new byte[] { 1, 2 }) : null));
        var lastIndex = driver.Raft.LastIndex;
        driver.Step(new ForwardProposal(2, 1, 1, 9, Bytes("x")));
        driver.ProcessReady();
        var answer = host.Sent.OfType<ForwardResult>().ShouldHaveSingleItem();
        answer.Status.ShouldBe(ForwardStatus.Refused);
        answer.Code.ShouldBe("disk-full");
        answer.Message.ShouldBe("no room");
        answer.Payload.ToArray().ShouldBe(new byte[] { 1, 2 });
        driver.Raft.LastIndex.ShouldBe(lastIndex);
        machine.Applies.ShouldBe(0);
        driver.Counters.ForwardsRefused.ShouldBe(1);
    }

    [Fact]
    public void The_leader_prepares_a_forwarded_command_and_the_follower_does_not()
    {
        var leaderMark = new Marker("leader:");
        var followerMark = new Marker("follower:");
        var (leader, leaderHost, machine) = Leader(Forwarding(prepare: leaderMark.Prepare));
        var (follower, followerHost, followerMachine) = Create(3, [1, 2, 3], Forwarding(prepare: followerMark.Prepare));
        follower.Step(new Heartbeat(1, 3, 5, 0, 0));
        follower.ProcessReady();
        followerHost.Sent.Clear();
        var completion = new TaskCompletionSource<ForwardResult>();
        follower.Forward(Bytes("b"), completion);
        var forward = followerHost.Sent.OfType<ForwardProposal>().ShouldHaveSingleItem();
        forward.Command.ToArray().ShouldBe(Bytes("b")); // sent as the caller built it
        leader.Step(forward with { To = 1 });
        leader.ProcessReady();
        machine.Items.ShouldBe(["leader:b"]); // what the log holds is the leader's preparation
        leaderMark.Calls.ShouldBe(1);
        follower.Step(leaderHost.Sent.OfType<ForwardResult>().ShouldHaveSingleItem());
        Done(completion).Status.ShouldBe(ForwardStatus.Applied);
        followerMark.Calls.ShouldBe(0);
        followerMachine.Applies.ShouldBe(0);
    }

    [Fact]
    public void A_refused_command_is_not_prepared_and_a_follower_answering_not_leader_prepares_nothing()
    {
        var mark = new Marker("p:");
        var (leader, _, machine) = Leader(Forwarding(admit: c => c.Span[0] == (byte)'x' ? new ProposalRefusal("no", "no") : null, prepare: mark.Prepare));
        leader.Step(new ForwardProposal(2, 1, 1, 1, Bytes("x")));
        leader.Step(new ForwardProposal(2, 1, 1, 2, Bytes("y")));
        leader.ProcessReady();
        machine.Items.ShouldBe(["p:y"]);
        mark.Calls.ShouldBe(1);

        var followerMark = new Marker("f:");
        var (follower, host, _) = Follower(Forwarding(prepare: followerMark.Prepare));
        follower.Step(new ForwardProposal(3, 1, 1, 5, Bytes("c")));
        follower.ProcessReady();
        host.Sent.OfType<ForwardResult>().ShouldHaveSingleItem().Status.ShouldBe(ForwardStatus.NotLeader);
        followerMark.Calls.ShouldBe(0);
    }

    [Fact]
    public void A_leader_over_its_bound_of_forwarded_proposals_refuses_the_next_as_overloaded()
    {
        var (driver, host, machine) = Leader(Forwarding(maxInFlight: 2));
        for (ulong i = 1; i <= 3; i++) driver.Step(new ForwardProposal(2, 1, 1, i, Bytes("m" + i)));
        var refused = host.Sent.OfType<ForwardResult>().ShouldHaveSingleItem();
        refused.RequestId.ShouldBe(3UL);
        refused.Status.ShouldBe(ForwardStatus.NotApplied);
        ((NotAppliedReason)refused.Reason).ShouldBe(NotAppliedReason.Overloaded);
        driver.ForwardedInFlight.ShouldBe(2);
        driver.ProcessReady();
        machine.Items.ShouldBe(["m1", "m2"]);
        driver.ForwardedInFlight.ShouldBe(0);
        // Answered, so the bound has room again.
        driver.Step(new ForwardProposal(2, 1, 1, 4, Bytes("m4")));
        driver.ProcessReady();
        host.Sent.OfType<ForwardResult>().Last().Status.ShouldBe(ForwardStatus.Applied);
    }

    [Fact]
    public void A_follower_over_its_bound_of_outstanding_forwards_does_not_send()
    {
        var (driver, host, _) = Follower(Forwarding(maxOutstanding: 1));
        var first = new TaskCompletionSource<ForwardResult>();
        var second = new TaskCompletionSource<ForwardResult>();
        driver.Forward(Bytes("a"), first);
        driver.Forward(Bytes("b"), second);
        host.Sent.OfType<ForwardProposal>().ShouldHaveSingleItem();
        first.Task.IsCompleted.ShouldBeFalse();
        Done(second).Status.ShouldBe(ForwardStatus.NotApplied);
        ((NotAppliedReason)Done(second).Reason).ShouldBe(NotAppliedReason.Overloaded);
    }

    [Fact]
    public void An_answer_with_an_unknown_request_id_is_ignored()
    {
        var (driver, host, _) = Follower(Forwarding());
        var completion = new TaskCompletionSource<ForwardResult>();
        driver.Forward(Bytes("a"), completion);
        var forward = host.Sent.OfType<ForwardProposal>().ShouldHaveSingleItem();
        forward.RequestId.ShouldBe(1001UL); // numbered from the seed
        driver.Step(Applied(from: 2, forward.RequestId - 1));
        driver.Step(Applied(from: 2, forward.RequestId + 1));
        completion.Task.IsCompleted.ShouldBeFalse();
        driver.Counters.ForwardAnswersIgnored.ShouldBe(2);
        driver.Step(Applied(from: 2, forward.RequestId));
        Done(completion).Status.ShouldBe(ForwardStatus.Applied);
    }

    [Fact]
    public void Runs_with_different_seeds_number_their_forwards_apart()
    {
        // A late answer to a forward of an earlier run (another seed) must not match one of this run.
        var ids = new List<ulong>();
        foreach (var seed in new ulong[] { 1000, 987_654_321 })
        {
            var (driver, host, _) = Follower(Forwarding(), seed);
            driver.Forward(Bytes("a"), new TaskCompletionSource<ForwardResult>());
            ids.Add(host.Sent.OfType<ForwardProposal>().Single().RequestId);
        }
        ids[0].ShouldNotBe(ids[1]);
    }

    [Fact]
    public void An_answer_from_a_node_other_than_the_one_asked_is_ignored()
    {
        var (driver, host, _) = Follower(Forwarding());
        var completion = new TaskCompletionSource<ForwardResult>();
        driver.Forward(Bytes("a"), completion);
        var forward = host.Sent.OfType<ForwardProposal>().Single();
        driver.Step(Applied(from: 3, forward.RequestId));
        completion.Task.IsCompleted.ShouldBeFalse();
        driver.Step(Applied(from: 2, forward.RequestId));
        completion.Task.IsCompletedSuccessfully.ShouldBeTrue();
    }

    [Fact]
    public void A_forward_without_an_answer_becomes_unknown_at_the_timeout_and_one_given_up_is_forgotten()
    {
        var (driver, host, _) = Follower(Forwarding());
        var waited = new TaskCompletionSource<ForwardResult>();
        var abandoned = new TaskCompletionSource<ForwardResult>();
        driver.Forward(Bytes("a"), waited);
        driver.Forward(Bytes("b"), abandoned);
        abandoned.TrySetCanceled();
        driver.Tick();
        driver.OutstandingForwards.ShouldBe(1);
        waited.Task.IsCompleted.ShouldBeFalse();
        host.Clock.Advance(TimeSpan.FromSeconds(6));
        driver.Tick();
        Done(waited).Status.ShouldBe(ForwardStatus.Unknown);
        ((UnknownReason)Done(waited).Reason).ShouldBe(UnknownReason.TimedOut);
        driver.OutstandingForwards.ShouldBe(0);
    }

    [Fact]
    public void A_forward_whose_leader_stopped_leading_becomes_unknown_after_an_election_timeout_not_the_whole_timeout()
    {
        var (driver, _, _) = Follower(Forwarding());
        var kept = new TaskCompletionSource<ForwardResult>();
        driver.Forward(Bytes("kept"), kept);
        // While node 2 goes on leading, the forward waits (here ten election timeouts' worth of ticks).
        for (int i = 0; i < 50; i++)
        {
            driver.Step(new Heartbeat(2, 1, 1, 0, 0));
            driver.Tick();
        }
        kept.Task.IsCompleted.ShouldBeFalse();
        var lost = new TaskCompletionSource<ForwardResult>();
        driver.Forward(Bytes("lost"), lost);
        // Node 3 leads term 2: node 2 (perhaps crashed with both commands) will not be heard from again.
        driver.Step(new Heartbeat(3, 1, 2, 0, 0));
        driver.ProcessReady();
        for (int i = 0; i < 4; i++)
        {
            driver.Step(new Heartbeat(3, 1, 2, 0, 0));
            driver.Tick();
        }
        lost.Task.IsCompleted.ShouldBeFalse("node 2 may still answer within an election timeout");
        driver.Step(new Heartbeat(3, 1, 2, 0, 0));
        driver.Tick();
        foreach (var completion in new[] { kept, lost })
        {
            Done(completion).Status.ShouldBe(ForwardStatus.Unknown);
            ((UnknownReason)Done(completion).Reason).ShouldBe(UnknownReason.LeaderLost);
        }
        driver.OutstandingForwards.ShouldBe(0);
    }

    [Fact]
    public void Without_a_known_leader_nothing_is_sent_and_the_caller_hears_not_leader()
    {
        var (driver, host, _) = Create(1, [1, 2, 3], Forwarding());
        var completion = new TaskCompletionSource<ForwardResult>();
        driver.Forward(Bytes("a"), completion);
        Done(completion).Status.ShouldBe(ForwardStatus.NotLeader);
        Done(completion).LeaderHint.ShouldBe(0UL);
        host.Sent.OfType<ForwardProposal>().ShouldBeEmpty();
    }

    /// <summary>Node 1 of {1, 2, 3} leads (votes from 2) and takes a forward; returns the driver, its host and the term.</summary>
    private (NodeDriver Driver, TestHost Host, ulong Term) LeaderWithAForward()
    {
        var (driver, host, _) = Create(1, [1, 2, 3], Forwarding());
        for (int i = 0; i < 50 && driver.Raft.Role is Role.Follower; i++)
        {
            driver.Tick();
            driver.ProcessReady();
        }
        var vote = host.Sent.OfType<RequestVote>().First(m => m.To == 2);
        driver.Step(new RequestVoteResponse(2, 1, vote.Term, true, vote.PreVote));
        driver.ProcessReady();
        if (driver.Raft.Role != Role.Leader)
        {
            vote = host.Sent.OfType<RequestVote>().Last(m => m.To == 2);
            driver.Step(new RequestVoteResponse(2, 1, vote.Term, true, vote.PreVote));
            driver.ProcessReady();
        }
        driver.Raft.Role.ShouldBe(Role.Leader);
        var term = driver.Raft.Term;
        driver.Step(new ForwardProposal(2, 1, term, 42, Bytes("lost")));
        driver.ProcessReady();
        driver.ForwardedInFlight.ShouldBe(1);
        driver.Raft.LastIndex.ShouldBe(2UL); // the no-op, then the forward
        host.Sent.Clear();
        return (driver, host, term);
    }

    /// <summary>Node 3, leading the next term, replaces node 1's no-op and forward with its own, committed up to <paramref name="commit"/>.</summary>
    private static void ReplaceByNodeThree(NodeDriver driver, ulong term, ulong commit)
    {
        driver.Step(new AppendEntries(3, 1, term + 1, 0, 0,
            [new Entry(1, term + 1, EntryType.NoOp, ReadOnlyMemory<byte>.Empty), new Entry(2, term + 1, EntryType.NoOp, ReadOnlyMemory<byte>.Empty)], commit));
        driver.ProcessReady();
    }

    [Fact]
    public void A_forwarded_entry_replaced_by_a_new_leader_is_answered_as_unknown()
    {
        var (driver, host, term) = LeaderWithAForward();
        // Node 3 leads a later term and replaces everything from the no-op on with its own entries, not committed yet.
        // A leader of a later term that holds node 1's entries (node 2 may) could still commit them: not "not applied",
        // which would have the follower propose the command again.
        ReplaceByNodeThree(driver, term, commit: 0);
        var answer = host.Sent.OfType<ForwardResult>().ShouldHaveSingleItem();
        answer.RequestId.ShouldBe(42UL);
        answer.Status.ShouldBe(ForwardStatus.Unknown);
        ((UnknownReason)answer.Reason).ShouldBe(UnknownReason.LeaderLost);
        driver.ForwardedInFlight.ShouldBe(0);
    }

    [Fact]
    public void A_forwarded_entry_replaced_by_a_committed_entry_is_answered_as_not_leader()
    {
        var (driver, host, term) = LeaderWithAForward();
        // The new leader's entries arrive already committed: the forward certainly was not applied; the follower routes
        // it again.
        ReplaceByNodeThree(driver, term, commit: 2);
        var answer = host.Sent.OfType<ForwardResult>().ShouldHaveSingleItem();
        answer.RequestId.ShouldBe(42UL);
        answer.Status.ShouldBe(ForwardStatus.NotLeader);
        answer.LeaderHint.ShouldBe(3UL);
        driver.ForwardedInFlight.ShouldBe(0);
    }

    /// <summary>The answer a completion already holds (the driver completes synchronously, on its step).</summary>
    private static ForwardResult Done(TaskCompletionSource<ForwardResult> completion)
    {
        completion.Task.IsCompletedSuccessfully.ShouldBeTrue();
        return completion.Task.Result;
    }

    [Fact]
    public void A_copy_of_a_forward_already_taken_is_not_proposed_again_nor_answered()
    {
        var (driver, host, machine) = Leader(Forwarding());
        var forward = new ForwardProposal(2, 1, driver.Raft.Term, 8, Bytes("once"));
        driver.Step(forward);
        driver.Step(forward);
        driver.ProcessReady();
        driver.Step(forward);
        driver.ProcessReady();
        machine.Items.ShouldBe(["once"]);
        host.Sent.OfType<ForwardResult>().ShouldHaveSingleItem().Status.ShouldBe(ForwardStatus.Applied);
        driver.Counters.ForwardDuplicatesIgnored.ShouldBe(2);
    }

    [Fact]
    public void After_a_restart_a_forward_of_an_earlier_term_is_answered_unknown_not_taken_again()
    {
        var (first, firstHost, firstMachine) = Leader(Forwarding(), directory: "restarted");
        var term = first.Raft.Term;
        var forward = new ForwardProposal(2, 1, term, 8, Bytes("once"));
        first.Step(forward);
        first.ProcessReady();
        firstMachine.Items.ShouldBe(["once"]);
        firstHost.Sent.OfType<ForwardResult>().Single().Status.ShouldBe(ForwardStatus.Applied);
        _drivers.Remove(first);
        first.Dispose();
        first.Storage.Dispose();

        // The next run replays its log (the command is applied again there, as every replay does), wins a later
        // term, and then a copy of the old forward arrives: it must not become a second entry.
        var (second, secondHost, secondMachine) = Leader(Forwarding(), directory: "restarted");
        second.Raft.Term.ShouldBeGreaterThan(term);
        var lastIndex = second.Raft.LastIndex;
        second.Step(forward);
        second.ProcessReady();
        second.Raft.LastIndex.ShouldBe(lastIndex);
        secondMachine.Items.Count(i => i == "once").ShouldBe(1);
        var answer = secondHost.Sent.OfType<ForwardResult>().ShouldHaveSingleItem();
        answer.Status.ShouldBe(ForwardStatus.Unknown);
        ((UnknownReason)answer.Reason).ShouldBe(UnknownReason.Stale);
    }

    private static ForwardResult Applied(ulong from, ulong requestId) =>
        new(from, 1, 1, requestId, ForwardStatus.Applied, 0, from, "", "", new IntCodec().Encode(7));

    public void Dispose()
    {
        foreach (var d in _drivers)
        {
            d.Dispose();
            d.Storage.Dispose();
        }
        if (Directory.Exists(_directory)) Directory.Delete(_directory, recursive: true);
    }

    private sealed class TestHost : INodeHost
    {
        public List<RaftMessage> Sent { get; } = [];

        public ManualClock Clock { get; } = new();

        public TimeProvider Time => Clock;

        public void Send(RaftMessage message) => Sent.Add(message);

        public void WriteSnapshotInBackground(SnapshotJob job) => throw new InvalidOperationException("no snapshots in these tests");

        /// <summary>Peers whose link the host reports down.</summary>
        public HashSet<ulong> Down { get; } = [];

        public bool IsLinkDown(ulong peer) => Down.Contains(peer);
    }
}

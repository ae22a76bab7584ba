using RaftMQ.Runtime;
using RaftMQ.Simulation.Tests.Support;

namespace RaftMQ.Simulation.Tests;

/// <summary>Step-by-step scenarios: freeze the cluster at an interesting moment and look at it.</summary>
public sealed class ScriptedTests
{
    private SimCluster Cluster(int nodes, Action<SimOptions>? configure = null, [System.Runtime.CompilerServices.CallerMemberName] string test = "") =>
        Sim.Cluster(GetType(), nodes, 42, o =>
        {
            o.Link = LinkConfig.Reliable with { MinDelayMs = 1, MaxDelayMs = 1 };
            configure?.Invoke(o);
        }, test);

    private static SimNode ElectedLeader(SimCluster sim)
    {
        sim.Await(() => sim.Leader is { } l && l.CommitIndex >= 1 && sim.Nodes.All(n => n.Raft!.Leader == l.Id), 5_000, "a settled leader");
        return sim.Leader!;
    }

    [Fact]
    public void Forward_LeaderCrashed_NothingSentToIt_AndOneInFlightGivenUpAsTheLeaderChanges()
    {
        var sim = Cluster(3);
        var leader = ElectedLeader(sim);
        var follower = sim.Nodes.First(n => n.Id != leader.Id);
        // A forward the leader takes and never answers: it crashes with the command in hand.
        sim.Intercept<ForwardProposal>(InterceptPoint.BeforeReceive, _ => InterceptDecision.Hold, to: leader.Id);
        var inFlight = sim.ProposeThrough(Sim.Cmd(1), follower.Id);
        sim.Await(() => sim.Held.Count == 1, 1_000, "the leader holds the forward");
        sim.Crash(leader.Id);

        // The follower still believes the crashed node leads, but its link to it is down: a new command is not sent
        // there (certainly not applied; a server routes it again once the leader changes).
        follower.Raft!.Leader.ShouldBe(leader.Id);
        var sentHeld = sim.Held.Count;
        var notSent = sim.ProposeThrough(Sim.Cmd(2), follower.Id);
        Answered(notSent).Status.ShouldBe(ForwardStatus.NotLeader);
        sim.Held.Count.ShouldBe(sentHeld, "nothing more went to the crashed leader");
        inFlight.ForwardAnswer!.IsCompleted.ShouldBeFalse("the sent forward's fate is open while the leader is believed");

        // Once the follower stops believing in the crashed leader, the sent forward is given up (unknown) within a
        // tick or an fsync's hand-back, not an election timeout (100 virtual ms here) later as with the link up.
        sim.Await(() => follower.Raft!.Leader != leader.Id, 5_000, "the follower notices the leader is gone");
        var changedAt = sim.Now;
        sim.Await(() => inFlight.ForwardAnswer.IsCompleted, 5_000, "the sent forward is given up");
        (sim.Now - changedAt).ShouldBeLessThan(30, "given up at the leader change, not an election timeout later");
        Answered(inFlight).Status.ShouldBe(ForwardStatus.Unknown);
        ((UnknownReason)Answered(inFlight).Reason).ShouldBe(UnknownReason.LeaderLost);
    }

    /// <summary>The answer a forwarded proposal already has.</summary>
    private static ForwardResult Answered(ClientProposal p)
    {
        p.ForwardAnswer!.IsCompletedSuccessfully.ShouldBeTrue();
        return p.ForwardAnswer.GetAwaiter().GetResult();
    }

    [Fact]
    public void Campaign_HoldTheVoteResponses_CandidateWaits_ThenLeadsOnRelease()
    {
        var sim = Cluster(3);
        // Only n1's clock runs, so n1 is the one that campaigns.
        sim.PauseClock(2);
        sim.PauseClock(3);
        sim.Intercept<RequestVoteResponse>(InterceptPoint.BeforeReceive, _ => InterceptDecision.Hold, to: 1, where: m => !m.PreVote);

        sim.Await(() => sim.Held.Count == 2, 1_000, "both vote responses held");

        var n1 = sim.Node(1);
        n1.Role.ShouldBe(Role.Candidate);
        n1.Term.ShouldBe(1UL);
        n1.Raft!.Vote.ShouldBe(1UL);
        foreach (var id in new ulong[] { 2, 3 })
        {
            sim.Node(id).Role.ShouldBe(Role.Follower);
            sim.Node(id).Term.ShouldBe(1UL);
            sim.Node(id).Raft!.Vote.ShouldBe(1UL, "the vote must be persisted before the response leaves");
            sim.Node(id).Storage.HardState.Vote.ShouldBe(1UL);
        }
        sim.Held.Select(h => h.Message).OfType<RequestVoteResponse>().ShouldAllBe(r => r.Granted && r.Term == 1);
        sim.Describe().ShouldContain("n1 Candidate t1 vote=1");

        // Time passes; without the answers n1 stays a candidate (its election timer may start another round).
        sim.RunFor(5);
        sim.Leader.ShouldBeNull();

        sim.Release(sim.Held[0]);
        n1.Role.ShouldBe(Role.Leader, "one granted vote plus its own is a majority of three");
        sim.Checker.LeaderOfTerm[1].ShouldBe(1UL);
    }

    [Fact]
    public void PreVote_PartitionedFollowerRejoining_DoesNotRaiseTermOrDeposeLeader()
    {
        var sim = Cluster(3);
        var leader = ElectedLeader(sim);
        var term = leader.Term;
        var follower = sim.Nodes.First(n => n.Id != leader.Id);

        sim.Isolate(follower.Id);
        sim.RunFor(3_000); // many election timeouts
        follower.Term.ShouldBe(term, "pre-vote fails without a quorum, so the term must not move");
        follower.Role.ShouldNotBe(Role.Leader);

        sim.Reconnect(follower.Id);
        sim.Await(() => follower.Raft!.Leader == leader.Id, 1_000, "the follower rejoins the leader");
        sim.RunFor(1_000);
        leader.IsLeader.ShouldBeTrue();
        sim.Nodes.ShouldAllBe(n => n.Term == term);
        sim.Checker.LeaderOfTerm.Count.ShouldBe(1);
    }

    [Fact]
    public void WithoutPreVote_PartitionedFollowerRejoining_DisruptsTheLeader()
    {
        // The control for the test above: the same script without pre-vote does raise the term.
        var sim = Cluster(3, o => o.PreVote = false);
        var leader = ElectedLeader(sim);
        var term = leader.Term;
        var follower = sim.Nodes.First(n => n.Id != leader.Id);

        sim.Isolate(follower.Id);
        sim.RunFor(3_000);
        follower.Term.ShouldBeGreaterThan(term);

        sim.Reconnect(follower.Id);
        sim.Await(() => sim.Leader is { } l && l.Term > term, 2_000, "a new term after the rejoin");
    }

    [Fact]
    public void CheckQuorum_LeaderCutFromItsMajority_StepsDown()
    {
        var sim = Cluster(5);
        var leader = ElectedLeader(sim);
        var term = leader.Term;

        sim.Isolate(leader.Id);
        var electionTimeoutMs = sim.Options.ElectionTicks * sim.Options.TickMs;
        sim.Await(() => !leader.IsLeader, 2 * electionTimeoutMs + sim.Options.TickMs, "the isolated leader steps down");
        sim.Await(() => sim.Leader is { } l && l.Id != leader.Id && l.Term > term, 2_000, "the majority elects a new leader");
    }

    [Fact]
    public void CheckQuorum_LeaderWhoseMessagesAreLost_StepsDown()
    {
        // Asymmetric: the leader hears everyone but nobody hears it.
        var sim = Cluster(3);
        var leader = ElectedLeader(sim);
        foreach (var n in sim.Nodes)
            if (n.Id != leader.Id) sim.Block(leader.Id, n.Id);
        sim.Await(() => !leader.IsLeader, 2_000, "the unheard leader steps down");
        sim.Await(() => sim.Leader is { } l && l.Id != leader.Id, 2_000, "another node leads");
    }

    [Fact]
    public void ReadIndex_ThroughAFollower_ReturnsAtLeastTheCommitIndexAtRequestTime()
    {
        var sim = Cluster(3);
        var leader = ElectedLeader(sim);
        for (int i = 0; i < 5; i++) sim.Propose(Sim.Cmd(i), leader.Id);
        var follower = sim.Nodes.First(n => n.Id != leader.Id);
        // Ask while the leader already committed the writes but the follower may not know it yet.
        sim.Await(() => leader.CommitIndex == leader.Raft!.LastIndex, 1_000, "writes committed on the leader");
        var commitAtRequest = leader.CommitIndex;

        var read = sim.Read(follower.Id);
        var forwarded = sim.Intercept<ReadIndexRequest>(InterceptPoint.BeforeReceive, _ => InterceptDecision.Pass, from: follower.Id, to: leader.Id);
        sim.Await(() => read.Index is not null, 1_000, "the read is confirmed and served once the follower caught up");
        read.Index!.Value.ShouldBeGreaterThanOrEqualTo(commitAtRequest);
        forwarded.Matched.ShouldBe(1, "the follower asked the leader for the read index");
    }

    // A follower forwards a read, crashes and restarts; the leader's answer to the read of its earlier run arrives only
    // now, after a write was acknowledged. It must not confirm the read of the new run: each run of a node numbers its
    // reads from a point of its own, and the core takes only answers to reads it forwarded. (The mutation check's
    // ReuseReadContexts makes every run number from 1, which this test catches.)
    [Fact]
    public void LateReadAnswer_ToAnEarlierRunOfTheFollower_DoesNotConfirmANewRead()
    {
        var sim = Cluster(3, o => o.MessagesSurviveCrashProbability = 1);
        var leader = ElectedLeader(sim);
        var follower = sim.Nodes.First(n => n.Id != leader.Id);
        var held = 0;
        sim.Intercept<ReadIndexResponse>(InterceptPoint.BeforeReceive, _ => held++ == 0 ? InterceptDecision.Hold : InterceptDecision.Pass, to: follower.Id);
        var oldRead = sim.Read(follower.Id);
        sim.Await(() => sim.Held.Count == 1, 1_000, "the leader's answer to the first read is on its way (held)");

        sim.Crash(follower.Id);
        var write = sim.Propose(Sim.Cmd(1), leader.Id);
        sim.Await(() => write.IsAcknowledged, 1_000, "a write acknowledged while the follower is down");

        // The restarted follower learns the leader from heartbeats but gets no new entries, so it cannot catch up.
        var appends = sim.Intercept<AppendEntries>(InterceptPoint.BeforeReceive, _ => InterceptDecision.Drop, to: follower.Id);
        sim.Restart(follower.Id);
        sim.Await(() => follower.Raft!.Leader == leader.Id, 1_000, "the restarted follower knows the leader");
        var newRead = sim.Read(follower.Id);
        sim.Release(sim.Held.Single()); // the old answer arrives; the invariant checker fails the run if it confirms newRead

        sim.RunFor(100);
        newRead.Index.ShouldBeNull("the new read waits for its own answer and for the entries it needs");
        sim.RemoveInterceptor(appends);
        sim.Await(() => newRead.Index is not null, 1_000, "the new read is served once the follower caught up");
        newRead.Index!.Value.ShouldBeGreaterThanOrEqualTo(write.Result.Index);
        oldRead.Completion.IsFaulted.ShouldBeTrue("the first run's read ended with that run");
    }

    [Fact]
    public void Propose_OverTheEntryLimit_IsRefused_AndTheLeaderGoesOn()
    {
        var sim = Cluster(3);
        var leader = ElectedLeader(sim);
        var tooLarge = sim.Propose(new byte[sim.Options.MaxEntryBytes + 1], leader.Id);
        tooLarge.Result.Status.ShouldBe(ProposeStatus.TooLarge);
        tooLarge.State.ShouldBe(ProposalState.Rejected);
        tooLarge.Completion.Exception!.InnerException.ShouldBeOfType<RaftMQ.Runtime.CommandTooLargeException>();

        var atLimit = sim.Propose(new byte[sim.Options.MaxEntryBytes], leader.Id);
        sim.Await(() => atLimit.IsAcknowledged, 1_000, "a command at the limit is committed");
        leader.IsLeader.ShouldBeTrue();
    }

    [Fact]
    public void Propose_OnAFollower_ReturnsNotLeaderWithTheLeaderHint()
    {
        var sim = Cluster(3);
        var leader = ElectedLeader(sim);
        var follower = sim.Nodes.First(n => n.Id != leader.Id);

        var proposal = sim.Propose(Sim.Cmd(1), follower.Id);
        proposal.Result.Status.ShouldBe(ProposeStatus.NotLeader);
        proposal.Result.LeaderHint.ShouldBe(leader.Id);
        proposal.State.ShouldBe(ProposalState.Rejected);
    }

    [Fact]
    public void SingleNodeCluster_LeadsAtOnce_AlsoAfterRestart()
    {
        var sim = Cluster(1, o => o.LogSyncDelayMaxMs = 0);
        var node = sim.Node(1);
        node.IsLeader.ShouldBeTrue("a cluster of one needs no election");
        sim.Now.ShouldBe(0L);

        var p = sim.Propose(Sim.Cmd(1));
        sim.RunFor(0); // its fsync, off the loop, ends at the same virtual instant
        p.IsAcknowledged.ShouldBeTrue("with nobody to wait for, the entry commits once it is durable here");
        var term = node.Term;

        sim.Crash(1);
        sim.Restart(1);
        node.IsLeader.ShouldBeTrue();
        node.Term.ShouldBeGreaterThan(term);
        sim.RunFor(0);
        node.AppliedThisRun.ShouldBe(p.Result.Index + 1, "the restarted node re-applies its log and its new no-op");
        var second = sim.Propose(Sim.Cmd(2));
        sim.RunFor(0);
        second.IsAcknowledged.ShouldBeTrue();
    }

    [Fact]
    public void StepByStep_DeliverOneMessageAtATime()
    {
        var sim = Cluster(3, o => o.LogSyncDelayMaxMs = 0);
        var leader = ElectedLeader(sim);
        sim.RunUntil(() => sim.InFlight.Count == 0, 100);
        // Freeze the clocks, propose, and walk the AppendEntries round by hand.
        foreach (var n in sim.Nodes) sim.PauseClock(n.Id);
        var p = sim.Propose(Sim.Cmd(9), leader.Id);
        var appends = sim.InFlight.Where(m => m.Message is AppendEntries).ToList();
        appends.Count.ShouldBe(2, "a leader sends its entries while it writes them");

        sim.DeliverNow(appends[0]);
        sim.InFlight.ShouldNotContain(m => m.Message is AppendEntriesResponse, "the follower answers once the entry is durable");
        sim.RunFor(0); // the fsyncs, off the loops, end at this virtual instant (messages take 1 ms)
        var response = sim.InFlight.Single(m => m.Message is AppendEntriesResponse);
        p.IsAcknowledged.ShouldBeFalse();
        sim.DeliverNow(response);
        p.IsAcknowledged.ShouldBeTrue("leader plus one follower is a majority of three");
        leader.CommitIndex.ShouldBe(p.Result.Index);
        sim.Node(appends[1].Message.To).Storage.LastIndex.ShouldBeLessThan(p.Result.Index, "the second append is still in flight");
    }
}

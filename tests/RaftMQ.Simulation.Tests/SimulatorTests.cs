using RaftMQ.Simulation.Tests.Support;

namespace RaftMQ.Simulation.Tests;

/// <summary>The simulator itself: determinism, the network's faults, crashes, interceptors and failure reports.</summary>
public sealed class SimulatorTests
{
    private SimCluster Cluster(int nodes, ulong seed = 5, Action<SimOptions>? configure = null, [System.Runtime.CompilerServices.CallerMemberName] string test = "") =>
        Sim.Cluster(GetType(), nodes, seed, configure, test);

    private static string Fingerprint(SimCluster sim) =>
        $"{sim.Stats} | {sim.Describe()} | {string.Join(",", sim.Checker.Committed.Select(e => $"{e.Index}/{e.Term}"))}";

    private static SimCluster Busy(SimCluster sim)
    {
        sim.SetAllLinks(new LinkConfig { LossProbability = 0.1, MaxDelayMs = 30, DuplicateProbability = 0.1 });
        for (int i = 0; i < 40; i++)
        {
            sim.Propose(Sim.Cmd(i));
            sim.RunFor(25);
            if (i == 10) sim.Crash(2);
            if (i == 20) sim.Restart(2);
            if (i == 25) sim.Isolate(3);
            if (i == 30) sim.Heal();
        }
        return sim;
    }

    [Fact]
    public void SameSeed_SameRun()
    {
        var a = Fingerprint(Busy(Cluster(5, seed: 77)));
        var b = Fingerprint(Busy(Cluster(5, seed: 77)));
        var c = Fingerprint(Busy(Cluster(5, seed: 78)));
        b.ShouldBe(a);
        c.ShouldNotBe(a);
    }

    [Fact]
    public void Fuzzer_SameSeed_SameOutcome()
    {
        Fuzzer.Run(123, null).ShouldBe(Fuzzer.Run(123, null));
    }

    [Fact]
    public void Loss_OnALink_DropsEverythingOnIt()
    {
        var sim = Cluster(3);
        sim.SetLink(1, 2, LinkConfig.Reliable with { LossProbability = 1 });
        var delivered = 0;
        sim.Intercept<RaftMessage>(InterceptPoint.BeforeReceive, _ =>
        {
            delivered++;
            return InterceptDecision.Pass;
        }, from: 1, to: 2);
        sim.RunFor(3_000);
        delivered.ShouldBe(0);
        sim.Stats.Dropped.ShouldBeGreaterThan(0);
        sim.Leader.ShouldNotBeNull("the other links still work");
    }

    [Fact]
    public void Duplication_DeliversExtraCopies()
    {
        var sim = Cluster(3, configure: o => o.Link = LinkConfig.Reliable with { DuplicateProbability = 0.5 });
        sim.RunFor(2_000);
        sim.Stats.Duplicated.ShouldBeGreaterThan(0);
        sim.Stats.Delivered.ShouldBe(sim.Stats.Sent + sim.Stats.Duplicated - sim.Stats.Dropped - sim.InFlight.Count);
    }

    [Fact]
    public void Delays_ReorderMessagesOnALink()
    {
        var sim = Cluster(3, configure: o => o.Link = LinkConfig.Reliable with { MinDelayMs = 1, MaxDelayMs = 40 });
        long lastSentAt = -1;
        var overtaken = 0;
        var sentAt = new Dictionary<RaftMessage, long>(ReferenceEqualityComparer.Instance);
        sim.Intercept<Heartbeat>(InterceptPoint.BeforeSend, m =>
        {
            sentAt[m] = sim.Now;
            return InterceptDecision.Pass;
        }, from: null, to: null);
        sim.Intercept<Heartbeat>(InterceptPoint.BeforeReceive, m =>
        {
            var at = sentAt[m];
            if (at < lastSentAt) overtaken++;
            lastSentAt = Math.Max(lastSentAt, at);
            return InterceptDecision.Pass;
        }, where: m => m.To == 2);
        sim.RunFor(3_000);
        overtaken.ShouldBeGreaterThan(0);
    }

    [Fact]
    public void AsymmetricBlock_CutsOneDirectionOnly()
    {
        var sim = Cluster(3);
        sim.Block(1, 2);
        int oneToTwo = 0, twoToOne = 0;
        sim.Intercept<RaftMessage>(InterceptPoint.BeforeReceive, _ => { oneToTwo++; return InterceptDecision.Pass; }, from: 1, to: 2);
        sim.Intercept<RaftMessage>(InterceptPoint.BeforeReceive, _ => { twoToOne++; return InterceptDecision.Pass; }, from: 2, to: 1);
        sim.RunFor(3_000);
        oneToTwo.ShouldBe(0);
        twoToOne.ShouldBeGreaterThan(0);
    }

    [Fact]
    public void Crash_LosesInFlightMessages_AndRestartKeepsOnlyPersistedState()
    {
        var sim = Cluster(3, configure: o => o.Link = LinkConfig.Reliable with { MinDelayMs = 20, MaxDelayMs = 20 });
        sim.Await(() => sim.Leader is { CommitIndex: > 0 }, 5_000, "leader");
        var leader = sim.Leader!;
        var follower = sim.Nodes.First(n => n.Id != leader.Id);
        sim.Propose(Sim.Cmd(1), leader.Id);
        sim.InFlight.ShouldContain(m => m.Message.To == follower.Id);

        sim.Crash(follower.Id);
        sim.InFlight.ShouldNotContain(m => m.Message.To == follower.Id || m.Message.From == follower.Id);
        follower.IsUp.ShouldBeFalse();
        var persisted = follower.Storage.LastIndex;
        var applied = follower.Applied.Count;

        sim.Restart(follower.Id);
        follower.Incarnation.ShouldBe(2);
        follower.Raft!.LastIndex.ShouldBe(persisted);
        follower.AppliedThisRun.ShouldBe(follower.Raft.CommitIndex, "the state machine re-applies up to the persisted commit");
        follower.Applied.Count.ShouldBe(applied);
        sim.Await(() => follower.AppliedThisRun == leader.Raft!.LastIndex, 2_000, "the follower catches up");
    }

    [Fact]
    public void Interceptor_HoldsRewritesAndDrops()
    {
        var sim = Cluster(3);
        var held = sim.Intercept<RequestVote>(InterceptPoint.BeforeSend, _ => InterceptDecision.Hold);
        sim.Await(() => sim.Held.Count > 0, 2_000, "a vote request held");
        sim.Leader.ShouldBeNull();
        held.Matched.ShouldBeGreaterThan(0);
        sim.RemoveInterceptor(held);
        sim.ReleaseAll().ShouldBeGreaterThan(0);
        sim.Held.ShouldBeEmpty();

        // A rewrite that refuses every vote keeps the cluster leaderless.
        var refuse = sim.Intercept<RequestVoteResponse>(InterceptPoint.BeforeReceive, m => InterceptDecision.Rewrite(m with { Granted = false }));
        sim.RunFor(2_000);
        sim.Leader.ShouldBeNull();
        sim.RemoveInterceptor(refuse);
        sim.Await(() => sim.Leader is not null, 5_000, "a leader once votes flow");
    }

    [Fact]
    public void ForgedEntry_IsCaughtByTheChecker_WithSeedAndReplayCommand()
    {
        // Corrupt the content of a replicated entry on its way to n2: same (index, term), other bytes.
        var sim = Cluster(3, seed: 99);
        sim.Await(() => sim.Leader is { CommitIndex: > 0 }, 5_000, "leader");
        var leader = sim.Leader!;
        var victim = sim.Nodes.First(n => n.Id != leader.Id).Id;
        sim.Intercept<AppendEntries>(InterceptPoint.BeforeReceive,
            m => InterceptDecision.Rewrite(m with { Entries = [.. m.Entries.Select(e => e with { Data = Sim.Cmd(-1) })] }),
            to: victim, where: m => m.Entries.Count > 0);
        sim.Propose(Sim.Cmd(1), leader.Id);

        var ex = Should.Throw<InvariantViolationException>(() => sim.RunFor(1_000));
        ex.Invariant.ShouldBeOneOf("log matching", "state machine safety");
        ex.Seed.ShouldBe(99UL);
        ex.Message.ShouldContain("RAFTMQ_SEED=99 dotnet test tests/RaftMQ.Simulation.Tests --filter");
        ex.Message.ShouldContain(nameof(ForgedEntry_IsCaughtByTheChecker_WithSeedAndReplayCommand));
    }

    [Fact]
    public void ForgedVote_TwoLeadersInOneTerm_IsCaughtByTheChecker()
    {
        // Without pre-vote, two candidates of one term each get a forged grant from a voter that already voted.
        var sim = Cluster(3, seed: 3, configure: o => o.PreVote = false);
        sim.Intercept<RequestVoteResponse>(InterceptPoint.BeforeSend, m => InterceptDecision.Rewrite(m with { Granted = true }),
            where: m => !m.Granted);
        var ex = Should.Throw<InvariantViolationException>(() =>
        {
            for (int i = 0; i < 200; i++)
            {
                sim.RunFor(100);
                foreach (var n in sim.Nodes.Where(n => n.IsLeader).ToList())
                {
                    // Depose leaders so that new elections keep happening.
                    sim.Crash(n.Id);
                    sim.Restart(n.Id);
                }
            }
        });
        // The checker records each vote as its voter sent it, before the rewrite: a leader elected by forged grants is
        // caught by the election quorum check as soon as it wins, or, when the forgery makes two leaders of a term first,
        // by election safety.
        ex.Invariant.ShouldBeOneOf(new[] { "election quorum", "election safety" }, ex.Message);
    }

    [Fact]
    public void RunUntil_ReturnsFalseAtTheDeadline_WithoutSleeping()
    {
        var sim = Cluster(3);
        var start = sim.Now;
        sim.RunUntil(() => false, 10_000).ShouldBeFalse();
        sim.Now.ShouldBe(start + 10_000);
    }

    [Fact]
    public void Failure_NamesSeedAndReplayCommand()
    {
        var sim = Cluster(3, seed: 4242);
        var ex = sim.Failure("something broke");
        ex.Message.ShouldContain("something broke");
        ex.Message.ShouldContain("seed 4242");
        ex.Message.ShouldContain("RAFTMQ_SEED=4242 dotnet test tests/RaftMQ.Simulation.Tests --filter \"FullyQualifiedName=RaftMQ.Simulation.Tests.SimulatorTests.Failure_NamesSeedAndReplayCommand\"");
    }
}

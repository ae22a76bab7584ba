using RaftMQ.Runtime;
using RaftMQ.Simulation.Tests.Support;

namespace RaftMQ.Simulation.Tests;

/// <summary>
/// Each kind of membership change, scripted, under a fault: growing 3 → 5 while a follower is down, shrinking
/// 5 → 3 with a member partitioned away, the leader removing itself on a lossy network, replacing a wiped node while
/// the leader crashes; and the refusals (a change while another is in flight, misuse). Every change goes through the
/// production driver (<see cref="NodeDriver.AddLearner"/> and the others) and the checker watches every step.
/// </summary>
public sealed class MembershipScriptTests
{
    private const long Timeout = 10_000;

    private SimCluster Cluster(int nodes, int pool, Action<SimOptions>? configure = null, [System.Runtime.CompilerServices.CallerMemberName] string test = "") =>
        Sim.Cluster(GetType(), nodes, 42, o =>
        {
            o.Pool = pool;
            o.SnapshotEveryEntries = 5;
            o.SnapshotRetainEntries = 0; // a node that joins late needs a snapshot
            configure?.Invoke(o);
        }, test);

    private static SimNode ElectedLeader(SimCluster sim)
    {
        sim.Await(() => sim.Leader is { Raft: { } r } l && r.CommitIndex >= 1 && r.LastTerm == r.Term && r.CommitIndex == r.LastIndex
            && sim.Nodes.Where(n => n.IsUp && r.Configuration.IsMember(n.Id)).All(n => n.Raft!.Leader == l.Id), Timeout, "a settled leader");
        return sim.Leader!;
    }

    private static List<ClientProposal> ProposeAcknowledged(SimCluster sim, int count, long firstValue)
    {
        var done = new List<ClientProposal>();
        var value = firstValue * 1_000; // unique payloads, retries included
        // A proposal that meets a leader change is lost or unknown: the client proposes the next value instead.
        sim.Await(() =>
        {
            done.RemoveAll(p => p.State != ProposalState.Pending && !p.IsAcknowledged);
            if (done.Count(p => p.IsAcknowledged) >= count) return true;
            if (done.All(p => p.State != ProposalState.Pending) && sim.Leader is { } l) done.Add(sim.Propose(Sim.Cmd(value++), l.Id));
            return false;
        }, Timeout, $"{count} proposals acknowledged");
        return done;
    }

    /// <summary>Asks the leader for a change until the leader's configuration satisfies <paramref name="done"/> and is committed.</summary>
    private static void ChangeUntil(SimCluster sim, Func<SimCluster, SimMembershipChange> ask, Func<ClusterConfiguration, bool> done, string what)
    {
        var deadline = sim.Now + Timeout;
        while (true)
        {
            if (sim.Leader is { Raft: { } r } && done(r.Configuration) && r.ConfigurationIndex <= r.CommitIndex) return;
            if (sim.Now >= deadline) throw sim.Failure($"timed out: {what}");
            if (sim.Leader is not null && sim.Leader.Raft!.ConfigurationIndex <= sim.Leader.Raft.CommitIndex && !done(sim.Leader.Raft.Configuration))
            {
                var change = ask(sim);
                if (change.IsAccepted) sim.RunUntil(() => change.Completion.IsCompleted, deadline - sim.Now);
            }
            sim.RunFor(20);
        }
    }

    private static void AwaitConverged(SimCluster sim)
    {
        sim.Await(() => Fuzzer.Converged(sim, out _) && sim.Nodes.All(n => n.Driver is not { SnapshotInProgress: true }), Timeout, "the members applied the leader's whole log");
        sim.CheckAcknowledgedAppliedExactlyOnce();
        sim.CheckCommittedChangesInLog();
    }

    private static ulong[] Voters(SimCluster sim) => [.. sim.Leader!.Raft!.Configuration.Voters];

    [Fact]
    public void Grow_3To5_WhileAFollowerIsDown_JoinersCatchUpFromASnapshot()
    {
        var sim = Cluster(3, 5, o => o.Link = LinkConfig.Reliable with { LossProbability = 0.02, MaxDelayMs = 8 });
        var leader = ElectedLeader(sim);
        ProposeAcknowledged(sim, 20, 1);
        var down = sim.Nodes.First(n => n.Id <= 3 && n.Id != leader.Id);
        sim.Crash(down.Id);

        ChangeUntil(sim, s => s.AddLearner(4), c => c.IsMember(4), "n4 added");
        sim.Node(4).IsUp.ShouldBeTrue("a spare starts when the leader takes it");
        ChangeUntil(sim, s => s.PromoteLearner(4), c => c.IsVoter(4), "n4 promoted"); // the leader also promotes it on its own
        ProposeAcknowledged(sim, 10, 100);
        ChangeUntil(sim, s => s.AddLearner(5), c => c.IsVoter(5), "n5 added and promoted by the leader once caught up");

        sim.Restart(down.Id);
        ProposeAcknowledged(sim, 10, 200);
        AwaitConverged(sim);
        Voters(sim).ShouldBe([1UL, 2, 3, 4, 5]);
        sim.Node(4).SnapshotsInstalled.ShouldBeGreaterThan(0, "n4 joined after the log was compacted");
        sim.Node(5).SnapshotsInstalled.ShouldBeGreaterThan(0, "n5 joined after the log was compacted");
        sim.Node(5).Applied.Count.ShouldBe(sim.Leader!.Applied.Count);
    }

    [Fact]
    public void Shrink_5To3_WithAMemberPartitionedAway()
    {
        var sim = Cluster(5, 5, o => o.Link = LinkConfig.Reliable with { MaxDelayMs = 20, DuplicateProbability = 0.05 });
        var leader = ElectedLeader(sim);
        ProposeAcknowledged(sim, 10, 1);
        var gone = sim.Nodes.Where(n => n.Id != leader.Id).Select(n => n.Id).TakeLast(2).ToArray();
        sim.Isolate(gone[0]); // the first one to go cannot hear of its removal until it is reconnected

        ChangeUntil(sim, s => s.RemoveMember(gone[0]), c => !c.IsMember(gone[0]), $"n{gone[0]} removed");
        ProposeAcknowledged(sim, 5, 100);
        ChangeUntil(sim, s => s.RemoveMember(gone[1]), c => !c.IsMember(gone[1]), $"n{gone[1]} removed");
        var removedAt = sim.Leader!.Term;
        ProposeAcknowledged(sim, 5, 200);

        // The partitioned node comes back; it must not disrupt the three that remain.
        sim.Heal();
        sim.RunFor(3_000);
        ProposeAcknowledged(sim, 5, 300);
        Voters(sim).Length.ShouldBe(3);
        Voters(sim).ShouldNotContain(gone[0]);
        Voters(sim).ShouldNotContain(gone[1]);
        sim.Checker.LeaderOfTerm.Where(kv => kv.Key >= removedAt).Select(kv => kv.Value).ShouldNotContain(gone[0]);
        sim.Checker.LeaderOfTerm.Where(kv => kv.Key >= removedAt).Select(kv => kv.Value).ShouldNotContain(gone[1]);
        foreach (var id in gone) sim.Decommission(id);
        AwaitConverged(sim);
    }

    [Fact]
    public void RemoveLeader_OnALossyNetwork_HandsOverAndNeverLeadsAgain()
    {
        var sim = Cluster(3, 3, o => o.Link = LinkConfig.Reliable with { LossProbability = 0.1, MaxDelayMs = 10 });
        var leader = ElectedLeader(sim);
        ProposeAcknowledged(sim, 10, 1);

        var removal = sim.RemoveMember(leader.Id);
        removal.IsAccepted.ShouldBeTrue(removal.ToString());
        sim.Await(() => removal.Completion.IsCompleted, Timeout, "the leader's removal answered");
        sim.Await(() => sim.Leader is { } l && l.Id != leader.Id && !l.Raft!.Configuration.IsMember(leader.Id), Timeout, "a new leader without the old one");
        var term = sim.Leader!.Term;
        leader.IsLeader.ShouldBeFalse();

        ProposeAcknowledged(sim, 10, 100);
        sim.RunFor(2_000);
        sim.Checker.LeaderOfTerm.Where(kv => kv.Key >= term).Select(kv => kv.Value).ShouldNotContain(leader.Id);
        Voters(sim).ShouldNotContain(leader.Id);
        Voters(sim).Length.ShouldBe(2);
        sim.Decommission(leader.Id);
        AwaitConverged(sim);
    }

    [Fact]
    public void ReplaceWipedNode_WhileTheLeaderCrashesAndRestarts()
    {
        var sim = Cluster(3, 4, o => o.Link = LinkConfig.Reliable with { MaxDelayMs = 10 });
        var leader = ElectedLeader(sim);
        ProposeAcknowledged(sim, 20, 1);
        var wiped = sim.Nodes.First(n => n.Id <= 3 && n.Id != leader.Id).Id;
        var held = sim.Checker.AppliedBy(wiped).Count;
        sim.Wipe(wiped);
        Should.Throw<InvalidOperationException>(() => sim.Restart(wiped));

        ChangeUntil(sim, s => s.AddLearner(4), c => c.IsMember(4), "n4 added");
        // The leader crashes while n4 catches up; it comes back from its disk.
        var crashed = sim.Leader!.Id;
        sim.Crash(crashed);
        sim.RunFor(300);
        sim.Restart(crashed);
        ChangeUntil(sim, s => s.PromoteLearner(4), c => c.IsVoter(4), "n4 promoted");
        ChangeUntil(sim, s => s.RemoveMember(wiped), c => !c.IsMember(wiped), $"wiped n{wiped} removed");
        ProposeAcknowledged(sim, 10, 100);

        AwaitConverged(sim);
        Voters(sim).ShouldNotContain(wiped);
        Voters(sim).ShouldContain(4UL);
        Voters(sim).Length.ShouldBe(3);
        sim.Node(4).SnapshotsInstalled.ShouldBeGreaterThan(0);
        // The replacement holds everything the wiped node had applied, and more (the checker compared every entry).
        sim.Node(4).Applied.Count.ShouldBeGreaterThan(held);
    }

    [Fact]
    public void Refusals_ChangeInFlight_AndMisuse()
    {
        var sim = Cluster(3, 5);
        var leader = ElectedLeader(sim);
        var follower = sim.Nodes.First(n => n.Id <= 3 && n.Id != leader.Id);

        // Nothing the leader sends arrives: its change cannot commit, so a second one is refused.
        sim.Intercept<AppendEntries>(InterceptPoint.BeforeSend, _ => InterceptDecision.Hold, from: leader.Id);
        var first = sim.AddLearner(4);
        first.IsAccepted.ShouldBeTrue(first.ToString());
        ShouldRefuse(sim.AddLearner(5), MembershipStatus.ChangeInProgress);
        ShouldRefuse(sim.RemoveMember(follower.Id), MembershipStatus.ChangeInProgress);
        ShouldRefuse(sim.PromoteLearner(4), MembershipStatus.ChangeInProgress);
        sim.ClearInterceptors();
        sim.ReleaseAll();
        sim.Await(() => first.IsCommitted, Timeout, "the first change committed");

        ShouldRefuse(sim.AddLearner(4), MembershipStatus.AlreadyMember);
        ShouldRefuse(sim.RemoveMember(42), MembershipStatus.UnknownMember);
        ShouldRefuse(sim.PromoteLearner(42), MembershipStatus.UnknownMember);
        ShouldRefuse(sim.AddLearner(0), MembershipStatus.InvalidId);
        ShouldRefuse(sim.PromoteLearner(leader.Id), MembershipStatus.NotLearner);
        var notLeader = sim.RemoveMember(4, via: follower.Id);
        ShouldRefuse(notLeader, MembershipStatus.NotLeader);
        notLeader.Result.LeaderHint.ShouldBe(leader.Id);

        // Down to one voter, which cannot be removed.
        foreach (var id in new ulong[] { 4 }.Concat(sim.Nodes.Where(n => n.Id <= 3 && n.Id != leader.Id).Select(n => n.Id)))
            ChangeUntil(sim, s => s.RemoveMember(id), c => !c.IsMember(id), $"n{id} removed");
        Voters(sim).ShouldBe([leader.Id]);
        ShouldRefuse(sim.RemoveMember(leader.Id), MembershipStatus.LastVoter);
        ProposeAcknowledged(sim, 3, 1);
    }

    private static void ShouldRefuse(SimMembershipChange change, MembershipStatus status)
    {
        change.Result.Status.ShouldBe(status, change.ToString());
        change.Completion.IsFaulted.ShouldBeTrue();
        var error = change.Completion.Exception!.InnerException.ShouldBeOfType<MembershipChangeException>();
        error.Status.ShouldBe(status);
        error.OutcomeUnknown.ShouldBeFalse();
    }
}

using RaftMQ.Simulation.Tests.Support;

namespace RaftMQ.Simulation.Tests;

/// <summary>
/// Quiescence on the production driver, in virtual time: a quiet cluster's traffic, a proposal to it, and how long a
/// new leader takes when the quiet leader's process dies (its peers' links go down) or when it is cut off silently.
/// Ticks are 10 ms, heartbeats 2 ticks, election timeouts 10 ticks; quiet heartbeats 20 ticks, so the quiet timeout is
/// 100 ticks (1 to 2 s).
/// </summary>
public sealed class QuiescenceScriptedTests
{
    private const int NormalTimeoutMaxMs = 2 * 10 * 10;
    private const int QuietTimeoutMs = 100 * 10;

    private SimCluster Cluster([System.Runtime.CompilerServices.CallerMemberName] string test = "") =>
        Sim.Cluster(GetType(), 3, 42, o =>
        {
            o.Link = LinkConfig.Reliable with { MinDelayMs = 1, MaxDelayMs = 1 };
            o.QuiescedHeartbeatTicks = 20;
        }, test);

    private static SimNode QuietLeader(SimCluster sim)
    {
        sim.Await(() => sim.Leader is { } l && l.CommitIndex >= 1 && sim.Nodes.All(n => n.Raft!.Leader == l.Id), 5_000, "a settled leader");
        sim.Await(() => sim.Nodes.All(n => n.Raft!.Quiesced), 2_000, "the idle cluster quiets");
        return sim.Leader!;
    }

    [Fact]
    public void Quiet_IdleClusterSendsATenthOfTheMessages_AndAProposalCommitsAtOnce()
    {
        var sim = Cluster();
        var leader = QuietLeader(sim);
        var before = sim.Stats.Sent;
        sim.RunFor(4_000);
        // At the normal pace: 2 followers x 200 heartbeats (every 20 ms) x 2 (heartbeat and answer) = 800 messages.
        (sim.Stats.Sent - before).ShouldBeInRange(60, 100, "one heartbeat and its answer per follower every 200 ms");
        sim.Leader.ShouldBe(leader);
        sim.Nodes.ShouldAllBe(n => n.Raft!.Quiesced);

        var at = sim.Now;
        var p = sim.Propose(Sim.Cmd(1));
        sim.Await(() => p.IsAcknowledged, 1_000, "the proposal commits");
        (sim.Now - at).ShouldBeLessThan(20, "a quiet leader replicates at once");
        sim.Nodes.ShouldAllBe(n => !n.Raft!.Quiesced);
    }

    [Fact]
    public void Quiet_LeaderCrashed_TheLinksGoDown_ANewLeaderWithinTheNormalTimeout()
    {
        var sim = Cluster();
        var leader = QuietLeader(sim);
        var at = sim.Now;
        sim.Crash(leader.Id);
        sim.Await(() => sim.Leader is { } l && l.Id != leader.Id, 5_000, "a new leader");
        (sim.Now - at).ShouldBeLessThan(NormalTimeoutMaxMs + 50, "as fast as a busy cluster's failover, not the quiet timeout");
    }

    [Fact]
    public void Quiet_LeaderCutOffSilently_ANewLeaderAfterTheQuietTimeoutNotBefore()
    {
        var sim = Cluster();
        var leader = QuietLeader(sim);
        var at = sim.Now;
        sim.Isolate(leader.Id);
        sim.RunFor(NormalTimeoutMaxMs + 100);
        sim.Nodes.Where(n => n.Id != leader.Id).ShouldAllBe(n => n.Role == Role.Follower && n.Raft!.Leader == leader.Id);
        sim.Await(() => sim.Nodes.Any(n => n.Id != leader.Id && n.Role == Role.Leader), 10_000, "a new leader");
        (sim.Now - at).ShouldBeLessThan(2 * QuietTimeoutMs + 100, "within the quiet timeout, randomized in [1, 2) s");
        (sim.Now - at).ShouldBeGreaterThanOrEqualTo(QuietTimeoutMs - 200, "not at the normal timeout");
    }
}

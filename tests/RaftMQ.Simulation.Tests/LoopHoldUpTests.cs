using RaftMQ.Raft;
using RaftMQ.Simulation.Tests.Support;

namespace RaftMQ.Simulation.Tests;

/// <summary>
/// A node whose loop is held up (a long fsync, a GC pause) for several election timeouts while its leader goes on
/// sending does not, once it handles what waited in its inbox and catches up the ticks, disturb the cluster.
/// </summary>
public sealed class LoopHoldUpTests
{
    [Theory]
    [InlineData(5UL)]
    [InlineData(6UL)]
    [InlineData(7UL)]
    public void A_follower_held_up_for_several_election_timeouts_does_not_campaign_when_it_resumes(ulong seed)
    {
        var sim = Sim.Cluster(GetType(), 3, seed, o => o.Link = LinkConfig.Reliable with { MinDelayMs = 1, MaxDelayMs = 3 });
        sim.Await(() => sim.Leader is { CommitIndex: > 0 }, 5_000, "leader");
        var leader = sim.Leader!;
        var term = leader.Raft!.Term;
        var follower = sim.Nodes.First(n => n.Id != leader.Id);
        var campaigns = sim.Stats.SentOf<RequestVote>();

        // Five election timeouts (10 ticks of 10 ms); off the tick grid, so the queued heartbeats come first.
        sim.HoldUp(follower.Id, 5 * 10 * 10 + 3);
        sim.RunFor(5 * 10 * 10 + 300);

        sim.Stats.SentOf<RequestVote>().ShouldBe(campaigns, "a node campaigned (a pre-vote is a RequestVote too)");
        sim.Leader.ShouldBe(leader);
        leader.Raft!.Term.ShouldBe(term);
    }
}

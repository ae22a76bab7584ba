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

/// <summary>
/// A Ready's fsync runs off the node's loop: while every node's fsyncs take up to three election timeouts, the loops
/// still answer heartbeats and the leader keeps its quorum, so a steady stream of proposals commits under one leader.
/// </summary>
public sealed class SlowFsyncTests
{
    [Theory]
    [InlineData(11UL)]
    [InlineData(12UL)]
    [InlineData(13UL)]
    public void Fsyncs_slower_than_an_election_timeout_cost_no_leadership(ulong seed)
    {
        var sim = Sim.Cluster(GetType(), 3, seed, o =>
        {
            o.Link = LinkConfig.Reliable with { MinDelayMs = 1, MaxDelayMs = 3 };
            o.PreVote = true;
            o.CheckQuorum = true;
        });
        sim.Await(() => sim.Leader is { CommitIndex: > 0 } l && sim.Nodes.All(n => n.Raft?.Leader == l.Id), 5_000, "a settled leader");
        var leader = sim.Leader!;
        var term = leader.Raft!.Term;
        var campaigns = sim.Stats.SentOf<RequestVote>();
        var electionMs = sim.Options.ElectionTicks * sim.Options.TickMs;
        sim.Options.SlowFsyncProbability = 1;
        sim.Options.SlowFsyncMaxMs = (int)(3 * electionMs);

        var proposals = new List<ClientProposal>();
        for (var i = 0; i < 40; i++)
        {
            proposals.Add(sim.Propose(Sim.Cmd(i), leader.Id));
            sim.RunFor(electionMs / 2);
        }
        sim.Await(() => proposals.All(p => p.IsAcknowledged), 60_000, "every proposal acknowledged");
        sim.Await(() => sim.Nodes.All(n => n.AppliedThisRun == leader.Raft!.LastIndex), 60_000, "every node applied the whole log");

        sim.Stats.SentOf<RequestVote>().ShouldBe(campaigns, "a node campaigned (a pre-vote is a RequestVote too)");
        sim.Leader.ShouldBe(leader);
        leader.Raft!.Term.ShouldBe(term);
        sim.CheckAcknowledgedAppliedExactlyOnce();
    }
}

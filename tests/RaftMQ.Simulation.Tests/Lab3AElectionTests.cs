using RaftMQ.Simulation.Tests.Support;

namespace RaftMQ.Simulation.Tests;

/// <summary>The 6.5840 Raft lab, part 3A (leader election), on the simulator.</summary>
public sealed class Lab3AElectionTests
{
    [Fact]
    public void InitialElection()
    {
        foreach (var seed in Sim.Seeds(3001))
        {
            var cfg = new LabCluster(GetType(), 3, seed);
            cfg.CheckOneLeader();
            cfg.Sleep(50);
            var term1 = cfg.CheckTerms();
            cfg.Sim.Expect(term1 >= 1, $"term is {term1}, but a leader was elected");

            // With no failures the leader keeps its term: pre-vote and check-quorum leave no reason to campaign.
            cfg.Sleep(2 * LabCluster.ElectionTimeoutMs);
            var term2 = cfg.CheckTerms();
            cfg.Sim.Expect(term2 == term1, $"term changed from {term1} to {term2} even though there were no failures");
            cfg.CheckOneLeader();
        }
    }

    [Fact]
    public void ReElection()
    {
        foreach (var seed in Sim.Seeds(3002))
        {
            var cfg = new LabCluster(GetType(), 3, seed);
            var leader1 = cfg.CheckOneLeader();

            // If the leader disconnects, a new one should be elected.
            cfg.Disconnect(leader1);
            var leader2 = cfg.CheckOneLeader();
            cfg.Sim.Expect(leader2 != leader1, "the disconnected leader is still the leader");

            // The old leader rejoining should not disturb the new one.
            cfg.Connect(leader1);
            var leader3 = cfg.CheckOneLeader();
            cfg.Sim.Expect(leader3 == leader2, $"rejoining n{leader1} deposed n{leader2}");

            // No quorum: no leader.
            cfg.Disconnect(leader3);
            cfg.Disconnect(cfg.Next(leader3, 1));
            cfg.Sleep(2 * LabCluster.ElectionTimeoutMs);
            cfg.CheckNoLeader();

            // A quorum arises: it elects a leader.
            cfg.Connect(cfg.Next(leader3, 1));
            cfg.CheckOneLeader();

            // Rejoining the last node should not prevent a leader from existing.
            cfg.Connect(leader3);
            cfg.CheckOneLeader();
        }
    }

    [Fact]
    public void ManyElections()
    {
        foreach (var seed in Sim.Seeds(3003))
        {
            var cfg = new LabCluster(GetType(), 7, seed);
            cfg.CheckOneLeader();
            for (int iter = 0; iter < 10; iter++)
            {
                // Disconnect three nodes (maybe fewer, when the draws repeat); four or more keep a quorum.
                var i1 = (ulong)cfg.Random.Next(7) + 1;
                var i2 = (ulong)cfg.Random.Next(7) + 1;
                var i3 = (ulong)cfg.Random.Next(7) + 1;
                cfg.Disconnect(i1);
                cfg.Disconnect(i2);
                cfg.Disconnect(i3);
                cfg.CheckOneLeader();
                cfg.Connect(i1);
                cfg.Connect(i2);
                cfg.Connect(i3);
            }
            cfg.CheckOneLeader();
            cfg.Sim.Expect(cfg.Sim.Checker.LeaderOfTerm.Count >= 2, "expected the disconnections to force new elections");
        }
    }
}

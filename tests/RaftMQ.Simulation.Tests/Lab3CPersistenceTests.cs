using RaftMQ.Simulation.Tests.Support;

namespace RaftMQ.Simulation.Tests;

/// <summary>The 6.5840 Raft lab, part 3C (persistence, Figure 8, churn), on the simulator.</summary>
public sealed class Lab3CPersistenceTests
{
    [Fact]
    public void Persist1()
    {
        foreach (var seed in Sim.Seeds(3201))
        {
            var cfg = new LabCluster(GetType(), 3, seed);
            cfg.One(11, 3, retry: true);

            // Crash and restart all.
            foreach (var id in cfg.Ids) cfg.Start(id);
            foreach (var id in cfg.Ids) cfg.Connect(id);
            cfg.One(12, 3, retry: true);

            var leader1 = cfg.CheckOneLeader();
            cfg.Start(leader1);
            cfg.Connect(leader1);
            cfg.One(13, 3, retry: true);

            var leader2 = cfg.CheckOneLeader();
            cfg.Disconnect(leader2);
            var index = cfg.One(14, 2, retry: true);
            cfg.Start(leader2);
            cfg.Connect(leader2);
            cfg.Wait(index, 3, null);

            var i3 = cfg.Next(cfg.CheckOneLeader(), 1);
            cfg.Disconnect(i3);
            cfg.One(15, 2, retry: true);
            cfg.Start(i3);
            cfg.Connect(i3);
            cfg.One(16, 3, retry: true);
        }
    }

    [Fact]
    public void Persist2()
    {
        foreach (var seed in Sim.Seeds(3202))
        {
            var cfg = new LabCluster(GetType(), 5, seed);
            var index = 1;
            for (int iters = 0; iters < 5; iters++)
            {
                cfg.One(10 + index++, 5, retry: true);
                var leader1 = cfg.CheckOneLeader();
                cfg.Disconnect(cfg.Next(leader1, 1));
                cfg.Disconnect(cfg.Next(leader1, 2));
                cfg.One(10 + index++, 3, retry: true);

                cfg.Disconnect(leader1);
                cfg.Disconnect(cfg.Next(leader1, 3));
                cfg.Disconnect(cfg.Next(leader1, 4));
                cfg.Start(cfg.Next(leader1, 1));
                cfg.Start(cfg.Next(leader1, 2));
                cfg.Connect(cfg.Next(leader1, 1));
                cfg.Connect(cfg.Next(leader1, 2));
                cfg.Sleep(LabCluster.ElectionTimeoutMs);

                cfg.Start(cfg.Next(leader1, 3));
                cfg.Connect(cfg.Next(leader1, 3));
                cfg.One(10 + index++, 3, retry: true);

                cfg.Connect(cfg.Next(leader1, 4));
                cfg.Connect(leader1);
            }
            cfg.One(1000, 5, retry: true);
        }
    }

    [Fact]
    public void Persist3()
    {
        foreach (var seed in Sim.Seeds(3203))
        {
            var cfg = new LabCluster(GetType(), 3, seed);
            cfg.One(101, 3, retry: true);
            var leader = cfg.CheckOneLeader();
            cfg.Disconnect(cfg.Next(leader, 2));
            cfg.One(102, 2, retry: true);

            // The two that agreed crash; the one that missed 102 comes back with the old leader.
            cfg.Crash(leader);
            cfg.Crash(cfg.Next(leader, 1));
            cfg.Connect(cfg.Next(leader, 2));
            cfg.Start(leader);
            cfg.Connect(leader);
            cfg.One(103, 2, retry: true);

            cfg.Start(cfg.Next(leader, 1));
            cfg.Connect(cfg.Next(leader, 1));
            cfg.One(104, 3, retry: true);
        }
    }

    /// <summary>Leaders crash right after taking proposals, again and again: the Figure 8 hazard, randomized.</summary>
    [Fact]
    public void Figure8()
    {
        foreach (var seed in Sim.Seeds(3204, soakCount: 20))
        {
            var cfg = new LabCluster(GetType(), 5, seed);
            var rnd = cfg.Random;
            cfg.One(rnd.Next(1_000_000), 1, retry: true);
            var up = 5;
            for (int iters = 0; iters < 1000; iters++)
            {
                ulong? leader = null;
                foreach (var id in cfg.Ids)
                    if (cfg.IsUp(id) && cfg.StartCommand(id, rnd.Next(1_000_000)).IsAccepted) leader = id;
                cfg.Sleep(rnd.Next(1000) < 100 ? rnd.Next((int)LabCluster.ElectionTimeoutMs / 2) : rnd.Next(13));
                if (leader is { } l)
                {
                    cfg.Crash(l);
                    up--;
                }
                if (up < 3)
                {
                    var s = (ulong)rnd.Next(5) + 1;
                    if (!cfg.IsUp(s))
                    {
                        cfg.Start(s);
                        cfg.Connect(s);
                        up++;
                    }
                }
            }
            foreach (var id in cfg.Ids)
            {
                if (!cfg.IsUp(id)) cfg.Start(id);
                cfg.Connect(id);
            }
            cfg.One(rnd.Next(1_000_000), 5, retry: true);
            cfg.Sim.Expect(cfg.Sim.Checker.LeaderOfTerm.Count > 50, "expected many leaders to come and go");
        }
    }

    [Fact]
    public void UnreliableAgree()
    {
        foreach (var seed in Sim.Seeds(3205, soakCount: 20))
        {
            var cfg = new LabCluster(GetType(), 5, seed, unreliable: true);
            for (int iter = 1; iter < 50; iter++)
            {
                // Five clients at once; each retries until its command is applied somewhere.
                var proposals = new List<(long Value, ClientProposal Proposal)>();
                for (int j = 0; j < 4; j++) proposals.Add((100 * iter + j, Propose(cfg, 100 * iter + j)));
                proposals.Add((iter, Propose(cfg, iter)));
                foreach (var (value, proposal) in proposals)
                    if (!proposal.IsAcknowledged) cfg.One(value, 1, retry: true);
            }
            cfg.Sim.SetAllLinks(LinkConfig.Reliable);
            cfg.One(100, 5, retry: true);
            cfg.Sim.Expect(cfg.Sim.Stats.Dropped > 100, "the network was meant to be unreliable");
        }
    }

    [Fact]
    public void Figure8Unreliable()
    {
        foreach (var seed in Sim.Seeds(3206, soakCount: 20))
        {
            var cfg = new LabCluster(GetType(), 5, seed, unreliable: true);
            var rnd = cfg.Random;
            cfg.One(rnd.Next(10_000), 1, retry: true);
            var connected = 5;
            for (int iters = 0; iters < 1000; iters++)
            {
                if (iters == 200)
                {
                    // The lab's long reordering: some messages linger for up to two seconds.
                    cfg.Sim.SetAllLinks(LinkConfig.Unreliable with { LongDelayProbability = 0.1 });
                }
                ulong? leader = null;
                foreach (var id in cfg.Ids)
                    if (cfg.StartCommand(id, rnd.Next(10_000)).IsAccepted && cfg.IsConnected(id)) leader = id;
                cfg.Sleep(rnd.Next(1000) < 100 ? rnd.Next((int)LabCluster.ElectionTimeoutMs / 2) : rnd.Next(13));
                if (leader is { } l && rnd.Next(1000) < (int)LabCluster.ElectionTimeoutMs / 2)
                {
                    cfg.Disconnect(l);
                    connected--;
                }
                if (connected < 3)
                {
                    var s = (ulong)rnd.Next(5) + 1;
                    if (!cfg.IsConnected(s))
                    {
                        cfg.Connect(s);
                        connected++;
                    }
                }
            }
            foreach (var id in cfg.Ids) cfg.Connect(id);
            cfg.One(rnd.Next(10_000), 5, retry: true);
        }
    }

    [Fact]
    public void ReliableChurn() => Churn(reliable: true, 3207);

    [Fact]
    public void UnreliableChurn() => Churn(reliable: false, 3208);

    /// <summary>
    /// The lab's churn: three clients keep proposing to random servers while servers are disconnected, crashed and
    /// restarted. Every command a client saw committed must be in the final log, once.
    /// </summary>
    private void Churn(bool reliable, ulong defaultSeed)
    {
        var test = reliable ? nameof(ReliableChurn) : nameof(UnreliableChurn);
        foreach (var seed in Sim.Seeds(defaultSeed, soakCount: 20))
        {
            var cfg = new LabCluster(GetType(), 5, seed, unreliable: !reliable, test: test);
            var rnd = cfg.Random;
            long nextValue = 1;
            for (int iters = 0; iters < 20; iters++)
            {
                if (rnd.Next(1000) < 200) cfg.Disconnect((ulong)rnd.Next(5) + 1);
                if (rnd.Next(1000) < 500)
                {
                    var i = (ulong)rnd.Next(5) + 1;
                    if (!cfg.IsUp(i)) cfg.Start(i);
                    cfg.Connect(i);
                }
                if (rnd.Next(1000) < 200)
                {
                    var i = (ulong)rnd.Next(5) + 1;
                    if (cfg.IsUp(i)) cfg.Crash(i);
                }

                // Clients: every few milliseconds each of three clients proposes to a random server.
                var until = cfg.Sim.Now + LabCluster.ElectionTimeoutMs * 7 / 10;
                while (cfg.Sim.Now < until)
                {
                    for (int c = 0; c < 3; c++) cfg.StartCommand((ulong)rnd.Next(5) + 1, nextValue++);
                    cfg.Sleep(1 + rnd.Next(20));
                }
            }
            cfg.Sim.SetAllLinks(LinkConfig.Reliable);
            foreach (var id in cfg.Ids)
            {
                if (!cfg.IsUp(id)) cfg.Start(id);
                cfg.Connect(id);
            }
            var last = cfg.One(-1, 5, retry: true);
            cfg.Sim.Await(() => cfg.NCommitted(last).Count == 5, 10_000, "all servers applied the final command");
            cfg.Sim.CheckAcknowledgedAppliedExactlyOnce();
            var acknowledged = cfg.Sim.Proposals.Count(p => p.IsAcknowledged);
            cfg.Sim.Expect(acknowledged > 50, $"only {acknowledged} client commands were acknowledged during churn");
        }
    }

    private static ClientProposal Propose(LabCluster cfg, long value)
    {
        var leader = cfg.ConnectedLeader();
        return cfg.Sim.Propose(Sim.Cmd(value), leader);
    }
}

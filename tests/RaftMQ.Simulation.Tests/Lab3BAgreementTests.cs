using RaftMQ.Simulation.Tests.Support;

namespace RaftMQ.Simulation.Tests;

/// <summary>The 6.5840 Raft lab, part 3B (log agreement), on the simulator.</summary>
public sealed class Lab3BAgreementTests
{
    [Fact]
    public void BasicAgree()
    {
        foreach (var seed in Sim.Seeds(3101))
        {
            var cfg = new LabCluster(GetType(), 5, seed);
            var leader = cfg.CheckOneLeader();
            for (int iter = 1; iter <= 3; iter++)
            {
                var next = cfg.Sim.Node(leader).Raft!.LastIndex + 1;
                cfg.Sim.Expect(cfg.NCommitted(next).Count == 0, $"some have committed index {next} before it was proposed");
                var index = cfg.One(iter * 100, 5);
                cfg.Sim.Expect(index == next, $"got index {index} but expected {next}");
            }
        }
    }

    [Fact]
    public void RPCBytes()
    {
        foreach (var seed in Sim.Seeds(3102))
        {
            var cfg = new LabCluster(GetType(), 3, seed);
            cfg.One(99, 3);
            var bytes0 = cfg.Sim.Stats.BytesSent;
            long sent = 0;
            for (int i = 0; i < 10; i++)
            {
                var cmd = new byte[5000];
                for (int k = 0; k < cmd.Length; k++) cmd[k] = (byte)cfg.Random.Next(256);
                var leader = cfg.CheckOneLeader();
                var p = cfg.Sim.Propose(cmd, leader);
                cfg.Sim.Await(() => p.IsAcknowledged && cfg.NCommitted(p.Result.Index).Count == 3, 2_000, "5000-byte command committed on all");
                sent += cmd.Length;
            }
            // Each command should cross each follower link about once; the slack covers heartbeats and headers.
            var got = cfg.Sim.Stats.BytesSent - bytes0;
            var expected = (cfg.N - 1) * sent + 50_000;
            cfg.Sim.Expect(got <= expected, $"too many RPC bytes; got {got}, expected at most {expected}");
        }
    }

    [Fact]
    public void FollowerFailure()
    {
        foreach (var seed in Sim.Seeds(3103))
        {
            var cfg = new LabCluster(GetType(), 3, seed);
            cfg.One(101, 3);

            // Disconnect one follower; the other two still agree.
            var leader1 = cfg.CheckOneLeader();
            cfg.Disconnect(cfg.Next(leader1, 1));
            cfg.One(102, 2);
            cfg.Sleep(LabCluster.ElectionTimeoutMs);
            cfg.One(103, 2);

            // Disconnect the remaining follower: nothing can commit.
            var leader2 = cfg.CheckOneLeader();
            cfg.Disconnect(cfg.Next(leader2, 1));
            cfg.Disconnect(cfg.Next(leader2, 2));
            var result = cfg.StartCommand(leader2, 104);
            cfg.Sim.Expect(result.IsAccepted, "leader rejected a proposal");
            cfg.Sleep(2 * LabCluster.ElectionTimeoutMs);
            cfg.Sim.Expect(cfg.NCommitted(result.Index).Count == 0, "a command committed without a majority");
        }
    }

    [Fact]
    public void LeaderFailure()
    {
        foreach (var seed in Sim.Seeds(3104))
        {
            var cfg = new LabCluster(GetType(), 3, seed);
            cfg.One(101, 3);

            // Disconnect the leader: the followers elect another and keep agreeing.
            var leader1 = cfg.CheckOneLeader();
            cfg.Disconnect(leader1);
            cfg.One(102, 2);
            cfg.Sleep(LabCluster.ElectionTimeoutMs);
            cfg.One(103, 2);

            // Disconnect the new leader too: one server left, nothing commits.
            var leader2 = cfg.CheckOneLeader();
            cfg.Disconnect(leader2);
            var before = cfg.Ids.Max(id => cfg.Sim.Node(id).Applied.Count);
            foreach (var id in cfg.Ids) cfg.StartCommand(id, 104);
            cfg.Sleep(2 * LabCluster.ElectionTimeoutMs);
            cfg.Sim.Expect(cfg.NCommitted((ulong)before + 1).Count == 0, "a command committed without a majority");
        }
    }

    [Fact]
    public void FailAgree()
    {
        foreach (var seed in Sim.Seeds(3105))
        {
            var cfg = new LabCluster(GetType(), 3, seed);
            cfg.One(101, 3);

            // A follower disconnects; the rest agree.
            var leader = cfg.CheckOneLeader();
            cfg.Disconnect(cfg.Next(leader, 1));
            cfg.One(102, 2);
            cfg.One(103, 2);
            cfg.Sleep(LabCluster.ElectionTimeoutMs);
            cfg.One(104, 2);
            cfg.One(105, 2);

            // It comes back and catches up.
            cfg.Connect(cfg.Next(leader, 1));
            cfg.One(106, 3);
            cfg.Sleep(LabCluster.ElectionTimeoutMs);
            cfg.One(107, 3);
        }
    }

    [Fact]
    public void FailNoAgree()
    {
        foreach (var seed in Sim.Seeds(3106))
        {
            var cfg = new LabCluster(GetType(), 5, seed);
            cfg.One(10, 5);

            // Three of five disconnect: no agreement.
            var leader = cfg.CheckOneLeader();
            cfg.Disconnect(cfg.Next(leader, 1));
            cfg.Disconnect(cfg.Next(leader, 2));
            cfg.Disconnect(cfg.Next(leader, 3));
            var result = cfg.StartCommand(leader, 20);
            cfg.Sim.Expect(result.IsAccepted, "leader rejected a proposal");
            cfg.Sleep(2 * LabCluster.ElectionTimeoutMs);
            cfg.Sim.Expect(cfg.NCommitted(result.Index).Count == 0, $"{cfg.NCommitted(result.Index).Count} committed but no majority");

            // Repair: a leader (maybe the old one, maybe new) takes proposals again at about the same place.
            cfg.Connect(cfg.Next(leader, 1));
            cfg.Connect(cfg.Next(leader, 2));
            cfg.Connect(cfg.Next(leader, 3));
            var leader2 = cfg.CheckOneLeader();
            var result2 = cfg.StartCommand(leader2, 30);
            cfg.Sim.Expect(result2.IsAccepted, "the new leader rejected a proposal");
            cfg.Sim.Expect(result2.Index >= result.Index && result2.Index <= result.Index + 2, $"unexpected index {result2.Index}");
            cfg.One(1000, 5, retry: true);
        }
    }

    [Fact]
    public void ConcurrentStarts()
    {
        foreach (var seed in Sim.Seeds(3107))
        {
            var cfg = new LabCluster(GetType(), 3, seed);
            var leader = cfg.CheckOneLeader();
            cfg.One(1, 3);
            var term = cfg.Sim.Node(leader).Term;

            // Five clients propose at the same virtual instant.
            var proposals = Enumerable.Range(0, 5).Select(i => cfg.Sim.Propose(Sim.Cmd(100 + i), leader)).ToList();
            cfg.Sim.Expect(proposals.All(p => p.Result.IsAccepted && p.Result.Term == term), "a concurrent proposal was refused");
            cfg.Sim.Expect(proposals.Select(p => p.Result.Index).Distinct().Count() == 5, "two proposals got the same index");
            cfg.Sim.Await(
                () => proposals.All(p => p.IsAcknowledged && cfg.NCommitted(p.Result.Index).Count == 3), 2_000,
                "all concurrent proposals applied on every server");
            cfg.Sim.Expect(cfg.Sim.Node(leader).Term == term, "term changed without failures");
        }
    }

    [Fact]
    public void Rejoin()
    {
        foreach (var seed in Sim.Seeds(3108))
        {
            var cfg = new LabCluster(GetType(), 3, seed);
            cfg.One(101, 3, retry: true);

            // The leader is partitioned and takes proposals that can never commit.
            var leader1 = cfg.CheckOneLeader();
            cfg.Disconnect(leader1);
            cfg.StartCommand(leader1, 102);
            cfg.StartCommand(leader1, 103);
            cfg.StartCommand(leader1, 104);

            // The others elect a new leader and commit.
            cfg.One(103, 2, retry: true);
            var leader2 = cfg.CheckOneLeader();
            cfg.Disconnect(leader2);

            // The old leader rejoins: its uncommitted entries must give way.
            cfg.Connect(leader1);
            cfg.One(104, 2, retry: true);

            cfg.Connect(leader2);
            cfg.One(105, 3, retry: true);
        }
    }

    [Fact]
    public void Backup()
    {
        foreach (var seed in Sim.Seeds(3109))
        {
            var cfg = new LabCluster(GetType(), 5, seed);
            var rnd = cfg.Random;
            cfg.One(rnd.Next(1_000_000), 5);

            // The leader and one follower are cut off and collect 50 entries that cannot commit.
            var leader1 = cfg.CheckOneLeader();
            cfg.Disconnect(cfg.Next(leader1, 2));
            cfg.Disconnect(cfg.Next(leader1, 3));
            cfg.Disconnect(cfg.Next(leader1, 4));
            for (int i = 0; i < 50; i++) cfg.StartCommand(leader1, rnd.Next(1_000_000));
            cfg.Sleep(LabCluster.ElectionTimeoutMs / 2);
            cfg.Disconnect(leader1);
            cfg.Disconnect(cfg.Next(leader1, 1));

            // The other three commit 50 entries.
            cfg.Connect(cfg.Next(leader1, 2));
            cfg.Connect(cfg.Next(leader1, 3));
            cfg.Connect(cfg.Next(leader1, 4));
            for (int i = 0; i < 50; i++) cfg.One(rnd.Next(1_000_000), 3, retry: true);

            // Their leader and one follower are cut off and collect 50 more uncommittable entries.
            var leader2 = cfg.CheckOneLeader();
            var other = cfg.Next(leader1, 2);
            if (other == leader2) other = cfg.Next(leader2, 1);
            cfg.Disconnect(other);
            for (int i = 0; i < 50; i++) cfg.StartCommand(leader2, rnd.Next(1_000_000));
            cfg.Sleep(LabCluster.ElectionTimeoutMs / 2);

            // The original leader's group comes back (with 50 divergent entries) and must catch up from `other`.
            foreach (var id in cfg.Ids) cfg.Disconnect(id);
            cfg.Connect(leader1);
            cfg.Connect(cfg.Next(leader1, 1));
            cfg.Connect(other);
            var rejectionsBefore = cfg.Sim.Stats.AppendRejectionsSent;
            var appendsBefore = cfg.Sim.Stats.SentOf<AppendEntries>();
            for (int i = 0; i < 50; i++) cfg.One(rnd.Next(1_000_000), 3, retry: true);

            // Everyone comes back: two nodes hold 50 divergent entries of leader2's term.
            foreach (var id in cfg.Ids) cfg.Connect(id);
            cfg.One(rnd.Next(1_000_000), 5, retry: true);

            // Fast backtracking skips a whole divergent term per round trip: with over 100 divergent entries
            // to undo on four followers, a handful of rejections must do.
            var rejections = cfg.Sim.Stats.AppendRejectionsSent - rejectionsBefore;
            cfg.Sim.Expect(rejections <= 20, $"{rejections} AppendEntries rejections to back up over 100+ divergent entries");
            cfg.Sim.Expect(cfg.Sim.Stats.SentOf<AppendEntries>() - appendsBefore < 2_000, "too many AppendEntries");
        }
    }

    [Fact]
    public void Count()
    {
        foreach (var seed in Sim.Seeds(3110))
        {
            // The lab's heartbeat budget: at most ten per second, so an idle second costs at most 3 * 20 RPCs.
            var cfg = new LabCluster(GetType(), 3, seed, configure: o =>
            {
                o.HeartbeatTicks = 10;
                o.ElectionTicks = 30;
            });
            cfg.CheckOneLeader();
            var total1 = cfg.Sim.Stats.RequestsSent;
            cfg.Sim.Expect(total1 is > 0 and <= 30, $"too many or too few RPCs ({total1}) to elect the initial leader");

            var leader = cfg.CheckOneLeader();
            var before = cfg.Sim.Stats.RequestsSent;
            var term = cfg.Sim.Node(leader).Term;
            var first = cfg.Sim.Propose(Sim.Cmd(1), leader);
            cfg.Sim.Expect(first.Result.IsAccepted, "leader refused a proposal");
            var proposals = new List<ClientProposal>();
            const int iters = 10;
            for (int i = 1; i < iters + 2; i++)
            {
                proposals.Add(cfg.Sim.Propose(Sim.Cmd(cfg.Random.Next(1_000_000)), leader));
                cfg.Sim.Expect(proposals[^1].Result.Term == term, "term changed while proposing");
                cfg.Sleep(1);
            }
            cfg.Sim.Await(() => proposals.All(p => p.IsAcknowledged && cfg.NCommitted(p.Result.Index).Count == 3), 2_000, "commands committed");
            var total2 = cfg.Sim.Stats.RequestsSent;
            cfg.Sim.Expect(total2 - before <= (iters + 1 + 3) * 3, $"too many RPCs ({total2 - before}) for {iters} entries");

            cfg.Sleep(LabCluster.ElectionTimeoutMs);
            var total3 = cfg.Sim.Stats.RequestsSent;
            cfg.Sim.Expect(total3 - total2 <= 3 * 20, $"too many RPCs ({total3 - total2}) for 1 second of idleness");
            cfg.Sim.Expect(cfg.Sim.Node(leader).Term == term && cfg.Sim.Node(leader).IsLeader, "leader changed while idle");
        }
    }
}

using RaftMQ.Raft;
using RaftMQ.Runtime;
using RaftMQ.Simulation;
using RaftMQ.StateMachine;
using RaftMQ.StateMachine.Sessions;

namespace BankTeller.Tests;

/// <summary>
/// Several bank clients credit and debit three accounts through the deterministic simulator while the network loses,
/// delays and duplicates messages, partitions come and go and nodes crash. Each node's bank is rebuilt from the
/// entries that node applied (the simulator's record), through the same session layer the server uses. A client
/// whose proposal is lost, unknown or slow resends it with the same session and sequence — so the log holds
/// duplicates, and the session table must apply each command once.
/// </summary>
public sealed class BankSimulationTests
{
    private static readonly string[] AccountNames = ["alice", "bob", "carol"];

    public static IEnumerable<object[]> Seeds()
    {
        if (SimEnvironment.SeedOverride is { } seed)
        {
            yield return [seed];
            yield break;
        }
        var count = SimEnvironment.Soak ? 30 : 3;
        for (int i = 0; i < count; i++) yield return [7_001UL + (ulong)i];
    }

    [Theory]
    [MemberData(nameof(Seeds))]
    public void Concurrent_transfers_under_partitions_and_crashes_keep_the_books_exact(ulong seed)
    {
        var sim = new SimCluster(new SimOptions
        {
            Nodes = 5,
            Seed = seed,
            Link = new LinkConfig { LossProbability = 0.05, MinDelayMs = 1, MaxDelayMs = 15, DuplicateProbability = 0.02 },
            ReplayCommand = $"RAFTMQ_SEED={seed} dotnet test tests/BankTeller.Tests --filter \"FullyQualifiedName~BankSimulationTests\"",
        });
        var random = new Random((int)(seed % int.MaxValue));
        var replicas = sim.Nodes.ToDictionary(n => n.Id, _ => new Replica());
        var clients = Enumerable.Range(0, 4).Select(i => new Client(i)).ToList();
        const int OpsPerClient = 60;

        void Feed()
        {
            foreach (var node in sim.Nodes)
            {
                var replica = replicas[node.Id];
                var applied = node.Applied;
                for (; replica.Fed < applied.Count; replica.Fed++)
                {
                    var e = applied[replica.Fed];
                    if (e.Type != EntryType.Command) continue;
                    var result = replica.Machine.Apply(e.Index, e.Data);
                    replica.Results[e.Index] = result;
                    if (result is BankResult r && replica.Bank.Balance(r.Account) < 0)
                        throw sim.Failure($"n{node.Id}: account {r.Account} is negative after index {e.Index}");
                    if (SessionCommand.TryDecode(e.Data, out var c) && c.Kind == SessionCommandKind.Command)
                        replica.InLog[(c.SessionId, c.Sequence)] = replica.InLog.GetValueOrDefault((c.SessionId, c.Sequence)) + 1;
                }
            }
        }

        void DriveClients(bool newOps)
        {
            foreach (var client in clients)
            {
                if (client.Attempt is { } attempt)
                {
                    if (attempt.IsAcknowledged)
                    {
                        var result = replicas[attempt.Node].Results[attempt.Result.Index];
                        client.Attempt = null;
                        if (client.Session == 0)
                        {
                            client.Session = result.ShouldBeOfType<SessionRegistered>().SessionId;
                        }
                        else
                        {
                            if (result is not BankResult bank) throw sim.Failure($"client {client.Id} got {result} for {client.Current}");
                            client.Completed.Add((client.Current!, bank));
                            client.Current = null;
                        }
                    }
                    else if (attempt.State is ProposalState.Pending && sim.Now - attempt.SubmittedAt < 60)
                    {
                        continue; // still waiting; a short patience makes resends of commands that do commit
                    }
                    else
                    {
                        client.Attempt = null; // refused, lost, unknown or too slow: send it again
                        if (client.Current is not null) client.Resends++;
                    }
                }
                if (client.Session == 0)
                {
                    client.Attempt = sim.Propose(SessionCommand.EncodeRegister(sim.Now));
                    continue;
                }
                if (client.Current is null)
                {
                    if (!newOps || client.Issued == OpsPerClient || sim.Now < client.NextOpAt) continue;
                    client.Issued++;
                    client.NextOpAt = sim.Now + random.Next(0, 200); // think time, so the commands span the faults
                    var account = AccountNames[random.Next(AccountNames.Length)];
                    var amount = random.Next(1, 5_000) / 100m;
                    client.Current = new Op(++client.Sequence, random.Next(3) == 0 ? BankCommand.Credit(account, amount) : BankCommand.Debit(account, amount));
                }
                var op = client.Current;
                client.Attempt = sim.Propose(SessionCommand.EncodeCommand(sim.Now, client.Session, op.Sequence, op.Sequence, op.Command.Encode()));
            }
        }

        // Open the accounts with some money so debits both succeed and get refused.
        sim.RunUntil(() => sim.Leader is not null, 5_000).ShouldBeTrue();
        foreach (var account in AccountNames)
            sim.Propose(SessionCommand.EncodePlain(BankCommand.Credit(account, 100m).Encode()));
        sim.RunFor(200);

        var faultsUntil = sim.Now + 8_000;
        var nextFault = sim.Now + 250;
        var down = new List<ulong>();
        while (sim.Now < faultsUntil)
        {
            if (sim.Now >= nextFault)
            {
                nextFault = sim.Now + random.Next(200, 700);
                switch (random.Next(5))
                {
                    case 0 when down.Count < 2:
                        var victim = (ulong)random.Next(1, 6);
                        if (!down.Contains(victim))
                        {
                            sim.Crash(victim);
                            replicas[victim] = replicas[victim].ThroughSnapshot(); // the restarted node's bank comes from a snapshot
                            down.Add(victim);
                        }
                        break;
                    case 1 when down.Count > 0:
                        sim.Restart(down[0]);
                        down.RemoveAt(0);
                        break;
                    case 2 when sim.Leader is { } leader:
                        sim.Isolate(leader.Id);
                        break;
                    case 3:
                        sim.Partition([1, 2], [3, 4, 5]);
                        break;
                    default:
                        sim.Heal();
                        break;
                }
            }
            sim.RunFor(5);
            Feed();
            DriveClients(newOps: true);
        }

        // Heal everything and let every client finish the command it has (resending until answered).
        sim.Heal();
        foreach (var id in down) sim.Restart(id);
        var finished = sim.RunUntil(
            () =>
            {
                Feed();
                DriveClients(newOps: true);
                return clients.All(c => c.Current is null && c.Attempt is null && c.Issued == OpsPerClient);
            },
            60_000);
        if (!finished) throw sim.Failure("the clients did not finish: " + string.Join("; ", clients.Select(c => c.ToString())));
        // Resends make equal payloads on purpose, so the simulator's unique-payload check does not apply; the session
        // table's counts below do that job.
        var converged = sim.RunUntil(
            () => sim.Leader is { } l && sim.Nodes.All(n => n.Raft is { } r && r.AppliedIndex == l.CommitIndex && r.AppliedIndex == l.Raft!.LastIndex),
            10_000);
        if (!converged) throw sim.Failure("the nodes did not converge");
        Feed();

        // The books: every account holds its opening money plus the acknowledged credits minus the acknowledged debits.
        var expected = AccountNames.ToDictionary(a => a, _ => 100m);
        foreach (var (op, result) in clients.SelectMany(c => c.Completed))
        {
            if (!result.IsOk) continue;
            expected[op.Command.Account] += op.Command.Op == BankOp.Credit ? op.Command.Amount : -op.Command.Amount;
        }
        var duplicates = 0;
        foreach (var node in sim.Nodes)
        {
            var replica = replicas[node.Id];
            foreach (var account in AccountNames)
            {
                if (replica.Bank.Balance(account) != expected[account])
                    throw sim.Failure($"n{node.Id}: {account} holds {replica.Bank.Balance(account)}, acknowledged operations give {expected[account]}");
            }
            duplicates = Math.Max(duplicates, replica.InLog.Values.Count(n => n > 1));
        }
        clients.Sum(c => c.Completed.Count).ShouldBe(clients.Count * OpsPerClient);
        // Some commands really did reach the log twice (so the session table, not luck, kept them single).
        clients.Sum(c => c.Resends).ShouldBeGreaterThan(0);
        duplicates.ShouldBeGreaterThan(0, "no command reached the log twice in this run: the scenario does not exercise resends");
        clients.SelectMany(c => c.Completed).Count(c => !c.Result.IsOk).ShouldBeGreaterThan(0, "no debit was refused: the scenario is too gentle");
    }

    private sealed record Op(ulong Sequence, BankCommand Command);

    private sealed class Client(int id)
    {
        public int Id { get; } = id;

        public ulong Session { get; set; }

        public ulong Sequence { get; set; }

        public int Issued { get; set; }

        public int Resends { get; set; }

        public long NextOpAt { get; set; }

        public Op? Current { get; set; }

        public ClientProposal? Attempt { get; set; }

        public List<(Op Op, BankResult Result)> Completed { get; } = [];

        public override string ToString() => $"client {Id}: session {Session}, issued {Issued}, done {Completed.Count}, current {Current}, attempt {Attempt}";
    }

    /// <summary>One node's bank, behind the session layer, as the node's applied entries build it.</summary>
    private sealed class Replica
    {
        public Replica()
            : this(new BankStateMachine())
        {
        }

        private Replica(BankStateMachine bank)
        {
            Bank = bank;
            Machine = new SessionStateMachine(bank, BankResultCodec.Instance);
        }

        public BankStateMachine Bank { get; }

        public IStateMachine Machine { get; }

        public int Fed { get; set; }

        public Dictionary<ulong, object?> Results { get; } = [];

        public Dictionary<(ulong Session, ulong Sequence), int> InLog { get; } = [];

        /// <summary>A copy made through a snapshot (session table and accounts in one stream), as a restarted node gets.</summary>
        public Replica ThroughSnapshot()
        {
            using var stream = new MemoryStream();
            Machine.WriteSnapshot(stream);
            stream.Position = 0;
            var copy = new Replica();
            copy.Machine.RestoreSnapshot(stream);
            copy.Fed = Fed;
            foreach (var (k, v) in Results) copy.Results[k] = v;
            foreach (var (k, v) in InLog) copy.InLog[k] = v;
            return copy;
        }
    }
}

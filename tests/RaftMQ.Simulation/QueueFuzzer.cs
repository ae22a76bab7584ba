using RaftMQ.Linearizability;
using RaftMQ.Raft;

namespace RaftMQ.Simulation;

/// <summary>What one fuzzed queue schedule did.</summary>
/// <param name="Seed">The schedule's seed; replays it exactly.</param>
/// <param name="Nodes">Cluster size.</param>
/// <param name="Check">The queue-history check of the run (passed, or the run would have failed).</param>
/// <param name="Calls">Client calls recorded.</param>
/// <param name="Unknown">Calls whose outcome the client never learned (answer lost, timed out, or the client crashed).</param>
/// <param name="ConsumerCrashes">Consumers that crashed mid-lease.</param>
/// <param name="Republishes">Publishes sent again with the same ids.</param>
/// <param name="DeadLetters">Dead letters read back at the end.</param>
/// <param name="StaleSettles">Receipts an ack or nack reported stale.</param>
/// <param name="ReceiveAcks">Receives sent carrying acks (one receive-ack command each).</param>
/// <param name="Terms">Terms that had a leader.</param>
/// <param name="Crashes">Nodes crashed.</param>
/// <param name="SnapshotsInstalled">Queue snapshots followers installed from a leader.</param>
/// <param name="History">The clients' history the check passed.</param>
public readonly record struct QueueFuzzOutcome(
    ulong Seed, int Nodes, QueueCheckResult Check, int Calls, int Unknown, int ConsumerCrashes, int Republishes, int DeadLetters,
    int StaleSettles, int ReceiveAcks, int Terms, int Crashes, int SnapshotsInstalled, IReadOnlyList<QueueCall> History);

/// <summary>
/// Random fault schedules against a simulated cluster running the production queue (<see cref="SimApplication.Queue"/>),
/// with <see cref="QueueWorkload"/>'s producers and consumers (crashing mid-lease, acking late, nacking, retrying
/// publishes with the same ids) under the faults of <see cref="Fuzzer"/>: partitions, one-way cuts, loss,
/// duplication, long delays, node crashes and restarts (queue rebuilt from its snapshot and log), leader kills, paused
/// clocks, leadership transfers; a third of the schedules on faulty disks, half of them snapshotting every few entries
/// so followers install queue snapshots. The Raft invariants are checked after every step; at the end the faults stop,
/// the clients drain the topic, every running node must hold the same queue, and the history must pass
/// <see cref="QueueHistoryChecker"/>.
/// </summary>
public static class QueueFuzzer
{
    private static readonly int[] SnapshotEveryChoices = [0, 4, 10, 25];

    /// <summary>Runs the schedule of <paramref name="seed"/>; throws <see cref="SimulationFailedException"/> on any failure.</summary>
    public static QueueFuzzOutcome Run(ulong seed, string? replayCommand)
    {
        var rng = new SplitMix64(seed ^ 0x510E527FADE682D1UL);
        var n = rng.Next(2) == 0 ? 3 : 5;
        var disk = rng.Next(3) == 0
            ? new DiskConfig { LoseUnsyncedOnCrash = true, CrashDuringPersistProbability = 0.005, SyncFailureProbability = 0.002, RestartAfterFaultMs = 50 + rng.Next(500) }
            : DiskConfig.Reliable;
        var electionTicks = 5 + rng.Next(11);
        var link = Fuzzer.RandomLink(rng);
        var tickMs = 5 + rng.Next(11);
        var heartbeatTicks = 1 + rng.Next(Math.Max(1, electionTicks / 3));
        using var sim = new SimCluster(new SimOptions
        {
            Application = SimApplication.Queue,
            Nodes = n,
            Seed = seed,
            TickMs = tickMs,
            ElectionTicks = electionTicks,
            HeartbeatTicks = heartbeatTicks,
            QuiescedHeartbeatTicks = Fuzzer.QuietHeartbeatTicks(seed, heartbeatTicks),
            PreVote = rng.Next(4) != 0,
            CheckQuorum = rng.Next(4) != 0,
            SnapshotEveryEntries = SnapshotEveryChoices[rng.Next(SnapshotEveryChoices.Length)],
            SnapshotRetainEntries = rng.Next(3),
            SnapshotTransferTimeoutMs = 100 + rng.Next(400),
            SnapshotChunkBytes = 1024 << rng.Next(4),
            SnapshotWriteDelayMaxMs = rng.Next(2) == 0 ? 0 : 1 + rng.Next(50),
            MessagesSurviveCrashProbability = rng.Next(2) == 0 ? 0 : 0.5,
            Disk = disk,
            ReplayCommand = replayCommand,
            TraceCapacity = 200,
        });
        // The topic and its groups are set up on a reliable network; the faults start after.
        if (!sim.RunUntil(() => sim.Leader is not null, 10_000)) throw sim.Failure("no leader was elected");
        var workload = new QueueWorkload(sim, rng);
        workload.Setup();
        sim.SetAllLinks(link);

        var crashes = 0;
        var transfers = 0;
        var chaosEnd = sim.Now + 2_000 + rng.Next(3_000);
        while (sim.Now < chaosEnd)
        {
            var until = sim.Now + 5 + rng.Next(60);
            while (sim.Now < until)
            {
                sim.RunFor(5);
                workload.Step();
            }
            Fuzzer.InjectFault(sim, rng, membership: false, () => Fuzzer.RandomNode(rng, n), ref crashes, ref transfers);
        }

        Fuzzer.StopFaults(sim);
        if (!sim.RunUntil(() => Fuzzer.Converged(sim, out _), Fuzzer.ConvergeTimeoutMs))
            throw sim.Failure($"the healed cluster did not converge within {Fuzzer.ConvergeTimeoutMs} virtual ms");
        workload.Drain();
        if (!sim.RunUntil(() => sim.PendingForwards == 0 && Fuzzer.Converged(sim, out _), SimCluster.ForwardTimeoutMs + Fuzzer.ConvergeTimeoutMs))
            throw sim.Failure("the cluster did not converge after the drain");
        CheckSameQueue(sim);

        var check = workload.Check(drained: true);
        if (!check.Ok) throw sim.Failure("queue history: " + check.Describe());
        var calls = workload.History.Calls;
        return new QueueFuzzOutcome(
            seed, n, check, calls.Count, calls.Count(c => c.Outcome is QueueCallOutcome.Unknown or QueueCallOutcome.Pending), workload.ConsumerCrashes,
            workload.Republishes, calls.Count(c => c.Kind == QueueCallKind.DeadLetter), calls.Sum(c => c.Stale.Count), workload.ReceiveAcks,
            sim.Checker.LeaderOfTerm.Count, crashes, sim.Nodes.Sum(x => x.SnapshotsInstalled), calls);
    }

    /// <summary>Every running node, having applied the same log, holds the same topic: offsets, message count and bytes.</summary>
    private static void CheckSameQueue(SimCluster sim)
    {
        var states = sim.Nodes.Where(x => x.Queue is not null)
            .Select(x => (x.Id, x.AppliedThisRun, Offsets: x.Queue!.Offsets(QueueWorkload.Topic), x.Queue.TotalMessages, x.Queue.TotalMessageBytes)).ToList();
        var first = states[0];
        foreach (var s in states)
        {
            if (s.AppliedThisRun != first.AppliedThisRun || s.Offsets != first.Offsets || s.TotalMessages != first.TotalMessages || s.TotalMessageBytes != first.TotalMessageBytes)
                throw sim.Failure($"the nodes' queues differ: {string.Join("; ", states.Select(x => $"n{x.Id} applied {x.AppliedThisRun} offsets {x.Offsets} messages {x.TotalMessages} bytes {x.TotalMessageBytes}"))}");
        }
    }
}

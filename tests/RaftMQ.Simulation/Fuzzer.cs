using System.Buffers.Binary;
using RaftMQ.Raft;

namespace RaftMQ.Simulation;

/// <summary>What one fuzzed schedule did.</summary>
/// <param name="Seed">The schedule's seed; replays it exactly.</param>
/// <param name="Nodes">Cluster size.</param>
/// <param name="Proposals">Proposals made.</param>
/// <param name="Acknowledged">Proposals acknowledged to the client.</param>
/// <param name="Terms">Terms that had a leader.</param>
/// <param name="Crashes">Nodes crashed.</param>
/// <param name="VirtualMs">Virtual time the schedule took, convergence included.</param>
/// <param name="SnapshotsInstalled">Snapshots followers adopted from a leader.</param>
/// <param name="DiskFaults">Nodes stopped by a torn persist or a failed fsync.</param>
/// <param name="ReadsServed">Linearizable reads answered (each checked against the writes acknowledged before it).</param>
/// <param name="ForwardedAcknowledged">Proposals a follower forwarded to its leader that were acknowledged.</param>
/// <param name="TransfersStarted">Leadership transfers a leader accepted.</param>
/// <param name="Membership">What the membership changes of a schedule run with them did (null without).</param>
public readonly record struct FuzzOutcome(
    ulong Seed, int Nodes, int Proposals, int Acknowledged, int Terms, int Crashes, long VirtualMs, int SnapshotsInstalled, int DiskFaults,
    int ReadsServed, int ForwardedAcknowledged, int TransfersStarted, MembershipOutcome? Membership = null);

/// <summary>
/// Random fault schedules against a simulated cluster of production node drivers: partitions (symmetric and
/// one-way), isolation, loss, duplication, reordering, long delays, crashes and restarts (with the messages on the
/// wire surviving into the node's next run in some schedules), leader kills, clock pauses and leadership transfers
/// (to a named node or the most up-to-date one), all while clients
/// propose (entries from a few bytes up to the node's limit, and bursts of large ones; mostly on the leader, a share
/// through followers that forward them to the leader over the faulty network) and read from leaders and followers, and a third of the schedules have slow fsyncs that hold a node's loop up for up to a few hundred
/// milliseconds. The Raft settings are drawn per schedule (pre-vote, check-quorum, election and heartbeat ticks, flow
/// control). Half the schedules snapshot every few entries (so lagging, partitioned and restarted followers get
/// chunked InstallSnapshot), and a third run on faulty disks (power loss at crashes — which loses unsynced term,
/// vote and commit alike — torn writes, failed fsyncs). The invariant checker runs after every step, every read is
/// checked against the writes acknowledged before it, and every granted vote against the node's earlier votes.
/// Then the faults stop, and the cluster must converge: one leader, every node applied everything, and every
/// acknowledged proposal applied exactly once everywhere. With <c>membership: true</c> the schedule also changes the
/// cluster's membership among the faults (Fuzzer.Membership.cs), and converged means every member of the final
/// configuration.
/// </summary>
public static partial class Fuzzer
{
    private static readonly double[] LossChoices = [0, 0, 0.02, 0.1, 0.3];
    private static readonly int[] MaxDelayChoices = [2, 8, 25, 60];
    private static readonly double[] DuplicateChoices = [0, 0, 0.05, 0.2];
    private static readonly double[] LongDelayChoices = [0, 0, 0.01, 0.05];
    private static readonly int[] InflightChoices = [1, 2, 4, 256];
    private static readonly long[] AppendBytesChoices = [1, 100, 1 << 20];
    private static readonly int[] SnapshotEveryChoices = [2, 3, 5, 10];
    private static readonly int[] SnapshotRetainChoices = [0, 0, 1, 5];
    private static readonly double[] TornPersistChoices = [0, 0.005, 0.02];
    private static readonly double[] SyncFailureChoices = [0, 0.002, 0.01];
    private static readonly int[] ElectionTickChoices = [5, 10, 20];
    private static readonly int[] ChunkChoices = [4 * 1024, 64 * 1024, 1024 * 1024];
    private static readonly int[] EntryBytesChoices = [8, 64, 1024, 16 * 1024, SimEntryLimit];

    /// <summary>The largest command the fuzzed nodes accept (their MaxEntryBytes): bursts go up to it.</summary>
    private const int SimEntryLimit = 64 * 1024;

    /// <summary>
    /// Half the runs quiesce (<see cref="RaftOptions.QuiescedHeartbeatTicks"/>, 2 to 10 heartbeats apart), drawn from a
    /// stream of their own so that a seed's other choices are the same either way.
    /// </summary>
    internal static int QuietHeartbeatTicks(ulong seed, int heartbeatTicks)
    {
        var quiet = new SplitMix64(seed ^ 0x2545F4914F6CDD1DUL);
        return quiet.Next(2) == 0 ? 0 : heartbeatTicks * (2 + quiet.Next(9));
    }

    /// <summary>Virtual time the healed cluster gets to converge before the run counts as stuck.</summary>
    public const long ConvergeTimeoutMs = 30_000;

    /// <summary>Runs the schedule of <paramref name="seed"/>; throws <see cref="SimulationFailedException"/> on any failure.</summary>
    public static FuzzOutcome Run(ulong seed, string? replayCommand) => Run(seed, replayCommand, membership: false);

    /// <summary>
    /// Runs the schedule of <paramref name="seed"/>, with membership changes of every kind among the faults when
    /// <paramref name="membership"/> is set (see Fuzzer.Membership.cs; the other choices of a seed stay as they are).
    /// </summary>
    public static FuzzOutcome Run(ulong seed, string? replayCommand, bool membership)
    {
        var rng = new SplitMix64(seed ^ 0x6A09E667F3BCC909UL);
        var n = rng.Next(2) == 0 ? 3 : 5;
        // Small flow-control windows and batches make the lost-append and backtracking paths common.
        var inflight = InflightChoices[rng.Next(InflightChoices.Length)];
        var appendBytes = AppendBytesChoices[rng.Next(AppendBytesChoices.Length)];
        var snapshotEvery = rng.Next(2) == 0 ? SnapshotEveryChoices[rng.Next(SnapshotEveryChoices.Length)] : 0;
        var snapshotRetain = SnapshotRetainChoices[rng.Next(SnapshotRetainChoices.Length)];
        var disk = rng.Next(3) == 0
            ? new DiskConfig
            {
                LoseUnsyncedOnCrash = true,
                CrashDuringPersistProbability = TornPersistChoices[rng.Next(TornPersistChoices.Length)],
                SyncFailureProbability = SyncFailureChoices[rng.Next(SyncFailureChoices.Length)],
                RestartAfterFaultMs = 50 + rng.Next(500),
            }
            : DiskConfig.Reliable;
        var electionTicks = ElectionTickChoices[rng.Next(ElectionTickChoices.Length)];
        var heartbeatTicks = 1 + rng.Next(Math.Max(1, electionTicks / 3));
        var entryBytes = EntryBytesChoices[rng.Next(EntryBytesChoices.Length)];
        // Membership draws come from their own stream, so a seed's other choices are the same with or without them.
        var changes = membership ? new MembershipSchedule(seed) : null;
        var sim = new SimCluster(new SimOptions
        {
            Nodes = n,
            Pool = changes?.PoolFor(n) ?? 0,
            PromoteCaughtUpLearners = changes?.AutoPromote ?? true,
            Seed = seed,
            Link = RandomLink(rng),
            TickMs = 5 + rng.Next(16),
            ElectionTicks = electionTicks,
            HeartbeatTicks = heartbeatTicks,
            QuiescedHeartbeatTicks = QuietHeartbeatTicks(seed, heartbeatTicks),
            PreVote = rng.Next(4) != 0,
            CheckQuorum = rng.Next(4) != 0,
            SnapshotEveryEntries = snapshotEvery,
            SnapshotRetainEntries = snapshotRetain,
            SnapshotTransferTimeoutMs = 100 + rng.Next(400),
            SnapshotChunkBytes = ChunkChoices[rng.Next(ChunkChoices.Length)],
            SnapshotWriteDelayMaxMs = rng.Next(2) == 0 ? 0 : 1 + rng.Next(50),
            MessagesSurviveCrashProbability = rng.Next(2) == 0 ? 0 : 0.5,
            SlowFsyncProbability = rng.Next(3) == 0 ? 0.05 : 0,
            SlowFsyncMaxMs = 20 + rng.Next(300),
            MaxEntryBytes = SimEntryLimit,
            Disk = disk,
            ReplayCommand = replayCommand,
            TraceCapacity = 400,
            ConfigureRaft = o =>
            {
                o.MaxInflightAppends = inflight;
                o.MaxBytesPerAppend = appendBytes;
            },
        });
        var crashes = 0;
        var transfers = 0;
        long value = 0;
        var chaosEnd = 800 + rng.Next(1_700);
        // A random node that has a disk: the nodes 1..n, and with membership changes any joined node not wiped.
        ulong Pick()
        {
            if (changes is null) return RandomNode(rng, n);
            var ids = Live(sim);
            return ids[rng.Next(ids.Count)];
        }
        while (sim.Now < chaosEnd)
        {
            sim.RunFor(5 + rng.Next(60));

            // Client traffic: mostly to the leader, sometimes to a random node (which may refuse), sometimes through
            // a follower that forwards it to the leader it knows; now and then a burst of entries at the size limit.
            var burst = rng.Next(25) == 0;
            for (int k = burst ? 4 + rng.Next(8) : rng.Next(4); k > 0; k--)
            {
                var route = rng.Next(5);
                ulong? target = route <= 1 ? Pick() : null;
                var payload = Payload(++value, burst ? SimEntryLimit : 8 + rng.Next(entryBytes - 7));
                if (route == 1 && target is { } via && sim.Node(via) is { IsUp: true, IsLeader: false }) sim.ProposeThrough(payload, via);
                else sim.Propose(payload, route == 1 ? null : target);
            }

            // Linearizable reads on leaders and followers alike.
            for (int k = rng.Next(3); k > 0; k--)
            {
                var reader = sim.Node(Pick());
                if (reader.IsUp) sim.Read(reader.Id);
            }

            InjectFault(sim, rng, changes is not null, Pick, ref crashes, ref transfers);

            // Membership changes of every kind, interleaved with the faults above.
            changes?.Step(sim);
        }

        // Stop the faults and let the cluster converge.
        StopFaults(sim);
        // Wiped members are removed (their replacements were added meanwhile, or not), and nodes outside the final
        // configuration are shut down, as an operator would.
        changes?.Settle(sim);
        // Converged includes the final leader's own no-op being committed, so its whole log is decided.
        if (!sim.RunUntil(() => Converged(sim, out _), ConvergeTimeoutMs))
            throw sim.Failure($"the healed cluster did not converge within {ConvergeTimeoutMs} virtual ms");
        // A forward whose message or answer was lost is answered at the follower's timeout (as unknown); one still on
        // its way may add an entry, so the cluster converges again.
        if (!sim.RunUntil(() => sim.PendingForwards == 0 && Converged(sim, out _), SimCluster.ForwardTimeoutMs + ConvergeTimeoutMs))
            throw sim.Failure($"{sim.PendingForwards} forwarded proposals were never answered, not even at the timeout, or the cluster did not converge again");
        sim.CheckAcknowledgedAppliedExactlyOnce();
        sim.CheckEveryProposalAnswered();
        if (changes is not null) sim.CheckCommittedChangesInLog();

        // Every node serves a read after convergence: the final check of the read path.
        // (A read lost on the way during the faults stays unanswered, as a production caller's would until it times out.)
        // A read aborted by a leader change is asked again, as ReadWaitingForLeaderAsync does.
        var finalReads = sim.Nodes.Where(node => node.IsUp).Select(node => sim.Read(node.Id)).ToList();
        var answered = sim.RunUntil(() =>
        {
            for (int i = 0; i < finalReads.Count; i++)
                if (finalReads[i].Completion.IsFaulted) finalReads[i] = sim.Read(finalReads[i].Node);
            return finalReads.All(r => r.Index is not null);
        }, ConvergeTimeoutMs);
        if (!answered) throw sim.Failure("reads on the converged cluster were not answered: " + string.Join("; ", finalReads));

        return new FuzzOutcome(seed, n, sim.Proposals.Count, sim.Proposals.Count(p => p.IsAcknowledged),
            sim.Checker.LeaderOfTerm.Count, crashes, sim.Now, sim.Nodes.Sum(x => x.SnapshotsInstalled), sim.Nodes.Sum(x => x.DiskFaults),
            sim.Reads.Count(r => r.Index is not null), sim.Proposals.Count(p => p.Forwarded && p.IsAcknowledged), transfers, changes?.Outcome(sim));
    }

    /// <summary>
    /// One random fault, or none: a partition, one-way cuts, an isolated node, a heal, a crash or a restart, a leader
    /// kill, a changed link, a paused or resumed clock, or a leadership transfer. <paramref name="pick"/> draws a node
    /// (with <paramref name="membership"/>, among the joined nodes that are not wiped). Counts crashes and accepted transfers.
    /// </summary>
    internal static void InjectFault(SimCluster sim, SplitMix64 rng, bool membership, Func<ulong> pick, ref int crashes, ref int transfers)
    {
        ulong Pick() => pick();
        var action = rng.Next(100);
        switch (action)
        {
            case < 8:
                // Symmetric partition into two random sides.
                var sides = (membership ? Live(sim) : [.. Enumerable.Range(1, sim.Options.Nodes).Select(i => (ulong)i)]).Select(id => (Id: id, Side: rng.Next(2))).ToList();
                sim.Partition([.. sides.Where(s => s.Side == 0).Select(s => s.Id)], [.. sides.Where(s => s.Side == 1).Select(s => s.Id)]);
                break;
            case < 13:
                // One-way cuts.
                for (int k = 1 + rng.Next(3); k > 0; k--)
                {
                    var from = Pick();
                    var to = Pick();
                    if (from != to) sim.Block(from, to);
                }
                break;
            case < 18:
                sim.Isolate(Pick());
                break;
            case < 28:
                sim.Heal();
                break;
            case < 34:
                var victim = Pick();
                if (sim.Node(victim).IsUp && sim.Nodes.Count(x => x.IsUp) > 1)
                {
                    sim.Crash(victim);
                    crashes++;
                }
                break;
            case < 46:
                var down = sim.Nodes.Where(x => !x.IsUp && x.Incarnation > 0 && !sim.IsRetired(x.Id)).ToList();
                if (down.Count > 0) sim.Restart(down[rng.Next(down.Count)].Id);
                break;
            case < 52:
                if (sim.Leader is { } leader && sim.Nodes.Count(x => x.IsUp) > 1)
                {
                    sim.Crash(leader.Id);
                    crashes++;
                }
                break;
            case < 57:
                var a = Pick();
                var b = Pick();
                if (a != b) sim.SetLink(a, b, RandomLink(rng));
                break;
            case < 60:
                sim.PauseClock(Pick());
                break;
            case < 65:
                foreach (var node in sim.Nodes) sim.ResumeClock(node.Id);
                break;
            case < 69:
                // A leadership transfer, to a named node or the most up-to-date one; proposals meanwhile are refused.
                if (sim.Leader is { } current && sim.TransferLeadership(current.Id, rng.Next(3) == 0 ? 0 : Pick()).IsAccepted) transfers++;
                break;
        }
    }

    /// <summary>Ends every fault: reliable disks and links, healed partitions, running clocks, and every node that may run again restarted.</summary>
    internal static void StopFaults(SimCluster sim)
    {
        sim.Disk = DiskConfig.Reliable;
        sim.Options.SlowFsyncProbability = 0;
        sim.Heal();
        sim.SetAllLinks(LinkConfig.Reliable);
        foreach (var node in sim.Nodes)
        {
            sim.ResumeClock(node.Id);
            if (!node.IsUp && node.Incarnation > 0 && !sim.IsRetired(node.Id)) sim.Restart(node.Id);
        }
    }

    /// <summary>One leader that every member of its configuration follows, its whole log committed and applied everywhere.</summary>
    public static bool Converged(SimCluster sim, out SimNode? leader)
    {
        leader = sim.Leader;
        if (leader?.Raft is not { } l || l.CommitIndex != l.LastIndex || l.LastTerm != l.Term) return false;
        var configuration = l.Configuration;
        foreach (var node in sim.Nodes)
        {
            if (!configuration.IsMember(node.Id) || sim.IsRetired(node.Id)) continue; // a wiped member is removed next
            if (node.Raft is not { } r || r.Term != l.Term || r.Leader != leader.Id || node.AppliedThisRun != l.LastIndex)
                return false;
        }
        return true;
    }

    internal static LinkConfig RandomLink(SplitMix64 rng)
    {
        var max = MaxDelayChoices[rng.Next(MaxDelayChoices.Length)];
        return new LinkConfig
        {
            LossProbability = LossChoices[rng.Next(LossChoices.Length)],
            MinDelayMs = 1,
            MaxDelayMs = max,
            DuplicateProbability = DuplicateChoices[rng.Next(DuplicateChoices.Length)],
            LongDelayProbability = LongDelayChoices[rng.Next(LongDelayChoices.Length)],
            LongDelayMinMs = 100,
            LongDelayMaxMs = 1_000,
        };
    }

    internal static ulong RandomNode(SplitMix64 rng, int n) => (ulong)rng.Next(n) + 1;

    /// <summary>Nodes that have a disk to run from: started at least once and not wiped or decommissioned.</summary>
    private static List<ulong> Live(SimCluster sim) =>
        [.. sim.Nodes.Where(x => x.Incarnation > 0 && !sim.IsRetired(x.Id)).Select(x => x.Id)];

    /// <summary>A unique command of <paramref name="size"/> bytes (at least 8): the value, then filler.</summary>
    private static byte[] Payload(long value, int size = 8)
    {
        var bytes = new byte[Math.Max(8, size)];
        BinaryPrimitives.WriteInt64LittleEndian(bytes, value);
        bytes.AsSpan(8).Fill((byte)value);
        return bytes;
    }
}

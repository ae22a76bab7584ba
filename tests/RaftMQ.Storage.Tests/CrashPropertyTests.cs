using FsCheck;
using FsCheck.Fluent;
using RaftMQ.Raft;
using RaftMQ.Simulation;
using Xunit;
using static RaftMQ.Storage.Tests.Logs;

namespace RaftMQ.Storage.Tests;

/// <summary>
/// For any sequence of appends (some replacing a suffix), hard-state changes, compactions, snapshot installs and
/// crashes (losing unsynced data whole, at any byte, or sector by sector), recovery yields a state the log was in
/// at or after its last fsync: never less than what was synced, and never a log with a gap or a partial batch.
/// </summary>
public sealed class CrashPropertyTests
{
    private const string Dir = "/sim/prop";

    private static int Runs => Environment.GetEnvironmentVariable("RAFTMQ_SOAK") == "1" ? 2000 : 150;

    [Fact]
    public void Recovery_yields_a_state_at_or_after_the_last_sync_for_any_history()
    {
        // FsCheck picks the seed and the history length; a seeded Random turns them into operations so that a
        // failure replays exactly from the printed (seed, steps).
        var histories = Gen.Zip(Gen.Choose(0, int.MaxValue - 1), Gen.Choose(1, 120)).ToArbitrary();
        Prop.ForAll(histories, h => Run(h.Item1, h.Item2))
            .Check(Config.QuickThrowOnFailure.WithMaxTest(Runs));
    }

    [Fact]
    public void A_failing_history_replays_from_RAFTMQ_PROP_REPLAY()
    {
        // Set RAFTMQ_PROP_REPLAY=<seed>,<steps> (as printed by a failure) to rerun one history; otherwise this
        // replays a history that once exposed a test-model bug (an ignored snapshot install does not sync).
        var replay = Environment.GetEnvironmentVariable("RAFTMQ_PROP_REPLAY")?.Split(',');
        if (replay is [var seed, var steps]) Run(int.Parse(seed), int.Parse(steps));
        else Run(1917780980, 120);
    }

    private static void Run(int seed, int steps)
    {
        var random = new Random(seed);
        var fs = new FaultyFileSystem();
        var options = SmallOptions(fs);
        var log = DurableLogStorage.Open(Dir, options);
        var model = new LogModel();
        // The states the log may recover to: the last synced one, then one per unsynced batch after it.
        var candidates = new List<LogModel> { model.Clone() };
        ulong term = 1;
        for (var step = 0; step < steps; step++)
        {
            var op = random.Next(100);
            var where = $"seed {seed}, steps {steps}, at step {step}";
            if (op < 55)
            {
                var first = model.Log.LastIndex + 1;
                var commit = model.Log.HardState.Commit;
                if (random.Next(5) == 0 && model.Log.LastIndex > Math.Max(commit, model.Log.Snapshot.Index))
                {
                    // A new leader's entries replace an uncommitted suffix.
                    term++;
                    first = (ulong)random.NextInt64((long)Math.Max(commit, model.Log.Snapshot.Index) + 1, (long)model.Log.LastIndex + 1);
                }
                // Now and then a Ready larger than MaxBatchBytes, which Save splits into several batches.
                var count = random.Next(20) == 0 ? random.Next(12, 40) : random.Next(1, 12);
                var batch = new Entry[count];
                for (var i = 0; i < count; i++)
                {
                    var index = first + (ulong)i;
                    var length = random.Next(10) == 0 ? random.Next(1000, 4000) : random.Next(0, 120);
                    batch[i] = new Entry(index, term, random.Next(8) == 0 ? EntryType.NoOp : EntryType.Command, Data(index, term, length));
                }
                HardState? hs = random.Next(3) == 0 ? new HardState(term, 1, Math.Min(first - 1, commit + (ulong)random.Next(3))) : null;
                var sync = random.Next(10) < 7;
                // A synced save either at once or as the node does it: SaveUnsynced, its LogSync run (which may seal
                // the segment and create the next), CompleteSync; or with a crash before or after the LogSync ran.
                var way = sync ? random.Next(4) : 0;
                if (way == 0)
                {
                    log.Save(hs, batch, sync);
                }
                else
                {
                    var pending = log.SaveUnsynced(hs, batch);
                    if (way != 2) pending.Run();
                    if (way == 1) log.CompleteSync(pending);
                }
                RecordSplitPrefixes(candidates, model, hs, batch, options);
                model.Save(hs, batch);
                Record(candidates, model, sync && way != 2);
                if (way >= 2) (fs, options, log, model, candidates, term) = Crash(fs, random, candidates, term, where);
            }
            else if (op < 65)
            {
                var hs = new HardState(term, (ulong)random.Next(3), Math.Min(model.Log.LastIndex, model.Log.HardState.Commit + (ulong)random.Next(5)));
                var sync = random.Next(2) == 0;
                log.Save(hs, [], sync);
                model.Save(hs, []);
                Record(candidates, model, sync);
            }
            else if (op < 75 && model.Log.LastIndex > model.Log.Snapshot.Index)
            {
                var index = (ulong)random.NextInt64((long)model.Log.Snapshot.Index + 1, (long)model.Log.LastIndex + 1);
                var snapshot = new SnapshotMetadata(index, model.Log.Term(index));
                // As the node does it (CompactUnsynced, its LogSync run on another thread, then CompleteSync), with a
                // crash before the LogSync ran or after it ran but before it was handed back.
                var way = random.Next(3);
                if (way == 0)
                {
                    log.Compact(snapshot);
                }
                else
                {
                    var pending = log.CompactUnsynced(snapshot);
                    if (way == 2) pending.Run();
                }
                model.Compact(snapshot);
                Record(candidates, model, sync: way != 1);
                if (way != 0) (fs, options, log, model, candidates, term) = Crash(fs, random, candidates, term, where);
            }
            else if (op < 80)
            {
                var index = Math.Max(model.Log.HardState.Commit, model.Log.Snapshot.Index) + (ulong)random.Next(0, 15);
                var snapshotTerm = index <= model.Log.LastIndex && random.Next(2) == 0 ? model.Log.Term(index) : term + 1;
                term = Math.Max(term, snapshotTerm);
                var snapshot = new SnapshotMetadata(index, snapshotTerm);
                // A snapshot not newer than the log's is ignored, and then nothing is written or synced.
                var installed = log.InstallSnapshot(snapshot);
                model.Install(snapshot);
                Record(candidates, model, sync: installed);
            }
            else if (op < 90)
            {
                (fs, options, log, model, candidates, term) = Crash(fs, random, candidates, term, where);
            }
            else
            {
                // Reads anywhere in the log agree with the model, from the cache or from disk.
                var diff = Difference(model.Log, log);
                if (diff is not null) throw new InvalidOperationException($"{where}: live log differs from the model: {diff}");
            }
        }
    }

    // Crashes the file system, recovers the log and checks it is one of the candidate states.
    private static (FaultyFileSystem, StorageOptions, DurableLogStorage, LogModel, List<LogModel>, ulong) Crash(
        FaultyFileSystem fs, Random random, List<LogModel> candidates, ulong term, string where)
    {
        var mode = (CrashMode)random.Next(3);
        fs = fs.Crash(mode, random, random.NextInt64(0, 3000));
        var options = SmallOptions(fs);
        var log = DurableLogStorage.Open(Dir, options);
        var match = candidates.FindIndex(c => Difference(c.Log, log) == null);
        if (match < 0)
        {
            throw new InvalidOperationException(
                $"{where}: after a {mode} crash the log recovered to a state it never had: " +
                $"{Difference(candidates[0].Log, log)} (synced state); report: {log.Recovery}");
        }
        var model = candidates[match].Clone();
        term = Math.Max(term, model.Log.HardState.Term);
        if (model.Log.LastIndex > 0) term = Math.Max(term, model.Log.Term(model.Log.LastIndex));
        return (fs, options, log, model, [model.Clone()], term);
    }

    // A save over MaxBatchBytes is written as several batches, so a crash may keep a prefix of its entries, with
    // the new term and vote and the commit index clamped to what is there. Every prefix is allowed (the split points
    // are the storage's business).
    private static void RecordSplitPrefixes(List<LogModel> candidates, LogModel model, HardState? hs, Entry[] batch, StorageOptions options)
    {
        if (WalFormat.BatchRecordBytes + batch.Sum(e => (long)WalFormat.EntryRecordBytes(e)) <= options.MaxBatchBytes) return;
        for (var k = 1; k < batch.Length; k++)
        {
            var partial = model.Clone();
            partial.Save(hs is { } h ? h with { Commit = Math.Min(h.Commit, batch[k - 1].Index) } : null, batch[..k]);
            candidates.Add(partial);
        }
    }

    private static void Record(List<LogModel> candidates, LogModel model, bool sync)
    {
        if (sync) candidates.Clear();
        candidates.Add(model.Clone());
    }
}

using RaftMQ.Raft;
using RaftMQ.Simulation;
using Shouldly;
using Xunit;
using static RaftMQ.Storage.Tests.Logs;

namespace RaftMQ.Storage.Tests;

/// <summary>
/// A Ready may hold more than one batch's worth of entries (every unstable entry at once: many concurrent large
/// proposals, or a follower receiving many in-flight appends). Save splits it into batches within MaxBatchBytes.
/// </summary>
public sealed class LargeSaveTests
{
    private const string Dir = "/sim/large";
    private static readonly string FirstSegment = Path.Combine(Dir, "wal-0000000000000001.seg");

    // Segments large enough that the saves below do not roll, so fsyncs can be counted.
    private static StorageOptions NoRollOptions(FaultyFileSystem fs) => new()
    {
        SegmentBytes = 1024 * 1024,
        MaxEntryBytes = 4 * 1024,
        MaxBatchBytes = 32 * 1024,
        CacheEntries = 8,
        CacheBytes = 4 * 1024,
        FileSystem = fs,
    };

    [Fact]
    public void A_save_larger_than_MaxBatchBytes_is_split_and_fsynced_once()
    {
        var fs = new FaultyFileSystem();
        var options = NoRollOptions(fs);
        var model = new LogModel();
        using (var log = DurableLogStorage.Open(Dir, options))
        {
            // 48 entries of MaxEntryBytes: about six times MaxBatchBytes.
            var entries = Range(1, 48, 1, length: options.MaxEntryBytes);
            var syncsBefore = fs.SyncCount;
            log.Save(new HardState(1, 1, 48), entries, sync: true);
            model.Save(new HardState(1, 1, 48), entries);
            (fs.SyncCount - syncsBefore).ShouldBe(1);
            fs.UnsyncedBytes(FirstSegment).ShouldBe(0);
            log.ShouldMatch(model.Log);
        }
        using var reopened = DurableLogStorage.Open(Dir, options);
        reopened.ShouldMatch(model.Log);
    }

    [Fact]
    public void A_save_larger_than_a_segment_rolls_segments_and_survives_reopen()
    {
        using var dir = new TempDirectory();
        var options = SmallOptions();
        var model = new LogModel();
        using (var log = DurableLogStorage.Open(dir.Path, options))
        {
            log.Save(new HardState(1, 1, 0), Range(1, 5, 1), sync: true);
            model.Save(new HardState(1, 1, 0), Range(1, 5, 1));
            // A follower receiving many in-flight appends, replacing part of its log: 3.5 segments in one Ready.
            var entries = Range(3, 60, 2, length: options.MaxEntryBytes);
            log.Save(new HardState(2, 2, 40), entries, sync: true);
            model.Save(new HardState(2, 2, 40), entries);
            log.SegmentCount.ShouldBeGreaterThan(3);
            log.ShouldMatch(model.Log);
        }
        using var reopened = DurableLogStorage.Open(dir.Path, options);
        reopened.Recovery.TailTruncated.ShouldBeFalse();
        reopened.ShouldMatch(model.Log);
    }

    [Fact]
    public void A_save_of_the_default_limits_takes_many_concurrent_one_MiB_proposals()
    {
        using var dir = new TempDirectory();
        var options = new StorageOptions();
        var entries = Range(1, 24, 1, length: 1024 * 1024); // 24 MiB, over the 16 MiB MaxBatchBytes
        using (var log = DurableLogStorage.Open(dir.Path, options))
        {
            log.Save(new HardState(1, 1, 0), entries, sync: true);
            log.LastIndex.ShouldBe(24UL);
        }
        using var reopened = DurableLogStorage.Open(dir.Path, options);
        reopened.LastIndex.ShouldBe(24UL);
        reopened.HardState.ShouldBe(new HardState(1, 1, 0));
        var read = new List<Entry>();
        reopened.ReadEntries(24, 25, long.MaxValue, read);
        read[0].Data.ToArray().ShouldBe(entries[23].Data.ToArray());
    }

    [Fact]
    public void A_crash_during_a_split_save_recovers_the_old_log_or_a_prefix_of_the_new_one()
    {
        var fs = new FaultyFileSystem();
        var options = NoRollOptions(fs);
        var before = new LogModel();
        var log = DurableLogStorage.Open(Dir, options);
        log.Save(new HardState(1, 1, 10), Range(1, 20, 1), sync: true);
        before.Save(new HardState(1, 1, 10), Range(1, 20, 1));
        var after = before.Clone();
        // A new leader's entries replace the uncommitted suffix from 15, and its commit covers new entries: were
        // the new hard state written with the first batch, a crash after it would claim entries that are not there.
        var entries = Range(15, 40, 2, length: 3000);
        log.Save(new HardState(2, 2, 38), entries, sync: false);
        after.Save(new HardState(2, 2, 38), entries);
        var unsynced = fs.UnsyncedBytes(FirstSegment);
        unsynced.ShouldBeGreaterThan(options.MaxBatchBytes * 2L);

        var prefixes = 0;
        for (long keep = 0; keep <= unsynced; keep += 211)
        {
            using var recovered = DurableLogStorage.Open(Dir, NoRollOptions(fs.Crash(CrashMode.KeepPrefix, new Random(1), keep)));
            var where = $"crash after {keep} of {unsynced} unsynced bytes";
            if (Difference(before.Log, recovered) is null || Difference(after.Log, recovered) is null) continue;
            // Otherwise: the old log up to 14, then a prefix of the new entries, with the new term and vote and a
            // commit index no further than what is there.
            prefixes++;
            recovered.LastIndex.ShouldBeInRange(15UL, 39UL, where);
            recovered.Term(15).ShouldBe(2UL, where);
            recovered.HardState.ShouldBe(new HardState(2, 2, Math.Min(38, recovered.LastIndex)), where);
            var expected = ReadAll(after.Log).Take((int)recovered.LastIndex).ToList();
            var actual = ReadAll(recovered);
            actual.Select(e => (e.Index, e.Term)).ShouldBe(expected.Select(e => (e.Index, e.Term)), where);
        }
        prefixes.ShouldBeGreaterThan(0);
    }

    [Fact]
    public void An_entry_over_MaxEntryBytes_is_still_refused_and_nothing_of_its_save_is_written()
    {
        var fs = new FaultyFileSystem();
        var options = NoRollOptions(fs);
        using var log = DurableLogStorage.Open(Dir, options);
        log.Save(null, Range(1, 5, 1), sync: true);
        var length = fs.ReadAll(FirstSegment).Length;
        var entries = Range(6, 30, 1, length: options.MaxEntryBytes).ToList();
        entries.Add(E(31, 1, length: options.MaxEntryBytes + 1));
        Should.Throw<ArgumentException>(() => log.Save(null, entries, sync: true)).Message.ShouldContain("MaxEntryBytes");
        log.LastIndex.ShouldBe(5UL);
        fs.ReadAll(FirstSegment).Length.ShouldBe(length);
    }

    [Fact]
    public void The_entry_limit_of_the_consensus_core_is_checked_against_storage()
    {
        var options = new StorageOptions { MaxEntryBytes = 1000, MaxBatchBytes = 64 * 1024 };
        options.ValidateEntryLimit(1000);
        options.ValidateEntryLimit(1);
        Should.Throw<ArgumentOutOfRangeException>(() => options.ValidateEntryLimit(1001)).Message.ShouldContain("MaxEntryBytes");
        Should.Throw<ArgumentOutOfRangeException>(() => options.ValidateEntryLimit(0));
    }
}

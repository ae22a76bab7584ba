using RaftMQ.Raft;
using RaftMQ.Simulation;
using Shouldly;
using Xunit;
using static RaftMQ.Storage.Tests.Logs;

namespace RaftMQ.Storage.Tests;

/// <summary>Each fault the disk can throw at the log, and the outcome it must have.</summary>
public sealed class FaultInjectionTests
{
    private const string Dir = "/sim/node";
    private static readonly string FirstSegment = Path.Combine(Dir, "wal-0000000000000001.seg");

    private static DurableLogStorage Open(FaultyFileSystem fs) => DurableLogStorage.Open(Dir, SmallOptions(fs));

    [Fact]
    public void Unsynced_writes_lost_in_a_crash_leave_exactly_the_synced_log()
    {
        var fs = new FaultyFileSystem();
        var model = new LogModel();
        var log = Open(fs);
        log.Save(new HardState(1, 1, 0), Range(1, 10, 1), sync: true);
        model.Save(new HardState(1, 1, 0), Range(1, 10, 1));
        log.Save(new HardState(2, 2, 0), Range(11, 20, 2), sync: false);

        using var recovered = Open(fs.Crash(CrashMode.DropUnsynced, new Random(1)));
        recovered.ShouldMatch(model.Log);
        recovered.Recovery.TailTruncated.ShouldBeFalse();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_crash_at_every_byte_of_a_batch_recovers_the_old_log_or_the_new_one_never_a_mix(bool truncating)
    {
        var fs = new FaultyFileSystem();
        var before = new LogModel();
        var log = Open(fs);
        log.Save(new HardState(1, 1, 0), Range(1, 20, 1), sync: true);
        before.Save(new HardState(1, 1, 0), Range(1, 20, 1));
        var after = before.Clone();
        var batch = truncating ? Range(15, 25, 2, length: 40) : Range(21, 30, 1, length: 40);
        log.Save(new HardState(2, 2, 3), batch, sync: false);
        after.Save(new HardState(2, 2, 3), batch);
        var unsynced = fs.UnsyncedBytes(FirstSegment);
        unsynced.ShouldBeGreaterThan(400);

        for (long keep = 0; keep <= unsynced; keep++)
        {
            using var recovered = Open(fs.Crash(CrashMode.KeepPrefix, new Random(1), keep));
            var expected = keep == unsynced ? after : before;
            Difference(expected.Log, recovered).ShouldBeNull($"crash after {keep} of {unsynced} unsynced bytes");
            recovered.Recovery.TailTruncated.ShouldBe(keep > 0 && keep < unsynced, $"keep {keep}");
            if (keep is > 0 and < 100) recovered.Recovery.ToString().ShouldContain("cut incomplete tail");
        }
    }

    [Fact]
    public void Unsynced_sectors_written_back_in_any_order_recover_to_a_batch_boundary()
    {
        for (var seed = 0; seed < 200; seed++)
        {
            var fs = new FaultyFileSystem();
            var states = new List<LogModel>();
            var model = new LogModel();
            var log = Open(fs);
            log.Save(new HardState(1, 1, 0), Range(1, 30, 1, length: 100), sync: true);
            model.Save(new HardState(1, 1, 0), Range(1, 30, 1, length: 100));
            states.Add(model.Clone());
            for (ulong b = 0; b < 4; b++)
            {
                var batch = Range(31 + b * 10, 40 + b * 10, 1, length: 150);
                log.Save(null, batch, sync: false);
                model.Save(null, batch);
                states.Add(model.Clone());
            }
            using var recovered = Open(fs.Crash(CrashMode.RandomSectors, new Random(seed)));
            states.ShouldContain(s => Difference(s.Log, recovered) == null, $"seed {seed}: recovered {recovered.LastIndex}");
        }
    }

    [Fact]
    public void A_bit_flip_in_acknowledged_data_before_the_tail_is_a_clear_corruption_error()
    {
        var fs = new FaultyFileSystem();
        var log = Open(fs);
        log.Save(null, Range(1, 10, 1, length: 100), sync: true);
        log.Save(null, Range(11, 20, 1, length: 100), sync: true);
        var offset = WalFormat.SegmentOverhead + WalFormat.BatchRecordBytes + 3 * (WalFormat.EntryRecordOverhead + 100) + 30;
        fs.FlipBit(FirstSegment, offset, 3);

        // The process is killed (the page cache, with the latest DURABLE record, survives). After a power cut
        // DURABLE may lag behind the log (it is fsynced only per segment and on close), and damage past its claim
        // is then cut like a torn write: see docs/storage.md, "Recovery".
        var crashed = fs.Crash(CrashMode.KeepPrefix, new Random(1), keepBytes: long.MaxValue);
        var ex = Should.Throw<StorageCorruptedException>(() => Open(crashed));
        ex.FilePath.ShouldBe(FirstSegment);
        ex.Offset.ShouldBe(offset - 30);
        ex.Message.ShouldContain("fsynced");
        ex.Message.ShouldContain("Do not start the node");
    }

    [Fact]
    public void A_bit_flip_in_a_sealed_segment_is_a_clear_corruption_error()
    {
        var fs = new FaultyFileSystem();
        var log = Open(fs);
        for (ulong i = 1; i <= 600; i += 50) log.Save(null, Range(i, i + 49, 1, length: 300), sync: true);
        log.SegmentCount.ShouldBeGreaterThan(1);
        fs.FlipBit(FirstSegment, fs.ReadAll(FirstSegment).Length - 10);

        var ex = Should.Throw<StorageCorruptedException>(() => Open(fs.Crash(CrashMode.DropUnsynced, new Random(1))));
        ex.FilePath.ShouldBe(FirstSegment);
        ex.Message.ShouldContain("not the last segment");
    }

    [Fact]
    public void Damage_to_the_unsynced_tail_is_cut_and_reported()
    {
        var fs = new FaultyFileSystem();
        var model = new LogModel();
        var log = Open(fs);
        log.Save(null, Range(1, 10, 1), sync: true);
        model.Save(null, Range(1, 10, 1));
        log.Save(null, Range(11, 20, 1), sync: false);
        var crashed = fs.Crash(CrashMode.KeepPrefix, new Random(1), keepBytes: 10_000);
        crashed.FlipBit(FirstSegment, crashed.ReadAll(FirstSegment).Length - 5);

        using var recovered = Open(crashed);
        recovered.ShouldMatch(model.Log);
        recovered.Recovery.TailTruncated.ShouldBeTrue();
        recovered.Recovery.DiscardedEntries.ShouldBe(9);
        recovered.Recovery.TruncationReason.ShouldNotBeNull().ShouldContain("checksum");
    }

    [Fact]
    public void A_missing_segment_is_a_clear_corruption_error()
    {
        var fs = new FaultyFileSystem();
        var log = Open(fs);
        for (ulong i = 1; i <= 1000; i += 50) log.Save(null, Range(i, i + 49, 1, length: 300), sync: true);
        log.SegmentCount.ShouldBeGreaterThan(2);
        fs.Delete(Path.Combine(Dir, "wal-0000000000000002.seg"));
        fs.SyncDirectory(Dir);

        var ex = Should.Throw<StorageCorruptedException>(() => Open(fs.Crash(CrashMode.DropUnsynced, new Random(1))));
        ex.Message.ShouldContain("wal-0000000000000002.seg is missing");
    }

    [Fact]
    public void A_missing_first_segment_that_no_snapshot_covers_is_a_clear_corruption_error()
    {
        var fs = new FaultyFileSystem();
        var log = Open(fs);
        for (ulong i = 1; i <= 1000; i += 50) log.Save(null, Range(i, i + 49, 1, length: 300), sync: true);
        fs.Delete(FirstSegment);
        fs.SyncDirectory(Dir);

        var ex = Should.Throw<StorageCorruptedException>(() => Open(fs.Crash(CrashMode.DropUnsynced, new Random(1))));
        ex.Message.ShouldContain("are missing");
    }

    [Fact]
    public void A_bad_segment_header_is_a_clear_corruption_error()
    {
        var fs = new FaultyFileSystem();
        var log = Open(fs);
        log.Save(null, Range(1, 10, 1), sync: true);
        fs.FlipBit(FirstSegment, 2);

        var ex = Should.Throw<StorageCorruptedException>(() => Open(fs.Crash(CrashMode.DropUnsynced, new Random(1))));
        ex.Message.ShouldContain("bad header");
        ex.Message.ShouldContain("magic");
        ex.Offset.ShouldBe(0);
    }

    [Fact]
    public void A_segment_whose_creation_never_finished_is_deleted_and_reported()
    {
        var fs = new FaultyFileSystem();
        var model = new LogModel();
        var log = Open(fs);
        log.Save(null, Range(1, 10, 1), sync: true);
        model.Save(null, Range(1, 10, 1));
        var torn = Path.Combine(Dir, "wal-0000000000000002.seg");
        using (var f = fs.Open(torn, create: true))
        {
            f.Write(0, new byte[20]);
            f.Sync();
        }
        fs.SyncDirectory(Dir);

        using var recovered = Open(fs.Crash(CrashMode.DropUnsynced, new Random(1)));
        recovered.ShouldMatch(model.Log);
        recovered.Recovery.DeletedFiles.ShouldBe([torn]);
        recovered.Save(null, Range(11, 12, 1), sync: true);
    }

    [Fact]
    public void An_fsync_failure_is_fatal_and_the_log_refuses_all_later_writes()
    {
        var fs = new FaultyFileSystem();
        var before = new LogModel();
        var log = Open(fs);
        log.Save(null, Range(1, 10, 1), sync: true);
        before.Save(null, Range(1, 10, 1));
        var after = before.Clone();
        after.Save(null, Range(11, 20, 1));

        fs.FailSyncAfter = 1;
        var ex = Should.Throw<StorageFailedException>(() => log.Save(null, Range(11, 20, 1), sync: true));
        ex.InnerException.ShouldBeOfType<IOException>();
        // Fail-stop: no retry can succeed, even once the disk would accept it again.
        Should.Throw<StorageFailedException>(() => log.Save(null, Range(11, 20, 1), sync: true));
        Should.Throw<StorageFailedException>(() => log.Save(new HardState(5, 1, 0), [], sync: true));
        Should.Throw<StorageFailedException>(() => log.Compact(new SnapshotMetadata(5, 1)));
        Should.Throw<StorageFailedException>(() => log.Sync());

        using var recovered = Open(fs.Crash(CrashMode.DropUnsynced, new Random(1)));
        recovered.ShouldMatch(before.Log);
    }

    [Fact]
    public void A_failed_write_is_fatal_and_its_torn_part_is_cut_on_recovery()
    {
        var fs = new FaultyFileSystem();
        var model = new LogModel();
        var log = Open(fs);
        log.Save(null, Range(1, 10, 1), sync: true);
        model.Save(null, Range(1, 10, 1));

        fs.FailWriteAfter = 1;
        fs.TornWriteBytes = 100;
        Should.Throw<StorageFailedException>(() => log.Save(null, Range(11, 20, 1), sync: true));
        Should.Throw<StorageFailedException>(() => log.Save(null, Range(11, 20, 1), sync: true));

        using var recovered = Open(fs.Crash(CrashMode.KeepPrefix, new Random(1), keepBytes: long.MaxValue));
        recovered.ShouldMatch(model.Log);
        recovered.Recovery.TailTruncated.ShouldBeTrue();
        recovered.Recovery.TruncatedBytes.ShouldBe(100);
    }

    [Fact]
    public void An_fsync_failure_while_deleting_compacted_segments_is_fatal()
    {
        var fs = new FaultyFileSystem();
        var log = Open(fs);
        for (ulong i = 1; i <= 600; i += 50) log.Save(null, Range(i, i + 49, 1, length: 300), sync: true);
        fs.FailSyncAfter = 2; // the compaction batch's fsync succeeds, the directory fsync after a deletion fails
        Should.Throw<StorageFailedException>(() => log.Compact(new SnapshotMetadata(500, 1)));
        Should.Throw<StorageFailedException>(() => log.Save(null, Range(601, 601, 1), sync: true));

        using var recovered = Open(fs.Crash(CrashMode.DropUnsynced, new Random(1)));
        recovered.Snapshot.ShouldBe(new SnapshotMetadata(500, 1));
        recovered.LastIndex.ShouldBe(600UL);
    }
}

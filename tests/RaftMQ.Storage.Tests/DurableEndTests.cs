using RaftMQ.Raft;
using RaftMQ.Simulation;
using Shouldly;
using Xunit;
using static RaftMQ.Storage.Tests.Logs;

namespace RaftMQ.Storage.Tests;

/// <summary>
/// Recovery tells a torn, never-synced tail (cut it) from acknowledged data that is gone or damaged (refuse to
/// start): the DURABLE file records how far the log was fsynced, and payload bytes cannot pretend otherwise.
/// </summary>
public sealed class DurableEndTests
{
    private const string Dir = "/sim/durable";
    private static string Segment(ulong sequence) => Path.Combine(Dir, WalFormat.SegmentName(sequence));

    private static DurableLogStorage Open(FaultyFileSystem fs) => DurableLogStorage.Open(Dir, SmallOptions(fs));

    // Three segments of synced batches, the last holding a few, as a node leaves them when it stops.
    private static void WriteThreeSegments(DurableLogStorage log)
    {
        var saves = 0;
        for (ulong i = 1; log.SegmentCount < 3 || saves < 3; i += 10)
        {
            if (log.SegmentCount == 3) saves++;
            var term = 1 + i / 100;
            log.Save(new HardState(term, 1, i - 1), Range(i, i + 9, term, length: 300), sync: true);
        }
    }

    [Fact]
    public void A_deleted_last_segment_is_refused_naming_the_file_and_what_to_do()
    {
        using var dir = new TempDirectory();
        var options = SmallOptions();
        using (var log = DurableLogStorage.Open(dir.Path, options))
        {
            WriteThreeSegments(log);
            log.SegmentCount.ShouldBe(3);
        }
        var last = Path.Combine(dir.Path, "wal-0000000000000003.seg");
        File.Delete(last);

        var ex = Should.Throw<StorageCorruptedException>(() => DurableLogStorage.Open(dir.Path, options));
        ex.Message.ShouldContain("wal-0000000000000003.seg is missing");
        ex.Message.ShouldContain("DURABLE");
        ex.Message.ShouldContain("Do not start the node");
        ex.FilePath.ShouldBe(last);
    }

    [Fact]
    public void A_deleted_last_segment_is_refused_after_a_power_cut_too()
    {
        var fs = new FaultyFileSystem();
        var log = Open(fs);
        WriteThreeSegments(log);
        log.Dispose();
        fs.Delete(Segment(3));
        fs.SyncDirectory(Dir);

        var ex = Should.Throw<StorageCorruptedException>(() => Open(fs.Crash(CrashMode.DropUnsynced, new Random(1))));
        ex.Message.ShouldContain("wal-0000000000000003.seg is missing");
    }

    [Fact]
    public void A_last_segment_shortened_by_100_bytes_of_synced_data_is_refused()
    {
        var fs = new FaultyFileSystem();
        using (var log = Open(fs)) WriteThreeSegments(log);
        var length = fs.ReadAll(Segment(3)).Length;
        fs.Truncate(Segment(3), length - 100);

        var ex = Should.Throw<StorageCorruptedException>(() => Open(fs));
        ex.FilePath.ShouldBe(Segment(3));
        ex.Message.ShouldContain($"fsynced through offset {length}");
        ex.Message.ShouldContain("Do not start the node");
        fs.ReadAll(Segment(3)).Length.ShouldBe(length - 100, "recovery must not cut anything when it refuses");
    }

    [Fact]
    public void All_segments_deleted_while_DURABLE_remains_is_refused()
    {
        var fs = new FaultyFileSystem();
        using (var log = Open(fs)) WriteThreeSegments(log);
        foreach (var f in fs.ListFiles(Dir, "wal-*.seg")) fs.Delete(f);

        Should.Throw<StorageCorruptedException>(() => Open(fs)).Message.ShouldContain("is missing");
    }

    [Fact]
    public void A_torn_unsynced_tail_past_the_durable_end_is_still_cut()
    {
        var fs = new FaultyFileSystem();
        var model = new LogModel();
        var log = Open(fs);
        log.Save(new HardState(1, 1, 0), Range(1, 10, 1), sync: true);
        model.Save(new HardState(1, 1, 0), Range(1, 10, 1));
        log.Save(null, Range(11, 20, 1, length: 200), sync: false);
        var unsynced = fs.UnsyncedBytes(Segment(1));

        // The process dies mid-write: the page cache keeps the torn batch and the latest DURABLE record.
        using var recovered = Open(fs.Crash(CrashMode.KeepPrefix, new Random(1), unsynced - 50));
        recovered.ShouldMatch(model.Log);
        recovered.Recovery.TailTruncated.ShouldBeTrue();
    }

    [Fact]
    public void A_batch_planted_in_an_entry_payload_does_not_turn_a_torn_tail_into_corruption()
    {
        var fs = new FaultyFileSystem();
        var model = new LogModel();
        var log = Open(fs);
        log.Save(new HardState(1, 1, 0), Range(1, 10, 1), sync: true);
        model.Save(new HardState(1, 1, 0), Range(1, 10, 1));

        // A client's message holding the exact bytes of a batch header that claims the file was fsynced far past
        // anything written, and of an entry record after it.
        var planted = new byte[WalFormat.BatchRecordBytes + WalFormat.EntryRecordOverhead + 8];
        WalFormat.WriteBatch(planted, new WalFormat.BatchHeader(0, 1, 11, new HardState(1, 1, 0), default, DurableEnd: 1UL << 40));
        WalFormat.WriteEntry(planted.AsSpan(WalFormat.BatchRecordBytes), E(11, 1, length: 8));
        var batch = Range(11, 20, 1, length: 100);
        batch[6] = new Entry(17, 1, EntryType.Command, planted);
        log.Save(null, batch, sync: false);

        // The unsynced batch is written back, but a sector of it before the planted bytes is not: an ordinary torn write.
        var crashed = fs.Crash(CrashMode.KeepPrefix, new Random(1), keepBytes: long.MaxValue);
        var damagedAt = WalFormat.SegmentOverhead + WalFormat.BatchRecordBytes + 10 * (WalFormat.EntryRecordOverhead + 16)
                        + WalFormat.BatchRecordBytes + 2 * (WalFormat.EntryRecordOverhead + 100) + 40;
        crashed.FlipBit(Segment(1), damagedAt);

        using var recovered = Open(crashed);
        recovered.ShouldMatch(model.Log);
        recovered.Recovery.TailTruncated.ShouldBeTrue();
        recovered.Recovery.TruncationReason.ShouldNotBeNull().ShouldContain("checksum");
    }

    [Fact]
    public void Damage_inside_the_durable_end_is_refused_even_with_nothing_written_after_it()
    {
        var fs = new FaultyFileSystem();
        using (var log = Open(fs))
        {
            log.Save(null, Range(1, 10, 1, length: 100), sync: true);
            log.Save(null, Range(11, 20, 1, length: 100), sync: true);
        }
        // The very last record of acknowledged data is damaged: once indistinguishable from a torn write.
        var length = fs.ReadAll(Segment(1)).Length;
        fs.FlipBit(Segment(1), length - 10);

        var ex = Should.Throw<StorageCorruptedException>(() => Open(fs));
        ex.FilePath.ShouldBe(Segment(1));
        ex.Message.ShouldContain($"fsynced through offset {length}");
    }

    [Fact]
    public void A_log_without_DURABLE_opens_reports_it_and_writes_one()
    {
        var fs = new FaultyFileSystem();
        var model = new LogModel();
        using (var log = Open(fs))
        {
            log.Save(new HardState(1, 1, 0), Range(1, 10, 1), sync: true);
            model.Save(new HardState(1, 1, 0), Range(1, 10, 1));
        }
        var durable = Path.Combine(Dir, "DURABLE");
        fs.FileExists(durable).ShouldBeTrue();
        fs.Delete(durable); // as a log written before DURABLE existed

        using (var log = Open(fs))
        {
            log.ShouldMatch(model.Log);
            log.Recovery.DurableEndMissing.ShouldBeTrue();
            log.Recovery.ToString().ShouldContain("DURABLE");
        }
        fs.FileExists(durable).ShouldBeTrue();
        using var again = Open(fs);
        again.Recovery.DurableEndMissing.ShouldBeFalse();
    }

    [Fact]
    public void A_DURABLE_file_damaged_in_both_copies_is_refused_with_what_to_do()
    {
        var fs = new FaultyFileSystem();
        using (var log = Open(fs)) log.Save(null, Range(1, 10, 1), sync: true);
        var durable = Path.Combine(Dir, "DURABLE");
        fs.FlipBit(durable, 20);
        fs.FlipBit(durable, 4096 + 20);

        var ex = Should.Throw<StorageCorruptedException>(() => Open(fs));
        ex.FilePath.ShouldBe(durable);
        ex.Message.ShouldContain("delete");
    }

    [Fact]
    public void The_durable_end_costs_no_extra_fsync_per_save()
    {
        var fs = new FaultyFileSystem();
        using var log = Open(fs);
        log.Save(null, Range(1, 1, 1), sync: true);
        var before = fs.SyncCount;
        for (ulong i = 2; i <= 11; i++) log.Save(new HardState(1, 1, i - 1), Range(i, i, 1), sync: true);
        (fs.SyncCount - before).ShouldBe(10);
    }

    // A power cut may tear the copy being written. Were both copies written between two fsyncs of the file, one cut
    // could damage both and the node would refuse to start (the simulator found this): only the copy not holding the
    // last fsynced claim may be written until the file is fsynced again.
    [Fact]
    public void Between_two_fsyncs_of_DURABLE_only_one_copy_is_written()
    {
        var fs = new FaultyFileSystem();
        fs.CreateDirectory(Dir);
        var path = Path.Combine(Dir, DurableEndFile.FileName);
        static DurableEnd Claim(ulong last) => new(1, (long)last * 100, last, new HardState(1, 1, last));
        using var file = DurableEndFile.Create(fs, Dir, Claim(1));
        var fsynced = fs.ReadAll(path)[..80];

        file.Write(Claim(2));
        file.Write(Claim(3));
        file.Write(Claim(4));
        fs.ReadAll(path)[..80].ShouldBe(fsynced, "the copy holding the fsynced claim is left alone");

        file.Sync();
        var second = fs.ReadAll(path)[4096..(4096 + 80)];
        file.Write(Claim(5));
        file.Write(Claim(6));
        fs.ReadAll(path)[4096..(4096 + 80)].ShouldBe(second, "after an fsync the roles swap");

        // A cut that loses every unsynced write leaves the last fsynced claim, never a damaged file.
        var after = fs.Crash(CrashMode.DropUnsynced, new Random(1));
        using var reopened = DurableEndFile.Open(after, Dir).ShouldNotBeNull();
        reopened.Current.ShouldBe(Claim(4));
    }
}

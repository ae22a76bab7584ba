using RaftMQ.Raft;
using RaftMQ.Simulation;
using Shouldly;
using Xunit;
using static RaftMQ.Storage.Tests.Logs;

namespace RaftMQ.Storage.Tests;

/// <summary>
/// Blocks reserved ahead of the writes (<see cref="StorageOptions.AllocateBytes"/>): the active segment file is longer
/// than its records, with zeros past them. Recovery must read those zeros as the end of the log, cut anything else
/// there like a torn write, and a sealed segment must end with its last record.
/// </summary>
public sealed class ReservedBlocksTests
{
    private const string Dir = "/sim/node";
    private static readonly string FirstSegment = Path.Combine(Dir, "wal-0000000000000001.seg");

    private static DurableLogStorage Open(FaultyFileSystem fs) => DurableLogStorage.Open(Dir, SmallOptions(fs));

    // The length of the records of the first segment after `write`, learnt from a log that reserves nothing (the
    // format is deterministic, so a reserving log writes the same records).
    private static long RecordBytes(Action<DurableLogStorage> write)
    {
        var fs = new FaultyFileSystem();
        using (var log = DurableLogStorage.Open(Dir, SmallOptions(fs, reserve: false))) write(log);
        return fs.ReadAll(FirstSegment).Length;
    }

    [Fact]
    public void Reserved_zeros_past_the_last_record_end_the_log_and_nothing_is_cut()
    {
        static void Write(DurableLogStorage log) => log.Save(new HardState(1, 1, 0), Range(1, 10, 1), sync: true);
        var records = RecordBytes(Write);
        var fs = new FaultyFileSystem();
        var model = new LogModel();
        using (var log = Open(fs))
        {
            Write(log);
            model.Save(new HardState(1, 1, 0), Range(1, 10, 1));
        }
        var reserved = fs.ReadAll(FirstSegment).Length;
        ((long)reserved).ShouldBe(records + 16 * 1024, "one step of reserved blocks past the records");
        fs.ReadAll(FirstSegment)[(int)records..].ShouldAllBe(b => b == 0);

        using (var recovered = Open(fs.Crash(CrashMode.DropUnsynced, new Random(1))))
        {
            recovered.ShouldMatch(model.Log);
            recovered.Recovery.TailTruncated.ShouldBeFalse();
            recovered.Recovery.DeletedFiles.ShouldBeEmpty();
        }
        ((long)fs.ReadAll(FirstSegment).Length).ShouldBe(reserved, "the reservation is kept");

        // Writing on after recovery goes into the reserved blocks, from the last record on.
        using (var log = Open(fs))
        {
            log.Save(null, Range(11, 20, 1, length: 100), sync: true);
            model.Save(null, Range(11, 20, 1, length: 100));
        }
        ((long)fs.ReadAll(FirstSegment).Length).ShouldBe(reserved);
        using var again = Open(fs.Crash(CrashMode.DropUnsynced, new Random(1)));
        again.ShouldMatch(model.Log);
        again.Recovery.TailTruncated.ShouldBeFalse();
    }

    [Fact]
    public void Writes_past_the_reservation_extend_it_a_step_at_a_time_up_to_the_segment_size()
    {
        var fs = new FaultyFileSystem();
        using var log = Open(fs);
        var lengths = new List<long>();
        for (ulong i = 1; i <= 60; i++)
        {
            log.Save(null, Range(i, i, 1, length: 1000), sync: true);
            if (log.SegmentCount > 1) break;
            lengths.Add(fs.ReadAll(FirstSegment).Length);
        }
        lengths.Distinct().Count().ShouldBeGreaterThan(2, "the reservation grew in steps");
        lengths.ShouldAllBe(l => l <= 64 * 1024);
        lengths[^1].ShouldBe(64 * 1024, "a step never reaches past SegmentBytes");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_sealed_segment_ends_with_its_last_record(bool fsyncOffTheOwnersThread)
    {
        var fs = new FaultyFileSystem();
        var model = new LogModel();
        using (var log = Open(fs))
        {
            for (ulong i = 1; log.SegmentCount < 4; i += 10)
            {
                var batch = Range(i, i + 9, 1, length: 500);
                model.Save(null, batch);
                if (!fsyncOffTheOwnersThread)
                {
                    log.Save(null, batch, sync: true);
                    continue;
                }
                // SaveUnsynced seals a nearly full segment in its LogSync; the writes fill it in the other case (Roll).
                var sync = log.SaveUnsynced(null, batch);
                sync.Run();
                log.CompleteSync(sync);
            }
        }
        var segments = fs.ListFiles(Dir, "wal-*.seg").Order().ToList();
        segments.Count.ShouldBe(4);
        foreach (var sealedSegment in segments[..^1])
        {
            var bytes = fs.ReadAll(sealedSegment);
            bytes.Length.ShouldBeLessThanOrEqualTo(64 * 1024);
            bytes[^16..].ShouldNotBe(new byte[16], $"{sealedSegment} ends with a record, not reserved zeros");
        }
        fs.ReadAll(segments[^1])[^16..].ShouldBe(new byte[16], "the active segment is reserved ahead");

        // Recovery requires every segment but the last to be intact to its end.
        using var recovered = Open(fs.Crash(CrashMode.DropUnsynced, new Random(1)));
        recovered.ShouldMatch(model.Log);
        recovered.Recovery.TailTruncated.ShouldBeFalse();
    }

    [Fact]
    public void A_torn_write_into_reserved_blocks_is_cut_with_the_zeros_after_it()
    {
        var fs = new FaultyFileSystem();
        var model = new LogModel();
        var log = Open(fs);
        log.Save(null, Range(1, 10, 1), sync: true);
        model.Save(null, Range(1, 10, 1));
        var records = RecordBytes(l => l.Save(null, Range(1, 10, 1), sync: true));
        var reserved = fs.ReadAll(FirstSegment).Length;

        fs.FailWriteAfter = 1;
        fs.TornWriteBytes = 100;
        Should.Throw<StorageFailedException>(() => log.Save(null, Range(11, 20, 1), sync: true));

        var crashed = fs.Crash(CrashMode.KeepPrefix, new Random(1), keepBytes: long.MaxValue);
        using (var recovered = Open(crashed))
        {
            recovered.ShouldMatch(model.Log);
            recovered.Recovery.TailTruncated.ShouldBeTrue();
            recovered.Recovery.TruncatedAtOffset.ShouldBe(records);
            recovered.Recovery.TruncatedBytes.ShouldBe((long)reserved - records, "the torn bytes and the zeros after them");
            recovered.Save(null, Range(11, 12, 1), sync: true);
            model.Save(null, Range(11, 12, 1));
        }
        using var again = Open(crashed.Crash(CrashMode.DropUnsynced, new Random(1)));
        again.ShouldMatch(model.Log);
        again.Recovery.TailTruncated.ShouldBeFalse();
    }

    [Fact]
    public void A_stray_byte_in_the_reserved_zeros_is_cut_like_a_torn_write()
    {
        var fs = new FaultyFileSystem();
        var model = new LogModel();
        using (var log = Open(fs))
        {
            log.Save(null, Range(1, 10, 1), sync: true);
            model.Save(null, Range(1, 10, 1));
        }
        var records = RecordBytes(l => l.Save(null, Range(1, 10, 1), sync: true));
        fs.FlipBit(FirstSegment, fs.ReadAll(FirstSegment).Length - 5);

        // Bytes past the last record are never evidence of anything: the log ends where the records end.
        using var recovered = Open(fs);
        recovered.ShouldMatch(model.Log);
        recovered.Recovery.TailTruncated.ShouldBeTrue();
        recovered.Recovery.TruncatedAtOffset.ShouldBe(records);
    }

    [Fact]
    public void Fsynced_records_turned_to_zeros_are_refused_not_read_as_the_end()
    {
        static void WriteFirst(DurableLogStorage log) => log.Save(null, Range(1, 10, 1, length: 100), sync: true);
        static void Write(DurableLogStorage log)
        {
            WriteFirst(log);
            log.Save(null, Range(11, 20, 1, length: 100), sync: true);
        }
        var first = RecordBytes(WriteFirst);
        var records = RecordBytes(Write);
        var fs = new FaultyFileSystem();
        using (var log = Open(fs)) Write(log);
        // The second batch, fsynced, replaced by zeros from its first byte: the file then looks like a log of one
        // batch followed by reserved blocks, but DURABLE vouches for both.
        using (var file = fs.Open(FirstSegment, create: false))
        {
            file.Write(first, new byte[records - first]);
            file.Sync();
        }

        var ex = Should.Throw<StorageCorruptedException>(() => Open(fs));
        ex.FilePath.ShouldBe(FirstSegment);
        ex.Message.ShouldContain($"fsynced through offset {records}");
    }

    [Fact]
    public void On_the_real_file_system_the_active_segment_is_reserved_and_reopens_without_a_cut()
    {
        using var dir = new TempDirectory();
        var options = SmallOptions(PhysicalFileSystem.Instance);
        var model = new LogModel();
        using (var log = DurableLogStorage.Open(dir.Path, options))
        {
            for (ulong i = 1; log.SegmentCount < 3; i += 10)
            {
                log.Save(new HardState(1, 1, i), Range(i, i + 9, 1, length: 700), sync: true);
                model.Save(new HardState(1, 1, i), Range(i, i + 9, 1, length: 700));
            }
        }
        var files = Directory.GetFiles(dir.Path, "wal-*.seg").Order().ToList();
        var active = File.ReadAllBytes(files[^1]);
        active[^16..].ShouldBe(new byte[16], "the active segment is reserved ahead of its records");
        foreach (var sealedSegment in files[..^1]) File.ReadAllBytes(sealedSegment)[^16..].ShouldNotBe(new byte[16]);

        using (var reopened = DurableLogStorage.Open(dir.Path, options))
        {
            reopened.ShouldMatch(model.Log);
            reopened.Recovery.TailTruncated.ShouldBeFalse();
            reopened.Save(null, Range(model.Log.LastIndex + 1, model.Log.LastIndex + 5, 1, length: 700), sync: true);
            model.Save(null, Range(model.Log.LastIndex + 1, model.Log.LastIndex + 5, 1, length: 700));
        }
        using var again = DurableLogStorage.Open(dir.Path, options);
        again.ShouldMatch(model.Log);
        again.Recovery.TailTruncated.ShouldBeFalse();
    }

    [Fact]
    public void A_negative_reservation_step_is_refused()
    {
        var options = new StorageOptions { AllocateBytes = -1 };
        Should.Throw<ArgumentException>(options.Validate).ParamName.ShouldBe("AllocateBytes");
    }
}

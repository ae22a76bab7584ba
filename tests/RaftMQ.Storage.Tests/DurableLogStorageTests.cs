using RaftMQ.Raft;
using Shouldly;
using Xunit;
using static RaftMQ.Storage.Tests.Logs;

namespace RaftMQ.Storage.Tests;

public sealed class DurableLogStorageTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private DurableLogStorage Open(StorageOptions? options = null) => DurableLogStorage.Open(_dir.Path, options ?? SmallOptions());

    [Fact]
    public void A_new_directory_gives_an_empty_log()
    {
        using var log = Open();
        log.Recovery.CreatedNew.ShouldBeTrue();
        log.HardState.ShouldBe(HardState.Empty);
        log.FirstIndex.ShouldBe(1UL);
        log.LastIndex.ShouldBe(0UL);
        log.Term(0).ShouldBe(0UL);
        File.Exists(Path.Combine(_dir.Path, "wal-0000000000000001.seg")).ShouldBeTrue();
    }

    [Fact]
    public void Appended_entries_and_hard_state_read_back_and_survive_reopen()
    {
        var model = new LogModel();
        using (var log = Open())
        {
            var hs = new HardState(3, 2, 4);
            log.Save(hs, Range(1, 10, 3), sync: true);
            model.Save(hs, Range(1, 10, 3));
            log.ShouldMatch(model.Log);
            log.Term(7).ShouldBe(3UL);
        }
        using var reopened = Open();
        reopened.Recovery.CreatedNew.ShouldBeFalse();
        reopened.Recovery.TailTruncated.ShouldBeFalse();
        reopened.ShouldMatch(model.Log);
    }

    [Fact]
    public void An_append_that_overlaps_replaces_the_suffix_and_the_replacement_survives_reopen()
    {
        var model = new LogModel();
        using (var log = Open())
        {
            foreach (var (hs, batch) in new (HardState?, Entry[])[]
                     {
                         (new HardState(1, 1, 0), Range(1, 20, 1)),
                         (new HardState(2, 2, 0), Range(15, 17, 2)),
                         (null, Range(18, 25, 2)),
                         (new HardState(3, 3, 5), Range(6, 6, 3)),
                     })
            {
                log.Save(hs, batch, sync: true);
                model.Save(hs, batch);
                log.ShouldMatch(model.Log);
            }
            log.LastIndex.ShouldBe(6UL);
        }
        using var reopened = Open();
        reopened.ShouldMatch(model.Log);
    }

    [Fact]
    public void Records_from_tiny_to_larger_than_the_read_chunk_read_back_from_disk_and_after_recovery()
    {
        // The read buffers start at what a read needs and grow: entries of growing size around the read chunk (4 KiB
        // in SmallOptions, MaxEntryBytes 4 KiB, so the largest records do not fit a chunk), read from disk (the cache
        // holds 8) and scanned again by recovery.
        var model = new LogModel();
        var sizes = new[] { 1, 3, 100, 2000, 4000, 4096, 10, 4096, 4096, 1, 4096, 3000, 4096, 4096, 4096, 4096, 4096, 4096, 4096, 4096, 4096, 4096, 4096, 5 };
        using (var log = Open())
        {
            for (var i = 0; i < sizes.Length; i++)
            {
                var entry = E((ulong)i + 1, 1, sizes[i]);
                log.Save(new HardState(1, 1, 0), [entry], sync: i % 3 == 0);
                model.Save(new HardState(1, 1, 0), [entry]);
            }
            log.ShouldMatch(model.Log);
        }
        using var reopened = Open();
        reopened.ShouldMatch(model.Log);
        var all = new List<Entry>();
        reopened.ReadEntries(1, reopened.LastIndex + 1, long.MaxValue, all);
        all.Select(e => e.Data.Length).ShouldBe(sizes);
    }

    [Fact]
    public void Hard_state_alone_is_persisted()
    {
        using (var log = Open())
        {
            log.Save(new HardState(7, 3, 0), [], sync: true);
        }
        using var reopened = Open();
        reopened.HardState.ShouldBe(new HardState(7, 3, 0));
    }

    [Fact]
    public void A_long_log_rolls_segments_and_old_entries_are_read_from_disk()
    {
        var model = new LogModel();
        var options = SmallOptions();
        using (var log = Open(options))
        {
            for (ulong i = 1; i <= 2000; i += 50)
            {
                var batch = Range(i, i + 49, 1 + i / 500, length: 200);
                log.Save(new HardState(1 + i / 500, 1, i), batch, sync: i % 3 == 0);
                model.Save(new HardState(1 + i / 500, 1, i), batch);
            }
            log.Sync();
            log.SegmentCount.ShouldBeGreaterThan(5);
            log.ShouldMatch(model.Log);
        }
        using var reopened = Open(options);
        reopened.SegmentCount.ShouldBeGreaterThan(5);
        reopened.ShouldMatch(model.Log);
        foreach (var f in Directory.GetFiles(_dir.Path, "*.seg")) new FileInfo(f).Length.ShouldBeLessThanOrEqualTo(options.SegmentBytes);
    }

    [Fact]
    public void ReadEntries_honours_the_byte_bound_like_the_memory_log()
    {
        var model = new LogModel();
        using var log = Open();
        var batch = Range(1, 100, 1, length: 100);
        log.Save(null, batch, sync: true);
        model.Save(null, batch);
        foreach (var maxBytes in new long[] { 1, 124, 125, 500, 5000, long.MaxValue })
        {
            var expected = new List<Entry>();
            var actual = new List<Entry>();
            model.Log.ReadEntries(3, 90, maxBytes, expected);
            log.ReadEntries(3, 90, maxBytes, actual);
            actual.Select(e => e.Index).ShouldBe(expected.Select(e => e.Index));
        }
    }

    [Fact]
    public void Compaction_drops_covered_entries_and_deletes_covered_segments()
    {
        var model = new LogModel();
        using (var log = Open())
        {
            for (ulong i = 1; i <= 1000; i += 100)
            {
                log.Save(null, Range(i, i + 99, 2, length: 300), sync: true);
                model.Save(null, Range(i, i + 99, 2, length: 300));
            }
            var before = log.SegmentCount;
            log.Compact(new SnapshotMetadata(800, 2));
            model.Compact(new SnapshotMetadata(800, 2));
            log.SegmentCount.ShouldBeLessThan(before);
            log.FirstIndex.ShouldBe(801UL);
            log.Term(800).ShouldBe(2UL);
            Should.Throw<ArgumentOutOfRangeException>(() => log.Term(799));
            log.ShouldMatch(model.Log);
            log.Compact(new SnapshotMetadata(700, 2)); // older than the current snapshot: nothing happens
            log.ShouldMatch(model.Log);
        }
        using var reopened = Open();
        reopened.ShouldMatch(model.Log);
        Directory.GetFiles(_dir.Path, "*.seg").Length.ShouldBe(reopened.SegmentCount);
    }

    [Fact]
    public void An_unsynced_compaction_deletes_the_files_it_frees_only_when_its_LogSync_runs()
    {
        var model = new LogModel();
        using (var log = Open())
        {
            for (ulong i = 1; i <= 1000; i += 100)
            {
                log.Save(null, Range(i, i + 99, 2, length: 300), sync: true);
                model.Save(null, Range(i, i + 99, 2, length: 300));
            }
            var files = Directory.GetFiles(_dir.Path, "*.seg").Length;
            var sync = log.CompactUnsynced(new SnapshotMetadata(800, 2));
            model.Compact(new SnapshotMetadata(800, 2));
            // The log's view is compacted at once; the files stay until the record saying so is durable.
            log.FirstIndex.ShouldBe(801UL);
            log.ShouldMatch(model.Log);
            sync.IsNeeded.ShouldBeTrue();
            Directory.GetFiles(_dir.Path, "*.seg").Length.ShouldBe(files);
            log.SegmentCount.ShouldBeLessThan(files);
            Should.Throw<InvalidOperationException>(() => log.CompleteSync(sync)); // not run yet
            sync.Run();
            sync.Error.ShouldBeNull();
            log.CompleteSync(sync);
            Directory.GetFiles(_dir.Path, "*.seg").Length.ShouldBe(log.SegmentCount);
            log.Save(null, Range(1001, 1010, 2, length: 300), sync: true);
            model.Save(null, Range(1001, 1010, 2, length: 300));
        }
        using var reopened = Open();
        reopened.ShouldMatch(model.Log);
    }

    [Fact]
    public void A_LogSync_of_a_nearly_full_segment_seals_it_and_creates_the_next()
    {
        var model = new LogModel();
        using (var log = Open())
        {
            ulong index = 1;
            var rolledByLogSync = 0;
            while (rolledByLogSync < 3)
            {
                var batch = Range(index, index + 9, 1, length: 300);
                index += 10;
                var segments = log.SegmentCount;
                var sync = log.SaveUnsynced(new HardState(1, 1, index - 1), batch);
                model.Save(new HardState(1, 1, index - 1), batch);
                var rolls = log.SegmentCount > segments; // the write itself found no room (Roll)
                sync.Run();
                sync.Error.ShouldBeNull();
                var filesAfterRun = Directory.GetFiles(_dir.Path, "*.seg").Length;
                log.CompleteSync(sync);
                if (!rolls && log.SegmentCount > segments)
                {
                    // Created by the LogSync: the file was there before the owner took it back.
                    filesAfterRun.ShouldBe(log.SegmentCount);
                    rolledByLogSync++;
                }
            }
            log.ShouldMatch(model.Log);
        }
        using var reopened = Open();
        reopened.ShouldMatch(model.Log);
    }

    [Fact]
    public void Compaction_with_a_term_that_does_not_match_the_log_is_refused()
    {
        using var log = Open();
        log.Save(null, Range(1, 10, 2), sync: true);
        Should.Throw<ArgumentException>(() => log.Compact(new SnapshotMetadata(5, 1)));
    }

    [Fact]
    public void Installing_a_matching_snapshot_keeps_the_suffix()
    {
        var model = new LogModel();
        using var log = Open();
        log.Save(null, Range(1, 30, 2), sync: true);
        model.Save(null, Range(1, 30, 2));
        log.InstallSnapshot(new SnapshotMetadata(20, 2)).ShouldBeTrue();
        model.Install(new SnapshotMetadata(20, 2));
        log.LastIndex.ShouldBe(30UL);
        log.ShouldMatch(model.Log);
        log.InstallSnapshot(new SnapshotMetadata(10, 2)).ShouldBeFalse();
    }

    [Theory]
    [InlineData(20UL, 3UL)] // conflicts with the entry held at 20
    [InlineData(50UL, 3UL)] // past the end of the log
    public void Installing_a_conflicting_or_later_snapshot_discards_the_whole_log(ulong index, ulong term)
    {
        var model = new LogModel();
        using (var log = Open())
        {
            log.Save(new HardState(3, 1, 5), Range(1, 30, 2), sync: true);
            model.Save(new HardState(3, 1, 5), Range(1, 30, 2));
            log.InstallSnapshot(new SnapshotMetadata(index, term)).ShouldBeTrue();
            model.Install(new SnapshotMetadata(index, term));
            log.LastIndex.ShouldBe(index);
            log.FirstIndex.ShouldBe(index + 1);
            log.ShouldMatch(model.Log);
            log.Save(null, Range(index + 1, index + 5, term), sync: true);
            model.Save(null, Range(index + 1, index + 5, term));
        }
        using var reopened = Open();
        reopened.ShouldMatch(model.Log);
    }

    [Fact]
    public void Invalid_appends_are_refused_with_a_clear_error()
    {
        using var log = Open();
        log.Save(null, Range(1, 5, 1), sync: true);
        Should.Throw<ArgumentException>(() => log.Save(null, Range(7, 8, 1), sync: true)).Message.ShouldContain("gap");
        Should.Throw<ArgumentException>(() => log.Save(null, [E(6, 1), E(8, 1)], sync: true)).Message.ShouldContain("consecutive");
        Should.Throw<ArgumentException>(() => log.Save(null, [E(6, 1, length: 5000)], sync: true)).Message.ShouldContain("MaxEntryBytes");
        log.Compact(new SnapshotMetadata(3, 1));
        Should.Throw<ArgumentException>(() => log.Save(null, Range(2, 4, 1), sync: true)).Message.ShouldContain("snapshot");
        log.LastIndex.ShouldBe(5UL);
    }

    [Fact]
    public void Bad_options_are_refused()
    {
        Should.Throw<ArgumentException>(() => Open(new StorageOptions { SegmentBytes = 1000 }));
        Should.Throw<ArgumentException>(() => Open(new StorageOptions { MaxBatchBytes = 100 }));
        Should.Throw<ArgumentException>(() => Open(new StorageOptions { CacheEntries = 0 }));
    }

    [Fact]
    public void A_second_open_of_the_same_directory_is_refused_while_the_first_is_open()
    {
        using var log = Open();
        Should.Throw<IOException>(() => Open());
    }

    [Fact]
    public void The_directory_fsync_works_on_this_platform_and_reports_a_missing_directory()
    {
        PhysicalFileSystem.Instance.SyncDirectory(_dir.Path);
        if (!OperatingSystem.IsWindows())
            Should.Throw<IOException>(() => PhysicalFileSystem.Instance.SyncDirectory(Path.Combine(_dir.Path, "missing")));
    }

    [Fact]
    public void The_log_works_as_the_storage_of_a_raft_node()
    {
        using var log = Open();
        var node = new RaftNode(new RaftOptions { Id = 1, Voters = [1] }, log);
        for (var i = 0; i < 50 && !node.HasReady(); i++) node.Tick();
        var proposed = false;
        for (var round = 0; round < 200; round++)
        {
            node.Tick();
            if (!proposed && node.Propose(new byte[] { 1, 2, 3 }).IsAccepted) proposed = true;
            while (node.HasReady())
            {
                var ready = node.GetReady();
                log.Save(ready.HardState, ready.Entries, ready.MustSync);
                node.Advance(ready);
            }
        }
        proposed.ShouldBeTrue();
        log.HardState.Commit.ShouldBe(log.LastIndex);
        var all = ReadAll(log);
        all.ShouldContain(e => e.Data.Length == 3);
    }

    [Fact]
    public void Crc32C_matches_the_standard_check_value()
    {
        // The CRC-32C of "123456789" is 0xE3069283 (RFC 3720, appendix B.4).
        Crc32C.Compute("123456789"u8).ShouldBe(0xE3069283u);
        var data = Enumerable.Range(0, 1000).Select(i => (byte)i).ToArray();
        Crc32C.Append(Crc32C.Append(~0u, data.AsSpan(0, 333)), data.AsSpan(333)).ShouldBe(~Crc32C.Compute(data));
    }
}

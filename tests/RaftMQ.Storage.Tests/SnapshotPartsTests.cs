using System.Buffers.Binary;
using RaftMQ.Raft;
using RaftMQ.Simulation;
using RaftMQ.StateMachine;
using Shouldly;
using Xunit;

namespace RaftMQ.Storage.Tests;

/// <summary>Snapshots that take ranges of other files by hard link (<see cref="ISnapshotFileSink"/>), and the format they share with plain ones.</summary>
public sealed class SnapshotPartsTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private string Snapshots => Path.Combine(_dir.Path, "snapshots");

    /// <summary>A data file of the application's, outside the snapshot directory.</summary>
    private string DataFile(string name, byte[] contents)
    {
        var path = Path.Combine(_dir.Path, name);
        File.WriteAllBytes(path, contents);
        return path;
    }

    [Fact]
    public void A_linked_range_reads_back_in_place_without_being_copied()
    {
        var store = SnapshotStore.Open(Snapshots);
        var external = SnapshotBytes.Random(300_000, 1);
        var path = DataFile("segment-1", external);
        var before = SnapshotBytes.Random(1_000, 2);
        var after = SnapshotBytes.Random(500, 3);
        using (var w = store.Create(new SnapshotMetadata(10, 2)))
        {
            w.Write(before);
            w.TryAppendFileRange(path, 1_000, 200_000).ShouldBeTrue();
            w.Write(after);
            w.Length.ShouldBe(before.Length + 200_000 + after.Length);
            w.Commit();
        }

        // The application's file keeps changing after its range: appended to, as an active segment is.
        using (var append = new FileStream(path, FileMode.Append)) append.Write(SnapshotBytes.Random(10_000, 4));

        var main = Directory.GetFiles(Snapshots, "*.snap").Single();
        new FileInfo(main).Length.ShouldBeLessThan(before.Length + after.Length + 1_000);
        Directory.GetFiles(Snapshots, "*.part*").Length.ShouldBe(1);
        using var r = store.OpenLatest().ShouldNotBeNull();
        r.Length.ShouldBe(before.Length + 200_000 + after.Length);
        SnapshotBytes.ReadToEnd(r).ShouldBe([.. before, .. external.AsSpan(1_000, 200_000), .. after]);

        // Where each byte lies, for a state machine that links instead of copying.
        r.TryGetFileRange(0, out var p0, out var o0, out var l0).ShouldBeTrue();
        (p0, o0, l0).ShouldBe((main, (long)SnapshotStore.HeaderBytes, (long)before.Length));
        r.TryGetFileRange(before.Length + 10, out var p1, out var o1, out var l1).ShouldBeTrue();
        Path.GetDirectoryName(p1).ShouldBe(Snapshots);
        (o1, l1).ShouldBe((1_010L, 200_000L - 10));
        File.ReadAllBytes(p1).AsSpan(0, external.Length).ToArray().ShouldBe(external); // the same file as the application's
        r.TryGetFileRange(r.Length, out _, out _, out _).ShouldBeFalse();
    }

    [Fact]
    public void Several_ranges_of_one_file_share_one_part_and_read_back_in_order()
    {
        var store = SnapshotStore.Open(Snapshots);
        var external = SnapshotBytes.Random(50_000, 5);
        var path = DataFile("segment-2", external);
        var between = SnapshotBytes.Random(300, 6);
        using (var w = store.Create(new SnapshotMetadata(11, 2)))
        {
            w.TryAppendFileRange(path, 100, 1_000).ShouldBeTrue();
            w.Write(between);
            w.TryAppendFileRange(path, 40_000, 5_000).ShouldBeTrue();
            w.TryAppendFileRange(path, 2_000, 10).ShouldBeTrue();
            Should.Throw<InvalidOperationException>(() => w.TryAppendFileRange(path, 49_000, 5_000)); // past the file's end
            w.Commit();
        }
        Directory.GetFiles(Snapshots, "*.part*").Length.ShouldBe(1, "one link per file, however many ranges");
        using var r = store.OpenLatest().ShouldNotBeNull();
        SnapshotBytes.ReadToEnd(r).ShouldBe([.. external.AsSpan(100, 1_000), .. between, .. external.AsSpan(40_000, 5_000), .. external.AsSpan(2_000, 10)]);
    }

    [Fact]
    public void Parts_go_with_their_snapshot_and_orphans_are_removed_on_open()
    {
        var store = SnapshotStore.Open(Snapshots);
        var path = DataFile("segment-1", SnapshotBytes.Random(10_000, 1));
        foreach (var index in new ulong[] { 5, 6 })
        {
            using var w = store.Create(new SnapshotMetadata(index, 1));
            w.TryAppendFileRange(path, 0, 10_000).ShouldBeTrue();
            w.Commit();
        }
        // One snapshot kept (RetainSnapshots = 1), with its one part; the older one's part went with it.
        Directory.GetFiles(Snapshots, "*.snap").Length.ShouldBe(1);
        var kept = Directory.GetFiles(Snapshots, "*.part*").ShouldHaveSingleItem();

        // A writer that never committed leaves a temporary part; a crash between renames leaves an unnamed part.
        var abandoned = store.Create(new SnapshotMetadata(7, 1));
        abandoned.TryAppendFileRange(path, 0, 10).ShouldBeTrue();
        File.Copy(kept, Path.Combine(Snapshots, "snap-00000000000000000004-00000000000000000001.snap.part0.0123456789ab"));
        Directory.GetFiles(Snapshots, "*.part*").Length.ShouldBe(3);

        SnapshotStore.Open(Snapshots);
        Directory.GetFiles(Snapshots, "*.part*").ShouldBe([kept]);
        File.Exists(path).ShouldBeTrue(); // the application's own file is never touched
        abandoned.Dispose();
    }

    [Fact]
    public void A_writer_disposed_without_commit_removes_its_parts()
    {
        var store = SnapshotStore.Open(Snapshots);
        var path = DataFile("segment-1", SnapshotBytes.Random(100, 1));
        using (var w = store.Create(new SnapshotMetadata(5, 1)))
        {
            w.TryAppendFileRange(path, 0, 100).ShouldBeTrue();
        }
        Directory.GetFiles(Snapshots).ShouldBeEmpty();
        File.Exists(path).ShouldBeTrue();
    }

    [Fact]
    public void A_missing_or_short_part_is_a_clear_corruption_error()
    {
        var store = SnapshotStore.Open(Snapshots);
        var path = DataFile("segment-1", SnapshotBytes.Random(1_000, 1));
        using (var w = store.Create(new SnapshotMetadata(5, 1)))
        {
            w.TryAppendFileRange(path, 0, 1_000).ShouldBeTrue();
            w.Commit();
        }
        var part = Directory.GetFiles(Snapshots, "*.part*").Single();
        using (var shorten = File.OpenHandle(part, FileMode.Open, FileAccess.ReadWrite)) RandomAccess.SetLength(shorten, 500);
        Should.Throw<StorageCorruptedException>(() => store.OpenLatest()).Message.ShouldContain(part);
        File.Delete(part);
        var error = Should.Throw<StorageCorruptedException>(() => store.OpenLatest());
        error.Message.ShouldContain("missing");
        error.Message.ShouldContain(part);
    }

    [Fact]
    public void A_range_past_the_end_of_its_file_is_refused_when_it_is_added()
    {
        var store = SnapshotStore.Open(Snapshots);
        var path = DataFile("segment-1", SnapshotBytes.Random(100, 1));
        using var w = store.Create(new SnapshotMetadata(5, 1));
        Should.Throw<InvalidOperationException>(() => w.TryAppendFileRange(path, 50, 100)).Message.ShouldContain(path);
        Directory.GetFiles(Snapshots, "*.part*").ShouldBeEmpty();
    }

    [Fact]
    public void A_file_system_that_cannot_link_makes_the_writer_decline()
    {
        var fs = new FaultyFileSystem();
        var store = SnapshotStore.Open("/snapshots", new StorageOptions { FileSystem = fs });
        var path = DataFile("segment-1", SnapshotBytes.Random(100, 1));
        using var w = store.Create(new SnapshotMetadata(5, 1));
        w.TryAppendFileRange(path, 0, 100).ShouldBeFalse();
        w.Write(SnapshotBytes.Random(100, 1));
        w.Commit();
        using var r = store.OpenLatest().ShouldNotBeNull();
        SnapshotBytes.ReadToEnd(r).ShouldBe(SnapshotBytes.Random(100, 1));
        r.TryGetFileRange(0, out _, out _, out _).ShouldBeFalse(); // not on the operating system's file system
    }

    [Fact]
    public void A_version_1_snapshot_is_still_read()
    {
        var data = SnapshotBytes.Random(5_000, 9);
        var header = new byte[48];
        BinaryPrimitives.WriteUInt64LittleEndian(header, SnapshotStore.Magic);
        BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(8), 1);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(12), 48);
        BinaryPrimitives.WriteUInt64LittleEndian(header.AsSpan(16), 12);
        BinaryPrimitives.WriteUInt64LittleEndian(header.AsSpan(24), 3);
        BinaryPrimitives.WriteUInt64LittleEndian(header.AsSpan(32), (ulong)data.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(40), Crc32C.Compute(data));
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(44), Crc32C.Compute(header.AsSpan(0, 44)));
        Directory.CreateDirectory(Snapshots);
        File.WriteAllBytes(Path.Combine(Snapshots, "snap-00000000000000000012-00000000000000000003.snap"), [.. header, .. data]);

        var store = SnapshotStore.Open(Snapshots);
        using var r = store.OpenLatest().ShouldNotBeNull();
        r.Metadata.ShouldBe(new SnapshotMetadata(12, 3));
        SnapshotBytes.ReadToEnd(r).ShouldBe(data);
        r.TryGetFileRange(100, out _, out var offset, out var length).ShouldBeTrue();
        (offset, length).ShouldBe((148L, data.Length - 100L));
    }
}

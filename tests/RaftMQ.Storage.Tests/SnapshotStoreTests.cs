using RaftMQ.Raft;
using RaftMQ.Simulation;
using Shouldly;
using Xunit;
using static RaftMQ.Storage.Tests.Logs;

namespace RaftMQ.Storage.Tests;

public sealed class SnapshotStoreTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void A_committed_snapshot_opens_with_its_metadata_and_bytes()
    {
        var store = SnapshotStore.Open(_dir.Path);
        store.Latest.ShouldBeNull();
        store.OpenLatest().ShouldBeNull();
        var data = SnapshotBytes.Random(700_000, 1);
        using (var w = store.Create(new SnapshotMetadata(10, 2)))
        {
            w.Write(data.AsSpan(0, 123));
            w.Write(data.AsSpan(123));
            w.Commit();
        }
        store.Latest.ShouldBe(new SnapshotMetadata(10, 2));
        using var r = store.OpenLatest().ShouldNotBeNull();
        r.Metadata.ShouldBe(new SnapshotMetadata(10, 2));
        r.Length.ShouldBe(data.Length);
        SnapshotBytes.ReadToEnd(r).ShouldBe(data);
    }

    [Fact]
    public void The_newest_snapshots_are_kept_and_older_ones_deleted()
    {
        var store = SnapshotStore.Open(_dir.Path, new StorageOptions { RetainSnapshots = 2 });
        foreach (var i in new ulong[] { 5, 20, 10, 30 }) store.Save(new SnapshotMetadata(i, 1), new MemoryStream(SnapshotBytes.Random(100, (int)i)));
        store.Latest.ShouldBe(new SnapshotMetadata(30, 1));
        Directory.GetFiles(_dir.Path, "*.snap").Length.ShouldBe(2);
        using var r = store.OpenLatest().ShouldNotBeNull();
        SnapshotBytes.ReadToEnd(r).ShouldBe(SnapshotBytes.Random(100, 30));
    }

    [Fact]
    public void A_snapshot_disposed_without_commit_is_discarded()
    {
        var store = SnapshotStore.Open(_dir.Path);
        using (var w = store.Create(new SnapshotMetadata(10, 2))) w.Write(SnapshotBytes.Random(1000, 1));
        store.Latest.ShouldBeNull();
        Directory.GetFiles(_dir.Path).ShouldBeEmpty();
    }

    [Fact]
    public void Unfinished_temporary_files_are_removed_on_open()
    {
        File.WriteAllBytes(Path.Combine(_dir.Path, "snap-00000000000000000010-00000000000000000002.snap.tmp"), [1, 2, 3]);
        var store = SnapshotStore.Open(_dir.Path);
        store.Latest.ShouldBeNull();
        Directory.GetFiles(_dir.Path).ShouldBeEmpty();
    }

    [Fact]
    public void A_damaged_snapshot_is_a_clear_corruption_error()
    {
        var store = SnapshotStore.Open(_dir.Path);
        store.Save(new SnapshotMetadata(10, 2), new MemoryStream(SnapshotBytes.Random(5000, 1)));
        var path = Directory.GetFiles(_dir.Path, "*.snap").Single();
        var bytes = File.ReadAllBytes(path);
        bytes[3000] ^= 0x10;
        File.WriteAllBytes(path, bytes);
        var ex = Should.Throw<StorageCorruptedException>(() => store.OpenLatest());
        ex.FilePath.ShouldBe(path);
        ex.Message.ShouldContain("checksum");

        File.WriteAllBytes(path, bytes[..100]);
        Should.Throw<StorageCorruptedException>(() => store.OpenLatest()).Message.ShouldContain("promises");
    }

    [Fact]
    public void A_snapshot_over_the_size_bound_is_refused()
    {
        var store = SnapshotStore.Open(_dir.Path, new StorageOptions { MaxSnapshotBytes = 1000 });
        using var w = store.Create(new SnapshotMetadata(1, 1));
        w.Write(new byte[600]);
        Should.Throw<InvalidOperationException>(() => w.Write(new byte[600])).Message.ShouldContain("MaxSnapshotBytes");
    }

    [Fact]
    public void A_snapshot_is_durable_only_once_committed()
    {
        var fs = new FaultyFileSystem();
        var options = new StorageOptions { FileSystem = fs };
        var store = SnapshotStore.Open("/sim/snaps", options);
        var w = store.Create(new SnapshotMetadata(7, 1));
        w.Write(SnapshotBytes.Random(10_000, 3));
        SnapshotStore.Open("/sim/snaps", new StorageOptions { FileSystem = fs.Crash(CrashMode.KeepPrefix, new Random(1), long.MaxValue) })
            .Latest.ShouldBeNull();
        w.Commit();
        var after = SnapshotStore.Open("/sim/snaps", new StorageOptions { FileSystem = fs.Crash(CrashMode.DropUnsynced, new Random(1)) });
        using var r = after.OpenLatest().ShouldNotBeNull();
        SnapshotBytes.ReadToEnd(r).ShouldBe(SnapshotBytes.Random(10_000, 3));
    }

    [Fact]
    public void Node_storage_finishes_adopting_a_snapshot_saved_just_before_a_crash()
    {
        var model = new LogModel();
        using (var storage = NodeStorage.Open(_dir.Path, SmallOptions()))
        {
            storage.Save(new HardState(2, 1, 40), Range(1, 50, 2), sync: true);
            model.Save(new HardState(2, 1, 40), Range(1, 50, 2));
            using var w = storage.CreateSnapshot(new SnapshotMetadata(40, 2));
            w.Write(SnapshotBytes.Random(100, 1));
            w.Commit();
            // The crash comes before Compact.
        }
        model.Compact(new SnapshotMetadata(40, 2));
        using var reopened = NodeStorage.Open(_dir.Path, SmallOptions());
        reopened.Log.ShouldMatch(model.Log);
        using var snap = reopened.OpenLatestSnapshot().ShouldNotBeNull();
        snap.Metadata.ShouldBe(new SnapshotMetadata(40, 2));
    }

    [Fact]
    public void Node_storage_installs_a_leader_snapshot_that_conflicts_with_the_log()
    {
        var model = new LogModel();
        using (var storage = NodeStorage.Open(_dir.Path, SmallOptions()))
        {
            storage.Save(new HardState(2, 1, 10), Range(1, 50, 2), sync: true);
            model.Save(new HardState(2, 1, 10), Range(1, 50, 2));
            storage.InstallSnapshot(new SnapshotMetadata(30, 3), new MemoryStream(SnapshotBytes.Random(1000, 2))).ShouldBeTrue();
            model.Install(new SnapshotMetadata(30, 3));
            storage.Log.ShouldMatch(model.Log);
            storage.InstallSnapshot(new SnapshotMetadata(20, 3), new MemoryStream(SnapshotBytes.Random(10, 2))).ShouldBeFalse();
        }
        using var reopened = NodeStorage.Open(_dir.Path, SmallOptions());
        reopened.Log.ShouldMatch(model.Log);
        reopened.Log.LastIndex.ShouldBe(30UL);
        using var snap = reopened.OpenLatestSnapshot().ShouldNotBeNull();
        SnapshotBytes.ReadToEnd(snap).ShouldBe(SnapshotBytes.Random(1000, 2));
    }

    [Fact]
    public void Node_storage_refuses_a_compacted_log_whose_snapshot_is_gone()
    {
        using (var storage = NodeStorage.Open(_dir.Path, SmallOptions()))
        {
            storage.Save(null, Range(1, 50, 2), sync: true);
            storage.Compact(new SnapshotMetadata(40, 2));
        }
        Should.Throw<StorageCorruptedException>(() => NodeStorage.Open(_dir.Path, SmallOptions())).Message.ShouldContain("compacted through index 40");
    }
}

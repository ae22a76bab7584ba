using System.Buffers.Binary;
using RaftMQ.Raft;
using Shouldly;
using Xunit;
using static RaftMQ.Storage.Tests.Logs;

namespace RaftMQ.Storage.Tests;

/// <summary>
/// A snapshot records the cluster configuration as of its index in its header (docs/storage.md, "Snapshot file"),
/// and a snapshot without one has the fixed 64-byte header.
/// </summary>
public sealed class SnapshotConfigurationTests : IDisposable
{
    private static readonly ClusterConfiguration Configuration = new([1, 2, 4], [5]);

    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private string OnlySnapshotFile() => Directory.GetFiles(_dir.Path, "snap-*.snap").ShouldHaveSingleItem();

    [Fact]
    public void A_snapshot_with_a_configuration_reads_back_with_it_and_its_data()
    {
        var store = SnapshotStore.Open(_dir.Path);
        var data = SnapshotBytes.Random(300_000, 300_000);
        store.Save(new SnapshotMetadata(10, 2) { Configuration = Configuration }, new MemoryStream(data));

        using var r = store.OpenLatest().ShouldNotBeNull();

        r.Metadata.Configuration.ShouldBe(Configuration);
        SnapshotBytes.ReadToEnd(r).ShouldBe(data);
        r.TryGetFileRange(0, out _, out var dataStart, out _).ShouldBeTrue();
        dataStart.ShouldBe(64 + Configuration.Encode().Length + 4);
        store.ReadConfiguration(new SnapshotMetadata(10, 2)).ShouldBe(Configuration);
        BinaryPrimitives.ReadUInt16LittleEndian(File.ReadAllBytes(OnlySnapshotFile()).AsSpan(8)).ShouldBe((ushort)2);
    }

    [Fact]
    public void A_snapshot_without_a_configuration_has_the_fixed_header()
    {
        var store = SnapshotStore.Open(_dir.Path);
        var data = SnapshotBytes.Random(1000, 1000);
        store.Save(new SnapshotMetadata(10, 2), new MemoryStream(data));

        var bytes = File.ReadAllBytes(OnlySnapshotFile());
        BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(8)).ShouldBe((ushort)2);
        BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(12)).ShouldBe(64u);
        bytes.AsSpan(64, data.Length).ToArray().ShouldBe(data);
        using var r = store.OpenLatest().ShouldNotBeNull();
        r.Metadata.Configuration.ShouldBeNull();
        SnapshotBytes.ReadToEnd(r).ShouldBe(data);
        store.ReadConfiguration(new SnapshotMetadata(10, 2)).ShouldBeNull();
    }

    [Fact]
    public void A_damaged_configuration_is_reported_as_corruption()
    {
        var store = SnapshotStore.Open(_dir.Path);
        store.Save(new SnapshotMetadata(10, 2) { Configuration = Configuration }, new MemoryStream(SnapshotBytes.Random(100, 100)));
        var path = OnlySnapshotFile();
        var bytes = File.ReadAllBytes(path);
        bytes[64 + 6] ^= 0xFF; // a byte of the first voter id
        File.WriteAllBytes(path, bytes);

        Should.Throw<StorageCorruptedException>(() => store.OpenLatest()).Message.ShouldContain("configuration checksum mismatch");
        Should.Throw<StorageCorruptedException>(() => store.ReadConfiguration(new SnapshotMetadata(10, 2)));
    }

    [Fact]
    public void Node_storage_recovers_the_configuration_of_its_snapshot_after_a_restart()
    {
        var snapshot = new SnapshotMetadata(40, 2) { Configuration = Configuration };
        using (var storage = NodeStorage.Open(_dir.Path, SmallOptions()))
        {
            storage.Save(new HardState(2, 1, 40), Range(1, 50, 2), sync: true);
            using (var w = storage.CreateSnapshot(snapshot))
            {
                w.Write(SnapshotBytes.Random(100, 100));
                w.Commit();
            }
            storage.Compact(snapshot);
            storage.Log.Snapshot.Configuration.ShouldBe(Configuration);
        }

        using var reopened = NodeStorage.Open(_dir.Path, SmallOptions());

        reopened.Log.Snapshot.ShouldBe(new SnapshotMetadata(40, 2));
        reopened.Log.Snapshot.Configuration.ShouldBe(Configuration);
        // And a core started over it knows the configuration although the log no longer holds its entries.
        var node = new RaftNode(new RaftOptions { Id = 1, Voters = [1, 2, 3] }, reopened.Log);
        node.Configuration.ShouldBe(Configuration);
    }

    [Fact]
    public void Node_storage_keeps_the_configuration_of_a_leader_snapshot_it_installed()
    {
        var snapshot = new SnapshotMetadata(30, 3) { Configuration = Configuration };
        using (var storage = NodeStorage.Open(_dir.Path, SmallOptions()))
        {
            storage.Save(new HardState(2, 1, 10), Range(1, 20, 2), sync: true);
            storage.InstallSnapshot(snapshot, new MemoryStream(SnapshotBytes.Random(1000, 1000))).ShouldBeTrue();
            storage.Log.Snapshot.Configuration.ShouldBe(Configuration);
        }

        using var reopened = NodeStorage.Open(_dir.Path, SmallOptions());

        reopened.Log.Snapshot.Configuration.ShouldBe(Configuration);
    }
}

using RaftMQ.Queue.Store;
using RaftMQ.Raft;
using RaftMQ.Storage;
using static RaftMQ.Queue.Tests.QueueTestSteps;

namespace RaftMQ.Queue.Tests;

/// <summary>
/// Restoring from a snapshot file links each topic's records instead of copying them (docs/queue-store.md, Restart):
/// the restore costs O(topics), and the records stay checked when they are read.
/// </summary>
public sealed class QueueSnapshotLinkTests : IDisposable
{
    private readonly TestQueues _queues = new();

    public void Dispose() => _queues.Dispose();

    private static string[] SegmentPaths(QueueStateMachine sm) => [.. Directory.GetFiles(sm.Directory, "*.seg").Order(StringComparer.Ordinal)];

    private SnapshotStore Snapshots() => SnapshotStore.Open(Path.Combine(_queues.Root, "snapshots"));

    /// <summary>Writes <paramref name="sm"/>'s state as snapshot <paramref name="index"/> and returns the file's path.</summary>
    private static string Save(SnapshotStore store, QueueStateMachine sm, ulong index)
    {
        using (var captured = sm.CaptureSnapshot())
        using (var writer = store.Create(new SnapshotMetadata(index, 1)))
        {
            captured.WriteTo(writer);
            writer.Commit();
        }
        return Directory.GetFiles(store.Directory, $"snap-{index:D20}-*.snap").Single();
    }

    private static QueueStateMachine Filled(TestQueues queues, int count)
    {
        var sm = queues.Create(storeOptions: new QueueStoreOptions { SegmentBytes = 4_096 });
        Apply(sm, QueueCommand.CreateTopic("a"));
        Apply(sm, QueueCommand.CreateTopic("empty"));
        Apply(sm, QueueCommand.CreateTopic("b")); // last in the snapshot: its last record ends the file
        for (int i = 0; i < count; i++) Apply(sm, QueueCommand.Publish(i % 3 == 0 ? "b" : "a", $"message {i}"));
        Apply(sm, QueueCommand.PopBatch("a", 5)); // heads that are not at offset 0
        return sm;
    }

    [Fact]
    public void Restoring_a_snapshot_file_links_it_and_every_message_reads_back()
    {
        var source = Filled(_queues, 3_000);
        var store = Snapshots();
        var file = Save(store, source, 10);

        var restored = _queues.Create();
        using (var stream = store.OpenLatest()!) restored.RestoreSnapshot(stream);

        // Taking the snapshot linked the source's segment files as parts instead of copying them: the snapshot file
        // holds the index and the run table only. Restoring linked those parts again: one segment per source segment,
        // each the same file as a part.
        new FileInfo(file).Length.ShouldBeLessThan(8_192);
        var parts = Directory.GetFiles(store.Directory, "*.part*").Select(p => new FileInfo(p).Length).Order().ToArray();
        var segments = SegmentPaths(restored).Select(p => new FileInfo(p).Length).Order().ToArray();
        segments.Length.ShouldBe(SegmentPaths(source).Length);
        segments.ShouldBe(parts);
        parts.Sum().ShouldBeGreaterThan(source.TotalMessageBytes);

        restored.Topics().ShouldBe(["a", "empty", "b"]);
        restored.Offsets("a").ShouldBe(source.Offsets("a"));
        restored.Offsets("b").ShouldBe(source.Offsets("b"));
        restored.TotalMessageBytes.ShouldBe(source.TotalMessageBytes);
        restored.TotalMessages.ShouldBe(source.TotalMessages);
        foreach (var topic in new[] { "a", "b", "empty" })
        {
            var expected = Apply(source, QueueCommand.PopBatch(topic, 1_000)).Messages;
            Apply(restored, QueueCommand.PopBatch(topic, 1_000)).Messages.ShouldBe(expected, topic);
        }
    }

    [Fact]
    public void Linked_topics_outlive_the_snapshot_file_and_grow_into_new_segments()
    {
        var source = Filled(_queues, 600);
        var store = Snapshots();
        var file = Save(store, source, 10);
        var restored = _queues.Create(storeOptions: new QueueStoreOptions { SegmentBytes = 4_096 });
        using (var stream = store.OpenLatest()!) restored.RestoreSnapshot(stream);
        File.Delete(file); // as the snapshot store does once a newer snapshot is durable

        for (int i = 0; i < 200; i++)
        {
            Apply(source, QueueCommand.Publish("a", $"after {i}"));
            Apply(restored, QueueCommand.Publish("a", $"after {i}"));
        }
        restored.Offsets("a").ShouldBe(source.Offsets("a"));
        SegmentPaths(restored).Length.ShouldBeGreaterThan(2); // the linked one is sealed: appends go to new files

        // A snapshot of the restored state reads the linked records from the topic's head on.
        Apply(source, QueueCommand.PopBatch("a", 7));
        Apply(restored, QueueCommand.PopBatch("a", 7));
        Save(store, restored, 20);
        var again = _queues.Create();
        using (var stream = store.OpenLatest()!) again.RestoreSnapshot(stream);
        foreach (var topic in new[] { "a", "b" })
        {
            var expected = Apply(source, QueueCommand.PopBatch(topic, 1_000)).Messages;
            expected!.Count.ShouldBeGreaterThan(0);
            Apply(restored, QueueCommand.PopBatch(topic, 1_000)).Messages.ShouldBe(expected, topic);
            Apply(again, QueueCommand.PopBatch(topic, 1_000)).Messages.ShouldBe(expected, topic);
        }
    }

    [Fact]
    public void A_drained_linked_topic_drops_its_link()
    {
        var source = Filled(_queues, 300);
        var store = Snapshots();
        Save(store, source, 10);
        var restored = _queues.Create();
        using (var stream = store.OpenLatest()!) restored.RestoreSnapshot(stream);
        string[] TopicB() => [.. SegmentPaths(restored).Where(p => Path.GetFileName(p).Contains("-t2-", StringComparison.Ordinal))];
        TopicB().ShouldNotBeEmpty();

        while (Apply(restored, QueueCommand.Pop("b")).Status == QueueStatus.Ok) { }
        TopicB().ShouldBeEmpty();
        restored.Depth("b").ShouldBe(0);
        Apply(restored, QueueCommand.Publish("b", "new"));
        Apply(restored, QueueCommand.Pop("b")).Message.ShouldBe("new");
    }

    [Fact]
    public void A_record_damaged_after_the_snapshot_was_opened_is_reported_when_it_is_read()
    {
        var source = Filled(_queues, 100);
        var store = Snapshots();
        Save(store, source, 10);
        var restored = _queues.Create();
        using (var stream = store.OpenLatest()!) restored.RestoreSnapshot(stream);

        // Damage the last byte of topic "b"'s last linked segment: inside its last record. (That segment is the same
        // file as a part of the snapshot and as the source's segment: one inode.)
        var lastOfB = Directory.GetFiles(restored.Directory, "*-t2-*.seg").Order(StringComparer.Ordinal).Last();
        using (var handle = File.OpenHandle(lastOfB, FileMode.Open, FileAccess.ReadWrite))
        {
            var last = new byte[1];
            var length = RandomAccess.GetLength(handle);
            RandomAccess.Read(handle, last, length - 1);
            last[0] ^= 0xFF;
            RandomAccess.Write(handle, last, length - 1);
        }
        var depth = restored.Depth("b")!.Value;
        for (int i = 0; i < depth - 1; i++) Apply(restored, QueueCommand.Pop("b")).Status.ShouldBe(QueueStatus.Ok);
        var error = Should.Throw<QueueStoreCorruptException>(() => Apply(restored, QueueCommand.Pop("b")));
        error.Message.ShouldContain(restored.Directory);
    }

    [Fact]
    public void A_stream_that_is_not_a_snapshot_file_is_copied_as_before()
    {
        var source = Filled(_queues, 300);
        using var buffer = new MemoryStream();
        using (var captured = source.CaptureSnapshot()) captured.WriteTo(buffer);
        buffer.Position = 0;
        var restored = _queues.Create();
        restored.RestoreSnapshot(buffer);
        SegmentPaths(restored).Sum(p => new FileInfo(p).Length).ShouldBe(restored.TotalMessageBytes);
        Apply(restored, QueueCommand.PopBatch("a", 1_000)).Messages.ShouldBe(Apply(source, QueueCommand.PopBatch("a", 1_000)).Messages);
    }

    [Fact]
    public void A_new_store_deletes_the_links_a_previous_run_left()
    {
        var source = Filled(_queues, 100);
        var store = Snapshots();
        var file = Save(store, source, 10);
        var restored = _queues.Create();
        using (var stream = store.OpenLatest()!) restored.RestoreSnapshot(stream);
        var directory = restored.Directory;
        restored.Dispose();
        File.Exists(file).ShouldBeTrue();
        using var next = new QueueStateMachine(directory);
        Directory.GetFiles(directory, "*.seg").ShouldBeEmpty();
        File.Exists(file).ShouldBeTrue(); // the snapshot's own name is untouched
    }
}

using System.Text;
using RaftMQ.Queue.Store;
using RaftMQ.StateMachine;
using static RaftMQ.Queue.Tests.QueueTestSteps;

namespace RaftMQ.Queue.Tests;

/// <summary>The message store under the queue: its files, snapshots, bounds, memory and faults (docs/queue-store.md).</summary>
[Collection(QueueMemoryCollection.Name)]
public sealed class QueueStoreTests : IDisposable
{
    private const int O = QueueLimits.MessageOverheadBytes;

    private readonly TestQueues _queues = new();

    public void Dispose() => _queues.Dispose();

    private static string[] SegmentFiles(QueueStateMachine sm) =>
        [.. Directory.GetFiles(sm.Directory, "*.seg").Select(Path.GetFileName).Order(StringComparer.Ordinal)!];

    [Fact]
    public void Two_stores_fed_the_same_commands_write_byte_identical_segment_files()
    {
        var options = new QueueStoreOptions { SegmentBytes = 1_000 };
        var a = _queues.Create(storeOptions: options);
        var b = _queues.Create(storeOptions: options);
        var rng = new Random(42);
        foreach (var sm in new[] { a, b })
        {
            Apply(sm, QueueCommand.CreateTopic("x"));
            Apply(sm, QueueCommand.CreateTopic("y/ü"));
        }
        for (int i = 0; i < 2_000; i++)
        {
            var topic = rng.Next(2) == 0 ? "x" : "y/ü";
            var command = rng.Next(4) switch
            {
                0 => QueueCommand.Publish(topic, new string('a', rng.Next(0, 60))),
                1 => QueueCommand.PublishBatch(topic, [.. Enumerable.Range(0, rng.Next(1, 5)).Select(j => $"m{i}.{j}")]),
                2 => QueueCommand.Pop(topic),
                _ => QueueCommand.PopBatch(topic, rng.Next(1, 4)),
            };
            Apply(a, command).ShouldBe(Apply(b, command));
        }
        var files = SegmentFiles(a);
        files.Length.ShouldBeGreaterThan(1);
        SegmentFiles(b).ShouldBe(files);
        foreach (var file in files)
            File.ReadAllBytes(Path.Combine(b.Directory, file)).ShouldBe(File.ReadAllBytes(Path.Combine(a.Directory, file)), file);
    }

    [Fact]
    public void A_record_is_length_crc_offset_timestamp_flags_header_length_then_the_payload()
    {
        var sm = _queues.Create();
        Apply(sm, QueueCommand.CreateTopic("t"));
        Apply(sm, QueueCommand.PublishBatch("t", ["", "hé"]));
        var bytes = File.ReadAllBytes(Path.Combine(sm.Directory, SegmentFiles(sm).Single()));
        bytes.Length.ShouldBe(2 * O + 3);
        var second = bytes.AsSpan(O);
        BitConverter.ToUInt32(second).ShouldBe((uint)(O - 8 + 3)); // length of what follows the checksum
        BitConverter.ToUInt32(second[4..]).ShouldBe(RaftMQ.Storage.Crc32C.Compute(second[8..])); // the project's CRC-32C
        BitConverter.ToUInt64(second[8..]).ShouldBe(1UL); // offset
        BitConverter.ToInt64(second[16..]).ShouldBe(0L); // timestamp: not carried by commands yet
        BitConverter.ToUInt16(second[24..]).ShouldBe((ushort)0); // flags
        BitConverter.ToUInt16(second[26..]).ShouldBe((ushort)0); // header length
        Encoding.UTF8.GetString(second[28..]).ShouldBe("hé");
        sm.Offsets("t").ShouldBe((0UL, 2UL));
    }

    [Fact]
    public void Consumed_segments_are_deleted_and_offsets_keep_counting()
    {
        var sm = _queues.Create(storeOptions: new QueueStoreOptions { SegmentBytes = 10 * (O + 4) });
        Apply(sm, QueueCommand.CreateTopic("t"));
        for (int i = 0; i < 100; i++) Apply(sm, QueueCommand.Publish("t", $"{i:D4}"));
        SegmentFiles(sm).Length.ShouldBe(10);
        for (int i = 0; i < 55; i++) Apply(sm, QueueCommand.Pop("t")).Message.ShouldBe($"{i:D4}");
        SegmentFiles(sm).Length.ShouldBe(5); // the segment holding 50..59 is half consumed
        sm.Offsets("t").ShouldBe((55UL, 100UL));
        Apply(sm, QueueCommand.PopBatch("t", 1_000)).Messages!.Count.ShouldBe(45);
        SegmentFiles(sm).ShouldBeEmpty(); // drained, and the active segment held over a quarter of SegmentBytes
        Apply(sm, QueueCommand.Publish("t", "next"));
        SegmentFiles(sm).ShouldBe(["g0-t0-00000000000000000100.seg"]);
        sm.TotalMessageBytes.ShouldBe(O + 4);
        Apply(sm, QueueCommand.Pop("t")).Message.ShouldBe("next");
        SegmentFiles(sm).ShouldBe(["g0-t0-00000000000000000100.seg"]); // a small active segment stays: no file per message
        Apply(sm, QueueCommand.Publish("t", "last")).ShouldBe(QueueResult.Ok);
        Apply(sm, QueueCommand.Pop("t")).Message.ShouldBe("last");
    }

    [Fact]
    public void A_snapshot_written_after_more_commands_holds_the_state_at_capture()
    {
        var sm = _queues.Create(storeOptions: new QueueStoreOptions { SegmentBytes = 500 });
        Apply(sm, QueueCommand.CreateTopic("t"));
        for (int i = 0; i < 100; i++) Apply(sm, QueueCommand.Publish("t", $"before {i}"));
        for (int i = 0; i < 10; i++) Apply(sm, QueueCommand.Pop("t"));
        var filesAtCapture = SegmentFiles(sm);
        var snapshot = sm.CaptureSnapshot();

        // Consume everything captured (compaction would delete those files), add more, and a topic.
        Apply(sm, QueueCommand.PopBatch("t", 1_000)).Messages!.Count.ShouldBe(90);
        for (int i = 0; i < 50; i++) Apply(sm, QueueCommand.Publish("t", $"after {i}"));
        Apply(sm, QueueCommand.CreateTopic("later"));
        foreach (var file in filesAtCapture) File.Exists(Path.Combine(sm.Directory, file)).ShouldBeTrue(file);

        using var buffer = new MemoryStream();
        snapshot.WriteTo(buffer);
        snapshot.Dispose();
        // All but the segment that was active at capture are consumed: released by the snapshot, they are gone.
        foreach (var file in filesAtCapture[..^1]) File.Exists(Path.Combine(sm.Directory, file)).ShouldBeFalse(file);

        var restored = _queues.Create();
        buffer.Position = 0;
        restored.RestoreSnapshot(buffer);
        restored.Topics().ShouldBe(["t"]);
        restored.Offsets("t").ShouldBe((10UL, 100UL));
        restored.TotalMessageBytes.ShouldBe(Enumerable.Range(10, 90).Sum(i => O + $"before {i}".Length));
        Apply(restored, QueueCommand.PopBatch("t", 1_000)).Messages.ShouldBe(Enumerable.Range(10, 90).Select(i => $"before {i}"));
        Apply(restored, QueueCommand.Publish("t", "x"));
        restored.Offsets("t").ShouldBe((100UL, 101UL)); // offsets go on from the snapshot's
    }

    [Fact]
    public async Task A_snapshot_is_written_on_another_thread_while_commands_go_on()
    {
        var sm = _queues.Create(storeOptions: new QueueStoreOptions { SegmentBytes = 4_096 });
        Apply(sm, QueueCommand.CreateTopic("t"));
        var expected = Enumerable.Range(0, 5_000).Select(i => $"captured {i}").ToArray();
        foreach (var chunk in expected.Chunk(500)) Apply(sm, QueueCommand.PublishBatch("t", chunk));
        var snapshot = sm.CaptureSnapshot();
        using var buffer = new MemoryStream();
        var writing = Task.Run(() =>
        {
            snapshot.WriteTo(buffer);
            snapshot.Dispose();
        });
        // Meanwhile the loop consumes what was captured (compaction retires its segments) and appends more.
        for (int i = 0; i < 5_000; i++)
        {
            Apply(sm, QueueCommand.Pop("t")).Message.ShouldBe(expected[i]);
            Apply(sm, QueueCommand.Publish("t", $"later {i}"));
        }
        await writing;

        var restored = _queues.Create();
        buffer.Position = 0;
        restored.RestoreSnapshot(buffer);
        Apply(restored, QueueCommand.PopBatch("t", 1_000)).Messages!.Count.ShouldBe(1_000);
        restored.Depth("t").ShouldBe(4_000);
        for (int i = 1_000; i < 5_000; i++) Apply(restored, QueueCommand.Pop("t")).Message.ShouldBe(expected[i]);
        // Only the live segments are left: the captured ones went with the snapshot.
        ((long)SegmentFiles(sm).Length).ShouldBeLessThanOrEqualTo(sm.TotalMessageBytes / 4_096 + 2);
    }

    [Fact]
    public void Restoring_replaces_the_files_while_an_earlier_capture_still_reads_its_own()
    {
        var sm = _queues.Create(storeOptions: new QueueStoreOptions { SegmentBytes = 200 });
        Apply(sm, QueueCommand.CreateTopic("t"));
        for (int i = 0; i < 20; i++) Apply(sm, QueueCommand.Publish("t", $"old {i}"));
        var old = sm.CaptureSnapshot();

        var other = _queues.Create();
        Apply(other, QueueCommand.CreateTopic("u"));
        Apply(other, QueueCommand.Publish("u", "new"));
        using var otherSnapshot = new MemoryStream();
        other.WriteSnapshot(otherSnapshot);
        otherSnapshot.Position = 0;
        sm.RestoreSnapshot(otherSnapshot);
        sm.Topics().ShouldBe(["u"]);
        SegmentFiles(sm).Count(f => f.StartsWith("g1-", StringComparison.Ordinal)).ShouldBe(1);

        using var buffer = new MemoryStream();
        old.WriteTo(buffer);
        old.Dispose();
        SegmentFiles(sm).ShouldBe(["g1-t0-00000000000000000000.seg"]);
        var check = _queues.Create();
        buffer.Position = 0;
        check.RestoreSnapshot(buffer);
        Apply(check, QueueCommand.PopBatch("t", 100)).Messages.ShouldBe(Enumerable.Range(0, 20).Select(i => $"old {i}"));
        Apply(sm, QueueCommand.Pop("u")).Message.ShouldBe("new");
    }

    [Fact]
    public void A_snapshot_from_before_the_store_is_restored()
    {
        // Version 1: magic, version, topic count, then per topic its name, message count and messages as strings.
        using var buffer = new MemoryStream();
        using (var w = new BinaryWriter(buffer, Encoding.UTF8, leaveOpen: true))
        {
            w.Write(0x51464D52u);
            w.Write((byte)1);
            w.Write(2);
            w.Write("a");
            w.Write(2);
            w.Write("one");
            w.Write("");
            w.Write("empty");
            w.Write(0);
        }
        var sm = _queues.Create();
        buffer.Position = 0;
        sm.RestoreSnapshot(buffer);
        sm.Topics().ShouldBe(["a", "empty"]);
        sm.TotalMessageBytes.ShouldBe(2 * O + 3);
        Apply(sm, QueueCommand.Pop("a")).Message.ShouldBe("one");
        Apply(sm, QueueCommand.Pop("a")).Message.ShouldBe("");
        Apply(sm, QueueCommand.Pop("a")).Status.ShouldBe(QueueStatus.Empty);
    }

    [Fact]
    public void A_damaged_record_in_a_snapshot_is_refused()
    {
        var sm = _queues.Create();
        Apply(sm, QueueCommand.CreateTopic("t"));
        Apply(sm, QueueCommand.Publish("t", "payload"));
        using var buffer = new MemoryStream();
        sm.WriteSnapshot(buffer);
        var bytes = buffer.ToArray();
        bytes[bytes.AsSpan().IndexOf("payload"u8) + 5] ^= 0x20;
        Should.Throw<InvalidDataException>(() => _queues.Create().RestoreSnapshot(new MemoryStream(bytes))).Message.ShouldContain("checksum");
        Should.Throw<EndOfStreamException>(() => _queues.Create().RestoreSnapshot(new MemoryStream(buffer.ToArray()[..^3])));
    }

    [Fact]
    public void Empty_messages_count_against_the_byte_and_count_limits()
    {
        var sm = _queues.Create(new QueueLimits { MaxTotalMessageBytes = 10 * O });
        Apply(sm, QueueCommand.CreateTopic("t"));
        for (int i = 0; i < 10; i++) Apply(sm, QueueCommand.Publish("t", "")).ShouldBe(QueueResult.Ok);
        Apply(sm, QueueCommand.Publish("t", "")).Status.ShouldBe(QueueStatus.LimitReached);
        Apply(sm, QueueCommand.PublishBatch("t", [""])).Status.ShouldBe(QueueStatus.LimitReached);
        sm.TotalMessageBytes.ShouldBe(10 * O);
        sm.TotalMessages.ShouldBe(10);
        Apply(sm, QueueCommand.Pop("t")).Message.ShouldBe("");
        Apply(sm, QueueCommand.Publish("t", "")).ShouldBe(QueueResult.Ok);
    }

    [Fact]
    public void Per_topic_and_total_message_counts_and_topic_bytes_are_bounded()
    {
        var sm = _queues.Create(new QueueLimits { MaxTopicMessages = 3, MaxTotalMessages = 5, MaxTopicMessageBytes = 3 * O + 1 });
        foreach (var t in new[] { "a", "b", "c" }) Apply(sm, QueueCommand.CreateTopic(t));
        Apply(sm, QueueCommand.PublishBatch("a", ["", "", ""])).Count.ShouldBe(3);
        Apply(sm, QueueCommand.Publish("a", "")).Status.ShouldBe(QueueStatus.LimitReached); // per-topic count
        Apply(sm, QueueCommand.PublishBatch("b", ["1", "2", "3"])).Status.ShouldBe(QueueStatus.LimitReached); // per-topic bytes
        Apply(sm, QueueCommand.PublishBatch("b", ["1", "2"])).Count.ShouldBe(2);
        Apply(sm, QueueCommand.Publish("c", "")).Status.ShouldBe(QueueStatus.LimitReached); // total count
        Apply(sm, QueueCommand.Pop("a"));
        Apply(sm, QueueCommand.Publish("c", "")).ShouldBe(QueueResult.Ok);
        sm.TotalMessages.ShouldBe(5);
    }

    [Fact]
    public void Memory_does_not_grow_with_the_backlog()
    {
        var sm = _queues.Create();
        Apply(sm, QueueCommand.CreateTopic("t"));
        var batch = Enumerable.Range(0, 1_000).Select(i => new string((char)('a' + i % 26), 100)).ToArray();
        var before = GC.GetTotalMemory(forceFullCollection: true);
        for (int i = 0; i < 200; i++) Apply(sm, QueueCommand.PublishBatch("t", batch)).Count.ShouldBe(1_000);
        var after = GC.GetTotalMemory(forceFullCollection: true);
        sm.Depth("t").ShouldBe(200_000);
        sm.TotalMessageBytes.ShouldBe(200_000L * (O + 100));
        // 200k messages of 100 bytes held as strings would be over 45 MB; the store keeps them on disk.
        (after - before).ShouldBeLessThan(32L << 20);
        for (int i = 0; i < 200; i++) Apply(sm, QueueCommand.PopBatch("t", 1_000)).Messages.ShouldBe(batch);
        sm.TotalMessages.ShouldBe(0);
    }

    [Fact]
    public void A_corrupt_segment_fails_the_read_naming_the_file()
    {
        var sm = _queues.Create();
        Apply(sm, QueueCommand.CreateTopic("t"));
        Apply(sm, QueueCommand.Publish("t", "first"));
        Apply(sm, QueueCommand.Publish("t", "second"));
        var path = Path.Combine(sm.Directory, SegmentFiles(sm).Single());
        using (var file = File.Open(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete))
        {
            file.Position = O + 1;
            file.WriteByte((byte)'X');
        }
        var e = Should.Throw<QueueStoreCorruptException>(() => sm.Apply(2, QueueCommand.Pop("t").Encode()));
        e.FilePath.ShouldBe(path);
        e.Position.ShouldBe(0);
        e.Message.ShouldContain(path);
        e.Message.ShouldContain("checksum");
    }

    [Fact]
    public void A_new_store_starts_empty_deleting_only_its_own_files()
    {
        var directory = Path.Combine(_queues.Root, "reused");
        using (var first = new QueueStateMachine(directory))
        {
            Apply(first, QueueCommand.CreateTopic("t"));
            Apply(first, QueueCommand.Publish("t", "from the last run"));
        }
        File.WriteAllText(Path.Combine(directory, "not-ours.txt"), "kept");
        File.WriteAllText(Path.Combine(directory, "g0-t0-00000000000000000000.seg"), "torn by a crash");
        using var second = new QueueStateMachine(directory);
        second.Topics().ShouldBeEmpty();
        Directory.GetFiles(directory).Select(Path.GetFileName).ShouldBe(["not-ours.txt"]);
        Apply(second, QueueCommand.CreateTopic("t"));
        Apply(second, QueueCommand.Publish("t", "this run"));
        Apply(second, QueueCommand.Pop("t")).Message.ShouldBe("this run");
    }
}

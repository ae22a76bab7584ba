using RaftMQ.StateMachine;
using RaftMQ.Raft;
using RaftMQ.Storage;

namespace RaftMQ.Queue.Tests;

/// <summary>
/// Compaction (docs/queue-store.md, "Compaction"): a message some group has not finished keeps its own bytes on
/// disk, not the segments of everything the groups finished after it; and compacting changes no result and no
/// snapshot.
/// </summary>
public sealed class CompactionTests : IDisposable
{
    private const int Rounds = 60;
    private const int PerRound = 40;
    private readonly TestQueues _queues = new();

    public void Dispose() => _queues.Dispose();

    private static readonly QueueStoreOptions Compacting = new() { SegmentBytes = 4_096, CompactionCheckMessages = 64, WritebackBytes = 1 };
    private static readonly QueueStoreOptions Never = new() { SegmentBytes = 4_096, CompactionCheckMessages = long.MaxValue };

    private static long DiskBytes(QueueStateMachine sm) => Directory.GetFiles(sm.Directory, "*.seg").Sum(f => new FileInfo(f).Length);

    private static byte[] Snapshot(QueueStateMachine sm)
    {
        using var buffer = new MemoryStream();
        sm.WriteSnapshot(buffer);
        return buffer.ToArray();
    }

    private static QueueCommand Publish(string text, long now) =>
        QueueCommand.PublishMessages("t", [new QueueMessage(System.Text.Encoding.UTF8.GetBytes(text))], now);

    /// <summary>Runs the same commands on every machine, checks they answer alike, and returns the answer.</summary>
    private static QueueResult Run(IEnumerable<QueueStateMachine> machines, QueueCommand c)
    {
        QueueResult? first = null;
        foreach (var sm in machines)
        {
            var r = (QueueResult)sm.Apply(1, c.Encode())!;
            if (first is null) first = r;
            else r.ShouldBe(first, c.Op.ToString());
        }
        return first!;
    }

    /// <summary>
    /// One message leased for a long time at the head of "t" (so the head cannot move), while <see cref="Rounds"/> rounds
    /// of <see cref="PerRound"/> messages are published, received and acked past it; and one more published, not received.
    /// </summary>
    private static Receipt Stuck(QueueStateMachine[] machines, ref long now)
    {
        Run(machines, QueueCommand.CreateTopic("t"));
        Run(machines, Publish("stuck", now));
        var stuck = Run(machines, QueueCommand.Receive("t", "default", 1, 10_000_000, now)).Delivered!.Single();
        var payload = new string('x', 100);
        for (int round = 0; round < Rounds; round++)
        {
            for (int i = 0; i < PerRound; i++) Run(machines, Publish($"{round}-{i}-{payload}", now));
            now += 10;
            var got = Run(machines, QueueCommand.Receive("t", "default", PerRound, 60_000, now)).Delivered!;
            got.Count.ShouldBe(PerRound);
            Run(machines, QueueCommand.Ack("t", "default", [.. got.Select(m => new Receipt(m.Offset, m.DeliveryCount))], now)).Count.ShouldBe(PerRound);
        }
        Run(machines, Publish("last", now));
        return new Receipt(stuck.Offset, stuck.DeliveryCount);
    }

    [Fact]
    public void One_unfinished_message_keeps_its_own_bytes_not_the_history_behind_it()
    {
        var compacting = _queues.Create(storeOptions: Compacting);
        var never = _queues.Create(storeOptions: Never);
        QueueStateMachine[] both = [compacting, never];
        long now = 1_000;
        var stuck = Stuck(both, ref now);

        // Both still count everything between the stuck head and the tail (the totals do; the limits subtract what every
        // group finished, see The_limits_count_...), but only the node that does
        // not compact keeps it on disk.
        compacting.Offsets("t").ShouldBe((0UL, (ulong)(Rounds * PerRound + 2)));
        compacting.TotalMessageBytes.ShouldBe(never.TotalMessageBytes);
        var history = never.TotalMessageBytes;
        DiskBytes(never).ShouldBeGreaterThanOrEqualTo(history);
        DiskBytes(compacting).ShouldBeLessThan(3 * Compacting.SegmentBytes, $"of {history} bytes of history");

        // Compaction changed no answer and no snapshot: browsing shows the two unfinished messages only, on both.
        Snapshot(compacting).ShouldBe(Snapshot(never));
        compacting.Peek("t", null, 100)!.Select(m => m.Offset).ShouldBe([0UL, (ulong)(Rounds * PerRound + 1)]);
        never.Peek("t", null, 100)!.Select(m => m.Offset).ShouldBe([0UL, (ulong)(Rounds * PerRound + 1)]);
        compacting.Peek("t", 5, 100)!.Select(m => m.Offset).ShouldBe([(ulong)(Rounds * PerRound + 1)]);

        // A group created now at the earliest message owes the two unfinished messages, not the finished history.
        Run(both, QueueCommand.CreateGroup("t", "late", GroupStart.Earliest));
        now += 10;
        var late = Run(both, QueueCommand.Receive("t", "late", 100, 60_000, now)).Delivered!;
        late.Select(m => (m.Offset, m.DeliveryCount)).ShouldBe([(0UL, 1), ((ulong)(Rounds * PerRound + 1), 1)]);
        System.Text.Encoding.UTF8.GetString(late[0].Payload.Span).ShouldBe("stuck");

        // The stuck message reads back from the rewritten segment and its receipt still acks it; once every group is
        // done, the topic's files go.
        Run(both, QueueCommand.Ack("t", "default", [stuck], now)).Count.ShouldBe(1);
        var last = Run(both, QueueCommand.Receive("t", "default", 10, 60_000, now)).Delivered!.Single();
        System.Text.Encoding.UTF8.GetString(last.Payload.Span).ShouldBe("last");
        Run(both, QueueCommand.Ack("t", "default", [new Receipt(last.Offset, last.DeliveryCount)], now)).Count.ShouldBe(1);
        Run(both, QueueCommand.Ack("t", "late", [.. late.Select(m => new Receipt(m.Offset, m.DeliveryCount))], now)).Count.ShouldBe(2);
        compacting.Depth("t").ShouldBe(0);
        Snapshot(compacting).ShouldBe(Snapshot(never));
        DiskBytes(compacting).ShouldBeLessThan(Compacting.SegmentBytes);
    }

    [Theory]
    [InlineData("topic messages")]
    [InlineData("topic bytes")]
    [InlineData("total messages")]
    [InlineData("total bytes")]
    public void The_limits_count_what_a_group_holds_not_the_finished_history_behind_a_stuck_message(string bound)
    {
        // Every record here has the same size: one probe tells it.
        var probe = _queues.Create();
        probe.Apply(1, QueueCommand.CreateTopic("p").Encode());
        probe.Apply(2, QueueCommand.PublishMessages("p", [new QueueMessage(System.Text.Encoding.UTF8.GetBytes("m-00"))], 0).Encode());
        var record = probe.TotalMessageBytes;
        var limits = bound switch
        {
            "topic messages" => QueueLimits.Default with { MaxTopicMessages = 5 },
            "topic bytes" => QueueLimits.Default with { MaxTopicMessageBytes = 5 * record },
            "total messages" => QueueLimits.Default with { MaxTotalMessages = 6 },
            _ => QueueLimits.Default with { MaxTotalMessageBytes = 6 * record },
        };
        QueueStateMachine[] both = [_queues.Create(limits, Compacting), _queues.Create(limits, Never)];
        long now = 1_000;
        Run(both, QueueCommand.CreateTopic("t"));
        Run(both, QueueCommand.CreateTopic("other"));
        Run(both, QueueCommand.PublishMessages("other", [new QueueMessage(System.Text.Encoding.UTF8.GetBytes("o-00"))], now)).Success.ShouldBeTrue();
        Run(both, Publish("m-00", now));
        Run(both, QueueCommand.Receive("t", "default", 1, 10_000_000, now)).Delivered!.Count.ShouldBe(1); // held for hours
        // Far more messages than the bound go through behind the held one: none is refused.
        for (int i = 1; i <= 40; i++)
        {
            Run(both, Publish($"m-{i % 100:D2}", now)).Success.ShouldBeTrue($"publish {i} behind the held message");
            var got = Run(both, QueueCommand.Receive("t", "default", 1, 60_000, now)).Delivered!.Single();
            Run(both, QueueCommand.Ack("t", "default", [new Receipt(got.Offset, got.DeliveryCount)], now)).Count.ShouldBe(1);
        }
        both[0].Offsets("t").ShouldBe((0UL, 41UL)); // the head stays on the held message
        // What is held counts: the held message, "other"'s, and these four fill the bound exactly; one more does not fit.
        for (int i = 0; i < 4; i++) Run(both, Publish($"w-{i:D2}", now)).Success.ShouldBeTrue($"waiting message {i}");
        Run(both, Publish("w-04", now)).Status.ShouldBe(QueueStatus.LimitReached);
    }

    [Fact]
    public void A_snapshot_of_a_compacted_topic_holds_the_kept_records_only_and_restores_linked_or_copied()
    {
        var compacting = _queues.Create(storeOptions: Compacting);
        long now = 1_000;
        var stuck = Stuck([compacting], ref now);
        var expected = Snapshot(compacting);
        expected.Length.ShouldBeLessThan(4_096, "the snapshot holds two records and the state, not the history");

        // Copied from a stream, and linked from a snapshot file (the stuck record in a rewritten segment, the last in
        // the active one).
        var copied = _queues.Create(storeOptions: Compacting);
        copied.RestoreSnapshot(new MemoryStream(expected));
        Directory.GetFiles(copied.Directory, "*.seg").Length.ShouldBe(1, "the two runs are copied into one file, as two extents");
        var snapshots = SnapshotStore.Open(Path.Combine(_queues.Root, "snapshots"));
        using (var captured = compacting.CaptureSnapshot())
        using (var writer = snapshots.Create(new SnapshotMetadata(10, 1)))
        {
            captured.WriteTo(writer);
            writer.Commit();
        }
        var linked = _queues.Create(storeOptions: Compacting);
        using (var stream = snapshots.OpenLatest()!) linked.RestoreSnapshot(stream);

        foreach (var restored in new[] { copied, linked })
        {
            Snapshot(restored).ShouldBe(expected);
            restored.Offsets("t").ShouldBe(compacting.Offsets("t"));
            restored.TotalMessageBytes.ShouldBe(compacting.TotalMessageBytes);
            Run([restored], QueueCommand.Ack("t", "default", [stuck], now)).Count.ShouldBe(1);
            var last = Run([restored], QueueCommand.Receive("t", "default", 10, 60_000, now)).Delivered!.Single();
            System.Text.Encoding.UTF8.GetString(last.Payload.Span).ShouldBe("last");
        }
    }

    [Fact]
    public void Expiry_passes_over_what_every_group_finished_without_counting_or_dead_lettering_it()
    {
        var compacting = _queues.Create(storeOptions: Compacting);
        var never = _queues.Create(storeOptions: Never);
        QueueStateMachine[] both = [compacting, never];
        long now = 1_000;
        Stuck(both, ref now);
        DiskBytes(compacting).ShouldBeLessThan(3 * Compacting.SegmentBytes);
        // Expire everything: only the two unfinished messages are dead-lettered and counted.
        Run(both, QueueCommand.CreateTopic("other"));
        Run(both, QueueCommand.ConfigureTopic("t", 20, retention: new TopicRetention(MaxAgeMs: 1_000)));
        now += 10_000;
        Run(both, QueueCommand.PublishMessages("other", [new QueueMessage("tick"u8.ToArray())], now));
        var stats = compacting.Stats("t", now)!;
        (stats.Messages, stats.ExpiredTotal, stats.DeadLettered).ShouldBe((0L, 2L, 2L));
        compacting.Peek(DeadLetters.TopicFor("t"), null, 10)!.Select(m => System.Text.Encoding.UTF8.GetString(m.Payload.Span)).ShouldBe(["stuck", "last"]);
        Snapshot(compacting).ShouldBe(Snapshot(never));
    }

    [Fact]
    public void Drop_oldest_passes_over_what_every_group_finished_without_counting_it()
    {
        var compacting = _queues.Create(storeOptions: Compacting);
        var never = _queues.Create(storeOptions: Never);
        QueueStateMachine[] both = [compacting, never];
        long now = 1_000;
        Stuck(both, ref now);
        // Ten at most: the head must move past the stuck message; it lands on the next unfinished one ("last"), so only
        // the stuck message counts as dropped.
        Run(both, QueueCommand.ConfigureTopic("t", 20, retention: new TopicRetention(MaxMessages: 10, Overflow: OverflowPolicy.DropOldest)));
        Run(both, Publish("new", now)).Success.ShouldBeTrue();
        var stats = compacting.Stats("t", now)!;
        (stats.Head, stats.Messages, stats.OverflowDroppedTotal).ShouldBe(((ulong)(Rounds * PerRound + 1), 2L, 1L));
        Snapshot(compacting).ShouldBe(Snapshot(never));
        DiskBytes(compacting).ShouldBeLessThan(Compacting.SegmentBytes);
    }
}

using System.Text;
using static RaftMQ.Queue.Tests.QueueTestSteps;

namespace RaftMQ.Queue.Tests;

/// <summary>The queue-wide bounds as replicated settings (op 19, <see cref="QueueOp.SetLimits"/>).</summary>
public sealed class QueueBoundsTests : IDisposable
{
    private const int O = QueueLimits.MessageOverheadBytes;

    private readonly TestQueues _queues = new();

    public void Dispose() => _queues.Dispose();

    private static QueueResult Publish(QueueStateMachine sm, string topic, params string[] messages) =>
        Apply(sm, QueueCommand.PublishBatch(topic, messages));

    private static byte[] Snapshot(QueueStateMachine sm)
    {
        using var captured = sm.CaptureSnapshot();
        using var buffer = new MemoryStream();
        captured.WriteTo(buffer);
        return buffer.ToArray();
    }

    [Fact]
    public void The_command_round_trips_and_malformed_encodings_are_refused()
    {
        var change = new QueueBoundsChange(MaxBytes: 5L << 30, MaxTopicMessages: 12);
        var bytes = QueueCommand.SetLimits(change).Encode();
        QueueCommand.TryDecode(bytes, out var decoded).ShouldBeTrue();
        decoded.Op.ShouldBe(QueueOp.SetLimits);
        decoded.Bounds.ShouldBe(change);
        decoded.ShouldBe(QueueCommand.SetLimits(change));
        QueueCommand.TryDecode(bytes[..^1], out _).ShouldBeFalse("one byte short");
        QueueCommand.TryDecode([.. bytes, 0], out _).ShouldBeFalse("a byte left over");
        var named = (byte[])bytes.Clone();
        named[1] = 1; // a topic length: op 19 names none
        QueueCommand.TryDecode(named, out _).ShouldBeFalse("a topic");
    }

    [Fact]
    public void Raising_a_bound_admits_what_it_refused_and_lowering_one_removes_nothing()
    {
        var limits = QueueLimits.Default with { MaxTotalMessages = 3, MaxTopicMessages = 2 };
        var sm = _queues.Create(limits);
        Apply(sm, QueueCommand.CreateTopic("a")).Success.ShouldBeTrue();
        Apply(sm, QueueCommand.CreateTopic("b")).Success.ShouldBeTrue();
        Publish(sm, "a", "1", "2").Success.ShouldBeTrue();
        Publish(sm, "a", "3").Status.ShouldBe(QueueStatus.LimitReached, "the per-topic count");
        sm.Bounds.ShouldBe(limits.InitialBounds);

        Apply(sm, QueueCommand.SetLimits(new QueueBoundsChange(MaxTopicMessages: 4))).ShouldBe(QueueResult.Ok);
        sm.Bounds.ShouldBe(limits.InitialBounds with { MaxTopicMessages = 4 });
        Publish(sm, "a", "3").Success.ShouldBeTrue();
        Publish(sm, "b", "x").Status.ShouldBe(QueueStatus.LimitReached, "the total count, unchanged, is full");

        // Lowering below what is held: everything stays; publishes wait until consumption brings the count below.
        Apply(sm, QueueCommand.SetLimits(new QueueBoundsChange(MaxMessages: 1, MaxBytes: 40 * O))).ShouldBe(QueueResult.Ok);
        sm.Depth("a").ShouldBe(3);
        Publish(sm, "b", "x").Status.ShouldBe(QueueStatus.LimitReached);
        for (int i = 0; i < 3; i++) Apply(sm, QueueCommand.Pop("a")).Success.ShouldBeTrue();
        Publish(sm, "b", "x").Success.ShouldBeTrue();
        Publish(sm, "b", "y").Status.ShouldBe(QueueStatus.LimitReached);

        // The byte bounds count records (payload + overhead), as the defaults do.
        Apply(sm, QueueCommand.SetLimits(new QueueBoundsChange(MaxMessages: 100, MaxTopicBytes: 2 * O + 3))).ShouldBe(QueueResult.Ok);
        Publish(sm, "a", "ab").Success.ShouldBeTrue();
        Publish(sm, "a", "c").Success.ShouldBeTrue("exactly at the bound");
        Publish(sm, "a", "").Status.ShouldBe(QueueStatus.LimitReached, "an empty message costs its overhead");
    }

    [Fact]
    public void Values_out_of_range_are_refused_and_change_nothing()
    {
        var limits = QueueLimits.Default;
        var sm = _queues.Create();
        foreach (var bad in new[]
        {
            new QueueBoundsChange(), new QueueBoundsChange(MaxBytes: 0), new QueueBoundsChange(MaxMessages: -2),
            new QueueBoundsChange(MaxTopicBytes: limits.MaxSettableBytes + 1), new QueueBoundsChange(MaxTopicMessages: limits.MaxSettableMessages + 1),
            new QueueBoundsChange(MaxBytes: 10, MaxMessages: 0), // one bad value refuses the whole change
        })
        {
            Apply(sm, QueueCommand.SetLimits(bad)).Status.ShouldBe(QueueStatus.Invalid, bad.ToString());
            sm.Bounds.ShouldBe(limits.InitialBounds);
        }
        limits.CheckBounds(new QueueBoundsChange(MaxTopicBytes: 0)).ShouldBe($"\"max_topic_bytes\" must be an integer between 1 and {limits.MaxSettableBytes}");
        Apply(sm, QueueCommand.SetLimits(new QueueBoundsChange(limits.MaxSettableBytes, limits.MaxSettableMessages, limits.MaxSettableBytes, limits.MaxSettableMessages)))
            .ShouldBe(QueueResult.Ok, "the ceilings themselves");
    }

    [Fact]
    public void A_topics_own_retention_bounds_are_at_most_the_clusters_per_topic_bounds()
    {
        var sm = _queues.Create();
        var oneGiB = QueueLimits.Default.MaxTopicMessageBytes;
        Apply(sm, QueueCommand.ConfigureTopic("t", 0, retention: new TopicRetention(MaxBytes: oneGiB))).Success.ShouldBeTrue("created with the largest value");
        Apply(sm, QueueCommand.ConfigureTopic("t", 0, retention: new TopicRetention(MaxBytes: 2 * oneGiB))).Status.ShouldBe(QueueStatus.Invalid);
        Apply(sm, QueueCommand.SetLimits(new QueueBoundsChange(MaxTopicBytes: 4 * oneGiB, MaxTopicMessages: 50_000_000))).ShouldBe(QueueResult.Ok);
        Apply(sm, QueueCommand.ConfigureTopic("t", 0, retention: new TopicRetention(40_000_000, 2 * oneGiB))).ShouldBe(QueueResult.Ok);
        sm.Stats("t", 0)!.MaxBytes.ShouldBe(2 * oneGiB);
        QueueLimits.Default.CheckRetention(new TopicRetention(MaxBytes: 2 * oneGiB), QueueLimits.Default.InitialBounds)
            .ShouldBe($"\"max_bytes\" must be an integer between 0 (unlimited) and {oneGiB}");
        // Lowering the cluster's bound keeps the topic's setting (the lower bound refuses first) and refuses new ones above it.
        Apply(sm, QueueCommand.SetLimits(new QueueBoundsChange(MaxTopicBytes: oneGiB))).ShouldBe(QueueResult.Ok);
        sm.Stats("t", 0)!.MaxBytes.ShouldBe(2 * oneGiB);
        Apply(sm, QueueCommand.ConfigureTopic("t", 0, retention: new TopicRetention(MaxBytes: oneGiB + 1))).Status.ShouldBe(QueueStatus.Invalid);
    }

    [Fact]
    public void Snapshots_carry_the_bounds_and_a_state_that_never_set_them_keeps_the_earlier_format()
    {
        var sm = _queues.Create();
        Apply(sm, QueueCommand.CreateTopic("t"));
        Publish(sm, "t", "m");
        var before = Snapshot(sm);
        before[4].ShouldBe((byte)4, "the format nodes of earlier builds read");

        var change = new QueueBoundsChange(MaxBytes: 3L << 30, MaxMessages: 50_000_000, MaxTopicBytes: 2L << 30, MaxTopicMessages: 40_000_000);
        Apply(sm, QueueCommand.SetLimits(change)).ShouldBe(QueueResult.Ok);
        var after = Snapshot(sm);
        after[4].ShouldBe((byte)5);

        var restored = _queues.Create();
        restored.RestoreSnapshot(new MemoryStream(after));
        restored.Bounds.ShouldBe(QueueLimits.Default.InitialBounds.With(change));
        restored.Depth("t").ShouldBe(1);
        Snapshot(restored).ShouldBe(after, "the same state gives the same snapshot");

        // Restoring the earlier snapshot goes back to the initial bounds (the log after it sets them again).
        restored.RestoreSnapshot(new MemoryStream(before));
        restored.Bounds.ShouldBe(QueueLimits.Default.InitialBounds);

        var corrupt = (byte[])after.Clone();
        corrupt[4 + 1 + 8] = 0; // max_bytes: the first bound after the clock, now 0
        corrupt.AsSpan(4 + 1 + 8, 8).Clear();
        Should.Throw<InvalidDataException>(() => _queues.Create().RestoreSnapshot(new MemoryStream(corrupt)));
    }

    [Fact]
    public void Default_limits_refuse_ten_million_small_messages_in_one_topic_and_raised_bounds_admit_them()
    {
        // The arithmetic of the benchmark's 10,000,000 x 100 B (docs/benchmarks.md): 1.28 GB of records, past 1 GiB.
        var limits = QueueLimits.Default;
        var record = O + 100L;
        (10_000_000 * record).ShouldBeGreaterThan(limits.MaxTopicMessageBytes);
        var sm = _queues.Create(limits with { MaxTopicMessageBytes = 5 * record, MaxTotalMessageBytes = 5 * record });
        Apply(sm, QueueCommand.CreateTopic("t"));
        var body = new string('x', 100);
        Publish(sm, "t", [.. Enumerable.Repeat(body, 5)]).Success.ShouldBeTrue();
        Publish(sm, "t", body).Status.ShouldBe(QueueStatus.LimitReached);
        Apply(sm, QueueCommand.SetLimits(new QueueBoundsChange(MaxBytes: 6 * record, MaxTopicBytes: 6 * record))).ShouldBe(QueueResult.Ok);
        Publish(sm, "t", body).Success.ShouldBeTrue();
        sm.TotalMessageBytes.ShouldBe(6 * record);
        Encoding.UTF8.GetByteCount(body).ShouldBe(100);
    }
}

using System.Globalization;
using System.Text;
using RaftMQ.StateMachine;
using static RaftMQ.Queue.Tests.QueueTestSteps;

namespace RaftMQ.Queue.Tests;

/// <summary>
/// Retention: a topic's max_messages and max_bytes with reject-publish or drop-oldest, and max_age_ms with
/// dead-lettering or dropping, all measured on the commands' clock, the same on every node and through snapshots.
/// </summary>
[Collection(QueueMemoryCollection.Name)]
public sealed class RetentionTests : IDisposable
{
    private const long Record = QueueLimits.MessageOverheadBytes + 1; // a one-byte message without headers

    private readonly TestQueues _queues = new();

    public void Dispose() => _queues.Dispose();

    private static QueueResult Publish(QueueStateMachine sm, long now, params string[] texts) =>
        Apply(sm, QueueCommand.PublishMessages("t", [.. texts.Select(Msg)], now));

    private static List<QueueMessage> Receive(QueueStateMachine sm, string group, long now, int max = 100) =>
        [.. Apply(sm, QueueCommand.Receive("t", group, max, 60_000, now)).Delivered!];

    private QueueStateMachine WithTopic(TopicRetention retention, QueueStoreOptions? store = null, QueueLimits? limits = null)
    {
        var sm = _queues.Create(limits, store);
        Apply(sm, QueueCommand.ConfigureTopic("t", 0, retention: retention)).Count.ShouldBe(1);
        Apply(sm, QueueCommand.CreateGroup("t", "g2", GroupStart.Earliest)).ShouldBe(QueueResult.Ok);
        return sm;
    }

    private static byte[] Snapshot(QueueStateMachine sm)
    {
        using var buffer = new MemoryStream();
        sm.WriteSnapshot(buffer);
        return buffer.ToArray();
    }

    [Fact]
    public void Reject_publish_refuses_a_batch_past_max_messages_whole_and_takes_it_once_consumers_made_room()
    {
        var sm = WithTopic(new TopicRetention(MaxMessages: 3));
        Publish(sm, 1_000, "a", "b").Count.ShouldBe(2);
        Publish(sm, 1_001, "c", "d").Status.ShouldBe(QueueStatus.TopicFull);
        sm.Offsets("t").ShouldBe((0UL, 2UL));
        // The string ops and the extended publish are refused alike.
        Apply(sm, QueueCommand.PublishBatch("t", ["c", "d"])).Status.ShouldBe(QueueStatus.TopicFull);
        Apply(sm, QueueCommand.PublishExtended("t", [Msg("c"), Msg("d")], 1_002)).Status.ShouldBe(QueueStatus.TopicFull);
        sm.Offsets("t").ShouldBe((0UL, 2UL));
        Apply(sm, QueueCommand.Publish("t", "c")).ShouldBe(QueueResult.Ok);
        Apply(sm, QueueCommand.Publish("t", "d")).Status.ShouldBe(QueueStatus.TopicFull);

        // Retained means not finished by every group: default acking is not enough while g2 still holds them.
        Apply(sm, QueueCommand.PopMessages("t", 2)).Delivered!.Count.ShouldBe(2);
        Publish(sm, 1_003, "d").Status.ShouldBe(QueueStatus.TopicFull);
        var got = Receive(sm, "g2", 1_004, 1);
        Apply(sm, QueueCommand.Ack("t", "g2", [new Receipt(got[0].Offset, 1)], 1_005)).Count.ShouldBe(1);
        Publish(sm, 1_006, "d").ShouldBe(QueueResult.Ok with { Count = 1, FirstOffset = 3 });
        var stats = sm.Stats("t", 1_006)!;
        (stats.Messages, stats.OverflowDroppedTotal, stats.MaxMessages, stats.Overflow).ShouldBe((3L, 0L, 3L, OverflowPolicy.RejectPublish));
    }

    [Fact]
    public void Max_bytes_counts_whole_records_and_a_message_larger_than_the_topic_may_hold_is_refused_under_either_policy()
    {
        var sm = WithTopic(new TopicRetention(MaxBytes: 3 * Record));
        Publish(sm, 1_000, "a", "b", "c").Count.ShouldBe(3);
        sm.Stats("t", 1_000)!.Bytes.ShouldBe(3 * Record);
        Publish(sm, 1_001, "").Status.ShouldBe(QueueStatus.TopicFull); // an empty message costs its record too
        Apply(sm, QueueCommand.ConfigureTopic("t", 0, retention: new TopicRetention(Overflow: OverflowPolicy.DropOldest))).ShouldBe(QueueResult.Ok);
        // A record of 88 bytes is more than the 87 the topic may hold at all: dropping cannot make room.
        Publish(sm, 1_002, new string('x', 60)).Status.ShouldBe(QueueStatus.TopicFull);
        sm.Offsets("t").ShouldBe((0UL, 3UL));
    }

    [Fact]
    public void Drop_oldest_removes_the_oldest_for_every_group_and_their_receipts_turn_stale()
    {
        var sm = WithTopic(new TopicRetention(MaxMessages: 4, Overflow: OverflowPolicy.DropOldest));
        Publish(sm, 1_000, "a", "b", "c", "d");
        var leased = Receive(sm, "default", 1_001, 2); // a and b leased by default
        Receive(sm, "g2", 1_001, 1).Select(Text).ShouldBe(["a"]);
        Apply(sm, QueueCommand.Ack("t", "g2", [new Receipt(0, 1)], 1_002)).Count.ShouldBe(1);

        Publish(sm, 1_003, "e", "f").ShouldBe(QueueResult.Ok with { Count = 2, FirstOffset = 4 });
        var stats = sm.Stats("t", 1_003)!;
        (stats.Head, stats.Tail, stats.Messages, stats.OverflowDroppedTotal).ShouldBe((2UL, 6UL, 4L, 2L));
        stats.Groups.Select(g => (g.Group, g.AckFloor, g.Leased, g.Unacked)).ShouldBe([("default", 2UL, 0, 4L), ("g2", 2UL, 0, 4L)]);

        // The leases on a and b ended with them: their receipts are stale for ack, nack and extend, and nothing comes back.
        var receipts = leased.Select(m => new Receipt(m.Offset, m.DeliveryCount)).ToList();
        Apply(sm, QueueCommand.Ack("t", "default", receipts, 1_004)).ShouldBe(QueueResult.Ok with { Count = 0, Stale = receipts });
        Apply(sm, QueueCommand.Nack("t", "default", receipts, 0, null, 1_004)).Stale!.Count.ShouldBe(2);
        Apply(sm, QueueCommand.Extend("t", "default", receipts, 1_000, 1_004)).Stale!.Count.ShouldBe(2);
        Receive(sm, "default", 100_000).Select(m => (Text(m), m.DeliveryCount)).ShouldBe([("c", 1), ("d", 1), ("e", 1), ("f", 1)]);
        Receive(sm, "g2", 100_000).Select(Text).ShouldBe(["c", "d", "e", "f"]);
        sm.Peek("t", 0, 10)!.Select(m => m.Offset).ShouldBe([2UL, 3UL, 4UL, 5UL]);
        // Dropped, not dead-lettered.
        sm.Peek(DeadLetters.TopicFor("t"), null, 10).ShouldBeNull();
    }

    [Fact]
    public void Drop_oldest_by_bytes_drops_just_enough()
    {
        var sm = WithTopic(new TopicRetention(MaxBytes: 10 * Record, Overflow: OverflowPolicy.DropOldest));
        Publish(sm, 1_000, "a", "b", "c", "d", "e", "f", "g", "h", "i", "j"); // exactly at the bound
        // A message whose record is as large as three small ones: exactly three must go.
        var big = new string('x', (int)(2 * Record + 1));
        Publish(sm, 1_001, big).FirstOffset.ShouldBe(10UL);
        var stats = sm.Stats("t", 1_001)!;
        stats.Head.ShouldBe(3UL);
        stats.Bytes.ShouldBe(7 * Record + QueueLimits.MessageOverheadBytes + big.Length);
        (stats.Bytes <= 10 * Record).ShouldBeTrue();
        stats.OverflowDroppedTotal.ShouldBe(3L);
    }

    [Fact]
    public void Lowering_the_bounds_under_drop_oldest_drops_at_once_and_deletes_the_segment_files()
    {
        var store = new QueueStoreOptions { SegmentBytes = 256 };
        var sm = WithTopic(new TopicRetention(Overflow: OverflowPolicy.DropOldest), store);
        for (int i = 0; i < 100; i++) Publish(sm, 1_000 + i, $"m{i:D3}");
        var before = Directory.GetFiles(sm.Directory, "*.seg").Length;
        before.ShouldBeGreaterThan(10);
        Apply(sm, QueueCommand.ConfigureTopic("t", 0, retention: new TopicRetention(MaxMessages: 5), dedupWindowMs: null)).ShouldBe(QueueResult.Ok);
        sm.Offsets("t").ShouldBe((95UL, 100UL));
        Directory.GetFiles(sm.Directory, "*.seg").Length.ShouldBeLessThanOrEqualTo(2);
        sm.Stats("t", 2_000)!.OverflowDroppedTotal.ShouldBe(95L);
        // From then on each publish drops one, and the files stay few.
        for (int i = 100; i < 200; i++) Publish(sm, 2_000 + i, $"m{i:D3}").Success.ShouldBeTrue();
        sm.Offsets("t").ShouldBe((195UL, 200UL));
        Directory.GetFiles(sm.Directory, "*.seg").Length.ShouldBeLessThanOrEqualTo(2);
        Receive(sm, "g2", 3_000).Select(Text).ShouldBe(["m195", "m196", "m197", "m198", "m199"]);

        // Reject-publish keeps what is over a lowered bound and refuses until consumers bring it under.
        Apply(sm, QueueCommand.ConfigureTopic("t", 0, retention: new TopicRetention(MaxMessages: 2, Overflow: OverflowPolicy.RejectPublish)));
        sm.Offsets("t").ShouldBe((195UL, 200UL));
        Publish(sm, 3_001, "n").Status.ShouldBe(QueueStatus.TopicFull);
    }

    [Fact]
    public void Messages_past_max_age_are_dead_lettered_with_the_reason_as_the_clock_moves_in_any_topic()
    {
        var sm = WithTopic(new TopicRetention(MaxAgeMs: 1_000));
        Apply(sm, QueueCommand.ConfigureTopic("other", 0)).Count.ShouldBe(1);
        Apply(sm, QueueCommand.PublishMessages("t", [Msg("a"), new QueueMessage(Encoding.UTF8.GetBytes("b"), [new MessageHeader("k", "v")])], 1_000));
        Publish(sm, 1_500, "c");
        var lease = Receive(sm, "g2", 1_999, 1);
        lease.Select(Text).ShouldBe(["a"]);
        sm.Stats("t", 1_999)!.ExpiredTotal.ShouldBe(0L);

        // A command on another topic moves the clock: a and b are 1 000 ms old and go, for every group.
        Apply(sm, QueueCommand.PublishMessages("other", [Msg("x")], 2_000)).Success.ShouldBeTrue();
        var stats = sm.Stats("t", 2_000)!;
        (stats.Head, stats.Messages, stats.ExpiredTotal, stats.DeadLettered).ShouldBe((2UL, 1L, 2L, 2L));
        Apply(sm, QueueCommand.Ack("t", "g2", [new Receipt(0, 1)], 2_001)).Stale!.Count.ShouldBe(1);
        var dead = sm.Peek(DeadLetters.TopicFor("t"), null, 10)!;
        dead.Select(Text).ShouldBe(["a", "b"]);
        dead[1].Headers.ShouldBe([
            new MessageHeader(DeadLetters.ReasonHeader, DeadLetters.ExpiredReason), new MessageHeader(DeadLetters.OriginalOffsetHeader, "1"),
            new MessageHeader(DeadLetters.OriginalPublishedAtHeader, "1000"), new MessageHeader("k", "v")]);
        dead[1].TimestampMs.ShouldBe(2_000);

        // A receive is a step of the clock too: c expires before it could be delivered.
        Receive(sm, "default", 2_500).ShouldBeEmpty();
        sm.Stats("t", 2_500)!.ShouldSatisfyAllConditions(s => s.ExpiredTotal.ShouldBe(3L), s => s.Messages.ShouldBe(0L), s => s.DeadLettered.ShouldBe(3L));
        // Redrive brings them back without the added headers, published now (so not expired yet).
        Apply(sm, QueueCommand.Redrive("t", 10, 2_600)).Count.ShouldBe(3);
        Receive(sm, "default", 3_599).Select(m => (Text(m), m.Headers.Count)).ShouldBe([("a", 0), ("b", 1), ("c", 0)]);
    }

    [Fact]
    public void Expire_drop_removes_without_dead_letters_and_string_messages_without_a_time_never_expire()
    {
        var sm = WithTopic(new TopicRetention(MaxAgeMs: 100, Expire: ExpiryAction.Drop));
        Publish(sm, 1_000, "a", "b");
        Apply(sm, QueueCommand.Publish("t", "s")).ShouldBe(QueueResult.Ok); // a string publish: timestamp 0
        Publish(sm, 1_050, "c");
        Receive(sm, "g2", 1_100).Select(Text).ShouldBe(["s", "c"]); // a and b went before the receive
        var stats = sm.Stats("t", 1_100)!;
        (stats.Head, stats.ExpiredTotal, stats.DeadLettered, stats.Expire).ShouldBe((2UL, 2L, 0L, ExpiryAction.Drop));
        sm.Peek(DeadLetters.TopicFor("t"), null, 10).ShouldBeNull();
        // The string message at the head has no age: expiry stops at it, and what follows waits behind it.
        Publish(sm, 5_000, "d");
        sm.Offsets("t").ShouldBe((2UL, 5UL));
        Apply(sm, QueueCommand.Pop("t")).ShouldBe(new QueueResult(QueueStatus.Ok, "s"));
        Apply(sm, QueueCommand.Ack("t", "g2", [new Receipt(2, 1)], 5_001)).Count.ShouldBe(1);
        // Once g2 acked it, c (published at 1 050) is at the head and expires at the next step; d (5 000) is too young.
        Publish(sm, 5_050, "e");
        sm.Offsets("t").ShouldBe((4UL, 6UL));
        sm.Stats("t", 5_050)!.ExpiredTotal.ShouldBe(3L);
    }

    [Fact]
    public void Next_expiry_names_the_topic_whose_head_is_due_first_and_an_empty_configure_at_that_time_expires_it()
    {
        var sm = WithTopic(new TopicRetention(MaxAgeMs: 1_000));
        sm.NextExpiry().ShouldBeNull();
        Publish(sm, 5_000, "a");
        sm.NextExpiry().ShouldBe(("t", 6_000L));
        Apply(sm, QueueCommand.ConfigureTopic("u", 0, retention: new TopicRetention(MaxAgeMs: 100))).Count.ShouldBe(1);
        Apply(sm, QueueCommand.PublishMessages("u", [Msg("b")], 5_500)).Success.ShouldBeTrue();
        // A topic whose head has no publish time (a string message) is never due.
        Apply(sm, QueueCommand.ConfigureTopic("s", 0, retention: new TopicRetention(MaxAgeMs: 1))).Count.ShouldBe(1);
        Apply(sm, QueueCommand.Publish("s", "untimed")).ShouldBe(QueueResult.Ok);
        sm.NextExpiry().ShouldBe(("u", 5_600L));

        // What the leader proposes when that time comes: a configure that changes nothing but the clock.
        Apply(sm, QueueCommand.ConfigureTopic("u", 0, createIfMissing: false) with { TimestampMs = 5_600 }).ShouldBe(QueueResult.Ok);
        sm.Depth("u").ShouldBe(0);
        sm.Stats("u", 5_600)!.ExpiredTotal.ShouldBe(1L);
        sm.NextExpiry().ShouldBe(("t", 6_000L));
        sm.Depth("s").ShouldBe(1);

        // A head that is due already without a clock step (a message stamped earlier than the one before it, by a
        // leader whose clock was behind, reaching the head through a pop): the same empty configure expires it.
        Apply(sm, QueueCommand.ConfigureTopic("k", 0, retention: new TopicRetention(MaxAgeMs: 1_500))).Count.ShouldBe(1);
        Apply(sm, QueueCommand.PublishMessages("k", [Msg("late")], 7_000)).Success.ShouldBeTrue();
        Apply(sm, QueueCommand.PublishMessages("k", [Msg("early")], 5_000)).Success.ShouldBeTrue();
        Apply(sm, QueueCommand.PopMessages("k", 1)).Delivered!.Single().TimestampMs.ShouldBe(7_000);
        sm.NextExpiry().ShouldBe(("k", 6_500L));
        Apply(sm, QueueCommand.ConfigureTopic("k", 0, createIfMissing: false) with { TimestampMs = 6_900 }).ShouldBe(QueueResult.Ok);
        (sm.Clock, sm.Depth("k")).ShouldBe((7_000L, 0));
    }

    [Fact]
    public void Retention_settings_and_counters_survive_a_snapshot_and_both_machines_go_on_alike()
    {
        var store = new QueueStoreOptions { SegmentBytes = 200 };
        var sm = WithTopic(new TopicRetention(MaxMessages: 6, MaxBytes: 5 * Record, MaxAgeMs: 500, Overflow: OverflowPolicy.DropOldest, Expire: ExpiryAction.DeadLetter), store);
        for (int i = 0; i < 8; i++) Publish(sm, 1_000 + (i * 20), ((char)('a' + i)).ToString());
        Publish(sm, 1_600, "z");
        // a, b and c made room (bytes); d, e and f (1 060 to 1 100) are 500 ms old at 1 600.
        sm.Stats("t", 1_600)!.ShouldSatisfyAllConditions(s => s.OverflowDroppedTotal.ShouldBe(3L), s => s.ExpiredTotal.ShouldBe(3L), s => s.Head.ShouldBe(6UL));
        var bytes = Snapshot(sm);
        var restored = _queues.Create(storeOptions: store);
        restored.RestoreSnapshot(new MemoryStream(bytes));
        Snapshot(restored).ShouldBe(bytes);
        restored.Stats("t", 1_600).ShouldBeEquivalentTo(sm.Stats("t", 1_600));
        foreach (var c in new[]
        {
            QueueCommand.Receive("t", "g2", 3, 1_000, 1_800), QueueCommand.PublishMessages("t", [Msg("i"), Msg("j")], 1_900),
            QueueCommand.Receive("t", "default", 10, 1_000, 2_300), QueueCommand.PublishMessages("t", [Msg("k")], 3_000),
        })
        {
            Apply(restored, c).ShouldBe(Apply(sm, c), c.Op.ToString());
        }
        Snapshot(restored).ShouldBe(Snapshot(sm));
        restored.Stats("t", 3_000)!.ShouldSatisfyAllConditions(
            s => s.MaxMessages.ShouldBe(6L), s => s.MaxBytes.ShouldBe(5 * Record), s => s.MaxAgeMs.ShouldBe(500L),
            s => s.Overflow.ShouldBe(OverflowPolicy.DropOldest), s => s.Expire.ShouldBe(ExpiryAction.DeadLetter));
    }

    [Fact]
    public void A_topic_state_written_before_retention_restores_with_none()
    {
        var sm = WithTopic(new TopicRetention());
        var bytes = Snapshot(sm);
        // One topic "t": the state's length sits after magic, version, clock, count, name, logical head, head, tail, bytes and
        // the extent count (0);
        // the retention section is the state's last 42 bytes before the groups' creations (two groups: 20).
        const int lengthAt = 4 + 1 + 8 + 4 + 2 + 32 + 4;
        var stateLength = BitConverter.ToInt32(bytes, lengthAt);
        var old = bytes[..^(42 + 20)];
        BitConverter.GetBytes(stateLength - 42 - 20).CopyTo(old, lengthAt);
        var restored = _queues.Create();
        restored.RestoreSnapshot(new MemoryStream(old));
        var stats = restored.Stats("t", 0)!;
        (stats.MaxMessages, stats.MaxBytes, stats.MaxAgeMs, stats.Overflow, stats.Expire, stats.OverflowDroppedTotal, stats.ExpiredTotal)
            .ShouldBe((0L, 0L, 0L, OverflowPolicy.RejectPublish, ExpiryAction.DeadLetter, 0L, 0L));
        // The same state, but for the groups' creations, which such a state did not record (0).
        (BitConverter.ToUInt64(bytes, bytes.Length - 16), BitConverter.ToUInt64(bytes, bytes.Length - 8)).ShouldBe((1UL, 1UL));
        Snapshot(restored).ShouldBe([.. bytes[..^16], .. new byte[16]]);
    }

    [Fact]
    public void Bad_settings_are_refused_and_change_nothing()
    {
        // (−1 in a command means "keep", so the command cannot carry it; the other negatives it can.)
        var limits = QueueLimits.Default;
        var sm = WithTopic(new TopicRetention(MaxMessages: 10));
        foreach (var bad in new[]
        {
            new TopicRetention(MaxMessages: -3), new TopicRetention(MaxMessages: limits.MaxTopicMessages + 1L),
            new TopicRetention(MaxBytes: -5), new TopicRetention(MaxBytes: limits.MaxTopicMessageBytes + 1),
            new TopicRetention(MaxAgeMs: -2), new TopicRetention(MaxAgeMs: limits.MaxRetentionAgeMs + 1),
            new TopicRetention(Overflow: (OverflowPolicy)7), new TopicRetention(Expire: (ExpiryAction)9),
        })
        {
            Apply(sm, QueueCommand.ConfigureTopic("t", 0, retention: bad)).Status.ShouldBe(QueueStatus.Invalid, bad.ToString());
            Apply(sm, QueueCommand.ConfigureTopic("new", 0, retention: bad)).Status.ShouldBe(QueueStatus.Invalid, bad.ToString());
            limits.CheckRetention(bad, limits.InitialBounds).ShouldNotBeNull();
        }
        sm.Stats("t", 0)!.MaxMessages.ShouldBe(10L);
        sm.Topics().ShouldBe(["t"]);
        // A dead-letter topic has no retention of its own.
        Apply(sm, QueueCommand.ConfigureTopic("t", 1, retention: new TopicRetention(MaxAgeMs: 1))).ShouldBe(QueueResult.Ok);
        Publish(sm, 10, "a");
        Publish(sm, 20, "b"); // a expires into the dead-letter topic
        sm.Peek(DeadLetters.TopicFor("t"), null, 10)!.Count.ShouldBe(1);
        Apply(sm, QueueCommand.ConfigureTopic(DeadLetters.TopicFor("t"), 0, retention: new TopicRetention(MaxMessages: 1))).Status.ShouldBe(QueueStatus.Invalid);
        // 0 is unlimited, and the largest values are accepted.
        Apply(sm, QueueCommand.ConfigureTopic("t", 0, retention: new TopicRetention(limits.MaxTopicMessages, limits.MaxTopicMessageBytes, limits.MaxRetentionAgeMs)))
            .ShouldBe(QueueResult.Ok);
        Apply(sm, QueueCommand.ConfigureTopic("t", 0, retention: new TopicRetention(0, 0, 0))).ShouldBe(QueueResult.Ok);
    }

    [Fact]
    public void The_retention_part_of_configure_round_trips_and_the_earlier_forms_are_unchanged()
    {
        var full = QueueCommand.ConfigureTopic("t", 3, true, 5_000, new TopicRetention(10, 20, 30, OverflowPolicy.DropOldest, ExpiryAction.Drop)) with { TimestampMs = 9 };
        var partial = QueueCommand.ConfigureTopic("t", 0, false, null, new TopicRetention(MaxAgeMs: 0, Expire: ExpiryAction.DeadLetter));
        foreach (var c in new[] { full, partial })
        {
            var bytes = c.Encode();
            bytes.Length.ShouldBe(3 + 1 + 8 + 13 + 26);
            QueueCommand.TryDecode(bytes, out var decoded).ShouldBeTrue();
            decoded.ShouldBe(c);
            for (int cut = 1; cut < 26; cut++) QueueCommand.TryDecode(bytes.AsSpan(0, bytes.Length - cut), out _).ShouldBeFalse($"cut {cut}");
        }
        QueueCommand.TryDecode(partial.Encode(), out var p).ShouldBeTrue();
        (p.DedupWindowMs, p.Retention!.MaxMessages, p.Retention.Overflow).ShouldBe((null, null, null));
        // An empty change is no change: the earlier encodings.
        QueueCommand.ConfigureTopic("t", 3, retention: new TopicRetention()).Encode().ShouldBe(QueueCommand.ConfigureTopic("t", 3).Encode());
        QueueCommand.ConfigureTopic("t", 3).Encode().Length.ShouldBe(3 + 1 + 8 + 5);
        QueueCommand.ConfigureTopic("t", 3, dedupWindowMs: 7).Encode().Length.ShouldBe(3 + 1 + 8 + 13);
        // The new status travels back from a leader.
        var refused = new QueueResult(QueueStatus.TopicFull);
        QueueResultCodec.Instance.Decode(QueueResultCodec.Instance.Encode(refused)).ShouldBe(refused);
    }

    [Theory]
    [InlineData(11)]
    [InlineData(12)]
    [InlineData(13)]
    public void Random_publishes_receives_acks_and_clock_steps_under_retention_agree_on_every_node(int seed)
    {
        var random = new Random(seed);
        var store = new QueueStoreOptions { SegmentBytes = 300 };
        var a = _queues.Create(storeOptions: store);
        var b = _queues.Create(storeOptions: store);
        // A node whose store compacts at every chance, with smaller segments: compaction must change no result.
        var compacting = _queues.Create(storeOptions: new QueueStoreOptions { SegmentBytes = 256, CompactionCheckMessages = 1, WritebackBytes = 1 }); // and writeback requested for every write, racing consumption and retirement
        QueueStateMachine? restored = null;
        QueueResult Run(QueueCommand c)
        {
            var bytes = c.Encode();
            var r = (QueueResult)a.Apply(1, bytes)!;
            ((QueueResult)b.Apply(1, bytes)!).ShouldBe(r, c.Op.ToString());
            ((QueueResult)compacting.Apply(1, bytes)!).ShouldBe(r, $"{c.Op} on the compacting node");
            if (restored is not null) ((QueueResult)restored.Apply(1, bytes)!).ShouldBe(r, $"{c.Op} after the restore");
            return r;
        }
        Run(QueueCommand.ConfigureTopic("t", 4, retention: new TopicRetention(20, 20 * (Record + 8), 3_000, OverflowPolicy.DropOldest, ExpiryAction.DeadLetter)));
        Run(QueueCommand.CreateGroup("t", "g2", GroupStart.Earliest));
        var held = new Dictionary<string, List<Receipt>> { ["default"] = [], ["g2"] = [] };
        long now = 1_000;
        ulong published = 0;
        for (int step = 0; step < 600; step++)
        {
            now += random.Next(0, 120);
            var group = random.Next(2) == 0 ? "default" : "g2";
            switch (random.Next(6))
            {
                case 0 or 1:
                    var n = random.Next(1, 4);
                    var r = Run(QueueCommand.PublishMessages("t", [.. Enumerable.Range(0, n).Select(i => Msg(new string('p', random.Next(0, 9))))], now));
                    r.Success.ShouldBeTrue();
                    published += (ulong)n;
                    break;
                case 2:
                    held[group].AddRange(Run(QueueCommand.Receive("t", group, random.Next(1, 5), random.Next(50, 500), now)).Delivered!
                        .Select(m => new Receipt(m.Offset, m.DeliveryCount)));
                    break;
                case 3 when held[group].Count > 0:
                    var acked = Run(QueueCommand.Ack("t", group, held[group], now));
                    (acked.Count + acked.Stale!.Count).ShouldBe(held[group].Count);
                    held[group].Clear();
                    break;
                case 4 when held[group].Count > 0:
                    Run(QueueCommand.Nack("t", group, held[group], random.Next(0, 200), "x", now));
                    held[group].Clear();
                    break;
                default:
                    Run(QueueCommand.PopMessages("t", random.Next(1, 3)));
                    break;
            }
            // The bounds hold after every command.
            var s = a.Stats("t", now)!;
            s.Messages.ShouldBeLessThanOrEqualTo(20L);
            s.Bytes.ShouldBeLessThanOrEqualTo(20 * (Record + 8));
            s.Tail.ShouldBe(published);
            if (step == 300)
            {
                var bytes = Snapshot(a);
                restored = _queues.Create(storeOptions: store);
                restored.RestoreSnapshot(new MemoryStream(bytes));
            }
        }
        var final = a.Stats("t", now)!;
        (final.OverflowDroppedTotal + final.ExpiredTotal).ShouldBeGreaterThan(0L);
        Snapshot(a).ShouldBe(Snapshot(b));
        Snapshot(a).ShouldBe(Snapshot(restored!));
        Snapshot(a).ShouldBe(Snapshot(compacting), "compaction changes no snapshot");
        // Every expired message is a dead letter marked as such.
        var dead = a.Peek(DeadLetters.TopicFor("t"), null, 1_000) ?? [];
        dead.Count(m => m.Headers.Contains(new MessageHeader(DeadLetters.ReasonHeader, DeadLetters.ExpiredReason))).ShouldBe((int)final.ExpiredTotal);
        dead.Select(m => ulong.Parse(m.Headers.First(h => h.Name == DeadLetters.OriginalOffsetHeader).Value, CultureInfo.InvariantCulture))
            .Where(o => o < final.Head).ShouldNotBeEmpty();
    }
}

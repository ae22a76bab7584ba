using RaftMQ.StateMachine;
using System.Text;
using static RaftMQ.Queue.Tests.QueueTestSteps;

namespace RaftMQ.Queue.Tests;

/// <summary>
/// The delivery model: consumer groups, leases fenced by receipts, acks, nacks, extends, dead letters and redrive,
/// with every time taken from the commands.
/// </summary>
[Collection(QueueMemoryCollection.Name)]
public sealed class ConsumerGroupTests : IDisposable
{
    private readonly TestQueues _queues = new();

    public void Dispose() => _queues.Dispose();

    private static QueueStateMachine WithTopic(TestQueues queues, int messages, int maxDeliveries = 0)
    {
        var sm = queues.Create();
        Apply(sm, QueueCommand.ConfigureTopic("t", maxDeliveries)).Count.ShouldBe(1);
        if (messages > 0) Apply(sm, QueueCommand.PublishMessages("t", [.. Enumerable.Range(0, messages).Select(i => Msg($"m{i}"))], 1_000)).ShouldBe(QueueResult.Ok with { Count = messages, FirstOffset = 0 });
        return sm;
    }

    [Fact]
    public void Receive_leases_and_ack_finishes_each_message_once()
    {
        var sm = WithTopic(_queues, 3);
        var got = Apply(sm, QueueCommand.Receive("t", "default", 2, 30_000, 2_000)).Delivered!;
        got.Select(Text).ShouldBe(["m0", "m1"]);
        got.Select(m => m.DeliveryCount).ShouldBe([1, 1]);
        got.Select(m => m.TimestampMs).ShouldBe([1_000, 1_000]);
        // Leased messages are invisible to the group's other consumers.
        Apply(sm, QueueCommand.Receive("t", "default", 10, 30_000, 2_001)).Delivered!.Select(Text).ShouldBe(["m2"]);
        Apply(sm, QueueCommand.Receive("t", "default", 10, 30_000, 2_002)).Delivered!.ShouldBeEmpty();

        var ack = Apply(sm, QueueCommand.Ack("t", "default", [ReceiptOf(got[0]), ReceiptOf(got[0])], 2_003));
        ack.Count.ShouldBe(1);
        ack.Stale.ShouldBe([ReceiptOf(got[0])]);
        sm.Offsets("t").ShouldBe((1UL, 3UL)); // the head follows the ack floor
        var stats = sm.Stats("t", 2_003)!.Groups.Single();
        (stats.Ready, stats.Leased, stats.Unacked, stats.AckedTotal, stats.DeliveredTotal).ShouldBe((0L, 2, 2L, 1L, 3L));
    }

    [Fact]
    public void An_expired_lease_is_delivered_again_with_a_higher_count_and_its_old_receipt_is_stale()
    {
        var sm = WithTopic(_queues, 1);
        var first = Apply(sm, QueueCommand.Receive("t", "default", 1, 1_000, 10_000)).Delivered!.Single();
        Apply(sm, QueueCommand.Receive("t", "default", 1, 1_000, 10_999)).Delivered!.ShouldBeEmpty(); // still leased
        var second = Apply(sm, QueueCommand.Receive("t", "default", 1, 1_000, 11_000)).Delivered!.Single();
        (second.Offset, second.DeliveryCount).ShouldBe((first.Offset, 2));

        // The first consumer comes back: every use of its receipt is refused, never applied.
        Apply(sm, QueueCommand.Extend("t", "default", [ReceiptOf(first)], 5_000, 11_001)).Stale.ShouldBe([ReceiptOf(first)]);
        Apply(sm, QueueCommand.Nack("t", "default", [ReceiptOf(first)], 0, "boom", 11_002)).Stale.ShouldBe([ReceiptOf(first)]);
        Apply(sm, QueueCommand.Ack("t", "default", [ReceiptOf(first)], 11_003)).ShouldBe(QueueResult.Ok with { Count = 0, Stale = [ReceiptOf(first)] });
        sm.Stats("t", 11_003)!.Groups.Single().Leased.ShouldBe(1);

        Apply(sm, QueueCommand.Ack("t", "default", [ReceiptOf(second)], 11_004)).Count.ShouldBe(1);
        sm.Depth("t").ShouldBe(0);
    }

    [Fact]
    public void Extend_keeps_a_lease_past_its_first_deadline()
    {
        var sm = WithTopic(_queues, 1);
        var m = Apply(sm, QueueCommand.Receive("t", "default", 1, 1_000, 10_000)).Delivered!.Single();
        Apply(sm, QueueCommand.Extend("t", "default", [ReceiptOf(m)], 5_000, 10_500)).ShouldBe(QueueResult.Ok with { Count = 1, Stale = [] });
        Apply(sm, QueueCommand.Receive("t", "default", 1, 1_000, 15_499)).Delivered!.ShouldBeEmpty();
        Apply(sm, QueueCommand.Receive("t", "default", 1, 1_000, 15_500)).Delivered!.Single().DeliveryCount.ShouldBe(2);
    }

    [Fact]
    public void Nack_with_a_delay_holds_the_message_back_until_then()
    {
        var sm = WithTopic(_queues, 2);
        var m = Apply(sm, QueueCommand.Receive("t", "default", 1, 30_000, 10_000)).Delivered!.Single();
        Apply(sm, QueueCommand.Nack("t", "default", [ReceiptOf(m)], 5_000, "try later", 10_001)).Count.ShouldBe(1);
        sm.Stats("t", 10_001)!.Groups.Single().Delayed.ShouldBe(1);
        Apply(sm, QueueCommand.Receive("t", "default", 5, 30_000, 10_002)).Delivered!.Select(Text).ShouldBe(["m1"]);
        var again = Apply(sm, QueueCommand.Receive("t", "default", 5, 30_000, 15_001)).Delivered!.Single();
        (Text(again), again.DeliveryCount).ShouldBe(("m0", 2));
    }

    [Fact]
    public void After_max_deliveries_the_message_moves_to_the_dead_letter_topic_with_its_story_and_redrive_brings_it_back()
    {
        var sm = WithTopic(_queues, 0, maxDeliveries: 2);
        Apply(sm, QueueCommand.PublishMessages("t", [new QueueMessage(Encoding.UTF8.GetBytes("poison"), [new MessageHeader("k", "v")])], 500));
        var now = 1_000L;
        var first = Apply(sm, QueueCommand.Receive("t", "default", 1, 100, now)).Delivered!.Single();
        now += 100; // the lease expires
        var second = Apply(sm, QueueCommand.Receive("t", "default", 1, 100, now)).Delivered!.Single();
        second.DeliveryCount.ShouldBe(2);
        Apply(sm, QueueCommand.Nack("t", "default", [ReceiptOf(second)], 0, "cannot parse", now)).Count.ShouldBe(1);
        first.Offset.ShouldBe(second.Offset);

        sm.Depth("t").ShouldBe(0); // finished for the only group: gone from the topic
        var dead = DeadLetters.TopicFor("t");
        sm.Topics().ShouldBe(["t"]); // the dead-letter topic is not a user topic
        var stats = sm.Stats("t", now)!;
        (stats.DeadLetterTopic, stats.DeadLettered, stats.Groups[0].DeadLetteredTotal).ShouldBe((dead, 1L, 1L));
        var letter = sm.Peek(dead, null, 10)!.Single();
        Text(letter).ShouldBe("poison");
        letter.TimestampMs.ShouldBe(now);
        letter.Headers.ShouldBe([
            new MessageHeader(DeadLetters.DeliveryCountHeader, "2"),
            new MessageHeader(DeadLetters.OriginalOffsetHeader, "0"),
            new MessageHeader(DeadLetters.OriginalPublishedAtHeader, "500"),
            new MessageHeader(DeadLetters.GroupHeader, "default"),
            new MessageHeader(DeadLetters.LastErrorHeader, "cannot parse"),
            new MessageHeader("k", "v"),
        ]);

        Apply(sm, QueueCommand.Redrive("t", 10, now + 1)).Count.ShouldBe(1);
        sm.Stats("t", now + 1)!.DeadLettered.ShouldBe(0);
        var back = Apply(sm, QueueCommand.Receive("t", "default", 1, 100, now + 2)).Delivered!.Single();
        (Text(back), back.Offset, back.DeliveryCount, back.TimestampMs).ShouldBe(("poison", 1UL, 1, now + 1));
        back.Headers.ShouldBe([new MessageHeader("k", "v")]);
        Apply(sm, QueueCommand.Redrive("t", 10, now + 3)).Count.ShouldBe(0);
    }

    [Fact]
    public void A_message_whose_last_lease_expired_is_dead_lettered_instead_of_delivered_again()
    {
        var sm = WithTopic(_queues, 1, maxDeliveries: 1);
        Apply(sm, QueueCommand.Receive("t", "default", 1, 100, 1_000)).Delivered!.Single();
        Apply(sm, QueueCommand.Receive("t", "default", 1, 100, 2_000)).Delivered!.ShouldBeEmpty();
        sm.Stats("t", 2_000)!.DeadLettered.ShouldBe(1);
        sm.Peek(DeadLetters.TopicFor("t"), 0, 1)!.Single().Headers[0].ShouldBe(new MessageHeader(DeadLetters.DeliveryCountHeader, "1"));
    }

    [Fact]
    public void Every_group_sees_every_message_and_the_head_waits_for_the_slowest()
    {
        var sm = WithTopic(_queues, 2);
        Apply(sm, QueueCommand.CreateGroup("t", "audit", GroupStart.Earliest)).ShouldBe(QueueResult.Ok);
        Apply(sm, QueueCommand.CreateGroup("t", "live", GroupStart.Latest)).ShouldBe(QueueResult.Ok);
        Apply(sm, QueueCommand.CreateGroup("t", "audit", GroupStart.Latest)).Status.ShouldBe(QueueStatus.GroupExists);
        Apply(sm, QueueCommand.PublishMessages("t", [Msg("m2")], 2_000));

        Apply(sm, QueueCommand.PopMessages("t", 10)).Delivered!.Select(Text).ShouldBe(["m0", "m1", "m2"]);
        sm.Offsets("t").ShouldBe((0UL, 3UL)); // audit has acked nothing
        Apply(sm, QueueCommand.Receive("t", "live", 10, 1_000, 3_000)).Delivered!.Select(Text).ShouldBe(["m2"]);
        var audit = Apply(sm, QueueCommand.Receive("t", "audit", 10, 1_000, 3_000)).Delivered!;
        audit.Select(Text).ShouldBe(["m0", "m1", "m2"]);
        Apply(sm, QueueCommand.Ack("t", "audit", [.. audit.Select(ReceiptOf)], 3_001)).Count.ShouldBe(3);
        sm.Offsets("t").ShouldBe((2UL, 3UL)); // live still holds m2
        Apply(sm, QueueCommand.Receive("t", "nobody", 1, 1_000, 3_002)).Status.ShouldBe(QueueStatus.NoSuchGroup);
    }

    [Fact]
    public void One_stuck_message_and_many_acks_above_it_cost_one_range()
    {
        var sm = WithTopic(_queues, 0);
        for (int i = 0; i < 5; i++) Apply(sm, QueueCommand.PublishMessages("t", [.. Enumerable.Range(0, 1_000).Select(j => Msg("x"))], 1_000));
        var stuck = Apply(sm, QueueCommand.Receive("t", "default", 1, 3_600_000, 1_000)).Delivered!.Single();
        for (int i = 0; i < 5; i++)
        {
            var batch = Apply(sm, QueueCommand.Receive("t", "default", 1_000, 60_000, 1_001)).Delivered!;
            Apply(sm, QueueCommand.Ack("t", "default", [.. batch.Select(ReceiptOf)], 1_002)).Count.ShouldBe(batch.Count);
        }
        var group = sm.Stats("t", 1_002)!.Groups.Single();
        (group.AckFloor, group.Unacked, group.FinishedRanges, group.Leased).ShouldBe((0UL, 1L, 1, 1));
        Apply(sm, QueueCommand.Ack("t", "default", [ReceiptOf(stuck)], 1_003)).Count.ShouldBe(1);
        sm.Stats("t", 1_003)!.Groups.Single().FinishedRanges.ShouldBe(0);
        sm.Depth("t").ShouldBe(0);
    }

    [Fact]
    public void Bad_arguments_are_refused_and_change_nothing()
    {
        var sm = WithTopic(_queues, 1);
        var limits = sm.Limits;
        Apply(sm, QueueCommand.Receive("t", "default", 0, 1_000)).Status.ShouldBe(QueueStatus.Invalid);
        Apply(sm, QueueCommand.Receive("t", "default", limits.MaxBatchMessages + 1, 1_000)).Status.ShouldBe(QueueStatus.Invalid);
        Apply(sm, QueueCommand.Receive("t", "default", 1, 0)).Status.ShouldBe(QueueStatus.Invalid);
        Apply(sm, QueueCommand.Receive("t", "default", 1, limits.MaxLeaseMs + 1)).Status.ShouldBe(QueueStatus.Invalid);
        Apply(sm, QueueCommand.Ack("t", "default", [])).Status.ShouldBe(QueueStatus.Invalid);
        Apply(sm, QueueCommand.Nack("t", "default", [new Receipt(0, 1)], -1, null)).Status.ShouldBe(QueueStatus.Invalid);
        Apply(sm, QueueCommand.Nack("t", "default", [new Receipt(0, 1)], 0, new string('e', limits.MaxNackErrorBytes + 1))).Status.ShouldBe(QueueStatus.Invalid);
        Apply(sm, QueueCommand.CreateGroup("t", "bad name", GroupStart.Earliest)).Status.ShouldBe(QueueStatus.Invalid);
        Apply(sm, QueueCommand.ConfigureTopic("t", limits.MaxDeliveriesLimit + 1)).Status.ShouldBe(QueueStatus.Invalid);
        Apply(sm, QueueCommand.ConfigureTopic("x", 3, createIfMissing: false)).Status.ShouldBe(QueueStatus.NoSuchTopic);
        Apply(sm, QueueCommand.CreateTopic(DeadLetters.TopicFor("u"))).Status.ShouldBe(QueueStatus.Invalid);
        Apply(sm, QueueCommand.ConfigureTopic(DeadLetters.TopicFor("u"), 0)).Status.ShouldBe(QueueStatus.Invalid);
        Apply(sm, QueueCommand.Receive("nope", "default", 1, 1_000)).Status.ShouldBe(QueueStatus.NoSuchTopic);
        sm.Stats("t", 0)!.Groups.Single().Ready.ShouldBe(1);
        var g = new QueueLimits { MaxGroupsPerTopic = 2 };
        var small = _queues.Create(g);
        Apply(small, QueueCommand.ConfigureTopic("t", 0));
        Apply(small, QueueCommand.CreateGroup("t", "a", GroupStart.Earliest)).ShouldBe(QueueResult.Ok);
        Apply(small, QueueCommand.CreateGroup("t", "b", GroupStart.Earliest)).Status.ShouldBe(QueueStatus.LimitReached);
    }

    [Fact]
    public void A_group_takes_no_new_message_past_its_in_flight_bound_but_still_redelivers()
    {
        var sm = _queues.Create(new QueueLimits { MaxInFlightPerGroup = 2 });
        Apply(sm, QueueCommand.ConfigureTopic("t", 0));
        Apply(sm, QueueCommand.PublishMessages("t", [Msg("a"), Msg("b"), Msg("c")], 1));
        var two = Apply(sm, QueueCommand.Receive("t", "default", 10, 100, 1_000)).Delivered!;
        two.Select(Text).ShouldBe(["a", "b"]);
        Apply(sm, QueueCommand.Receive("t", "default", 10, 100, 1_001)).Delivered!.ShouldBeEmpty();
        // The leases end: the two come back (redeliveries are not bounded), still not the third.
        Apply(sm, QueueCommand.Receive("t", "default", 10, 100, 1_100)).Delivered!.Select(m => (Text(m), m.DeliveryCount)).ShouldBe([("a", 2), ("b", 2)]);
        Apply(sm, QueueCommand.Ack("t", "default", [new Receipt(0, 2)], 1_101)).Count.ShouldBe(1);
        Apply(sm, QueueCommand.Receive("t", "default", 10, 100, 1_102)).Delivered!.Select(Text).ShouldBe(["c"]);
    }

    [Fact]
    public void Configure_changes_max_deliveries_and_delete_removes_the_topic_with_its_dead_letters()
    {
        var sm = WithTopic(_queues, 1, maxDeliveries: 1);
        sm.Stats("t", 0)!.MaxDeliveries.ShouldBe(1);
        Apply(sm, QueueCommand.ConfigureTopic("t", 5)).ShouldBe(QueueResult.Ok);
        sm.Stats("t", 0)!.MaxDeliveries.ShouldBe(5);
        Apply(sm, QueueCommand.ConfigureTopic("t", 1));
        var m = Apply(sm, QueueCommand.Receive("t", "default", 1, 100, 1_000)).Delivered!.Single();
        Apply(sm, QueueCommand.Nack("t", "default", [ReceiptOf(m)], 0, null, 1_000)).Count.ShouldBe(1);
        sm.Depth(DeadLetters.TopicFor("t")).ShouldBe(1);
        Apply(sm, QueueCommand.DeleteTopic("t")).ShouldBe(QueueResult.Ok);
        sm.Depth("t").ShouldBeNull();
        sm.Depth(DeadLetters.TopicFor("t")).ShouldBeNull();
        sm.TotalMessages.ShouldBe(0);
        Apply(sm, QueueCommand.DeleteTopic("t")).Status.ShouldBe(QueueStatus.NoSuchTopic);
        Apply(sm, QueueCommand.CreateTopic("t")).ShouldBe(QueueResult.Ok);
        Apply(sm, QueueCommand.Pop("t")).Status.ShouldBe(QueueStatus.Empty);
    }

    [Fact]
    public void The_string_pops_skip_leased_messages_and_take_redeliveries_first()
    {
        var sm = WithTopic(_queues, 3);
        var leased = Apply(sm, QueueCommand.Receive("t", "default", 1, 1_000, 1_000)).Delivered!.Single();
        Apply(sm, QueueCommand.Pop("t")).Message.ShouldBe("m1");
        Apply(sm, QueueCommand.Nack("t", "default", [ReceiptOf(leased)], 0, null, 1_001));
        Apply(sm, QueueCommand.PopBatch("t", 5)).Messages.ShouldBe(["m0", "m2"]);
        Apply(sm, QueueCommand.Pop("t")).Status.ShouldBe(QueueStatus.Empty);
        sm.Depth("t").ShouldBe(0);
    }

    [Fact]
    public void Peek_reads_without_consuming()
    {
        var sm = WithTopic(_queues, 5);
        sm.Peek("t", null, 2)!.Select(Text).ShouldBe(["m0", "m1"]);
        sm.Peek("t", 3, 10)!.Select(m => (Text(m), m.Offset)).ShouldBe([("m3", 3UL), ("m4", 4UL)]);
        sm.Peek("t", 9, 10)!.ShouldBeEmpty();
        sm.Peek("nope", null, 1).ShouldBeNull();
        Apply(sm, QueueCommand.PopMessages("t", 2));
        sm.Peek("t", 0, 1)!.Single().Offset.ShouldBe(2UL);
        sm.Depth("t").ShouldBe(3);
    }

    [Fact]
    public void Group_commands_and_results_round_trip_through_their_encodings()
    {
        QueueCommand[] commands =
        [
            QueueCommand.ConfigureTopic("t", 7, createIfMissing: false), QueueCommand.DeleteTopic("t"),
            QueueCommand.CreateGroup("t", "g", GroupStart.Latest), QueueCommand.Receive("t", "g", 10, 30_000, 99),
            QueueCommand.Ack("t", "g", [new Receipt(1, 2), new Receipt(ulong.MaxValue, int.MaxValue)], 5),
            QueueCommand.Nack("t", "g", [new Receipt(3, 1)], 100, "é error", 6), QueueCommand.Nack("t", "g", [new Receipt(3, 1)], 0, null),
            QueueCommand.Extend("t", "g", [new Receipt(4, 4)], 1_000, 7), QueueCommand.Redrive("t", 5, 8),
            QueueCommand.ReceiveAck("t", "g", 10, 30_000, [new Receipt(1, 2)], 9),
            // As this build writes them: the receipts with their tags.
            QueueCommand.Ack("t", "g", [new Receipt(1, 2) { Tag = 7 }, new Receipt(ulong.MaxValue, int.MaxValue) { Tag = ulong.MaxValue }], 5),
            QueueCommand.Nack("t", "g", [new Receipt(3, 1) { Tag = 0 }], 100, "é error", 6),
            QueueCommand.Extend("t", "g", [new Receipt(4, 4) { Tag = 9 }], 1_000, 7),
            QueueCommand.ReceiveAck("t", "g", 10, 30_000, [new Receipt(1, 2) { Tag = 10 }], 9),
        ];
        // The tags go in the entry: a tagged receipt is 8 bytes longer.
        (QueueCommand.Ack("t", "g", [new Receipt(1, 2) { Tag = 7 }]).Encode().Length - QueueCommand.Ack("t", "g", [new Receipt(1, 2)]).Encode().Length).ShouldBe(8);
        Should.Throw<ArgumentException>(() => QueueCommand.Ack("t", "g", [new Receipt(1, 2) { Tag = 7 }, new Receipt(2, 1)]).Encode());
        foreach (var c in commands)
        {
            var bytes = c.Encode();
            QueueCommand.TryDecode(bytes, out var decoded).ShouldBeTrue(c.Op.ToString());
            decoded.ShouldBe(c);
            QueueCommand.TimestampPosition(bytes).ShouldBe(3 + 1);
            for (int cut = 0; cut < bytes.Length; cut++) QueueCommand.TryDecode(bytes.AsSpan(0, cut), out _).ShouldBeFalse();
            QueueCommand.TryDecode([.. bytes, 0], out _).ShouldBeFalse();
        }
        var stamper = new PublishStamper(new FixedTime(DateTimeOffset.FromUnixTimeMilliseconds(123_456)));
        QueueCommand.TryDecode(stamper.Stamp(QueueCommand.Receive("t", "g", 1, 1).Encode()).Span, out var stamped).ShouldBeTrue();
        stamped.TimestampMs.ShouldBe(123_456);

        var result = QueueResult.Ok with
        {
            Count = 2, Stale = [new Receipt(9, 3)],
            Delivered = [new QueueMessage(new byte[] { 1, 2 }, [new MessageHeader("a", "b")]) { Offset = 4, TimestampMs = 5, DeliveryCount = 3 }],
        };
        QueueResultCodec.Instance.Decode(QueueResultCodec.Instance.Encode(result)).ShouldBe(result);
        foreach (var tagged in new[]
        {
            result with { ReceiptTag = 0xfeedUL, Stale = [new Receipt(9, 3) { Tag = 1 }, new Receipt(10, 1) { Tag = 2 }] },
            result with { ReceiptTag = 0UL }, result with { Stale = [new Receipt(9, 3) { Tag = ulong.MaxValue }] },
        })
        {
            var bytes = QueueResultCodec.Instance.Encode(tagged);
            QueueResultCodec.Instance.Decode(bytes).ShouldBe(tagged);
            for (int cut = 0; cut < bytes.Length; cut++) Should.Throw<FormatException>(() => QueueResultCodec.Instance.Decode(bytes.AsSpan(0, cut)));
        }
        var nothing = QueueResult.Ok with { Stale = [] };
        QueueResultCodec.Instance.Decode(QueueResultCodec.Instance.Encode(nothing)).ShouldBe(nothing);
        QueueResultCodec.Instance.Decode(QueueResultCodec.Instance.Encode(new QueueResult(QueueStatus.NoSuchGroup))).ShouldBe(new QueueResult(QueueStatus.NoSuchGroup));
    }

    [Fact]
    public void Receipts_have_one_text_form()
    {
        var r = new Receipt(0x1234, 2);
        r.ToString().ShouldBe("r1234-2");
        Receipt.TryParse("r1234-2", out var parsed).ShouldBeTrue();
        parsed.ShouldBe(r);
        Receipt.TryParse(new Receipt(ulong.MaxValue, int.MaxValue).ToString(), out var big).ShouldBeTrue();
        big.ShouldBe(new Receipt(ulong.MaxValue, int.MaxValue));
        foreach (var bad in new[] { null, "", "r", "r1-", "r-1", "r01-1", "R1-1", "r1-0", "r1-ffffffff", "r1-A", "r1-1-", "r10000000000000000-1", " r1-1" })
            Receipt.TryParse(bad, out _).ShouldBeFalse(bad);
    }

    [Fact]
    public void A_receipts_text_names_its_topic_group_and_the_groups_creation()
    {
        var tag = Receipt.TagOf("orders", "billing", 42);
        var r = new Receipt(0x1234, 2) { Tag = tag };
        var text = r.ToString();
        text.ShouldBe($"r1234-2-{tag:x16}");
        Receipt.TryParse(text, out var parsed).ShouldBeTrue();
        parsed.ShouldBe(r);
        // Another group, another topic, the dead letters of the topic, or the group created again: another tag.
        new[]
        {
            Receipt.TagOf("orders", "default", 42), Receipt.TagOf("invoices", "billing", 42), Receipt.TagOf(DeadLetters.TopicFor("orders"), "billing", 42),
            Receipt.TagOf("orders\0", "billing", 42), Receipt.TagOf("orders", "billing", 43), Receipt.TagOf("orders", "billing", 0),
        }.ShouldAllBe(t => t != tag);
        Receipt.TagOf("orders", "billing", 42).ShouldBe(tag); // the same on every call and every node
        // A group of a snapshot from before groups recorded their creation (0) keeps the tag its receipts had: FNV-1a
        // of "orders\0billing".
        Receipt.TagOf("orders", "billing", 0).ShouldBe(0x5855c0970a5ca1bfUL);
        // Names longer than the stack buffer hash as well.
        var longName = new string('\u00e9', 2000);
        Receipt.TagOf(longName, "g", 1).ShouldNotBe(Receipt.TagOf(longName + "x", "g", 1));
        // The form without a tag still parses, with none.
        Receipt.TryParse("r1234-2", out var old).ShouldBeTrue();
        (old, old.Tag).ShouldBe((new Receipt(0x1234, 2), (ulong?)null));
        foreach (var bad in new[] { "r1234-2-", "r1234-2-0123456789abcde", "r1234-2-0123456789abcdef0", "r1234-2-0123456789ABCDEF", "r1234-0-0123456789abcdef", "r1234-2-0123456789abcdef-1" })
            Receipt.TryParse(bad, out _).ShouldBeFalse(bad);
    }

    private sealed class FixedTime(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
    }

    [Fact]
    public void A_snapshot_holds_the_groups_in_flight_at_capture_however_they_move_before_it_is_written()
    {
        // The capture does not copy the groups' leases, pending messages and finished ranges (the loop would stall on
        // a group with many in flight); they are written later. Between the two, every change they know happens.
        var longError = new string('é', 100); // 200 bytes of UTF-8: a two-byte length in the snapshot
        static List<QueueMessage> Receive(QueueStateMachine m, string group, int max, long now) =>
            [.. Apply(m, QueueCommand.Receive("t", group, max, 60_000, now)).Delivered!];
        static Receipt[] Every(List<QueueMessage> got, int step, int first, int? max = null) =>
            [.. got.Where((_, i) => i % step == first).Take(max ?? got.Count).Select(ReceiptOf)];
        (List<QueueMessage> Default, List<QueueMessage> G2) Before(QueueStateMachine m)
        {
            Apply(m, QueueCommand.ConfigureTopic("t", 0, retention: new TopicRetention(MaxMessages: 3_000, Overflow: OverflowPolicy.DropOldest))).Count.ShouldBe(1);
            Apply(m, QueueCommand.CreateGroup("t", "g2", GroupStart.Earliest)).ShouldBe(QueueResult.Ok);
            Apply(m, QueueCommand.CreateGroup("t", "g3", GroupStart.Earliest)).ShouldBe(QueueResult.Ok);
            for (var b = 0; b < 3; b++)
                Apply(m, QueueCommand.PublishMessages("t", [.. Enumerable.Range(b * 1_000, 1_000).Select(i => Msg($"m{i}"))], 1_000)).Count.ShouldBe(1_000);
            // default: 1,500 leased; of each three the second acked (a finished range each), the first nacked (half
            // ready again with an error, half delayed with a longer one), the third extended.
            var got = Receive(m, "default", 1_000, 2_000).Concat(Receive(m, "default", 500, 2_000)).ToList();
            Apply(m, QueueCommand.Ack("t", "default", Every(got, 3, 1), 2_001)).Count.ShouldBe(500);
            Apply(m, QueueCommand.Nack("t", "default", Every(got, 6, 0), 0, "échec", 2_001)).Count.ShouldBe(250);
            Apply(m, QueueCommand.Nack("t", "default", Every(got, 6, 3), 30_000, longError, 2_001)).Count.ShouldBe(250);
            Receive(m, "default", 100, 2_002).ShouldAllBe(d => d.DeliveryCount == 2); // leases that carry the error
            Apply(m, QueueCommand.Extend("t", "default", Every(got, 3, 2, max: 200), 120_000, 2_003)).Count.ShouldBe(200);
            // g2: 500 leased, the first 100 acked (its floor moves) and every other one above.
            var g2 = Receive(m, "g2", 500, 2_004);
            Apply(m, QueueCommand.Ack("t", "g2", [.. g2.Take(100).Select(ReceiptOf)], 2_005)).Count.ShouldBe(100);
            Apply(m, QueueCommand.Ack("t", "g2", Every(g2[100..], 2, 1), 2_005)).Count.ShouldBe(200);
            Receive(m, "g3", 10, 2_006).Count.ShouldBe(10);
            var stats = m.Stats("t", 2_010)!.Groups;
            stats.Select(g => (g.Group, g.Leased, g.Delayed, g.FinishedRanges)).ShouldBe([("default", 600, 250, 500), ("g2", 200, 0, 200), ("g3", 10, 0, 0)]);
            return (got, g2);
        }
        void After(QueueStateMachine m, List<QueueMessage> got, List<QueueMessage> g2)
        {
            var more = Receive(m, "default", 1_000, 3_000); // the 150 nacked ready ones, then new ones
            more.Count.ShouldBe(1_000);
            Apply(m, QueueCommand.Ack("t", "default", Every(got, 3, 2), 3_001)).Count.ShouldBe(500); // each merges with the range below
            // The nacked ones, delivered again: each finishes the gap between two ranges, which become one.
            var again = more.Where(d => d.DeliveryCount == 2).ToList();
            again.Count.ShouldBe(150);
            Apply(m, QueueCommand.Ack("t", "default", [.. again.Select(ReceiptOf)], 3_002)).Count.ShouldBe(150);
            var fresh = more.Where(d => d.DeliveryCount == 1).ToList();
            Apply(m, QueueCommand.Nack("t", "default", Every(fresh, 4, 0), 5_000, "later", 3_003)).Count.ShouldBe(213);
            Apply(m, QueueCommand.Extend("t", "default", Every(fresh, 4, 1), 90_000, 3_004)).Count.ShouldBe(213);
            // g2's leases end (at 62,004): each goes back to pending, and the first ones are delivered again.
            Receive(m, "g2", 10, 70_000).ShouldAllBe(d => d.DeliveryCount == 2);
            // An ended lease's receipt still acks the message until it is delivered again: all but those 10 (which merge ranges).
            Apply(m, QueueCommand.Ack("t", "g2", Every(g2[100..], 2, 0), 70_001)).Count.ShouldBe(190);
            Apply(m, QueueCommand.DeleteGroup("t", "g3", 70_002)).ShouldBe(QueueResult.Ok);
            // Past max_messages: offsets below 1,000 go for every group, with whatever each held of them (674 messages:
            // those every group finished were no longer retained).
            Apply(m, QueueCommand.PublishMessages("t", [.. Enumerable.Range(3_000, 1_000).Select(i => Msg($"m{i}"))], 70_003)).Count.ShouldBe(1_000);
            m.Stats("t", 70_003)!.ShouldSatisfyAllConditions(t => t.OverflowDroppedTotal.ShouldBe(674L), t => t.Head.ShouldBe(1_000UL));
        }
        static byte[] Written(QueueStateMachine m)
        {
            using var buffer = new MemoryStream();
            m.WriteSnapshot(buffer);
            return buffer.ToArray();
        }

        var sm = _queues.Create();
        var (got, g2) = Before(sm);
        using var snapshot = sm.CaptureSnapshot();
        After(sm, got, g2);
        using var written = new MemoryStream();
        snapshot.WriteTo(written);

        // The same bytes as a node that only ever applied the commands before the capture.
        var twin = _queues.Create();
        Before(twin);
        written.ToArray().ShouldBe(Written(twin));
        // And the capture did not disturb the state that moved on: the same as a node that applied all without one.
        var uncaptured = _queues.Create();
        var (got2, g22) = Before(uncaptured);
        After(uncaptured, got2, g22);
        Written(sm).ShouldBe(Written(uncaptured));

        // Restored, it answers as the twin does: leases, pending and delayed messages, finished ranges and floors.
        written.Position = 0;
        var restored = _queues.Create();
        restored.RestoreSnapshot(written);
        Written(restored).ShouldBe(Written(twin));
        List<string> Answers(QueueStateMachine m)
        {
            List<string> answers = [];
            void Note(IEnumerable<QueueMessage> delivered) => answers.Add(string.Join(' ', delivered.Select(d => $"{Text(d)}#{d.DeliveryCount}")));
            answers.AddRange(m.Stats("t", 2_010)!.Groups.Select(g => $"{g.Group} {g.Cursor} {g.AckFloor} {g.Ready} {g.Leased} {g.Delayed} {g.Unacked} {g.FinishedRanges}"));
            answers.Add(Apply(m, QueueCommand.Ack("t", "default", Every(got, 3, 2), 2_011)).Count.ToString()); // extended: still held
            answers.Add(Apply(m, QueueCommand.Ack("t", "g2", Every(g2[100..], 2, 0), 2_012)).Count.ToString());
            Note(Receive(m, "default", 1_000, 3_000)); // the nacked ones ready again first, then new ones
            Note(Receive(m, "default", 1_000, 32_001)); // the delayed ones
            Note(Receive(m, "g3", 20, 70_000)); // its leases ended
            answers.AddRange(m.Stats("t", 70_000)!.Groups.Select(g => $"{g.Group} {g.Cursor} {g.AckFloor} {g.Ready} {g.Leased} {g.Delayed} {g.Unacked} {g.FinishedRanges}"));
            return answers;
        }
        var expected = Answers(twin);
        Answers(restored).ShouldBe(expected);
        expected[3].ShouldBe("500");
        expected[4].ShouldBe("200");
        expected[7].ShouldStartWith("m0#2 m1#2 m2#2 m3#2 m4#2 m5#2 m6#2 m7#2 m8#2 m9#2 m10#1");
    }
}

/// <summary>Snapshots from before consumer groups (version 2: records only) restore with one group, default, at the head.</summary>
[Collection(QueueMemoryCollection.Name)]
public sealed class GroupSnapshotCompatibilityTests : IDisposable
{
    private readonly TestQueues _queues = new();

    public void Dispose() => _queues.Dispose();

    [Fact]
    public void A_version_2_snapshot_restores_with_the_default_group_at_its_head()
    {
        var sm = _queues.Create();
        Apply(sm, QueueCommand.CreateTopic("t"));
        foreach (var m in new[] { "a", "b", "c" }) Apply(sm, QueueCommand.Publish("t", m));
        Apply(sm, QueueCommand.Pop("t")).Message.ShouldBe("a");
        var v4 = Snapshot(sm);

        // Version 4 is version 2 plus the clock, each topic's logical head, its extent table (before its records) and
        // its state (after them).
        var name = System.Text.Encoding.UTF8.GetBytes("t");
        var topicStart = 4 + 1 + 8 + 4;
        var afterName = topicStart + 1 + name.Length;
        var recordBytes = BitConverter.ToInt64(v4, afterName + 8 + 16);
        var extents = BitConverter.ToInt32(v4, afterName + 8 + 24);
        extents.ShouldBe(1);
        var recordsStart = afterName + 8 + 24 + 4 + 24 * extents;
        using var v2 = new MemoryStream();
        v2.Write(v4.AsSpan(0, 4));
        v2.WriteByte(2);
        v2.Write(v4.AsSpan(13, 4));
        v2.Write(v4.AsSpan(topicStart, 1 + name.Length));
        v2.Write(v4.AsSpan(afterName + 8, 24));
        v2.Write(v4.AsSpan(recordsStart, (int)recordBytes));
        v2.Position = 0;

        var restored = _queues.Create();
        restored.RestoreSnapshot(v2);
        restored.Offsets("t").ShouldBe((1UL, 3UL));
        var stats = restored.Stats("t", 0)!;
        (stats.Groups.Single().Group, stats.Groups.Single().AckFloor, stats.MaxDeliveries).ShouldBe(("default", 1UL, restored.Limits.DefaultMaxDeliveries));
        var got = Apply(restored, QueueCommand.Receive("t", "default", 1, 1_000, 5_000)).Delivered!.Single();
        (got.Offset, System.Text.Encoding.UTF8.GetString(got.Payload.Span)).ShouldBe((1UL, "b"));
        Apply(restored, QueueCommand.Pop("t")).Message.ShouldBe("c");
        Apply(restored, QueueCommand.Ack("t", "default", [new Receipt(1, 1)], 5_001)).Count.ShouldBe(1);
        restored.Depth("t").ShouldBe(0);
    }

    private static byte[] Snapshot(QueueStateMachine sm)
    {
        using var buffer = new MemoryStream();
        sm.WriteSnapshot(buffer);
        return buffer.ToArray();
    }
}

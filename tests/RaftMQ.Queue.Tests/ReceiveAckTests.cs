using System.Text;
using static RaftMQ.Queue.Tests.QueueTestSteps;

namespace RaftMQ.Queue.Tests;

/// <summary>
/// <see cref="QueueOp.ReceiveAck"/>: the ack of a consumer's previous batch and its next receive in one entry, the
/// ack applied first with the same fencing as an <see cref="QueueOp.Ack"/>.
/// </summary>
[Collection(QueueMemoryCollection.Name)]
public sealed class ReceiveAckTests : IDisposable
{
    private readonly TestQueues _queues = new();

    public void Dispose() => _queues.Dispose();

    private QueueStateMachine WithTopic(int messages, QueueLimits? limits = null)
    {
        var sm = _queues.Create(limits);
        Apply(sm, QueueCommand.ConfigureTopic("t", 0)).Success.ShouldBeTrue();
        Apply(sm, QueueCommand.PublishMessages("t", [.. Enumerable.Range(0, messages).Select(i => Msg($"m{i}"))], 1_000)).Success.ShouldBeTrue();
        return sm;
    }

    [Fact]
    public void It_acks_the_previous_batch_then_leases_the_next_in_one_entry()
    {
        // At most 2 in flight: the receive part can lease only because the ack part freed both first.
        var sm = WithTopic(5, new QueueLimits { MaxInFlightPerGroup = 2 });
        var first = Apply(sm, QueueCommand.Receive("t", "default", 2, 30_000, 2_000)).Delivered!;
        first.Select(Text).ShouldBe(["m0", "m1"]);
        Apply(sm, QueueCommand.Receive("t", "default", 2, 30_000, 2_001)).Delivered!.ShouldBeEmpty();

        var result = Apply(sm, QueueCommand.ReceiveAck("t", "default", 2, 30_000, [.. first.Select(ReceiptOf)], 2_002));
        result.Status.ShouldBe(QueueStatus.Ok);
        result.Count.ShouldBe(2);
        result.Stale.ShouldBe([]);
        result.Delivered!.Select(m => (Text(m), m.Offset, m.DeliveryCount)).ShouldBe([("m2", 2UL, 1), ("m3", 3UL, 1)]);
        sm.Offsets("t").ShouldBe((2UL, 5UL)); // the acked two are gone, the head follows
        var stats = sm.Stats("t", 2_002)!.Groups.Single();
        (stats.Leased, stats.AckedTotal, stats.DeliveredTotal).ShouldBe((2, 2L, 4L));

        // The last batch: acked alone, the receive part finding one message left.
        var last = Apply(sm, QueueCommand.ReceiveAck("t", "default", 10, 30_000, [.. result.Delivered!.Select(ReceiptOf)], 2_003));
        (last.Count, last.Delivered!.Single().Offset).ShouldBe((2, 4UL));
        Apply(sm, QueueCommand.Ack("t", "default", [ReceiptOf(last.Delivered!.Single())], 2_004)).Count.ShouldBe(1);
        sm.Depth("t").ShouldBe(0);
    }

    [Fact]
    public void A_stale_receipt_is_reported_not_applied_and_the_receive_still_happens()
    {
        var sm = WithTopic(2);
        var first = Apply(sm, QueueCommand.Receive("t", "default", 1, 1_000, 10_000)).Delivered!.Single();
        // The lease ends and another consumer gets m0 again: the first consumer's receipt is stale.
        var second = Apply(sm, QueueCommand.Receive("t", "default", 1, 1_000, 11_000)).Delivered!.Single();
        (second.Offset, second.DeliveryCount).ShouldBe((0UL, 2));

        var result = Apply(sm, QueueCommand.ReceiveAck("t", "default", 5, 1_000, [ReceiptOf(first)], 11_001));
        result.Count.ShouldBe(0);
        result.Stale.ShouldBe([ReceiptOf(first)]);
        result.Delivered!.Select(Text).ShouldBe(["m1"]);
        // m0 is still leased to the second consumer, whose receipt still acks it.
        sm.Stats("t", 11_001)!.Groups.Single().Leased.ShouldBe(2);
        var ack = Apply(sm, QueueCommand.ReceiveAck("t", "default", 5, 1_000, [ReceiptOf(second), ReceiptOf(second)], 11_002));
        (ack.Count, ack.Stale!.Count, ack.Delivered!.Count).ShouldBe((1, 1, 0));
    }

    [Fact]
    public void The_receive_part_takes_the_commands_time_for_its_leases_and_the_ack_part_sees_leases_ended_by_then()
    {
        var sm = WithTopic(1);
        var got = Apply(sm, QueueCommand.Receive("t", "default", 1, 1_000, 5_000)).Delivered!.Single();
        // At 6,000 the lease has ended: the receipt is still current (not delivered again), so the ack finishes it,
        // and the receive part then finds nothing.
        var result = Apply(sm, QueueCommand.ReceiveAck("t", "default", 1, 1_000, [ReceiptOf(got)], 6_000));
        (result.Count, result.Stale!.Count, result.Delivered!.Count).ShouldBe((1, 0, 0));
        sm.Depth("t").ShouldBe(0);
        sm.Clock.ShouldBe(6_000);
    }

    [Fact]
    public void Bad_arguments_are_refused_before_the_ack_part_so_nothing_changes()
    {
        var sm = WithTopic(3);
        var limits = sm.Limits;
        var got = Apply(sm, QueueCommand.Receive("t", "default", 1, 30_000, 2_000)).Delivered!.Single();
        Receipt[] receipts = [ReceiptOf(got)];
        Apply(sm, QueueCommand.ReceiveAck("t", "default", 0, 1_000, receipts, 2_001)).Status.ShouldBe(QueueStatus.Invalid);
        Apply(sm, QueueCommand.ReceiveAck("t", "default", limits.MaxBatchMessages + 1, 1_000, receipts, 2_001)).Status.ShouldBe(QueueStatus.Invalid);
        Apply(sm, QueueCommand.ReceiveAck("t", "default", 1, 0, receipts, 2_001)).Status.ShouldBe(QueueStatus.Invalid);
        Apply(sm, QueueCommand.ReceiveAck("t", "default", 1, limits.MaxLeaseMs + 1, receipts, 2_001)).Status.ShouldBe(QueueStatus.Invalid);
        Apply(sm, QueueCommand.ReceiveAck("t", "default", 1, 1_000, [], 2_001)).Status.ShouldBe(QueueStatus.Invalid);
        Apply(sm, QueueCommand.ReceiveAck("t", "default", 1, 1_000, [.. Enumerable.Repeat(receipts[0], limits.MaxReceiptsPerCall + 1)], 2_001))
            .Status.ShouldBe(QueueStatus.Invalid);
        Apply(sm, QueueCommand.ReceiveAck("t", "nope", 1, 1_000, receipts, 2_001)).Status.ShouldBe(QueueStatus.NoSuchGroup);
        Apply(sm, QueueCommand.ReceiveAck("nope", "default", 1, 1_000, receipts, 2_001)).Status.ShouldBe(QueueStatus.NoSuchTopic);
        var stats = sm.Stats("t", 2_001)!.Groups.Single();
        (stats.Leased, stats.AckedTotal, stats.DeliveredTotal).ShouldBe((1, 0L, 1L));
        Apply(sm, QueueCommand.Ack("t", "default", receipts, 2_002)).Count.ShouldBe(1);
    }

    [Fact]
    public void It_encodes_as_a_receive_followed_by_receipts_and_round_trips()
    {
        Receipt[] receipts = [new(1, 2), new(ulong.MaxValue, int.MaxValue)];
        var command = QueueCommand.ReceiveAck("orders", "billing", 10, 30_000, receipts, 1_234);
        var bytes = command.Encode();
        var receive = QueueCommand.Receive("orders", "billing", 10, 30_000, 1_234).Encode();
        bytes[0].ShouldBe((byte)QueueOp.ReceiveAck);
        bytes.AsSpan(1, receive.Length - 1).ToArray().ShouldBe(receive[1..]);
        var ack = QueueCommand.Ack("orders", "billing", receipts, 1_234).Encode();
        var receiptBytes = 4 + 12 * receipts.Length;
        bytes[receive.Length..].ShouldBe(ack[^receiptBytes..]);
        bytes.Length.ShouldBe(receive.Length + receiptBytes);

        QueueCommand.TryDecode(bytes, out var decoded).ShouldBeTrue();
        decoded.ShouldBe(command);
        QueueCommand.IsStamped(QueueOp.ReceiveAck).ShouldBeTrue();
        QueueCommand.TimestampPosition(bytes).ShouldBe(3 + "orders".Length);
        for (int cut = 0; cut < bytes.Length; cut++) QueueCommand.TryDecode(bytes.AsSpan(0, cut), out _).ShouldBeFalse($"cut at {cut}");
        QueueCommand.TryDecode([.. bytes, 0], out _).ShouldBeFalse();
        var overMax = (byte[])bytes.Clone();
        overMax[receive.Length - 12 + 3] = 0x80; // max over int.MaxValue
        QueueCommand.TryDecode(overMax, out _).ShouldBeFalse();
        var stamper = new PublishStamper(new FixedTime(DateTimeOffset.FromUnixTimeMilliseconds(99_000)));
        QueueCommand.TryDecode(stamper.Stamp(command.Encode()).Span, out var stamped).ShouldBeTrue();
        stamped.ShouldBe(command with { TimestampMs = 99_000 });
    }

    [Fact]
    public void Its_result_round_trips_and_stays_within_the_forwarding_bound_with_every_receipt_stale()
    {
        var limits = new QueueLimits { MaxBatchMessages = 4, MaxPopBatchBytes = 100, MaxMessageBytes = 50, MaxReceiptsPerCall = 6 };
        var sm = WithTopic(4, limits);
        Receipt[] stale = [.. Enumerable.Range(0, 6).Select(i => new Receipt((ulong)i + 100, 1))];
        var result = Apply(sm, QueueCommand.ReceiveAck("t", "default", 4, 1_000, stale, 2_000));
        (result.Count, result.Stale!.Count, result.Delivered!.Count).ShouldBe((0, 6, 4));
        var bytes = QueueResultCodec.Instance.Encode(result);
        QueueResultCodec.Instance.Decode(bytes).ShouldBe(result);
        bytes.Length.ShouldBeLessThanOrEqualTo((int)QueueResultCodec.MaxPopMessagesResultBytes(limits));
    }

    [Fact]
    public void Its_ack_part_signals_the_group_like_an_ack_when_messages_wait_behind_the_cursor()
    {
        var sm = WithTopic(3, new QueueLimits { MaxInFlightPerGroup = 1 });
        var signals = new List<string>();
        sm.Deliverable = (topic, group) => signals.Add($"{topic}/{group ?? "*"}");
        var got = Apply(sm, QueueCommand.Receive("t", "default", 1, 30_000, 2_000)).Delivered!.Single();
        signals.ShouldBeEmpty();
        Apply(sm, QueueCommand.ReceiveAck("t", "default", 1, 30_000, [ReceiptOf(got)], 2_001)).Delivered!.Single().Offset.ShouldBe(1UL);
        signals.ShouldBe(["t/default"]); // m2 still waits behind the cursor
    }

    private sealed class FixedTime(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
    }
}
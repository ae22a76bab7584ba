using RaftMQ.Linearizability;

namespace RaftMQ.Simulation.Tests;

/// <summary>
/// The queue-history checker on hand-written histories: a correct one passes, and each kind of bug a queue could have
/// — a lost message, a double lease, a double ack, a stale receipt applied, a redelivery after an ack, duplicate
/// storage, order broken, a delivery count that jumps — fails it, so a passing check means something.
/// </summary>
public sealed class QueueHistoryCheckerTests
{
    private static readonly string[] Groups = ["g"];

    /// <summary>A history on a clock the test sets.</summary>
    private sealed class Clock
    {
        public long Now { get; set; }

        public QueueHistory History { get; }

        public Clock() => History = new QueueHistory(() => Now);

        public QueueCall At(long time, Func<QueueHistory, QueueCall> call)
        {
            Now = time;
            return call(History);
        }

        public void Then(long time, Action<QueueHistory> answer)
        {
            Now = time;
            answer(History);
        }
    }

    /// <summary>Publishes a, b, c (offsets 0..2); c1 receives a and b, acks a, lets b's lease (100 ms) end; c2 gets b again and c.</summary>
    private static Clock Correct()
    {
        var h = new Clock();
        var p = h.At(0, x => x.Publish("p", ["a", "b", "c"]));
        h.Then(5, x => x.Published(p, [0, 1, 2]));
        var r1 = h.At(10, x => x.Receive("c1", "g", 3, 100));
        h.Then(12, x => x.Received(r1, [new(0, 1, "a"), new(1, 1, "b")]));
        var ack = h.At(20, x => x.Ack("c1", "g", [new(0, 1)]));
        h.Then(22, x => x.Settled(ack, []));
        var r2 = h.At(200, x => x.Receive("c2", "g", 3, 100));
        h.Then(202, x => x.Received(r2, [new(1, 2, "b"), new(2, 1, "c")]));
        var late = h.At(210, x => x.Ack("c1", "g", [new(1, 1)]));
        h.Then(212, x => x.Settled(late, [new(1, 1)])); // the late ack of the first delivery is stale
        var ack2 = h.At(220, x => x.Ack("c2", "g", [new(1, 2), new(2, 1)]));
        h.Then(222, x => x.Settled(ack2, []));
        return h;
    }

    private static QueueCheckResult Check(Clock h, bool drained = true) => QueueHistoryChecker.Check(h.History.Calls, Groups, drained);

    private static void ShouldFail(Clock h, string expected, bool drained = true)
    {
        var result = Check(h, drained);
        result.Ok.ShouldBeFalse("the checker missed the bug");
        result.Describe().ShouldContain(expected);
    }

    [Fact]
    public void A_correct_history_passes()
    {
        var result = Check(Correct());
        result.Describe().ShouldBe("ok");
        (result.AckedPublishes, result.Deliveries, result.Redeliveries, result.Acked).ShouldBe((3, 4, 1, 3));
    }

    [Fact]
    public void A_message_never_delivered_is_lost_once_drained()
    {
        var h = Correct();
        var p = h.At(300, x => x.Publish("p", ["d"]));
        h.Then(305, x => x.Published(p, [3]));
        ShouldFail(h, "lost: d (offset 3");
        Check(h, drained: false).Ok.ShouldBeTrue("before the drain a message may still be on its way");
    }

    [Fact]
    public void A_message_dead_lettered_by_the_group_is_not_lost()
    {
        var h = Correct();
        var p = h.At(300, x => x.Publish("p", ["d"]));
        h.Then(305, x => x.Published(p, [3]));
        h.At(400, x => x.DeadLetter("reader", "g", 3, "d"));
        Check(h).Describe().ShouldBe("ok");
    }

    [Fact]
    public void A_message_whose_publish_answer_was_lost_need_not_be_delivered()
    {
        var h = Correct();
        var p = h.At(300, x => x.Publish("p", ["d"]));
        h.Then(2_300, x => x.Unknown(p));
        Check(h).Describe().ShouldBe("ok");
    }

    [Fact]
    public void A_redelivery_before_the_lease_ended_is_a_double_lease()
    {
        var h = Correct();
        // c3 gets b with count 3 at 240: the lease of delivery 2 (from 200, 100 ms) cannot have ended yet.
        var r = h.At(230, x => x.Receive("c3", "g", 3, 100));
        h.Then(240, x => x.Received(r, [new(1, 3, "b")]));
        ShouldFail(h, "leased twice at once in g: offset 1 #2");
    }

    [Fact]
    public void A_redelivery_after_a_nack_is_not_a_double_lease()
    {
        var h = new Clock();
        var p = h.At(0, x => x.Publish("p", ["a"]));
        h.Then(5, x => x.Published(p, [0]));
        var r1 = h.At(10, x => x.Receive("c1", "g", 3, 1_000));
        h.Then(12, x => x.Received(r1, [new(0, 1, "a")]));
        var nack = h.At(20, x => x.Nack("c1", "g", [new(0, 1)]));
        h.Then(22, x => x.Settled(nack, []));
        var r2 = h.At(30, x => x.Receive("c2", "g", 3, 1_000));
        h.Then(32, x => x.Received(r2, [new(0, 2, "a")]));
        var ack = h.At(40, x => x.Ack("c2", "g", [new(0, 2)]));
        h.Then(42, x => x.Settled(ack, []));
        Check(h).Describe().ShouldBe("ok");
    }

    [Fact]
    public void A_message_acked_twice_fails()
    {
        var h = Correct();
        var again = h.At(230, x => x.Ack("c2", "g", [new(2, 1)]));
        h.Then(232, x => x.Settled(again, []));
        ShouldFail(h, "acked twice in g: offset 2");
    }

    [Fact]
    public void A_stale_receipt_reported_acked_fails()
    {
        var h = Correct();
        // Rewrite the late ack's answer: the queue applied the first delivery's receipt after the second was handed out.
        var h2 = new Clock();
        foreach (var call in h.History.Calls.Where(c => !(c.Kind == QueueCallKind.Ack && c.Client == "c1" && c.Receipts[0].Offset == 1)))
            Replay(h2, call);
        var late = h2.At(210, x => x.Ack("c1", "g", [new(1, 1)]));
        h2.Then(212, x => x.Settled(late, []));
        ShouldFail(h2, "stale receipt applied in g");
    }

    [Fact]
    public void A_redelivery_after_an_ack_fails()
    {
        var h = Correct();
        var r = h.At(500, x => x.Receive("c3", "g", 3, 100));
        h.Then(502, x => x.Received(r, [new(0, 2, "a")]));
        ShouldFail(h, "delivered again after its ack in g");
    }

    [Fact]
    public void One_id_stored_at_two_offsets_fails()
    {
        var h = Correct();
        var retry = h.At(300, x => x.Publish("p", ["a"]));
        h.Then(305, x => x.Published(retry, [3]));
        ShouldFail(h, "duplicate storage: id a is at offset 0");
    }

    [Fact]
    public void A_retry_answered_with_the_original_offset_passes()
    {
        var h = Correct();
        var retry = h.At(300, x => x.Publish("p", ["a", "b"]));
        h.Then(305, x => x.Published(retry, [0, 1]));
        Check(h).Describe().ShouldBe("ok");
    }

    [Fact]
    public void A_duplicate_seen_only_in_deliveries_fails()
    {
        var h = Correct();
        var retry = h.At(300, x => x.Publish("p", ["c"]));
        h.Then(2_300, x => x.Unknown(retry)); // the retry's answer was lost, but it was stored again:
        var r = h.At(2_400, x => x.Receive("c2", "g", 3, 100));
        h.Then(2_402, x => x.Received(r, [new(3, 1, "c")]));
        ShouldFail(h, "duplicate storage: id c is at offset 2");
    }

    [Fact]
    public void A_delivery_of_a_message_nobody_published_fails()
    {
        var h = Correct();
        var r = h.At(300, x => x.Receive("c2", "g", 3, 100));
        h.Then(302, x => x.Received(r, [new(3, 1, "ghost")]));
        ShouldFail(h, "delivered ghost, which no client published");
    }

    [Fact]
    public void First_deliveries_out_of_offset_order_fail()
    {
        var h = new Clock();
        var p = h.At(0, x => x.Publish("p", ["a", "b"]));
        h.Then(5, x => x.Published(p, [0, 1]));
        var r1 = h.At(10, x => x.Receive("c1", "g", 3, 1_000));
        h.Then(12, x => x.Received(r1, [new(1, 1, "b")]));
        var r2 = h.At(20, x => x.Receive("c2", "g", 3, 1_000));
        h.Then(22, x => x.Received(r2, [new(0, 1, "a")]));
        ShouldFail(h, "first deliveries out of order in g");
    }

    [Fact]
    public void A_redelivery_after_a_first_delivery_in_one_answer_fails()
    {
        var h = new Clock();
        var p = h.At(0, x => x.Publish("p", ["a", "b"]));
        h.Then(5, x => x.Published(p, [0, 1]));
        var r1 = h.At(10, x => x.Receive("c1", "g", 3, 50));
        h.Then(12, x => x.Received(r1, [new(0, 1, "a")]));
        var r2 = h.At(100, x => x.Receive("c2", "g", 3, 50));
        h.Then(102, x => x.Received(r2, [new(1, 1, "b"), new(0, 2, "a")]));
        ShouldFail(h, "redelivery after a first delivery in one answer in g");
    }

    [Fact]
    public void A_delivery_count_that_skips_without_an_unanswered_receive_fails()
    {
        var h = new Clock();
        var p = h.At(0, x => x.Publish("p", ["a"]));
        h.Then(5, x => x.Published(p, [0]));
        var r1 = h.At(10, x => x.Receive("c1", "g", 3, 50));
        h.Then(12, x => x.Received(r1, [new(0, 1, "a")]));
        var r2 = h.At(100, x => x.Receive("c2", "g", 3, 50));
        h.Then(102, x => x.Received(r2, [new(0, 3, "a")]));
        ShouldFail(h, "offset 0 in g skips 1 delivery counts no client saw, but only 0 receives");

        // With a receive whose answer was lost in between, count 2 may have gone to it.
        var lost = h.At(70, x => x.Receive("c3", "g", 3, 50));
        h.Then(2_070, x => x.Unknown(lost));
        Check(h).Describe().ShouldBe("ok");
    }

    [Fact]
    public void Skipped_counts_beyond_what_the_unanswered_receives_asked_for_fail()
    {
        var h = new Clock();
        var p = h.At(0, x => x.Publish("p", ["a", "b"]));
        h.Then(5, x => x.Published(p, [0, 1]));
        var r1 = h.At(10, x => x.Receive("c1", "g", 2, 50));
        h.Then(12, x => x.Received(r1, [new(0, 1, "a"), new(1, 1, "b")]));
        var lost = h.At(70, x => x.Receive("c3", "g", 1, 50)); // could have delivered one of them, not both
        h.Then(2_070, x => x.Unknown(lost));
        var r2 = h.At(3_000, x => x.Receive("c2", "g", 2, 50));
        h.Then(3_002, x => x.Received(r2, [new(0, 3, "a"), new(1, 3, "b")]));
        ShouldFail(h, "skip 2 deliveries no client saw, but the receives that went unanswered asked for only 1");
    }

    [Fact]
    public void The_same_delivery_count_twice_fails()
    {
        var h = new Clock();
        var p = h.At(0, x => x.Publish("p", ["a"]));
        h.Then(5, x => x.Published(p, [0]));
        var r1 = h.At(10, x => x.Receive("c1", "g", 3, 50));
        h.Then(12, x => x.Received(r1, [new(0, 1, "a")]));
        var r2 = h.At(100, x => x.Receive("c2", "g", 3, 50));
        h.Then(102, x => x.Received(r2, [new(0, 1, "a")]));
        ShouldFail(h, "offset 0 delivered twice with count 1");
    }

    /// <summary>Copies a call with its answer into another history, at the same times.</summary>
    private static void Replay(Clock to, QueueCall call)
    {
        var copy = call.Kind switch
        {
            QueueCallKind.Publish => to.At(call.InvokedAt, x => x.Publish(call.Client, call.MessageIds)),
            QueueCallKind.Receive => to.At(call.InvokedAt, x => x.Receive(call.Client, call.Group!, call.Max, call.LeaseMs)),
            QueueCallKind.Ack => to.At(call.InvokedAt, x => x.Ack(call.Client, call.Group!, call.Receipts)),
            QueueCallKind.Nack => to.At(call.InvokedAt, x => x.Nack(call.Client, call.Group!, call.Receipts)),
            _ => to.At(call.InvokedAt, x => x.DeadLetter(call.Client, call.Group!, call.DeadLettered.Offset, call.DeadLettered.MessageId)),
        };
        if (call.Kind == QueueCallKind.DeadLetter) return;
        to.Then(call.AnsweredAt, x =>
        {
            switch (call.Outcome)
            {
                case QueueCallOutcome.Ok when call.Kind == QueueCallKind.Publish: x.Published(copy, call.Offsets); break;
                case QueueCallOutcome.Ok when call.Kind == QueueCallKind.Receive: x.Received(copy, call.Deliveries); break;
                case QueueCallOutcome.Ok: x.Settled(copy, call.Stale); break;
                case QueueCallOutcome.NotApplied: x.NotApplied(copy); break;
                case QueueCallOutcome.Unknown: x.Unknown(copy); break;
            }
        });
    }
}

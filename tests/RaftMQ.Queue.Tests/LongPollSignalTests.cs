using System.Text;
using static RaftMQ.Queue.Tests.QueueTestSteps;

namespace RaftMQ.Queue.Tests;

/// <summary>
/// What long polling reads from the state machine: which applied commands signal which (topic, group)
/// (<see cref="QueueStateMachine.Deliverable"/>), and when a receive of a group could next deliver
/// (<see cref="QueueStateMachine.NextDeliveryAt"/>).
/// </summary>
[Collection(QueueMemoryCollection.Name)]
public sealed class LongPollSignalTests : IDisposable
{
    private readonly TestQueues _queues = new();

    public void Dispose() => _queues.Dispose();

    private static QueueMessage Msg(string text, long delayMs = 0) => new(Encoding.UTF8.GetBytes(text)) { DelayMs = delayMs };

    /// <summary>A queue with topic "t" and groups "default" and "audit", recording each signal as "topic/group" ("*": every group).</summary>
    private (QueueStateMachine Queue, List<string> Signals) Setup(QueueLimits? limits = null, int maxDeliveries = 0)
    {
        var sm = _queues.Create(limits);
        var signals = new List<string>();
        sm.Deliverable = (topic, group) => signals.Add($"{topic.Replace("\0", "|", StringComparison.Ordinal)}/{group ?? "*"}");
        Apply(sm, QueueCommand.ConfigureTopic("t", maxDeliveries)).Success.ShouldBeTrue();
        Apply(sm, QueueCommand.CreateGroup("t", "audit", GroupStart.Earliest)).Success.ShouldBeTrue();
        signals.ShouldBe(["t/audit"]);
        signals.Clear();
        return (sm, signals);
    }

    [Fact]
    public void Every_publish_form_signals_every_group_of_its_topic_and_receives_and_extends_signal_nothing()
    {
        var (sm, signals) = Setup();
        Apply(sm, QueueCommand.Publish("t", "a")).Success.ShouldBeTrue();
        Apply(sm, QueueCommand.PublishBatch("t", ["b", "c"])).Success.ShouldBeTrue(); // the copy-free batch path
        Apply(sm, QueueCommand.PublishMessages("t", [Msg("d")], 1_000)).Success.ShouldBeTrue();
        Apply(sm, QueueCommand.PublishExtended("t", [Msg("e")], 1_000)).Success.ShouldBeTrue();
        signals.ShouldBe(["t/*", "t/*", "t/*", "t/*"]);
        signals.Clear();

        var got = Apply(sm, QueueCommand.Receive("t", "audit", 1, 1_000, 2_000)).Delivered!.Single();
        Apply(sm, QueueCommand.Extend("t", "audit", [ReceiptOf(got)], 5_000, 2_001)).Count.ShouldBe(1);
        Apply(sm, QueueCommand.Publish("nowhere", "x")).Status.ShouldBe(QueueStatus.NoSuchTopic);
        signals.ShouldBeEmpty();
    }

    [Fact]
    public void A_nack_signals_its_group_and_an_ack_only_when_its_group_has_more_behind_its_cursor()
    {
        var (sm, signals) = Setup();
        Apply(sm, QueueCommand.PublishMessages("t", [Msg("a"), Msg("b")], 1_000));
        signals.Clear();
        var first = Apply(sm, QueueCommand.Receive("t", "default", 1, 10_000, 2_000)).Delivered!.Single();
        Apply(sm, QueueCommand.Nack("t", "default", [ReceiptOf(first)], 500, null, 2_001)).Count.ShouldBe(1);
        signals.ShouldBe(["t/default"]);
        signals.Clear();

        // "audit" acks its first with "b" still behind its cursor: it may have been at its in-flight bound, so a signal.
        var audit = Apply(sm, QueueCommand.Receive("t", "audit", 1, 10_000, 2_002)).Delivered!.Single();
        Apply(sm, QueueCommand.Ack("t", "audit", [ReceiptOf(audit)], 2_003)).Count.ShouldBe(1);
        signals.ShouldBe(["t/audit"]);
        signals.Clear();
        // Its cursor at the tail: an ack makes nothing deliverable.
        var last = Apply(sm, QueueCommand.Receive("t", "audit", 1, 10_000, 2_004)).Delivered!.Single();
        Apply(sm, QueueCommand.Ack("t", "audit", [ReceiptOf(last)], 2_005)).Count.ShouldBe(1);
        signals.ShouldBeEmpty();
    }

    [Fact]
    public void Expiry_by_a_command_on_another_topic_signals_the_expired_topic_and_its_dead_letters()
    {
        var (sm, signals) = Setup();
        Apply(sm, QueueCommand.ConfigureTopic("t", 0, retention: new TopicRetention(MaxAgeMs: 1_000))).Success.ShouldBeTrue();
        Apply(sm, QueueCommand.ConfigureTopic("other", 0)).Success.ShouldBeTrue();
        Apply(sm, QueueCommand.PublishMessages("t", [Msg("a")], 1_000)).Success.ShouldBeTrue();
        Apply(sm, QueueCommand.Receive("t", "audit", 1, 60_000, 1_001)).Delivered!.Count.ShouldBe(1);
        signals.Clear();

        // "other" moves the clock past a's age: a is dead-lettered, and audit's lease on it ends (room under its bound).
        Apply(sm, QueueCommand.PublishMessages("other", [Msg("x")], 2_000)).Success.ShouldBeTrue();
        signals.ShouldBe(["other/*", "t/*", "t|dlq/*"]);
    }

    [Fact]
    public void Dead_lettering_signals_the_dead_letter_topic_a_redrive_the_topic_and_a_deletion_both()
    {
        var (sm, signals) = Setup(maxDeliveries: 1);
        Apply(sm, QueueCommand.PublishMessages("t", [Msg("a")], 1_000));
        var got = Apply(sm, QueueCommand.Receive("t", "default", 1, 10_000, 2_000)).Delivered!.Single();
        signals.Clear();
        Apply(sm, QueueCommand.Nack("t", "default", [ReceiptOf(got)], 0, "no", 2_001)).Count.ShouldBe(1);
        signals.ShouldBe(["t|dlq/*", "t/default"]);
        signals.Clear();
        Apply(sm, QueueCommand.Redrive("t", 10, 2_002)).Count.ShouldBe(1);
        signals.ShouldBe(["t/*"]);
        signals.Clear();
        Apply(sm, QueueCommand.DeleteTopic("t")).Success.ShouldBeTrue();
        signals.ShouldBe(["t/*", "t|dlq/*"]);
    }

    [Fact]
    public void Next_delivery_is_now_with_a_message_at_the_cursor_else_the_first_lease_or_delay_to_end()
    {
        var (sm, _) = Setup();
        sm.NextDeliveryAt("t", "default").ShouldBe(long.MaxValue, "nothing published: not until a command");
        sm.NextDeliveryAt("t", "nobody").ShouldBe(long.MinValue, "no such group: a receive answers that now");
        sm.NextDeliveryAt("gone", "default").ShouldBe(long.MinValue, "no such topic: a receive answers that now");

        Apply(sm, QueueCommand.PublishExtended("t", [Msg("later", 5_000), Msg("now")], 1_000));
        sm.NextDeliveryAt("t", "default").ShouldBe(long.MinValue, "messages past the cursor");
        // The receive sets "later" aside (due at 6 000) and delivers "now" with a lease to 3 000.
        Apply(sm, QueueCommand.Receive("t", "default", 10, 1_000, 2_000)).Delivered!.Select(m => m.Offset).ShouldBe([1UL]);
        sm.NextDeliveryAt("t", "default").ShouldBe(3_000, "the lease ends first");
        sm.NextDeliveryAt("t", "audit").ShouldBe(long.MinValue, "audit has not received yet");

        // Past the lease by the replicated clock (a later command's stamp): now.
        Apply(sm, QueueCommand.Receive("t", "audit", 10, 60_000, 3_000)).Delivered!.Select(m => m.Offset).ShouldBe([1UL]);
        sm.NextDeliveryAt("t", "default").ShouldBe(long.MinValue);
        Apply(sm, QueueCommand.Receive("t", "default", 10, 60_000, 3_001)).Delivered!.Single().DeliveryCount.ShouldBe(2);
        sm.NextDeliveryAt("t", "default").ShouldBe(6_000, "the delayed message is due next");
        sm.NextDeliveryAt("t", "audit").ShouldBe(6_000);
    }

    [Fact]
    public void At_its_in_flight_bound_a_group_waits_for_its_first_lease_to_end()
    {
        var (sm, _) = Setup(new QueueLimits { MaxInFlightPerGroup = 1 });
        Apply(sm, QueueCommand.PublishMessages("t", [Msg("a"), Msg("b")], 1_000));
        Apply(sm, QueueCommand.Receive("t", "default", 10, 4_000, 2_000)).Delivered!.Count.ShouldBe(1);
        sm.NextDeliveryAt("t", "default").ShouldBe(6_000, "b waits behind the bound until a's lease ends");
    }

    [Fact]
    public void A_restored_snapshot_signals_every_topic()
    {
        var (sm, _) = Setup();
        Apply(sm, QueueCommand.ConfigureTopic("u", 0)).Success.ShouldBeTrue();
        using var snapshot = sm.CaptureSnapshot();
        using var bytes = new MemoryStream();
        snapshot.WriteTo(bytes);
        var (copy, signals) = (_queues.Create(), new List<string>());
        copy.Deliverable = (topic, group) => signals.Add($"{topic}/{group ?? "*"}");
        bytes.Position = 0;
        copy.RestoreSnapshot(bytes);
        signals.Order().ShouldBe(["t/*", "u/*"]);
    }
}

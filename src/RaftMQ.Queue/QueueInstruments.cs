using System.Diagnostics.Metrics;

namespace RaftMQ.Queue;

/// <summary>One topic's counters (see <see cref="QueueStateMachine.TopicCounters"/>).</summary>
/// <param name="Topic">The topic's name.</param>
/// <param name="Ready">Messages waiting to be popped.</param>
/// <param name="ReadyBytes">Bytes of the records from the oldest held message to the tail: an upper bound of what the queue's byte limit counts (that leaves out what every group finished behind a held message).</param>
/// <param name="Published">Messages ever published to the topic (its tail offset).</param>
/// <param name="Consumed">Messages ever popped from the topic (its head offset).</param>
public sealed record TopicCounters(string Topic, long Ready, long ReadyBytes, long Published, long Consumed);

/// <summary>
/// The queue's per-topic depths and totals as <see cref="System.Diagnostics.Metrics"/> instruments on the meter
/// <see cref="MeterName"/>, read from <see cref="QueueStateMachine.TopicCounters"/> when a listener collects. One
/// series per topic and instrument: at most <see cref="QueueLimits.MaxTopics"/> of each. The per-group instruments
/// (<c>raftmq.queue.group.*</c>) read <see cref="QueueStateMachine.GroupCounters"/>, the counts the node's loop
/// publishes: one series per topic and group, at most <see cref="QueueLimits.MaxTopics"/> ×
/// <see cref="QueueLimits.MaxGroupsPerTopic"/> of each; dead-letter topics have none of their own (their depth is
/// <c>raftmq.queue.dead_letters</c> of the source topic).
/// </summary>
public sealed class QueueInstruments : IDisposable
{
    /// <summary>The meter every queue instrument is on.</summary>
    public const string MeterName = "RaftMQ.Queue";

    private readonly Meter _meter = new(MeterName);

    /// <param name="queue">The queue whose counters the instruments read.</param>
    /// <param name="time">The clock the oldest message's age is measured with at a collection (the system's by default).</param>
    public QueueInstruments(QueueStateMachine queue, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(queue);
        time ??= TimeProvider.System;
        _meter.CreateObservableGauge("raftmq.queue.ready", () => PerTopic(queue, t => t.Ready), "{message}", "Messages waiting in each topic");
        _meter.CreateObservableGauge("raftmq.queue.ready.size", () => PerTopic(queue, t => t.ReadyBytes), "By", "Bytes of the messages waiting in each topic");
        _meter.CreateObservableCounter("raftmq.queue.published", () => PerTopic(queue, t => t.Published), "{message}", "Messages published to each topic");
        _meter.CreateObservableCounter("raftmq.queue.consumed", () => PerTopic(queue, t => t.Consumed), "{message}", "Messages popped from each topic");
        _meter.CreateObservableGauge("raftmq.queue.topics", () => UserTopics(queue).Count(), "{topic}", "Topics in the queue (dead-letter topics not counted)");
        _meter.CreateObservableGauge("raftmq.queue.limit.size", () => queue.Bounds.MaxBytes, "By",
            "The cluster's bound on the bytes of waiting messages in all topics (GET /v1/cluster/limits)");
        _meter.CreateObservableGauge("raftmq.queue.limit.messages", () => queue.Bounds.MaxMessages, "{message}",
            "The cluster's bound on the waiting messages in all topics (GET /v1/cluster/limits)");
        _meter.CreateObservableGauge("raftmq.queue.group.ready", () => PerGroup(queue, g => g.Ready), "{message}",
            "Messages each consumer group may be given now: never delivered, or given back (nack, expired lease) and due");
        _meter.CreateObservableGauge("raftmq.queue.group.leased", () => PerGroup(queue, g => g.Leased), "{message}",
            "Messages leased to a consumer of each group, the lease not ended");
        _meter.CreateObservableGauge("raftmq.queue.group.delayed", () => PerGroup(queue, g => g.Delayed), "{message}",
            "Messages of each group not deliverable yet: nacked with a delay, or published with one, not over");
        _meter.CreateObservableGauge("raftmq.queue.group.unacked", () => PerGroup(queue, g => g.Unacked), "{message}",
            "Messages neither acked nor dead-lettered by each group");
        _meter.CreateObservableCounter("raftmq.queue.group.delivered", () => PerGroup(queue, g => g.DeliveredTotal), "{message}",
            "Deliveries to each group (a redelivery counts again)");
        _meter.CreateObservableCounter("raftmq.queue.group.acked", () => PerGroup(queue, g => g.AckedTotal), "{message}",
            "Messages each group acked (a pop counts as an ack on the group default)");
        _meter.CreateObservableCounter("raftmq.queue.group.dead_lettered", () => PerGroup(queue, g => g.DeadLetteredTotal), "{message}",
            "Messages each group moved to the topic's dead-letter topic");
        _meter.CreateObservableGauge("raftmq.queue.group.oldest_age", () => OldestAges(queue, time), "s",
            "Age of each group's oldest unacked message: this node's clock at the scrape minus the message's publish time "
            + "(stamped by the leader's clock); 0 when none is unacked or it has no publish time (a text message of the RRMQ API)");
        _meter.CreateObservableGauge("raftmq.queue.dead_letters",
            () => queue.GroupCounters().Topics.Select(t => new Measurement<long>(t.DeadLettered, new KeyValuePair<string, object?>("topic", t.Topic))),
            "{message}", "Messages waiting in each topic's dead-letter topic");
        _meter.CreateObservableCounter("raftmq.queue.expired",
            () => queue.GroupCounters().Topics.Select(t => new Measurement<long>(t.Expired, new KeyValuePair<string, object?>("topic", t.Topic))),
            "{message}", "Messages of each topic that expired by its max_age_ms (dead-lettered or dropped as its expire setting says)");
        _meter.CreateObservableCounter("raftmq.queue.overflow_dropped",
            () => queue.GroupCounters().Topics.Select(t => new Measurement<long>(t.OverflowDropped, new KeyValuePair<string, object?>("topic", t.Topic))),
            "{message}", "Messages of each topic removed by the drop-oldest overflow policy to make room");
    }

    public void Dispose() => _meter.Dispose();

    private static IEnumerable<Measurement<long>> PerGroup(QueueStateMachine queue, Func<GroupStats, long> value) =>
        queue.GroupCounters().Topics.SelectMany(t => t.Groups.Select(g => new Measurement<long>(value(g), GroupTags(t, g))));

    private static IEnumerable<Measurement<double>> OldestAges(QueueStateMachine queue, TimeProvider time)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        return queue.GroupCounters().Topics.SelectMany(t => t.Groups.Select(g =>
            new Measurement<double>(g.OldestPublishedMs is { } published ? Math.Max(0, now - published) / 1000.0 : 0, GroupTags(t, g))));
    }

    private static KeyValuePair<string, object?>[] GroupTags(TopicGroupCounters topic, GroupStats group) =>
        [new("topic", topic.Topic), new("group", group.Group)];

    private static IEnumerable<Measurement<long>> PerTopic(QueueStateMachine queue, Func<TopicCounters, long> value) =>
        UserTopics(queue).Select(t => new Measurement<long>(value(t), new KeyValuePair<string, object?>("topic", t.Topic)));

    /// <summary>
    /// The topics clients made: a dead-letter topic's internal name holds a NUL, which has no place in a label, and its
    /// depth is <c>raftmq.queue.dead_letters</c> of its source topic.
    /// </summary>
    private static IEnumerable<TopicCounters> UserTopics(QueueStateMachine queue) =>
        queue.TopicCounters().Where(t => !DeadLetters.IsDeadLetterTopic(t.Topic));
}

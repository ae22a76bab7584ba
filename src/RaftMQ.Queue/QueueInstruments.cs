using System.Diagnostics.Metrics;

namespace RaftMQ.Queue;

/// <summary>One topic's counters (see <see cref="QueueStateMachine.TopicCounters"/>).</summary>
/// <param name="Topic">The topic's name.</param>
/// <param name="Ready">Messages waiting to be popped.</param>
/// <param name="ReadyBytes">Bytes of the waiting messages' records (what the queue's byte limit counts).</param>
/// <param name="Published">Messages ever published to the topic (its tail offset).</param>
/// <param name="Consumed">Messages ever popped from the topic (its head offset).</param>
public sealed record TopicCounters(string Topic, long Ready, long ReadyBytes, long Published, long Consumed);

/// <summary>
/// The queue's per-topic depths and totals as <see cref="System.Diagnostics.Metrics"/> instruments on the meter
/// <see cref="MeterName"/>, read from <see cref="QueueStateMachine.TopicCounters"/> when a listener collects. One
/// series per topic and instrument: at most <see cref="QueueLimits.MaxTopics"/> of each.
/// </summary>
public sealed class QueueInstruments : IDisposable
{
    /// <summary>The meter every queue instrument is on.</summary>
    public const string MeterName = "RaftMQ.Queue";

    private readonly Meter _meter = new(MeterName);

    public QueueInstruments(QueueStateMachine queue)
    {
        ArgumentNullException.ThrowIfNull(queue);
        _meter.CreateObservableGauge("raftmq.queue.ready", () => PerTopic(queue, t => t.Ready), "{message}", "Messages waiting in each topic");
        _meter.CreateObservableGauge("raftmq.queue.ready.size", () => PerTopic(queue, t => t.ReadyBytes), "By", "Bytes of the messages waiting in each topic");
        _meter.CreateObservableCounter("raftmq.queue.published", () => PerTopic(queue, t => t.Published), "{message}", "Messages published to each topic");
        _meter.CreateObservableCounter("raftmq.queue.consumed", () => PerTopic(queue, t => t.Consumed), "{message}", "Messages popped from each topic");
        _meter.CreateObservableGauge("raftmq.queue.topics", () => queue.TopicCounters().Count, "{topic}", "Topics in the queue");
    }

    public void Dispose() => _meter.Dispose();

    private static IEnumerable<Measurement<long>> PerTopic(QueueStateMachine queue, Func<TopicCounters, long> value) =>
        queue.TopicCounters().Select(t => new Measurement<long>(value(t), new KeyValuePair<string, object?>("topic", t.Topic)));
}

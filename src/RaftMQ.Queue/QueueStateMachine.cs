using System.Text;
using RaftMQ.Runtime;

namespace RaftMQ.Queue;

/// <summary>
/// The message queue as a replicated state machine: topics in creation order, each a FIFO of messages. Create,
/// publish and pop (one message or a batch) are commands in the Raft log, so every node holds the same queues.
/// </summary>
public sealed class QueueStateMachine(QueueLimits? limits = null) : IStateMachine
{
    private const uint SnapshotMagic = 0x51464D52; // "RMFQ"
    private const byte SnapshotVersion = 1;

    private readonly QueueLimits _limits = limits ?? QueueLimits.Default;
    private readonly List<string> _order = [];
    private readonly Dictionary<string, Queue<string>> _topics = new(StringComparer.Ordinal);
    private long _totalBytes;

    public QueueLimits Limits => _limits;

    /// <summary>Topics in creation order (a copy; call on the runtime's loop, e.g. through ReadAsync).</summary>
    public IReadOnlyList<string> Topics() => [.. _order];

    /// <summary>Messages waiting in <paramref name="topic"/>, or null when it does not exist.</summary>
    public int? Depth(string topic) => _topics.TryGetValue(topic, out var q) ? q.Count : null;

    /// <summary>Total bytes of waiting messages.</summary>
    public long TotalMessageBytes => _totalBytes;

    public object? Apply(ulong index, ReadOnlyMemory<byte> command)
    {
        if (!QueueCommand.TryDecode(command.Span, out var c)) return new QueueResult(QueueStatus.Invalid);
        return Execute(c);
    }

    /// <summary>Applies a decoded command (the same rules as <see cref="Apply"/>).</summary>
    public QueueResult Execute(QueueCommand c)
    {
        if (Encoding.UTF8.GetByteCount(c.Topic) > _limits.MaxTopicNameBytes || c.Topic.Length == 0)
            return new QueueResult(QueueStatus.Invalid);
        switch (c.Op)
        {
            case QueueOp.CreateTopic:
                if (_topics.ContainsKey(c.Topic)) return new QueueResult(QueueStatus.TopicExists);
                if (_topics.Count >= _limits.MaxTopics) return new QueueResult(QueueStatus.LimitReached);
                _topics.Add(c.Topic, new Queue<string>());
                _order.Add(c.Topic);
                return QueueResult.Ok;
            case QueueOp.Publish:
                if (!_topics.TryGetValue(c.Topic, out var q)) return new QueueResult(QueueStatus.NoSuchTopic);
                var size = Encoding.UTF8.GetByteCount(c.Message ?? "");
                if (size > _limits.MaxMessageBytes) return new QueueResult(QueueStatus.Invalid);
                if (_totalBytes + size > _limits.MaxTotalMessageBytes) return new QueueResult(QueueStatus.LimitReached);
                q.Enqueue(c.Message ?? "");
                _totalBytes += size;
                return QueueResult.Ok;
            case QueueOp.Pop:
                if (!_topics.TryGetValue(c.Topic, out var p)) return new QueueResult(QueueStatus.NoSuchTopic);
                if (!p.TryDequeue(out var m)) return new QueueResult(QueueStatus.Empty);
                _totalBytes -= Encoding.UTF8.GetByteCount(m);
                return new QueueResult(QueueStatus.Ok, m);
            case QueueOp.PublishBatch:
                return PublishBatch(c.Topic, c.Messages);
            case QueueOp.PopBatch:
                return PopBatch(c.Topic, c.Max);
            default:
                return new QueueResult(QueueStatus.Invalid);
        }
    }

    /// <summary>Validates every message first, then appends them all in order; a batch that breaks a bound changes nothing.</summary>
    private QueueResult PublishBatch(string topic, IReadOnlyList<string>? messages)
    {
        if (!_topics.TryGetValue(topic, out var q)) return new QueueResult(QueueStatus.NoSuchTopic);
        if (messages is null || messages.Count == 0 || messages.Count > _limits.MaxBatchMessages) return new QueueResult(QueueStatus.Invalid);
        long size = 0;
        foreach (var m in messages)
        {
            var bytes = Encoding.UTF8.GetByteCount(m);
            if (bytes > _limits.MaxMessageBytes) return new QueueResult(QueueStatus.Invalid);
            size += bytes;
        }
        if (_totalBytes + size > _limits.MaxTotalMessageBytes) return new QueueResult(QueueStatus.LimitReached);
        foreach (var m in messages) q.Enqueue(m);
        _totalBytes += size;
        return QueueResult.Ok with { Count = messages.Count };
    }

    /// <summary>Removes up to <paramref name="max"/> oldest messages within <see cref="QueueLimits.MaxPopBatchBytes"/>; at least one if any waits.</summary>
    private QueueResult PopBatch(string topic, int max)
    {
        if (!_topics.TryGetValue(topic, out var q)) return new QueueResult(QueueStatus.NoSuchTopic);
        if (max < 1) return new QueueResult(QueueStatus.Invalid);
        var limit = Math.Min(max, _limits.MaxBatchMessages);
        var popped = new List<string>(Math.Min(limit, q.Count));
        long size = 0;
        while (popped.Count < limit && q.TryPeek(out var m))
        {
            var bytes = Encoding.UTF8.GetByteCount(m);
            if (popped.Count > 0 && size + bytes > _limits.MaxPopBatchBytes) break;
            q.Dequeue();
            popped.Add(m);
            size += bytes;
        }
        _totalBytes -= size;
        return QueueResult.Ok with { Messages = popped };
    }

    /// <summary>Captures the topics and their messages (references to immutable strings); written off the loop.</summary>
    public IStateMachineSnapshot CaptureSnapshot()
    {
        var topics = new (string Topic, string[] Messages)[_order.Count];
        for (int i = 0; i < topics.Length; i++) topics[i] = (_order[i], _topics[_order[i]].ToArray());
        return StateMachineSnapshots.Deferred(destination =>
        {
            using var w = new BinaryWriter(destination, Encoding.UTF8, leaveOpen: true);
            w.Write(SnapshotMagic);
            w.Write(SnapshotVersion);
            w.Write(topics.Length);
            foreach (var (topic, messages) in topics)
            {
                w.Write(topic);
                w.Write(messages.Length);
                foreach (var m in messages) w.Write(m);
            }
        });
    }

    public void RestoreSnapshot(Stream source)
    {
        using var r = new BinaryReader(source, Encoding.UTF8, leaveOpen: true);
        if (r.ReadUInt32() != SnapshotMagic) throw new InvalidDataException("not a queue snapshot");
        var version = r.ReadByte();
        if (version != SnapshotVersion) throw new InvalidDataException($"unknown queue snapshot version {version}");
        _order.Clear();
        _topics.Clear();
        _totalBytes = 0;
        var topics = r.ReadInt32();
        for (int i = 0; i < topics; i++)
        {
            var topic = r.ReadString();
            var count = r.ReadInt32();
            var q = new Queue<string>(Math.Min(count, 1 << 16));
            for (int j = 0; j < count; j++)
            {
                var m = r.ReadString();
                q.Enqueue(m);
                _totalBytes += Encoding.UTF8.GetByteCount(m);
            }
            _topics.Add(topic, q);
            _order.Add(topic);
        }
    }
}

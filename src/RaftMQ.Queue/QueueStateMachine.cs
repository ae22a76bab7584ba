using System.Buffers;
using System.Text;
using RaftMQ.Queue.Groups;
using RaftMQ.Queue.Store;
using RaftMQ.StateMachine;

namespace RaftMQ.Queue;

/// <summary>
/// The message queue as a replicated state machine: topics in creation order, each a FIFO of messages with
/// per-topic offsets. Create, publish and pop (one message or a batch) are commands in the Raft log, so every node
/// holds the same queues. Messages live in segment files under <see cref="Directory"/> (docs/queue-store.md); memory
/// holds only each topic's cursors and segment list.
/// </summary>
public sealed partial class QueueStateMachine : IStateMachine, IDisposable
{
    private readonly QueueLimits _limits;
    private readonly MessageStore _store;

    /// <summary>
    /// A queue over <paramref name="directory"/>, which it owns: the segment files (<c>*.seg</c>) found there are
    /// deleted, and the state starts empty until <see cref="RestoreSnapshot"/> and <see cref="Apply"/> rebuild it from
    /// the snapshot and the Raft log.
    /// </summary>
    public QueueStateMachine(string directory, QueueLimits? limits = null, QueueStoreOptions? storeOptions = null)
    {
        _limits = limits ?? QueueLimits.Default;
        _limits.Validate();
        _initialBounds = _limits.InitialBounds;
        _store = new MessageStore(directory, storeOptions ?? QueueStoreOptions.Default);
        _store.InitialState = InitialState;
    }

    public QueueLimits Limits => _limits;

    /// <summary>
    /// The queue-wide bounds in force (replicated: <see cref="QueueOp.SetLimits"/>); read on the loop, e.g. through
    /// ReadAsync, or from another thread as the loop last set them (for metrics).
    /// </summary>
    public QueueBounds Bounds => _store.Bounds ?? _initialBounds;

    private readonly QueueBounds _initialBounds;

    /// <summary>
    /// Called with a topic and a group (null: every group of the topic) after an applied command may have made some of
    /// the group's messages deliverable or changed when they will be (<see cref="Signal"/> lists the commands), and for
    /// every topic after a snapshot is restored; on the thread that applies; must be quick and not throw. Null for none.
    /// What only time does (a lease ending, a delay over) is not signalled: <see cref="NextDeliveryAt"/> says when.
    /// </summary>
    public Action<string, string?>? Deliverable { get; set; }

    /// <summary>Set by <see cref="DeadLetter"/>: the command being applied added to a dead-letter topic.</summary>
    private bool _deadLettered;

    /// <summary>
    /// Topics whose messages retention removed while the command was applied (expiry happens in any topic whenever the
    /// clock moves): their groups' leases on those messages ended, which can free room under the in-flight bound, and
    /// their dead-letter topics may have gained messages. Cleared after each command.
    /// </summary>
    private readonly List<string> _retentionTouched = [];

    /// <summary>Where the segment files are.</summary>
    public string Directory => _store.Directory;

    /// <summary>Topics in creation order (a copy; call on the runtime's loop, e.g. through ReadAsync).</summary>
    public IReadOnlyList<string> Topics() => [.. _store.Topics.Where(t => !DeadLetters.IsDeadLetterTopic(t.Name)).Select(t => t.Name)];

    /// <summary>Messages waiting in <paramref name="topic"/>, or null when it does not exist.</summary>
    public int? Depth(string topic) => _store.Find(topic) is { } t ? (int)t.Count : null;

    /// <summary>The offsets waiting in <paramref name="topic"/>: [head, tail), the head being the next pop; null when it does not exist.</summary>
    public (ulong Head, ulong Tail)? Offsets(string topic) => _store.Find(topic) is { } t ? (t.Head, t.Tail) : null;

    /// <summary>Bytes the waiting messages count against the limits: payloads plus <see cref="QueueLimits.MessageOverheadBytes"/> each.</summary>
    public long TotalMessageBytes => _store.TotalBytes;

    /// <summary>Messages waiting in all topics.</summary>
    public long TotalMessages => _store.TotalMessages;

    /// <summary>
    /// Every topic's counters, readable from any thread without the node's loop (for metrics and the console): each
    /// value is as the loop last wrote it, so they may be a moment old and not consistent with each other.
    /// </summary>
    public IReadOnlyList<TopicCounters> TopicCounters() =>
        [.. _store.TopicsForReaders.Select(t => new TopicCounters(t.Name, t.Count, t.Bytes, (long)t.Tail, (long)t.Head))];

    public object? Apply(ulong index, ReadOnlyMemory<byte> command)
    {
        if (QueueCommand.IsPublishBatch(command.Span)) return ApplyPublishBatch(command.Span);
        if (!QueueCommand.TryDecode(command.Span, out var c)) return new QueueResult(QueueStatus.Invalid);
        return Execute(c, index);
    }

    /// <summary>The log index of the command being applied: the creation number of the groups it creates (<see cref="ConsumerGroup.Created"/>).</summary>
    private ulong _applying;

    /// <summary>
    /// A batch publish appended straight from the entry's bytes, with no string per message (the batch path carries
    /// most of the data): the same checks, in the same order and with the same results, as decoding the command and
    /// running <see cref="Execute"/>.
    /// </summary>
    private QueueResult ApplyPublishBatch(ReadOnlySpan<byte> command)
    {
        if (!QueueCommand.TryReadPublishBatch(command, out var topic, out var count, out var messages)) return new QueueResult(QueueStatus.Invalid);
        // What decoding checks: every message within the bytes, valid UTF-8, nothing left over.
        var rest = messages;
        long bytes = 0;
        var tooLarge = false;
        for (uint i = 0; i < count; i++)
        {
            if (!QueueCommand.TryReadBatchMessage(ref rest, out var m) || !System.Text.Unicode.Utf8.IsValid(m)) return new QueueResult(QueueStatus.Invalid);
            tooLarge |= m.Length > _limits.MaxMessageBytes;
            bytes += QueueLimits.MessageOverheadBytes + m.Length;
        }
        if (!rest.IsEmpty) return new QueueResult(QueueStatus.Invalid);
        if (Encoding.UTF8.GetByteCount(topic) > _limits.MaxTopicNameBytes || topic.Length == 0) return new QueueResult(QueueStatus.Invalid);
        try
        {
            if (_store.Find(topic) is not { } log) return new QueueResult(QueueStatus.NoSuchTopic);
            if (count == 0 || count > (uint)_limits.MaxBatchMessages || tooLarge) return new QueueResult(QueueStatus.Invalid);
            ExpireOld(log, _store.Clock);
            if (Admit(log, bytes, (int)count, out var plan) is { } refused) return new QueueResult(refused);
            Drop(log, plan);
            rest = messages;
            // Commands carry no publish time yet: the record's timestamp stays 0 until the leader stamps them.
            while (QueueCommand.TryReadBatchMessage(ref rest, out var m)) log.Append([], m, timestamp: 0);
            log.State!.PublishedTotal += count;
            Deliverable?.Invoke(topic, null);
            return QueueResult.Ok with { Count = (int)count };
        }
        finally
        {
            AfterCommand(topic);
        }
    }

    /// <summary>
    /// Applies a decoded command (the same rules as <see cref="Apply"/>), the entry at <paramref name="index"/> of the
    /// log: a group it creates records it, and its receipts name it (<see cref="Receipt.TagOf"/>). A bad command is an
    /// error result; a corrupt segment file throws <see cref="QueueStoreCorruptException"/>, which stops the node (a
    /// local fault).
    /// </summary>
    public QueueResult Execute(QueueCommand c, ulong index = 0)
    {
        _applying = index;
        if (c.Op == QueueOp.SetLimits) return SetLimits(c.Bounds);
        var nameLimit = _limits.MaxTopicNameBytes + (DeadLetters.IsDeadLetterTopic(c.Topic) ? DeadLetters.Suffix.Length : 0);
        if (Encoding.UTF8.GetByteCount(c.Topic) > nameLimit || c.Topic.Length == 0)
            return new QueueResult(QueueStatus.Invalid);
        var before = _store.Clock;
        var now = Tick(c);
        try
        {
            // Retention by age moves with the clock: each step expires what it made old, in every topic.
            if (now > before) ExpireAll(now);
            var result = c.Op switch
            {
                QueueOp.ConfigureTopic => ConfigureTopic(c.Topic, c.MaxDeliveries, c.CreateIfMissing, c.DedupWindowMs, c.Retention, now),
                QueueOp.DeleteTopic => DeleteTopic(c.Topic),
                QueueOp.CreateGroup => CreateGroup(c.Topic, c.Group, c.Start),
                QueueOp.DeleteGroup => DeleteGroup(c.Topic, c.Group),
                QueueOp.Receive => Receive(c.Topic, c.Group, c.Max, c.DurationMs, now),
                QueueOp.Ack => Ack(c.Topic, c.Group, c.Receipts, now),
                QueueOp.ReceiveAck => ReceiveAck(c.Topic, c.Group, c.Max, c.DurationMs, c.Receipts, now),
                QueueOp.Nack => Nack(c.Topic, c.Group, c.Receipts, c.DurationMs, c.Error, now),
                QueueOp.Extend => Extend(c.Topic, c.Group, c.Receipts, c.DurationMs, now),
                QueueOp.Redrive => Redrive(c.Topic, c.Max, now),
                QueueOp.CreateTopic => CreateTopic(c.Topic),
                QueueOp.Publish => Publish(c.Topic, [c.Message ?? ""]),
                QueueOp.Pop => Pop(c.Topic),
                QueueOp.PublishBatch => PublishBatch(c.Topic, c.Messages),
                QueueOp.PopBatch => PopBatch(c.Topic, c.Max),
                QueueOp.PublishMessages => PublishMessages(c.Topic, c.Binary, c.TimestampMs),
                QueueOp.PopMessages => PopMessages(c.Topic, c.Max),
                QueueOp.PublishExtended => PublishExtended(c.Topic, c.Binary, now),
                _ => new QueueResult(QueueStatus.Invalid),
            };
            if (Deliverable is { } notify) Signal(notify, c, result);
            return result;
        }
        finally
        {
            AfterCommand(c.Topic);
        }
    }

    /// <summary>
    /// After each command on <paramref name="topic"/>, applied or refused: the topics it changed (it, and every topic
    /// retention removed messages from, whose waiting receives are told) are counted again at the next
    /// <see cref="PublishReaderView"/>, and the segment files are flushed.
    /// </summary>
    private void AfterCommand(string topic)
    {
        CountAgain(topic);
        foreach (var t in _retentionTouched)
        {
            CountAgain(t);
            Deliverable?.Invoke(t, null);
        }
        _deadLettered = false;
        _retentionTouched.Clear();
        _store.Flush();
    }

    /// <summary>
    /// Tells <see cref="Deliverable"/> what an applied command may have made deliverable: a publish or a redrive, every
    /// group of the topic; a nack (its messages come back, perhaps later), the group; an ack or a pop that finished
    /// messages of a group with more behind its cursor (it may have been at its in-flight bound), the group; a new
    /// group; a deleted topic (its waiting receives answer that); the dead-letter topic, when the command
    /// dead-lettered a message. (Every topic retention removed messages from, with its dead-letter topic, is told by
    /// <see cref="AfterCommand"/>, for the batch publish too.)
    /// </summary>
    private void Signal(Action<string, string?> notify, QueueCommand c, QueueResult result)
    {
        if (_deadLettered) notify(DeadLetters.TopicFor(c.Topic), null);
        if (!result.Success) return;
        switch (c.Op)
        {
            case QueueOp.Publish or QueueOp.PublishBatch or QueueOp.PublishMessages or QueueOp.PublishExtended or QueueOp.Redrive:
                notify(c.Topic, null);
                break;
            case QueueOp.DeleteTopic:
                notify(c.Topic, null);
                if (!DeadLetters.IsDeadLetterTopic(c.Topic)) notify(DeadLetters.TopicFor(c.Topic), null);
                break;
            case QueueOp.Nack or QueueOp.CreateGroup or QueueOp.DeleteGroup:
                notify(c.Topic, c.Group);
                break;
            case QueueOp.Ack or QueueOp.ReceiveAck or QueueOp.Pop or QueueOp.PopBatch or QueueOp.PopMessages:
                var group = c.Op is QueueOp.Ack or QueueOp.ReceiveAck ? c.Group! : TopicState.DefaultGroup;
                if (_store.Find(c.Topic) is { } log && log.State!.Find(group) is { } g && g.Cursor < log.Tail) notify(c.Topic, group);
                break;
        }
    }

    private QueueResult CreateTopic(string topic)
    {
        if (_store.Find(topic) is not null) return new QueueResult(QueueStatus.TopicExists);
        if (DeadLetters.IsDeadLetterTopic(topic)) return new QueueResult(QueueStatus.Invalid);
        if (UserTopicCount() >= _limits.MaxTopics) return new QueueResult(QueueStatus.LimitReached);
        NewTopic(topic, _limits.DefaultMaxDeliveries);
        return QueueResult.Ok;
    }

    /// <summary>Validates every message first, then appends them all in order; a batch that breaks a bound changes nothing.</summary>
    private QueueResult PublishBatch(string topic, IReadOnlyList<string>? messages)
    {
        if (_store.Find(topic) is null) return new QueueResult(QueueStatus.NoSuchTopic);
        if (messages is null || messages.Count == 0 || messages.Count > _limits.MaxBatchMessages) return new QueueResult(QueueStatus.Invalid);
        var result = Publish(topic, messages);
        return result.Success ? result with { Count = messages.Count } : result;
    }

    /// <summary>Appends <paramref name="messages"/> to <paramref name="topic"/> if all fit the bounds, else none.</summary>
    private QueueResult Publish(string topic, IReadOnlyList<string> messages)
    {
        if (_store.Find(topic) is not { } log) return new QueueResult(QueueStatus.NoSuchTopic);
        long bytes = 0;
        var largest = 0;
        foreach (var m in messages)
        {
            var size = Encoding.UTF8.GetByteCount(m);
            if (size > _limits.MaxMessageBytes) return new QueueResult(QueueStatus.Invalid);
            bytes += QueueLimits.MessageOverheadBytes + size;
            largest = Math.Max(largest, size);
        }
        ExpireOld(log, _store.Clock);
        if (Admit(log, bytes, messages.Count, out var plan) is { } refused) return new QueueResult(refused);
        Drop(log, plan);
        var buffer = ArrayPool<byte>.Shared.Rent(largest);
        try
        {
            // Commands carry no publish time yet: the record's timestamp stays 0 until the leader stamps them.
            foreach (var m in messages) log.Append([], buffer.AsSpan(0, Encoding.UTF8.GetBytes(m, buffer)), timestamp: 0);
            log.State!.PublishedTotal += messages.Count;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        return QueueResult.Ok;
    }

    /// <summary>
    /// Whether <paramref name="count"/> more messages of <paramref name="bytes"/> (records) fit all four bounds of the
    /// queue (either may be negative: what a drop-oldest publish frees first, net of what it adds). The bounds count
    /// what some group still holds: messages every group has finished behind one that is held (leased for hours,
    /// delayed) count nothing, so one stuck message costs its own bytes, not everything published since. The counts
    /// between head and tail are an upper bound of that, and when they fit that is the answer; only when they do not
    /// is what every group finished subtracted (<see cref="TopicLog.FinishedByAll"/>, for this topic, and for every
    /// topic when the total is in doubt): a function of the state, so every node decides alike.
    /// </summary>
    private bool Fits(TopicLog log, long bytes, long count)
    {
        var bounds = Bounds;
        bool Within(long topicBytes, long topicCount) =>
            topicBytes + bytes <= bounds.MaxTopicBytes && topicCount + count <= bounds.MaxTopicMessages;
        bool WithinTotal(long totalBytes, long totalCount) =>
            totalBytes + bytes <= bounds.MaxBytes && totalCount + count <= bounds.MaxMessages;
        var topicFits = Within(log.Bytes, log.Count);
        var totalFits = WithinTotal(_store.TotalBytes, _store.TotalMessages);
        if (topicFits && totalFits) return true;
        if (!topicFits)
        {
            var (finishedCount, finishedBytes) = log.FinishedByAll();
            if (!Within(log.Bytes - finishedBytes, log.Count - finishedCount)) return false;
        }
        if (totalFits) return true;
        long allFinishedCount = 0, allFinishedBytes = 0;
        foreach (var t in _store.Topics)
        {
            var (c, b) = t.FinishedByAll();
            allFinishedCount += c;
            allFinishedBytes += b;
        }
        return WithinTotal(_store.TotalBytes - allFinishedBytes, _store.TotalMessages - allFinishedCount);
    }

    /// <summary>
    /// Sets the queue-wide bounds <paramref name="change"/> names, or none when one is out of range (Invalid). Lowering
    /// a bound below what the queue holds removes nothing: publishes are refused until consumption brings it below.
    /// </summary>
    private QueueResult SetLimits(QueueBoundsChange? change)
    {
        if (change is null || change.IsEmpty || _limits.CheckBounds(change) is not null) return new QueueResult(QueueStatus.Invalid);
        _store.Bounds = Bounds.With(change);
        return QueueResult.Ok;
    }

    /// <summary>
    /// Binary messages: each within <see cref="QueueLimits.MaxMessageBytes"/> and with headers
    /// <see cref="MessageHeaders.Check"/> accepts, all appended with the command's publish time, or none.
    /// </summary>
    private QueueResult PublishMessages(string topic, IReadOnlyList<QueueMessage>? messages, long timestamp)
    {
        if (_store.Find(topic) is not { } log) return new QueueResult(QueueStatus.NoSuchTopic);
        if (messages is null || messages.Count == 0 || messages.Count > _limits.MaxBatchMessages) return new QueueResult(QueueStatus.Invalid);
        long bytes = 0;
        var largestHeaders = 0;
        foreach (var m in messages)
        {
            if (m.Payload.Length > _limits.MaxMessageBytes || MessageHeaders.Check(m.Headers, _limits) is not null)
                return new QueueResult(QueueStatus.Invalid);
            var headerBytes = MessageHeaders.EncodedBytes(m.Headers);
            bytes += QueueLimits.MessageOverheadBytes + headerBytes + m.Payload.Length;
            largestHeaders = Math.Max(largestHeaders, headerBytes);
        }
        ExpireOld(log, _store.Clock);
        if (Admit(log, bytes, messages.Count, out var plan) is { } refused) return new QueueResult(refused);
        Drop(log, plan);
        var first = log.Tail;
        var buffer = ArrayPool<byte>.Shared.Rent(largestHeaders);
        try
        {
            foreach (var m in messages)
                log.Append(buffer.AsSpan(0, MessageHeaders.Write(buffer, m.Headers)), m.Payload.Span, timestamp);
            log.State!.PublishedTotal += messages.Count;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        return QueueResult.Ok with { Count = messages.Count, FirstOffset = first };
    }

    /// <summary>
    /// Removes up to <paramref name="max"/> oldest messages as whole messages: an atomic receive and ack on the group
    /// <c>default</c>. The batch stops before the message whose payload and encoded headers would take it past
    /// <see cref="QueueLimits.MaxPopBatchBytes"/>, but holds at least one if any waits. Messages published by string
    /// commands come with no headers and timestamp 0.
    /// </summary>
    private QueueResult PopMessages(string topic, int max)
    {
        if (_store.Find(topic) is not { } log) return new QueueResult(QueueStatus.NoSuchTopic);
        if (max < 1) return new QueueResult(QueueStatus.Invalid);
        if (log.State!.Default is null) return new QueueResult(QueueStatus.NoSuchGroup);
        var popped = new List<QueueMessage>();
        long size = 0;
        PopDefault(log, Math.Min(max, _limits.MaxBatchMessages), (offset, record) =>
        {
            var headers = MessageRecord.Headers(record);
            var payload = MessageRecord.Payload(record);
            if (popped.Count > 0 && size + headers.Length + payload.Length > _limits.MaxPopBatchBytes) return false;
            popped.Add(ToMessage(topic, offset, record));
            size += headers.Length + payload.Length;
            return true;
        });
        return QueueResult.Ok with { Delivered = popped };
    }

    private QueueResult Pop(string topic)
    {
        if (_store.Find(topic) is not { } log) return new QueueResult(QueueStatus.NoSuchTopic);
        if (log.State!.Default is null) return new QueueResult(QueueStatus.NoSuchGroup);
        string? message = null;
        // A string command's message is valid UTF-8 and decodes exactly; a binary one that is not text reaches the
        // string edge with each invalid sequence replaced by U+FFFD (the binary pop returns the bytes).
        PopDefault(log, 1, (_, record) =>
        {
            message = Encoding.UTF8.GetString(MessageRecord.Payload(record));
            return true;
        });
        return message is null ? new QueueResult(QueueStatus.Empty) : new QueueResult(QueueStatus.Ok, message);
    }

    /// <summary>Removes up to <paramref name="max"/> oldest messages within <see cref="QueueLimits.MaxPopBatchBytes"/>; at least one if any waits.</summary>
    private QueueResult PopBatch(string topic, int max)
    {
        if (_store.Find(topic) is not { } log) return new QueueResult(QueueStatus.NoSuchTopic);
        if (max < 1) return new QueueResult(QueueStatus.Invalid);
        if (log.State!.Default is null) return new QueueResult(QueueStatus.NoSuchGroup);
        var popped = new List<string>();
        long size = 0;
        PopDefault(log, Math.Min(max, _limits.MaxBatchMessages), (_, record) =>
        {
            var payload = MessageRecord.Payload(record);
            // The bound is on the payloads returned (the response), not on the records' cost.
            if (popped.Count > 0 && size + payload.Length > _limits.MaxPopBatchBytes) return false;
            popped.Add(Encoding.UTF8.GetString(payload));
            size += payload.Length;
            return true;
        });
        return QueueResult.Ok with { Messages = popped };
    }

    /// <summary>
    /// Captures every topic's offsets and segment sizes, retaining the segment files until the snapshot is disposed:
    /// O(topics + segments), no message copied. <see cref="IStateMachineSnapshot.WriteTo"/> then copies the live
    /// records out of the files on the caller's thread while Apply goes on.
    /// </summary>
    public IStateMachineSnapshot CaptureSnapshot() => _store.Capture();

    /// <summary>Replaces every topic and segment file with the snapshot's (this version's, or the older all-in-memory format).</summary>
    public void RestoreSnapshot(Stream source)
    {
        _store.Restore(source);
        CountAllAgain();
        _ageLimitedTopics = -1;
        AfterRestore();
        if (Deliverable is { } notify)
        {
            foreach (var t in _store.Topics) notify(t.Name, null);
        }
    }

    /// <summary>Closes the segment files and deletes them once no snapshot references them.</summary>
    public void Dispose() => _store.Dispose();
}

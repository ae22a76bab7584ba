namespace RaftMQ.Queue;

/// <summary>
/// The bounds of the queue. They are part of the replicated state machine's rules, so every node of a cluster must
/// use the same values (the defaults unless the whole cluster is configured alike).
/// </summary>
public sealed record QueueLimits
{
    /// <summary>Longest topic name, in UTF-8 bytes.</summary>
    public int MaxTopicNameBytes { get; init; } = 255;

    /// <summary>Largest message, in UTF-8 bytes.</summary>
    public int MaxMessageBytes { get; init; } = 64 * 1024;

    /// <summary>Most topics.</summary>
    public int MaxTopics { get; init; } = 10_000;

    /// <summary>
    /// What a message counts against the byte bounds beyond its payload: its record's header in the segment file
    /// (docs/queue-store.md). So an empty message costs this much, not nothing.
    /// </summary>
    public const int MessageOverheadBytes = Store.MessageRecord.OverheadBytes;

    /// <summary>
    /// Most bytes of messages held across all topics, each message counting its payload plus
    /// <see cref="MessageOverheadBytes"/>; a publish past it is refused (LimitReached). This and the next three are the
    /// queue-wide bounds a new cluster starts with (<see cref="InitialBounds"/>); the cluster changes them with a
    /// replicated command (<see cref="QueueOp.SetLimits"/>), each up to its ceiling below.
    /// </summary>
    public long MaxTotalMessageBytes { get; init; } = 1L << 30;

    /// <summary>Most bytes of messages held in one topic, counted as for <see cref="MaxTotalMessageBytes"/>.</summary>
    public long MaxTopicMessageBytes { get; init; } = 1L << 30;

    /// <summary>Most messages held across all topics.</summary>
    public long MaxTotalMessages { get; init; } = 20_000_000;

    /// <summary>Most messages held in one topic.</summary>
    public long MaxTopicMessages { get; init; } = 10_000_000;

    /// <summary>
    /// Highest value the byte bounds may be set to (1 TiB), total or per topic, and the ceiling of a topic's own
    /// <c>max_bytes</c>. Memory does not grow with the bytes held (docs/queue-store.md, "What is in memory"); the disk
    /// alarm keeps a node's disk from filling whatever this allows.
    /// </summary>
    public long MaxSettableBytes { get; init; } = 1L << 40;

    /// <summary>Highest value the message-count bounds may be set to, and the ceiling of a topic's own <c>max_messages</c>.</summary>
    public long MaxSettableMessages { get; init; } = 10_000_000_000;

    /// <summary>The queue-wide bounds of a cluster whose log never changed them.</summary>
    public QueueBounds InitialBounds => new(MaxTotalMessageBytes, MaxTotalMessages, MaxTopicMessageBytes, MaxTopicMessages);

    /// <summary>What is wrong with a change of the queue-wide bounds, naming the field (as HTTP and the CLI call it), or null.</summary>
    public string? CheckBounds(QueueBoundsChange change)
    {
        static string? Check(long? value, string name, long ceiling) =>
            value is < 1 || value > ceiling ? $"\"{name}\" must be an integer between 1 and {ceiling}" : null;
        return Check(change.MaxBytes, "max_bytes", MaxSettableBytes) ?? Check(change.MaxMessages, "max_messages", MaxSettableMessages)
            ?? Check(change.MaxTopicBytes, "max_topic_bytes", MaxSettableBytes)
            ?? Check(change.MaxTopicMessages, "max_topic_messages", MaxSettableMessages);
    }

    /// <summary>
    /// Most messages in one batch: a batch publish of more is refused whole (Invalid); a batch pop asking for more
    /// removes at most this many.
    /// </summary>
    public int MaxBatchMessages { get; init; } = 1_000;

    /// <summary>Most headers on one message (binary publishes, <see cref="QueueOp.PublishMessages"/>).</summary>
    public int MaxHeaders { get; init; } = 16;

    /// <summary>Longest header name, in bytes (names are HTTP token characters, so one byte each).</summary>
    public int MaxHeaderNameBytes { get; init; } = 64;

    /// <summary>Longest header value, in UTF-8 bytes.</summary>
    public int MaxHeaderValueBytes { get; init; } = 1024;

    /// <summary>
    /// Most bytes of one message's encoded headers (<see cref="MessageHeaders"/>: 3 bytes per header plus names and
    /// values). They are stored in the message's record and count against the byte bounds like the payload. At most
    /// 65 535 (the record's header length field).
    /// </summary>
    public int MaxHeaderBytes { get; init; } = 4 * 1024;

    /// <summary>
    /// Most UTF-8 bytes of messages one batch pop returns: it stops before the message that would cross this, but
    /// always returns at least one message if any is waiting (a single message is within <see cref="MaxMessageBytes"/>).
    /// </summary>
    public int MaxPopBatchBytes { get; init; } = 1 << 20;

    /// <summary>Most consumer groups of one topic, <c>default</c> included.</summary>
    public int MaxGroupsPerTopic { get; init; } = 64;

    /// <summary>Longest consumer group name, in bytes (letters, digits, <c>-</c>, <c>_</c>, <c>.</c>; at most 255).</summary>
    public int MaxGroupNameBytes { get; init; } = 64;

    /// <summary>Longest lease a receive or extend may ask for, in milliseconds (the shortest is 1).</summary>
    public long MaxLeaseMs { get; init; } = 12L * 60 * 60 * 1000;

    /// <summary>Longest delay a nack may ask for before the message is delivered again, in milliseconds.</summary>
    public long MaxNackDelayMs { get; init; } = 12L * 60 * 60 * 1000;

    /// <summary>Longest error text a nack may carry, in UTF-8 bytes (kept with the message, shown on its dead letter).</summary>
    public int MaxNackErrorBytes { get; init; } = 1024;

    /// <summary>Most receipts in one ack, nack or extend.</summary>
    public int MaxReceiptsPerCall { get; init; } = 1_000;

    /// <summary>
    /// Most messages one group may have in flight (leased, or waiting to be delivered again): a receive takes no new
    /// message from the backlog past it. Bounds the memory a group's state takes.
    /// </summary>
    public int MaxInFlightPerGroup { get; init; } = 100_000;

    /// <summary>
    /// How often, in ms of this node's clock, the node's loop counts every group again for the metrics
    /// (<see cref="QueueStateMachine.GroupCounters"/>): at the first loop iteration this long after the last count, so
    /// never more often. A count costs what a stats read of every topic costs; a scrape may see one this old.
    /// </summary>
    public long GroupCountersRefreshMs { get; init; } = 1_000;

    /// <summary>Highest <c>max_deliveries</c> a topic may be given (the lowest is 1).</summary>
    public int MaxDeliveriesLimit { get; init; } = 1_000;

    /// <summary>The <c>max_deliveries</c> of a topic created without one.</summary>
    public int DefaultMaxDeliveries { get; init; } = 20;

    /// <summary>Longest delay a message may be published with (<c>delay_ms</c>), in milliseconds (24 hours).</summary>
    public long MaxPublishDelayMs { get; init; } = 24L * 60 * 60 * 1000;

    /// <summary>
    /// Most messages of one topic waiting for their delay to pass: a publish that would hold more is refused
    /// (LimitReached). Bounds the memory of the delayed messages.
    /// </summary>
    public int MaxDelayedPerTopic { get; init; } = 1_000_000;

    /// <summary>Longest message id of an idempotent publish, in UTF-8 bytes (the shortest is 1).</summary>
    public int MaxMessageIdBytes { get; init; } = 128;

    /// <summary>The <c>dedup_window_ms</c> of a topic created without one: how long a message id is remembered (1 hour).</summary>
    public long DefaultDedupWindowMs { get; init; } = 60L * 60 * 1000;

    /// <summary>Longest <c>dedup_window_ms</c> a topic may be given (7 days); 0 turns deduplication off.</summary>
    public long MaxDedupWindowMs { get; init; } = 7L * 24 * 60 * 60 * 1000;

    /// <summary>
    /// Longest <c>max_age_ms</c> a topic may be given (365 days); 0 means messages never expire by age. A topic's
    /// <c>max_messages</c> and <c>max_bytes</c> may be at most the cluster's per-topic bounds when they are set
    /// (<see cref="QueueBounds.MaxTopicMessages"/>, <see cref="QueueBounds.MaxTopicBytes"/>; 0: no bound of its own).
    /// </summary>
    public long MaxRetentionAgeMs { get; init; } = 365L * 24 * 60 * 60 * 1000;

    /// <summary>What is wrong with a retention setting, naming the field (as HTTP and the CLI call it), or null.</summary>
    public string? CheckRetention(TopicRetention retention, QueueBounds bounds)
    {
        if (retention.MaxMessages is < 0 || retention.MaxMessages > bounds.MaxTopicMessages)
            return $"\"max_messages\" must be an integer between 0 (unlimited) and {bounds.MaxTopicMessages}";
        if (retention.MaxBytes is < 0 || retention.MaxBytes > bounds.MaxTopicBytes)
            return $"\"max_bytes\" must be an integer between 0 (unlimited) and {bounds.MaxTopicBytes}";
        if (retention.MaxAgeMs is < 0 || retention.MaxAgeMs > MaxRetentionAgeMs)
            return $"\"max_age_ms\" must be an integer between 0 (unlimited) and {MaxRetentionAgeMs}";
        if (retention.Overflow is { } o && !Enum.IsDefined(o)) return "\"overflow\" must be \"reject-publish\" or \"drop-oldest\"";
        if (retention.Expire is { } e && !Enum.IsDefined(e)) return "\"expire\" must be \"dead-letter\" or \"drop\"";
        return null;
    }

    /// <summary>
    /// Most message ids one topic remembers: past it, the topic forgets its oldest id early for each new one (so a
    /// retry is recognised only if fewer than this many ids were published to the topic since).
    /// </summary>
    public int MaxDedupIdsPerTopic { get; init; } = 100_000;

    /// <summary>
    /// Most message ids remembered across all topics: past it, a topic publishing a new id forgets its own oldest
    /// early; one that remembers none publishes without remembering the new id. With
    /// <see cref="MaxMessageIdBytes"/> it bounds the memory of the id tables (about 300 bytes an id at most).
    /// </summary>
    public int MaxDedupIds { get; init; } = 1_000_000;

    /// <summary>
    /// What is wrong with <paramref name="group"/> as a consumer group name, or null: 1 to
    /// <see cref="MaxGroupNameBytes"/> characters, each a letter, digit, <c>-</c>, <c>_</c> or <c>.</c>.
    /// </summary>
    public string? CheckGroupName(string? group)
    {
        if (string.IsNullOrEmpty(group)) return "the group name must not be empty";
        if (group.Length > MaxGroupNameBytes) return $"the group name is longer than {MaxGroupNameBytes} characters";
        foreach (var c in group)
        {
            if (c is not (>= 'a' and <= 'z' or >= 'A' and <= 'Z' or >= '0' and <= '9' or '-' or '_' or '.'))
                return "the group name may hold only letters, digits, '-', '_' and '.'";
        }
        return null;
    }

    /// <summary>
    /// Largest message record: <see cref="MessageOverheadBytes"/>, <see cref="MaxHeaderBytes"/> and
    /// <see cref="MaxMessageBytes"/> together.
    /// </summary>
    public long MaxRecordBytes => MessageOverheadBytes + (long)MaxHeaderBytes + MaxMessageBytes;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first bound that cannot work.</summary>
    public void Validate()
    {
        if (MaxTopicNameBytes is < 1 or > ushort.MaxValue) throw new ArgumentException("MaxTopicNameBytes must be between 1 and 65535.");
        if (MaxMessageBytes < 0) throw new ArgumentException("MaxMessageBytes must not be negative.");
        if (MaxHeaders < 0) throw new ArgumentException("MaxHeaders must not be negative.");
        if (MaxHeaderNameBytes is < 1 or > byte.MaxValue) throw new ArgumentException("MaxHeaderNameBytes must be between 1 and 255.");
        if (MaxHeaderValueBytes is < 0 or > ushort.MaxValue) throw new ArgumentException("MaxHeaderValueBytes must be between 0 and 65535.");
        if (MaxHeaderBytes is < 0 or > ushort.MaxValue) throw new ArgumentException("MaxHeaderBytes must be between 0 and 65535 (the record's header length field).");
        if (MaxBatchMessages < 1) throw new ArgumentException("MaxBatchMessages must be positive.");
        if (MaxPopBatchBytes < 0) throw new ArgumentException("MaxPopBatchBytes must not be negative.");
        if (MaxGroupsPerTopic < 1) throw new ArgumentException("MaxGroupsPerTopic must be positive.");
        if (MaxGroupNameBytes is < 7 or > byte.MaxValue) throw new ArgumentException("MaxGroupNameBytes must be between 7 (\"default\") and 255.");
        if (MaxLeaseMs < 1) throw new ArgumentException("MaxLeaseMs must be positive.");
        if (MaxNackDelayMs < 0) throw new ArgumentException("MaxNackDelayMs must not be negative.");
        if (MaxNackErrorBytes is < 0 or > 16 * 1024) throw new ArgumentException("MaxNackErrorBytes must be between 0 and 16384.");
        if (MaxReceiptsPerCall < 1) throw new ArgumentException("MaxReceiptsPerCall must be positive.");
        if (MaxInFlightPerGroup < 1) throw new ArgumentException("MaxInFlightPerGroup must be positive.");
        if (GroupCountersRefreshMs < 1) throw new ArgumentException("GroupCountersRefreshMs must be positive.");
        if (MaxDeliveriesLimit < 1) throw new ArgumentException("MaxDeliveriesLimit must be positive.");
        if (DefaultMaxDeliveries < 1 || DefaultMaxDeliveries > MaxDeliveriesLimit) throw new ArgumentException("DefaultMaxDeliveries must be between 1 and MaxDeliveriesLimit.");
        if (MaxPublishDelayMs < 0) throw new ArgumentException("MaxPublishDelayMs must not be negative.");
        if (MaxDelayedPerTopic < 0) throw new ArgumentException("MaxDelayedPerTopic must not be negative.");
        if (MaxMessageIdBytes is < 1 or > byte.MaxValue) throw new ArgumentException("MaxMessageIdBytes must be between 1 and 255.");
        if (MaxDedupWindowMs < 0) throw new ArgumentException("MaxDedupWindowMs must not be negative.");
        if (DefaultDedupWindowMs < 0 || DefaultDedupWindowMs > MaxDedupWindowMs) throw new ArgumentException("DefaultDedupWindowMs must be between 0 and MaxDedupWindowMs.");
        if (MaxRetentionAgeMs < 0) throw new ArgumentException("MaxRetentionAgeMs must not be negative.");
        if (MaxDedupIdsPerTopic < 1) throw new ArgumentException("MaxDedupIdsPerTopic must be positive.");
        if (MaxDedupIds < 1) throw new ArgumentException("MaxDedupIds must be positive.");
        if (MaxSettableBytes < 1 || MaxSettableMessages < 1) throw new ArgumentException("MaxSettableBytes and MaxSettableMessages must be positive.");
        if (CheckBounds(new QueueBoundsChange(MaxTotalMessageBytes, MaxTotalMessages, MaxTopicMessageBytes, MaxTopicMessages)) is { } bad)
            throw new ArgumentException($"The initial queue-wide bounds are out of range: {bad}.");
        if (MaxHeaderBytes + DeadLetters.MaxAddedHeaderBytes(this) > ushort.MaxValue)
            throw new ArgumentException("MaxHeaderBytes leaves no room in a record for a dead letter's headers; lower it or MaxNackErrorBytes.");
    }

    public static QueueLimits Default { get; } = new();
}

/// <summary>
/// The queue-wide bounds in force: replicated state (docs/queue-store.md, "Bounds"), changed by
/// <see cref="QueueOp.SetLimits"/>. Byte bounds count each message's record (payload, headers and
/// <see cref="QueueLimits.MessageOverheadBytes"/>).
/// </summary>
public sealed record QueueBounds(long MaxBytes, long MaxMessages, long MaxTopicBytes, long MaxTopicMessages)
{
    /// <summary>These bounds with the values <paramref name="change"/> sets.</summary>
    public QueueBounds With(QueueBoundsChange change) => new(
        change.MaxBytes ?? MaxBytes, change.MaxMessages ?? MaxMessages, change.MaxTopicBytes ?? MaxTopicBytes, change.MaxTopicMessages ?? MaxTopicMessages);
}

/// <summary>A change of the queue-wide bounds: each value null keeps the current one.</summary>
public sealed record QueueBoundsChange(long? MaxBytes = null, long? MaxMessages = null, long? MaxTopicBytes = null, long? MaxTopicMessages = null)
{
    public bool IsEmpty => MaxBytes is null && MaxMessages is null && MaxTopicBytes is null && MaxTopicMessages is null;
}

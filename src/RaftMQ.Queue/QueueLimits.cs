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
    /// <see cref="MessageOverheadBytes"/>; a publish past it is refused (LimitReached).
    /// </summary>
    public long MaxTotalMessageBytes { get; init; } = 1L << 30;

    /// <summary>Most bytes of messages held in one topic, counted as for <see cref="MaxTotalMessageBytes"/>.</summary>
    public long MaxTopicMessageBytes { get; init; } = 1L << 30;

    /// <summary>Most messages held across all topics.</summary>
    public long MaxTotalMessages { get; init; } = 20_000_000;

    /// <summary>Most messages held in one topic.</summary>
    public int MaxTopicMessages { get; init; } = 10_000_000;

    /// <summary>
    /// Most messages in one batch: a batch publish of more is refused whole (Invalid); a batch pop asking for more
    /// removes at most this many.
    /// </summary>
    public int MaxBatchMessages { get; init; } = 1_000;

    /// <summary>
    /// Most UTF-8 bytes of messages one batch pop returns: it stops before the message that would cross this, but
    /// always returns at least one message if any is waiting (a single message is within <see cref="MaxMessageBytes"/>).
    /// </summary>
    public int MaxPopBatchBytes { get; init; } = 1 << 20;

    public static QueueLimits Default { get; } = new();
}

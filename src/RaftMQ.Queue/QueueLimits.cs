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

    /// <summary>Most bytes of messages held across all topics; a publish past it is refused.</summary>
    public long MaxTotalMessageBytes { get; init; } = 1L << 30;

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

namespace RaftMQ.Queue;

/// <summary>What a publish does when the topic holds its <c>max_messages</c> or <c>max_bytes</c> (docs/queue-store.md, "Retention").</summary>
public enum OverflowPolicy : byte
{
    /// <summary>The publish is refused whole (<see cref="QueueStatus.TopicFull"/>); nothing is stored or removed.</summary>
    RejectPublish = 0,

    /// <summary>The oldest retained messages are removed for every group to make room; counted as dropped.</summary>
    DropOldest = 1,
}

/// <summary>What becomes of a message older than its topic's <c>max_age_ms</c>.</summary>
public enum ExpiryAction : byte
{
    /// <summary>Moved to the topic's dead-letter topic with the header <c>raftmq-reason: expired</c> (the default: nothing is lost silently).</summary>
    DeadLetter = 0,

    /// <summary>Removed for every group, counted in the topic's <c>expired_total</c>.</summary>
    Drop = 1,
}

/// <summary>
/// A change of a topic's retention settings, as a <see cref="QueueOp.ConfigureTopic"/> carries it: each null keeps the
/// current value (or the default on creation). For the three bounds 0 means unlimited.
/// </summary>
/// <param name="MaxMessages">Most messages retained (not yet finished by every group).</param>
/// <param name="MaxBytes">Most bytes retained, each message counting its payload, headers and record overhead.</param>
/// <param name="MaxAgeMs">Age (by the leader-stamped publish time, on the replicated clock) at which a message expires.</param>
/// <param name="Overflow">What a publish past <paramref name="MaxMessages"/> or <paramref name="MaxBytes"/> does.</param>
/// <param name="Expire">What becomes of an expired message.</param>
public sealed record TopicRetention(
    long? MaxMessages = null, long? MaxBytes = null, long? MaxAgeMs = null, OverflowPolicy? Overflow = null, ExpiryAction? Expire = null)
{
    /// <summary>Whether it changes nothing.</summary>
    public bool IsEmpty => MaxMessages is null && MaxBytes is null && MaxAgeMs is null && Overflow is null && Expire is null;

    /// <summary>The name HTTP and the CLI use for an overflow policy.</summary>
    public static string Name(OverflowPolicy policy) => policy == OverflowPolicy.DropOldest ? "drop-oldest" : "reject-publish";

    /// <summary>The name HTTP and the CLI use for an expiry action.</summary>
    public static string Name(ExpiryAction action) => action == ExpiryAction.Drop ? "drop" : "dead-letter";

    /// <summary>Parses <c>reject-publish</c> or <c>drop-oldest</c>.</summary>
    public static bool TryParseOverflow(string? text, out OverflowPolicy policy)
    {
        policy = text == "drop-oldest" ? OverflowPolicy.DropOldest : OverflowPolicy.RejectPublish;
        return text is "reject-publish" or "drop-oldest";
    }

    /// <summary>Parses <c>dead-letter</c> or <c>drop</c>.</summary>
    public static bool TryParseExpire(string? text, out ExpiryAction action)
    {
        action = text == "drop" ? ExpiryAction.Drop : ExpiryAction.DeadLetter;
        return text is "dead-letter" or "drop";
    }
}

using System.Globalization;

namespace RaftMQ.Queue;

/// <summary>
/// Dead letters: a message a group could not process within its topic's <c>max_deliveries</c> moves, in the same log
/// entry, to the topic's dead-letter topic, named <c>&lt;topic&gt;</c> followed by U+0000 and <c>dlq</c>. No topic a
/// client creates may end in that suffix (create refuses it), so the name never collides with a user's topic. The
/// dead letter keeps the payload and headers and gains the headers below; its record's publish time is the time it was
/// dead-lettered.
/// </summary>
public static class DeadLetters
{
    /// <summary>What a dead-letter topic's name adds to its topic's name.</summary>
    public const string Suffix = "\u0000dlq";

    /// <summary>Header: how many times the message was delivered.</summary>
    public const string DeliveryCountHeader = "raftmq-delivery-count";

    /// <summary>Header: the message's offset in its topic.</summary>
    public const string OriginalOffsetHeader = "raftmq-original-offset";

    /// <summary>Header: when the message was published to its topic (Unix ms; 0 for a string message).</summary>
    public const string OriginalPublishedAtHeader = "raftmq-original-published-at";

    /// <summary>Header: the consumer group that gave up on it.</summary>
    public const string GroupHeader = "raftmq-group";

    /// <summary>Header: the last error a nack gave, when one did.</summary>
    public const string LastErrorHeader = "raftmq-last-error";

    /// <summary>
    /// Header: why the message was dead-lettered when it was not its delivery limit: <see cref="ExpiredReason"/> for
    /// a message past its topic's <c>max_age_ms</c>. A dead letter without it reached <c>max_deliveries</c> in a group.
    /// </summary>
    public const string ReasonHeader = "raftmq-reason";

    /// <summary>The <see cref="ReasonHeader"/> of a message dead-lettered by age.</summary>
    public const string ExpiredReason = "expired";

    private static readonly string[] Reserved =
        [DeliveryCountHeader, OriginalOffsetHeader, OriginalPublishedAtHeader, GroupHeader, LastErrorHeader, ReasonHeader];

    /// <summary>The dead-letter topic of <paramref name="topic"/>.</summary>
    public static string TopicFor(string topic) => topic + Suffix;

    /// <summary>Whether <paramref name="topic"/> is a dead-letter topic's name (which no client may create).</summary>
    public static bool IsDeadLetterTopic(string topic) => topic.EndsWith(Suffix, StringComparison.Ordinal) && topic.Length > Suffix.Length;

    /// <summary>The topic a dead-letter topic belongs to.</summary>
    public static string SourceOf(string deadLetterTopic) => deadLetterTopic[..^Suffix.Length];

    /// <summary>Whether <paramref name="name"/> is one of the headers a dead letter gains (a message's own header of that name is replaced).</summary>
    public static bool IsReservedHeader(string name) => Array.IndexOf(Reserved, name) >= 0;

    /// <summary>The most bytes the added headers take encoded (the rest of the record is the message's own).</summary>
    public static int MaxAddedHeaderBytes(QueueLimits limits)
    {
        var names = 0;
        foreach (var name in Reserved) names += 3 + name.Length;
        return names + 10 + 20 + 20 + limits.MaxGroupNameBytes + limits.MaxNackErrorBytes + ExpiredReason.Length;
    }

    /// <summary>
    /// The headers of a message dead-lettered by age (once, for every group): the reason, its offset and publish time,
    /// then the message's own (any of the reserved names left out).
    /// </summary>
    internal static List<MessageHeader> ExpiredHeaders(IReadOnlyList<MessageHeader> original, ulong offset, long publishedAt)
    {
        var headers = new List<MessageHeader>(original.Count + 3)
        {
            new(ReasonHeader, ExpiredReason),
            new(OriginalOffsetHeader, offset.ToString(CultureInfo.InvariantCulture)),
            new(OriginalPublishedAtHeader, publishedAt.ToString(CultureInfo.InvariantCulture)),
        };
        foreach (var h in original)
        {
            if (!IsReservedHeader(h.Name)) headers.Add(h);
        }
        return headers;
    }

    /// <summary>The headers of a dead letter: the added ones first, then the message's own (any of the reserved names left out).</summary>
    internal static List<MessageHeader> Headers(
        IReadOnlyList<MessageHeader> original, int deliveries, ulong offset, long publishedAt, string group, string? error)
    {
        var headers = new List<MessageHeader>(original.Count + Reserved.Length)
        {
            new(DeliveryCountHeader, deliveries.ToString(CultureInfo.InvariantCulture)),
            new(OriginalOffsetHeader, offset.ToString(CultureInfo.InvariantCulture)),
            new(OriginalPublishedAtHeader, publishedAt.ToString(CultureInfo.InvariantCulture)),
            new(GroupHeader, group),
        };
        if (error is not null) headers.Add(new MessageHeader(LastErrorHeader, error));
        foreach (var h in original)
        {
            if (!IsReservedHeader(h.Name)) headers.Add(h);
        }
        return headers;
    }
}

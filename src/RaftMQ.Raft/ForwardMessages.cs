namespace RaftMQ.Raft;

/// <summary>
/// A follower hands a client's command to the leader it knows, over the authenticated peer link, instead of the client
/// being redirected. Not part of Raft: the node driver answers it, the consensus core never sees it.
/// <paramref name="Term"/> is the sender's term (for tracing only). <paramref name="RequestId"/> is the sender's
/// number for the request, echoed in the <see cref="ForwardResult"/>.
/// </summary>
public sealed record ForwardProposal(ulong From, ulong To, ulong Term, ulong RequestId, ReadOnlyMemory<byte> Command)
    : RaftMessage(From, To, Term);

/// <summary>What became of a <see cref="ForwardProposal"/>, as the node it was sent to says.</summary>
public enum ForwardStatus : byte
{
    /// <summary>Committed and applied; the payload is the application's encoding of the apply result.</summary>
    Applied = 0,

    /// <summary>The receiver is not the leader (or the entry was replaced by a new leader's): certainly not applied.</summary>
    NotLeader = 1,

    /// <summary>The application's admission check refused the command (code, message, detail): certainly not proposed.</summary>
    Refused = 2,

    /// <summary>Certainly not applied for the reason in <see cref="ForwardResult.Reason"/> (overloaded, too large, stopping).</summary>
    NotApplied = 3,

    /// <summary>Proposed, but whether it was committed is not known (e.g. leadership lost, snapshot covered it).</summary>
    Unknown = 4,
}

/// <summary>
/// The leader's answer to a <see cref="ForwardProposal"/>: the request's id, its <see cref="ForwardStatus"/>, a
/// status-specific <paramref name="Reason"/> number, the leader the receiver knows (<paramref name="LeaderHint"/>, 0
/// if none), an application code and human-readable message (for a refusal or failure), and a payload (the encoded
/// apply result, or a refusal's detail).
/// </summary>
public sealed record ForwardResult(
    ulong From, ulong To, ulong Term, ulong RequestId, ForwardStatus Status, byte Reason, ulong LeaderHint,
    string Code, string Message, ReadOnlyMemory<byte> Payload)
    : RaftMessage(From, To, Term)
{
    /// <summary>Longest <see cref="Code"/>, in UTF-8 bytes.</summary>
    public const int MaxCodeBytes = 64;

    /// <summary>Longest <see cref="Message"/>, in UTF-8 bytes.</summary>
    public const int MaxMessageBytes = 1024;

    /// <summary>The application's code (e.g. why it refused); at most <see cref="MaxCodeBytes"/> UTF-8 bytes.</summary>
    public string Code { get; init; } = Bounded(Code, MaxCodeBytes, nameof(Code));

    /// <summary>What happened, for people; at most <see cref="MaxMessageBytes"/> UTF-8 bytes.</summary>
    public string Message { get; init; } = Bounded(Message, MaxMessageBytes, nameof(Message));

    /// <summary>
    /// Cuts <paramref name="text"/> to at most <paramref name="maxBytes"/> UTF-8 bytes, on a character boundary (a
    /// message is for people; a cut one is still useful, a failed answer is not).
    /// </summary>
    public static string Truncate(string text, int maxBytes)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (System.Text.Encoding.UTF8.GetByteCount(text) <= maxBytes) return text;
        var end = 0;
        var bytes = 0;
        foreach (var rune in text.EnumerateRunes())
        {
            if (bytes + rune.Utf8SequenceLength > maxBytes) break;
            bytes += rune.Utf8SequenceLength;
            end += rune.Utf16SequenceLength;
        }
        return text[..end];
    }

    private static string Bounded(string value, int maxBytes, string name)
    {
        ArgumentNullException.ThrowIfNull(value, name);
        if (System.Text.Encoding.UTF8.GetByteCount(value) > maxBytes)
            throw new ArgumentException($"{name} is longer than {maxBytes} UTF-8 bytes.", name);
        return value;
    }
}

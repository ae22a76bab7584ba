namespace RaftMQ.StateMachine.Sessions;

/// <summary>Result of a <see cref="SessionCommandKind.Register"/> entry: the new session's id (its log index).</summary>
public sealed record SessionRegistered(ulong SessionId);

/// <summary>Result of a <see cref="SessionCommandKind.Close"/> entry.</summary>
public sealed record SessionClosed(ulong SessionId, bool Existed);

/// <summary>Why a session command was not applied.</summary>
public enum SessionRejection : byte
{
    /// <summary>The entry is not a session envelope.</summary>
    Malformed = 1,

    /// <summary>
    /// The session is unknown: never registered, closed, expired or evicted. The command was not applied now, but an
    /// earlier copy of it may have been; the client registers a new session and treats the outcome as unknown.
    /// </summary>
    UnknownSession = 2,

    /// <summary>
    /// The sequence is below what the session still remembers (the client acknowledged it, or the per-session bound
    /// dropped its result). It was not applied now; whether an earlier copy was is unknown.
    /// </summary>
    StaleSequence = 3,

    /// <summary>The command was applied once before, but its result was larger than the table keeps.</summary>
    ResultNotKept = 4,
}

/// <summary>Returned instead of the application's result when the session layer did not apply the command.</summary>
public sealed record SessionRejected(SessionRejection Reason, ulong SessionId, ulong Sequence)
{
    public override string ToString() => Reason switch
    {
        SessionRejection.Malformed => "not a session command",
        SessionRejection.UnknownSession => $"session {SessionId} is unknown or expired",
        SessionRejection.StaleSequence => $"sequence {Sequence} of session {SessionId} is older than the session remembers",
        _ => $"sequence {Sequence} of session {SessionId} was applied, but its result was too large to keep",
    };
}

/// <summary>
/// Turns the application's results into bytes and back, so a retried command can be answered from the session
/// table — also on a node that learned the table from a snapshot. Must be deterministic.
/// </summary>
public interface IResultCodec
{
    /// <summary>The bytes of <paramref name="result"/> (what the inner state machine's Apply returned).</summary>
    byte[] Encode(object? result);

    /// <summary>The result <paramref name="bytes"/> encode; equal to what the first apply returned.</summary>
    object? Decode(ReadOnlySpan<byte> bytes);
}

/// <summary>Bounds of the session table. The defaults suit a few thousand clients.</summary>
public sealed class ClientSessionOptions
{
    /// <summary>Most open sessions; registering one more evicts the least recently active (thesis §6.3: LRU).</summary>
    public int MaxSessions { get; init; } = 10_000;

    /// <summary>Most recorded results per session (so most commands a client may have outstanding at once).</summary>
    public int MaxResultsPerSession { get; init; } = 64;

    /// <summary>Largest result kept; a larger one is applied and answered once, and a retry learns only that.</summary>
    public int MaxResultBytes { get; init; } = 64 * 1024;

    /// <summary>A session with no command for this long, measured in the entries' timestamps, expires.</summary>
    public TimeSpan SessionTimeout { get; init; } = TimeSpan.FromHours(1);

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid setting.</summary>
    public void Validate()
    {
        if (MaxSessions <= 0) throw new ArgumentException("MaxSessions must be positive.");
        if (MaxResultsPerSession <= 0) throw new ArgumentException("MaxResultsPerSession must be positive.");
        if (MaxResultBytes < 0) throw new ArgumentException("MaxResultBytes must not be negative.");
        if (SessionTimeout <= TimeSpan.Zero) throw new ArgumentException("SessionTimeout must be positive.");
    }
}

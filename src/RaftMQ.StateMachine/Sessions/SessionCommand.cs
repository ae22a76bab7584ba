using System.Buffers.Binary;

namespace RaftMQ.StateMachine.Sessions;

/// <summary>What a <see cref="SessionCommand"/> asks of the <see cref="SessionStateMachine"/>.</summary>
public enum SessionCommandKind : byte
{
    /// <summary>An application command outside any session: applied every time it is committed (at least once).</summary>
    Plain = 0,

    /// <summary>Opens a session; its id is the index of this entry (unique and the same on every node).</summary>
    Register = 1,

    /// <summary>An application command in a session, numbered by the client: applied at most once.</summary>
    Command = 2,

    /// <summary>Ends a session and drops its recorded results.</summary>
    Close = 3,
}

/// <summary>
/// The envelope around an application command in the Raft log (thesis §6.3). <see cref="TimestampMs"/> is stamped
/// by the node that proposes the entry (the leader) and is the only clock the session table knows, so expiry is
/// decided by the log and every node decides the same.
/// </summary>
/// <param name="Kind">What to do.</param>
/// <param name="TimestampMs">Proposer's wall clock, Unix milliseconds; 0 for <see cref="SessionCommandKind.Plain"/>.</param>
/// <param name="SessionId">The session (for Command and Close).</param>
/// <param name="Sequence">The client's number for this command, unique within the session (for Command).</param>
/// <param name="AcknowledgedBelow">The client holds the answers of every sequence below this; their results may go.</param>
/// <param name="Payload">The application command (for Plain and Command).</param>
public readonly record struct SessionCommand(
    SessionCommandKind Kind, long TimestampMs, ulong SessionId, ulong Sequence, ulong AcknowledgedBelow, ReadOnlyMemory<byte> Payload)
{
    private const int HeaderBytes = 1 + 8;
    private const int CommandHeaderBytes = HeaderBytes + 8 + 8 + 8;

    /// <summary>An application command outside sessions.</summary>
    public static byte[] EncodePlain(ReadOnlySpan<byte> payload)
    {
        var buffer = new byte[1 + payload.Length];
        buffer[0] = (byte)SessionCommandKind.Plain;
        payload.CopyTo(buffer.AsSpan(1));
        return buffer;
    }

    /// <summary>Opens a session; the result is <see cref="SessionRegistered"/>.</summary>
    public static byte[] EncodeRegister(long timestampMs)
    {
        var buffer = new byte[HeaderBytes];
        WriteHeader(buffer, SessionCommandKind.Register, timestampMs);
        return buffer;
    }

    /// <summary>Command <paramref name="sequence"/> of session <paramref name="sessionId"/>.</summary>
    public static byte[] EncodeCommand(
        long timestampMs, ulong sessionId, ulong sequence, ulong acknowledgedBelow, ReadOnlySpan<byte> payload)
    {
        var buffer = new byte[CommandHeaderBytes + payload.Length];
        WriteHeader(buffer, SessionCommandKind.Command, timestampMs);
        BinaryPrimitives.WriteUInt64LittleEndian(buffer.AsSpan(HeaderBytes), sessionId);
        BinaryPrimitives.WriteUInt64LittleEndian(buffer.AsSpan(HeaderBytes + 8), sequence);
        BinaryPrimitives.WriteUInt64LittleEndian(buffer.AsSpan(HeaderBytes + 16), acknowledgedBelow);
        payload.CopyTo(buffer.AsSpan(CommandHeaderBytes));
        return buffer;
    }

    /// <summary>Ends session <paramref name="sessionId"/>; the result is <see cref="SessionClosed"/>.</summary>
    public static byte[] EncodeClose(long timestampMs, ulong sessionId)
    {
        var buffer = new byte[HeaderBytes + 8];
        WriteHeader(buffer, SessionCommandKind.Close, timestampMs);
        BinaryPrimitives.WriteUInt64LittleEndian(buffer.AsSpan(HeaderBytes), sessionId);
        return buffer;
    }

    /// <summary>Reads an envelope; false (never an exception) for bytes that are not one.</summary>
    public static bool TryDecode(ReadOnlyMemory<byte> data, out SessionCommand command)
    {
        command = default;
        var span = data.Span;
        if (span.Length < 1) return false;
        var kind = (SessionCommandKind)span[0];
        if (kind == SessionCommandKind.Plain)
        {
            command = new SessionCommand(kind, 0, 0, 0, 0, data[1..]);
            return true;
        }
        if (span.Length < HeaderBytes) return false;
        var timestamp = BinaryPrimitives.ReadInt64LittleEndian(span[1..]);
        switch (kind)
        {
            case SessionCommandKind.Register when span.Length == HeaderBytes:
                command = new SessionCommand(kind, timestamp, 0, 0, 0, default);
                return true;
            case SessionCommandKind.Close when span.Length == HeaderBytes + 8:
                command = new SessionCommand(kind, timestamp, BinaryPrimitives.ReadUInt64LittleEndian(span[HeaderBytes..]), 0, 0, default);
                return true;
            case SessionCommandKind.Command when span.Length >= CommandHeaderBytes:
                command = new SessionCommand(
                    kind,
                    timestamp,
                    BinaryPrimitives.ReadUInt64LittleEndian(span[HeaderBytes..]),
                    BinaryPrimitives.ReadUInt64LittleEndian(span[(HeaderBytes + 8)..]),
                    BinaryPrimitives.ReadUInt64LittleEndian(span[(HeaderBytes + 16)..]),
                    data[CommandHeaderBytes..]);
                return true;
            default:
                return false;
        }
    }

    private static void WriteHeader(Span<byte> buffer, SessionCommandKind kind, long timestampMs)
    {
        buffer[0] = (byte)kind;
        BinaryPrimitives.WriteInt64LittleEndian(buffer[1..], timestampMs);
    }
}

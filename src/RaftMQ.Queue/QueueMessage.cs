using System.Buffers.Binary;
using System.Text;

namespace RaftMQ.Queue;

/// <summary>One header of a message: a name of HTTP token characters and a UTF-8 text value (bounds in <see cref="QueueLimits"/>).</summary>
public readonly record struct MessageHeader(string Name, string Value);

/// <summary>
/// A message of the binary model: <see cref="Payload"/> bytes and optional <see cref="Headers"/>. Published, only
/// those two count; popped, it also carries its topic <see cref="Offset"/> and the leader's publish time
/// <see cref="TimestampMs"/> (Unix milliseconds; 0 for a message published by a string command, which carries none).
/// </summary>
public sealed record QueueMessage(ReadOnlyMemory<byte> Payload, IReadOnlyList<MessageHeader> Headers)
{
    /// <summary>A message without headers.</summary>
    public QueueMessage(ReadOnlyMemory<byte> payload) : this(payload, []) { }

    /// <summary>The message's sequence number in its topic (set on popped messages).</summary>
    public ulong Offset { get; init; }

    /// <summary>The publish time the leader stamped into the log entry, Unix milliseconds (set on popped messages).</summary>
    public long TimestampMs { get; init; }

    /// <summary>
    /// How many times the message has been delivered to its group, this delivery included (set on received
    /// messages; 0 on popped ones). With <see cref="Offset"/> it makes the delivery's <see cref="Receipt"/>.
    /// </summary>
    public int DeliveryCount { get; init; }

    /// <summary>
    /// The message id of an idempotent publish (<see cref="QueueOp.PublishExtended"/>): a repeat of an id the topic
    /// still remembers is not stored again. Null for none; set on published messages only.
    /// </summary>
    public string? Id { get; init; }

    /// <summary>How long after its publish time the message may first be delivered, in ms (set on published messages only).</summary>
    public long DelayMs { get; init; }

    /// <summary>Value equality: payload bytes and headers compared in order.</summary>
    public bool Equals(QueueMessage? other) =>
        other is not null && Offset == other.Offset && TimestampMs == other.TimestampMs && DeliveryCount == other.DeliveryCount
        && string.Equals(Id, other.Id, StringComparison.Ordinal) && DelayMs == other.DelayMs
        && Payload.Span.SequenceEqual(other.Payload.Span) && Headers.SequenceEqual(other.Headers);

    public override int GetHashCode() => HashCode.Combine(Offset, TimestampMs, Payload.Length, Headers.Count);
}

/// <summary>
/// The bytes of a message's headers, as they travel in a command, in a result and in a segment record: each header
/// is <c>[name length u8][name UTF-8][value length u16][value UTF-8]</c>, in order, nothing between them, no count
/// (the enclosing length says where the block ends). Little-endian.
/// </summary>
public static class MessageHeaders
{
    private static readonly UTF8Encoding Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>The size of the encoded block (the headers' cost in a record).</summary>
    public static int EncodedBytes(IReadOnlyList<MessageHeader> headers)
    {
        long size = 0;
        foreach (var h in headers) size += 3L + Strict.GetByteCount(h.Name) + Strict.GetByteCount(h.Value);
        return size > int.MaxValue ? int.MaxValue : (int)size;
    }

    /// <summary>
    /// What is wrong with <paramref name="headers"/> under <paramref name="limits"/>, or null: more than
    /// <see cref="QueueLimits.MaxHeaders"/>, an empty or too long name, a name character outside the HTTP token
    /// set, a repeated name (compared ordinally), a too long value, or a block over <see cref="QueueLimits.MaxHeaderBytes"/>.
    /// </summary>
    public static string? Check(IReadOnlyList<MessageHeader> headers, QueueLimits limits)
    {
        ArgumentNullException.ThrowIfNull(headers);
        ArgumentNullException.ThrowIfNull(limits);
        if (headers.Count > limits.MaxHeaders) return $"more than {limits.MaxHeaders} headers";
        HashSet<string>? seen = headers.Count > 1 ? new(StringComparer.Ordinal) : null;
        foreach (var h in headers)
        {
            if (h.Name is null || h.Value is null) return "a header name or value is missing";
            if (h.Name.Length == 0) return "a header name is empty";
            if (h.Name.Length > limits.MaxHeaderNameBytes) return $"header name \"{Cut(h.Name)}\" is longer than {limits.MaxHeaderNameBytes} bytes";
            foreach (var c in h.Name)
            {
                if (!IsTokenChar(c))
                    return $"header name \"{Cut(h.Name)}\" has a character outside the HTTP token set (letters, digits, !#$%&'*+-.^_`|~)";
            }
            if (seen is not null && !seen.Add(h.Name)) return $"header name \"{h.Name}\" appears twice";
            int valueBytes;
            try
            {
                valueBytes = Strict.GetByteCount(h.Value);
            }
            catch (EncoderFallbackException)
            {
                return $"the value of header \"{h.Name}\" is not valid text (a lone surrogate)";
            }
            if (valueBytes > limits.MaxHeaderValueBytes)
                return $"the value of header \"{h.Name}\" is longer than {limits.MaxHeaderValueBytes} bytes (UTF-8)";
        }
        var total = EncodedBytes(headers);
        if (total > limits.MaxHeaderBytes) return $"the headers take {total} bytes encoded, more than {limits.MaxHeaderBytes}";
        return null;
    }

    /// <summary>An HTTP token character (RFC 9110 <c>tchar</c>).</summary>
    public static bool IsTokenChar(char c) =>
        c is >= 'a' and <= 'z' or >= 'A' and <= 'Z' or >= '0' and <= '9'
            or '!' or '#' or '$' or '%' or '&' or '\'' or '*' or '+' or '-' or '.' or '^' or '_' or '`' or '|' or '~';

    /// <summary>
    /// Writes the block at the start of <paramref name="destination"/> (at least <see cref="EncodedBytes"/> long);
    /// returns its size. Names over 255 bytes or values over 65 535 bytes cannot be encoded (<see cref="ArgumentException"/>).
    /// </summary>
    public static int Write(Span<byte> destination, IReadOnlyList<MessageHeader> headers)
    {
        var at = 0;
        foreach (var h in headers)
        {
            var name = Strict.GetBytes(h.Name, destination[(at + 1)..]);
            if (name > byte.MaxValue) throw new ArgumentException($"header name of {name} bytes cannot be encoded");
            destination[at] = (byte)name;
            at += 1 + name;
            var value = Strict.GetBytes(h.Value, destination[(at + 2)..]);
            if (value > ushort.MaxValue) throw new ArgumentException($"header value of {value} bytes cannot be encoded");
            BinaryPrimitives.WriteUInt16LittleEndian(destination[at..], (ushort)value);
            at += 2 + value;
        }
        return at;
    }

    /// <summary>The headers of a block; false when it is not exactly a sequence of headers of valid UTF-8 (never throws).</summary>
    public static bool TryRead(ReadOnlySpan<byte> block, out IReadOnlyList<MessageHeader> headers)
    {
        headers = [];
        if (block.IsEmpty) return true;
        var list = new List<MessageHeader>();
        try
        {
            while (!block.IsEmpty)
            {
                int name = block[0];
                if (block.Length < 1 + name + 2) return false;
                var nameText = Strict.GetString(block.Slice(1, name));
                int value = BinaryPrimitives.ReadUInt16LittleEndian(block[(1 + name)..]);
                block = block[(3 + name)..];
                if (block.Length < value) return false;
                list.Add(new MessageHeader(nameText, Strict.GetString(block[..value])));
                block = block[value..];
            }
        }
        catch (DecoderFallbackException)
        {
            return false;
        }
        headers = list;
        return true;
    }

    private static string Cut(string name) => name.Length <= 64 ? name : name[..64] + "...";
}

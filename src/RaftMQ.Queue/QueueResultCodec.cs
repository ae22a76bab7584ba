using System.Buffers.Binary;
using System.Text;
using RaftMQ.StateMachine.Sessions;

namespace RaftMQ.Queue;

/// <summary>
/// The bytes of a <see cref="QueueResult"/>, so a leader can send the result of a forwarded command back to the
/// follower that forwarded it. Little-endian, like the commands: status (1 byte), which parts follow (1 byte: 1 = a
/// message, 2 = a list of messages), count (4), then the message (length 4 + UTF-8) and the list (count 4, then each
/// length 4 + UTF-8) when present.
/// </summary>
public sealed class QueueResultCodec : IResultCodec
{
    private const byte HasMessage = 1;
    private const byte HasMessages = 2;
    private static readonly UTF8Encoding Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    public static QueueResultCodec Instance { get; } = new();

    /// <summary>Encodes a <see cref="QueueResult"/> (what <see cref="QueueStateMachine.Apply"/> returns).</summary>
    public byte[] Encode(object? result)
    {
        if (result is not QueueResult r) throw new ArgumentException($"not a queue result: {result?.GetType().Name ?? "null"}", nameof(result));
        var size = 6 + (r.Message is null ? 0 : 4 + Strict.GetByteCount(r.Message));
        if (r.Messages is { } list)
        {
            size += 4;
            foreach (var m in list) size += 4 + Strict.GetByteCount(m);
        }
        var bytes = new byte[size];
        bytes[0] = (byte)r.Status;
        bytes[1] = (byte)((r.Message is null ? 0 : HasMessage) | (r.Messages is null ? 0 : HasMessages));
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(2), r.Count);
        var at = 6;
        if (r.Message is not null) at = WriteText(bytes, at, r.Message);
        if (r.Messages is { } messages)
        {
            BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(at), messages.Count);
            at += 4;
            foreach (var m in messages) at = WriteText(bytes, at, m);
        }
        return bytes;
    }

    /// <summary>Decodes what <see cref="Encode"/> wrote; <see cref="FormatException"/> for anything else.</summary>
    public object? Decode(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < 6) throw new FormatException("a queue result is at least 6 bytes");
        if (bytes[0] > (byte)QueueStatus.Invalid) throw new FormatException($"unknown queue status {bytes[0]}");
        var parts = bytes[1];
        if ((parts & ~(HasMessage | HasMessages)) != 0) throw new FormatException($"unknown result parts {parts}");
        var count = BinaryPrimitives.ReadInt32LittleEndian(bytes[2..]);
        var rest = bytes[6..];
        var message = (parts & HasMessage) != 0 ? ReadText(ref rest) : null;
        List<string>? messages = null;
        if ((parts & HasMessages) != 0)
        {
            var n = ReadLength(ref rest);
            // Each message takes at least its 4-byte length: a count the bytes cannot hold is refused before allocating.
            if (n > rest.Length / 4) throw new FormatException($"{n} messages claimed, {rest.Length} bytes left");
            messages = new List<string>(n);
            for (int i = 0; i < n; i++) messages.Add(ReadText(ref rest));
        }
        if (!rest.IsEmpty) throw new FormatException($"{rest.Length} bytes left over after a queue result");
        return new QueueResult((QueueStatus)bytes[0], message) { Count = count, Messages = messages };
    }

    private static int WriteText(byte[] bytes, int at, string text)
    {
        var length = Strict.GetBytes(text, bytes.AsSpan(at + 4));
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(at), length);
        return at + 4 + length;
    }

    private static int ReadLength(ref ReadOnlySpan<byte> rest)
    {
        if (rest.Length < 4) throw new FormatException("truncated queue result");
        var n = BinaryPrimitives.ReadInt32LittleEndian(rest);
        if (n < 0) throw new FormatException("negative length in a queue result");
        rest = rest[4..];
        return n;
    }

    private static string ReadText(ref ReadOnlySpan<byte> rest)
    {
        var length = ReadLength(ref rest);
        if (length > rest.Length) throw new FormatException($"text of {length} bytes, {rest.Length} left");
        var text = Strict.GetString(rest[..length]);
        rest = rest[length..];
        return text;
    }
}

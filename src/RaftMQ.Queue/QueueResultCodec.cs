using System.Buffers.Binary;
using System.Text;
using RaftMQ.StateMachine.Sessions;

namespace RaftMQ.Queue;

/// <summary>
/// The bytes of a <see cref="QueueResult"/>, so a leader can send the result of a forwarded command back to the
/// follower that forwarded it. Little-endian, like the commands: status (1 byte), which parts follow (1 byte: 1 = a
/// message, 2 = a list of messages, 4 = a first offset, 8 = a list of whole messages), count (4), then in that order
/// the parts present: the message (length 4 + UTF-8), the list (count 4, then each length 4 + UTF-8), the first offset
/// (u64), the whole messages (count 4, then each [offset u64][timestamp i64][header bytes u16][headers][payload length
/// 4][payload]), the stale receipts (16: count 4, then each [offset u64][delivery i32]), the delivery counts of the
/// whole messages (32: one i32 per message, present when any is not 0: a receive's), the offsets of an extended
/// publish (64: count 4, then each u64), the tags (128: which follow, 1 byte: 1 = the receipt tag of a receive, 2 =
/// one per stale receipt; then the receipt tag u64, then the stale receipts' tags, u64 each). A result of the string
/// ops never has parts 4 to 128, so it encodes as before.
/// </summary>
public sealed class QueueResultCodec : IResultCodec
{
    private const byte HasMessage = 1;
    private const byte HasMessages = 2;
    private const byte HasFirstOffset = 4;
    private const byte HasDelivered = 8;
    private const byte HasStale = 16;
    private const byte HasDeliveryCounts = 32;
    private const byte HasOffsets = 64;
    private const byte HasTags = 128;
    private const byte HasReceiptTag = 1;
    private const byte HasStaleTags = 2;

    /// <summary>The fixed bytes of one whole message in a result, besides its headers and payload.</summary>
    public const int DeliveredOverheadBytes = 8 + 8 + 2 + 4;

    /// <summary>
    /// The largest encoded result of a binary pop or a receive under <paramref name="limits"/>: its payloads and headers
    /// within <see cref="QueueLimits.MaxPopBatchBytes"/> (or one message, when that alone is larger), plus the fixed bytes
    /// of <see cref="QueueLimits.MaxBatchMessages"/> messages, plus a receive-ack's stale receipts. What a leader sends back must fit its forwarding bound.
    /// </summary>
    public static long MaxPopMessagesResultBytes(QueueLimits limits)
    {
        ArgumentNullException.ThrowIfNull(limits);
        // A dead letter's record holds more headers than a publish may (DeadLetters), and a receive adds a count per message.
        var content = Math.Max(limits.MaxPopBatchBytes, (long)limits.MaxMessageBytes + limits.MaxHeaderBytes + DeadLetters.MaxAddedHeaderBytes(limits));
        // A receive-ack adds the stale receipts of its ack.
        return 6 + 4 + content + (long)limits.MaxBatchMessages * DeliveredOverheadBytes + 4 + 4L * limits.MaxBatchMessages
            + 4 + 12L * limits.MaxReceiptsPerCall + 1 + 8 + 8L * limits.MaxReceiptsPerCall;
    }
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
        if (r.FirstOffset is not null) size += 8;
        if (r.Delivered is { } delivered)
        {
            size += 4;
            foreach (var m in delivered) size += DeliveredOverheadBytes + MessageHeaders.EncodedBytes(m.Headers) + m.Payload.Length;
        }
        var counts = r.Delivered is { } d && d.Any(m => m.DeliveryCount != 0);
        if (counts) size += 4 + 4 * r.Delivered!.Count;
        if (r.Stale is { } staleList) size += 4 + 12 * staleList.Count;
        if (r.Offsets is { } offsetList) size += 4 + 8 * offsetList.Count;
        // Stale receipts of one command carry their tags or none does (QueueCommand's receipts).
        var tags = (byte)((r.ReceiptTag is null ? 0 : HasReceiptTag) | (r.Stale is { Count: > 0 } s && s[0].Tag is not null ? HasStaleTags : 0));
        if (tags != 0) size += 1 + (r.ReceiptTag is null ? 0 : 8) + ((tags & HasStaleTags) != 0 ? 8 * r.Stale!.Count : 0);
        var bytes = new byte[size];
        bytes[0] = (byte)r.Status;
        bytes[1] = (byte)((r.Message is null ? 0 : HasMessage) | (r.Messages is null ? 0 : HasMessages)
            | (r.FirstOffset is null ? 0 : HasFirstOffset) | (r.Delivered is null ? 0 : HasDelivered)
            | (r.Stale is null ? 0 : HasStale) | (counts ? HasDeliveryCounts : 0) | (r.Offsets is null ? 0 : HasOffsets)
            | (tags == 0 ? 0 : HasTags));
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(2), r.Count);
        var at = 6;
        if (r.Message is not null) at = WriteText(bytes, at, r.Message);
        if (r.Messages is { } messages)
        {
            BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(at), messages.Count);
            at += 4;
            foreach (var m in messages) at = WriteText(bytes, at, m);
        }
        if (r.FirstOffset is { } first)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(at), first);
            at += 8;
        }
        if (r.Delivered is { } whole)
        {
            BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(at), whole.Count);
            at += 4;
            foreach (var m in whole)
            {
                BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(at), m.Offset);
                BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(at + 8), m.TimestampMs);
                var headers = MessageHeaders.Write(bytes.AsSpan(at + 18), m.Headers);
                BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(at + 16), checked((ushort)headers));
                at += 18 + headers;
                BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(at), m.Payload.Length);
                m.Payload.Span.CopyTo(bytes.AsSpan(at + 4));
                at += 4 + m.Payload.Length;
            }
        }
        if (r.Stale is { } stale)
        {
            BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(at), stale.Count);
            at += 4;
            foreach (var receipt in stale)
            {
                BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(at), receipt.Offset);
                BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(at + 8), receipt.Delivery);
                at += 12;
            }
        }
        if (counts)
        {
            BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(at), r.Delivered!.Count);
            at += 4;
            foreach (var m in r.Delivered)
            {
                BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(at), m.DeliveryCount);
                at += 4;
            }
        }
        if (r.Offsets is { } offsets)
        {
            BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(at), offsets.Count);
            at += 4;
            foreach (var o in offsets)
            {
                BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(at), o);
                at += 8;
            }
        }
        if (tags != 0)
        {
            bytes[at++] = tags;
            if (r.ReceiptTag is { } receiptTag)
            {
                BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(at), receiptTag);
                at += 8;
            }
            if ((tags & HasStaleTags) != 0)
            {
                foreach (var receipt in r.Stale!)
                {
                    BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(at), receipt.Tag ?? throw new ArgumentException("stale receipts with and without tags"));
                    at += 8;
                }
            }
        }
        return bytes;
    }

    /// <summary>Decodes what <see cref="Encode"/> wrote; <see cref="FormatException"/> for anything else.</summary>
    public object? Decode(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < 6) throw new FormatException("a queue result is at least 6 bytes");
        if (bytes[0] > (byte)QueueStatus.LastGroup) throw new FormatException($"unknown queue status {bytes[0]}");
        var parts = bytes[1];
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
        ulong? firstOffset = null;
        if ((parts & HasFirstOffset) != 0)
        {
            if (rest.Length < 8) throw new FormatException("truncated queue result");
            firstOffset = BinaryPrimitives.ReadUInt64LittleEndian(rest);
            rest = rest[8..];
        }
        List<QueueMessage>? delivered = null;
        if ((parts & HasDelivered) != 0)
        {
            var n = ReadLength(ref rest);
            if (n > rest.Length / DeliveredOverheadBytes) throw new FormatException($"{n} messages claimed, {rest.Length} bytes left");
            delivered = new List<QueueMessage>(n);
            for (int i = 0; i < n; i++) delivered.Add(ReadMessage(ref rest));
        }
        List<Receipt>? stale = null;
        if ((parts & HasStale) != 0)
        {
            var n = ReadLength(ref rest);
            if (n > rest.Length / 12) throw new FormatException($"{n} receipts claimed, {rest.Length} bytes left");
            stale = new List<Receipt>(n);
            for (int i = 0; i < n; i++)
            {
                stale.Add(new Receipt(BinaryPrimitives.ReadUInt64LittleEndian(rest), BinaryPrimitives.ReadInt32LittleEndian(rest[8..])));
                rest = rest[12..];
            }
        }
        if ((parts & HasDeliveryCounts) != 0)
        {
            var n = ReadLength(ref rest);
            if (delivered is null || n != delivered.Count || rest.Length < 4L * n) throw new FormatException("delivery counts that do not match the messages");
            for (int i = 0; i < n; i++)
            {
                delivered[i] = delivered[i] with { DeliveryCount = BinaryPrimitives.ReadInt32LittleEndian(rest) };
                rest = rest[4..];
            }
        }
        List<ulong>? offsetList = null;
        if ((parts & HasOffsets) != 0)
        {
            var n = ReadLength(ref rest);
            if (n > rest.Length / 8) throw new FormatException($"{n} offsets claimed, {rest.Length} bytes left");
            offsetList = new List<ulong>(n);
            for (int i = 0; i < n; i++)
            {
                offsetList.Add(BinaryPrimitives.ReadUInt64LittleEndian(rest));
                rest = rest[8..];
            }
        }
        ulong? receiptTag = null;
        if ((parts & HasTags) != 0)
        {
            if (rest.Length < 1) throw new FormatException("truncated queue result");
            var tags = rest[0];
            rest = rest[1..];
            if (tags == 0 || (tags & ~(HasReceiptTag | HasStaleTags)) != 0) throw new FormatException($"unknown result tags {tags}");
            if ((tags & HasReceiptTag) != 0)
            {
                if (rest.Length < 8) throw new FormatException("truncated queue result");
                receiptTag = BinaryPrimitives.ReadUInt64LittleEndian(rest);
                rest = rest[8..];
            }
            if ((tags & HasStaleTags) != 0)
            {
                if (stale is null || stale.Count == 0 || rest.Length < 8L * stale.Count) throw new FormatException("stale tags that do not match the stale receipts");
                for (int i = 0; i < stale.Count; i++)
                {
                    stale[i] = stale[i] with { Tag = BinaryPrimitives.ReadUInt64LittleEndian(rest) };
                    rest = rest[8..];
                }
            }
        }
        if (!rest.IsEmpty) throw new FormatException($"{rest.Length} bytes left over after a queue result");
        return new QueueResult((QueueStatus)bytes[0], message)
        {
            Count = count, Messages = messages, FirstOffset = firstOffset, Delivered = delivered, Stale = stale, Offsets = offsetList,
            ReceiptTag = receiptTag,
        };
    }

    private static QueueMessage ReadMessage(ref ReadOnlySpan<byte> rest)
    {
        if (rest.Length < 18) throw new FormatException("truncated queue result");
        var offset = BinaryPrimitives.ReadUInt64LittleEndian(rest);
        var timestamp = BinaryPrimitives.ReadInt64LittleEndian(rest[8..]);
        int headerBytes = BinaryPrimitives.ReadUInt16LittleEndian(rest[16..]);
        rest = rest[18..];
        if (headerBytes > rest.Length) throw new FormatException($"headers of {headerBytes} bytes, {rest.Length} left");
        if (!MessageHeaders.TryRead(rest[..headerBytes], out var headers)) throw new FormatException("headers that do not decode in a queue result");
        rest = rest[headerBytes..];
        var length = ReadLength(ref rest);
        if (length > rest.Length) throw new FormatException($"payload of {length} bytes, {rest.Length} left");
        var payload = rest[..length].ToArray();
        rest = rest[length..];
        return new QueueMessage(payload, headers) { Offset = offset, TimestampMs = timestamp };
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

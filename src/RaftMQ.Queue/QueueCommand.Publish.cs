using System.Buffers.Binary;
using System.Text;

namespace RaftMQ.Queue;

/// <summary>
/// The extended publish (op 16, <see cref="QueueOp.PublishExtended"/>): binary messages that may carry a message id
/// and a delivery delay. <c>[op u8][topic length u16][topic][timestamp i64][count u32]</c>, the timestamp at the same
/// fixed place as a binary publish's so the leader stamps it, then count times
/// <c>[id length u8 (0: none)][id UTF-8][delay_ms i64][header bytes u16][headers][payload length u32][payload]</c>.
/// </summary>
public readonly partial record struct QueueCommand
{
    /// <summary>The fixed bytes of one message of an extended publish, besides its id, headers and payload.</summary>
    private const int ExtendedMessageOverhead = 1 + 8 + 2 + 4;

    /// <summary>
    /// Appends all <paramref name="messages"/> in order, or none of them, except that a message whose
    /// <see cref="QueueMessage.Id"/> the topic remembers (or an earlier message of the batch has) is not stored again.
    /// </summary>
    public static QueueCommand PublishExtended(string topic, IReadOnlyList<QueueMessage> messages, long timestampMs = 0) =>
        new(QueueOp.PublishExtended, topic, null) { Binary = messages, TimestampMs = timestampMs };

    private byte[] EncodePublishExtended()
    {
        var topic = Encoding.UTF8.GetBytes(Topic);
        if (topic.Length > ushort.MaxValue) throw new ArgumentException("topic name too long");
        if (Binary is null) throw new ArgumentException("an extended publish needs its messages");
        using var buffer = new MemoryStream();
        using (var w = new BinaryWriter(buffer, Encoding.UTF8, leaveOpen: true))
        {
            w.Write((byte)Op);
            w.Write((ushort)topic.Length);
            w.Write(topic);
            w.Write(TimestampMs);
            w.Write((uint)Binary.Count);
            foreach (var m in Binary)
            {
                var id = m.Id is null ? [] : Encoding.UTF8.GetBytes(m.Id);
                if (id.Length > byte.MaxValue || (m.Id is not null && id.Length == 0)) throw new ArgumentException("a message id must be 1 to 255 bytes");
                var headers = new byte[MessageHeaders.EncodedBytes(m.Headers)];
                if (headers.Length > ushort.MaxValue) throw new ArgumentException("headers too large to encode");
                MessageHeaders.Write(headers, m.Headers);
                w.Write((byte)id.Length);
                w.Write(id);
                w.Write(m.DelayMs);
                w.Write((ushort)headers.Length);
                w.Write(headers);
                w.Write((uint)m.Payload.Length);
                w.Write(m.Payload.Span);
            }
        }
        return buffer.ToArray();
    }

    /// <summary>
    /// Reads the head of a command stamped with the leader's time: op, topic (strict UTF-8) and timestamp; false when
    /// it is malformed or fewer than <paramref name="minRest"/> bytes follow it. <paramref name="rest"/> is what follows.
    /// </summary>
    private static bool TryReadStampedHead(ReadOnlySpan<byte> data, int minRest, out string topic, out long timestamp, out ReadOnlySpan<byte> rest)
    {
        topic = "";
        timestamp = 0;
        rest = default;
        int topicLength = BinaryPrimitives.ReadUInt16LittleEndian(data[1..]);
        var after = data[HeaderBytes..];
        if (after.Length < topicLength + 8 + minRest) return false;
        try
        {
            topic = new UTF8Encoding(false, true).GetString(after[..topicLength]);
        }
        catch (DecoderFallbackException)
        {
            return false;
        }
        timestamp = BinaryPrimitives.ReadInt64LittleEndian(after[topicLength..]);
        rest = after[(topicLength + 8)..];
        return true;
    }

    private static bool TryDecodePublishExtended(ReadOnlySpan<byte> data, out QueueCommand command)
    {
        command = default;
        if (!TryReadStampedHead(data, 4, out var topic, out var timestamp, out var rest)) return false;
        var utf8 = new UTF8Encoding(false, true);
        try
        {
            var count = BinaryPrimitives.ReadUInt32LittleEndian(rest);
            rest = rest[4..];
            // Each message takes at least its fixed fields: a count the bytes cannot hold is refused first.
            if (count > (uint)rest.Length / ExtendedMessageOverhead) return false;
            var messages = new QueueMessage[count];
            for (int i = 0; i < messages.Length; i++)
            {
                int idLength = rest[0];
                if (rest.Length < ExtendedMessageOverhead + idLength) return false;
                var id = idLength == 0 ? null : utf8.GetString(rest.Slice(1, idLength));
                rest = rest[(1 + idLength)..];
                var delay = BinaryPrimitives.ReadInt64LittleEndian(rest);
                int headerBytes = BinaryPrimitives.ReadUInt16LittleEndian(rest[8..]);
                rest = rest[10..];
                if (rest.Length < headerBytes + 4) return false;
                if (!MessageHeaders.TryRead(rest[..headerBytes], out var headers)) return false;
                rest = rest[headerBytes..];
                var length = BinaryPrimitives.ReadUInt32LittleEndian(rest);
                if (length > (uint)rest.Length - 4) return false;
                messages[i] = new QueueMessage(rest.Slice(4, (int)length).ToArray(), headers) { Id = id, DelayMs = delay };
                rest = rest[(4 + (int)length)..];
                if (i + 1 < messages.Length && rest.Length < ExtendedMessageOverhead) return false;
            }
            if (!rest.IsEmpty) return false;
            command = PublishExtended(topic, messages, timestamp);
            return true;
        }
        catch (DecoderFallbackException)
        {
            return false;
        }
    }
}

using System.Buffers.Binary;
using System.Text;

namespace RaftMQ.Queue;

/// <summary>The replicated operations of the queue.</summary>
public enum QueueOp : byte
{
    CreateTopic = 1,
    Publish = 2,
    Pop = 3,
}

/// <summary>A queue command as it travels in the Raft log: [op u8][topic length u16][topic][message length u32][message].</summary>
public readonly record struct QueueCommand(QueueOp Op, string Topic, string? Message)
{
    public static QueueCommand CreateTopic(string topic) => new(QueueOp.CreateTopic, topic, null);

    public static QueueCommand Publish(string topic, string message) => new(QueueOp.Publish, topic, message);

    public static QueueCommand Pop(string topic) => new(QueueOp.Pop, topic, null);

    public byte[] Encode()
    {
        var topicBytes = Encoding.UTF8.GetByteCount(Topic);
        if (topicBytes > ushort.MaxValue) throw new ArgumentException("topic name too long");
        var messageBytes = Message is null ? 0 : Encoding.UTF8.GetByteCount(Message);
        var buffer = new byte[1 + 2 + topicBytes + 4 + messageBytes];
        var span = buffer.AsSpan();
        span[0] = (byte)Op;
        BinaryPrimitives.WriteUInt16LittleEndian(span[1..], (ushort)topicBytes);
        Encoding.UTF8.GetBytes(Topic, span.Slice(3, topicBytes));
        BinaryPrimitives.WriteUInt32LittleEndian(span[(3 + topicBytes)..], (uint)messageBytes);
        if (Message is not null) Encoding.UTF8.GetBytes(Message, span[(7 + topicBytes)..]);
        return buffer;
    }

    /// <summary>Decodes a command; false for bytes that are not one (never throws).</summary>
    public static bool TryDecode(ReadOnlySpan<byte> data, out QueueCommand command)
    {
        command = default;
        if (data.Length < 7 || data[0] is < 1 or > 3) return false;
        int topicLength = BinaryPrimitives.ReadUInt16LittleEndian(data[1..]);
        if (data.Length < 7 + topicLength) return false;
        var messageLength = BinaryPrimitives.ReadUInt32LittleEndian(data[(3 + topicLength)..]);
        if ((ulong)data.Length != 7UL + (ulong)topicLength + messageLength) return false;
        try
        {
            var utf8 = new UTF8Encoding(false, true);
            var topic = utf8.GetString(data.Slice(3, topicLength));
            var op = (QueueOp)data[0];
            string? message = op == QueueOp.Publish ? utf8.GetString(data[(7 + topicLength)..]) : null;
            if (op != QueueOp.Publish && messageLength != 0) return false;
            command = new QueueCommand(op, topic, message);
            return true;
        }
        catch (DecoderFallbackException)
        {
            return false;
        }
    }
}

/// <summary>The outcome of a queue command.</summary>
public enum QueueStatus : byte
{
    Ok = 0,
    TopicExists = 1,
    NoSuchTopic = 2,
    Empty = 3,
    LimitReached = 4,
    Invalid = 5,
}

/// <summary>A command's result; <see cref="Message"/> is set for a successful pop.</summary>
public sealed record QueueResult(QueueStatus Status, string? Message = null)
{
    public static readonly QueueResult Ok = new(QueueStatus.Ok);

    public bool Success => Status == QueueStatus.Ok;
}

using System.Buffers.Binary;
using System.Text;

namespace RaftMQ.Queue;

/// <summary>The replicated operations of the queue.</summary>
public enum QueueOp : byte
{
    CreateTopic = 1,
    Publish = 2,
    Pop = 3,
    PublishBatch = 4,
    PopBatch = 5,
}

/// <summary>
/// A queue command as it travels in the Raft log: [op u8][topic length u16][topic], then per op
/// <list type="bullet">
/// <item>CreateTopic, Pop: [0 u32]; Publish: [message length u32][message] (the original three, unchanged);</item>
/// <item>PublishBatch: [count u32] then count times [message length u32][message];</item>
/// <item>PopBatch: [max u32].</item>
/// </list>
/// Strings are UTF-8, integers little-endian.
/// </summary>
public readonly record struct QueueCommand(QueueOp Op, string Topic, string? Message)
{
    private const int HeaderBytes = 1 + 2;

    /// <summary>The messages of a <see cref="QueueOp.PublishBatch"/>, in order; null for the other ops.</summary>
    public IReadOnlyList<string>? Messages { get; init; }

    /// <summary>Most messages a <see cref="QueueOp.PopBatch"/> removes; 0 for the other ops.</summary>
    public int Max { get; init; }

    public static QueueCommand CreateTopic(string topic) => new(QueueOp.CreateTopic, topic, null);

    public static QueueCommand Publish(string topic, string message) => new(QueueOp.Publish, topic, message);

    public static QueueCommand Pop(string topic) => new(QueueOp.Pop, topic, null);

    /// <summary>Appends all <paramref name="messages"/> in order, or none of them.</summary>
    public static QueueCommand PublishBatch(string topic, IReadOnlyList<string> messages) =>
        new(QueueOp.PublishBatch, topic, null) { Messages = messages };

    /// <summary>Removes up to <paramref name="max"/> of the oldest messages.</summary>
    public static QueueCommand PopBatch(string topic, int max) => new(QueueOp.PopBatch, topic, null) { Max = max };

    public byte[] Encode()
    {
        var topicBytes = Encoding.UTF8.GetByteCount(Topic);
        if (topicBytes > ushort.MaxValue) throw new ArgumentException("topic name too long");
        var length = HeaderBytes + topicBytes + 4L;
        if (Op == QueueOp.PublishBatch)
        {
            if (Messages is null) throw new ArgumentException("a batch publish needs its messages");
            foreach (var m in Messages) length += 4 + Encoding.UTF8.GetByteCount(m);
        }
        else if (Message is not null)
        {
            length += Encoding.UTF8.GetByteCount(Message);
        }
        if (length > Array.MaxLength) throw new ArgumentException("command too large to encode");
        if (Op == QueueOp.PopBatch && Max < 0) throw new ArgumentException("a batch pop's max must not be negative");

        var buffer = new byte[length];
        var span = buffer.AsSpan();
        span[0] = (byte)Op;
        BinaryPrimitives.WriteUInt16LittleEndian(span[1..], (ushort)topicBytes);
        Encoding.UTF8.GetBytes(Topic, span.Slice(HeaderBytes, topicBytes));
        var rest = span[(HeaderBytes + topicBytes)..];
        switch (Op)
        {
            case QueueOp.PublishBatch:
                BinaryPrimitives.WriteUInt32LittleEndian(rest, (uint)Messages!.Count);
                rest = rest[4..];
                foreach (var m in Messages)
                {
                    var n = Encoding.UTF8.GetBytes(m, rest[4..]);
                    BinaryPrimitives.WriteUInt32LittleEndian(rest, (uint)n);
                    rest = rest[(4 + n)..];
                }
                break;
            case QueueOp.PopBatch:
                BinaryPrimitives.WriteUInt32LittleEndian(rest, (uint)Max);
                break;
            default:
                var messageBytes = Message is null ? 0 : Encoding.UTF8.GetBytes(Message, rest[4..]);
                BinaryPrimitives.WriteUInt32LittleEndian(rest, (uint)messageBytes);
                break;
        }
        return buffer;
    }

    /// <summary>
    /// Decodes a command; false for bytes that are not exactly one (never throws): an unknown op, invalid UTF-8, a
    /// length or count past the end, or bytes left over.
    /// </summary>
    public static bool TryDecode(ReadOnlySpan<byte> data, out QueueCommand command)
    {
        command = default;
        if (data.Length < HeaderBytes + 4 || data[0] is < (byte)QueueOp.CreateTopic or > (byte)QueueOp.PopBatch) return false;
        var op = (QueueOp)data[0];
        int topicLength = BinaryPrimitives.ReadUInt16LittleEndian(data[1..]);
        if (data.Length < HeaderBytes + topicLength + 4) return false;
        var rest = data[(HeaderBytes + topicLength)..];
        var value = BinaryPrimitives.ReadUInt32LittleEndian(rest);
        rest = rest[4..];
        try
        {
            var utf8 = new UTF8Encoding(false, true);
            var topic = utf8.GetString(data.Slice(HeaderBytes, topicLength));
            switch (op)
            {
                case QueueOp.Publish:
                    if (value != (uint)rest.Length) return false;
                    command = Publish(topic, utf8.GetString(rest));
                    return true;
                case QueueOp.PublishBatch:
                    // Each message takes at least its 4-byte length, so a count the bytes cannot hold is refused
                    // before anything is allocated for it.
                    if (value > (uint)rest.Length / 4) return false;
                    var messages = new string[value];
                    for (int i = 0; i < messages.Length; i++)
                    {
                        if (rest.Length < 4) return false;
                        var length = BinaryPrimitives.ReadUInt32LittleEndian(rest);
                        if (length > (uint)rest.Length - 4) return false;
                        messages[i] = utf8.GetString(rest.Slice(4, (int)length));
                        rest = rest[(4 + (int)length)..];
                    }
                    if (!rest.IsEmpty) return false;
                    command = PublishBatch(topic, messages);
                    return true;
                case QueueOp.PopBatch:
                    if (!rest.IsEmpty || value > int.MaxValue) return false;
                    command = PopBatch(topic, (int)value);
                    return true;
                default:
                    if (value != 0 || !rest.IsEmpty) return false;
                    command = new QueueCommand(op, topic, null);
                    return true;
            }
        }
        catch (DecoderFallbackException)
        {
            return false;
        }
    }

    /// <summary>Value equality, batch messages compared one by one.</summary>
    public bool Equals(QueueCommand other) =>
        Op == other.Op && Max == other.Max && string.Equals(Topic, other.Topic, StringComparison.Ordinal)
        && string.Equals(Message, other.Message, StringComparison.Ordinal)
        && (ReferenceEquals(Messages, other.Messages)
            || (Messages is not null && other.Messages is not null && Messages.SequenceEqual(other.Messages, StringComparer.Ordinal)));

    public override int GetHashCode() => HashCode.Combine(Op, Topic, Message, Max, Messages?.Count);
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

/// <summary>
/// A command's result: <see cref="Message"/> is set for a successful pop, <see cref="Count"/> for a successful batch
/// publish (messages appended), <see cref="Messages"/> for a successful batch pop (possibly empty).
/// </summary>
public sealed record QueueResult(QueueStatus Status, string? Message = null)
{
    public static readonly QueueResult Ok = new(QueueStatus.Ok);

    public int Count { get; init; }

    public IReadOnlyList<string>? Messages { get; init; }

    public bool Success => Status == QueueStatus.Ok;

    /// <summary>Value equality, popped messages compared one by one.</summary>
    public bool Equals(QueueResult? other) =>
        other is not null && Status == other.Status && Count == other.Count && string.Equals(Message, other.Message, StringComparison.Ordinal)
        && (ReferenceEquals(Messages, other.Messages)
            || (Messages is not null && other.Messages is not null && Messages.SequenceEqual(other.Messages, StringComparer.Ordinal)));

    public override int GetHashCode() => HashCode.Combine(Status, Message, Count, Messages?.Count);
}

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

    /// <summary>Binary messages with headers and the leader's publish time; answered with the first offset.</summary>
    PublishMessages = 6,

    /// <summary>A batch pop answered with whole messages: offset, publish time, headers, payload.</summary>
    PopMessages = 7,

    /// <summary>Creates a topic or changes its settings (<see cref="QueueCommand.MaxDeliveries"/>).</summary>
    ConfigureTopic = 8,

    /// <summary>Deletes a topic with its groups and its dead-letter topic.</summary>
    DeleteTopic = 9,

    /// <summary>Creates a consumer group starting at the topic's earliest or latest message.</summary>
    CreateGroup = 10,

    /// <summary>Leases up to <see cref="QueueCommand.Max"/> messages to a group's consumer.</summary>
    Receive = 11,

    /// <summary>Finishes the deliveries named by receipts.</summary>
    Ack = 12,

    /// <summary>Gives deliveries back, to be delivered again (after a delay), or dead-lettered at the delivery limit.</summary>
    Nack = 13,

    /// <summary>Extends the leases of the deliveries named by receipts.</summary>
    Extend = 14,

    /// <summary>Moves dead letters back to the topic's tail.</summary>
    Redrive = 15,

    /// <summary>Binary messages that may carry a message id (idempotent publishing) and a delivery delay; answered with each message's offset.</summary>
    PublishExtended = 16,

    /// <summary>Deletes a consumer group: its leases end, and what only it held goes.</summary>
    DeleteGroup = 17,

    /// <summary>
    /// An <see cref="Ack"/> of the receipts (the consumer's previous batch) then a <see cref="Receive"/>, atomically in
    /// one entry: answered with the delivered messages, the acked count and the stale receipts.
    /// </summary>
    ReceiveAck = 18,

    /// <summary>
    /// Changes the queue-wide bounds (<see cref="QueueBounds"/>): [op u8][0 u16] (no topic), then [max_bytes i64]
    /// [max_messages i64][max_topic_bytes i64][max_topic_messages i64], −1 keeping a value. Answered Ok, or Invalid
    /// for a value out of range (nothing changed).
    /// </summary>
    SetLimits = 19,
}

/// <summary>
/// A queue command as it travels in the Raft log: [op u8][topic length u16][topic], then per op
/// <list type="bullet">
/// <item>CreateTopic, Pop: [0 u32]; Publish: [message length u32][message] (the original three, unchanged);</item>
/// <item>PublishBatch: [count u32] then count times [message length u32][message];</item>
/// <item>PopBatch, PopMessages: [max u32];</item>
/// <item>Pop, PopBatch, PopMessages as this build writes them: [timestamp i64] before the [0 u32] or [max u32], the
/// leader's time, so that a pop moves the replicated clock as the group commands do (a delayed message falls due, a
/// lease ends) on a cluster that only pops. Entries of earlier builds, without it, decode and apply as before.</item>
/// <item>PublishMessages: [timestamp i64][count u32] then count times [header bytes u16][headers][payload length u32][payload],
/// the headers as <see cref="MessageHeaders"/> writes them. The timestamp (Unix ms) sits at a fixed place, right after
/// the topic, so the leader can stamp it into the bytes it proposes (<see cref="PublishStamper"/>).</item>
/// </list>
/// Strings are UTF-8, integers little-endian. Ops 1 to 5 are the string model (and decode exactly as before), 6 and 7
/// the binary one.
/// </summary>
public readonly partial record struct QueueCommand(QueueOp Op, string Topic, string? Message)
{
    private const int HeaderBytes = 1 + 2;

    /// <summary>The messages of a <see cref="QueueOp.PublishBatch"/>, in order; null for the other ops.</summary>
    public IReadOnlyList<string>? Messages { get; init; }

    /// <summary>Most messages a <see cref="QueueOp.PopBatch"/> or <see cref="QueueOp.PopMessages"/> removes; 0 for the other ops.</summary>
    public int Max { get; init; }

    /// <summary>The binary messages of a <see cref="QueueOp.PublishMessages"/>, in order; null for the other ops.</summary>
    public IReadOnlyList<QueueMessage>? Binary { get; init; }

    /// <summary>The leader's time in a stamped command (a <see cref="QueueOp.PublishMessages"/>'s publish time, a pop's or a group command's now; Unix ms); 0 when not stamped.</summary>
    public long TimestampMs { get; init; }

    /// <summary>The consumer group of a receive, ack, nack, extend or group creation; null for the other ops.</summary>
    public string? Group { get; init; }

    /// <summary>The lease of a receive or extend, in milliseconds; the delay of a nack.</summary>
    public long DurationMs { get; init; }

    /// <summary>The receipts of an ack, nack or extend; null for the other ops.</summary>
    public IReadOnlyList<Receipt>? Receipts { get; init; }

    /// <summary>The error a nack reports (kept with the message, shown when it is dead-lettered); null for none.</summary>
    public string? Error { get; init; }

    /// <summary>A ConfigureTopic's max_deliveries (0 keeps the current value, or the default on creation).</summary>
    public int MaxDeliveries { get; init; }

    /// <summary>Whether a ConfigureTopic creates a missing topic (else it answers NoSuchTopic).</summary>
    public bool CreateIfMissing { get; init; }

    /// <summary>Where a CreateGroup's group starts.</summary>
    public GroupStart Start { get; init; }

    /// <summary>A ConfigureTopic's dedup_window_ms (0: ids not remembered); null keeps the current value, or the default on creation.</summary>
    public long? DedupWindowMs { get; init; }

    /// <summary>A ConfigureTopic's retention settings (each null keeps the current value); null changes none.</summary>
    public TopicRetention? Retention { get; init; }

    /// <summary>A <see cref="QueueOp.SetLimits"/>'s new bounds; null for the other ops.</summary>
    public QueueBoundsChange? Bounds { get; init; }

    /// <summary>Changes the queue-wide bounds: the values <paramref name="change"/> sets, the others kept.</summary>
    public static QueueCommand SetLimits(QueueBoundsChange change) => new(QueueOp.SetLimits, "", null) { Bounds = change };

    private const int SetLimitsBytes = HeaderBytes + 4 * 8;

    private byte[] EncodeSetLimits()
    {
        var change = Bounds ?? throw new ArgumentException("a SetLimits needs its bounds");
        var buffer = new byte[SetLimitsBytes];
        buffer[0] = (byte)QueueOp.SetLimits;
        var rest = buffer.AsSpan(HeaderBytes);
        foreach (var value in (ReadOnlySpan<long?>)[change.MaxBytes, change.MaxMessages, change.MaxTopicBytes, change.MaxTopicMessages])
        {
            BinaryPrimitives.WriteInt64LittleEndian(rest, value ?? -1);
            rest = rest[8..];
        }
        return buffer;
    }

    private static bool TryDecodeSetLimits(ReadOnlySpan<byte> data, out QueueCommand command)
    {
        command = default;
        if (data.Length != SetLimitsBytes || BinaryPrimitives.ReadUInt16LittleEndian(data[1..]) != 0) return false;
        var values = new long?[4];
        for (int i = 0; i < values.Length; i++)
        {
            var value = BinaryPrimitives.ReadInt64LittleEndian(data[(HeaderBytes + 8 * i)..]);
            values[i] = value == -1 ? null : value;
        }
        command = SetLimits(new QueueBoundsChange(values[0], values[1], values[2], values[3]));
        return true;
    }

    /// <summary>Where a stamped command's timestamp lies in its encoding (<see cref="IsStamped"/>; a pop of an earlier build has none), or -1 for other bytes.</summary>
    public static int TimestampPosition(ReadOnlySpan<byte> encoded)
    {
        if (encoded.Length < HeaderBytes || !IsStamped((QueueOp)encoded[0])) return -1;
        var at = HeaderBytes + BinaryPrimitives.ReadUInt16LittleEndian(encoded[1..]);
        return encoded.Length >= at + 8 + (encoded[0] == (byte)QueueOp.PublishMessages ? 4 : 0) ? at : -1;
    }

    /// <summary>Whether commands of <paramref name="op"/> carry the leader's time right after the topic.</summary>
    public static bool IsStamped(QueueOp op) =>
        op is QueueOp.PublishMessages or QueueOp.Pop or QueueOp.PopBatch or QueueOp.PopMessages or >= QueueOp.ConfigureTopic and <= QueueOp.ReceiveAck;

    private static bool IsPop(QueueOp op) => op is QueueOp.Pop or QueueOp.PopBatch or QueueOp.PopMessages;

    /// <summary>Length of a <see cref="QueueOp.PublishBatch"/> command of <paramref name="count"/> messages of <paramref name="messageBytes"/> UTF-8 bytes in all.</summary>
    public static long PublishBatchLength(int topicBytes, int count, long messageBytes) => HeaderBytes + topicBytes + 4L + 4L * count + messageBytes;

    /// <summary>
    /// Writes the start of a <see cref="QueueOp.PublishBatch"/> command (op, topic, count) and returns its length: the
    /// caller writes the <paramref name="count"/> messages after it, each as [length u32][UTF-8] (<see cref="WriteBatchMessageLength"/>),
    /// so a batch goes from a request straight into the command's bytes.
    /// </summary>
    public static int WritePublishBatchStart(Span<byte> destination, string topic, int count)
    {
        var topicBytes = Encoding.UTF8.GetByteCount(topic);
        if (topicBytes > ushort.MaxValue) throw new ArgumentException("topic name too long");
        destination[0] = (byte)QueueOp.PublishBatch;
        BinaryPrimitives.WriteUInt16LittleEndian(destination[1..], (ushort)topicBytes);
        Encoding.UTF8.GetBytes(topic, destination.Slice(HeaderBytes, topicBytes));
        BinaryPrimitives.WriteUInt32LittleEndian(destination[(HeaderBytes + topicBytes)..], (uint)count);
        return HeaderBytes + topicBytes + 4;
    }

    /// <summary>Writes a batch message's length prefix; the message's UTF-8 bytes follow it.</summary>
    public static void WriteBatchMessageLength(Span<byte> destination, int length) =>
        BinaryPrimitives.WriteUInt32LittleEndian(destination, (uint)length);

    /// <summary>Whether <paramref name="data"/> is (or claims to be) a <see cref="QueueOp.PublishBatch"/> command.</summary>
    public static bool IsPublishBatch(ReadOnlySpan<byte> data) => !data.IsEmpty && data[0] == (byte)QueueOp.PublishBatch;

    /// <summary>
    /// Reads a <see cref="QueueOp.PublishBatch"/> command without decoding its messages: the topic (strict UTF-8),
    /// the count and the bytes holding the messages, to walk with <see cref="TryReadBatchMessage"/>. False when
    /// the header is malformed.
    /// </summary>
    public static bool TryReadPublishBatch(ReadOnlySpan<byte> data, out string topic, out uint count, out ReadOnlySpan<byte> messages)
    {
        topic = "";
        count = 0;
        messages = default;
        if (!IsPublishBatch(data) || data.Length < HeaderBytes + 4) return false;
        int topicLength = BinaryPrimitives.ReadUInt16LittleEndian(data[1..]);
        if (data.Length < HeaderBytes + topicLength + 4) return false;
        try
        {
            topic = new UTF8Encoding(false, true).GetString(data.Slice(HeaderBytes, topicLength));
        }
        catch (DecoderFallbackException)
        {
            return false;
        }
        count = BinaryPrimitives.ReadUInt32LittleEndian(data[(HeaderBytes + topicLength)..]);
        messages = data[(HeaderBytes + topicLength + 4)..];
        return true;
    }

    /// <summary>Takes the next [length u32][bytes] message off <paramref name="rest"/>; false when it runs past the end.</summary>
    public static bool TryReadBatchMessage(ref ReadOnlySpan<byte> rest, out ReadOnlySpan<byte> message)
    {
        message = default;
        if (rest.Length < 4) return false;
        var length = BinaryPrimitives.ReadUInt32LittleEndian(rest);
        if (length > (uint)rest.Length - 4) return false;
        message = rest.Slice(4, (int)length);
        rest = rest[(4 + (int)length)..];
        return true;
    }

    public static QueueCommand CreateTopic(string topic) => new(QueueOp.CreateTopic, topic, null);

    public static QueueCommand Publish(string topic, string message) => new(QueueOp.Publish, topic, message);

    public static QueueCommand Pop(string topic) => new(QueueOp.Pop, topic, null);

    /// <summary>Appends all <paramref name="messages"/> in order, or none of them.</summary>
    public static QueueCommand PublishBatch(string topic, IReadOnlyList<string> messages) =>
        new(QueueOp.PublishBatch, topic, null) { Messages = messages };

    /// <summary>Removes up to <paramref name="max"/> of the oldest messages.</summary>
    public static QueueCommand PopBatch(string topic, int max) => new(QueueOp.PopBatch, topic, null) { Max = max };

    /// <summary>
    /// Appends all <paramref name="messages"/> in order, or none of them. <paramref name="timestampMs"/> is normally
    /// left 0 and stamped by the leader when it proposes the command.
    /// </summary>
    public static QueueCommand PublishMessages(string topic, IReadOnlyList<QueueMessage> messages, long timestampMs = 0) =>
        new(QueueOp.PublishMessages, topic, null) { Binary = messages, TimestampMs = timestampMs };

    /// <summary>Removes up to <paramref name="max"/> of the oldest messages, answered with their offsets, times and headers.</summary>
    public static QueueCommand PopMessages(string topic, int max) => new(QueueOp.PopMessages, topic, null) { Max = max };

    public byte[] Encode()
    {
        if (Op == QueueOp.PublishExtended) return EncodePublishExtended();
        if (Op == QueueOp.SetLimits) return EncodeSetLimits();
        if (Op >= QueueOp.ConfigureTopic) return EncodeGroupOp();
        var topicBytes = Encoding.UTF8.GetByteCount(Topic);
        if (topicBytes > ushort.MaxValue) throw new ArgumentException("topic name too long");
        var length = HeaderBytes + topicBytes + 4L;
        if (IsPop(Op)) length += 8;
        if (Op == QueueOp.PublishMessages)
        {
            if (Binary is null) throw new ArgumentException("a binary publish needs its messages");
            length += 8;
            foreach (var m in Binary)
            {
                var headers = MessageHeaders.EncodedBytes(m.Headers);
                if (headers > ushort.MaxValue) throw new ArgumentException("headers too large to encode");
                length += 2 + headers + 4 + m.Payload.Length;
            }
        }
        else if (Op == QueueOp.PublishBatch)
        {
            if (Messages is null) throw new ArgumentException("a batch publish needs its messages");
            foreach (var m in Messages) length += 4 + Encoding.UTF8.GetByteCount(m);
        }
        else if (Message is not null)
        {
            length += Encoding.UTF8.GetByteCount(Message);
        }
        if (length > Array.MaxLength) throw new ArgumentException("command too large to encode");
        if (Op is QueueOp.PopBatch or QueueOp.PopMessages && Max < 0) throw new ArgumentException("a batch pop's max must not be negative");

        var buffer = new byte[length];
        var span = buffer.AsSpan();
        span[0] = (byte)Op;
        BinaryPrimitives.WriteUInt16LittleEndian(span[1..], (ushort)topicBytes);
        Encoding.UTF8.GetBytes(Topic, span.Slice(HeaderBytes, topicBytes));
        var rest = span[(HeaderBytes + topicBytes)..];
        if (IsPop(Op))
        {
            BinaryPrimitives.WriteInt64LittleEndian(rest, TimestampMs);
            rest = rest[8..];
        }
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
            case QueueOp.PopBatch or QueueOp.PopMessages:
                BinaryPrimitives.WriteUInt32LittleEndian(rest, (uint)Max);
                break;
            case QueueOp.PublishMessages:
                BinaryPrimitives.WriteInt64LittleEndian(rest, TimestampMs);
                BinaryPrimitives.WriteUInt32LittleEndian(rest[8..], (uint)Binary!.Count);
                rest = rest[12..];
                foreach (var m in Binary)
                {
                    var headers = MessageHeaders.Write(rest[2..], m.Headers);
                    BinaryPrimitives.WriteUInt16LittleEndian(rest, (ushort)headers);
                    rest = rest[(2 + headers)..];
                    BinaryPrimitives.WriteUInt32LittleEndian(rest, (uint)m.Payload.Length);
                    m.Payload.Span.CopyTo(rest[4..]);
                    rest = rest[(4 + m.Payload.Length)..];
                }
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
        if (data.Length >= HeaderBytes && data[0] == (byte)QueueOp.PublishExtended) return TryDecodePublishExtended(data, out command);
        if (data.Length >= HeaderBytes && data[0] == (byte)QueueOp.SetLimits) return TryDecodeSetLimits(data, out command);
        if (data.Length >= HeaderBytes && data[0] is >= (byte)QueueOp.ConfigureTopic and <= (byte)QueueOp.Redrive or (byte)QueueOp.DeleteGroup or (byte)QueueOp.ReceiveAck)
            return TryDecodeGroupOp(data, out command);
        if (data.Length < HeaderBytes + 4 || data[0] is < (byte)QueueOp.CreateTopic or > (byte)QueueOp.PopMessages) return false;
        var op = (QueueOp)data[0];
        int topicLength = BinaryPrimitives.ReadUInt16LittleEndian(data[1..]);
        if (data.Length < HeaderBytes + topicLength + 4) return false;
        if (op == QueueOp.PublishMessages) return TryDecodeMessages(data, topicLength, out command);
        var rest = data[(HeaderBytes + topicLength)..];
        long timestamp = 0;
        if (IsPop(op) && rest.Length == 8 + 4)
        {
            timestamp = BinaryPrimitives.ReadInt64LittleEndian(rest);
            rest = rest[8..];
        }
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
                case QueueOp.PopBatch or QueueOp.PopMessages:
                    if (!rest.IsEmpty || value > int.MaxValue) return false;
                    command = (op == QueueOp.PopBatch ? PopBatch(topic, (int)value) : PopMessages(topic, (int)value)) with { TimestampMs = timestamp };
                    return true;
                default:
                    if (value != 0 || !rest.IsEmpty) return false;
                    command = new QueueCommand(op, topic, null) { TimestampMs = timestamp };
                    return true;
            }
        }
        catch (DecoderFallbackException)
        {
            return false;
        }
    }

    private static bool TryDecodeMessages(ReadOnlySpan<byte> data, int topicLength, out QueueCommand command)
    {
        command = default;
        var rest = data[(HeaderBytes + topicLength)..];
        if (rest.Length < 12) return false;
        var timestamp = BinaryPrimitives.ReadInt64LittleEndian(rest);
        var count = BinaryPrimitives.ReadUInt32LittleEndian(rest[8..]);
        rest = rest[12..];
        // Each message takes at least its two lengths (6 bytes): a count the bytes cannot hold is refused first.
        if (count > (uint)rest.Length / 6) return false;
        string topic;
        try
        {
            topic = new UTF8Encoding(false, true).GetString(data.Slice(HeaderBytes, topicLength));
        }
        catch (DecoderFallbackException)
        {
            return false;
        }
        var messages = new QueueMessage[count];
        for (int i = 0; i < messages.Length; i++)
        {
            if (rest.Length < 2) return false;
            int headerBytes = BinaryPrimitives.ReadUInt16LittleEndian(rest);
            if (rest.Length < 2 + headerBytes + 4) return false;
            if (!MessageHeaders.TryRead(rest.Slice(2, headerBytes), out var headers)) return false;
            rest = rest[(2 + headerBytes)..];
            var length = BinaryPrimitives.ReadUInt32LittleEndian(rest);
            if (length > (uint)rest.Length - 4) return false;
            messages[i] = new QueueMessage(rest.Slice(4, (int)length).ToArray(), headers);
            rest = rest[(4 + (int)length)..];
        }
        if (!rest.IsEmpty) return false;
        command = PublishMessages(topic, messages, timestamp);
        return true;
    }

    /// <summary>Value equality, batch messages compared one by one.</summary>
    public bool Equals(QueueCommand other) =>
        Op == other.Op && Max == other.Max && TimestampMs == other.TimestampMs && string.Equals(Topic, other.Topic, StringComparison.Ordinal)
        && GroupFieldsEqual(other)
        && (ReferenceEquals(Binary, other.Binary) || (Binary is not null && other.Binary is not null && Binary.SequenceEqual(other.Binary)))
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

    /// <summary>A consumer group of that name exists already.</summary>
    GroupExists = 6,

    /// <summary>The topic has no consumer group of that name.</summary>
    NoSuchGroup = 7,

    /// <summary>
    /// The publish would take the topic past its own <c>max_messages</c> or <c>max_bytes</c> (overflow
    /// <c>reject-publish</c>), or is larger than they allow at all; nothing was stored.
    /// </summary>
    TopicFull = 8,

    /// <summary>The group is the topic's last: a topic keeps at least one (delete the topic instead).</summary>
    LastGroup = 9,
}

/// <summary>
/// A command's result: <see cref="Message"/> is set for a successful pop, <see cref="Count"/> for a successful batch
/// publish (messages appended), <see cref="Messages"/> for a successful batch pop (possibly empty). For the binary
/// ops: a successful <see cref="QueueOp.PublishMessages"/> sets <see cref="Count"/> and <see cref="FirstOffset"/>
/// (the offset of its first message; the others follow one by one), a successful <see cref="QueueOp.PopMessages"/>
/// sets <see cref="Delivered"/> (possibly empty).
/// </summary>
public sealed record QueueResult(QueueStatus Status, string? Message = null)
{
    public static readonly QueueResult Ok = new(QueueStatus.Ok);

    public int Count { get; init; }

    public IReadOnlyList<string>? Messages { get; init; }

    /// <summary>The offset a binary publish's first message got; null for the other results.</summary>
    public ulong? FirstOffset { get; init; }

    /// <summary>The messages a binary pop removed, with their offsets, publish times and headers; null for the other results.</summary>
    public IReadOnlyList<QueueMessage>? Delivered { get; init; }

    /// <summary>The receipts an ack, nack, extend or receive-ack refused as no longer current (as given, tags included); null for the other results.</summary>
    public IReadOnlyList<Receipt>? Stale { get; init; }

    /// <summary>The tag of the receipts of <see cref="Delivered"/> for a receive or receive-ack (<see cref="Receipt.TagOf"/>); null for the other results.</summary>
    public ulong? ReceiptTag { get; init; }

    /// <summary>
    /// The offset of each message of a successful <see cref="QueueOp.PublishExtended"/>, in order: where it was stored,
    /// or for a duplicate where its id was stored before. <see cref="Count"/> is then the messages stored, so
    /// <c>Offsets.Count - Count</c> are duplicates. Null for the other results.
    /// </summary>
    public IReadOnlyList<ulong>? Offsets { get; init; }

    public bool Success => Status == QueueStatus.Ok;

    /// <summary>Value equality, popped messages compared one by one.</summary>
    public bool Equals(QueueResult? other) =>
        other is not null && Status == other.Status && Count == other.Count && string.Equals(Message, other.Message, StringComparison.Ordinal)
        && FirstOffset == other.FirstOffset && ReceiptTag == other.ReceiptTag
        && (ReferenceEquals(Offsets, other.Offsets) || (Offsets is not null && other.Offsets is not null && Offsets.SequenceEqual(other.Offsets)))
        && (ReferenceEquals(Stale, other.Stale) || (Stale is not null && other.Stale is not null && Stale.SequenceEqual(other.Stale)))
        && (ReferenceEquals(Delivered, other.Delivered)
            || (Delivered is not null && other.Delivered is not null && Delivered.SequenceEqual(other.Delivered)))
        && (ReferenceEquals(Messages, other.Messages)
            || (Messages is not null && other.Messages is not null && Messages.SequenceEqual(other.Messages, StringComparer.Ordinal)));

    public override int GetHashCode() => HashCode.Combine(Status, Message, Count, Messages?.Count);
}

using System.Buffers.Binary;
using System.Text;

namespace RaftMQ.Queue;

/// <summary>Where a new consumer group starts.</summary>
public enum GroupStart : byte
{
    /// <summary>At the topic's oldest retained message (its head).</summary>
    Earliest = 0,

    /// <summary>At the topic's tail: only messages published from now on.</summary>
    Latest = 1,
}

/// <summary>
/// The consumer-group commands (ops 8 to 15, 17 and 18). Each is <c>[op u8][topic length u16][topic][timestamp i64]</c>, the
/// timestamp at the same fixed place as a binary publish's so the leader stamps it (<see cref="PublishStamper"/>),
/// then per op:
/// <list type="bullet">
/// <item>ConfigureTopic: [create u8 (1: create when missing)][max_deliveries i32 (0: keep)], then optionally
/// [dedup_window_ms i64] (absent: keep; commands written before deduplication end before it), then optionally the
/// retention settings [max_messages i64][max_bytes i64][max_age_ms i64] (−1: keep; 0: unlimited)[overflow u8]
/// [expire u8] (0: keep, else the enum's value + 1), with the dedup window −1 for keep when they are present;</item>
/// <item>DeleteTopic: nothing;</item>
/// <item>CreateGroup: [group][start u8]; DeleteGroup (op 17): [group];</item>
/// <item>Receive: [group][max u32][lease_ms i64]; ReceiveAck (op 18): [group][max u32][lease_ms i64][receipts] (the
/// receipts acked first, then the receive, in one entry);</item>
/// <item>Ack: [group][receipts]; Nack: [group][delay_ms i64][error length u16][error][receipts]; Extend: [group][lease_ms i64][receipts];</item>
/// <item>Redrive: [max u32];</item>
/// </list>
/// a group being [length u8][UTF-8], receipts [count u32] then count times [offset u64][delivery i32], or, when they
/// carry their tags (<see cref="Receipt.Tag"/>, as this build writes them), [count u32 | 0x80000000] then count times
/// [offset u64][delivery i32][tag u64]. The receipts of one command all carry their tag or none does.
/// </summary>
public readonly partial record struct QueueCommand
{
    public static QueueCommand ConfigureTopic(
        string topic, int maxDeliveries, bool createIfMissing = true, long? dedupWindowMs = null, TopicRetention? retention = null) =>
        new(QueueOp.ConfigureTopic, topic, null)
        {
            MaxDeliveries = maxDeliveries, CreateIfMissing = createIfMissing, DedupWindowMs = dedupWindowMs,
            Retention = retention is null || retention.IsEmpty ? null : retention,
        };

    /// <summary>Bytes of the optional retention part of a ConfigureTopic.</summary>
    private const int RetentionBytes = 8 * 3 + 2;

    public static QueueCommand DeleteTopic(string topic) => new(QueueOp.DeleteTopic, topic, null);

    public static QueueCommand CreateGroup(string topic, string group, GroupStart start) =>
        new(QueueOp.CreateGroup, topic, null) { Group = group, Start = start };

    public static QueueCommand DeleteGroup(string topic, string group, long timestampMs = 0) =>
        new(QueueOp.DeleteGroup, topic, null) { Group = group, TimestampMs = timestampMs };

    /// <summary>Leases up to <paramref name="max"/> messages for <paramref name="leaseMs"/> ms. <paramref name="timestampMs"/> is normally stamped by the leader.</summary>
    public static QueueCommand Receive(string topic, string group, int max, long leaseMs, long timestampMs = 0) =>
        new(QueueOp.Receive, topic, null) { Group = group, Max = max, DurationMs = leaseMs, TimestampMs = timestampMs };

    /// <summary>
    /// Acks <paramref name="receipts"/>, then leases up to <paramref name="max"/> messages for <paramref name="leaseMs"/> ms,
    /// in one entry. <paramref name="timestampMs"/> is normally stamped by the leader.
    /// </summary>
    public static QueueCommand ReceiveAck(string topic, string group, int max, long leaseMs, IReadOnlyList<Receipt> receipts, long timestampMs = 0) =>
        new(QueueOp.ReceiveAck, topic, null) { Group = group, Max = max, DurationMs = leaseMs, Receipts = receipts, TimestampMs = timestampMs };

    public static QueueCommand Ack(string topic, string group, IReadOnlyList<Receipt> receipts, long timestampMs = 0) =>
        new(QueueOp.Ack, topic, null) { Group = group, Receipts = receipts, TimestampMs = timestampMs };

    public static QueueCommand Nack(string topic, string group, IReadOnlyList<Receipt> receipts, long delayMs, string? error, long timestampMs = 0) =>
        new(QueueOp.Nack, topic, null) { Group = group, Receipts = receipts, DurationMs = delayMs, Error = string.IsNullOrEmpty(error) ? null : error, TimestampMs = timestampMs };

    public static QueueCommand Extend(string topic, string group, IReadOnlyList<Receipt> receipts, long leaseMs, long timestampMs = 0) =>
        new(QueueOp.Extend, topic, null) { Group = group, Receipts = receipts, DurationMs = leaseMs, TimestampMs = timestampMs };

    public static QueueCommand Redrive(string topic, int max, long timestampMs = 0) =>
        new(QueueOp.Redrive, topic, null) { Max = max, TimestampMs = timestampMs };

    private bool GroupFieldsEqual(QueueCommand other) =>
        string.Equals(Group, other.Group, StringComparison.Ordinal) && DurationMs == other.DurationMs
        && string.Equals(Error, other.Error, StringComparison.Ordinal) && MaxDeliveries == other.MaxDeliveries
        && CreateIfMissing == other.CreateIfMissing && Start == other.Start && DedupWindowMs == other.DedupWindowMs
        && Equals(Retention, other.Retention) && Equals(Bounds, other.Bounds)
        && (ReferenceEquals(Receipts, other.Receipts) || (Receipts is not null && other.Receipts is not null && Receipts.SequenceEqual(other.Receipts)));

    private static bool HasGroup(QueueOp op) => op is QueueOp.CreateGroup or QueueOp.Receive or QueueOp.ReceiveAck or QueueOp.Ack or QueueOp.Nack or QueueOp.Extend or QueueOp.DeleteGroup;

    private static bool HasReceipts(QueueOp op) => op is QueueOp.Ack or QueueOp.Nack or QueueOp.Extend or QueueOp.ReceiveAck;

    /// <summary>The bit of a receipt count that says the receipts carry their tags (a count, at most int.MaxValue, never sets it).</summary>
    private const uint TaggedReceipts = 0x8000_0000;

    private byte[] EncodeGroupOp()
    {
        var topic = Encoding.UTF8.GetBytes(Topic);
        if (topic.Length > ushort.MaxValue) throw new ArgumentException("topic name too long");
        var group = HasGroup(Op) ? Encoding.UTF8.GetBytes(Group ?? throw new ArgumentException($"a {Op} needs its group")) : [];
        if (group.Length > byte.MaxValue) throw new ArgumentException("group name too long to encode");
        var error = Op == QueueOp.Nack && Error is not null ? Encoding.UTF8.GetBytes(Error) : [];
        if (error.Length > ushort.MaxValue) throw new ArgumentException("nack error too long to encode");
        var receipts = HasReceipts(Op) ? Receipts ?? throw new ArgumentException($"a {Op} needs its receipts") : [];
        if (Op is QueueOp.Receive or QueueOp.ReceiveAck or QueueOp.Redrive && Max < 0) throw new ArgumentException("max must not be negative");
        using var buffer = new MemoryStream();
        using (var w = new BinaryWriter(buffer, Encoding.UTF8, leaveOpen: true))
        {
            w.Write((byte)Op);
            w.Write((ushort)topic.Length);
            w.Write(topic);
            w.Write(TimestampMs);
            if (HasGroup(Op))
            {
                w.Write((byte)group.Length);
                w.Write(group);
            }
            switch (Op)
            {
                case QueueOp.ConfigureTopic:
                    w.Write((byte)(CreateIfMissing ? 1 : 0));
                    w.Write(MaxDeliveries);
                    if (Retention is { } retention)
                    {
                        w.Write(DedupWindowMs ?? -1);
                        w.Write(retention.MaxMessages ?? -1);
                        w.Write(retention.MaxBytes ?? -1);
                        w.Write(retention.MaxAgeMs ?? -1);
                        w.Write((byte)(retention.Overflow is { } o ? (byte)o + 1 : 0));
                        w.Write((byte)(retention.Expire is { } e ? (byte)e + 1 : 0));
                    }
                    else if (DedupWindowMs is { } window) w.Write(window);
                    break;
                case QueueOp.CreateGroup:
                    w.Write((byte)Start);
                    break;
                case QueueOp.Receive or QueueOp.ReceiveAck:
                    w.Write((uint)Max);
                    w.Write(DurationMs);
                    break;
                case QueueOp.Nack:
                    w.Write(DurationMs);
                    w.Write((ushort)error.Length);
                    w.Write(error);
                    break;
                case QueueOp.Extend:
                    w.Write(DurationMs);
                    break;
                case QueueOp.Redrive:
                    w.Write((uint)Max);
                    break;
            }
            if (HasReceipts(Op))
            {
                var tagged = receipts.Count > 0 && receipts[0].Tag is not null;
                w.Write((uint)receipts.Count | (tagged ? TaggedReceipts : 0));
                foreach (var r in receipts)
                {
                    if (r.Tag is not null != tagged) throw new ArgumentException("receipts with and without tags in one command");
                    w.Write(r.Offset);
                    w.Write(r.Delivery);
                    if (r.Tag is { } tag) w.Write(tag);
                }
            }
        }
        return buffer.ToArray();
    }

    private static bool TryDecodeGroupOp(ReadOnlySpan<byte> data, out QueueCommand command)
    {
        command = default;
        var op = (QueueOp)data[0];
        if (!TryReadStampedHead(data, 0, out var topic, out var timestamp, out var rest)) return false;
        var utf8 = new UTF8Encoding(false, true);
        try
        {
            var c = new QueueCommand(op, topic, null) { TimestampMs = timestamp };
            if (HasGroup(op))
            {
                if (rest.Length < 1 || rest.Length < 1 + rest[0]) return false;
                c = c with { Group = utf8.GetString(rest.Slice(1, rest[0])) };
                rest = rest[(1 + rest[0])..];
            }
            switch (op)
            {
                case QueueOp.ConfigureTopic:
                    if (rest.Length != 5 && rest.Length != 13 && rest.Length != 13 + RetentionBytes || rest[0] > 1) return false;
                    long? dedup = rest.Length >= 13 ? BinaryPrimitives.ReadInt64LittleEndian(rest[5..]) : null;
                    TopicRetention? retention = null;
                    if (rest.Length == 13 + RetentionBytes)
                    {
                        if (dedup == -1) dedup = null;
                        static long? Kept(long value) => value == -1 ? null : value;
                        var part = rest[13..];
                        retention = new TopicRetention(
                            Kept(BinaryPrimitives.ReadInt64LittleEndian(part)), Kept(BinaryPrimitives.ReadInt64LittleEndian(part[8..])),
                            Kept(BinaryPrimitives.ReadInt64LittleEndian(part[16..])),
                            part[24] == 0 ? null : (OverflowPolicy)(part[24] - 1), part[25] == 0 ? null : (ExpiryAction)(part[25] - 1));
                    }
                    command = c with
                    {
                        CreateIfMissing = rest[0] == 1, MaxDeliveries = BinaryPrimitives.ReadInt32LittleEndian(rest[1..]),
                        DedupWindowMs = dedup, Retention = retention,
                    };
                    return true;
                case QueueOp.DeleteTopic or QueueOp.DeleteGroup:
                    if (!rest.IsEmpty) return false;
                    command = c;
                    return true;
                case QueueOp.CreateGroup:
                    if (rest.Length != 1 || rest[0] > (byte)GroupStart.Latest) return false;
                    command = c with { Start = (GroupStart)rest[0] };
                    return true;
                case QueueOp.Receive:
                    if (rest.Length != 12) return false;
                    var max = BinaryPrimitives.ReadUInt32LittleEndian(rest);
                    if (max > int.MaxValue) return false;
                    command = c with { Max = (int)max, DurationMs = BinaryPrimitives.ReadInt64LittleEndian(rest[4..]) };
                    return true;
                case QueueOp.Redrive:
                    if (rest.Length != 4) return false;
                    var redrive = BinaryPrimitives.ReadUInt32LittleEndian(rest);
                    if (redrive > int.MaxValue) return false;
                    command = c with { Max = (int)redrive };
                    return true;
                case QueueOp.Nack:
                    if (rest.Length < 10) return false;
                    c = c with { DurationMs = BinaryPrimitives.ReadInt64LittleEndian(rest) };
                    int errorLength = BinaryPrimitives.ReadUInt16LittleEndian(rest[8..]);
                    rest = rest[10..];
                    if (rest.Length < errorLength) return false;
                    c = c with { Error = errorLength == 0 ? null : utf8.GetString(rest[..errorLength]) };
                    rest = rest[errorLength..];
                    break;
                case QueueOp.ReceiveAck:
                    if (rest.Length < 12) return false;
                    var most = BinaryPrimitives.ReadUInt32LittleEndian(rest);
                    if (most > int.MaxValue) return false;
                    c = c with { Max = (int)most, DurationMs = BinaryPrimitives.ReadInt64LittleEndian(rest[4..]) };
                    rest = rest[12..];
                    break;
                case QueueOp.Extend:
                    if (rest.Length < 8) return false;
                    c = c with { DurationMs = BinaryPrimitives.ReadInt64LittleEndian(rest) };
                    rest = rest[8..];
                    break;
            }
            // Ack, Nack, Extend, ReceiveAck: the receipts, exactly filling the rest.
            if (rest.Length < 4) return false;
            var count = BinaryPrimitives.ReadUInt32LittleEndian(rest);
            rest = rest[4..];
            var tagged = (count & TaggedReceipts) != 0;
            count &= ~TaggedReceipts;
            var size = tagged ? 20 : 12;
            if (count > (uint)(rest.Length / size) || (ulong)rest.Length != count * (ulong)size) return false;
            var receipts = new Receipt[count];
            for (int i = 0; i < receipts.Length; i++)
            {
                receipts[i] = new Receipt(BinaryPrimitives.ReadUInt64LittleEndian(rest), BinaryPrimitives.ReadInt32LittleEndian(rest[8..]))
                {
                    Tag = tagged ? BinaryPrimitives.ReadUInt64LittleEndian(rest[12..]) : null,
                };
                rest = rest[size..];
            }
            command = c with { Receipts = receipts };
            return true;
        }
        catch (DecoderFallbackException)
        {
            return false;
        }
    }
}

using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace RaftMQ.Queue;

/// <summary>
/// Names one delivery of a message to a consumer group: the message's offset, the delivery's number (1 for the
/// first), and the <see cref="Tag"/> of the group that made it. A later delivery of the same message has a higher
/// number, so a receipt of an earlier one is refused as stale: receipts fence deliveries. The tag names the topic, the
/// group and when the group was created, so a receipt is stale for every other group and topic, and for a group or
/// topic deleted and created again under the same name.
/// </summary>
public readonly record struct Receipt(ulong Offset, int Delivery)
{
    /// <summary>
    /// The group's tag (<see cref="TagOf"/>) the receipt was given with. Null in a command only when it was written by
    /// a build from before the state machine compared tags (the node that took the request had compared the names);
    /// such a receipt is not checked against its group's creation.
    /// </summary>
    public ulong? Tag { get; init; }

    /// <summary>
    /// The opaque text form: <c>r</c>, the offset and the delivery number in lowercase hexadecimal, joined by <c>-</c>,
    /// then with a tag <c>-</c> and the tag's 16 lowercase hexadecimal digits.
    /// </summary>
    public override string ToString() => Tag is { } tag
        ? string.Create(CultureInfo.InvariantCulture, $"r{Offset:x}-{Delivery:x}-{tag:x16}")
        : string.Create(CultureInfo.InvariantCulture, $"r{Offset:x}-{Delivery:x}");

    /// <summary>
    /// The tag of the receipts a group gives: a 64-bit FNV-1a hash of the UTF-8 topic name, a zero byte and the group
    /// name, then, when <paramref name="created"/> is not 0, a zero byte and <paramref name="created"/> (8 bytes,
    /// little-endian). <paramref name="created"/> is the log index of the entry that created the group (0 for a group
    /// restored from a snapshot written before groups recorded it, whose receipts keep the tags they had).
    /// </summary>
    public static ulong TagOf(string topic, string group, ulong created)
    {
        ArgumentNullException.ThrowIfNull(topic);
        ArgumentNullException.ThrowIfNull(group);
        var hash = Fnv(14695981039346656037UL, topic);
        hash = Fnv(hash, [0]);
        hash = Fnv(hash, group);
        if (created == 0) return hash;
        Span<byte> number = stackalloc byte[9];
        number[0] = 0;
        BinaryPrimitives.WriteUInt64LittleEndian(number[1..], created);
        return Fnv(hash, number);
    }

    private static ulong Fnv(ulong hash, string text)
    {
        Span<byte> bytes = Encoding.UTF8.GetMaxByteCount(text.Length) <= 1024 ? stackalloc byte[1024] : new byte[Encoding.UTF8.GetByteCount(text)];
        return Fnv(hash, bytes[..Encoding.UTF8.GetBytes(text, bytes)]);
    }

    private static ulong Fnv(ulong hash, ReadOnlySpan<byte> bytes)
    {
        foreach (var b in bytes)
        {
            hash ^= b;
            hash *= 1099511628211UL;
        }
        return hash;
    }

    /// <summary>
    /// Parses <see cref="ToString"/>'s forms exactly (no other spelling), with or without the tag; false for anything
    /// else, never throws.
    /// </summary>
    public static bool TryParse(string? text, out Receipt receipt)
    {
        receipt = default;
        if (text is null) return false;
        var first = text.IndexOf('-', StringComparison.Ordinal);
        var second = first < 0 ? -1 : text.IndexOf('-', first + 1);
        if (second < 0) return TryParseUntagged(text, out receipt);
        var hex = text.AsSpan(second + 1);
        if (hex.Length != 16 || !IsLowerHex(hex) || !TryParseUntagged(text[..second], out var untagged)) return false;
        receipt = untagged with { Tag = ulong.Parse(hex, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture) };
        return true;
    }

    private static bool TryParseUntagged(string text, out Receipt receipt)
    {
        receipt = default;
        if (text.Length < 4 || text.Length > 1 + 16 + 1 + 8 || text[0] != 'r') return false;
        var dash = text.IndexOf('-', 1);
        if (dash < 2 || dash == text.Length - 1) return false;
        var offset = text.AsSpan(1, dash - 1);
        var delivery = text.AsSpan(dash + 1);
        if (!Canonical(offset) || !Canonical(delivery)) return false;
        if (!ulong.TryParse(offset, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var o)) return false;
        if (!int.TryParse(delivery, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var d) || d < 1) return false;
        receipt = new Receipt(o, d);
        return true;
    }

    private static bool Canonical(ReadOnlySpan<char> hex) =>
        !hex.IsEmpty && hex.Length <= 16 && (hex.Length == 1 || hex[0] != '0') && IsLowerHex(hex);

    private static bool IsLowerHex(ReadOnlySpan<char> hex)
    {
        foreach (var c in hex)
        {
            if (c is not (>= '0' and <= '9' or >= 'a' and <= 'f')) return false;
        }
        return true;
    }
}

using System.Globalization;

namespace RaftMQ.Queue;

/// <summary>
/// Names one delivery of a message to a consumer group: the message's offset and the delivery's number (1 for the
/// first). A later delivery of the same message has a higher number, so a receipt of an earlier one is refused as
/// stale: receipts fence deliveries. Over HTTP it travels as an opaque string naming also the topic and group
/// (<see cref="Format"/>), so a receipt given to one group is stale for every other group and topic.
/// </summary>
public readonly record struct Receipt(ulong Offset, int Delivery)
{
    /// <summary>The opaque text form: <c>r</c>, the offset and the delivery number in lowercase hexadecimal, joined by <c>-</c>.</summary>
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"r{Offset:x}-{Delivery:x}");

    /// <summary>
    /// The text form given to consumers of <paramref name="group"/> of <paramref name="topic"/>: <see cref="ToString"/>
    /// followed by <c>-</c> and 16 lowercase hexadecimal digits, a 64-bit FNV-1a hash of the topic and group names.
    /// </summary>
    public string Format(string topic, string group) =>
        string.Create(CultureInfo.InvariantCulture, $"{this}-{Tag(topic, group):x16}");

    /// <summary>
    /// Parses <see cref="Format"/>'s form, or <see cref="ToString"/>'s (from before receipts named their group), exactly;
    /// false for anything else, never throws. <paramref name="tag"/> is the group tag, null for the earlier form.
    /// </summary>
    public static bool TryParse(string? text, out Receipt receipt, out ulong? tag)
    {
        tag = null;
        receipt = default;
        if (text is null) return false;
        var first = text.IndexOf('-', StringComparison.Ordinal);
        var second = first < 0 ? -1 : text.IndexOf('-', first + 1);
        if (second < 0) return TryParse(text, out receipt);
        var hex = text.AsSpan(second + 1);
        if (hex.Length != 16 || !IsLowerHex(hex) || !TryParse(text[..second], out receipt)) return false;
        tag = ulong.Parse(hex, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture);
        return true;
    }

    /// <summary>The group tag of <see cref="Format"/>: FNV-1a (64-bit) of the UTF-8 topic name, a zero byte, and the group name.</summary>
    public static ulong Tag(string topic, string group)
    {
        var hash = 14695981039346656037UL;
        foreach (var b in System.Text.Encoding.UTF8.GetBytes(topic + "\0" + group))
        {
            hash ^= b;
            hash *= 1099511628211UL;
        }
        return hash;
    }

    /// <summary>Parses <see cref="ToString"/>'s form exactly (no other spelling); false for anything else, never throws.</summary>
    public static bool TryParse(string? text, out Receipt receipt)
    {
        receipt = default;
        if (text is null || text.Length < 4 || text.Length > 1 + 16 + 1 + 8 || text[0] != 'r') return false;
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

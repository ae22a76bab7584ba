using System.Globalization;

namespace RaftMQ.Queue;

/// <summary>
/// Names one delivery of a message to a consumer group: the message's offset and the delivery's number (1 for the
/// first). A later delivery of the same message has a higher number, so a receipt of an earlier one is refused as
/// stale: receipts fence deliveries. Over HTTP it travels as an opaque string (<see cref="ToString"/>).
/// </summary>
public readonly record struct Receipt(ulong Offset, int Delivery)
{
    /// <summary>The opaque text form: <c>r</c>, the offset and the delivery number in lowercase hexadecimal, joined by <c>-</c>.</summary>
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"r{Offset:x}-{Delivery:x}");

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

    private static bool Canonical(ReadOnlySpan<char> hex)
    {
        if (hex.IsEmpty || hex.Length > 16 || (hex.Length > 1 && hex[0] == '0')) return false;
        foreach (var c in hex)
        {
            if (c is not (>= '0' and <= '9' or >= 'a' and <= 'f')) return false;
        }
        return true;
    }
}

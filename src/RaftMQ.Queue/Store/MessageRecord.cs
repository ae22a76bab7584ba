using System.Buffers.Binary;

namespace RaftMQ.Queue.Store;

/// <summary>
/// One message in a segment file (docs/queue-store.md, "Record format"), little-endian:
/// <code>
/// [length u32]       bytes after the checksum: 20 + header length + payload length
/// [crc32c u32]       CRC-32C of those bytes
/// [offset u64]       the message's sequence number in its topic
/// [timestamp i64]    the leader's publish time (Unix ms); 0 for a string command's message (it carries none)
/// [flags u16]        0; reserved for consumption state
/// [header length u16] the bytes of the headers (MessageHeaders' encoding), between this field and the payload
/// [headers][payload]
/// </code>
/// </summary>
internal static class MessageRecord
{
    /// <summary>The bytes of a record before its payload (with no headers).</summary>
    public const int OverheadBytes = 28;

    /// <summary>Length and checksum, the part not covered by the checksum.</summary>
    public const int PrefixBytes = 8;

    /// <summary>Offset, timestamp, flags and header length: the least a record's length field can say.</summary>
    public const int MinLength = OverheadBytes - PrefixBytes;

    /// <summary>
    /// Writes the record of <paramref name="payload"/> with its encoded <paramref name="headers"/> (at most 65 535
    /// bytes) at the start of <paramref name="destination"/>; returns its size.
    /// </summary>
    public static int Write(Span<byte> destination, ulong offset, long timestamp, ReadOnlySpan<byte> headers, ReadOnlySpan<byte> payload)
    {
        if (headers.Length > ushort.MaxValue) throw new ArgumentException("headers longer than a record holds", nameof(headers));
        var size = OverheadBytes + headers.Length + payload.Length;
        var record = destination[..size];
        BinaryPrimitives.WriteUInt32LittleEndian(record, (uint)(size - PrefixBytes));
        BinaryPrimitives.WriteUInt64LittleEndian(record[8..], offset);
        BinaryPrimitives.WriteInt64LittleEndian(record[16..], timestamp);
        BinaryPrimitives.WriteUInt16LittleEndian(record[24..], 0);
        BinaryPrimitives.WriteUInt16LittleEndian(record[26..], (ushort)headers.Length);
        headers.CopyTo(record[OverheadBytes..]);
        payload.CopyTo(record[(OverheadBytes + headers.Length)..]);
        BinaryPrimitives.WriteUInt32LittleEndian(record[4..], Crc32C.Compute(record[PrefixBytes..]));
        return size;
    }

    /// <summary>The whole record's size from its first 4 bytes, or -1 when the length field cannot be a record's.</summary>
    public static long SizeFromPrefix(ReadOnlySpan<byte> prefix)
    {
        var length = BinaryPrimitives.ReadUInt32LittleEndian(prefix);
        return length < MinLength ? -1 : PrefixBytes + (long)length;
    }

    /// <summary>
    /// Checks a whole record (its size already taken from <see cref="SizeFromPrefix"/>) and returns the payload's
    /// position in it; null with <paramref name="problem"/> set when the checksum, offset or header length is wrong.
    /// </summary>
    public static Range? Check(ReadOnlySpan<byte> record, ulong expectedOffset, out string? problem)
    {
        problem = null;
        var crc = BinaryPrimitives.ReadUInt32LittleEndian(record[4..]);
        if (Crc32C.Compute(record[PrefixBytes..]) != crc)
        {
            problem = "checksum mismatch";
            return null;
        }
        var offset = BinaryPrimitives.ReadUInt64LittleEndian(record[8..]);
        if (offset != expectedOffset)
        {
            problem = $"offset {offset} where {expectedOffset} was expected";
            return null;
        }
        var headerLength = BinaryPrimitives.ReadUInt16LittleEndian(record[26..]);
        if (OverheadBytes + headerLength > record.Length)
        {
            problem = "header length past the record's end";
            return null;
        }
        return new Range(OverheadBytes + headerLength, record.Length);
    }

    /// <summary>The publish time of a checked record.</summary>
    public static long Timestamp(ReadOnlySpan<byte> record) => BinaryPrimitives.ReadInt64LittleEndian(record[16..]);

    /// <summary>The encoded headers of a checked record (empty when it has none).</summary>
    public static ReadOnlySpan<byte> Headers(ReadOnlySpan<byte> record) =>
        record.Slice(OverheadBytes, BinaryPrimitives.ReadUInt16LittleEndian(record[26..]));

    /// <summary>The payload of a checked record.</summary>
    public static ReadOnlySpan<byte> Payload(ReadOnlySpan<byte> record) =>
        record[(OverheadBytes + BinaryPrimitives.ReadUInt16LittleEndian(record[26..]))..];
}

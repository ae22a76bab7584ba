using System.Buffers.Binary;
using RaftMQ.Raft;

namespace RaftMQ.Storage;

/// <summary>The byte layout of segment files (see docs/storage.md). All integers are little-endian.</summary>
internal static class WalFormat
{
    /// <summary>"RAFTMQWL" as a little-endian u64.</summary>
    public const ulong SegmentMagic = 0x4C57514D54464152;
    public const ushort Version = 1;
    public const int SegmentHeaderBytes = 32;

    // Record frame: crc32c (u32) over [length .. end of body], length (u32) of the body, body.
    public const int FrameBytes = 8;
    public const byte BatchRecord = 1;
    public const byte EntryRecord = 2;
    public const int BatchBodyBytes = 64;
    public const int BatchRecordBytes = FrameBytes + BatchBodyBytes;
    public const int EntryBodyHeaderBytes = 18;
    public const int EntryRecordOverhead = FrameBytes + EntryBodyHeaderBytes;

    /// <summary>Batch flag: every entry is discarded before this batch applies (a snapshot replaced the log).</summary>
    public const byte FlagReset = 1;

    /// <summary>Framing bytes a batch of one entry needs beyond the entry's data.</summary>
    public const int MaxFramingPerBatch = BatchRecordBytes + EntryRecordOverhead;

    /// <summary>Bytes a segment needs besides batches: its header and the state batch that opens it.</summary>
    public const int SegmentOverhead = SegmentHeaderBytes + BatchRecordBytes;

    public static string SegmentName(ulong sequence) => $"wal-{sequence:D16}.seg";

    public static bool TryParseSegmentName(string fileName, out ulong sequence)
    {
        sequence = 0;
        return fileName.Length == 24 && fileName.StartsWith("wal-", StringComparison.Ordinal)
            && fileName.EndsWith(".seg", StringComparison.Ordinal)
            && ulong.TryParse(fileName.AsSpan(4, 16), System.Globalization.NumberStyles.None, null, out sequence);
    }

    public static void WriteSegmentHeader(Span<byte> dst, ulong sequence)
    {
        dst[..SegmentHeaderBytes].Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(dst, SegmentMagic);
        BinaryPrimitives.WriteUInt16LittleEndian(dst[8..], Version);
        BinaryPrimitives.WriteUInt32LittleEndian(dst[12..], SegmentHeaderBytes);
        BinaryPrimitives.WriteUInt64LittleEndian(dst[16..], sequence);
        BinaryPrimitives.WriteUInt32LittleEndian(dst[28..], Crc32C.Compute(dst[..28]));
    }

    /// <summary>Checks a segment header; returns null when valid, else what is wrong.</summary>
    public static string? CheckSegmentHeader(ReadOnlySpan<byte> src, ulong expectedSequence)
    {
        if (src.Length < SegmentHeaderBytes) return $"file is {src.Length} bytes, shorter than the {SegmentHeaderBytes}-byte header";
        if (BinaryPrimitives.ReadUInt64LittleEndian(src) != SegmentMagic) return "bad magic number (not a RaftMQ segment)";
        if (BinaryPrimitives.ReadUInt32LittleEndian(src[28..]) != Crc32C.Compute(src[..28])) return "header checksum mismatch";
        var version = BinaryPrimitives.ReadUInt16LittleEndian(src[8..]);
        if (version != Version) return $"format version {version}, this build reads version {Version}";
        var seq = BinaryPrimitives.ReadUInt64LittleEndian(src[16..]);
        if (seq != expectedSequence) return $"header names sequence {seq}, file name says {expectedSequence}";
        return null;
    }

    /// <summary>The durable state and the shape of one batch, as its header record stores them.</summary>
    public readonly record struct BatchHeader(
        byte Flags, uint Count, ulong FirstIndex, HardState HardState, SnapshotMetadata Snapshot, ulong DurableEnd);

    public static void WriteBatch(Span<byte> dst, in BatchHeader h)
    {
        var body = dst.Slice(FrameBytes, BatchBodyBytes);
        body.Clear();
        body[0] = BatchRecord;
        body[1] = h.Flags;
        BinaryPrimitives.WriteUInt32LittleEndian(body[4..], h.Count);
        BinaryPrimitives.WriteUInt64LittleEndian(body[8..], h.FirstIndex);
        BinaryPrimitives.WriteUInt64LittleEndian(body[16..], h.HardState.Term);
        BinaryPrimitives.WriteUInt64LittleEndian(body[24..], h.HardState.Vote);
        BinaryPrimitives.WriteUInt64LittleEndian(body[32..], h.HardState.Commit);
        BinaryPrimitives.WriteUInt64LittleEndian(body[40..], h.Snapshot.Index);
        BinaryPrimitives.WriteUInt64LittleEndian(body[48..], h.Snapshot.Term);
        BinaryPrimitives.WriteUInt64LittleEndian(body[56..], h.DurableEnd);
        Seal(dst, BatchBodyBytes);
    }

    public static BatchHeader ReadBatch(ReadOnlySpan<byte> body) => new(
        body[1],
        BinaryPrimitives.ReadUInt32LittleEndian(body[4..]),
        BinaryPrimitives.ReadUInt64LittleEndian(body[8..]),
        new HardState(
            BinaryPrimitives.ReadUInt64LittleEndian(body[16..]),
            BinaryPrimitives.ReadUInt64LittleEndian(body[24..]),
            BinaryPrimitives.ReadUInt64LittleEndian(body[32..])),
        new SnapshotMetadata(BinaryPrimitives.ReadUInt64LittleEndian(body[40..]), BinaryPrimitives.ReadUInt64LittleEndian(body[48..])),
        BinaryPrimitives.ReadUInt64LittleEndian(body[56..]));

    public static int EntryRecordBytes(in Entry e) => EntryRecordOverhead + e.Data.Length;

    public static void WriteEntry(Span<byte> dst, in Entry e)
    {
        var len = EntryBodyHeaderBytes + e.Data.Length;
        var body = dst.Slice(FrameBytes, len);
        body[0] = EntryRecord;
        body[1] = (byte)e.Type;
        BinaryPrimitives.WriteUInt64LittleEndian(body[2..], e.Index);
        BinaryPrimitives.WriteUInt64LittleEndian(body[10..], e.Term);
        e.Data.Span.CopyTo(body[EntryBodyHeaderBytes..]);
        Seal(dst, len);
    }

    public static ulong EntryIndex(ReadOnlySpan<byte> body) => BinaryPrimitives.ReadUInt64LittleEndian(body[2..]);

    public static ulong EntryTerm(ReadOnlySpan<byte> body) => BinaryPrimitives.ReadUInt64LittleEndian(body[10..]);

    public static EntryType EntryKind(ReadOnlySpan<byte> body) => (EntryType)body[1];

    private static void Seal(Span<byte> dst, int bodyLength)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(dst[4..], (uint)bodyLength);
        BinaryPrimitives.WriteUInt32LittleEndian(dst, Crc32C.Compute(dst.Slice(4, 4 + bodyLength)));
    }

    public enum Check
    {
        Valid,
        /// <summary>The frame runs past the available bytes.</summary>
        Short,
        /// <summary>The frame is complete but wrong (checksum, length or type).</summary>
        Bad,
    }

    /// <summary>
    /// Validates the record at the start of <paramref name="src"/>. On <see cref="Check.Valid"/>, <paramref name="length"/>
    /// is the whole record's length; on <see cref="Check.Short"/>, the length the frame claims (0 if unknown).
    /// </summary>
    public static Check CheckRecord(ReadOnlySpan<byte> src, int maxBody, out int length, out string problem)
    {
        length = 0;
        problem = "";
        if (src.Length < FrameBytes)
        {
            problem = "record frame cut short";
            return Check.Short;
        }
        var bodyLength = BinaryPrimitives.ReadUInt32LittleEndian(src[4..]);
        if (bodyLength < 1 || bodyLength > (uint)maxBody)
        {
            problem = $"record length {bodyLength} outside [1, {maxBody}]";
            return Check.Bad;
        }
        length = FrameBytes + (int)bodyLength;
        if (src.Length < length)
        {
            problem = $"record of {length} bytes cut short at {src.Length}";
            return Check.Short;
        }
        if (BinaryPrimitives.ReadUInt32LittleEndian(src) != Crc32C.Compute(src.Slice(4, 4 + (int)bodyLength)))
        {
            problem = "record checksum mismatch";
            return Check.Bad;
        }
        var body = src.Slice(FrameBytes, (int)bodyLength);
        var ok = body[0] switch
        {
            BatchRecord => bodyLength == BatchBodyBytes,
            EntryRecord => bodyLength >= EntryBodyHeaderBytes && body[1] <= (byte)EntryType.Configuration,
            _ => false,
        };
        if (!ok)
        {
            problem = $"record type {body[0]} with length {bodyLength} is not valid";
            return Check.Bad;
        }
        return Check.Valid;
    }
}

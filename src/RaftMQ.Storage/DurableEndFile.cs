using System.Buffers.Binary;
using RaftMQ.Raft;

namespace RaftMQ.Storage;

/// <summary>
/// A point the log had certainly been fsynced through: <see cref="Offset"/> bytes of segment <see cref="Segment"/>
/// (and every segment before it), where the log ended at <see cref="LastIndex"/> with <see cref="HardState"/>.
/// </summary>
internal readonly record struct DurableEnd(ulong Segment, long Offset, ulong LastIndex, HardState HardState)
{
    /// <summary>The claim of a log that has no segment yet.</summary>
    public static DurableEnd None => default;
}

/// <summary>
/// The DURABLE file next to the segments: the latest <see cref="DurableEnd"/>, so that recovery can tell a torn,
/// never-synced tail (cut it) from acknowledged data that is missing or damaged (refuse to start). It is written
/// after each WAL fsync without an fsync of its own (no second fsync per Save): it may lag behind the log after a
/// power cut, but it never claims more than is durable, because each claim describes bytes already fsynced.
/// It is fsynced when a segment rolls, on <see cref="DurableLogStorage.Sync"/> and on close.
/// <para>
/// Two copies 4 KiB apart (different pages), each with a generation number and a CRC; the valid copy with the higher
/// generation counts. Between two fsyncs of the file every write goes to the same copy — the one not holding the
/// last fsynced claim — so a power cut can tear at most that copy, never both; each fsync swaps the roles. Layout in
/// docs/storage.md.
/// </para>
/// </summary>
internal sealed class DurableEndFile : IDisposable
{
    public const string FileName = "DURABLE";

    /// <summary>"RAFTMQDE" as a little-endian u64.</summary>
    private const ulong Magic = 0x4544514D54464152;
    private const ushort Version = 1;
    private const int CopyBytes = 80;
    private const int CopyStride = 4096;

    private readonly IStorageFile _file;
    private readonly byte[] _buffer = new byte[CopyBytes];
    private ulong _generation;
    private bool _unsynced;
    private int _syncedSlot; // the copy holding the last fsynced claim: never written until the other one is fsynced

    private DurableEndFile(string path, IStorageFile file, ulong generation, DurableEnd current, int syncedSlot)
    {
        Path = path;
        _file = file;
        _generation = generation;
        Current = current;
        _syncedSlot = syncedSlot;
    }

    public string Path { get; }

    /// <summary>The latest claim written (not necessarily fsynced).</summary>
    public DurableEnd Current { get; private set; }

    /// <summary>Reads the file in <paramref name="directory"/>; null when there is none.</summary>
    /// <exception cref="StorageCorruptedException">Both copies are damaged.</exception>
    public static DurableEndFile? Open(IStorageFileSystem fs, string directory)
    {
        var path = System.IO.Path.Combine(directory, FileName);
        fs.Delete(path + ".tmp"); // an interrupted Create
        if (!fs.FileExists(path)) return null;
        var file = fs.Open(path, create: false);
        var copy = new byte[CopyBytes];
        (ulong Generation, DurableEnd End, int Slot)? best = null;
        for (var slot = 0; slot < 2; slot++)
        {
            var n = file.Read(slot * CopyStride, copy);
            if (n == CopyBytes && TryDecode(copy, out var generation, out var end) && (best is null || generation > best.Value.Generation))
                best = (generation, end, slot);
        }
        if (best is not { } b)
        {
            file.Dispose();
            throw new StorageCorruptedException(
                $"{path} is damaged in both of its copies. It records how far the log was fsynced, so that recovery can tell a torn write " +
                "from acknowledged data that was lost. If the disk is healthy and no segment file was removed or cut, delete this file and " +
                "start the node again: it then starts once without this check and writes a new one. Otherwise do not start the node on this " +
                "directory: keep a copy for diagnosis, then restore it from a backup or remove it so the node rejoins the cluster empty.",
                path, 0);
        }
        // What was read may still be only in the page cache (after a process crash): make it durable before the
        // other copy is written to.
        file.Sync();
        return new DurableEndFile(path, file, b.Generation, b.End, b.Slot);
    }

    /// <summary>
    /// Creates the file holding <paramref name="end"/>, durably and atomically (temp file, fsync, rename, directory
    /// fsync), so a crash leaves either no file or a complete one.
    /// </summary>
    public static DurableEndFile Create(IStorageFileSystem fs, string directory, DurableEnd end)
    {
        var path = System.IO.Path.Combine(directory, FileName);
        var temp = path + ".tmp";
        fs.Delete(temp);
        var content = new byte[CopyStride + CopyBytes];
        Encode(content, 0, end);
        using (var file = fs.Open(temp, create: true))
        {
            file.Write(0, content);
            file.Sync();
        }
        fs.Rename(temp, path);
        fs.SyncDirectory(directory);
        return new DurableEndFile(path, fs.Open(path, create: false), 0, end, syncedSlot: 0);
    }

    /// <summary>Records a new claim (bytes it names must already be fsynced); no fsync of this file.</summary>
    public void Write(DurableEnd end)
    {
        if (end == Current) return;
        _generation++;
        Encode(_buffer, _generation, end);
        _file.Write((long)(1 - _syncedSlot) * CopyStride, _buffer);
        Current = end;
        _unsynced = true;
    }

    /// <summary>Fsyncs the latest claim, if it is not yet; the copy it is in becomes the one left alone.</summary>
    public void Sync()
    {
        if (!_unsynced) return;
        _file.Sync();
        _unsynced = false;
        _syncedSlot = 1 - _syncedSlot;
    }

    public void Dispose() => _file.Dispose();

    private static void Encode(Span<byte> dst, ulong generation, in DurableEnd end)
    {
        dst[..CopyBytes].Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(dst, Magic);
        BinaryPrimitives.WriteUInt16LittleEndian(dst[8..], Version);
        BinaryPrimitives.WriteUInt32LittleEndian(dst[12..], CopyBytes);
        BinaryPrimitives.WriteUInt64LittleEndian(dst[16..], generation);
        BinaryPrimitives.WriteUInt64LittleEndian(dst[24..], end.Segment);
        BinaryPrimitives.WriteUInt64LittleEndian(dst[32..], (ulong)end.Offset);
        BinaryPrimitives.WriteUInt64LittleEndian(dst[40..], end.LastIndex);
        BinaryPrimitives.WriteUInt64LittleEndian(dst[48..], end.HardState.Term);
        BinaryPrimitives.WriteUInt64LittleEndian(dst[56..], end.HardState.Vote);
        BinaryPrimitives.WriteUInt64LittleEndian(dst[64..], end.HardState.Commit);
        BinaryPrimitives.WriteUInt32LittleEndian(dst[76..], Crc32C.Compute(dst[..76]));
    }

    private static bool TryDecode(ReadOnlySpan<byte> src, out ulong generation, out DurableEnd end)
    {
        generation = 0;
        end = default;
        if (BinaryPrimitives.ReadUInt64LittleEndian(src) != Magic
            || BinaryPrimitives.ReadUInt32LittleEndian(src[76..]) != Crc32C.Compute(src[..76])
            || BinaryPrimitives.ReadUInt16LittleEndian(src[8..]) != Version
            || BinaryPrimitives.ReadUInt32LittleEndian(src[12..]) != CopyBytes)
        {
            return false;
        }
        generation = BinaryPrimitives.ReadUInt64LittleEndian(src[16..]);
        var offset = BinaryPrimitives.ReadUInt64LittleEndian(src[32..]);
        if (offset > long.MaxValue) return false;
        end = new DurableEnd(
            BinaryPrimitives.ReadUInt64LittleEndian(src[24..]),
            (long)offset,
            BinaryPrimitives.ReadUInt64LittleEndian(src[40..]),
            new HardState(
                BinaryPrimitives.ReadUInt64LittleEndian(src[48..]),
                BinaryPrimitives.ReadUInt64LittleEndian(src[56..]),
                BinaryPrimitives.ReadUInt64LittleEndian(src[64..])));
        return true;
    }
}

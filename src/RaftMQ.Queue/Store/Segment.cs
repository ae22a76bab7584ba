using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace RaftMQ.Queue.Store;

/// <summary>
/// One append-only segment file of a topic: the records from <see cref="FirstOffset"/> on. Only the topic's last
/// segment grows; the others are sealed and never change. The file lives while anyone references it: the store
/// holds one reference until every message in it is consumed (or the state is replaced), and each snapshot capture
/// that includes it holds one until the snapshot is disposed; the last release deletes the file. So a snapshot
/// written off the loop can read bytes the loop has already consumed.
/// </summary>
internal sealed partial class Segment
{
    private SafeFileHandle? _handle;
    private int _references = 1;

    private Segment(string path, ulong firstOffset)
    {
        Path = path;
        FirstOffset = firstOffset;
    }

    public string Path { get; }

    /// <summary>The offset of the first record in the file.</summary>
    public ulong FirstOffset { get; }

    /// <summary>
    /// Bytes of records given to this segment (loop thread only). The store may still hold the last of them in its
    /// write buffer; it flushes them (<see cref="MessageStore.Flush"/>) before anything reads the file.
    /// </summary>
    public long Size { get; private set; }

    /// <summary>Whether nothing may be appended: a segment linked to a snapshot file, or rewritten by compaction.</summary>
    public bool Sealed { get; private set; }

    /// <summary>Ends appending to this segment (a rewritten one, once written).</summary>
    public void Seal() => Sealed = true;

    /// <summary>Creates the file, which must not exist yet.</summary>
    public static Segment Create(string path, ulong firstOffset)
    {
        var segment = new Segment(path, firstOffset);
        segment._handle = OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite);
        // The queue's messages are the owner's only, like the Raft log they came from (0600).
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(segment._handle, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return segment;
    }

    /// <summary>
    /// Makes <paramref name="path"/> a hard link to <paramref name="snapshotFile"/> (a snapshot file or one of its
    /// parts), whose first <paramref name="end"/> bytes must exist, sealed (the caller's extents say which of them
    /// hold records, from <paramref name="firstOffset"/> on). Null when the file system cannot link them (another file system, no hard
    /// links): the caller copies instead. The snapshot store may delete its own name for the file at any time; the
    /// link keeps the bytes. The file is opened on first read.
    /// </summary>
    public static Segment? TryLink(string snapshotFile, string path, ulong firstOffset, long end)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS() && !OperatingSystem.IsFreeBSD()) return null;
        if (Link(snapshotFile, path) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            // EPERM (1), EXDEV (18), EMLINK (31), ENOTSUP/EOPNOTSUPP (95 on Linux, 45 on macOS): this file system cannot link these files.
            if (errno is 1 or 18 or 31 or 95 or 45) return null;
            throw new IOException($"cannot link the snapshot file {snapshotFile} as {path}: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})");
        }
        var segment = new Segment(path, firstOffset) { Sealed = true, Size = end };
        var length = new FileInfo(path).Length;
        if (length < end)
        {
            segment.Release();
            throw new QueueStoreCorruptException(path, length, $"the snapshot's file is shorter than the {end} bytes its index promises");
        }
        return segment;
    }

    [LibraryImport("libc", EntryPoint = "link", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Link(string existing, string newPath);

    /// <summary>Opens a segment for reading off the loop, even while the loop appends to it or has released it.</summary>
    public static SafeFileHandle OpenForSnapshot(string path) => OpenHandle(path, FileMode.Open, FileAccess.Read);

    /// <summary>Claims the next <paramref name="count"/> bytes of the file; returns where they start.</summary>
    public long Grow(int count)
    {
        if (Sealed) throw new InvalidOperationException($"segment {Path} is sealed");
        var position = Size;
        Size += count;
        return position;
    }

    /// <summary>Writes claimed bytes. No fsync: the Raft log is the durable copy (docs/queue-store.md).</summary>
    public void Write(long position, ReadOnlySpan<byte> bytes) => RandomAccess.Write(Handle, bytes, position);

    /// <summary>Where the bytes not yet handed to <see cref="Writeback"/> start (loop thread only).</summary>
    internal long WritebackFrom { get; set; }

    /// <summary>The end of the bytes written since <see cref="WritebackFrom"/> (loop thread only).</summary>
    internal long WritebackEnd { get; set; }

    /// <summary>The open handle, for <see cref="Writeback"/>; null when the file is closed.</summary>
    internal SafeFileHandle? HandleForWriteback => _handle;

    /// <summary>Reads up to <paramref name="buffer"/>'s length at <paramref name="position"/>, stopping at <see cref="Size"/>; returns the count.</summary>
    public int Read(long position, Span<byte> buffer)
    {
        var wanted = (int)Math.Min(buffer.Length, Size - position);
        var total = 0;
        while (total < wanted)
        {
            var n = RandomAccess.Read(Handle, buffer[total..wanted], position + total);
            if (n == 0) break; // the file is shorter than written: the caller reports it
            total += n;
        }
        return total;
    }

    /// <summary>Closes the file handle (it reopens on the next read or append); keeps the file.</summary>
    public void Close()
    {
        _handle?.Dispose();
        _handle = null;
    }

    /// <summary>Adds a reference for a snapshot capture (on the loop, while the store still holds its own).</summary>
    public void Retain() => Interlocked.Increment(ref _references);

    /// <summary>Drops a reference, from any thread; the last one deletes the file.</summary>
    public void Release()
    {
        var left = Interlocked.Decrement(ref _references);
        if (left < 0) throw new InvalidOperationException($"segment {Path} released more often than retained");
        if (left > 0) return;
        Close();
        File.Delete(Path);
    }

    private SafeFileHandle Handle => _handle ??= OpenHandle(Path, FileMode.Open, Sealed ? FileAccess.Read : FileAccess.ReadWrite);

    private static SafeFileHandle OpenHandle(string path, FileMode mode, FileAccess access) =>
        File.OpenHandle(path, mode, access, FileShare.ReadWrite | FileShare.Delete);
}

using System.IO.Enumeration;
using RaftMQ.Storage;

namespace RaftMQ.Simulation;

/// <summary>How a simulated crash treats writes that were not fsynced.</summary>
public enum CrashMode
{
    /// <summary>Every unsynced write is lost.</summary>
    DropUnsynced,

    /// <summary>The first N bytes of each file's unsynced writes reach the disk, in order: a torn write at any byte.</summary>
    KeepPrefix,

    /// <summary>Each 512-byte sector of unsynced data reaches the disk or not, independently (the kernel writes back pages in any order).</summary>
    RandomSectors,

    /// <summary>A process crash, not a power cut: every write and every name change survives (the kernel has them).</summary>
    KeepAll,
}

/// <summary>
/// An in-memory file system that keeps what a power cut would keep apart from what it would lose, and injects
/// faults: torn writes, lost unsynced writes, bit flips, failing writes and fsyncs. Follows the POSIX contract of
/// <see cref="IStorageFileSystem"/> strictly: data is durable after Sync, names after SyncDirectory.
/// </summary>
public sealed class FaultyFileSystem : IStorageFileSystem
{
    private sealed class Inode
    {
        public byte[] Data = [];
        public long Length;
        // What survives a power cut: the first DurableLength bytes of DurableData (a buffer that grows by doubling,
        // so a sync costs the bytes it makes durable, not the whole file).
        public byte[] DurableData = [];
        public long DurableLength;
        public List<(long Offset, byte[] Bytes)> Unsynced = [];

        public ReadOnlySpan<byte> Durable => DurableData.AsSpan(0, (int)DurableLength);

        public void SetDurable(ReadOnlySpan<byte> bytes)
        {
            DurableData = bytes.ToArray();
            DurableLength = bytes.Length;
        }

        /// <summary>An fsync: every write so far becomes durable.</summary>
        public void MakeDurable()
        {
            if (DurableData.Length < Length) Array.Resize(ref DurableData, (int)Math.Max(Length, DurableData.Length * 2L));
            // The file's current bytes past the old durable end, then the overwrites before it.
            if (Length > DurableLength) Data.AsSpan((int)DurableLength, (int)(Length - DurableLength)).CopyTo(DurableData.AsSpan((int)DurableLength));
            foreach (var (offset, bytes) in Unsynced)
            {
                var end = Math.Min(offset + bytes.Length, Length);
                if (end > offset) bytes.AsSpan(0, (int)(end - offset)).CopyTo(DurableData.AsSpan((int)offset));
            }
            DurableLength = Length;
            Unsynced.Clear();
        }

        public void WriteAt(long offset, ReadOnlySpan<byte> bytes)
        {
            var end = offset + bytes.Length;
            if (end > Data.Length) Array.Resize(ref Data, (int)Math.Max(end, Data.Length * 2L));
            bytes.CopyTo(Data.AsSpan((int)offset));
            Length = Math.Max(Length, end);
        }
    }

    private readonly Dictionary<string, Inode> _names = [];
    private readonly Dictionary<string, Inode> _durableNames = [];
    private readonly HashSet<string> _directories = [];

    /// <summary>Fsyncs (file and directory) performed so far.</summary>
    public int SyncCount { get; private set; }

    /// <summary>When set, the fsync with this 1-based number (counting from now on) fails with an I/O error.</summary>
    public int? FailSyncAfter { get; set; }

    /// <summary>When set, the write with this 1-based number fails after writing <see cref="TornWriteBytes"/> bytes of it.</summary>
    public int? FailWriteAfter { get; set; }

    /// <summary>How much of a failing write lands before the error.</summary>
    public int TornWriteBytes { get; set; }

    /// <summary>Chance that a write fails after landing a random part of it (drawn from <see cref="FaultRandom"/>).</summary>
    public double WriteFailureProbability { get; set; }

    /// <summary>Chance that an fsync (of a file or a directory) fails (drawn from <see cref="FaultRandom"/>).</summary>
    public double SyncFailureProbability { get; set; }

    /// <summary>The source of the random faults above; none are injected without one.</summary>
    public Random? FaultRandom { get; set; }

    /// <summary>Whether <paramref name="e"/> (or an exception inside it) is a fault this file system injected.</summary>
    public static bool IsInjected(Exception? e)
    {
        for (; e is not null; e = e.InnerException)
            if (e is IOException && e.Message.StartsWith("injected", StringComparison.Ordinal)) return true;
        return false;
    }

    public void CreateDirectory(string path) => _directories.Add(Path.GetFullPath(path));

    public IReadOnlyList<string> ListFiles(string directory, string searchPattern)
    {
        var dir = Path.GetFullPath(directory);
        return _names.Keys.Where(p => Path.GetDirectoryName(p) == dir && FileSystemName.MatchesSimpleExpression(searchPattern, Path.GetFileName(p)))
            .Order(StringComparer.Ordinal).ToList();
    }

    public bool FileExists(string path) => _names.ContainsKey(Path.GetFullPath(path));

    public IStorageFile Open(string path, bool create)
    {
        path = Path.GetFullPath(path);
        if (create)
        {
            if (_names.ContainsKey(path)) throw new IOException($"{path} exists");
            _names[path] = new Inode();
        }
        else if (!_names.ContainsKey(path))
        {
            throw new FileNotFoundException(path);
        }
        return new Handle(this, _names[path]);
    }

    public void Delete(string path) => _names.Remove(Path.GetFullPath(path));

    public void Rename(string source, string destination)
    {
        source = Path.GetFullPath(source);
        if (!_names.Remove(source, out var inode)) throw new FileNotFoundException(source);
        _names[Path.GetFullPath(destination)] = inode;
    }

    public void SyncDirectory(string path)
    {
        CountSync();
        var dir = Path.GetFullPath(path);
        foreach (var p in _durableNames.Keys.Where(p => Path.GetDirectoryName(p) == dir).ToList()) _durableNames.Remove(p);
        foreach (var (p, inode) in _names.Where(kv => Path.GetDirectoryName(kv.Key) == dir)) _durableNames[p] = inode;
    }

    public IDisposable Lock(string path) => new NoLock();

    /// <summary>The current (not necessarily durable) bytes of a file.</summary>
    public byte[] ReadAll(string path)
    {
        var inode = _names[Path.GetFullPath(path)];
        return inode.Data.AsSpan(0, (int)inode.Length).ToArray();
    }

    /// <summary>Whether any file holds writes not yet fsynced.</summary>
    public bool HasUnsyncedWrites => _names.Values.Any(i => i.Unsynced.Count > 0);

    /// <summary>Bytes of a file not yet fsynced (0 when all are durable).</summary>
    public long UnsyncedBytes(string path) => _names[Path.GetFullPath(path)].Unsynced.Sum(u => (long)u.Bytes.Length);

    /// <summary>Flips one bit of a file, durably (a disk error or a stray write).</summary>
    public void FlipBit(string path, long offset, int bit = 0)
    {
        var inode = _names[Path.GetFullPath(path)];
        inode.Data[offset] ^= (byte)(1 << bit);
        if (offset < inode.DurableLength) inode.DurableData[offset] ^= (byte)(1 << bit);
    }

    /// <summary>Cuts a file durably (as a file system repair might).</summary>
    public void Truncate(string path, long length)
    {
        var inode = _names[Path.GetFullPath(path)];
        inode.Length = length;
        inode.DurableLength = Math.Min(length, inode.DurableLength);
        inode.Unsynced.Clear();
    }

    /// <summary>
    /// The disk as the machine finds it after a power cut now: durable names and data, plus the unsynced writes
    /// <paramref name="mode"/> lets through (<paramref name="keepBytes"/> per file for <see cref="CrashMode.KeepPrefix"/>).
    /// </summary>
    public FaultyFileSystem Crash(CrashMode mode, Random random, long keepBytes = 0)
    {
        var after = new FaultyFileSystem();
        foreach (var d in _directories) after._directories.Add(d);
        var copies = new Dictionary<Inode, Inode>();
        foreach (var (path, inode) in mode == CrashMode.KeepAll ? _names : _durableNames)
        {
            if (!copies.TryGetValue(inode, out var copy))
            {
                copy = new Inode();
                copy.WriteAt(0, mode == CrashMode.KeepAll ? inode.Data.AsSpan(0, (int)inode.Length) : inode.Durable);
                var budget = keepBytes;
                foreach (var (offset, bytes) in inode.Unsynced)
                {
                    switch (mode)
                    {
                        case CrashMode.KeepPrefix:
                            var n = (int)Math.Min(budget, bytes.Length);
                            copy.WriteAt(offset, bytes.AsSpan(0, n));
                            budget -= n;
                            break;
                        case CrashMode.RandomSectors:
                            for (var s = offset / 512 * 512; s < offset + bytes.Length; s += 512)
                            {
                                if (random.Next(2) == 0) continue;
                                var from = Math.Max(s, offset);
                                var to = Math.Min(s + 512, offset + bytes.Length);
                                copy.WriteAt(from, bytes.AsSpan((int)(from - offset), (int)(to - from)));
                            }
                            break;
                    }
                }
                copy.SetDurable(copy.Data.AsSpan(0, (int)copy.Length));
                copies[inode] = copy;
            }
            after._names[path] = copy;
            after._durableNames[path] = copy;
        }
        return after;
    }

    private void CountSync()
    {
        SyncCount++;
        if (FaultRandom is { } random && SyncFailureProbability > 0 && random.NextDouble() < SyncFailureProbability)
            throw new IOException("injected fsync failure (EIO)");
        if (FailSyncAfter is { } n)
        {
            if (n <= 1)
            {
                FailSyncAfter = null;
                throw new IOException("injected fsync failure (EIO)");
            }
            FailSyncAfter = n - 1;
        }
    }

    private sealed class NoLock : IDisposable
    {
        public void Dispose()
        {
        }
    }

    private sealed class Handle(FaultyFileSystem fs, Inode inode) : IStorageFile
    {
        public long Length => inode.Length;

        public int Read(long offset, Span<byte> buffer)
        {
            var n = (int)Math.Max(0, Math.Min(buffer.Length, inode.Length - offset));
            inode.Data.AsSpan((int)offset, n).CopyTo(buffer);
            return n;
        }

        public void Write(long offset, ReadOnlySpan<byte> data)
        {
            if (fs.FaultRandom is { } random && fs.WriteFailureProbability > 0 && random.NextDouble() < fs.WriteFailureProbability)
            {
                var landed = data[..random.Next(data.Length + 1)];
                inode.WriteAt(offset, landed);
                inode.Unsynced.Add((offset, landed.ToArray()));
                throw new IOException("injected write failure (torn write)");
            }
            if (fs.FailWriteAfter is { } n)
            {
                if (n <= 1)
                {
                    fs.FailWriteAfter = null;
                    var torn = data[..Math.Min(fs.TornWriteBytes, data.Length)];
                    inode.WriteAt(offset, torn);
                    inode.Unsynced.Add((offset, torn.ToArray()));
                    throw new IOException("injected write failure (ENOSPC)");
                }
                fs.FailWriteAfter = n - 1;
            }
            inode.WriteAt(offset, data);
            inode.Unsynced.Add((offset, data.ToArray()));
        }

        public void Sync()
        {
            fs.CountSync();
            inode.MakeDurable();
        }

        public void SetLength(long length)
        {
            // A truncation is metadata: treated as durable at once (recovery fsyncs right after it anyway).
            if (length > inode.Data.Length) Array.Resize(ref inode.Data, (int)length);
            else inode.Data.AsSpan((int)length, (int)Math.Max(0, inode.Length - length)).Clear();
            inode.Length = length;
            inode.SetDurable(inode.Data.AsSpan(0, (int)length));
            inode.Unsynced.Clear();
        }

        public void Dispose()
        {
        }
    }
}

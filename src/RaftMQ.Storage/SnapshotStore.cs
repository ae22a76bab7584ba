using System.Buffers.Binary;
using RaftMQ.Raft;
using RaftMQ.StateMachine;

namespace RaftMQ.Storage;

/// <summary>
/// Snapshot files in one directory, each written atomically (temporary file, fsync, rename, directory fsync) and
/// checked with a CRC-32C when opened. Owned by one node; not thread-safe, except that snapshots may be written on
/// other threads while the owner reads.
/// A snapshot's data is a sequence of runs: bytes written into the snapshot file itself, and ranges of other files
/// (a state machine's immutable data files) that the writer hard-links into the directory as parts of the snapshot
/// instead of copying them (<see cref="ISnapshotFileSink"/>). Readers see one stream either way. File format in
/// docs/storage.md ("Snapshot files").
/// </summary>
public sealed class SnapshotStore
{
    internal const ulong Magic = 0x4E53514D54464152; // "RAFTMQSN"
    internal const ushort Version1 = 1;
    internal const ushort Version = 2;
    internal const int HeaderBytes1 = 48;
    internal const int HeaderBytes = 64;

    /// <summary>
    /// The longest version 2 header: the fixed 64 bytes, then the cluster configuration as of the snapshot (when the
    /// metadata carries one: <see cref="ClusterConfiguration.Encode"/>'s bytes, at most
    /// <see cref="ClusterConfiguration.MaxEncodedBytes"/>) and its CRC-32C.
    /// </summary>
    internal const int MaxHeaderBytes = HeaderBytes + ClusterConfiguration.MaxEncodedBytes + 4;
    internal const int RunBytes = 1 + 1 + PartNameMax + 16;
    internal const int PartNameMax = 96;
    private const string TempSuffix = ".tmp";
    private const string PartInfix = ".part";
    private long _writers;

    private readonly StorageOptions _options;
    private readonly IStorageFileSystem _fs;

    private SnapshotStore(string directory, StorageOptions options)
    {
        Directory = directory;
        _options = options;
        _fs = options.FileSystem;
    }

    /// <summary>Opens (or creates) the store in <paramref name="directory"/>, deleting unfinished temporary files and parts no snapshot uses.</summary>
    public static SnapshotStore Open(string directory, StorageOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        options ??= new StorageOptions();
        options.Validate();
        directory = Path.GetFullPath(directory);
        options.FileSystem.CreateDirectory(directory);
        var store = new SnapshotStore(directory, options);
        foreach (var tmp in options.FileSystem.ListFiles(directory, "*" + TempSuffix)) options.FileSystem.Delete(tmp);
        foreach (var tmp in options.FileSystem.ListFiles(directory, "*" + TempSuffix + PartInfix + "*")) options.FileSystem.Delete(tmp);
        store.DeleteUnusedParts();
        return store;
    }

    /// <summary>The directory of the snapshot files.</summary>
    public string Directory { get; }

    /// <summary>Metadata of the newest complete snapshot (by index), or null. Its contents are checked by <see cref="OpenLatest"/>.</summary>
    public SnapshotMetadata? Latest
    {
        get
        {
            SnapshotMetadata? best = null;
            foreach (var (meta, _) in List())
            {
                if (best is null || meta.Index > best.Value.Index) best = meta;
            }
            return best;
        }
    }

    /// <summary>
    /// Starts writing the snapshot ending at <paramref name="metadata"/>. Write the state machine's bytes to the
    /// returned stream, then <see cref="SnapshotWriter.Commit"/>; disposing it without committing discards it.
    /// </summary>
    public SnapshotWriter Create(SnapshotMetadata metadata)
    {
        // Writers never share a temporary file: the node's own snapshot (written in the background) and one received
        // from the leader can be at the same index at once.
        var path = Path.Combine(Directory, $"{FileName(metadata)}.{Interlocked.Increment(ref _writers)}{TempSuffix}");
        _fs.Delete(path);
        return new SnapshotWriter(this, metadata, path, _fs.Open(path, create: true), _options.MaxSnapshotBytes);
    }

    /// <summary>Writes a whole snapshot from <paramref name="data"/> (for example one received from the leader) and commits it.</summary>
    public void Save(SnapshotMetadata metadata, Stream data)
    {
        ArgumentNullException.ThrowIfNull(data);
        using var writer = Create(metadata);
        data.CopyTo(writer, 64 * 1024);
        writer.Commit();
    }

    /// <summary>
    /// Opens the newest snapshot for reading after checking its header, its checksum and that its parts are there,
    /// or returns null when there is none.
    /// </summary>
    /// <exception cref="StorageCorruptedException">The newest snapshot is damaged or a part of it is missing.</exception>
    public SnapshotStream? OpenLatest()
    {
        var latest = Latest;
        if (latest is null) return null;
        var path = Path.Combine(Directory, FileName(latest.Value));
        var file = _fs.Open(path, create: false);
        var opened = new List<IStorageFile>();
        try
        {
            var runs = ReadRuns(file, latest.Value, out var problem, out var dataLength, out var configuration);
            var pieces = new List<SnapshotStream.Piece>();
            var physical = _fs is PhysicalFileSystem;
            long logical = 0;
            foreach (var run in runs ?? [])
            {
                if (run.Part is null)
                {
                    pieces.Add(new SnapshotStream.Piece(logical, run.Length, file, run.Offset, physical ? path : null));
                }
                else
                {
                    var partPath = Path.Combine(Directory, run.Part);
                    if (!_fs.FileExists(partPath))
                    {
                        problem = $"its part {partPath} is missing";
                        break;
                    }
                    var part = _fs.Open(partPath, create: false);
                    opened.Add(part);
                    if (part.Length < run.Offset + run.Length)
                    {
                        problem = $"its part {partPath} is {part.Length} bytes, shorter than the {run.Offset + run.Length} it needs";
                        break;
                    }
                    pieces.Add(new SnapshotStream.Piece(logical, run.Length, part, run.Offset, physical ? partPath : null));
                }
                logical += run.Length;
            }
            if (problem is null && logical != dataLength) problem = $"its runs hold {logical} bytes, the header promises {dataLength}";
            if (problem is not null)
            {
                throw new StorageCorruptedException(
                    $"snapshot {path} is damaged: {problem}. The log was compacted up to it, so the node cannot rebuild its state without it. " +
                    "Do not start the node on this directory; restore it from a backup, or remove the node's data directory so it rejoins empty " +
                    "and receives a snapshot from the leader.", path, 0);
            }
            return new SnapshotStream(latest.Value with { Configuration = configuration }, [file, .. opened], pieces, dataLength);
        }
        catch
        {
            file.Dispose();
            foreach (var part in opened) part.Dispose();
            throw;
        }
    }

    internal readonly record struct Run(string? Part, long Offset, long Length);

    /// <summary>
    /// The cluster configuration recorded with the snapshot ending at <paramref name="snapshot"/> (null when it
    /// records none, or there is no such file). Reads the header only; <see cref="OpenLatest"/> checks the data.
    /// </summary>
    /// <exception cref="StorageCorruptedException">The snapshot's header is damaged.</exception>
    public ClusterConfiguration? ReadConfiguration(SnapshotMetadata snapshot)
    {
        var path = Path.Combine(Directory, FileName(snapshot));
        if (!_fs.FileExists(path)) return null;
        using var file = _fs.Open(path, create: false);
        Span<byte> header = stackalloc byte[MaxHeaderBytes];
        var problem = CheckHeader(header[..file.Read(0, header)], snapshot, file.Length, out var h);
        if (problem is not null)
        {
            throw new StorageCorruptedException(
                $"snapshot {path} is damaged: {problem}. Do not start the node on this directory; restore it from a backup, or remove the " +
                "node's data directory so it rejoins empty and receives a snapshot from the leader.", path, 0);
        }
        return h.Configuration;
    }

    /// <summary>Checks the header and the checksum and returns the data's runs; null with a problem when damaged.</summary>
    private static List<Run>? ReadRuns(IStorageFile file, SnapshotMetadata expected, out string? problem, out long dataLength, out ClusterConfiguration? configuration)
    {
        Span<byte> header = stackalloc byte[MaxHeaderBytes];
        var n = file.Read(0, header);
        problem = CheckHeader(header[..n], expected, file.Length, out var h);
        dataLength = h.DataLength;
        configuration = h.Configuration;
        if (problem is not null) return null;
        var (version, dataCrc) = (h.Version, h.DataCrc);
        // Version 1: the data is the rest of the file. Version 2: the file's own bytes, then the run table, all
        // under the checksum.
        var bodyStart = h.HeaderLength;
        var buffer = new byte[(int)Math.Clamp(file.Length - bodyStart, 1, 1024 * 1024)];
        var crc = ~0u;
        for (long pos = bodyStart; pos < file.Length;)
        {
            var read = file.Read(pos, buffer.AsSpan(0, (int)Math.Min(buffer.Length, file.Length - pos)));
            if (read == 0) break;
            crc = Crc32C.Append(crc, buffer.AsSpan(0, read));
            pos += read;
        }
        if (~crc != dataCrc)
        {
            problem = "data checksum mismatch";
            return null;
        }
        if (version == Version1) return [new Run(null, HeaderBytes1, dataLength)];
        return ParseRunTable(file, h, out problem);
    }

    /// <summary>Reads and checks a version 2 run table; null with a problem when it is cut short or out of range.</summary>
    private static List<Run>? ParseRunTable(IStorageFile file, Header h, out string? problem)
    {
        problem = null;
        var table = new byte[h.RunCount * RunBytes];
        if (file.Read(h.TableOffset, table) != table.Length)
        {
            problem = "the run table is cut short";
            return null;
        }
        var runs = new List<Run>(h.RunCount);
        for (int i = 0; i < h.RunCount; i++)
        {
            var entry = table.AsSpan(i * RunBytes, RunBytes);
            var nameLength = entry[1];
            var offset = BinaryPrimitives.ReadInt64LittleEndian(entry[(2 + PartNameMax)..]);
            var length = BinaryPrimitives.ReadInt64LittleEndian(entry[(10 + PartNameMax)..]);
            if (offset < 0 || length < 0 || nameLength > PartNameMax)
            {
                problem = $"run {i} is out of range";
                return null;
            }
            if (entry[0] == 1)
            {
                if (offset < h.HeaderLength || offset + length > h.TableOffset)
                {
                    problem = $"run {i} lies outside the file's data";
                    return null;
                }
                runs.Add(new Run(null, offset, length));
            }
            else if (entry[0] == 2)
            {
                var name = System.Text.Encoding.UTF8.GetString(entry.Slice(2, nameLength));
                if (name.Contains('/') || name.Contains('\\') || !name.Contains(PartInfix, StringComparison.Ordinal))
                {
                    problem = $"run {i} names an invalid part";
                    return null;
                }
                runs.Add(new Run(name, offset, length));
            }
            else
            {
                problem = $"run {i} has an unknown kind {entry[0]}";
                return null;
            }
        }
        return runs;
    }

    /// <summary>A fresh name for a part of the snapshot <paramref name="metadata"/> (unique across writers and restarts).</summary>
    internal static string PartName(SnapshotMetadata metadata, int number) =>
        $"{FileName(metadata)}{PartInfix}{number}.{Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(6))}";

    internal IStorageFileSystem FileSystem => _fs;

    internal void Complete(SnapshotWriter writer, string tempPath, IReadOnlyList<(string Temp, string Final)> parts)
    {
        // Parts first: once the snapshot file has its final name, everything it names must be there.
        foreach (var (temp, final) in parts) _fs.Rename(temp, Path.Combine(Directory, final));
        var finalPath = Path.Combine(Directory, FileName(writer.Metadata));
        _fs.Rename(tempPath, finalPath);
        _fs.SyncDirectory(Directory);
        // Keep the newest few; older ones are covered by them. Then the parts no kept snapshot names.
        var all = List();
        all.Sort((a, b) => b.Meta.Index.CompareTo(a.Meta.Index));
        for (var i = _options.RetainSnapshots; i < all.Count; i++) _fs.Delete(all[i].Path);
        DeleteUnusedParts();
        if (all.Count > _options.RetainSnapshots) _fs.SyncDirectory(Directory);
    }

    internal void Abort(string tempPath, IEnumerable<string> tempParts)
    {
        _fs.Delete(tempPath);
        foreach (var part in tempParts) _fs.Delete(part);
    }

    /// <summary>Deletes committed parts that no snapshot in the directory names (a replaced or deleted snapshot's).</summary>
    private void DeleteUnusedParts()
    {
        var parts = _fs.ListFiles(Directory, "snap-*" + PartInfix + "*").Where(p => !p.Contains(TempSuffix + PartInfix, StringComparison.Ordinal)).ToList();
        if (parts.Count == 0) return;
        var used = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (meta, path) in List())
        {
            try
            {
                using var file = _fs.Open(path, create: false);
                // A snapshot whose table cannot be read may still name parts: delete nothing.
                if (ReadRunTable(file, meta) is not { } runs) return;
                foreach (var run in runs) if (run.Part is not null) used.Add(run.Part);
            }
            catch (IOException)
            {
                return; // cannot tell what is used: delete nothing
            }
        }
        foreach (var part in parts)
            if (!used.Contains(Path.GetFileName(part))) _fs.Delete(part);
    }

    /// <summary>The run table alone, without the checksum pass (for housekeeping); null when the header or table is not readable.</summary>
    private static List<Run>? ReadRunTable(IStorageFile file, SnapshotMetadata meta)
    {
        Span<byte> header = stackalloc byte[MaxHeaderBytes];
        var n = file.Read(0, header);
        if (CheckHeader(header[..n], meta, file.Length, out var h) is not null) return null;
        return h.Version == Version1 ? [] : ParseRunTable(file, h, out _);
    }

    /// <summary>The header's length for <paramref name="meta"/>: 64 bytes, more with a configuration.</summary>
    internal static int HeaderLength(SnapshotMetadata meta) =>
        meta.Configuration is { } c ? HeaderBytes + c.EncodedLength + 4 : HeaderBytes;

    internal static void WriteHeader(Span<byte> dst, SnapshotMetadata meta, long dataLength, uint dataCrc, int runCount, long tableOffset)
    {
        var length = HeaderLength(meta);
        dst[..length].Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(dst, Magic);
        BinaryPrimitives.WriteUInt16LittleEndian(dst[8..], Version);
        BinaryPrimitives.WriteUInt32LittleEndian(dst[12..], (uint)length);
        BinaryPrimitives.WriteUInt64LittleEndian(dst[16..], meta.Index);
        BinaryPrimitives.WriteUInt64LittleEndian(dst[24..], meta.Term);
        BinaryPrimitives.WriteUInt64LittleEndian(dst[32..], (ulong)dataLength);
        BinaryPrimitives.WriteUInt32LittleEndian(dst[40..], dataCrc);
        BinaryPrimitives.WriteInt32LittleEndian(dst[44..], runCount);
        BinaryPrimitives.WriteInt64LittleEndian(dst[48..], tableOffset);
        BinaryPrimitives.WriteUInt32LittleEndian(dst[60..], Crc32C.Compute(dst[..60]));
        if (meta.Configuration is { } configuration)
        {
            var encoded = configuration.Encode();
            encoded.CopyTo(dst[HeaderBytes..]);
            BinaryPrimitives.WriteUInt32LittleEndian(dst[(HeaderBytes + encoded.Length)..], Crc32C.Compute(encoded));
        }
    }

    /// <summary>What a header says.</summary>
    private readonly record struct Header(
        ushort Version, int HeaderLength, long DataLength, uint DataCrc, int RunCount, long TableOffset, ClusterConfiguration? Configuration);

    private static string? CheckHeader(ReadOnlySpan<byte> src, SnapshotMetadata expected, long fileLength, out Header header)
    {
        header = default;
        if (src.Length < HeaderBytes1) return $"file is {fileLength} bytes, shorter than the {HeaderBytes1}-byte header";
        if (BinaryPrimitives.ReadUInt64LittleEndian(src) != Magic) return "bad magic number (not a RaftMQ snapshot)";
        var version = BinaryPrimitives.ReadUInt16LittleEndian(src[8..]);
        var fixedBytes = version == Version1 ? HeaderBytes1 : HeaderBytes;
        if (src.Length < fixedBytes) return $"file is {fileLength} bytes, shorter than the {fixedBytes}-byte header";
        if (BinaryPrimitives.ReadUInt32LittleEndian(src[(fixedBytes - 4)..]) != Crc32C.Compute(src[..(fixedBytes - 4)])) return "header checksum mismatch";
        if (version is not (Version1 or Version)) return $"format version {version}, this build reads versions {Version1} and {Version}";
        var meta = new SnapshotMetadata(BinaryPrimitives.ReadUInt64LittleEndian(src[16..]), BinaryPrimitives.ReadUInt64LittleEndian(src[24..]));
        if (meta != expected) return $"header says {meta.Index}/{meta.Term}, file name says {expected.Index}/{expected.Term}";
        var dataLength = (long)BinaryPrimitives.ReadUInt64LittleEndian(src[32..]);
        var dataCrc = BinaryPrimitives.ReadUInt32LittleEndian(src[40..]);
        if (version == Version1)
        {
            header = new Header(version, HeaderBytes1, dataLength, dataCrc, 0, 0, null);
            return fileLength != HeaderBytes1 + dataLength ? $"file is {fileLength} bytes, header promises {HeaderBytes1 + dataLength}" : null;
        }
        var declared = BinaryPrimitives.ReadUInt32LittleEndian(src[12..]);
        ClusterConfiguration? configuration = null;
        if (declared != HeaderBytes)
        {
            if (declared < HeaderBytes + 5 + 4 || declared > MaxHeaderBytes)
                return $"header length {declared} outside [{HeaderBytes + 9}, {MaxHeaderBytes}]";
            if (src.Length < declared) return $"file is {fileLength} bytes, shorter than its {declared}-byte header";
            var encoded = src[HeaderBytes..((int)declared - 4)];
            if (BinaryPrimitives.ReadUInt32LittleEndian(src[((int)declared - 4)..]) != Crc32C.Compute(encoded))
                return "configuration checksum mismatch";
            if (!ClusterConfiguration.TryDecode(encoded, out var decoded, out var problem)) return $"bad configuration: {problem}";
            configuration = decoded;
        }
        var runCount = BinaryPrimitives.ReadInt32LittleEndian(src[44..]);
        var tableOffset = BinaryPrimitives.ReadInt64LittleEndian(src[48..]);
        header = new Header(version, (int)declared, dataLength, dataCrc, runCount, tableOffset, configuration);
        if (dataLength < 0 || runCount < 0 || tableOffset < declared || tableOffset + ((long)runCount * RunBytes) != fileLength)
            return $"file is {fileLength} bytes, header promises a run table of {runCount} at {tableOffset}";
        return null;
    }

    private List<(SnapshotMetadata Meta, string Path)> List()
    {
        var found = new List<(SnapshotMetadata, string)>();
        foreach (var path in _fs.ListFiles(Directory, "snap-*.snap"))
        {
            if (TryParseName(System.IO.Path.GetFileName(path), out var meta)) found.Add((meta, path));
        }
        return found;
    }

    private static string FileName(SnapshotMetadata meta) => $"snap-{meta.Index:D20}-{meta.Term:D20}.snap";

    private static bool TryParseName(string name, out SnapshotMetadata meta)
    {
        meta = default;
        // snap-<20 digits>-<20 digits>.snap
        if (name.Length != 51 || !name.StartsWith("snap-", StringComparison.Ordinal) || name[25] != '-' || !name.EndsWith(".snap", StringComparison.Ordinal))
            return false;
        if (!ulong.TryParse(name.AsSpan(5, 20), System.Globalization.NumberStyles.None, null, out var index)) return false;
        if (!ulong.TryParse(name.AsSpan(26, 20), System.Globalization.NumberStyles.None, null, out var term)) return false;
        meta = new SnapshotMetadata(index, term);
        return true;
    }
}

/// <summary>
/// A snapshot being written; <see cref="Commit"/> makes it durable and visible, disposing without it discards it.
/// Bytes written go into the snapshot file; <see cref="TryAppendFileRange"/> adds a range of another file by hard
/// link, without copying it.
/// </summary>
public sealed class SnapshotWriter : Stream, ISnapshotFileSink
{
    private readonly SnapshotStore _store;
    private readonly string _tempPath;
    private readonly IStorageFile _file;
    private readonly long _maxBytes;
    private const int MaxBufferBytes = 256 * 1024;
    private byte[] _buffer = new byte[16 * 1024]; // doubles while full, up to MaxBufferBytes: a small snapshot stays small
    private readonly List<SnapshotStore.Run> _runs = [];
    private readonly List<(string Temp, string Final)> _parts = [];
    private readonly Dictionary<string, int> _partsByPath = new(StringComparer.Ordinal); // a file linked once per snapshot
    private int _buffered;
    private long _written; // logical bytes: the stream's length
    private long _flushed; // bytes of the file after the header
    private long _runStart = -1; // where the current run of the file's own bytes starts, or -1
    private readonly int _headerLength;
    private uint _crc = ~0u;
    private bool _done;

    internal SnapshotWriter(SnapshotStore store, SnapshotMetadata metadata, string tempPath, IStorageFile file, long maxBytes)
    {
        _store = store;
        Metadata = metadata;
        _tempPath = tempPath;
        _file = file;
        _maxBytes = maxBytes;
        _headerLength = SnapshotStore.HeaderLength(metadata);
    }

    /// <summary>The index and term the snapshot ends at, and the cluster configuration recorded with it.</summary>
    public SnapshotMetadata Metadata { get; }

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => !_done;
    public override long Length => _written;
    public override long Position { get => _written; set => throw new NotSupportedException(); }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        ObjectDisposedException.ThrowIf(_done, this);
        if (_written + buffer.Length > _maxBytes)
            throw new InvalidOperationException($"snapshot exceeds MaxSnapshotBytes {_maxBytes}");
        if (buffer.IsEmpty) return;
        if (_runStart < 0) _runStart = _headerLength + _flushed + _buffered;
        _written += buffer.Length;
        while (buffer.Length > 0)
        {
            var n = Math.Min(buffer.Length, _buffer.Length - _buffered);
            buffer[..n].CopyTo(_buffer.AsSpan(_buffered));
            _buffered += n;
            buffer = buffer[n..];
            if (_buffered < _buffer.Length) continue;
            if (_buffer.Length < MaxBufferBytes) Array.Resize(ref _buffer, _buffer.Length * 2);
            else FlushBuffer();
        }
    }

    /// <summary>
    /// Adds bytes [<paramref name="offset"/>, +<paramref name="length"/>) of the file at <paramref name="path"/> to the
    /// snapshot by hard-linking the file into the snapshot directory and fsyncing it. The caller promises those bytes
    /// never change (later bytes may). False, having added nothing, when this store's file system cannot link it (not
    /// the operating system's file system, another device, no hard links): the caller writes the bytes instead.
    /// </summary>
    public bool TryAppendFileRange(string path, long offset, long length)
    {
        ObjectDisposedException.ThrowIf(_done, this);
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        if (_store.FileSystem is not PhysicalFileSystem physical) return false;
        if (_written + length > _maxBytes)
            throw new InvalidOperationException($"snapshot exceeds MaxSnapshotBytes {_maxBytes}");
        if (length == 0) return true;
        if (_partsByPath.TryGetValue(path, out var already))
        {
            // The same file again (another range of it): its link is fsynced already, with every byte written
            // before it was linked, and the caller promises this range was written before the first.
            using (var again = physical.Open(_parts[already].Temp, create: false))
            {
                if (again.Length < offset + length)
                    throw new InvalidOperationException($"{path} is {again.Length} bytes, shorter than the range {offset}+{length} given to the snapshot");
            }
            EndRun();
            _runs.Add(new SnapshotStore.Run(_parts[already].Final, offset, length));
            _written += length;
            return true;
        }
        var temp = $"{_tempPath}.part{_parts.Count}";
        if (!physical.TryLink(path, temp)) return false;
        _parts.Add((temp, SnapshotStore.PartName(Metadata, _parts.Count)));
        try
        {
            using var part = physical.Open(temp, create: false);
            if (part.Length < offset + length)
                throw new InvalidOperationException($"{path} is {part.Length} bytes, shorter than the range {offset}+{length} given to the snapshot");
            part.Sync();
        }
        catch
        {
            _store.FileSystem.Delete(temp);
            _parts.RemoveAt(_parts.Count - 1);
            throw;
        }
        _partsByPath[path] = _parts.Count - 1;
        EndRun();
        _runs.Add(new SnapshotStore.Run(_parts[^1].Final, offset, length));
        _written += length;
        return true;
    }

    /// <summary>Writes the run table and the header, fsyncs, renames parts and file into place and fsyncs the directory. Only then does the snapshot exist.</summary>
    public void Commit()
    {
        ObjectDisposedException.ThrowIf(_done, this);
        FlushBuffer();
        EndRun();
        var tableOffset = _headerLength + _flushed;
        var table = new byte[_runs.Count * SnapshotStore.RunBytes];
        for (int i = 0; i < _runs.Count; i++)
        {
            var entry = table.AsSpan(i * SnapshotStore.RunBytes, SnapshotStore.RunBytes);
            var run = _runs[i];
            if (run.Part is null)
            {
                entry[0] = 1;
            }
            else
            {
                entry[0] = 2;
                entry[1] = (byte)System.Text.Encoding.UTF8.GetBytes(run.Part, entry.Slice(2, SnapshotStore.PartNameMax));
            }
            BinaryPrimitives.WriteInt64LittleEndian(entry[(2 + SnapshotStore.PartNameMax)..], run.Offset);
            BinaryPrimitives.WriteInt64LittleEndian(entry[(10 + SnapshotStore.PartNameMax)..], run.Length);
        }
        _crc = Crc32C.Append(_crc, table);
        _file.Write(tableOffset, table);
        Span<byte> header = stackalloc byte[_headerLength];
        SnapshotStore.WriteHeader(header, Metadata, _written, ~_crc, _runs.Count, tableOffset);
        _file.Write(0, header);
        _file.Sync();
        _file.Dispose();
        _done = true;
        _store.Complete(this, _tempPath, _parts);
    }

    public override void Flush()
    {
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing && !_done)
        {
            _done = true;
            _file.Dispose();
            _store.Abort(_tempPath, _parts.Select(p => p.Temp));
        }
        base.Dispose(disposing);
    }

    /// <summary>Closes the current run of the file's own bytes, if any.</summary>
    private void EndRun()
    {
        if (_runStart < 0) return;
        var end = _headerLength + _flushed + _buffered;
        _runs.Add(new SnapshotStore.Run(null, _runStart, end - _runStart));
        _runStart = -1;
    }

    private void FlushBuffer()
    {
        if (_buffered == 0) return;
        _crc = Crc32C.Append(_crc, _buffer.AsSpan(0, _buffered));
        _file.Write(_headerLength + _flushed, _buffer.AsSpan(0, _buffered));
        _flushed += _buffered;
        _buffered = 0;
    }
}

/// <summary>
/// The data of a snapshot opened for reading (its checksum already verified): the snapshot file's own bytes and the
/// ranges of its parts, as one stream. On the operating system's file system it tells a state machine where each
/// byte lies (<see cref="ISnapshotFile"/>): committed snapshot files and their parts are never written again in
/// those ranges, so the state machine may link to them instead of copying.
/// </summary>
public sealed class SnapshotStream : Stream, ISnapshotFile
{
    private readonly IStorageFile[] _files;
    private readonly List<Piece> _pieces;
    private long _position;

    internal readonly record struct Piece(long Start, long Length, IStorageFile File, long FileOffset, string? PhysicalPath);

    internal SnapshotStream(SnapshotMetadata metadata, IStorageFile[] files, List<Piece> pieces, long length)
    {
        Metadata = metadata;
        _files = files;
        _pieces = pieces;
        Length = length;
    }

    /// <summary>The index and term the snapshot ends at.</summary>
    public SnapshotMetadata Metadata { get; }

    public override bool CanRead => true;
    public override bool CanSeek => true;
    public override bool CanWrite => false;
    public override long Length { get; }

    public override long Position
    {
        get => _position;
        set => _position = Math.Clamp(value, 0, Length);
    }

    /// <inheritdoc/>
    public bool TryGetFileRange(long position, out string path, out long fileOffset, out long length)
    {
        path = "";
        fileOffset = 0;
        length = 0;
        if (position < 0 || position >= Length) return false;
        var piece = _pieces[Find(position)];
        if (piece.PhysicalPath is null) return false;
        path = piece.PhysicalPath;
        fileOffset = piece.FileOffset + (position - piece.Start);
        length = piece.Length - (position - piece.Start);
        return true;
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var n = (int)Math.Min(buffer.Length, Length - _position);
        if (n <= 0) return 0;
        var piece = _pieces[Find(_position)];
        var within = _position - piece.Start;
        n = (int)Math.Min(n, piece.Length - within);
        n = piece.File.Read(piece.FileOffset + within, buffer[..n]);
        _position += n;
        return n;
    }

    public override long Seek(long offset, SeekOrigin origin)
    {
        Position = origin switch
        {
            SeekOrigin.Begin => offset,
            SeekOrigin.Current => _position + offset,
            _ => Length + offset,
        };
        return _position;
    }

    public override void Flush()
    {
    }

    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
            foreach (var file in _files) file.Dispose();
        base.Dispose(disposing);
    }

    /// <summary>The piece holding <paramref name="position"/> (binary search; pieces are in order and never empty).</summary>
    private int Find(long position)
    {
        int lo = 0, hi = _pieces.Count - 1;
        while (lo < hi)
        {
            var mid = (lo + hi + 1) / 2;
            if (_pieces[mid].Start <= position) lo = mid;
            else hi = mid - 1;
        }
        return lo;
    }
}

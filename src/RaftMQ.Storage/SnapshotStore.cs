using System.Buffers.Binary;
using RaftMQ.Raft;
using RaftMQ.StateMachine;

namespace RaftMQ.Storage;

/// <summary>
/// Snapshot files in one directory, each written atomically (temporary file, fsync, rename, directory fsync) and
/// checked with a CRC-32C when opened. Owned by one node; not thread-safe.
/// </summary>
public sealed class SnapshotStore
{
    internal const ulong Magic = 0x4E53514D54464152; // "RAFTMQSN"

    /// <summary>The header layout without a cluster configuration: 48 bytes, then the data.</summary>
    internal const ushort Version = 1;

    /// <summary>
    /// The layout of a snapshot that records its cluster configuration: the 48 bytes of version 1 (whose header
    /// length field then covers the extension), the encoded configuration, its CRC-32C (u32), then the data. A
    /// snapshot without a configuration is still written as version 1.
    /// </summary>
    internal const ushort VersionWithConfiguration = 2;

    internal const int HeaderBytes = 48;

    /// <summary>The longest header: version 2 with a configuration of the most members.</summary>
    internal const int MaxHeaderBytes = HeaderBytes + 5 + (8 * ClusterConfiguration.MaxMembers) + 4;
    private const string TempSuffix = ".tmp";
    private long _writers;

    private readonly StorageOptions _options;
    private readonly IStorageFileSystem _fs;

    private SnapshotStore(string directory, StorageOptions options)
    {
        Directory = directory;
        _options = options;
        _fs = options.FileSystem;
    }

    /// <summary>Opens (or creates) the store in <paramref name="directory"/>, deleting unfinished temporary files.</summary>
    public static SnapshotStore Open(string directory, StorageOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        options ??= new StorageOptions();
        options.Validate();
        directory = Path.GetFullPath(directory);
        options.FileSystem.CreateDirectory(directory);
        var store = new SnapshotStore(directory, options);
        foreach (var tmp in options.FileSystem.ListFiles(directory, "*" + TempSuffix)) options.FileSystem.Delete(tmp);
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
    /// Opens the newest snapshot for reading after checking its header and checksum, or returns null when there
    /// is none.
    /// </summary>
    /// <exception cref="StorageCorruptedException">The newest snapshot is damaged.</exception>
    public SnapshotStream? OpenLatest()
    {
        var latest = Latest;
        if (latest is null) return null;
        var path = Path.Combine(Directory, FileName(latest.Value));
        var file = _fs.Open(path, create: false);
        try
        {
            Span<byte> header = stackalloc byte[MaxHeaderBytes];
            var problem = CheckHeader(header[..file.Read(0, header)], latest.Value, file.Length, out var dataLength, out var dataCrc,
                out var headerLength, out var configuration);
            if (problem is null)
            {
                var buffer = new byte[1024 * 1024];
                var crc = ~0u;
                for (long pos = 0; pos < dataLength;)
                {
                    var n = file.Read(headerLength + pos, buffer.AsSpan(0, (int)Math.Min(buffer.Length, dataLength - pos)));
                    if (n == 0) break;
                    crc = Crc32C.Append(crc, buffer.AsSpan(0, n));
                    pos += n;
                }
                if (~crc != dataCrc) problem = "data checksum mismatch";
            }
            if (problem is not null)
            {
                throw new StorageCorruptedException(
                    $"snapshot {path} is damaged: {problem}. The log was compacted up to it, so the node cannot rebuild its state without it. " +
                    "Do not start the node on this directory; restore it from a backup, or remove the node's data directory so it rejoins empty " +
                    "and receives a snapshot from the leader.", path, 0);
            }
            var metadata = latest.Value with { Configuration = configuration };
            return new SnapshotStream(metadata, file, headerLength, dataLength, _fs is PhysicalFileSystem ? path : null);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The cluster configuration recorded in the header of the snapshot ending at <paramref name="snapshot"/> (null
    /// when it records none, or there is no such file). Reads the header only; <see cref="OpenLatest"/> checks the data.
    /// </summary>
    /// <exception cref="StorageCorruptedException">The snapshot's header is damaged.</exception>
    public ClusterConfiguration? ReadConfiguration(SnapshotMetadata snapshot)
    {
        var path = Path.Combine(Directory, FileName(snapshot));
        if (!_fs.FileExists(path)) return null;
        using var file = _fs.Open(path, create: false);
        Span<byte> header = stackalloc byte[MaxHeaderBytes];
        var problem = CheckHeader(header[..file.Read(0, header)], snapshot, file.Length, out _, out _, out _, out var configuration);
        if (problem is not null)
        {
            throw new StorageCorruptedException(
                $"snapshot {path} is damaged: {problem}. Do not start the node on this directory; restore it from a backup, or remove the " +
                "node's data directory so it rejoins empty and receives a snapshot from the leader.", path, 0);
        }
        return configuration;
    }

    internal void Complete(SnapshotWriter writer, string tempPath)
    {
        var final = Path.Combine(Directory, FileName(writer.Metadata));
        _fs.Rename(tempPath, final);
        _fs.SyncDirectory(Directory);
        // Keep the newest few; older ones are covered by them.
        var all = List();
        all.Sort((a, b) => b.Meta.Index.CompareTo(a.Meta.Index));
        for (var i = _options.RetainSnapshots; i < all.Count; i++) _fs.Delete(all[i].Path);
        if (all.Count > _options.RetainSnapshots) _fs.SyncDirectory(Directory);
    }

    internal void Abort(string tempPath) => _fs.Delete(tempPath);

    /// <summary>The header's length for <paramref name="meta"/>: 48 bytes, more with a configuration.</summary>
    internal static int HeaderLength(SnapshotMetadata meta) =>
        meta.Configuration is { } c ? HeaderBytes + 5 + (8 * (c.Voters.Count + c.Learners.Count)) + 4 : HeaderBytes;

    internal static void WriteHeader(Span<byte> dst, SnapshotMetadata meta, long dataLength, uint dataCrc)
    {
        var length = HeaderLength(meta);
        dst[..length].Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(dst, Magic);
        BinaryPrimitives.WriteUInt16LittleEndian(dst[8..], meta.Configuration is null ? Version : VersionWithConfiguration);
        BinaryPrimitives.WriteUInt32LittleEndian(dst[12..], (uint)length);
        BinaryPrimitives.WriteUInt64LittleEndian(dst[16..], meta.Index);
        BinaryPrimitives.WriteUInt64LittleEndian(dst[24..], meta.Term);
        BinaryPrimitives.WriteUInt64LittleEndian(dst[32..], (ulong)dataLength);
        BinaryPrimitives.WriteUInt32LittleEndian(dst[40..], dataCrc);
        BinaryPrimitives.WriteUInt32LittleEndian(dst[44..], Crc32C.Compute(dst[..44]));
        if (meta.Configuration is { } configuration)
        {
            var encoded = configuration.Encode();
            encoded.CopyTo(dst[HeaderBytes..]);
            BinaryPrimitives.WriteUInt32LittleEndian(dst[(HeaderBytes + encoded.Length)..], Crc32C.Compute(encoded));
        }
    }

    private static string? CheckHeader(
        ReadOnlySpan<byte> src, SnapshotMetadata expected, long fileLength, out long dataLength, out uint dataCrc,
        out int headerLength, out ClusterConfiguration? configuration)
    {
        dataLength = 0;
        dataCrc = 0;
        headerLength = HeaderBytes;
        configuration = null;
        if (src.Length < HeaderBytes) return $"file is {fileLength} bytes, shorter than the {HeaderBytes}-byte header";
        if (BinaryPrimitives.ReadUInt64LittleEndian(src) != Magic) return "bad magic number (not a RaftMQ snapshot)";
        if (BinaryPrimitives.ReadUInt32LittleEndian(src[44..]) != Crc32C.Compute(src[..44])) return "header checksum mismatch";
        var version = BinaryPrimitives.ReadUInt16LittleEndian(src[8..]);
        if (version is not (Version or VersionWithConfiguration))
            return $"format version {version}, this build reads versions {Version} and {VersionWithConfiguration}";
        var meta = new SnapshotMetadata(BinaryPrimitives.ReadUInt64LittleEndian(src[16..]), BinaryPrimitives.ReadUInt64LittleEndian(src[24..]));
        if (meta != expected) return $"header says {meta.Index}/{meta.Term}, file name says {expected.Index}/{expected.Term}";
        var declared = BinaryPrimitives.ReadUInt32LittleEndian(src[12..]);
        if (version == VersionWithConfiguration)
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
        headerLength = (int)declared;
        if (version == Version && headerLength != HeaderBytes) return $"header length {declared}, version {Version} has {HeaderBytes}";
        dataLength = (long)BinaryPrimitives.ReadUInt64LittleEndian(src[32..]);
        dataCrc = BinaryPrimitives.ReadUInt32LittleEndian(src[40..]);
        if (fileLength != headerLength + dataLength) return $"file is {fileLength} bytes, header promises {headerLength + dataLength}";
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

/// <summary>A snapshot being written; <see cref="Commit"/> makes it durable and visible, disposing without it discards it.</summary>
public sealed class SnapshotWriter : Stream
{
    private readonly SnapshotStore _store;
    private readonly string _tempPath;
    private readonly IStorageFile _file;
    private readonly long _maxBytes;
    private readonly int _headerLength;
    private readonly byte[] _buffer = new byte[256 * 1024];
    private int _buffered;
    private long _written;
    private long _flushed;
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
        _crc = Crc32C.Append(_crc, buffer);
        _written += buffer.Length;
        while (buffer.Length > 0)
        {
            var n = Math.Min(buffer.Length, _buffer.Length - _buffered);
            buffer[..n].CopyTo(_buffer.AsSpan(_buffered));
            _buffered += n;
            buffer = buffer[n..];
            if (_buffered == _buffer.Length) FlushBuffer();
        }
    }

    /// <summary>Writes the header, fsyncs, renames into place and fsyncs the directory. Only then does the snapshot exist.</summary>
    public void Commit()
    {
        ObjectDisposedException.ThrowIf(_done, this);
        FlushBuffer();
        Span<byte> header = stackalloc byte[_headerLength];
        SnapshotStore.WriteHeader(header, Metadata, _written, ~_crc);
        _file.Write(0, header);
        _file.Sync();
        _file.Dispose();
        _done = true;
        _store.Complete(this, _tempPath);
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
            _store.Abort(_tempPath);
        }
        base.Dispose(disposing);
    }

    private void FlushBuffer()
    {
        if (_buffered == 0) return;
        _file.Write(_headerLength + _flushed, _buffer.AsSpan(0, _buffered));
        _flushed += _buffered;
        _buffered = 0;
    }
}

/// <summary>
/// The data of a snapshot opened for reading (its checksum already verified). On the operating system's file system
/// it tells a state machine where the file is (<see cref="ISnapshotFile"/>): committed snapshot files are never
/// written again, so the state machine may link to them instead of copying.
/// </summary>
public sealed class SnapshotStream : Stream, ISnapshotFile
{
    private readonly IStorageFile _file;
    private readonly long _start;
    private readonly string? _physicalPath;
    private long _position;

    internal SnapshotStream(SnapshotMetadata metadata, IStorageFile file, long start, long length, string? physicalPath = null)
    {
        Metadata = metadata;
        _file = file;
        _start = start;
        Length = length;
        _physicalPath = physicalPath;
    }

    /// <inheritdoc/>
    public bool TryGetFile(out string path, out long dataStart)
    {
        path = _physicalPath ?? "";
        dataStart = _start;
        return _physicalPath is not null;
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

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var n = (int)Math.Min(buffer.Length, Length - _position);
        if (n <= 0) return 0;
        n = _file.Read(_start + _position, buffer[..n]);
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
        if (disposing) _file.Dispose();
        base.Dispose(disposing);
    }
}

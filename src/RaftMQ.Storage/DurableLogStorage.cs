using System.Diagnostics;
using RaftMQ.Raft;

namespace RaftMQ.Storage;

/// <summary>
/// The durable Raft log: a write-ahead log of segment files in one directory (format in docs/storage.md).
/// Implements <see cref="ILogStorage"/> with the semantics of <see cref="MemoryLogStorage"/>.
/// <para>
/// Every <see cref="Save"/> writes batches: a header record carrying the hard state and the snapshot point, then
/// the entry records; a batch is all-or-nothing on recovery, and a Save larger than
/// <see cref="StorageOptions.MaxBatchBytes"/> is split into several. With <c>sync</c> it ends with a single fsync
/// (group commit). Hard state lives in the log rather than in its own file so that one fsync covers entries and
/// vote together; rewriting a file with rename per Ready would cost two more fsyncs.
/// </para>
/// <para>Not thread-safe: owned by one node's loop. A write or fsync failure is fatal (see <see cref="StorageFailedException"/>).</para>
/// </summary>
public sealed class DurableLogStorage : ILogStorage, IDisposable
{
    private const string LockFileName = "LOCK";

    private readonly StorageOptions _options;
    private readonly IStorageFileSystem _fs;
    private readonly string _directory;
    private readonly IDisposable _lock;
    private readonly List<SegmentFile> _segments = [];
    private readonly LogIndex _index = new();
    private readonly EntryCache _cache;
    private byte[] _writeBuffer = new byte[64 * 1024];
    private byte[]? _readBuffer;
    private long _durableEnd; // bytes of the active segment known to be on disk
    private DurableEndFile? _durableEndFile; // set by recovery
    private bool _unsynced;
    private Exception? _failure;
    private bool _disposed;

    private DurableLogStorage(string directory, StorageOptions options, IDisposable directoryLock)
    {
        _options = options;
        _fs = options.FileSystem;
        _directory = directory;
        _lock = directoryLock;
        _cache = new EntryCache(options.CacheEntries, options.CacheBytes);
        Recovery = null!;
    }

    /// <summary>
    /// Opens (or creates) the log in <paramref name="directory"/>, recovering from a crash: a torn tail that was
    /// never acknowledged is cut and described in <see cref="Recovery"/>.
    /// </summary>
    /// <exception cref="StorageCorruptedException">Damage recovery must not repair; the message says what to do.</exception>
    public static DurableLogStorage Open(string directory, StorageOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        options ??= new StorageOptions();
        options.Validate();
        directory = Path.GetFullPath(directory);
        options.FileSystem.CreateDirectory(directory);
        var directoryLock = options.FileSystem.Lock(Path.Combine(directory, LockFileName));
        var log = new DurableLogStorage(directory, options, directoryLock);
        try
        {
            log.Recover();
            return log;
        }
        catch
        {
            log.Dispose();
            throw;
        }
    }

    /// <summary>What recovery found and did; log it at start-up.</summary>
    public StorageRecoveryReport Recovery { get; private set; }

    // The configuration of the snapshot the log starts after, when known (the segments do not record it).
    private ClusterConfiguration? _snapshotConfiguration;

    /// <summary>The directory of the segment files.</summary>
    public string Directory => _directory;

    /// <inheritdoc />
    public HardState HardState { get; private set; }

    /// <inheritdoc />
    /// <remarks>
    /// The segments record only the snapshot's index and term; its cluster configuration is the one given to
    /// <see cref="Compact"/> or <see cref="InstallSnapshot"/>, or after a restart the one its snapshot file records
    /// (<see cref="AdoptSnapshotConfiguration"/>, which <see cref="NodeStorage.Open"/> calls).
    /// </remarks>
    public SnapshotMetadata Snapshot => _index.Snapshot with { Configuration = _snapshotConfiguration };

    /// <summary>
    /// Records the cluster configuration of the snapshot the log starts after, as its snapshot file has it; ignored
    /// unless <paramref name="snapshot"/> names that snapshot (same index and term).
    /// </summary>
    public void AdoptSnapshotConfiguration(SnapshotMetadata snapshot)
    {
        if (snapshot == _index.Snapshot) _snapshotConfiguration = snapshot.Configuration;
    }

    /// <inheritdoc />
    public ulong FirstIndex => _index.Snapshot.Index + 1;

    /// <inheritdoc />
    public ulong LastIndex => _index.LastIndex;

    /// <summary>Number of segment files.</summary>
    public int SegmentCount => _segments.Count;

    /// <inheritdoc />
    public ulong Term(ulong index) => _index.Term(index);

    /// <inheritdoc />
    public void ReadEntries(ulong from, ulong to, long maxBytes, List<Entry> into)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (from < FirstIndex || to > LastIndex + 1 || from >= to)
            throw new ArgumentOutOfRangeException(nameof(from), $"[{from}, {to}) not within [{FirstIndex}, {LastIndex + 1})");
        long bytes = 0;
        var i = from;
        while (i < to)
        {
            if (_cache.TryGet(i, out var cached))
            {
                into.Add(cached);
                bytes += cached.Size;
                i++;
                if (bytes >= maxBytes) return;
                continue;
            }
            // Not cached: read a run of entries from its segment, stopping where the cache takes over.
            var stop = _cache.Count > 0 && _cache.FirstIndex > i ? Math.Min(to, _cache.FirstIndex) : to;
            i = ReadFromDisk(i, stop, maxBytes, ref bytes, into);
            if (bytes >= maxBytes) return;
        }
    }

    // Reads entries [from, stop) of one segment (stopping at its end, a chunk, or the byte bound); returns the next index.
    private ulong ReadFromDisk(ulong from, ulong stop, long maxBytes, ref long bytes, List<Entry> into)
    {
        var (segment, offsets, position) = _index.Locate(from);
        var inRun = (ulong)(offsets.Count - position);
        var last = Math.Min(stop - 1, from + inRun - 1);
        long start = offsets[position];
        var runEnd = last - from + 1 < inRun ? offsets[position + (int)(last - from) + 1] : segment.Length;
        // One reused chunk buffer (not a fresh large array per read, which would pile up on the large object heap);
        // each entry gets a copy of its bytes. It grows to what the reads need, up to ReadChunkBytes: a node whose
        // reads are small (a follower catching up a few entries) never holds a whole chunk.
        var want = (int)Math.Min(runEnd - start, _options.ReadChunkBytes);
        if (_readBuffer is null || _readBuffer.Length < want)
            _readBuffer = new byte[Math.Max(want, (int)Math.Min(_options.ReadChunkBytes, 2L * (_readBuffer?.Length ?? 0)))];
        var buffer = _readBuffer;
        var filled = segment.File.Read(start, buffer.AsSpan(0, want));
        var i = from;
        while (i <= last)
        {
            var offset = (int)(offsets[position + (int)(i - from)] - start);
            if (offset + WalFormat.FrameBytes > filled || !FitsIn(buffer, offset, filled))
            {
                if (i != from) break;
                // A single record larger than the chunk: read exactly it.
                buffer = ReadRecord(segment, start);
                filled = buffer.Length;
            }
            var check = WalFormat.CheckRecord(buffer.AsSpan(offset, filled - offset), MaxBody, out var length, out var problem);
            if (check != WalFormat.Check.Valid || buffer[offset + WalFormat.FrameBytes] != WalFormat.EntryRecord
                || WalFormat.EntryIndex(buffer.AsSpan(offset + WalFormat.FrameBytes)) != i)
            {
                throw new StorageCorruptedException(
                    $"entry {i} in {segment.Path} at offset {start + offset} is unreadable ({(check == WalFormat.Check.Valid ? "another record is there" : problem)}); " +
                    "the file changed after it was written. Stop the node, and restore its directory from a replica or remove it so the node rejoins empty.",
                    segment.Path, start + offset);
            }
            var body = buffer.AsSpan(offset + WalFormat.FrameBytes);
            var data = buffer.AsSpan(offset + WalFormat.EntryRecordOverhead, length - WalFormat.EntryRecordOverhead).ToArray();
            var entry = new Entry(i, WalFormat.EntryTerm(body), WalFormat.EntryKind(body), data);
            into.Add(entry);
            bytes += entry.Size;
            i++;
            if (bytes >= maxBytes) break;
        }
        return i;
    }

    private int MaxBody => WalFormat.EntryBodyHeaderBytes + _options.MaxEntryBytes;

    private static bool FitsIn(byte[] buffer, int offset, int filled)
    {
        var length = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(offset + 4));
        return offset + WalFormat.FrameBytes + (long)length <= filled;
    }

    private byte[] ReadRecord(SegmentFile segment, long offset)
    {
        Span<byte> frame = stackalloc byte[WalFormat.FrameBytes];
        segment.File.Read(offset, frame);
        var length = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(frame[4..]);
        var total = (int)Math.Min(WalFormat.FrameBytes + (long)Math.Min(length, (uint)MaxBody), segment.Length - offset);
        var buffer = new byte[total];
        var n = segment.File.Read(offset, buffer);
        return n == total ? buffer : buffer[..n];
    }

    /// <summary>
    /// Persists one Raft Ready: appends <paramref name="entries"/> (first logically removing stored entries at or
    /// after the first new index) and <paramref name="hardState"/>, then fsyncs once when <paramref name="sync"/>.
    /// Entries are written as batches of at most <see cref="StorageOptions.MaxBatchBytes"/>, any number of them
    /// (group commit: still one fsync). After a crash each batch is recovered whole or not at all, and only a prefix
    /// of the batches can survive: the log then holds a prefix of <paramref name="entries"/>, with the new term and
    /// vote and a commit index clamped to the entries present (the full hard state goes with the last batch).
    /// </summary>
    /// <param name="hardState">The new hard state, or null to keep the current one.</param>
    /// <param name="entries">Consecutive entries; may be empty.</param>
    /// <param name="sync">Whether to fsync before returning (Ready.MustSync).</param>
    /// <exception cref="ArgumentException">The entries are not consecutive, leave a gap, overlap the snapshot, or one
    /// exceeds <see cref="StorageOptions.MaxEntryBytes"/>; nothing is written.</exception>
    /// <exception cref="StorageFailedException">A write or fsync failed; the storage accepts no more writes.</exception>
    public void Save(HardState? hardState, IReadOnlyList<Entry> entries, bool sync)
    {
        ArgumentNullException.ThrowIfNull(entries);
        ThrowIfUnwritable();
        var newState = hardState ?? HardState;
        if (entries.Count == 0)
        {
            if (newState != HardState)
            {
                WriteBatch(new WalFormat.BatchHeader(0, 0, LastIndex + 1, newState, Snapshot, 0), entries, 0, WalFormat.BatchRecordBytes);
                HardState = newState;
            }
            if (sync && _unsynced) SyncActive();
            return;
        }
        CheckAppend(entries);
        var start = 0;
        while (start < entries.Count)
        {
            var size = WalFormat.BatchRecordBytes;
            var end = start;
            // Validate() guarantees one entry of MaxEntryBytes fits in a batch, so each batch takes at least one.
            while (end < entries.Count && (end == start || size + WalFormat.EntryRecordBytes(entries[end]) <= _options.MaxBatchBytes))
                size += WalFormat.EntryRecordBytes(entries[end++]);
            Debug.Assert(size <= _options.MaxBatchBytes);
            var isLast = end == entries.Count;
            // A batch's hard state must not claim what a crash right after it could leave out: the commit index
            // may cover entries of later batches, so it is clamped to this batch's last entry. Term and vote go
            // with the first batch: the entries carry the new term, and persisting term and vote early is safe.
            var state = isLast ? newState : newState with { Commit = Math.Min(newState.Commit, entries[end - 1].Index) };
            var header = new WalFormat.BatchHeader(0, (uint)(end - start), entries[start].Index, state, Snapshot, 0);
            WriteBatch(header, entries, start, size);
            // Kept in step batch by batch: a segment rolled by the next batch opens with this state.
            HardState = state;
            start = end;
        }
        if (sync) SyncActive();
    }

    /// <summary>
    /// Writes one Ready like <see cref="Save"/> but leaves its fsync to the returned <see cref="LogSync"/>, which may
    /// run on another thread (<see cref="LogSync.Run"/>) while this storage is only read; hand it back to
    /// <see cref="CompleteSync"/> on the owner's thread before writing again. Until then nothing written here may be
    /// acknowledged as durable: a crash can lose any suffix of it (recovery cuts a torn tail).
    /// </summary>
    /// <exception cref="StorageFailedException">A write failed; the storage accepts no more writes.</exception>
    public LogSync SaveUnsynced(HardState? hardState, IReadOnlyList<Entry> entries)
    {
        Save(hardState, entries, sync: false);
        var sync = new LogSync(_unsynced ? Active : null, Active.Length, [], this);
        // A segment close to full is sealed and the next one created by this fsync, off the owner's thread, rather
        // than by a later write on it (Roll): the same steps in the same order, so recovery's rules do not change.
        if (Active.Length >= _options.SegmentBytes - _options.SegmentBytes / 8)
            sync.RollTo = new NextSegment(Active.Sequence + 1, LastIndex + 1, HardState, Snapshot);
        return sync;
    }

    // What a new segment opens with: its sequence number and the log's state at its start.
    internal sealed record NextSegment(ulong Sequence, ulong FirstIndex, HardState HardState, SnapshotMetadata Snapshot);

    /// <summary>
    /// Takes back a <see cref="LogSync"/> that ran: what it covered is durable from now on. Throws (and accepts no
    /// more writes) when its fsync failed.
    /// </summary>
    /// <exception cref="StorageFailedException">The fsync failed.</exception>
    public void CompleteSync(LogSync sync)
    {
        ArgumentNullException.ThrowIfNull(sync);
        ThrowIfUnwritable();
        if (!sync.Finished) throw new InvalidOperationException("the fsync has not run");
        if (sync.Error is { } error) throw Fail(sync.Operation, error);
        if (sync.Rolled is { } next)
        {
            // The old segment was fsynced, then the next one created durable, and DURABLE points into it.
            _segments.Add(next);
            _durableEnd = next.Length;
            _unsynced = false;
            return;
        }
        // A segment rolled since was fsynced when it was sealed; only the active one's durable end moves here.
        if (sync.Segment is null || !ReferenceEquals(sync.Segment, Active)) return;
        _durableEnd = Math.Max(_durableEnd, sync.Length);
        if (Active.Length != sync.Length) return; // written again meanwhile: still unsynced past sync.Length
        _unsynced = false;
        try
        {
            RecordDurableEnd(sync: false);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw Fail("fsync", ex);
        }
    }

    private void CheckAppend(IReadOnlyList<Entry> entries)
    {
        var first = entries[0].Index;
        if (first <= Snapshot.Index)
            throw new ArgumentException($"entry {first} is already covered by the snapshot at {Snapshot.Index}", nameof(entries));
        if (first > LastIndex + 1)
            throw new ArgumentException($"gap in the log: appending {first} after {LastIndex}", nameof(entries));
        for (var k = 0; k < entries.Count; k++)
        {
            var e = entries[k];
            if (e.Index != first + (ulong)k)
                throw new ArgumentException($"entries are not consecutive: {e.Index} at position {k} after {first}", nameof(entries));
            if (e.Data.Length > _options.MaxEntryBytes)
                throw new ArgumentException($"entry {e.Index} has {e.Data.Length} bytes, over MaxEntryBytes {_options.MaxEntryBytes}", nameof(entries));
            if (e.Type is not (EntryType.Command or EntryType.NoOp or EntryType.Configuration))
                throw new ArgumentException($"entry {e.Index} has unknown type {e.Type}", nameof(entries));
        }
    }

    /// <summary>
    /// Drops the entries a snapshot now covers, up to and including <paramref name="snapshot"/>.Index (all of them
    /// when it is past the last index), like <see cref="MemoryLogStorage.Compact"/>; deletes the segment files that
    /// hold only covered entries. Save the snapshot itself (<see cref="SnapshotStore"/>) first. Runs
    /// <see cref="CompactUnsynced"/> and its <see cref="LogSync"/> at once.
    /// </summary>
    /// <exception cref="ArgumentException">The log holds <paramref name="snapshot"/>.Index with another term.</exception>
    /// <exception cref="StorageFailedException">A write, fsync or deletion failed.</exception>
    public void Compact(SnapshotMetadata snapshot)
    {
        var sync = CompactUnsynced(snapshot);
        sync.Run();
        CompleteSync(sync);
    }

    /// <summary>
    /// Compacts like <see cref="Compact"/> but leaves the slow part to the returned <see cref="LogSync"/>, which may
    /// run on another thread while this storage is only read (hand it back to <see cref="CompleteSync"/> before
    /// writing again): the fsync of the compaction record, then the deletion of the segment files that now hold
    /// only covered entries (they are out of the log's view at once; their files go only once the record saying
    /// they are not needed is durable). A crash before it ran recovers the log as it was before the compaction.
    /// </summary>
    /// <exception cref="ArgumentException">The log holds <paramref name="snapshot"/>.Index with another term.</exception>
    /// <exception cref="StorageFailedException">The write failed.</exception>
    public LogSync CompactUnsynced(SnapshotMetadata snapshot)
    {
        ThrowIfUnwritable();
        if (snapshot.Index <= Snapshot.Index) return new LogSync(null, Active.Length, [], this);
        if (snapshot.Index <= LastIndex && Term(snapshot.Index) != snapshot.Term)
            throw new ArgumentException($"snapshot {snapshot.Index}/{snapshot.Term} does not match the log's term {Term(snapshot.Index)} at that index; use InstallSnapshot", nameof(snapshot));
        var reset = snapshot.Index > LastIndex;
        var header = new WalFormat.BatchHeader(reset ? WalFormat.FlagReset : (byte)0, 0,
            Math.Max(snapshot.Index, LastIndex) + 1, HardState, snapshot, 0);
        return WriteCompaction(header, snapshot);
    }

    /// <summary>
    /// Adopts a snapshot received from the leader (InstallSnapshot, §7): when the log holds the snapshot's last
    /// entry with the same term, the entries after it are kept; otherwise the whole log is discarded. Save the
    /// snapshot itself (<see cref="SnapshotStore"/>) first. Returns false (and does nothing) for a snapshot not
    /// newer than the current one.
    /// </summary>
    /// <exception cref="StorageFailedException">A write or fsync failed.</exception>
    public bool InstallSnapshot(SnapshotMetadata snapshot)
    {
        ThrowIfUnwritable();
        if (snapshot.Index <= Snapshot.Index) return false;
        if (snapshot.Index <= LastIndex && Term(snapshot.Index) == snapshot.Term)
        {
            Compact(snapshot);
            return true;
        }
        var header = new WalFormat.BatchHeader(WalFormat.FlagReset, 0, snapshot.Index + 1, HardState, snapshot, 0);
        var sync = WriteCompaction(header, snapshot);
        sync.Run();
        CompleteSync(sync);
        return true;
    }

    // Writes a compaction (or reset) record and takes the segments it leaves without a live entry out of the log's
    // view; the returned LogSync fsyncs the record, then deletes their files.
    private LogSync WriteCompaction(WalFormat.BatchHeader header, SnapshotMetadata snapshot)
    {
        WriteBatch(header, [], 0, WalFormat.BatchRecordBytes);
        _snapshotConfiguration = snapshot.Configuration;
        List<SegmentFile> covered = [];
        while (_segments.Count > 1 && !_index.References(_segments[0]))
        {
            covered.Add(_segments[0]);
            _segments.RemoveAt(0);
        }
        return new LogSync(Active, Active.Length, covered, this);
    }

    /// <summary>Fsyncs anything written without sync, and the DURABLE file.</summary>
    /// <exception cref="StorageFailedException">The fsync failed.</exception>
    public void Sync()
    {
        ThrowIfUnwritable();
        if (_unsynced) SyncActive();
        try
        {
            _durableEndFile?.Sync();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw Fail("fsync of the DURABLE file", ex);
        }
    }

    /// <summary>
    /// Closes the files and releases the directory lock. Does not fsync the log (call <see cref="Sync"/> first if
    /// needed); fsyncs the DURABLE file so that the next start checks the log against its latest durable end.
    /// </summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (_failure is null && _durableEndFile is not null)
        {
            try
            {
                _durableEndFile.Sync();
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // Ignored: an unsynced DURABLE file lags behind the log, which only makes the next recovery check less.
            }
        }
        _durableEndFile?.Dispose();
        foreach (var s in _segments) s.File.Dispose();
        _segments.Clear();
        _lock.Dispose();
    }

    // Writes one batch: the header and header.Count entries from entries[start], `size` bytes in all, with one write.
    private void WriteBatch(WalFormat.BatchHeader header, IReadOnlyList<Entry> entries, int start, int size)
    {
        try
        {
            if (Active.Length + size > _options.SegmentBytes) Roll();
            var active = Active;
            header = header with { DurableEnd = (ulong)_durableEnd };
            if (_writeBuffer.Length < size) _writeBuffer = new byte[Math.Max(size, Math.Min(_writeBuffer.Length * 2, _options.MaxBatchBytes))];
            var buf = _writeBuffer.AsSpan(0, size);
            WalFormat.WriteBatch(buf, header);
            var pos = WalFormat.BatchRecordBytes;
            var count = (int)header.Count;
            var offsets = count == 0 ? [] : new uint[count];
            for (var k = 0; k < count; k++)
            {
                var e = entries[start + k];
                offsets[k] = (uint)(active.Length + pos);
                WalFormat.WriteEntry(buf[pos..], e);
                pos += WalFormat.EntryRecordBytes(e);
            }
            Debug.Assert(pos == size);
            active.File.Write(active.Length, buf);
            active.Length += size;
            _unsynced = true;
            Apply(header, entries, start, offsets, active);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw Fail("write", ex);
        }
    }

    // Applies a batch to the in-memory view; recovery replays the same rules (LogIndex.ApplyHeader).
    private void Apply(WalFormat.BatchHeader header, IReadOnlyList<Entry> entries, int start, uint[] offsets, SegmentFile segment)
    {
        var problem = _index.ApplyHeader(header);
        Debug.Assert(problem is null, problem);
        if ((header.Flags & WalFormat.FlagReset) != 0) _cache.Clear();
        else _cache.CompactTo(header.Snapshot.Index);
        if (header.Count > 0) _cache.TruncateFrom(header.FirstIndex);
        for (var k = 0; k < offsets.Length; k++)
        {
            var e = entries[start + k];
            _index.Append(segment, e.Index, e.Term, offsets[k]);
            _cache.Add(e);
        }
    }

    private SegmentFile Active => _segments[^1];

    /// <summary>
    /// The fsync of what <see cref="SaveUnsynced"/> wrote: <see cref="Run"/> it once, on any thread, then give it back
    /// to <see cref="CompleteSync"/> on the storage owner's thread.
    /// </summary>
    public sealed class LogSync
    {
        private readonly IReadOnlyList<SegmentFile> _covered;
        private readonly DurableLogStorage _storage;
        private string _operation = "fsync";

        internal LogSync(SegmentFile? segment, long length, IReadOnlyList<SegmentFile> covered, DurableLogStorage storage)
        {
            Segment = segment;
            Length = length;
            _covered = covered;
            _storage = storage;
        }

        internal SegmentFile? Segment { get; }

        /// <summary>When set, <see cref="Run"/> seals the segment and creates this next one.</summary>
        internal NextSegment? RollTo { get; set; }

        /// <summary>The segment <see cref="Run"/> created, once it did.</summary>
        internal SegmentFile? Rolled { get; private set; }

        /// <summary>What failed: "fsync", "segment creation" or "segment deletion".</summary>
        internal string Operation => _operation;

        internal long Length { get; }

        internal bool Finished { get; private set; }

        /// <summary>Why the fsync failed, or null.</summary>
        public Exception? Error { get; private set; }

        /// <summary>Whether there is anything to do (a Ready that wrote nothing needs no fsync).</summary>
        public bool IsNeeded => Segment is not null || _covered.Count > 0 || RollTo is not null;

        /// <summary>
        /// Fsyncs the segment written to, then deletes, oldest first, the segment files a compaction left without a
        /// live entry: one directory fsync per deletion keeps the surviving files contiguous whatever order the file
        /// system persists unlinks in. Never throws: a failure is kept in <see cref="Error"/>.
        /// </summary>
        public void Run()
        {
            try
            {
                Segment?.File.Sync();
                if (RollTo is { } next)
                {
                    _operation = "segment creation";
                    Rolled = _storage.CreateSegment(next);
                    _storage.RecordDurableEnd(Rolled, next.FirstIndex - 1, next.HardState, sync: true);
                }
                _operation = "segment deletion";
                foreach (var s in _covered)
                {
                    s.File.Dispose();
                    _storage._fs.Delete(s.Path);
                    _storage._fs.SyncDirectory(_storage._directory);
                }
            }
            catch (Exception ex)
            {
                Error = ex; // reported on the owner's thread, which stops the node
                foreach (var s in _covered) s.File.Dispose();
            }
            Finished = true;
        }
    }

    private void SyncActive()
    {
        try
        {
            Active.File.Sync();
            _durableEnd = Active.Length;
            _unsynced = false;
            // After the fsync, so it claims only what is on disk; not fsynced itself (see DurableEndFile).
            RecordDurableEnd(sync: false);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw Fail("fsync", ex);
        }
    }

    private void RecordDurableEnd(bool sync)
    {
        Debug.Assert(!_unsynced && _durableEnd == Active.Length);
        RecordDurableEnd(Active, LastIndex, HardState, sync);
    }

    private void RecordDurableEnd(SegmentFile active, ulong lastIndex, HardState hardState, bool sync)
    {
        _durableEndFile!.Write(new DurableEnd(active.Sequence, active.Length, lastIndex, hardState));
        if (sync) _durableEndFile.Sync();
    }

    // Seals the active segment (fsynced, so only the last segment can ever have a torn tail) and starts the next.
    // DURABLE is fsynced here (once per segment): after a power cut it lags by less than one segment. Normally a
    // LogSync did this already (SaveUnsynced); this is for a write that fills the segment before one could.
    private void Roll()
    {
        Active.File.Sync();
        _unsynced = false;
        var next = CreateSegment(new NextSegment(Active.Sequence + 1, LastIndex + 1, HardState, Snapshot));
        _segments.Add(next);
        _durableEnd = next.Length;
        RecordDurableEnd(sync: true);
    }

    // A new segment is durable (data and directory entry) before any batch goes into it. Touches no field but the
    // file system's, so a LogSync may run it off the owner's thread.
    private SegmentFile CreateSegment(NextSegment next)
    {
        var path = Path.Combine(_directory, WalFormat.SegmentName(next.Sequence));
        var file = _fs.Open(path, create: true);
        Span<byte> head = stackalloc byte[WalFormat.SegmentOverhead];
        WalFormat.WriteSegmentHeader(head, next.Sequence);
        WalFormat.WriteBatch(head[WalFormat.SegmentHeaderBytes..],
            new WalFormat.BatchHeader(0, 0, next.FirstIndex, next.HardState, next.Snapshot, 0));
        file.Write(0, head);
        file.Sync();
        _fs.SyncDirectory(_directory);
        return new SegmentFile(next.Sequence, path, file, head.Length);
    }

    private StorageFailedException Fail(string operation, Exception ex)
    {
        _failure = ex;
        return new StorageFailedException(
            $"{operation} in {_directory} failed; whether the data reached the disk is unknown, so this storage accepts no more writes. " +
            "Stop the node and restart it: recovery keeps what is durable.", ex);
    }

    private void ThrowIfUnwritable()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_failure is not null)
            throw new StorageFailedException($"storage in {_directory} failed earlier ({_failure.Message}) and accepts no more writes; restart the node", _failure);
    }

    private void Recover()
    {
        var clock = Stopwatch.StartNew();
        _durableEndFile = DurableEndFile.Open(_fs, _directory);
        var recovery = new WalRecovery(_fs, _directory, _options, _index, _durableEndFile?.Current);
        var result = recovery.Run();
        _segments.AddRange(result.Segments);
        HardState = result.HardState;
        var created = _segments.Count == 0;
        var durableEndMissing = !created && _durableEndFile is null;
        if (created)
        {
            // DURABLE first: a directory with segments and no DURABLE is then never one this version wrote.
            _durableEndFile ??= DurableEndFile.Create(_fs, _directory, DurableEnd.None);
            _segments.Add(CreateSegment(new NextSegment(1, LastIndex + 1, HardState, Snapshot)));
        }
        else if (_durableEndFile is null)
        {
            // Written by an older version, or DURABLE was deleted: what is there now becomes the durable end.
            Active.File.Sync();
            _durableEnd = Active.Length;
            _durableEndFile = DurableEndFile.Create(_fs, _directory, new DurableEnd(Active.Sequence, _durableEnd, LastIndex, HardState));
        }
        _durableEnd = Active.Length;
        if (created) RecordDurableEnd(sync: true);
        if (HardState.Commit > LastIndex)
        {
            throw new StorageCorruptedException(
                $"the log in {_directory} ends at {LastIndex} but its hard state says {HardState.Commit} is committed: committed entries were lost " +
                $"({(result.TruncatedFile is null ? "no tail was cut" : $"a tail was cut from {result.TruncatedFile}")}). " +
                "Do not start this node on this directory; restore it from a replica or remove it so the node rejoins empty.",
                result.TruncatedFile, result.TruncatedAtOffset);
        }
        Recovery = new StorageRecoveryReport
        {
            Directory = _directory,
            CreatedNew = created,
            Segments = result.Segments.Count,
            BytesScanned = result.BytesScanned,
            HardState = HardState,
            Snapshot = Snapshot,
            LastIndex = LastIndex,
            TruncatedFile = result.TruncatedFile,
            TruncatedAtOffset = result.TruncatedAtOffset,
            TruncatedBytes = result.TruncatedBytes,
            DiscardedEntries = result.DiscardedEntries,
            TruncationReason = result.TruncationReason,
            DeletedFiles = result.DeletedFiles,
            DurableEndMissing = durableEndMissing,
            Duration = clock.Elapsed,
        };
    }
}

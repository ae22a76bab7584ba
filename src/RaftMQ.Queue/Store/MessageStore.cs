using System.Text;
using RaftMQ.StateMachine;

namespace RaftMQ.Queue.Store;

/// <summary>
/// The queue's messages on disk: per topic, append-only segment files in one directory, written as entries are
/// applied and read back as they are consumed; in memory only the topics' cursors and segment lists, one write
/// buffer and one read buffer (docs/queue-store.md). Used from the state machine's loop thread only, except the
/// snapshots it captures, which are written on another thread.
/// </summary>
internal sealed class MessageStore : IDisposable
{
    private const string SegmentSuffix = ".seg";
    private const uint SnapshotMagic = 0x51464D52; // "RMFQ"
    private const byte LegacySnapshotVersion = 1; // topics of UTF-8 strings, from before the store
    private const byte RecordsSnapshotVersion = 2; // records only, from before consumer groups
    private const byte GroupsSnapshotVersion = 3; // every record between head and tail, from before compaction
    private const byte ExtentsSnapshotVersion = 4; // only the records some group has not finished, as extents
    private const byte SnapshotVersion = 5; // version 4 and the queue-wide bounds, written only once they were set

    private readonly Dictionary<string, TopicLog> _topics = new(StringComparer.Ordinal);
    private readonly List<TopicLog> _order = [];
    private byte[] _writeBuffer;
    private int _pending;
    private long _pendingPosition;
    private Segment? _pendingSegment;
    private readonly byte[] _readBuffer;
    private Segment? _cached;
    private long _cacheStart;
    private int _cacheLength;
    private int _generation;
    private int _nextTopicId;
    private int _rewrites;
    private bool _disposed;
    private readonly Writeback _writeback;

    /// <summary>Opens the store over <paramref name="directory"/>, deleting the segment files a previous run left there.</summary>
    public MessageStore(string directory, QueueStoreOptions options)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Directory = Path.GetFullPath(directory);
        Options = options;
        _writeBuffer = new byte[options.WriteBufferBytes];
        _readBuffer = new byte[options.ReadBufferBytes];
        _writeback = new Writeback(options.WritebackBytes);
        // Owner-only when created here (0700), like the node's data directory it normally sits in.
        if (OperatingSystem.IsWindows()) System.IO.Directory.CreateDirectory(Directory);
        else System.IO.Directory.CreateDirectory(Directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        // Nothing of an earlier run is trusted: the state is rebuilt from the snapshot and the log (RestoreSnapshot
        // and Apply), so a file torn by a crash is never read. Only the store's own files are touched.
        foreach (var file in System.IO.Directory.EnumerateFiles(Directory, "*" + SegmentSuffix)) File.Delete(file);
    }

    public string Directory { get; }

    public QueueStoreOptions Options { get; }

    public IReadOnlyList<TopicLog> Topics => _order;

    /// <summary>
    /// The topics as of the last creation or restore, safe to read from any thread (a copy replaced, never changed):
    /// for metrics, whose readers must not wait for the node's loop. Each topic's counters read from it may be a
    /// moment old and not consistent with each other.
    /// </summary>
    public IReadOnlyList<TopicLog> TopicsForReaders => Volatile.Read(ref _published);

    private TopicLog[] _published = [];

    /// <summary>Messages waiting in all topics.</summary>
    public long TotalMessages { get; private set; }

    /// <summary>Bytes of the waiting messages' records in all topics.</summary>
    public long TotalBytes { get; private set; }

    public TopicLog? Find(string name) => _topics.GetValueOrDefault(name);

    public TopicLog CreateTopic(string name) => AddTopic(name, 0, 0);

    /// <summary>The replicated clock: the latest leader time applied (Unix ms), carried by snapshots.</summary>
    public long Clock { get; set; }

    /// <summary>
    /// The queue-wide bounds the log set (<see cref="QueueOp.SetLimits"/>), carried by snapshots; null while none was
    /// applied (the limits' <see cref="QueueLimits.InitialBounds"/> hold then).
    /// </summary>
    public QueueBounds? Bounds { get; set; }

    /// <summary>Called for each topic a snapshot restores without consumption state (older formats): gives it its initial state.</summary>
    public Action<TopicLog>? InitialState { get; set; }

    /// <summary>Deletes <paramref name="topic"/>: its files go once no snapshot references them.</summary>
    public void RemoveTopic(TopicLog topic)
    {
        Counted(-topic.Count, -topic.Bytes);
        topic.RetireAll();
        _topics.Remove(topic.Name);
        _order.Remove(topic);
        Volatile.Write(ref _published, [.. _order]);
    }

    /// <summary>Writes out the write buffer (no fsync). Called at the end of every applied command and before any read.</summary>
    public void Flush()
    {
        if (_pending == 0) return;
        _pendingSegment!.Write(_pendingPosition, _writeBuffer.AsSpan(0, _pending));
        _writeback.Written(_pendingSegment, _pendingPosition, _pending);
        _pending = 0;
        _pendingSegment = null;
    }

    internal void Counted(long messages, long bytes)
    {
        TotalMessages += messages;
        TotalBytes += bytes;
    }

    /// <summary>The buffer space for the next <paramref name="size"/> bytes of <paramref name="segment"/>.</summary>
    internal Span<byte> Reserve(Segment segment, int size)
    {
        if (_pendingSegment != segment || _pending + size > _writeBuffer.Length) Flush();
        if (size > _writeBuffer.Length) _writeBuffer = new byte[size]; // one record larger than the buffer: bounded by MaxMessageBytes
        var position = segment.Grow(size);
        if (_pending == 0) _pendingPosition = position;
        _pendingSegment = segment;
        var span = _writeBuffer.AsSpan(_pending, size);
        _pending += size;
        return span;
    }

    internal Segment CreateSegment(TopicLog topic, ulong firstOffset) =>
        Segment.Create(SegmentPath(topic, firstOffset), firstOffset);

    /// <summary>
    /// Writes the records of <paramref name="keep"/> (extents of one sealed segment of <paramref name="topic"/>, in
    /// order) into a new sealed segment, back to back, and returns their extents there (compaction).
    /// </summary>
    internal List<Extent> Rewrite(TopicLog topic, List<Extent> keep)
    {
        Flush();
        var path = Path.Combine(Directory, $"g{_generation}-t{topic.Id}-{keep[0].FirstOffset:D20}-c{++_rewrites}{SegmentSuffix}");
        var segment = Segment.Create(path, keep[0].FirstOffset);
        var result = new List<Extent>(keep.Count);
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(256 * 1024);
        try
        {
            foreach (var e in keep)
            {
                var physical = segment.Size;
                for (long done = 0; done < e.Length;)
                {
                    var n = (int)Math.Min(buffer.Length, e.Length - done);
                    if (e.Segment.Read(e.Physical + done, buffer.AsSpan(0, n)) != n)
                        throw Corrupt(e.Segment, e.Physical + done, "the file ends before the records it holds");
                    var at = segment.Grow(n);
                    segment.Write(at, buffer.AsSpan(0, n));
                    _writeback.Written(segment, at, n);
                    done += n;
                }
                result.Add(e with { Segment = segment, Physical = physical });
            }
        }
        catch
        {
            segment.Release();
            throw;
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
        segment.Seal();
        return result;
    }

    /// <summary>The file of <paramref name="topic"/>'s segment from <paramref name="firstOffset"/> in this generation.</summary>
    private string SegmentPath(TopicLog topic, ulong firstOffset) =>
        Path.Combine(Directory, $"g{_generation}-t{topic.Id}-{firstOffset:D20}{SegmentSuffix}");

    /// <summary>The store is done with <paramref name="segment"/>: the file goes when no snapshot references it either.</summary>
    internal void Retire(Segment segment)
    {
        if (_pendingSegment == segment)
        {
            _pending = 0;
            _pendingSegment = null;
        }
        if (_cached == segment) _cached = null;
        segment.Close();
        segment.Release();
    }

    /// <summary>
    /// Reads and checks the record of <paramref name="offset"/> at <paramref name="position"/>; returns the whole
    /// record (see <see cref="MessageRecord"/> for its fields), valid until the next call. Sequential pops are served from the read buffer, one file read per buffer-full.
    /// </summary>
    internal ReadOnlySpan<byte> ReadRecord(Segment segment, long position, ulong offset, out int recordSize)
    {
        Flush();
        if (!Cached(segment, position, MessageRecord.PrefixBytes)) Fill(segment, position);
        if (!Cached(segment, position, MessageRecord.PrefixBytes)) throw Corrupt(segment, position, "the file ends inside a record");
        var size = MessageRecord.SizeFromPrefix(_readBuffer.AsSpan((int)(position - _cacheStart)));
        if (size < 0 || position + size > segment.Size) throw Corrupt(segment, position, "record length out of range");
        recordSize = (int)size;
        if (!Cached(segment, position, recordSize) && recordSize <= _readBuffer.Length) Fill(segment, position);
        ReadOnlySpan<byte> record;
        if (Cached(segment, position, recordSize))
        {
            record = _readBuffer.AsSpan((int)(position - _cacheStart), recordSize);
        }
        else
        {
            // Larger than the read buffer (or the file is short, which the read below reports).
            var large = new byte[recordSize];
            if (segment.Read(position, large) != recordSize) throw Corrupt(segment, position, "the file ends inside a record");
            record = large;
        }
        _ = MessageRecord.Check(record, offset, out var problem) ?? throw Corrupt(segment, position, problem!);
        return record;
    }

    /// <summary>How many bytes of topic states one buffer of a capture holds before the next topic starts a new one.</summary>
    private const int CaptureBufferBytes = 64 << 20;

    /// <summary>
    /// Captures every topic's cursors and segment sizes (O(topics + segments), no message is copied) and state: the
    /// settings, totals and each group's cursor and floor are copied (O(topics + groups)); the groups' leases, pending
    /// messages and finished ranges, the deduplication ids and the delayed messages are not (held as they are and
    /// written by the writer).
    /// </summary>
    public IStateMachineSnapshot Capture()
    {
        Flush(); // the snapshot reads the files, not the buffer
        var topics = new CapturedTopic[_order.Count];
        // The topics' states go into shared buffers (per topic only the bytes of its state, no stream, writer or array
        // of its own), a new one once a buffer holds CaptureBufferBytes, so that no buffer nears an array's 2 GB.
        List<byte[]> buffers = [];
        var first = 0;
        while (first < topics.Length)
        {
            using var states = new MemoryStream();
            using (var w = new BinaryWriter(states, Encoding.UTF8, leaveOpen: true))
            {
                do topics[first] = _order[first].Capture(w, buffers.Count);
                while (++first < topics.Length && states.Length < CaptureBufferBytes);
            }
            buffers.Add(states.GetBuffer());
        }
        return new Snapshot(topics, buffers, Clock, Bounds);
    }

    /// <summary>Replaces every topic and file with the state in <paramref name="source"/>.</summary>
    public void Restore(Stream source)
    {
        using var r = new BinaryReader(source, Encoding.UTF8, leaveOpen: true);
        if (r.ReadUInt32() != SnapshotMagic) throw new InvalidDataException("not a queue snapshot");
        var version = r.ReadByte();
        if (version is not (LegacySnapshotVersion or RecordsSnapshotVersion or GroupsSnapshotVersion or ExtentsSnapshotVersion or SnapshotVersion))
            throw new InvalidDataException($"unknown queue snapshot version {version}");
        Clear();
        // New file names: files of the replaced state may still be read by a snapshot being written.
        _generation++;
        var withGroups = version >= GroupsSnapshotVersion;
        Clock = withGroups ? r.ReadInt64() : 0;
        Bounds = version >= SnapshotVersion ? ReadBounds(r) : null;
        var topics = r.ReadInt32();
        if (topics < 0) throw new InvalidDataException("negative topic count");
        var files = version != LegacySnapshotVersion && source.CanSeek ? source as ISnapshotFile : null;
        for (int i = 0; i < topics; i++)
        {
            var name = r.ReadString();
            if (_topics.ContainsKey(name)) throw new InvalidDataException($"topic {name} twice in the snapshot");
            var logicalHead = withGroups ? r.ReadInt64() : 0;
            TopicLog topic;
            if (version == LegacySnapshotVersion)
            {
                topic = RestoreLegacyTopic(r, name);
            }
            else
            {
                var range = ReadRange(r, name, logicalHead, version >= ExtentsSnapshotVersion);
                topic = files is not null && TryRestoreLinkedTopic(r, range, files) is { } linked ? linked : RestoreTopic(r, range);
            }
            if (withGroups)
            {
                var length = r.ReadInt32();
                if (length < 0) throw new InvalidDataException($"topic {name}: bad state length {length}");
                var state = r.ReadBytes(length);
                if (state.Length != length) throw new EndOfStreamException($"the snapshot ends inside the state of topic {name}");
                using var stateReader = new BinaryReader(new MemoryStream(state), Encoding.UTF8);
                topic.State = Groups.TopicState.Read(stateReader, name, topic.Head, topic.Tail);
                if (stateReader.BaseStream.Position != length) throw new InvalidDataException($"topic {name}: bytes left over after its state");
            }
            else
            {
                InitialState?.Invoke(topic);
            }
        }
        Flush();
    }

    private static QueueBounds ReadBounds(BinaryReader r)
    {
        var bounds = new QueueBounds(r.ReadInt64(), r.ReadInt64(), r.ReadInt64(), r.ReadInt64());
        if (bounds.MaxBytes < 1 || bounds.MaxMessages < 1 || bounds.MaxTopicBytes < 1 || bounds.MaxTopicMessages < 1)
            throw new InvalidDataException($"bad queue-wide bounds {bounds}");
        return bounds;
    }

    /// <summary>A topic's range in a snapshot: head, tail, logical bytes between them, and the extents holding the kept records.</summary>
    private sealed record SnapshotRange(string Name, ulong Head, ulong Tail, long LogicalHead, long Bytes, List<(ulong FirstOffset, long Logical, long Length)> Extents)
    {
        public long Kept => Extents.Sum(e => e.Length);
    }

    /// <summary>
    /// Reads a topic's range: with <paramref name="extents"/> (version 4) its extent table, else (versions 2 and 3)
    /// one extent of every record between head and tail. Checks the extents lie in order within the range.
    /// </summary>
    private static SnapshotRange ReadRange(BinaryReader r, string name, long logicalHead, bool extents)
    {
        var head = r.ReadUInt64();
        var tail = r.ReadUInt64();
        var bytes = r.ReadInt64();
        if (tail < head || bytes < 0 || (tail - head) > (ulong)(bytes / MessageRecord.OverheadBytes))
            throw new InvalidDataException($"topic {name}: bad range [{head}, {tail}) of {bytes} bytes");
        List<(ulong, long, long)> list = [];
        if (!extents)
        {
            if (tail > head) list.Add((head, logicalHead, bytes));
        }
        else
        {
            var count = r.ReadInt32();
            if (count < 0 || (ulong)count > tail - head) throw new InvalidDataException($"topic {name}: bad extent count {count}");
            var offset = head;
            var logical = logicalHead;
            for (int i = 0; i < count; i++)
            {
                var first = r.ReadUInt64();
                var position = r.ReadInt64();
                var length = r.ReadInt64();
                if (first < offset || first >= tail || position < logical || length < MessageRecord.OverheadBytes
                    || length > logicalHead + bytes - position || (i == 0 && (first != head || position != logicalHead)))
                    throw new InvalidDataException($"topic {name}: extent {i} (offset {first} at {position}, {length} bytes) out of order or outside the range");
                list.Add((first, position, length));
                offset = first + 1;
                logical = position + length;
            }
            if (tail > head && count == 0) throw new InvalidDataException($"topic {name}: messages but no extent");
        }
        return new SnapshotRange(name, head, tail, logicalHead, bytes, list);
    }

    /// <summary>
    /// Restores a topic by linking its records where the snapshot's files hold them (already in segment format, and
    /// the snapshot's checksum was verified when it was opened): one linked segment per file range, O(1) per extent
    /// whatever the backlog. Each record is still checked (length, CRC, offset) when it is read. Null, having
    /// consumed nothing, when some range is not in a file or the file system cannot link; the caller then copies.
    /// </summary>
    private TopicLog? TryRestoreLinkedTopic(BinaryReader r, SnapshotRange range, ISnapshotFile files)
    {
        var source = r.BaseStream;
        var start = source.Position;
        if (range.Kept > source.Length - start)
            throw new InvalidDataException($"topic {range.Name}: {range.Kept} bytes of records announced, {source.Length - start} left in the snapshot");
        var topic = AddTopic(range.Name, range.Head, range.LogicalHead);
        List<Extent> extents = [];
        List<Segment> linked = [];
        var position = start;
        var run = 0;
        long inRun = 0; // bytes of the current extent already placed
        var previous = range.Head;
        while (run < range.Extents.Count)
        {
            // One link per file range, holding the extents (or the parts of one) that lie in it back to back.
            if (!files.TryGetFileRange(position, out var path, out var fileOffset, out var contiguous) || contiguous <= 0) return Abandon();
            var pieces = extents.Count;
            long taken = 0;
            while (run < range.Extents.Count && taken < contiguous)
            {
                var (first, logical, length) = range.Extents[run];
                var take = Math.Min(length - inRun, contiguous - taken);
                // An extent split over two file ranges (its bytes linked from two files): its second part starts at a
                // record whose offset the file says.
                var firstOffset = inRun == 0 ? first : FirstOffsetAt(range.Name, path, fileOffset + taken, previous, range.Tail);
                extents.Add(new Extent(null!, fileOffset + taken, firstOffset, logical + inRun, take));
                previous = firstOffset;
                taken += take;
                inRun += take;
                if (inRun == length)
                {
                    run++;
                    inRun = 0;
                }
            }
            var segment = Segment.TryLink(path, SegmentPath(topic, extents[pieces].FirstOffset), extents[pieces].FirstOffset, fileOffset + taken);
            if (segment is null) return Abandon();
            linked.Add(segment);
            for (var k = pieces; k < extents.Count; k++) extents[k] = extents[k] with { Segment = segment };
            position += taken;
        }
        topic.AdoptLinked(extents, range.Tail, range.Bytes);
        source.Position = position;
        return topic;

        TopicLog? Abandon()
        {
            foreach (var done in linked) done.Release();
            _topics.Remove(range.Name);
            _order.RemoveAt(_order.Count - 1);
            Volatile.Write(ref _published, [.. _order]);
            source.Position = start;
            return null;
        }
    }

    /// <summary>The offset of the record at <paramref name="fileOffset"/> of <paramref name="path"/>, which must lie after <paramref name="previous"/> and before <paramref name="tail"/>.</summary>
    private static ulong FirstOffsetAt(string name, string path, long fileOffset, ulong previous, ulong tail)
    {
        Span<byte> prefix = stackalloc byte[MessageRecord.PrefixBytes + sizeof(ulong)];
        using (var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete))
        {
            if (RandomAccess.Read(handle, prefix, fileOffset) != prefix.Length)
                throw new InvalidDataException($"topic {name}: the snapshot's range in {path} ends inside a record");
        }
        var offset = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(prefix[MessageRecord.PrefixBytes..]);
        if (offset <= previous || offset >= tail)
            throw new InvalidDataException($"topic {name}: a range of the snapshot in {path} starts at offset {offset}, outside ({previous}, {tail})");
        return offset;
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _writeback.Dispose();
        Clear();
    }

    private TopicLog AddTopic(string name, ulong head, long logicalHead)
    {
        var topic = new TopicLog(this, name, _nextTopicId++, head, logicalHead);
        _topics.Add(name, topic);
        _order.Add(topic);
        Volatile.Write(ref _published, [.. _order]);
        return topic;
    }

    private void Clear()
    {
        foreach (var topic in _order) topic.RetireAll();
        _topics.Clear();
        _order.Clear();
        _nextTopicId = 0;
        Volatile.Write(ref _published, []);
        TotalMessages = 0;
        TotalBytes = 0;
    }

    /// <summary>Restores a topic by copying its records out of the snapshot, each checked.</summary>
    private TopicLog RestoreTopic(BinaryReader r, SnapshotRange range)
    {
        var name = range.Name;
        var topic = AddTopic(name, range.Head, range.LogicalHead);
        var record = new byte[MessageRecord.OverheadBytes];
        foreach (var (first, logical, length) in range.Extents)
        {
            topic.SkipTo(first, logical);
            for (long read = 0; read < length;)
            {
                r.BaseStream.ReadExactly(record.AsSpan(0, MessageRecord.PrefixBytes));
                var size = MessageRecord.SizeFromPrefix(record);
                if (size < 0 || size > length - read || size > Array.MaxLength) throw new InvalidDataException($"topic {name}: record {topic.Tail} has a bad length");
                if (size > record.Length) Array.Resize(ref record, (int)size);
                r.BaseStream.ReadExactly(record.AsSpan(MessageRecord.PrefixBytes, (int)size - MessageRecord.PrefixBytes));
                if (MessageRecord.Check(record.AsSpan(0, (int)size), topic.Tail, out var problem) is null)
                    throw new InvalidDataException($"topic {name}: record {topic.Tail}: {problem}");
                if (topic.Tail >= range.Tail) throw new InvalidDataException($"topic {name}: more records than [{range.Head}, {range.Tail}) holds");
                topic.AppendRecord(record.AsSpan(0, (int)size));
                read += size;
            }
        }
        if (topic.LogicalTail > range.LogicalHead + range.Bytes)
            throw new InvalidDataException($"topic {name}: {topic.LogicalTail - range.LogicalHead} bytes of records where {range.Bytes} were announced");
        topic.SkipTo(range.Tail, range.LogicalHead + range.Bytes);
        return topic;
    }

    private TopicLog RestoreLegacyTopic(BinaryReader r, string name)
    {
        var topic = AddTopic(name, 0, 0);
        var count = r.ReadInt32();
        for (int j = 0; j < count; j++) topic.Append([], Encoding.UTF8.GetBytes(r.ReadString()), timestamp: 0);
        return topic;
    }

    private bool Cached(Segment segment, long position, int count) =>
        _cached == segment && position >= _cacheStart && position + count <= _cacheStart + _cacheLength;

    private void Fill(Segment segment, long position)
    {
        _cached = segment;
        _cacheStart = position;
        _cacheLength = segment.Read(position, _readBuffer);
    }

    private static QueueStoreCorruptException Corrupt(Segment segment, long position, string problem) => new(segment.Path, position, problem);

    /// <summary>
    /// A captured state: each topic's range and its segments, retained until disposed so that the loop's compaction
    /// cannot delete them. <see cref="WriteTo"/> copies the live records from the files (format in docs/queue-store.md).
    /// </summary>
    private sealed class Snapshot(CapturedTopic[] topics, List<byte[]> states, long clock, QueueBounds? bounds) : IStateMachineSnapshot
    {
        private int _disposed;

        public void WriteTo(Stream destination)
        {
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
            using var w = new BinaryWriter(destination, Encoding.UTF8, leaveOpen: true);
            w.Write(SnapshotMagic);
            // Version 4 while the bounds were never set, so that such a state stays readable by nodes of earlier builds.
            w.Write(bounds is null ? ExtentsSnapshotVersion : SnapshotVersion);
            w.Write(clock);
            if (bounds is not null)
            {
                w.Write(bounds.MaxBytes);
                w.Write(bounds.MaxMessages);
                w.Write(bounds.MaxTopicBytes);
                w.Write(bounds.MaxTopicMessages);
            }
            w.Write(topics.Length);
            var buffer = new byte[64 * 1024];
            foreach (var topic in topics)
            {
                w.Write(topic.Name);
                w.Write(topic.LogicalHead);
                w.Write(topic.Head);
                w.Write(topic.Tail);
                w.Write(topic.Bytes);
                // The table lists the runs of kept records, whatever files hold them (extents that follow each other
                // logically are one run), so the same state gives the same snapshot on every node.
                List<(ulong FirstOffset, long Logical, long Length)> runs = [];
                long kept = 0;
                foreach (var e in topic.Extents)
                {
                    if (runs.Count > 0 && runs[^1].Logical + runs[^1].Length == e.Logical) runs[^1] = runs[^1] with { Length = runs[^1].Length + e.Length };
                    else runs.Add((e.FirstOffset, e.Logical, e.Length));
                    kept += e.Length;
                }
                w.Write(runs.Count);
                foreach (var (first, logical, length) in runs)
                {
                    w.Write(first);
                    w.Write(logical);
                    w.Write(length);
                }
                long written = 0;
                // A link keeps the whole file alive while the snapshot lives: worth it only for a segment whose
                // records the snapshot mostly keeps. The rest of a file mostly finished (or rewritten by compaction
                // since) is copied instead, so the snapshot does not hold it on disk.
                var keptIn = new Dictionary<Segment, (long Kept, long End)>();
                foreach (var e in topic.Extents)
                {
                    var (k, end) = keptIn.GetValueOrDefault(e.Segment);
                    keptIn[e.Segment] = (k + e.Length, Math.Max(end, e.Physical + e.Length));
                }
                foreach (var e in topic.Extents)
                {
                    // Sealed bytes never change and the active segment only grows, so an extent's bytes can be linked.
                    w.Flush();
                    var (keptBytes, extentEnd) = keptIn[e.Segment];
                    if (keptBytes * 2 >= extentEnd && destination is ISnapshotFileSink sink && sink.TryAppendFileRange(e.Segment.Path, e.Physical, e.Length))
                    {
                        written += e.Length;
                        continue;
                    }
                    using var file = Segment.OpenForSnapshot(e.Segment.Path);
                    for (var position = e.Physical; position < e.Physical + e.Length;)
                    {
                        var n = RandomAccess.Read(file, buffer.AsSpan(0, (int)Math.Min(buffer.Length, e.Physical + e.Length - position)), position);
                        if (n == 0) throw new QueueStoreCorruptException(e.Segment.Path, position, "the file ends before its captured size");
                        w.Write(buffer, 0, n);
                        position += n;
                        written += n;
                    }
                }
                if (written != kept)
                    throw new InvalidOperationException($"topic {topic.Name}: wrote {written} bytes of records where {kept} were captured");
                topic.State.WriteTo(w, states);
            }
            w.Flush();
        }

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
            foreach (var topic in topics)
            {
                Segment? previous = null;
                foreach (var e in topic.Extents)
                {
                    if (e.Segment == previous) continue;
                    e.Segment.Release();
                    previous = e.Segment;
                }
            }
        }
    }
}

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
    private const byte SnapshotVersion = 3;

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
    private bool _disposed;

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

    /// <summary>Captures every topic's cursors and segment sizes (O(topics + segments), no message is copied).</summary>
    public IStateMachineSnapshot Capture()
    {
        Flush(); // the snapshot reads the files, not the buffer
        var topics = new CapturedTopic[_order.Count];
        for (int i = 0; i < topics.Length; i++) topics[i] = _order[i].Capture();
        return new Snapshot(topics, Clock);
    }

    /// <summary>Replaces every topic and file with the state in <paramref name="source"/>.</summary>
    public void Restore(Stream source)
    {
        using var r = new BinaryReader(source, Encoding.UTF8, leaveOpen: true);
        if (r.ReadUInt32() != SnapshotMagic) throw new InvalidDataException("not a queue snapshot");
        var version = r.ReadByte();
        if (version is not (LegacySnapshotVersion or RecordsSnapshotVersion or SnapshotVersion))
            throw new InvalidDataException($"unknown queue snapshot version {version}");
        Clear();
        // New file names: files of the replaced state may still be read by a snapshot being written.
        _generation++;
        Clock = version == SnapshotVersion ? r.ReadInt64() : 0;
        var topics = r.ReadInt32();
        if (topics < 0) throw new InvalidDataException("negative topic count");
        var files = version != LegacySnapshotVersion && source.CanSeek ? source as ISnapshotFile : null;
        for (int i = 0; i < topics; i++)
        {
            var name = r.ReadString();
            if (_topics.ContainsKey(name)) throw new InvalidDataException($"topic {name} twice in the snapshot");
            var logicalHead = version == SnapshotVersion ? r.ReadInt64() : 0;
            TopicLog topic;
            if (version == LegacySnapshotVersion) topic = RestoreLegacyTopic(r, name);
            else if (files is null || TryRestoreLinkedTopic(r, name, logicalHead, files) is not { } linked) topic = RestoreTopic(r, name, logicalHead);
            else topic = linked;
            if (version == SnapshotVersion)
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

    /// <summary>
    /// Restores a topic by linking its records where the snapshot's files hold them (already in segment format, and
    /// the snapshot's checksum was verified when it was opened): one linked segment per contiguous range, O(1) per
    /// range whatever the backlog. Each record is still checked (length, CRC, offset) when it is read. False, having
    /// consumed nothing, when some range is not in a file or the file system cannot link; the caller then copies.
    /// </summary>
    private TopicLog? TryRestoreLinkedTopic(BinaryReader r, string name, long logicalHead, ISnapshotFile files)
    {
        var source = r.BaseStream;
        var start = source.Position;
        var head = r.ReadUInt64();
        var tail = r.ReadUInt64();
        var bytes = r.ReadInt64();
        CheckRange(name, head, tail, bytes);
        if (bytes > source.Length - source.Position)
            throw new InvalidDataException($"topic {name}: {bytes} bytes of records announced, {source.Length - source.Position} left in the snapshot");
        var topic = AddTopic(name, head, logicalHead);
        var linked = new List<Segment>();
        var position = source.Position;
        var remaining = bytes;
        var firstOffset = head;
        while (remaining > 0)
        {
            Segment? segment = null;
            if (files.TryGetFileRange(position, out var path, out var fileOffset, out var contiguous))
            {
                var take = Math.Min(contiguous, remaining);
                if (linked.Count > 0) firstOffset = FirstOffsetAt(name, path, fileOffset, firstOffset, tail);
                segment = Segment.TryLink(path, SegmentPath(topic, firstOffset), firstOffset, fileOffset, fileOffset + take);
                position += take;
                remaining -= take;
            }
            if (segment is null)
            {
                foreach (var done in linked) done.Release();
                _topics.Remove(name);
                _order.RemoveAt(_order.Count - 1);
                Volatile.Write(ref _published, [.. _order]);
                source.Position = start;
                return null;
            }
            linked.Add(segment);
        }
        topic.AdoptLinked(linked, tail, bytes);
        source.Position = position;
        return topic;
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

    private static void CheckRange(string name, ulong head, ulong tail, long bytes)
    {
        if (tail < head || bytes < 0 || (tail - head) > (ulong)(bytes / MessageRecord.OverheadBytes))
            throw new InvalidDataException($"topic {name}: bad range [{head}, {tail}) of {bytes} bytes");
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
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

    private TopicLog RestoreTopic(BinaryReader r, string name, long logicalHead)
    {
        var head = r.ReadUInt64();
        var tail = r.ReadUInt64();
        var bytes = r.ReadInt64();
        CheckRange(name, head, tail, bytes);
        var topic = AddTopic(name, head, logicalHead);
        var record = new byte[MessageRecord.OverheadBytes];
        for (var offset = head; offset < tail; offset++)
        {
            r.BaseStream.ReadExactly(record.AsSpan(0, MessageRecord.PrefixBytes));
            var size = MessageRecord.SizeFromPrefix(record);
            if (size < 0 || size > bytes - topic.Bytes || size > Array.MaxLength) throw new InvalidDataException($"topic {name}: record {offset} has a bad length");
            if (size > record.Length) Array.Resize(ref record, (int)size);
            r.BaseStream.ReadExactly(record.AsSpan(MessageRecord.PrefixBytes, (int)size - MessageRecord.PrefixBytes));
            if (MessageRecord.Check(record.AsSpan(0, (int)size), offset, out var problem) is null)
                throw new InvalidDataException($"topic {name}: record {offset}: {problem}");
            topic.AppendRecord(record.AsSpan(0, (int)size));
        }
        if (topic.Bytes != bytes) throw new InvalidDataException($"topic {name}: {topic.Bytes} bytes of records where {bytes} were announced");
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
    private sealed class Snapshot(CapturedTopic[] topics, long clock) : IStateMachineSnapshot
    {
        private int _disposed;

        public void WriteTo(Stream destination)
        {
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
            using var w = new BinaryWriter(destination, Encoding.UTF8, leaveOpen: true);
            w.Write(SnapshotMagic);
            w.Write(SnapshotVersion);
            w.Write(clock);
            w.Write(topics.Length);
            var buffer = new byte[64 * 1024];
            foreach (var topic in topics)
            {
                w.Write(topic.Name);
                w.Write(topic.LogicalHead);
                w.Write(topic.Head);
                w.Write(topic.Tail);
                w.Write(topic.Bytes);
                long written = 0;
                for (int i = 0; i < topic.Segments.Length; i++)
                {
                    var (segment, size) = topic.Segments[i];
                    var from = i == 0 ? topic.HeadPosition : segment.Start;
                    // Sealed bytes never change and the active segment only grows, so [from, size) can be linked.
                    w.Flush();
                    if (destination is ISnapshotFileSink sink && sink.TryAppendFileRange(segment.Path, from, size - from))
                    {
                        written += size - from;
                        continue;
                    }
                    using var file = Segment.OpenForSnapshot(segment.Path);
                    for (var position = from; position < size;)
                    {
                        var n = RandomAccess.Read(file, buffer.AsSpan(0, (int)Math.Min(buffer.Length, size - position)), position);
                        if (n == 0) throw new QueueStoreCorruptException(segment.Path, position, "the file ends before its captured size");
                        w.Write(buffer, 0, n);
                        position += n;
                        written += n;
                    }
                }
                if (written != topic.Bytes)
                    throw new InvalidOperationException($"topic {topic.Name}: wrote {written} bytes of records where {topic.Bytes} were captured");
                w.Write(topic.State.Length);
                w.Write(topic.State);
            }
            w.Flush();
        }

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
            foreach (var topic in topics)
                foreach (var segment in topic.Segments) segment.Segment.Release();
        }
    }
}

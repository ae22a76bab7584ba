namespace RaftMQ.Queue.Store;

/// <summary>
/// One topic's messages: offsets [<see cref="Head"/>, <see cref="Tail"/>) wait in its segments, oldest first. What
/// is in memory is this object and one small entry per segment file, whatever the backlog.
/// </summary>
internal sealed class TopicLog
{
    private readonly MessageStore _store;
    private readonly List<Segment> _segments = [];
    private long _headPosition; // where record Head starts in _segments[0]

    public TopicLog(MessageStore store, string name, int id, ulong head)
    {
        _store = store;
        Name = name;
        Id = id;
        Head = head;
        Tail = head;
    }

    public string Name { get; }

    /// <summary>A number for this topic's file names, unique within the store's current generation.</summary>
    public int Id { get; }

    /// <summary>The offset of the oldest waiting message (the next pop).</summary>
    public ulong Head { get; private set; }

    /// <summary>The offset the next published message gets.</summary>
    public ulong Tail { get; private set; }

    /// <summary>Messages waiting.</summary>
    public long Count => (long)(Tail - Head);

    /// <summary>Bytes of the waiting messages' records (payload plus record overhead): what the limits count.</summary>
    public long Bytes { get; private set; }

    public IReadOnlyList<Segment> Segments => _segments;

    /// <summary>Appends <paramref name="payload"/> with its encoded <paramref name="headers"/> as the message at <see cref="Tail"/>.</summary>
    public void Append(ReadOnlySpan<byte> headers, ReadOnlySpan<byte> payload, long timestamp)
    {
        var size = MessageRecord.OverheadBytes + headers.Length + payload.Length;
        MessageRecord.Write(_store.Reserve(SegmentFor(size), size), Tail, timestamp, headers, payload);
        Appended(size);
    }

    /// <summary>Appends a record already checked to be the one at <see cref="Tail"/> (restoring a snapshot).</summary>
    public void AppendRecord(ReadOnlySpan<byte> record)
    {
        record.CopyTo(_store.Reserve(SegmentFor(record.Length), record.Length));
        Appended(record.Length);
    }

    /// <summary>
    /// Makes <paramref name="segments"/> (linked to a snapshot's files, together holding the records of offsets
    /// [<see cref="Head"/>, <paramref name="tail"/>) in order) this empty topic's segments.
    /// </summary>
    public void AdoptLinked(IReadOnlyList<Segment> segments, ulong tail, long bytes)
    {
        if (_segments.Count != 0 || Head != Tail) throw new InvalidOperationException($"topic {Name} is not empty");
        _segments.AddRange(segments);
        _headPosition = segments.Count > 0 ? segments[0].Start : 0;
        Tail = tail;
        Bytes = bytes;
        _store.Counted((long)(tail - Head), bytes);
    }

    /// <summary>The oldest waiting message's payload (valid until the store's next operation) and its record size.</summary>
    public ReadOnlySpan<byte> PeekHead(out int recordSize) => MessageRecord.Payload(PeekHeadRecord(out recordSize));

    /// <summary>
    /// The oldest waiting message's whole record, checked (read its fields with <see cref="MessageRecord"/>; valid
    /// until the store's next operation).
    /// </summary>
    public ReadOnlySpan<byte> PeekHeadRecord(out int recordSize)
    {
        if (Head == Tail) throw new InvalidOperationException($"topic {Name} is empty");
        return _store.ReadRecord(_segments[0], _headPosition, Head, out recordSize);
    }

    /// <summary>Consumes the head message, whose record is <paramref name="recordSize"/> bytes (from <see cref="PeekHead"/>).</summary>
    public void AdvanceHead(int recordSize)
    {
        Head++;
        _headPosition += recordSize;
        Bytes -= recordSize;
        _store.Counted(-1, -recordSize);
        RetireConsumedSegments();
        // A drained topic gives up its active segment too once that holds a quarter of a segment: the disk a
        // topic that keeps up with its producers holds stays small, and files are created at most once per
        // SegmentBytes / 4 written.
        if (Head == Tail && (_segments[0].Sealed || _segments[0].Size >= _store.Options.SegmentBytes / 4))
        {
            _store.Retire(_segments[0]);
            _segments.Clear();
            _headPosition = 0;
        }
    }

    /// <summary>Captures the waiting range for a snapshot: retains its segments and records their current sizes.</summary>
    public CapturedTopic Capture()
    {
        if (Head == Tail) return new CapturedTopic(Name, Head, Tail, 0, 0, []);
        var segments = new CapturedSegment[_segments.Count];
        for (int i = 0; i < segments.Length; i++)
        {
            _segments[i].Retain();
            segments[i] = new CapturedSegment(_segments[i], _segments[i].Size);
        }
        return new CapturedTopic(Name, Head, Tail, Bytes, _headPosition, segments);
    }

    /// <summary>Gives up every segment (the state is being replaced or closed).</summary>
    public void RetireAll()
    {
        foreach (var segment in _segments) _store.Retire(segment);
        _segments.Clear();
    }

    /// <summary>The active segment, after rolling to a new one if a record of <paramref name="size"/> would overfill it.</summary>
    private Segment SegmentFor(int size)
    {
        if (_segments.Count > 0)
        {
            var active = _segments[^1];
            // A segment always takes at least one record, however large; a sealed one none.
            if (!active.Sealed && (active.Size == 0 || active.Size + size <= _store.Options.SegmentBytes)) return active;
            _store.Flush();
            if (_segments.Count > 1) active.Close(); // sealed and not the one being read: no handle needed
        }
        var segment = _store.CreateSegment(this, Tail);
        _segments.Add(segment);
        RetireConsumedSegments();
        return segment;
    }

    private void Appended(int size)
    {
        Tail++;
        Bytes += size;
        _store.Counted(1, size);
    }

    /// <summary>Deletes the segments before the one holding <see cref="Head"/> (compaction: whole consumed segments).</summary>
    private void RetireConsumedSegments()
    {
        while (_segments.Count > 1 && Head >= _segments[1].FirstOffset)
        {
            _store.Retire(_segments[0]);
            _segments.RemoveAt(0);
            _headPosition = _segments[0].Start;
        }
    }
}

/// <summary>A segment as captured: the file and its size at capture time (the bytes before it never change).</summary>
internal readonly record struct CapturedSegment(Segment Segment, long Size);

/// <summary>A topic as captured: its waiting range and where its records lie.</summary>
internal sealed record CapturedTopic(string Name, ulong Head, ulong Tail, long Bytes, long HeadPosition, CapturedSegment[] Segments);

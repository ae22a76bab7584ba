namespace RaftMQ.Queue.Store;

/// <summary>
/// One topic's messages: offsets [<see cref="Head"/>, <see cref="Tail"/>) wait in its segments, oldest first. What
/// is in memory is this object and one small entry per segment file, whatever the backlog.
/// </summary>
internal sealed class TopicLog
{
    private readonly MessageStore _store;
    private readonly List<Segment> _segments = [];
    private readonly List<long> _segmentPositions = []; // the logical position of each segment's first record
    private long _headPosition; // where record Head starts in _segments[0]

    public TopicLog(MessageStore store, string name, int id, ulong head, long headLogical = 0)
    {
        _store = store;
        Name = name;
        Id = id;
        Head = head;
        Tail = head;
        LogicalHead = headLogical;
    }

    /// <summary>
    /// The logical position of record <see cref="Head"/>: the bytes of all records ever appended before it. Logical
    /// positions never change for a record (snapshots carry them), so consumer groups address records by them
    /// whatever files hold them.
    /// </summary>
    public long LogicalHead { get; private set; }

    /// <summary>The logical position the next appended record gets.</summary>
    public long LogicalTail => LogicalHead + Bytes;

    /// <summary>The topic's consumption state (settings and consumer groups); set by the state machine.</summary>
    public Groups.TopicState? State { get; set; }

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
        var logical = LogicalHead;
        foreach (var segment in segments)
        {
            _segmentPositions.Add(logical);
            logical += segment.Size - segment.Start;
        }
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
    public void AdvanceHead(int recordSize) => AdvanceHeadTo(Head + 1, LogicalHead + recordSize);

    /// <summary>
    /// Consumes every message below <paramref name="head"/>, whose record starts at logical position
    /// <paramref name="logical"/>, and deletes the segments left wholly behind.
    /// </summary>
    public void AdvanceHeadTo(ulong head, long logical)
    {
        if (head < Head || head > Tail || logical - LogicalHead > Bytes || logical < LogicalHead)
            throw new InvalidOperationException($"topic {Name}: cannot move the head from {Head} to {head}");
        if (head == Head) return;
        var bytes = logical - LogicalHead;
        _store.Counted(-(long)(head - Head), -bytes);
        Head = head;
        LogicalHead = logical;
        Bytes -= bytes;
        RetireConsumedSegments();
        _headPosition = _segments.Count > 0 ? _segments[0].Start + (LogicalHead - _segmentPositions[0]) : 0;
        // A drained topic gives up its active segment too once that holds a quarter of a segment: the disk a
        // topic that keeps up with its producers holds stays small, and files are created at most once per
        // SegmentBytes / 4 written.
        if (Head == Tail && _segments.Count > 0 && (_segments[0].Sealed || _segments[0].Size >= _store.Options.SegmentBytes / 4))
        {
            _store.Retire(_segments[0]);
            _segments.Clear();
            _segmentPositions.Clear();
            _headPosition = 0;
        }
    }

    /// <summary>
    /// The whole record of <paramref name="offset"/> (in [<see cref="Head"/>, <see cref="Tail"/>)) at logical
    /// position <paramref name="logical"/>, checked, with its size; valid until the store's next operation.
    /// </summary>
    public ReadOnlySpan<byte> ReadRecordAt(ulong offset, long logical, out int recordSize)
    {
        if (offset < Head || offset >= Tail || logical < LogicalHead || logical >= LogicalTail)
            throw new InvalidOperationException($"topic {Name}: offset {offset} at {logical} is outside [{Head}, {Tail})");
        int lo = 0, hi = _segments.Count - 1, at = 0;
        while (lo <= hi)
        {
            var mid = (lo + hi) >>> 1;
            if (_segmentPositions[mid] <= logical)
            {
                at = mid;
                lo = mid + 1;
            }
            else hi = mid - 1;
        }
        var segment = _segments[at];
        return _store.ReadRecord(segment, segment.Start + (logical - _segmentPositions[at]), offset, out recordSize);
    }

    /// <summary>
    /// The logical position of <paramref name="offset"/>'s record, found by walking the records from the start of
    /// the segment holding it (a browse from an arbitrary offset): at most one segment's records are read.
    /// </summary>
    public long FindPosition(ulong offset)
    {
        if (offset < Head || offset > Tail) throw new ArgumentOutOfRangeException(nameof(offset), offset, $"outside [{Head}, {Tail}]");
        if (offset == Tail) return LogicalTail;
        var at = 0;
        while (at + 1 < _segments.Count && _segments[at + 1].FirstOffset <= offset) at++;
        ulong current;
        long logical;
        if (at == 0)
        {
            current = Head;
            logical = LogicalHead;
        }
        else
        {
            current = _segments[at].FirstOffset;
            logical = _segmentPositions[at];
        }
        while (current < offset)
        {
            _ = ReadRecordAt(current, logical, out var size);
            current++;
            logical += size;
        }
        return logical;
    }

    /// <summary>
    /// The lowest offset at or above <paramref name="minOffset"/> whose record starts at or after logical position
    /// <paramref name="minPosition"/>, with its position (the tail when none is): how far the head must move so that
    /// at most tail − <paramref name="minOffset"/> messages and logical tail − <paramref name="minPosition"/> bytes
    /// remain. Skips whole segments by their first offsets and positions, then reads records from the segment where
    /// the answer starts (for a bytes bound, into the next ones while a single record is larger than what is left).
    /// </summary>
    public (ulong Offset, long Position) FirstAtOrAbove(ulong minOffset, long minPosition)
    {
        if (minOffset >= Tail || minPosition >= LogicalTail || _segments.Count == 0) return (Tail, LogicalTail);
        var at = 0;
        while (at + 1 < _segments.Count && (_segments[at + 1].FirstOffset <= minOffset || _segmentPositions[at + 1] <= minPosition)) at++;
        var current = at == 0 ? Head : _segments[at].FirstOffset;
        var logical = at == 0 ? LogicalHead : _segmentPositions[at];
        while (current < Tail && (current < minOffset || logical < minPosition))
        {
            _ = ReadRecordAt(current, logical, out var size);
            current++;
            logical += size;
        }
        return (current, logical);
    }

    /// <summary>Captures the waiting range for a snapshot: retains its segments and records their current sizes.</summary>
    public CapturedTopic Capture()
    {
        var state = State?.Serialize() ?? [];
        if (Head == Tail) return new CapturedTopic(Name, Head, Tail, 0, 0, [], LogicalHead, state);
        var segments = new CapturedSegment[_segments.Count];
        for (int i = 0; i < segments.Length; i++)
        {
            _segments[i].Retain();
            segments[i] = new CapturedSegment(_segments[i], _segments[i].Size);
        }
        return new CapturedTopic(Name, Head, Tail, Bytes, _headPosition, segments, LogicalHead, state);
    }

    /// <summary>Gives up every segment (the state is being replaced or closed).</summary>
    public void RetireAll()
    {
        foreach (var segment in _segments) _store.Retire(segment);
        _segments.Clear();
        _segmentPositions.Clear();
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
        _segmentPositions.Add(LogicalTail);
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
            _segmentPositions.RemoveAt(0);
            _headPosition = _segments[0].Start + (LogicalHead - _segmentPositions[0]);
        }
    }
}

/// <summary>A segment as captured: the file and its size at capture time (the bytes before it never change).</summary>
internal readonly record struct CapturedSegment(Segment Segment, long Size);

/// <summary>A topic as captured: its waiting range and where its records lie.</summary>
internal sealed record CapturedTopic(
    string Name, ulong Head, ulong Tail, long Bytes, long HeadPosition, CapturedSegment[] Segments, long LogicalHead, byte[] State);

namespace RaftMQ.Queue.Store;

/// <summary>
/// One topic's messages: offsets [<see cref="Head"/>, <see cref="Tail"/>) lie between its head and tail, oldest first,
/// in extents of segment files. What is in memory is this object and one small entry per extent, whatever the
/// backlog: an extent is a run of consecutive records, so a segment as written is one extent, and a segment rewritten
/// by compaction holds one extent per run of records it kept (docs/queue-store.md, "Compaction").
/// </summary>
internal sealed class TopicLog
{
    private readonly MessageStore _store;
    private readonly List<Extent> _extents = []; // by logical position; the first starts at LogicalHead
    private long _finishedAtLastCheck; // the groups' finished total when compaction last looked (not replicated)

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

    /// <summary>The offset of the oldest retained message (the lowest floor of the groups; the next pop).</summary>
    public ulong Head { get; private set; }

    /// <summary>The offset the next published message gets.</summary>
    public ulong Tail { get; private set; }

    /// <summary>Messages between the head and the tail: what the limits count.</summary>
    public long Count => (long)(Tail - Head);

    /// <summary>Bytes of the records between the head and the tail (payload plus record overhead): what the limits count.</summary>
    public long Bytes { get; private set; }

    /// <summary>The extents, oldest first.</summary>
    public IReadOnlyList<Extent> Extents => _extents;

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
    /// Moves the tail over records not kept (restoring a snapshot that left out what every group had finished): the
    /// next record appended is <paramref name="offset"/> at logical position <paramref name="logical"/>.
    /// </summary>
    public void SkipTo(ulong offset, long logical)
    {
        if (offset < Tail || logical < LogicalTail || (offset == Tail) != (logical == LogicalTail))
            throw new InvalidOperationException($"topic {Name}: cannot skip from {Tail} at {LogicalTail} to {offset} at {logical}");
        _store.Counted((long)(offset - Tail), logical - LogicalTail);
        Tail = offset;
        Bytes = logical - LogicalHead;
    }

    /// <summary>
    /// Makes <paramref name="extents"/> (in segments linked to a snapshot's files, holding the kept records between
    /// <see cref="Head"/> and <paramref name="tail"/>) this empty topic's extents.
    /// </summary>
    public void AdoptLinked(IReadOnlyList<Extent> extents, ulong tail, long bytes)
    {
        if (_extents.Count != 0 || Head != Tail) throw new InvalidOperationException($"topic {Name} is not empty");
        _extents.AddRange(extents);
        Tail = tail;
        Bytes = bytes;
        _store.Counted((long)(tail - Head), bytes);
    }

    /// <summary>The oldest retained message's payload (valid until the store's next operation) and its record size.</summary>
    public ReadOnlySpan<byte> PeekHead(out int recordSize) => MessageRecord.Payload(PeekHeadRecord(out recordSize));

    /// <summary>
    /// The oldest retained message's whole record, checked (read its fields with <see cref="MessageRecord"/>; valid
    /// until the store's next operation).
    /// </summary>
    public ReadOnlySpan<byte> PeekHeadRecord(out int recordSize)
    {
        if (Head == Tail) throw new InvalidOperationException($"topic {Name} is empty");
        return ReadRecordAt(Head, LogicalHead, out recordSize);
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
        // Extents wholly behind go (the active segment's stays, empty, to take the next records); the first one left
        // is trimmed to start at the head.
        while (_extents.Count > 0 && _extents[0].End <= logical)
        {
            if (_extents.Count == 1 && _extents[0].End == logical && IsAppendable(_extents[0])) break;
            RemoveFirstExtent();
        }
        if (_extents.Count > 0 && _extents[0].Logical < logical)
        {
            var first = _extents[0];
            var cut = logical - first.Logical;
            _extents[0] = first with { Physical = first.Physical + cut, FirstOffset = head, Logical = logical, Length = first.Length - cut };
        }
        // A drained topic gives up its active segment too once that holds a quarter of a segment: the disk a
        // topic that keeps up with its producers holds stays small, and files are created at most once per
        // SegmentBytes / 4 written.
        if (Head == Tail && _extents.Count == 1 && (_extents[0].Segment.Sealed || _extents[0].Segment.Size >= _store.Options.SegmentBytes / 4))
            RemoveFirstExtent();
    }

    /// <summary>
    /// The whole record of <paramref name="offset"/> (in [<see cref="Head"/>, <see cref="Tail"/>), not finished by
    /// every group) at logical position <paramref name="logical"/>, checked, with its size; valid until the store's
    /// next operation.
    /// </summary>
    public ReadOnlySpan<byte> ReadRecordAt(ulong offset, long logical, out int recordSize)
    {
        if (offset < Head || offset >= Tail || logical < LogicalHead || logical >= LogicalTail)
            throw new InvalidOperationException($"topic {Name}: offset {offset} at {logical} is outside [{Head}, {Tail})");
        var at = ExtentAtOrBefore(logical);
        if (at < 0 || logical >= _extents[at].End)
            throw new InvalidOperationException($"topic {Name}: offset {offset} at {logical} is not kept (every group had finished it)");
        var extent = _extents[at];
        return _store.ReadRecord(extent.Segment, extent.Physical + (logical - extent.Logical), offset, out recordSize);
    }

    /// <summary>
    /// A record start known without reading at or before the first record that can have an offset of at least
    /// <paramref name="minOffset"/> and a position of at least <paramref name="minPosition"/>: the head, or the start
    /// of the last extent before it. Where a walk (<see cref="Retained"/>) towards such a record begins.
    /// </summary>
    public (ulong Offset, long Position) StartAtOrBefore(ulong minOffset, long minPosition)
    {
        var at = 0;
        while (at + 1 < _extents.Count && (_extents[at + 1].FirstOffset <= minOffset || _extents[at + 1].Logical <= minPosition)) at++;
        return at == 0 ? (Head, LogicalHead) : (_extents[at].FirstOffset, _extents[at].Logical);
    }

    /// <summary>
    /// The records from <paramref name="offset"/> (a record start at <paramref name="position"/>) to the tail that some
    /// group has not finished, with their positions and sizes, in order: the runs every group has finished are
    /// jumped over without reading them. Reads each record's length; the group state must not change meanwhile.
    /// </summary>
    public IEnumerable<(ulong Offset, long Position, int Size)> Retained(ulong offset, long position)
    {
        var finished = State?.FinishedByAll(offset, Tail) ?? [];
        var next = 0;
        while (offset < Tail)
        {
            while (next < finished.Count && finished[next].End <= offset) next++;
            if (next < finished.Count && finished[next].Start <= offset)
            {
                offset = finished[next].End;
                position = offset == Tail ? LogicalTail : State!.PositionOfUnfinished(offset);
                continue;
            }
            _ = ReadRecordAt(offset, position, out var size);
            yield return (offset, position, size);
            offset++;
            position += size;
        }
    }

    /// <summary>
    /// The lowest offset at or above <paramref name="minOffset"/> whose record starts at or after logical position
    /// <paramref name="minPosition"/> and that some group has not finished, with its position (the tail when none
    /// is): how far the head must move so that at most tail − <paramref name="minOffset"/> messages and logical tail −
    /// <paramref name="minPosition"/> bytes remain. Skips whole extents by their first offsets and positions, then
    /// walks the records from there.
    /// </summary>
    public (ulong Offset, long Position) FirstAtOrAbove(ulong minOffset, long minPosition)
    {
        if (minOffset >= Tail || minPosition >= LogicalTail || _extents.Count == 0) return (Tail, LogicalTail);
        var (start, position) = StartAtOrBefore(minOffset, minPosition);
        foreach (var (offset, at, _) in Retained(start, position))
        {
            if (offset >= minOffset && at >= minPosition) return (offset, at);
        }
        return (Tail, LogicalTail);
    }

    /// <summary>
    /// The extents that hold records some group has not finished, cut to those records (a snapshot keeps no more):
    /// as (first offset, logical position, length, segment, where in the segment). Reads one record per run of
    /// finished offsets (the record before it, for its length).
    /// </summary>
    public List<Extent> KeptExtents()
    {
        var finished = FinishedPositions();
        if (finished.Count == 0) return [.. _extents.Where(e => e.Length > 0)];
        List<Extent> kept = [];
        var next = 0;
        foreach (var extent in _extents)
        {
            var piece = extent;
            while (piece.Length > 0)
            {
                while (next < finished.Count && finished[next].EndPosition <= piece.Logical) next++;
                if (next == finished.Count || finished[next].StartPosition >= piece.End)
                {
                    kept.Add(piece);
                    break;
                }
                var (_, endOffset, startPosition, endPosition) = finished[next];
                if (startPosition > piece.Logical) kept.Add(piece with { Length = startPosition - piece.Logical });
                if (endPosition >= piece.End) break;
                var cut = endPosition - piece.Logical;
                piece = piece with { Physical = piece.Physical + cut, FirstOffset = endOffset, Logical = endPosition, Length = piece.Length - cut };
            }
        }
        return kept;
    }

    /// <summary>
    /// Compaction, when the groups have finished <see cref="QueueStoreOptions.CompactionCheckMessages"/> messages
    /// since the last look: each segment other than the one being appended to whose records every group has finished
    /// make at least half of what it keeps is rewritten with only the rest (or dropped when nothing is left). The
    /// copy costs at most what it frees. Changes no result: only what no group will read again goes.
    /// </summary>
    public void MaybeCompact()
    {
        if (State is null || _extents.Count < 2) return;
        long finishedTotal = 0;
        foreach (var g in State.Groups) finishedTotal += g.AckedTotal + g.DeadLetteredTotal;
        if (finishedTotal - _finishedAtLastCheck < _store.Options.CompactionCheckMessages) return;
        _finishedAtLastCheck = finishedTotal;
        Compact();
    }

    /// <summary>Compacts now (see <see cref="MaybeCompact"/>); returns the bytes no longer kept.</summary>
    public long Compact()
    {
        if (State is null || _extents.Count < 2) return 0;
        var kept = KeptExtents();
        long freed = 0;
        var i = 0;
        while (i < _extents.Count)
        {
            var segment = _extents[i].Segment;
            var j = i;
            long holds = 0;
            while (j < _extents.Count && _extents[j].Segment == segment) holds += _extents[j++].Length;
            if (j == _extents.Count && IsAppendable(_extents[j - 1]))
                break; // the active segment: records are still being appended to it
            List<Extent> keep = [];
            long keeps = 0;
            foreach (var e in kept)
            {
                if (e.Segment != segment) continue;
                keep.Add(e);
                keeps += e.Length;
            }
            if (keeps * 2 > holds)
            {
                i = j;
                continue;
            }
            var rewritten = keep.Count == 0 ? [] : _store.Rewrite(this, keep);
            _extents.RemoveRange(i, j - i);
            _extents.InsertRange(i, rewritten);
            _store.Retire(segment);
            freed += holds - keeps;
            i += rewritten.Count;
        }
        return freed;
    }

    /// <summary>
    /// Captures the retained range for a snapshot: retains its segments and records the kept extents as they are now.
    /// The topic's state is written to <paramref name="states"/>, the capture's buffer number
    /// <paramref name="buffer"/>, all but its groups' leases, pending messages and finished ranges, its deduplication
    /// ids and its delayed messages, which are captured without copying and written later; the capture holds where the
    /// rest lies.
    /// </summary>
    public CapturedTopic Capture(BinaryWriter states, int buffer)
    {
        var start = checked((int)states.BaseStream.Position);
        var groups = State?.CaptureBeforeIds(states) ?? [];
        var (ids, delays) = (State?.Dedup.Capture(), State?.Delays.Capture());
        var middle = checked((int)states.BaseStream.Position);
        State?.WriteAfterDelays(states);
        var state = new CapturedState(buffer, start, groups, middle, checked((int)states.BaseStream.Position), ids, delays);
        if (Head == Tail) return new CapturedTopic(Name, Head, Tail, 0, [], LogicalHead, state);
        var extents = KeptExtents();
        Segment? previous = null;
        foreach (var e in extents)
        {
            if (e.Segment == previous) continue;
            e.Segment.Retain();
            previous = e.Segment;
        }
        return new CapturedTopic(Name, Head, Tail, Bytes, [.. extents], LogicalHead, state);
    }

    /// <summary>Gives up every segment (the state is being replaced or closed).</summary>
    public void RetireAll()
    {
        while (_extents.Count > 0) RemoveFirstExtent();
    }

    /// <summary>
    /// The messages, and the bytes of their records, that every group has finished but that still lie between the
    /// head and the tail (behind a message some group holds). A function of the state alone, the same on every node
    /// whatever its files look like: O(groups + finished ranges), reading the record before each run.
    /// </summary>
    public (long Messages, long Bytes) FinishedByAll()
    {
        long messages = 0, bytes = 0;
        foreach (var (start, end, from, to) in FinishedPositions())
        {
            messages += (long)(end - start);
            bytes += to - from;
        }
        return (messages, bytes);
    }

    /// <summary>
    /// The runs of offsets every group has finished between the head and the lowest cursor (none lies above it),
    /// with where their records start and end.
    /// </summary>
    private List<(ulong StartOffset, ulong EndOffset, long StartPosition, long EndPosition)> FinishedPositions()
    {
        List<(ulong, ulong, long, long)> runs = [];
        if (State is null || Head == Tail) return runs;
        var lowestCursor = Tail;
        foreach (var g in State.Groups) lowestCursor = Math.Min(lowestCursor, g.Cursor);
        foreach (var (start, end) in State.FinishedByAll(Head, lowestCursor))
        {
            // The offset before the run is not finished by some group (else the run would start lower; the head never
            // is), so that group knows where its record is, and the run starts where it ends.
            var before = start - 1;
            var position = State.PositionOfUnfinished(before);
            _ = ReadRecordAt(before, position, out var size);
            runs.Add((start, end, position + size, end == Tail ? LogicalTail : State.PositionOfUnfinished(end)));
        }
        return runs;
    }

    private bool IsAppendable(Extent e) => !e.Segment.Sealed && e.Physical + e.Length == e.Segment.Size;

    private int ExtentAtOrBefore(long logical)
    {
        int lo = 0, hi = _extents.Count - 1, at = -1;
        while (lo <= hi)
        {
            var mid = (lo + hi) >>> 1;
            if (_extents[mid].Logical <= logical)
            {
                at = mid;
                lo = mid + 1;
            }
            else hi = mid - 1;
        }
        return at;
    }

    /// <summary>Removes the first extent, giving up its segment when no other extent is in it.</summary>
    private void RemoveFirstExtent()
    {
        var segment = _extents[0].Segment;
        _extents.RemoveAt(0);
        if (_extents.Count == 0 || _extents[0].Segment != segment) _store.Retire(segment);
    }

    /// <summary>The active segment, after rolling to a new one if a record of <paramref name="size"/> would overfill it.</summary>
    private Segment SegmentFor(int size)
    {
        if (_extents.Count > 0)
        {
            var last = _extents[^1];
            var active = last.Segment;
            // A segment always takes at least one record, however large; a sealed one none.
            if (IsAppendable(last) && (active.Size == 0 || active.Size + size <= _store.Options.SegmentBytes))
            {
                // A run that starts after records not kept (restoring a snapshot that left them out): a new extent in
                // the same file.
                if (last.End != LogicalTail)
                {
                    if (last.Length == 0) _extents[^1] = last with { FirstOffset = Tail, Logical = LogicalTail };
                    else _extents.Add(new Extent(active, active.Size, Tail, LogicalTail, 0));
                }
                return active;
            }
            _store.Flush();
            if (_extents[0].Segment != active) active.Close(); // not the one being read: no handle needed
            if (last.Length == 0) RemoveLastExtent();
        }
        var segment = _store.CreateSegment(this, Tail);
        _extents.Add(new Extent(segment, 0, Tail, LogicalTail, 0));
        return segment;
    }

    private void RemoveLastExtent()
    {
        var segment = _extents[^1].Segment;
        _extents.RemoveAt(_extents.Count - 1);
        if (_extents.Count == 0 || _extents[^1].Segment != segment) _store.Retire(segment);
    }

    private void Appended(int size)
    {
        _extents[^1] = _extents[^1] with { Length = _extents[^1].Length + size };
        Tail++;
        Bytes += size;
        _store.Counted(1, size);
    }
}

/// <summary>
/// A run of consecutive records of a topic in one segment file: offsets from <see cref="FirstOffset"/> at logical
/// positions [<see cref="Logical"/>, <see cref="End"/>), stored from byte <see cref="Physical"/> of the file.
/// </summary>
internal readonly record struct Extent(Segment Segment, long Physical, ulong FirstOffset, long Logical, long Length)
{
    public long End => Logical + Length;
}

/// <summary>
/// A topic as captured: its range and the extents holding the records some group has not finished (their segments
/// retained until the snapshot is disposed; sealed bytes never change and the active segment only grows, so each
/// extent's bytes stay as captured).
/// </summary>
/// <summary>A topic as captured for a snapshot.</summary>
internal sealed record CapturedTopic(string Name, ulong Head, ulong Tail, long Bytes, Extent[] Extents, long LogicalHead, CapturedState State);

/// <summary>
/// A topic's state as captured for a snapshot: its bytes before the deduplication ids lie in the capture's buffer
/// number <paramref name="Buffer"/> from <paramref name="Start"/> to <paramref name="Middle"/>, save each group's
/// leases, pending messages and finished ranges, which <paramref name="GroupParts"/> write at their positions; the bytes
/// after the delayed messages lie from there to <paramref name="End"/>; <paramref name="Ids"/> and
/// <paramref name="Delays"/> write the ids and the delayed messages in between (no groups and both null: a topic
/// without state).
/// </summary>
internal sealed record CapturedState(
    int Buffer, int Start, (int At, Groups.ConsumerGroup.Captured Group)[] GroupParts, int Middle, int End,
    Groups.DedupTable.Captured? Ids, Groups.DelayedMessages.Captured? Delays)
{
    /// <summary>The state's length in the snapshot. O(in flight of its groups): call it from the writer.</summary>
    public int Length => checked((int)(End - Start + GroupParts.Sum(g => g.Group.Bytes) + (Ids?.Bytes ?? 0) + (Delays?.Bytes ?? 0)));

    public void WriteTo(BinaryWriter w, List<byte[]> buffers)
    {
        w.Write(Length);
        var from = Start;
        foreach (var (at, group) in GroupParts)
        {
            w.Write(buffers[Buffer], from, at - from);
            group.WriteTo(w);
            from = at;
        }
        w.Write(buffers[Buffer], from, Middle - from);
        Ids?.WriteTo(w);
        Delays?.WriteTo(w);
        w.Write(buffers[Buffer], Middle, End - Middle);
    }
}

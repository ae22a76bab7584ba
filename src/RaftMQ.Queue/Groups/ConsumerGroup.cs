using System.Text;

namespace RaftMQ.Queue.Groups;

/// <summary>A delivery that holds a lease: where its record is, how many deliveries so far, when the lease ends, the last nack error.</summary>
internal readonly record struct Lease(long Position, int Count, long Deadline, string? Error);

/// <summary>A message waiting to be delivered again (nacked or its lease expired): not before <see cref="NotBefore"/> (Unix ms).</summary>
internal readonly record struct Pending(long Position, int Count, long NotBefore, string? Error);

/// <summary>
/// One consumer group of a topic. Every offset below <see cref="Floor"/> is finished (acked or dead-lettered);
/// every offset in [<see cref="Floor"/>, <see cref="Cursor"/>) is exactly one of leased, pending (ready again) or
/// finished (in a range set); from <see cref="Cursor"/> on nothing was delivered yet. Memory is O(leased + pending +
/// gaps), never O(backlog). Positions are the topic's logical byte positions of the records (see TopicLog).
/// Pure bookkeeping: it reads no clock and no file.
/// </summary>
/// <remarks>
/// What a snapshot holds of the group beyond its cursor, floor and totals (the leases, the pending messages and the
/// finished ranges) is kept in <see cref="OffsetMap{TValue}"/>s, so that a snapshot captures them in O(1)
/// (<see cref="Capture"/>) and writes them later from another thread while the loop goes on changing the group. The
/// index of leases by deadline is not in a snapshot and stays a mutable set.
/// </remarks>
internal sealed class ConsumerGroup
{
    private readonly OffsetMap<Lease> _leased = new();
    private SortedSet<(long Deadline, ulong Offset)> _expiry = [];
    private readonly OffsetMap<Pending> _pending = new();
    // The pending messages with a time before which they are not delivered (nacked with a delay, or set aside by the
    // cursor until due), by that time: not in a snapshot, like _expiry. Those pending without one are ready now.
    private readonly SortedSet<(long NotBefore, ulong Offset)> _notBefore = [];
    // The offsets of the pending messages a receive at _readyAt may deliver: those without a time, and those whose
    // time is at or before _readyAt (FirstReady adds them as the replicated clock passes their time). Not in a
    // snapshot either: a restored group starts with the ones without a time and _readyAt 0.
    private readonly RangeSet _ready = new();
    private long _readyAt;
    private readonly RangeSet _finished = new();

    public ConsumerGroup(string name, ulong start, long position)
    {
        Name = name;
        Cursor = Floor = start;
        CursorPosition = FloorPosition = position;
    }

    /// <summary>
    /// A group that starts at the topic's head <paramref name="head"/> and owes everything retained: the messages
    /// other groups still hold below <paramref name="cursor"/> (the lowest cursor) are <paramref name="waiting"/> for
    /// delivery, the offsets every group has finished there are <paramref name="finished"/> (no longer kept, so never
    /// delivered), and from the cursor on nothing was delivered yet.
    /// </summary>
    public static ConsumerGroup StartingAtHead(
        string name, ulong head, long headPosition, ulong cursor, long cursorPosition,
        IEnumerable<(ulong Offset, Pending Pending)> waiting, IEnumerable<(ulong Start, ulong End)> finished)
    {
        var group = new ConsumerGroup(name, cursor, cursorPosition) { Floor = head, FloorPosition = headPosition };
        foreach (var (offset, pending) in waiting) group.AddPending(offset, pending);
        foreach (var (start, end) in finished) group._finished.AddRange(start, end);
        return group;
    }

    public string Name { get; }

    /// <summary>
    /// The log index of the entry that created the group (or its topic, for the group created with it); 0 for a group
    /// restored from a snapshot written before groups recorded it. Its receipts' tag names it
    /// (<see cref="Receipt.TagOf"/>), so that receipts of a group deleted and created again under the same name are
    /// stale for the new one.
    /// </summary>
    public ulong Created { get; set; }

    /// <summary>The next offset never delivered to this group.</summary>
    public ulong Cursor { get; private set; }

    public long CursorPosition { get; private set; }

    /// <summary>Every offset below is finished for this group.</summary>
    public ulong Floor { get; private set; }

    public long FloorPosition { get; private set; }

    /// <summary>Deliveries so far (each receive of a message counts one).</summary>
    public long DeliveredTotal { get; set; }

    /// <summary>Messages acked so far (including atomic pops).</summary>
    public long AckedTotal { get; set; }

    /// <summary>Messages moved to the dead-letter topic so far.</summary>
    public long DeadLetteredTotal { get; set; }

    /// <summary>Leased plus pending: what the in-flight bound counts.</summary>
    public int InFlight => _leased.Count + _pending.Count;

    public int LeasedCount => _leased.Count;

    /// <summary>The leases by offset, lowest first.</summary>
    public IReadOnlyDictionary<ulong, Lease> Leased => _leased;

    /// <summary>The pending messages by offset, lowest first.</summary>
    public IReadOnlyDictionary<ulong, Pending> PendingEntries => _pending;

    /// <summary>When the first of the leases ends (Unix ms); <see cref="long.MaxValue"/> when none is held.</summary>
    public long EarliestLeaseDeadline => _expiry.Count > 0 ? _expiry.Min.Deadline : long.MaxValue;

    public RangeSet Finished => _finished;

    /// <summary>
    /// Moves every lease whose deadline is at or before <paramref name="now"/> to pending (ready now), oldest deadline
    /// first. The ended ones leave the index by deadline one by one when they are few; when they are many (a consumer
    /// that held thousands of leases gone), the index is built again from the rest, which costs far less
    /// than removing each (docs/benchmarks.md, "Receives past delayed redeliveries").
    /// </summary>
    public void ExpireLeases(long now)
    {
        if (_expiry.Count == 0 || _expiry.Min.Deadline > now) return;
        List<ulong> ended = [];
        foreach (var (deadline, offset) in _expiry)
        {
            if (deadline > now) break;
            ended.Add(offset);
        }
        if (ended.Count < ExpiryRebuildMin || ended.Count * 4L < _expiry.Count)
        {
            for (var i = 0; i < ended.Count; i++) _expiry.Remove(_expiry.Min);
        }
        else
        {
            _expiry = ended.Count == _expiry.Count ? []
                : new(_expiry.GetViewBetween((now + 1, 0), _expiry.Max));
        }
        foreach (var offset in ended)
        {
            _leased.Remove(offset, out var lease);
            AddPending(offset, new Pending(lease.Position, lease.Count, 0, lease.Error));
        }
    }

    /// <summary>Fewest ended leases for which <see cref="ExpireLeases"/> builds the index by deadline again (when they are also a quarter of it or more).</summary>
    private const int ExpiryRebuildMin = 256;

    /// <summary>
    /// The pending message with the lowest offset that may be delivered at <paramref name="now"/>. O(log n), plus
    /// O(log n) once for each pending message whose time <paramref name="now"/> passes, when <paramref name="now"/>
    /// never goes back between calls (the replicated clock, as receives pass it); for an earlier time than a call
    /// before, O(pending messages before it that wait).
    /// </summary>
    public bool FirstReady(long now, out ulong offset, out Pending pending)
    {
        if (now < _readyAt) return FirstReadyScan(now, out offset, out pending);
        if (now > _readyAt && _notBefore.Count > 0 && _notBefore.Min.NotBefore <= now)
        {
            foreach (var (_, o) in _notBefore.GetViewBetween((_readyAt + 1, 0), (now, ulong.MaxValue))) _ready.Add(o);
        }
        _readyAt = now;
        if (!_ready.TryGetMin(out offset))
        {
            pending = default;
            return false;
        }
        pending = _pending[offset];
        return true;
    }

    /// <summary>What <see cref="FirstReady"/> answers, by walking the pending messages from the lowest offset.</summary>
    private bool FirstReadyScan(long now, out ulong offset, out Pending pending)
    {
        foreach (var (o, p) in _pending)
        {
            if (p.NotBefore <= now)
            {
                offset = o;
                pending = p;
                return true;
            }
        }
        offset = 0;
        pending = default;
        return false;
    }

    /// <summary>When the first pending message may be delivered (Unix ms; 0 when one may be now); <see cref="long.MaxValue"/> when none is pending.</summary>
    public long EarliestPendingAt =>
        _pending.Count > _notBefore.Count ? 0 : _notBefore.Count > 0 ? _notBefore.Min.NotBefore : long.MaxValue;

    public bool RemovePending(ulong offset)
    {
        if (!_pending.Remove(offset, out var removed)) return false;
        if (removed.NotBefore > 0) _notBefore.Remove((removed.NotBefore, offset));
        if (removed.NotBefore <= _readyAt) _ready.Remove(offset);
        return true;
    }

    private void AddPending(ulong offset, Pending pending)
    {
        _pending.Add(offset, pending);
        if (pending.NotBefore > 0) _notBefore.Add((pending.NotBefore, offset));
        if (pending.NotBefore <= _readyAt) _ready.Add(offset);
    }

    /// <summary>Passes the cursor's message (its record is <paramref name="recordSize"/> bytes) to the caller.</summary>
    public void AdvanceCursor(int recordSize)
    {
        Cursor++;
        CursorPosition += recordSize;
    }

    public void AddLease(ulong offset, Lease lease)
    {
        _leased.Add(offset, lease);
        _expiry.Add((lease.Deadline, offset));
    }

    public bool TryGetLease(ulong offset, out Lease lease) => _leased.TryGetValue(offset, out lease);

    public bool TryGetPending(ulong offset, out Pending pending) => _pending.TryGetValue(offset, out pending);

    public void RemoveLease(ulong offset)
    {
        if (!_leased.Remove(offset, out var lease)) throw new InvalidOperationException($"offset {offset} is not leased");
        _expiry.Remove((lease.Deadline, offset));
    }

    public void SetPending(ulong offset, Pending pending)
    {
        RemovePending(offset);
        AddPending(offset, pending);
    }

    /// <summary>
    /// Marks <paramref name="offset"/> (no longer leased nor pending) finished and moves the floor over every
    /// finished offset above it.
    /// </summary>
    public void Finish(ulong offset)
    {
        if (offset < Floor || offset >= Cursor) throw new InvalidOperationException($"offset {offset} is outside [{Floor}, {Cursor})");
        if (offset != Floor)
        {
            _finished.Add(offset);
            return;
        }
        SetFloor(_finished.TakeRunFrom(offset + 1));
    }

    private void SetFloor(ulong floor)
    {
        Floor = floor;
        FloorPosition = floor == Cursor ? CursorPosition
            : _leased.TryGetValue(floor, out var l) ? l.Position
            : _pending.TryGetValue(floor, out var p) ? p.Position
            : throw new InvalidOperationException($"offset {floor} of group {Name} is neither finished, leased nor pending");
    }

    /// <summary>
    /// Retention: every offset below <paramref name="offset"/> (whose record starts at <paramref name="position"/>)
    /// is gone for this group, delivered or not. Their leases and pending deliveries end without a trace, so their
    /// receipts are stale from now on; the cursor and the floor move up to it (the floor further over offsets finished
    /// above it). O((leases, pending messages and finished ranges dropped) × log(in flight)).
    /// </summary>
    public void DropBelow(ulong offset, long position)
    {
        if (offset <= Floor) return;
        foreach (var o in Below(_leased, offset)) RemoveLease(o);
        foreach (var o in Below(_pending, offset)) RemovePending(o);
        _finished.RemoveBelow(offset);
        if (Cursor <= offset)
        {
            Cursor = offset;
            CursorPosition = position;
        }
        Floor = offset;
        FloorPosition = position;
        var floor = _finished.TakeRunFrom(offset);
        if (floor != offset) SetFloor(floor);
    }

    /// <summary>The keys of <paramref name="entries"/> below <paramref name="offset"/>, lowest first.</summary>
    private static List<ulong> Below<T>(OffsetMap<T> entries, ulong offset)
    {
        List<ulong> below = [];
        foreach (var (o, _) in entries)
        {
            if (o >= offset) break;
            below.Add(o);
        }
        return below;
    }

    /// <summary>
    /// Leased messages whose lease has not ended at <paramref name="now"/>. Ended leases leave only when a command
    /// expires them: O(log n + the ended ones still held), none when all or none ended.
    /// </summary>
    public int LiveLeases(long now) => _expiry.Count - AtOrBefore(_expiry, now);

    /// <summary>
    /// Pending messages not deliverable before a later time (nacked with a delay, or set aside until due): O(log n +
    /// those whose time passed and that no receive delivered yet), none when all or none are due.
    /// </summary>
    public int Delayed(long now) => _notBefore.Count - AtOrBefore(_notBefore, now);

    /// <summary>The entries of an index by time whose time is at or before <paramref name="now"/>, walked from the earliest.</summary>
    private static int AtOrBefore(SortedSet<(long Time, ulong Offset)> byTime, long now)
    {
        if (byTime.Count == 0 || byTime.Min.Time > now) return 0;
        if (byTime.Max.Time <= now) return byTime.Count;
        var n = 0;
        foreach (var (time, _) in byTime)
        {
            if (time > now) break;
            n++;
        }
        return n;
    }

    /// <summary>
    /// The unfinished messages below <paramref name="tail"/> by their deliveries so far, in the buckets of
    /// <see cref="DeliveryCountHistogram"/>: those from the cursor on have none, the leased and pending ones their
    /// count. Sums to <see cref="Unfinished"/>. O(in flight).
    /// </summary>
    public long[] DeliveryCounts(ulong tail)
    {
        var counts = new long[DeliveryCountHistogram.Buckets];
        counts[0] = (long)(tail - Cursor);
        foreach (var (_, lease) in _leased) counts[DeliveryCountHistogram.BucketOf(lease.Count)]++;
        foreach (var (_, pending) in _pending) counts[DeliveryCountHistogram.BucketOf(pending.Count)]++;
        return counts;
    }

    /// <summary>Messages not yet finished: [floor, tail) less the finished ones.</summary>
    public long Unfinished(ulong tail) => (long)(tail - Floor) - _finished.Count;

    /// <summary>
    /// The group in a snapshot up to its leases: name, cursor, floor and totals. The leases, pending messages and
    /// finished ranges follow, which <see cref="Capture"/> takes and <see cref="Captured.WriteTo"/> writes.
    /// </summary>
    public void WriteHeader(BinaryWriter w)
    {
        w.Write(Name);
        w.Write(Cursor);
        w.Write(CursorPosition);
        w.Write(Floor);
        w.Write(FloorPosition);
        w.Write(DeliveredTotal);
        w.Write(AckedTotal);
        w.Write(DeadLetteredTotal);
    }

    /// <summary>
    /// The leases, pending messages and finished ranges as they are now, to be written later from any thread while
    /// this group changes. O(1): copies nothing.
    /// </summary>
    public Captured Capture() => new(_leased.Capture(), _pending.Capture(), _finished.Capture());

    /// <summary>
    /// A group's leases, pending messages and finished ranges captured for a snapshot: immutable, so the snapshot's
    /// writer reads them on its own thread.
    /// </summary>
    public sealed class Captured
    {
        private readonly OffsetMap<Lease>.Frozen _leased;
        private readonly OffsetMap<Pending>.Frozen _pending;
        private readonly OffsetMap<ulong>.Frozen _finished;

        internal Captured(OffsetMap<Lease>.Frozen leased, OffsetMap<Pending>.Frozen pending, OffsetMap<ulong>.Frozen finished) =>
            (_leased, _pending, _finished) = (leased, pending, finished);

        /// <summary>How many bytes <see cref="WriteTo"/> writes. O(in flight): the nack errors' lengths are counted (call it from the writer).</summary>
        public long Bytes
        {
            get
            {
                const int InFlightBytes = sizeof(ulong) + sizeof(long) + sizeof(int) + sizeof(long) + sizeof(bool);
                long bytes = sizeof(int) + (long)_leased.Count * InFlightBytes + sizeof(int) + (long)_pending.Count * InFlightBytes
                    + sizeof(int) + (long)_finished.Count * 2 * sizeof(ulong);
                foreach (var (_, lease) in _leased) bytes += ErrorBytes(lease.Error);
                foreach (var (_, pending) in _pending) bytes += ErrorBytes(pending.Error);
                return bytes;
            }
        }

        /// <summary>
        /// The leases (count, then offset, position, deliveries, deadline and error each), the pending messages (the
        /// same with the time they are ready) and the finished ranges (count, then start and end each), lowest first.
        /// </summary>
        public void WriteTo(BinaryWriter w)
        {
            w.Write(_leased.Count);
            foreach (var (offset, lease) in _leased)
            {
                w.Write(offset);
                w.Write(lease.Position);
                w.Write(lease.Count);
                w.Write(lease.Deadline);
                WriteError(w, lease.Error);
            }
            w.Write(_pending.Count);
            foreach (var (offset, pending) in _pending)
            {
                w.Write(offset);
                w.Write(pending.Position);
                w.Write(pending.Count);
                w.Write(pending.NotBefore);
                WriteError(w, pending.Error);
            }
            w.Write(_finished.Count);
            foreach (var (start, end) in _finished)
            {
                w.Write(start);
                w.Write(end);
            }
        }

        /// <summary>What an error takes after its flag (BinaryWriter's string: a 7-bit encoded length, then UTF-8).</summary>
        private static int ErrorBytes(string? error)
        {
            if (error is null) return 0;
            var length = Encoding.UTF8.GetByteCount(error);
            var prefix = 1;
            for (var rest = length >> 7; rest != 0; rest >>= 7) prefix++;
            return prefix + length;
        }
    }

    /// <summary>Reads what <see cref="WriteHeader"/> and <see cref="Captured.WriteTo"/> wrote, checking it against the topic's [<paramref name="head"/>, <paramref name="tail"/>).</summary>
    public static ConsumerGroup Read(BinaryReader r, ulong head, ulong tail)
    {
        var name = r.ReadString();
        var cursor = r.ReadUInt64();
        var cursorPosition = r.ReadInt64();
        var floor = r.ReadUInt64();
        var floorPosition = r.ReadInt64();
        if (floor < head || cursor < floor || cursor > tail || floorPosition > cursorPosition)
            throw new InvalidDataException($"group {name}: floor {floor} and cursor {cursor} outside the topic's [{head}, {tail})");
        var group = new ConsumerGroup(name, cursor, cursorPosition)
        {
            DeliveredTotal = r.ReadInt64(), AckedTotal = r.ReadInt64(), DeadLetteredTotal = r.ReadInt64(),
        };
        group.Floor = floor;
        group.FloorPosition = floorPosition;
        var leased = r.ReadInt32();
        if (leased < 0) throw new InvalidDataException($"group {name}: negative lease count");
        for (int i = 0; i < leased; i++)
        {
            var offset = ReadInFlightOffset(r, name, floor, cursor);
            var lease = new Lease(r.ReadInt64(), r.ReadInt32(), r.ReadInt64(), ReadError(r));
            if (group._leased.ContainsKey(offset)) throw new InvalidDataException($"group {name}: offset {offset} leased twice");
            group.AddLease(offset, lease);
        }
        var pending = r.ReadInt32();
        if (pending < 0) throw new InvalidDataException($"group {name}: negative pending count");
        for (int i = 0; i < pending; i++)
        {
            var offset = ReadInFlightOffset(r, name, floor, cursor);
            var p = new Pending(r.ReadInt64(), r.ReadInt32(), r.ReadInt64(), ReadError(r));
            if (group._leased.ContainsKey(offset) || group._pending.ContainsKey(offset))
                throw new InvalidDataException($"group {name}: offset {offset} in flight twice");
            group.AddPending(offset, p);
        }
        var ranges = r.ReadInt32();
        if (ranges < 0) throw new InvalidDataException($"group {name}: negative range count");
        for (int i = 0; i < ranges; i++)
        {
            var start = r.ReadUInt64();
            var end = r.ReadUInt64();
            if (start <= floor || end > cursor) throw new InvalidDataException($"group {name}: finished range [{start}, {end}) outside ({floor}, {cursor}]");
            group._finished.AddRange(start, end);
        }
        return group;
    }

    private static ulong ReadInFlightOffset(BinaryReader r, string name, ulong floor, ulong cursor)
    {
        var offset = r.ReadUInt64();
        if (offset < floor || offset >= cursor) throw new InvalidDataException($"group {name}: in-flight offset {offset} outside [{floor}, {cursor})");
        return offset;
    }

    private static void WriteError(BinaryWriter w, string? error)
    {
        w.Write(error is not null);
        if (error is not null) w.Write(error);
    }

    private static string? ReadError(BinaryReader r) => r.ReadBoolean() ? r.ReadString() : null;
}

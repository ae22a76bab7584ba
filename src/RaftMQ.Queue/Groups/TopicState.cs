namespace RaftMQ.Queue.Groups;

/// <summary>
/// A topic's consumption state beside its records: its settings and its consumer groups in creation order (the
/// group <c>default</c> first, created with the topic, unless it was deleted; at least one group always). The topic's removable head is the lowest ack floor of its
/// groups.
/// </summary>
internal sealed class TopicState
{
    /// <summary>The group every topic has, on which the RRMQ pops are an atomic receive and ack.</summary>
    public const string DefaultGroup = "default";

    private readonly Dictionary<string, ConsumerGroup> _groups = new(StringComparer.Ordinal);
    private readonly List<ConsumerGroup> _order = [];

    /// <summary>A state with the group <c>default</c> starting at <paramref name="head"/>, created by the entry at <paramref name="created"/>.</summary>
    public TopicState(int maxDeliveries, ulong head, long headPosition, ulong created)
    {
        MaxDeliveries = maxDeliveries;
        Add(new ConsumerGroup(DefaultGroup, head, headPosition) { Created = created });
    }

    private TopicState(int maxDeliveries) => MaxDeliveries = maxDeliveries;

    /// <summary>Deliveries after which a message is dead-lettered instead of delivered again; 0 for never (dead-letter topics).</summary>
    public int MaxDeliveries { get; set; }

    /// <summary>Messages published to the topic so far (binary and string publishes, redrives included).</summary>
    public long PublishedTotal { get; set; }

    /// <summary>
    /// How long a published message id is remembered, in ms (0: ids are not remembered); −1 after restoring a
    /// snapshot written before deduplication, until the state machine gives it the default.
    /// </summary>
    public long DedupWindowMs { get; set; } = -1;

    /// <summary>The message ids remembered for idempotent publishing.</summary>
    public DedupTable Dedup { get; private set; } = new();

    /// <summary>Messages published with a delay not over yet.</summary>
    public DelayedMessages Delays { get; private set; } = new();

    /// <summary>Most messages retained (0: no bound of the topic's own).</summary>
    public long MaxMessages { get; set; }

    /// <summary>Most bytes retained, counted as the queue's byte bounds count (0: no bound of the topic's own).</summary>
    public long MaxBytes { get; set; }

    /// <summary>Age on the replicated clock at which a message expires (0: never).</summary>
    public long MaxAgeMs { get; set; }

    public OverflowPolicy Overflow { get; set; }

    public ExpiryAction Expire { get; set; }

    /// <summary>Messages removed by <see cref="OverflowPolicy.DropOldest"/> so far.</summary>
    public long OverflowDroppedTotal { get; set; }

    /// <summary>Messages removed by age so far (dead-lettered or dropped, as <see cref="Expire"/> said at the time).</summary>
    public long ExpiredTotal { get; set; }

    /// <summary>
    /// A cache of the publish time of the record at offset <see cref="HeadTimeOffset"/> (the head when it was read), so
    /// the expiry check at each clock step reads no file while the head stays. Not part of the state.
    /// </summary>
    public ulong HeadTimeOffset { get; set; } = ulong.MaxValue;

    public long HeadTime { get; set; }

    public IReadOnlyList<ConsumerGroup> Groups => _order;

    /// <summary>The group <c>default</c>; null once deleted (a dead-letter topic always has it, and only it).</summary>
    public ConsumerGroup? Default => Find(DefaultGroup);

    public ConsumerGroup? Find(string name) => _groups.GetValueOrDefault(name);

    public void Add(ConsumerGroup group)
    {
        _groups.Add(group.Name, group);
        _order.Add(group);
    }

    /// <summary>Removes a group (never the last).</summary>
    public void Remove(string name)
    {
        if (_order.Count == 1 || !_groups.Remove(name, out var group)) throw new InvalidOperationException($"cannot remove group {name}");
        _order.Remove(group);
    }

    /// <summary>The group with the lowest floor (the first such in creation order).</summary>
    public ConsumerGroup Lowest()
    {
        var lowest = _order[0];
        foreach (var g in _order)
        {
            if (g.Floor < lowest.Floor) lowest = g;
        }
        return lowest;
    }

    /// <summary>
    /// The offsets in [<paramref name="from"/>, <paramref name="to"/>) that every group has finished (acked or
    /// dead-lettered), as sorted disjoint ranges: what no consumer will read again, though a lower unfinished offset
    /// keeps them between the head and the tail. Pure bookkeeping, O(groups + finished ranges). Only a group's floor
    /// or its finished ranges can hold such offsets, so each range ends at an offset some group has not finished.
    /// </summary>
    public List<(ulong Start, ulong End)> FinishedByAll(ulong from, ulong to)
    {
        List<(ulong Start, ulong End)> common = [];
        if (from >= to) return common;
        common.Add((from, to));
        foreach (var g in _order)
        {
            if (common.Count == 0) break;
            // This group's finished offsets: below its floor, and its ranges above it.
            List<(ulong Start, ulong End)> finished = [];
            if (g.Floor > 0) finished.Add((0, g.Floor));
            finished.AddRange(g.Finished.Ranges);
            List<(ulong Start, ulong End)> both = [];
            int i = 0, j = 0;
            while (i < common.Count && j < finished.Count)
            {
                var start = Math.Max(common[i].Start, finished[j].Start);
                var end = Math.Min(common[i].End, finished[j].End);
                if (start < end) both.Add((start, end));
                if (common[i].End < finished[j].End) i++;
                else j++;
            }
            common = both;
        }
        return common;
    }

    /// <summary>Messages in [<paramref name="from"/>, <paramref name="to"/>) every group has finished.</summary>
    public long FinishedByAllCount(ulong from, ulong to)
    {
        long n = 0;
        foreach (var (start, end) in FinishedByAll(from, to)) n += (long)(end - start);
        return n;
    }

    /// <summary>
    /// The logical position of <paramref name="offset"/>'s record, which some group has not finished: that group's
    /// cursor, floor, lease or pending delivery says where it is.
    /// </summary>
    public long PositionOfUnfinished(ulong offset)
    {
        foreach (var g in _order)
        {
            if (offset == g.Cursor) return g.CursorPosition;
            if (offset == g.Floor) return g.FloorPosition;
            if (g.TryGetLease(offset, out var lease)) return lease.Position;
            if (g.TryGetPending(offset, out var pending)) return pending.Position;
        }
        throw new InvalidOperationException($"offset {offset} is finished by every group or past every cursor: no group knows its position");
    }

    /// <summary>Removes every offset below <paramref name="offset"/> (its record at <paramref name="position"/>) for every group.</summary>
    public void DropBelow(ulong offset, long position)
    {
        foreach (var g in _order) g.DropBelow(offset, position);
    }

    /// <summary>Whether a message that has had <paramref name="deliveries"/> deliveries must be dead-lettered rather than delivered again.</summary>
    public bool Exhausted(int deliveries) => MaxDeliveries > 0 && deliveries >= MaxDeliveries;

    /// <summary>
    /// The state in a snapshot: settings, totals, each group, then the deduplication section (window and ids), the
    /// delayed messages (count, then offset and due time each) and the retention section (bounds, policies, counters),
    /// which states written before them lack. The capture (on the loop) writes all but each group's leases, pending
    /// messages and finished ranges, the ids and the delayed messages, which <see cref="ConsumerGroup.Captured"/>,
    /// <see cref="DedupTable.Captured"/> and <see cref="DelayedMessages.Captured"/> write later, from the snapshot's
    /// writer. This writes the part before the ids, and returns each group's captured part with the position in
    /// <paramref name="w"/>'s stream it goes at (after the group's header). O(groups).
    /// </summary>
    public (int At, ConsumerGroup.Captured Group)[] CaptureBeforeIds(BinaryWriter w)
    {
        w.Write(MaxDeliveries);
        w.Write(PublishedTotal);
        w.Write(_order.Count);
        var groups = new (int At, ConsumerGroup.Captured Group)[_order.Count];
        for (var i = 0; i < groups.Length; i++)
        {
            _order[i].WriteHeader(w);
            groups[i] = (checked((int)w.BaseStream.Position), _order[i].Capture());
        }
        w.Write(DedupWindowMs);
        return groups;
    }

    /// <summary>
    /// The part of the state in a snapshot after the deduplication ids and the delayed messages (<see cref="CaptureBeforeIds"/>):
    /// the retention section, then each group's <see cref="ConsumerGroup.Created"/> (count, then one u64 per group in
    /// order), which states written before it lack.
    /// </summary>
    public void WriteAfterDelays(BinaryWriter w)
    {
        w.Write(MaxMessages);
        w.Write(MaxBytes);
        w.Write(MaxAgeMs);
        w.Write((byte)Overflow);
        w.Write((byte)Expire);
        w.Write(OverflowDroppedTotal);
        w.Write(ExpiredTotal);
        w.Write(_order.Count);
        foreach (var g in _order) w.Write(g.Created);
    }

    public static TopicState Read(BinaryReader r, string topic, ulong head, ulong tail)
    {
        var state = new TopicState(r.ReadInt32()) { PublishedTotal = r.ReadInt64() };
        if (state.MaxDeliveries < 0) throw new InvalidDataException($"topic {topic}: negative max_deliveries");
        var groups = r.ReadInt32();
        if (groups < 1) throw new InvalidDataException($"topic {topic}: {groups} groups");
        for (int i = 0; i < groups; i++)
        {
            var group = ConsumerGroup.Read(r, head, tail);
            if (state._groups.ContainsKey(group.Name)) throw new InvalidDataException($"topic {topic}: group {group.Name} twice");
            state.Add(group);
        }
        if (r.BaseStream.Position < r.BaseStream.Length)
        {
            state.DedupWindowMs = r.ReadInt64();
            if (state.DedupWindowMs < 0) throw new InvalidDataException($"topic {topic}: negative dedup window");
            state.Dedup = DedupTable.Read(r, topic);
            // States written with deduplication but before delayed delivery end here.
            if (r.BaseStream.Position < r.BaseStream.Length) state.Delays = DelayedMessages.Read(r, topic, head, tail);
            // And states written before retention here (no bounds, reject-publish, dead-letter: what they behaved as).
            if (r.BaseStream.Position < r.BaseStream.Length)
            {
                state.MaxMessages = r.ReadInt64();
                state.MaxBytes = r.ReadInt64();
                state.MaxAgeMs = r.ReadInt64();
                var overflow = r.ReadByte();
                var expire = r.ReadByte();
                if (state.MaxMessages < 0 || state.MaxBytes < 0 || state.MaxAgeMs < 0 || overflow > 1 || expire > 1)
                    throw new InvalidDataException($"topic {topic}: bad retention settings");
                state.Overflow = (OverflowPolicy)overflow;
                state.Expire = (ExpiryAction)expire;
                state.OverflowDroppedTotal = r.ReadInt64();
                state.ExpiredTotal = r.ReadInt64();
            }
            // And states written before groups recorded their creation here (0: the tags their receipts had).
            if (r.BaseStream.Position < r.BaseStream.Length)
            {
                if (r.ReadInt32() != groups) throw new InvalidDataException($"topic {topic}: creation numbers that do not match its {groups} groups");
                foreach (var g in state._order) g.Created = r.ReadUInt64();
            }
        }
        if (state.Lowest().Floor != head) throw new InvalidDataException($"topic {topic}: head {head} is not its lowest group floor {state.Lowest().Floor}");
        return state;
    }
}

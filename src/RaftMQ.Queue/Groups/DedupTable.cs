namespace RaftMQ.Queue.Groups;

/// <summary>
/// The message ids a topic remembers for idempotent publishing: each id with the offset it was stored at and the
/// replicated time it was published, oldest first. An id is forgotten once its topic's dedup window has passed since
/// it was published, or earlier when a bound forces it (<see cref="QueueLimits.MaxDedupIdsPerTopic"/>,
/// <see cref="QueueLimits.MaxDedupIds"/>). The replicated clock never goes back, so publish order is also age order.
/// </summary>
internal sealed class DedupTable
{
    private readonly Dictionary<string, (ulong Offset, long At)> _ids = new(StringComparer.Ordinal);
    private readonly Queue<string> _order = new();

    /// <summary>Ids remembered.</summary>
    public int Count => _ids.Count;

    /// <summary>Ids forgotten before their window passed, to stay within a bound.</summary>
    public long ForgottenEarlyTotal { get; set; }

    /// <summary>The offset <paramref name="id"/> was stored at, when it is remembered.</summary>
    public bool TryGet(string id, out ulong offset)
    {
        var found = _ids.TryGetValue(id, out var entry);
        offset = entry.Offset;
        return found;
    }

    /// <summary>Remembers <paramref name="id"/> (not remembered yet) as stored at <paramref name="offset"/> at time <paramref name="at"/>.</summary>
    public void Add(string id, ulong offset, long at)
    {
        _ids.Add(id, (offset, at));
        _order.Enqueue(id);
    }

    /// <summary>Forgets the ids published at or before <paramref name="now"/> − <paramref name="windowMs"/>; returns how many.</summary>
    public int Expire(long now, long windowMs)
    {
        var removed = 0;
        while (_order.TryPeek(out var id) && now - _ids[id].At >= windowMs)
        {
            _ids.Remove(_order.Dequeue());
            removed++;
        }
        return removed;
    }

    /// <summary>Forgets the oldest id before its window passed; false when none is remembered.</summary>
    public bool ForgetOldest()
    {
        if (!_order.TryDequeue(out var id)) return false;
        _ids.Remove(id);
        ForgottenEarlyTotal++;
        return true;
    }

    /// <summary>The table in a snapshot: the early-forgotten total, the count, then each id oldest first with its offset and time.</summary>
    public void Write(BinaryWriter w)
    {
        w.Write(ForgottenEarlyTotal);
        w.Write(_order.Count);
        foreach (var id in _order)
        {
            var (offset, at) = _ids[id];
            w.Write(id);
            w.Write(offset);
            w.Write(at);
        }
    }

    public static DedupTable Read(BinaryReader r, string topic)
    {
        var table = new DedupTable { ForgottenEarlyTotal = r.ReadInt64() };
        var count = r.ReadInt32();
        if (count < 0) throw new InvalidDataException($"topic {topic}: negative dedup id count");
        long last = long.MinValue;
        for (int i = 0; i < count; i++)
        {
            var id = r.ReadString();
            var offset = r.ReadUInt64();
            var at = r.ReadInt64();
            if (at < last) throw new InvalidDataException($"topic {topic}: dedup ids out of time order");
            if (table._ids.ContainsKey(id)) throw new InvalidDataException($"topic {topic}: dedup id {id} twice");
            table.Add(id, offset, at);
            last = at;
        }
        return table;
    }
}

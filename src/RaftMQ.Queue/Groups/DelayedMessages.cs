namespace RaftMQ.Queue.Groups;

/// <summary>
/// A topic's messages published with a delay that is not over yet: offset → the replicated time it may first be
/// delivered. A group's cursor that reaches one moves it to the group's pending set with that time (so it is
/// delivered once due, and the cursor goes on). An entry is dropped once due, or once the topic's head has passed it,
/// so the table holds only delayed messages not yet due: O(those) memory.
/// </summary>
internal sealed class DelayedMessages
{
    private readonly SortedDictionary<ulong, long> _byOffset = [];
    private readonly SortedSet<(long Due, ulong Offset)> _byDue = [];

    /// <summary>Entries held (after <see cref="Prune"/>: delayed messages not yet due).</summary>
    public int Count => _byOffset.Count;

    /// <summary>The entries, lowest offset first.</summary>
    public IEnumerable<KeyValuePair<ulong, long>> Entries => _byOffset;

    public void Add(ulong offset, long due)
    {
        _byOffset.Add(offset, due);
        _byDue.Add((due, offset));
    }

    /// <summary>When the message at <paramref name="offset"/> may first be delivered, if it was published with a delay still held.</summary>
    public bool TryGetDue(ulong offset, out long due) => _byOffset.TryGetValue(offset, out due);

    /// <summary>Drops the entries due at <paramref name="now"/> and those below <paramref name="head"/>.</summary>
    public void Prune(long now, ulong head)
    {
        while (_byDue.Count > 0 && _byDue.Min.Due <= now)
        {
            var min = _byDue.Min;
            _byDue.Remove(min);
            _byOffset.Remove(min.Offset);
        }
        while (_byOffset.Count > 0)
        {
            var first = _byOffset.First();
            if (first.Key >= head) break;
            _byOffset.Remove(first.Key);
            _byDue.Remove((first.Value, first.Key));
        }
    }

    /// <summary>Entries at or above <paramref name="cursor"/> not due at <paramref name="now"/> (a stats read: O(entries)).</summary>
    public int NotDueFrom(ulong cursor, long now)
    {
        var n = 0;
        foreach (var (offset, due) in _byOffset)
        {
            if (offset >= cursor && due > now) n++;
        }
        return n;
    }

    public void Write(BinaryWriter w)
    {
        w.Write(_byOffset.Count);
        foreach (var (offset, due) in _byOffset)
        {
            w.Write(offset);
            w.Write(due);
        }
    }

    public static DelayedMessages Read(BinaryReader r, string topic, ulong head, ulong tail)
    {
        var delayed = new DelayedMessages();
        var count = r.ReadInt32();
        if (count < 0) throw new InvalidDataException($"topic {topic}: negative delayed count");
        for (int i = 0; i < count; i++)
        {
            var offset = r.ReadUInt64();
            var due = r.ReadInt64();
            if (offset < head || offset >= tail) throw new InvalidDataException($"topic {topic}: delayed offset {offset} outside [{head}, {tail})");
            if (delayed._byOffset.ContainsKey(offset)) throw new InvalidDataException($"topic {topic}: delayed offset {offset} twice");
            delayed.Add(offset, due);
        }
        return delayed;
    }
}

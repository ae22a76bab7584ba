using System.Collections.Immutable;

namespace RaftMQ.Queue.Groups;

/// <summary>
/// A topic's messages published with a delay that is not over yet: offset → the replicated time it may first be
/// delivered. A group's cursor that reaches one moves it to the group's pending set with that time (so it is
/// delivered once due, and the cursor goes on). An entry is dropped once due, or once the topic's head has passed it,
/// so the table holds only delayed messages not yet due: O(those) memory.
/// </summary>
/// <remarks>
/// The entries by offset are an immutable set (each change makes a new one sharing all but O(log n) nodes), so that a
/// snapshot captures them in O(1) on the loop (<see cref="Capture"/>) and writes them later from another thread.
/// </remarks>
internal sealed class DelayedMessages
{
    private ImmutableSortedSet<Entry> _byOffset = ImmutableSortedSet.Create<Entry>(ByOffset.Instance);
    private readonly SortedSet<(long Due, ulong Offset)> _byDue = [];

    /// <summary>Entries held (after <see cref="Prune"/>: delayed messages not yet due).</summary>
    public int Count => _byOffset.Count;

    /// <summary>Adds the messages at these offsets (none delayed yet) with their due times; a batch costs one set's worth of new nodes.</summary>
    public void Add(IEnumerable<(ulong Offset, long Due)> entries)
    {
        var builder = _byOffset.ToBuilder();
        foreach (var (offset, due) in entries)
        {
            if (!builder.Add(new Entry(offset, due))) throw new ArgumentException($"offset {offset} is already delayed", nameof(entries));
            _byDue.Add((due, offset));
        }
        _byOffset = builder.ToImmutable();
    }

    /// <summary>When the message at <paramref name="offset"/> may first be delivered, if it was published with a delay still held.</summary>
    public bool TryGetDue(ulong offset, out long due)
    {
        var found = _byOffset.TryGetValue(new Entry(offset, 0), out var entry);
        due = entry.Due;
        return found;
    }

    /// <summary>Drops the entries due at <paramref name="now"/> and those below <paramref name="head"/>.</summary>
    public void Prune(long now, ulong head)
    {
        while (_byDue.Count > 0 && _byDue.Min.Due <= now)
        {
            var min = _byDue.Min;
            _byDue.Remove(min);
            _byOffset = _byOffset.Remove(new Entry(min.Offset, min.Due));
        }
        while (_byOffset.Count > 0)
        {
            var first = _byOffset.Min;
            if (first.Offset >= head) break;
            _byOffset = _byOffset.Remove(first);
            _byDue.Remove((first.Due, first.Offset));
        }
    }

    /// <summary>
    /// For each of <paramref name="cursors"/> (a topic's groups'), the entries at or above it not due at
    /// <paramref name="now"/>: what the stats and the group counters (once a second) ask. O(g log n) for those at or
    /// above each cursor (a rank in the set), less the entries due by now that no command has pruned yet (the clock
    /// passed them since the topic's last publish or receive), walked once for all groups: O(those × log g). None
    /// when every entry is due.
    /// </summary>
    public int[] NotDueFrom(ReadOnlySpan<ulong> cursors, long now)
    {
        var counts = new int[cursors.Length];
        if (_byDue.Count == 0 || _byDue.Max.Due <= now) return counts; // all due (a topic idle since they fell due, say)
        for (int i = 0; i < cursors.Length; i++)
        {
            var rank = _byOffset.IndexOf(new Entry(cursors[i], 0));
            counts[i] = _byOffset.Count - (rank >= 0 ? rank : ~rank);
        }
        if (_byDue.Min.Due > now) return counts;
        // Each entry due by now is taken off every cursor at or below it. With the cursors sorted, an entry above the
        // first m of them adds one to dueAbove[m]; a cursor at sorted place j loses those of every m > j.
        var sorted = cursors.ToArray();
        Array.Sort(sorted);
        var dueAbove = new int[sorted.Length + 1];
        foreach (var (due, offset) in _byDue)
        {
            if (due > now) break;
            dueAbove[AtOrBelow(sorted, offset)]++;
        }
        for (int m = sorted.Length - 1; m >= 0; m--) dueAbove[m] += dueAbove[m + 1]; // now: the due entries above the first m
        for (int i = 0; i < cursors.Length; i++) counts[i] -= dueAbove[AtOrBelow(sorted, cursors[i])];
        return counts;

        // How many of the sorted cursors are at or below offset.
        static int AtOrBelow(ulong[] sorted, ulong offset)
        {
            var (low, high) = (0, sorted.Length);
            while (low < high)
            {
                var middle = (low + high) >>> 1;
                if (sorted[middle] <= offset) low = middle + 1;
                else high = middle;
            }
            return low;
        }
    }

    /// <summary>The entries as they are now, to be written later from any thread while this table changes (O(1)).</summary>
    public Captured Capture() => new(_byOffset);

    /// <summary>Delayed messages captured for a snapshot: the count, then offset and due time each, lowest offset first.</summary>
    public sealed class Captured
    {
        private readonly ImmutableSortedSet<Entry> _entries;

        internal Captured(ImmutableSortedSet<Entry> entries) => _entries = entries;

        /// <summary>How many bytes <see cref="WriteTo"/> writes.</summary>
        public long Bytes => sizeof(int) + (long)_entries.Count * (sizeof(ulong) + sizeof(long));

        public void WriteTo(BinaryWriter w)
        {
            w.Write(_entries.Count);
            foreach (var (offset, due) in _entries)
            {
                w.Write(offset);
                w.Write(due);
            }
        }
    }

    internal readonly record struct Entry(ulong Offset, long Due);

    /// <summary>Entries are one per offset: ordered and found by it alone.</summary>
    private sealed class ByOffset : IComparer<Entry>
    {
        public static readonly ByOffset Instance = new();

        public int Compare(Entry x, Entry y) => x.Offset.CompareTo(y.Offset);
    }

    public static DelayedMessages Read(BinaryReader r, string topic, ulong head, ulong tail)
    {
        var delayed = new DelayedMessages();
        var count = r.ReadInt32();
        if (count < 0) throw new InvalidDataException($"topic {topic}: negative delayed count");
        var entries = new List<(ulong, long)>(Math.Min(count, 1 << 16));
        var seen = new HashSet<ulong>();
        for (int i = 0; i < count; i++)
        {
            var offset = r.ReadUInt64();
            var due = r.ReadInt64();
            if (offset < head || offset >= tail) throw new InvalidDataException($"topic {topic}: delayed offset {offset} outside [{head}, {tail})");
            if (!seen.Add(offset)) throw new InvalidDataException($"topic {topic}: delayed offset {offset} twice");
            entries.Add((offset, due));
        }
        delayed.Add(entries);
        return delayed;
    }
}

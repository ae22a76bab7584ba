namespace RaftMQ.Raft;

/// <summary>
/// An <see cref="ILogStorage"/> held in memory: what the simulator treats as "persisted", and a reference for the
/// durable implementations. Not thread-safe; owned by one node's loop.
/// </summary>
public sealed class MemoryLogStorage : ILogStorage
{
    // entries[i] has index snapshot.Index + 1 + i.
    private readonly List<Entry> _entries;

    public MemoryLogStorage()
    {
        _entries = [];
    }

    private MemoryLogStorage(HardState hardState, SnapshotMetadata snapshot, List<Entry> entries)
    {
        HardState = hardState;
        Snapshot = snapshot;
        _entries = entries;
    }

    public HardState HardState { get; private set; }

    public SnapshotMetadata Snapshot { get; private set; }

    public ulong FirstIndex => Snapshot.Index + 1;

    public ulong LastIndex => Snapshot.Index + (ulong)_entries.Count;

    public ulong Term(ulong index)
    {
        if (index == Snapshot.Index) return Snapshot.Term;
        if (index < Snapshot.Index || index > LastIndex)
            throw new ArgumentOutOfRangeException(nameof(index), index, $"not in [{Snapshot.Index}, {LastIndex}]");
        return _entries[(int)(index - FirstIndex)].Term;
    }

    public void ReadEntries(ulong from, ulong to, long maxBytes, List<Entry> into)
    {
        if (from < FirstIndex || to > LastIndex + 1 || from >= to)
            throw new ArgumentOutOfRangeException(nameof(from), $"[{from}, {to}) not within [{FirstIndex}, {LastIndex + 1})");
        long bytes = 0;
        for (ulong i = from; i < to; i++)
        {
            var e = _entries[(int)(i - FirstIndex)];
            into.Add(e);
            bytes += e.Size;
            if (bytes >= maxBytes) break;
        }
    }

    /// <summary>Persists the hard state.</summary>
    public void SetHardState(HardState hardState) => HardState = hardState;

    /// <summary>Appends entries, first removing any held entry at or after the first new index.</summary>
    public void Append(IReadOnlyList<Entry> entries)
    {
        if (entries.Count == 0) return;
        var first = entries[0].Index;
        if (first <= Snapshot.Index)
            throw new InvalidOperationException($"entry {first} is already covered by the snapshot at {Snapshot.Index}");
        if (first > LastIndex + 1)
            throw new InvalidOperationException($"gap in the log: appending {first} after {LastIndex}");
        var keep = (int)(first - FirstIndex);
        if (keep < _entries.Count) _entries.RemoveRange(keep, _entries.Count - keep);
        for (int i = 0; i < entries.Count; i++) _entries.Add(entries[i]);
    }

    /// <summary>Drops entries up to and including <paramref name="snapshot"/>.Index, which a snapshot now covers.</summary>
    public void Compact(SnapshotMetadata snapshot)
    {
        if (snapshot.Index <= Snapshot.Index) return;
        if (snapshot.Index > LastIndex)
        {
            _entries.Clear();
        }
        else
        {
            _entries.RemoveRange(0, (int)(snapshot.Index - Snapshot.Index));
        }
        Snapshot = snapshot;
    }

    /// <summary>Makes <paramref name="snapshot"/> the start of the log, discarding every entry (a snapshot from the leader).</summary>
    public void InstallSnapshot(SnapshotMetadata snapshot)
    {
        _entries.Clear();
        Snapshot = snapshot;
        if (HardState.Commit < snapshot.Index) HardState = HardState with { Commit = snapshot.Index };
    }

    /// <summary>A deep copy, as a crash would leave the durable state.</summary>
    public MemoryLogStorage Clone() => new(HardState, Snapshot, [.. _entries]);
}

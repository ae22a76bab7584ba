using System.Diagnostics;

namespace RaftMQ.Raft;

/// <summary>
/// The log as the core sees it: the durable part in <see cref="ILogStorage"/> followed by an unstable tail of
/// entries not yet persisted. Unstable entries may replace a suffix of the durable part (a follower overwriting an
/// old leader's entries); the runtime's append does the same on disk.
/// </summary>
internal sealed class RaftLog
{
    private readonly ILogStorage _storage;
    private readonly List<Entry> _unstable = [];

    // Index of _unstable[0]; entries of storage at or after it are logically replaced.
    private ulong _unstableOffset;

    // A snapshot received from the leader that replaces the whole log, until the runtime has installed it.
    private SnapshotMetadata? _pendingSnapshot;

    public RaftLog(ILogStorage storage, ulong applied)
    {
        _storage = storage;
        _unstableOffset = storage.LastIndex + 1;
        Committed = storage.HardState.Commit;
        if (Committed < storage.Snapshot.Index) Committed = storage.Snapshot.Index;
        if (Committed > storage.LastIndex)
            throw new InvalidOperationException($"hard state commit {Committed} is past the last stored index {storage.LastIndex}");
        Applied = Math.Max(applied, storage.Snapshot.Index);
        if (Applied > Committed)
        {
            // Only committed entries are applied, so a state machine restored past the persisted commit index (a
            // snapshot is synced, a commit index alone is not) proves those entries committed.
            if (Applied > storage.LastIndex)
                throw new InvalidOperationException($"applied {Applied} is past the last stored index {storage.LastIndex}");
            Committed = Applied;
        }
    }

    public ulong Committed { get; private set; }

    /// <summary>Highest index handed to the application (in a Ready already taken).</summary>
    public ulong Applied { get; private set; }

    public ulong FirstIndex => _pendingSnapshot is { } p ? p.Index + 1 : _storage.FirstIndex;

    public ulong LastIndex => _unstable.Count > 0
        ? _unstableOffset + (ulong)_unstable.Count - 1
        : _pendingSnapshot is { } p ? p.Index : _storage.LastIndex;

    /// <summary>Last index that is durable (not replaced by an unstable entry or a snapshot being installed).</summary>
    public ulong StableLastIndex => _pendingSnapshot is null ? Math.Min(_storage.LastIndex, _unstableOffset - 1) : 0;

    /// <summary>The snapshot the durable log starts after.</summary>
    public SnapshotMetadata StorageSnapshot => _storage.Snapshot;

    /// <summary>A snapshot from the leader waiting to be installed by the runtime.</summary>
    public SnapshotMetadata? PendingSnapshot => _pendingSnapshot;

    public ulong LastTerm => Term(LastIndex);

    public int UnstableCount => _unstable.Count;

    public bool HasUnstable => _unstable.Count > 0 || _pendingSnapshot is not null;

    /// <summary>Term at <paramref name="index"/>, or false when the index is compacted away or past the end.</summary>
    public bool TryTerm(ulong index, out ulong term)
    {
        if (index >= _unstableOffset)
        {
            var k = index - _unstableOffset;
            if (k < (ulong)_unstable.Count)
            {
                term = _unstable[(int)k].Term;
                return true;
            }
            term = 0;
            return false;
        }
        if (_pendingSnapshot is { } pending)
        {
            term = index == pending.Index ? pending.Term : 0;
            return index == pending.Index;
        }
        var snap = _storage.Snapshot;
        if (index < snap.Index || index > _storage.LastIndex)
        {
            term = 0;
            return false;
        }
        term = _storage.Term(index);
        return true;
    }

    /// <summary>Term at <paramref name="index"/>, 0 when unavailable.</summary>
    public ulong Term(ulong index) => TryTerm(index, out var t) ? t : 0;

    public bool MatchTerm(ulong index, ulong term) => TryTerm(index, out var t) && t == term;

    /// <summary>The up-to-date rule for votes (§5.4.1): a later last term wins; equal terms, the longer log.</summary>
    public bool IsUpToDate(ulong lastIndex, ulong lastTerm)
    {
        var myTerm = LastTerm;
        return lastTerm > myTerm || (lastTerm == myTerm && lastIndex >= LastIndex);
    }

    /// <summary>Appends a leader's own new entries.</summary>
    public void AppendLeaderEntry(Entry e)
    {
        Debug.Assert(e.Index == LastIndex + 1);
        if (_unstable.Count == 0) _unstableOffset = e.Index;
        _unstable.Add(e);
    }

    /// <summary>
    /// The follower side of AppendEntries (§5.3): if the log matches at (prevIndex, prevTerm), append the entries that
    /// are new, truncating only at the first conflict, and return the last index now known to match the leader.
    /// </summary>
    public bool TryAppend(ulong prevIndex, ulong prevTerm, IReadOnlyList<Entry> entries, out ulong lastNewIndex)
    {
        lastNewIndex = 0;
        if (!MatchTerm(prevIndex, prevTerm)) return false;
        lastNewIndex = prevIndex + (ulong)entries.Count;
        int conflict = FindConflict(entries);
        if (conflict < 0) return true;
        var first = entries[conflict].Index;
        if (first <= Committed)
            throw new InvalidOperationException($"entry {first} conflicts with the committed log (commit {Committed})");
        TruncateAndAppend(entries, conflict);
        return true;
    }

    // Position in entries of the first one not already in the log with the same term, or -1 (§5.3, rule 3 and 4).
    private int FindConflict(IReadOnlyList<Entry> entries)
    {
        for (int i = 0; i < entries.Count; i++)
        {
            var e = entries[i];
            if (!MatchTerm(e.Index, e.Term)) return i;
        }
        return -1;
    }

    private void TruncateAndAppend(IReadOnlyList<Entry> entries, int from)
    {
        var first = entries[from].Index;
        if (_unstable.Count > 0 && first == _unstableOffset + (ulong)_unstable.Count)
        {
            // Plain append to the unstable tail.
        }
        else if (first <= _unstableOffset)
        {
            // Replaces the whole unstable tail and maybe a durable suffix.
            _unstable.Clear();
            _unstableOffset = first;
        }
        else
        {
            var keep = (int)(first - _unstableOffset);
            _unstable.RemoveRange(keep, _unstable.Count - keep);
        }
        for (int i = from; i < entries.Count; i++) _unstable.Add(entries[i]);
    }

    /// <summary>
    /// The largest index at or below <paramref name="index"/> whose term is at most <paramref name="term"/>: the
    /// fast-backtracking hint (§5.3, "the follower can include the term of the conflicting entry").
    /// </summary>
    public ulong FindConflictByTerm(ulong index, ulong term)
    {
        while (index > 0)
        {
            if (!TryTerm(index, out var t)) break;
            if (t <= term) break;
            index--;
        }
        return index;
    }

    public void CommitTo(ulong index)
    {
        if (index <= Committed) return;
        if (index > LastIndex) throw new InvalidOperationException($"commit {index} is past the last index {LastIndex}");
        Committed = index;
    }

    /// <summary>Entries in [lo, hi), bounded by bytes (at least one entry).</summary>
    public void Slice(ulong lo, ulong hi, long maxBytes, List<Entry> into)
    {
        if (lo >= hi) return;
        long bytes = 0;
        if (lo < _unstableOffset)
        {
            var storageHi = Math.Min(hi, _unstableOffset);
            var before = into.Count;
            _storage.ReadEntries(lo, storageHi, maxBytes, into);
            for (int i = before; i < into.Count; i++)
            {
                // Storage may return one entry past the bound; here the bound is a maximum (one entry always goes).
                if (bytes > 0 && bytes + into[i].Size > maxBytes)
                {
                    into.RemoveRange(i, into.Count - i);
                    return;
                }
                bytes += into[i].Size;
            }
            if (bytes >= maxBytes || (ulong)(into.Count - before) < storageHi - lo) return;
            lo = storageHi;
        }
        for (ulong i = lo; i < hi; i++)
        {
            var e = _unstable[(int)(i - _unstableOffset)];
            if (bytes > 0 && bytes + e.Size > maxBytes) break;
            into.Add(e);
            bytes += e.Size;
        }
    }

    public Entry[] UnstableEntries() => _unstable.ToArray();

    /// <summary>Committed entries not yet handed to the application, bounded by bytes.</summary>
    public IReadOnlyList<Entry> NextCommittedEntries(long maxBytes)
    {
        if (Committed <= Applied) return [];
        var list = NewSliceList(Applied + 1, Committed + 1);
        Slice(Applied + 1, Committed + 1, maxBytes, list);
        return list;
    }

    /// <summary>A list sized for a slice of [lo, hi), so hot paths do not grow it entry by entry.</summary>
    public static List<Entry> NewSliceList(ulong lo, ulong hi) => new((int)Math.Min(hi - lo, 1024));

    public bool HasNextCommittedEntries => Committed > Applied;

    /// <summary>The runtime persisted the unstable entries up to (index, term).</summary>
    public void StableTo(ulong index, ulong term)
    {
        if (_unstable.Count == 0 || index < _unstableOffset) return;
        var k = index - _unstableOffset;
        if (k >= (ulong)_unstable.Count || _unstable[(int)k].Term != term) return;
        _unstable.RemoveRange(0, (int)k + 1);
        _unstableOffset = index + 1;
    }

    /// <summary>
    /// Replaces the whole log with a snapshot from the leader (§7): everything up to its index is committed and, once
    /// the runtime restores the state machine from it, applied.
    /// </summary>
    public void Restore(SnapshotMetadata snapshot)
    {
        _pendingSnapshot = snapshot;
        _unstable.Clear();
        _unstableOffset = snapshot.Index + 1;
        Committed = snapshot.Index;
        Applied = snapshot.Index;
    }

    /// <summary>The runtime installed the pending snapshot in storage.</summary>
    public void SnapshotStableTo(SnapshotMetadata snapshot)
    {
        if (_pendingSnapshot == snapshot) _pendingSnapshot = null;
    }

    public void AppliedTo(ulong index)
    {
        if (index == 0) return;
        if (index > Committed || index < Applied)
            throw new InvalidOperationException($"applied {index} is outside [{Applied}, {Committed}]");
        Applied = index;
    }
}

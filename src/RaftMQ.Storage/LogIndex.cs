using RaftMQ.Raft;

namespace RaftMQ.Storage;

/// <summary>An open segment file and where the next record goes.</summary>
internal sealed class SegmentFile(ulong sequence, string path, IStorageFile file, long length)
{
    public ulong Sequence { get; } = sequence;
    public string Path { get; } = path;
    public IStorageFile File { get; } = file;

    /// <summary>Bytes of valid records: the file's logical end, where the next batch is written.</summary>
    public long Length { get; set; } = length;
}

/// <summary>
/// Where each live entry sits on disk, and its term, without the entries themselves: per segment a run of
/// consecutive indexes with one u32 file offset each, and the terms as (first index, term) runs. About 4 bytes
/// per entry; compaction frees it.
/// </summary>
internal sealed class LogIndex
{
    private sealed class Range(SegmentFile segment, ulong firstIndex)
    {
        public SegmentFile Segment { get; } = segment;
        public ulong FirstIndex { get; set; } = firstIndex;
        public List<uint> Offsets { get; } = [];
        public ulong LastIndex => FirstIndex + (ulong)Offsets.Count - 1;
    }

    private readonly record struct TermRun(ulong FirstIndex, ulong Term);

    private readonly List<Range> _ranges = [];
    private readonly List<TermRun> _terms = [];

    /// <summary>Entries start at <c>Base + 1</c>. <c>Base &gt; Snapshot.Index</c> only mid-recovery, while the
    /// entries (Snapshot.Index, Base] are still unaccounted for (they sat in deleted segments).</summary>
    public ulong Base { get; private set; }

    public SnapshotMetadata Snapshot { get; private set; }

    public ulong Count { get; private set; }

    public ulong LastIndex => Base + Count;

    public void Initialize(ulong @base, SnapshotMetadata snapshot)
    {
        Clear();
        Snapshot = snapshot;
        Base = Math.Max(@base, snapshot.Index);
    }

    public void Append(SegmentFile segment, ulong index, ulong term, uint offset)
    {
        if (index != LastIndex + 1) throw new InvalidOperationException($"index {index} does not follow {LastIndex}");
        if (_ranges.Count == 0 || _ranges[^1].Segment != segment) _ranges.Add(new Range(segment, index));
        _ranges[^1].Offsets.Add(offset);
        if (_terms.Count == 0 || _terms[^1].Term != term) _terms.Add(new TermRun(index, term));
        Count++;
    }

    /// <summary>Forgets entries at or after <paramref name="index"/> (which must be past the snapshot).</summary>
    public void TruncateFrom(ulong index)
    {
        if (index <= Snapshot.Index) throw new InvalidOperationException($"cannot truncate at {index}, at or before the snapshot at {Snapshot.Index}");
        if (index > LastIndex) return;
        if (index <= Base)
        {
            // Replaces entries we never saw (recovery only): what remains unaccounted for shrinks.
            Clear();
            Base = index - 1;
            return;
        }
        while (_ranges.Count > 0 && _ranges[^1].FirstIndex >= index) _ranges.RemoveAt(_ranges.Count - 1);
        if (_ranges.Count > 0)
        {
            var r = _ranges[^1];
            var keep = (int)(index - r.FirstIndex);
            if (keep < r.Offsets.Count) r.Offsets.RemoveRange(keep, r.Offsets.Count - keep);
        }
        while (_terms.Count > 0 && _terms[^1].FirstIndex >= index) _terms.RemoveAt(_terms.Count - 1);
        Count = index - 1 - Base;
    }

    /// <summary>Drops entries up to <paramref name="snapshot"/>.Index; all of them when it is past the last.</summary>
    public void Compact(SnapshotMetadata snapshot)
    {
        if (snapshot.Index <= Snapshot.Index) return;
        Snapshot = snapshot;
        if (snapshot.Index >= LastIndex)
        {
            Clear();
            Base = snapshot.Index;
            return;
        }
        if (snapshot.Index <= Base) return;
        var newFirst = snapshot.Index + 1;
        while (_ranges[0].LastIndex < newFirst) _ranges.RemoveAt(0);
        var head = _ranges[0];
        var drop = (int)(newFirst - head.FirstIndex);
        if (drop > 0)
        {
            head.Offsets.RemoveRange(0, drop);
            head.FirstIndex = newFirst;
        }
        while (_terms.Count > 1 && _terms[1].FirstIndex <= newFirst) _terms.RemoveAt(0);
        Count = LastIndex - snapshot.Index;
        Base = snapshot.Index;
    }

    /// <summary>Forgets every entry: the log now starts after <paramref name="snapshot"/>.</summary>
    public void Reset(SnapshotMetadata snapshot)
    {
        Clear();
        Snapshot = snapshot;
        Base = snapshot.Index;
    }

    /// <summary>
    /// Applies what a batch header says before its entries: a reset or a newer snapshot point, then the removal
    /// of entries at or after the batch's first index. Returns null, or why the header cannot follow this log.
    /// </summary>
    public string? ApplyHeader(in WalFormat.BatchHeader header)
    {
        if ((header.Flags & WalFormat.FlagReset) != 0) Reset(header.Snapshot);
        else if (header.Snapshot.Index > Snapshot.Index) Compact(header.Snapshot);
        if (header.Count == 0) return null;
        if (header.FirstIndex <= Snapshot.Index)
            return $"batch starts at {header.FirstIndex}, inside the snapshot at {Snapshot.Index}";
        if (header.FirstIndex > LastIndex + 1)
            return $"batch starts at {header.FirstIndex}, leaving a gap after {LastIndex}";
        TruncateFrom(header.FirstIndex);
        return null;
    }

    public ulong Term(ulong index)
    {
        if (index == Snapshot.Index) return Snapshot.Term;
        if (index <= Base || index > LastIndex)
            throw new ArgumentOutOfRangeException(nameof(index), index, $"not in [{Snapshot.Index}, {LastIndex}]");
        int lo = 0, hi = _terms.Count - 1;
        while (lo < hi)
        {
            var mid = (lo + hi + 1) / 2;
            if (_terms[mid].FirstIndex <= index) lo = mid;
            else hi = mid - 1;
        }
        return _terms[lo].Term;
    }

    /// <summary>The segment and file offset of entry <paramref name="index"/>, and how many entries follow it contiguously in that segment.</summary>
    public (SegmentFile Segment, List<uint> Offsets, int Position) Locate(ulong index)
    {
        if (index <= Base || index > LastIndex) throw new ArgumentOutOfRangeException(nameof(index), index, "not held");
        int lo = 0, hi = _ranges.Count - 1;
        while (lo < hi)
        {
            var mid = (lo + hi + 1) / 2;
            if (_ranges[mid].FirstIndex <= index) lo = mid;
            else hi = mid - 1;
        }
        var r = _ranges[lo];
        return (r.Segment, r.Offsets, (int)(index - r.FirstIndex));
    }

    /// <summary>Whether any live entry sits in <paramref name="segment"/>.</summary>
    public bool References(SegmentFile segment)
    {
        foreach (var r in _ranges)
        {
            if (r.Segment == segment) return true;
        }
        return false;
    }

    private void Clear()
    {
        _ranges.Clear();
        _terms.Clear();
        Count = 0;
    }
}

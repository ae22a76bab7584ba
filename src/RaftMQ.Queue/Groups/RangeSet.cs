namespace RaftMQ.Queue.Groups;

/// <summary>
/// A set of offsets kept as disjoint half-open ranges [start, end), sorted: a million consecutive offsets cost one
/// entry. Used for the offsets a group has finished (acked or dead-lettered) above its ack floor, so memory grows
/// with the gaps, never with the backlog.
/// </summary>
internal sealed class RangeSet
{
    private readonly List<(ulong Start, ulong End)> _ranges = [];

    /// <summary>Offsets in the set.</summary>
    public long Count { get; private set; }

    /// <summary>Ranges held (the memory cost).</summary>
    public int RangeCount => _ranges.Count;

    public IReadOnlyList<(ulong Start, ulong End)> Ranges => _ranges;

    public bool Contains(ulong offset)
    {
        var i = IndexAtOrBefore(offset);
        return i >= 0 && offset < _ranges[i].End;
    }

    /// <summary>Adds <paramref name="offset"/>; false when it was already there.</summary>
    public bool Add(ulong offset)
    {
        var i = IndexAtOrBefore(offset);
        if (i >= 0 && offset < _ranges[i].End) return false;
        var joinsLeft = i >= 0 && _ranges[i].End == offset;
        var joinsRight = i + 1 < _ranges.Count && _ranges[i + 1].Start == offset + 1;
        if (joinsLeft && joinsRight)
        {
            _ranges[i] = (_ranges[i].Start, _ranges[i + 1].End);
            _ranges.RemoveAt(i + 1);
        }
        else if (joinsLeft) _ranges[i] = (_ranges[i].Start, offset + 1);
        else if (joinsRight) _ranges[i + 1] = (offset, _ranges[i + 1].End);
        else _ranges.Insert(i + 1, (offset, offset + 1));
        Count++;
        return true;
    }

    /// <summary>
    /// If a range starts at <paramref name="offset"/>, removes it and returns its end; else returns
    /// <paramref name="offset"/>. Moves an ack floor over the offsets finished above it.
    /// </summary>
    public ulong TakeRunFrom(ulong offset)
    {
        if (_ranges.Count == 0 || _ranges[0].Start != offset) return offset;
        var end = _ranges[0].End;
        Count -= (long)(end - offset);
        _ranges.RemoveAt(0);
        return end;
    }

    /// <summary>Removes every offset below <paramref name="offset"/> (a group's floor jumping past them).</summary>
    public void RemoveBelow(ulong offset)
    {
        var whole = 0;
        while (whole < _ranges.Count && _ranges[whole].End <= offset)
        {
            Count -= (long)(_ranges[whole].End - _ranges[whole].Start);
            whole++;
        }
        _ranges.RemoveRange(0, whole);
        if (_ranges.Count > 0 && _ranges[0].Start < offset)
        {
            Count -= (long)(offset - _ranges[0].Start);
            _ranges[0] = (offset, _ranges[0].End);
        }
    }

    /// <summary>Appends a range read from a snapshot; ranges must come sorted, disjoint and not touching.</summary>
    public void AddRange(ulong start, ulong end)
    {
        if (end <= start || (_ranges.Count > 0 && start <= _ranges[^1].End))
            throw new InvalidDataException($"bad finished range [{start}, {end})");
        _ranges.Add((start, end));
        Count += (long)(end - start);
    }

    private int IndexAtOrBefore(ulong offset)
    {
        int lo = 0, hi = _ranges.Count - 1, found = -1;
        while (lo <= hi)
        {
            var mid = (lo + hi) >>> 1;
            if (_ranges[mid].Start <= offset)
            {
                found = mid;
                lo = mid + 1;
            }
            else hi = mid - 1;
        }
        return found;
    }
}

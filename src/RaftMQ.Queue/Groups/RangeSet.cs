namespace RaftMQ.Queue.Groups;

/// <summary>
/// A set of offsets kept as disjoint half-open ranges [start, end), sorted: a million consecutive offsets cost one
/// entry. Used for the offsets a group has finished (acked or dead-lettered) above its ack floor, so memory grows
/// with the gaps, never with the backlog, and for the offsets of its pending messages that a receive may deliver.
/// </summary>
/// <remarks>
/// The ranges are an <see cref="OffsetMap{TValue}"/> from start to end (each operation O(log ranges)), so that a
/// snapshot captures them in O(1) (<see cref="Capture"/>) and writes them later from another thread.
/// </remarks>
internal sealed class RangeSet
{
    private readonly OffsetMap<ulong> _ranges = new();

    /// <summary>Offsets in the set.</summary>
    public long Count { get; private set; }

    /// <summary>Ranges held (the memory cost).</summary>
    public int RangeCount => _ranges.Count;

    /// <summary>The ranges, lowest first. The set must not change while they are enumerated.</summary>
    public IEnumerable<(ulong Start, ulong End)> Ranges => _ranges.Select(r => (r.Key, r.Value));

    /// <summary>The ranges as they are now (start → end), which never change after: for a snapshot's writer on another thread. O(1).</summary>
    public OffsetMap<ulong>.Frozen Capture() => _ranges.Capture();

    public bool Contains(ulong offset) => _ranges.TryGetFloor(offset, out _, out var end) && offset < end;

    /// <summary>Adds <paramref name="offset"/>; false when it was already there.</summary>
    public bool Add(ulong offset)
    {
        var hasLeft = _ranges.TryGetFloor(offset, out var leftStart, out var leftEnd);
        if (hasLeft && offset < leftEnd) return false;
        var hasRight = _ranges.TryGetCeiling(offset, out var rightStart, out var rightEnd);
        var joinsLeft = hasLeft && leftEnd == offset;
        var joinsRight = hasRight && rightStart == offset + 1;
        if (joinsRight) _ranges.Remove(rightStart);
        if (joinsLeft) _ranges.Set(leftStart, joinsRight ? rightEnd : offset + 1);
        else _ranges.Add(offset, joinsRight ? rightEnd : offset + 1);
        Count++;
        return true;
    }

    /// <summary>Removes <paramref name="offset"/>; false when it was not there.</summary>
    public bool Remove(ulong offset)
    {
        if (!_ranges.TryGetFloor(offset, out var start, out var end) || offset >= end) return false;
        if (offset == start)
        {
            _ranges.Remove(start);
            if (end > offset + 1) _ranges.Add(offset + 1, end);
        }
        else
        {
            _ranges.Set(start, offset);
            if (end > offset + 1) _ranges.Add(offset + 1, end);
        }
        Count--;
        return true;
    }

    /// <summary>The lowest offset in the set; false when it is empty.</summary>
    public bool TryGetMin(out ulong offset) => _ranges.TryGetFirst(out offset, out _);

    /// <summary>
    /// If a range starts at <paramref name="offset"/>, removes it and returns its end; else returns
    /// <paramref name="offset"/>. Moves an ack floor over the offsets finished above it.
    /// </summary>
    public ulong TakeRunFrom(ulong offset)
    {
        if (!_ranges.TryGetFirst(out var start, out var end) || start != offset) return offset;
        Count -= (long)(end - offset);
        _ranges.Remove(start);
        return end;
    }

    /// <summary>Removes every offset below <paramref name="offset"/> (a group's floor jumping past them).</summary>
    public void RemoveBelow(ulong offset)
    {
        while (_ranges.TryGetFirst(out var start, out var end) && start < offset)
        {
            _ranges.Remove(start);
            if (end > offset)
            {
                Count -= (long)(offset - start);
                _ranges.Add(offset, end);
                return;
            }
            Count -= (long)(end - start);
        }
    }

    /// <summary>Appends a range read from a snapshot; ranges must come sorted, disjoint and not touching.</summary>
    public void AddRange(ulong start, ulong end)
    {
        if (end <= start || (_ranges.TryGetLast(out _, out var lastEnd) && start <= lastEnd))
            throw new InvalidDataException($"bad finished range [{start}, {end})");
        _ranges.Add(start, end);
        Count += (long)(end - start);
    }
}

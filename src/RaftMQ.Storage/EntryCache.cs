using RaftMQ.Raft;

namespace RaftMQ.Storage;

/// <summary>
/// The most recent entries, bounded by count and bytes, so that replication of the log's tail (the common case)
/// is served from memory. Holds a contiguous run of indexes ending at the log's last index.
/// </summary>
internal sealed class EntryCache(int maxEntries, long maxBytes)
{
    private readonly Entry[] _ring = new Entry[maxEntries];
    private int _head;
    private long _bytes;

    public int Count { get; private set; }

    /// <summary>Index of the oldest cached entry (meaningless when empty).</summary>
    public ulong FirstIndex => Count == 0 ? 0 : _ring[_head].Index;

    public bool TryGet(ulong index, out Entry entry)
    {
        entry = default;
        if (Count == 0 || index < FirstIndex || index >= FirstIndex + (ulong)Count) return false;
        entry = _ring[(_head + (int)(index - FirstIndex)) % _ring.Length];
        return true;
    }

    /// <summary>Adds the next entry; it must follow the last cached one (else the cache restarts from it).</summary>
    public void Add(in Entry entry)
    {
        if (Count > 0 && entry.Index != FirstIndex + (ulong)Count) Clear();
        if (entry.Data.Length > maxBytes)
        {
            // Too large to cache: the cache must stay a suffix of the log, so it restarts after this entry.
            Clear();
            return;
        }
        while (Count > 0 && (Count == _ring.Length || _bytes + entry.Data.Length > maxBytes)) RemoveFirst();
        _ring[(_head + Count) % _ring.Length] = entry;
        Count++;
        _bytes += entry.Data.Length;
    }

    /// <summary>Forgets entries at or after <paramref name="index"/>.</summary>
    public void TruncateFrom(ulong index)
    {
        while (Count > 0 && FirstIndex + (ulong)Count - 1 >= index)
        {
            var slot = (_head + Count - 1) % _ring.Length;
            _bytes -= _ring[slot].Data.Length;
            _ring[slot] = default;
            Count--;
        }
    }

    /// <summary>Forgets entries at or before <paramref name="index"/>.</summary>
    public void CompactTo(ulong index)
    {
        while (Count > 0 && FirstIndex <= index) RemoveFirst();
    }

    public void Clear()
    {
        Array.Clear(_ring);
        _head = 0;
        Count = 0;
        _bytes = 0;
    }

    private void RemoveFirst()
    {
        _bytes -= _ring[_head].Data.Length;
        _ring[_head] = default;
        _head = (_head + 1) % _ring.Length;
        Count--;
    }
}

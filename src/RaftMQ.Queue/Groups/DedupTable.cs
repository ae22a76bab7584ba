using System.Text;

namespace RaftMQ.Queue.Groups;

/// <summary>
/// The message ids a topic remembers for idempotent publishing: each id with the offset it was stored at and the
/// replicated time it was published, oldest first. An id is forgotten once its topic's dedup window has passed since
/// it was published, or earlier when a bound forces it (<see cref="QueueLimits.MaxDedupIdsPerTopic"/>,
/// <see cref="QueueLimits.MaxDedupIds"/>). The replicated clock never goes back, so publish order is also age order.
/// </summary>
/// <remarks>
/// Ids are added at one end and forgotten at the other, so they are kept in chunks that are written once: an entry
/// never changes after it is added, and a chunk is dropped, never reused, once all its ids are forgotten. A snapshot
/// therefore captures the table in O(1) on the loop (<see cref="Capture"/>: where its ids begin and end) and writes
/// the ids later from another thread, while the loop goes on adding and forgetting.
/// </remarks>
internal sealed class DedupTable
{
    /// <summary>Most ids in a chunk (24 bytes each, so a chunk stays off the large object heap).</summary>
    private const int MaxChunkSize = 1024;

    /// <summary>Ids in the first chunk of a table; each next chunk holds as many as the table then does, up to <see cref="MaxChunkSize"/>.</summary>
    private const int MinChunkSize = 8;

    private readonly Dictionary<string, ulong> _offsets = new(StringComparer.Ordinal);
    private Chunk _first = Chunk.Empty;
    private int _firstIndex; // the oldest id's place in _first
    private Chunk _last = Chunk.Empty;
    private long _bytes; // what the remembered ids take in a snapshot

    /// <summary>Ids remembered.</summary>
    public int Count => _offsets.Count;

    /// <summary>Ids forgotten before their window passed, to stay within a bound.</summary>
    public long ForgottenEarlyTotal { get; set; }

    /// <summary>The offset <paramref name="id"/> was stored at, when it is remembered.</summary>
    public bool TryGet(string id, out ulong offset) => _offsets.TryGetValue(id, out offset);

    /// <summary>Remembers <paramref name="id"/> (not remembered yet) as stored at <paramref name="offset"/> at time <paramref name="at"/>.</summary>
    public void Add(string id, ulong offset, long at)
    {
        _offsets.Add(id, offset);
        if (_last.Count == _last.Entries.Length)
        {
            var next = new Chunk(Math.Clamp(_offsets.Count, MinChunkSize, MaxChunkSize));
            if (_last == Chunk.Empty)
            {
                (_first, _firstIndex) = (next, 0);
            }
            else
            {
                _last.Next = next;
                if (_firstIndex == _first.Count) (_first, _firstIndex) = (next, 0); // every id of the full chunk is forgotten
            }
            _last = next;
        }
        _last.Entries[_last.Count] = new Entry(id, offset, at);
        _last.Count++; // after the entry: a capture never covers a slot not yet written
        _bytes += SnapshotBytes(id);
    }

    /// <summary>Forgets the ids published at or before <paramref name="now"/> − <paramref name="windowMs"/>; returns how many.</summary>
    public int Expire(long now, long windowMs)
    {
        var removed = 0;
        while (TryPeekOldest(out var oldest) && now - oldest.At >= windowMs)
        {
            RemoveOldest();
            removed++;
        }
        return removed;
    }

    /// <summary>Forgets the oldest id before its window passed; false when none is remembered.</summary>
    public bool ForgetOldest()
    {
        if (!TryPeekOldest(out _)) return false;
        RemoveOldest();
        ForgottenEarlyTotal++;
        return true;
    }

    private bool TryPeekOldest(out Entry oldest)
    {
        if (_firstIndex < _first.Count)
        {
            oldest = _first.Entries[_firstIndex];
            return true;
        }
        oldest = default;
        return false;
    }

    private void RemoveOldest()
    {
        var id = _first.Entries[_firstIndex].Id;
        _offsets.Remove(id);
        _bytes -= SnapshotBytes(id);
        // The slot keeps its entry, and the chunk is never written again: a snapshot captured earlier may still
        // write them. An empty table lets go of its chunks.
        if (++_firstIndex < _first.Count) return;
        if (_first.Next is { } next) (_first, _firstIndex) = (next, 0);
        else if (_first.Count == _first.Entries.Length) (_first, _firstIndex, _last) = (Chunk.Empty, 0, Chunk.Empty);
    }

    /// <summary>What <paramref name="id"/> with its offset and time takes in a snapshot (BinaryWriter's string: a 7-bit encoded length, then UTF-8).</summary>
    private static int SnapshotBytes(string id)
    {
        var length = Encoding.UTF8.GetByteCount(id);
        var prefix = 1;
        for (var rest = length >> 7; rest != 0; rest >>= 7) prefix++;
        return prefix + length + sizeof(ulong) + sizeof(long);
    }

    /// <summary>The table as it is now, to be written later from any thread while this one changes (O(1)).</summary>
    public Captured Capture() => new(ForgottenEarlyTotal, Count, _first, _firstIndex, _last, _last.Count, _bytes);

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
            if (table._offsets.ContainsKey(id)) throw new InvalidDataException($"topic {topic}: dedup id {id} twice");
            table.Add(id, offset, at);
            last = at;
        }
        return table;
    }

    internal readonly record struct Entry(string Id, ulong Offset, long At);

    internal sealed class Chunk(int size)
    {
        /// <summary>The chunk of every table without ids: never written.</summary>
        public static readonly Chunk Empty = new(0);

        public readonly Entry[] Entries = new Entry[size];
        public int Count;
        public Chunk? Next;
    }

    /// <summary>
    /// A table captured for a snapshot: the ids from slot <c>firstIndex</c> of <c>first</c> up to slot
    /// <c>lastCount</c> of <c>last</c>. Those entries and the chunk links between them never change again.
    /// </summary>
    public sealed class Captured
    {
        private readonly long _forgottenEarly;
        private readonly int _count;
        private readonly Chunk _first;
        private readonly int _firstIndex;
        private readonly Chunk _last;
        private readonly int _lastCount;

        internal Captured(long forgottenEarly, int count, Chunk first, int firstIndex, Chunk last, int lastCount, long idBytes)
        {
            (_forgottenEarly, _count, _first, _firstIndex, _last, _lastCount) = (forgottenEarly, count, first, firstIndex, last, lastCount);
            Bytes = sizeof(long) + sizeof(int) + idBytes;
        }

        /// <summary>How many bytes <see cref="WriteTo"/> writes.</summary>
        public long Bytes { get; }

        /// <summary>The table in a snapshot: the early-forgotten total, the count, then each id oldest first with its offset and time.</summary>
        public void WriteTo(BinaryWriter w)
        {
            w.Write(_forgottenEarly);
            w.Write(_count);
            var written = 0;
            for (var (chunk, from) = (_first, _firstIndex); ; (chunk, from) = (chunk.Next!, 0))
            {
                var to = chunk == _last ? _lastCount : chunk.Entries.Length;
                for (var i = from; i < to; i++)
                {
                    var (id, offset, at) = chunk.Entries[i];
                    w.Write(id);
                    w.Write(offset);
                    w.Write(at);
                }
                written += Math.Max(0, to - from);
                if (chunk == _last) break;
            }
            if (written != _count) throw new InvalidOperationException($"a dedup table captured with {_count} ids wrote {written}");
        }
    }
}

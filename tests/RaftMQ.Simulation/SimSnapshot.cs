using System.Buffers.Binary;
using RaftMQ.Raft;

namespace RaftMQ.Simulation;

/// <summary>
/// A snapshot of a simulated node's state machine (§7): the state machine is the sequence of entries it applied, so
/// the snapshot is that sequence up to <see cref="Metadata"/>.Index. A node's applied sequence only ever grows (the
/// invariant checker makes sure), so a snapshot of it can be a view of its first entries rather than a copy.
/// </summary>
public sealed class SimSnapshot
{
    private byte[]? _bytes;

    // Per entry: index, term, type, data length.
    private const int EntryHeaderBytes = 8 + 8 + 1 + 4;
    private const int HeaderBytes = 8 + 8 + 8;

    public SimSnapshot(SnapshotMetadata metadata, IReadOnlyList<Entry> state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if ((ulong)state.Count != metadata.Index)
            throw new ArgumentException($"a snapshot at index {metadata.Index} must hold {metadata.Index} entries, not {state.Count}");
        if (state.Count > 0 && state[^1].Term != metadata.Term)
            throw new ArgumentException($"snapshot {metadata} ends with an entry of term {state[^1].Term}");
        Metadata = metadata;
        State = state;
    }

    /// <summary>The last index and term the snapshot covers.</summary>
    public SnapshotMetadata Metadata { get; }

    /// <summary>The applied entries, index 1 first.</summary>
    public IReadOnlyList<Entry> State { get; }

    /// <summary>The snapshot as the bytes a leader sends in a <see cref="SnapshotChunk"/> (encoded once).</summary>
    public ReadOnlyMemory<byte> Encode() => _bytes ??= EncodeState();

    private byte[] EncodeState()
    {
        var size = HeaderBytes;
        for (int i = 0; i < State.Count; i++) size += EntryHeaderBytes + State[i].Data.Length;
        var bytes = new byte[size];
        var span = bytes.AsSpan();
        BinaryPrimitives.WriteUInt64LittleEndian(span, Metadata.Index);
        BinaryPrimitives.WriteUInt64LittleEndian(span[8..], Metadata.Term);
        BinaryPrimitives.WriteUInt64LittleEndian(span[16..], (ulong)State.Count);
        var at = HeaderBytes;
        for (int i = 0; i < State.Count; i++)
        {
            var e = State[i];
            BinaryPrimitives.WriteUInt64LittleEndian(span[at..], e.Index);
            BinaryPrimitives.WriteUInt64LittleEndian(span[(at + 8)..], e.Term);
            span[at + 16] = (byte)e.Type;
            BinaryPrimitives.WriteInt32LittleEndian(span[(at + 17)..], e.Data.Length);
            e.Data.Span.CopyTo(span[(at + EntryHeaderBytes)..]);
            at += EntryHeaderBytes + e.Data.Length;
        }
        return bytes;
    }

    /// <summary>Reads bytes written by <see cref="Encode"/>; throws <see cref="FormatException"/> on anything else.</summary>
    public static SimSnapshot Decode(ReadOnlyMemory<byte> bytes)
    {
        var span = bytes.Span;
        if (span.Length < HeaderBytes) throw new FormatException($"a snapshot needs {HeaderBytes} header bytes, got {span.Length}");
        var metadata = new SnapshotMetadata(BinaryPrimitives.ReadUInt64LittleEndian(span), BinaryPrimitives.ReadUInt64LittleEndian(span[8..]));
        var count = BinaryPrimitives.ReadUInt64LittleEndian(span[16..]);
        if (count != metadata.Index || count > (ulong)(span.Length / EntryHeaderBytes))
            throw new FormatException($"snapshot {metadata} claims {count} entries in {span.Length} bytes");
        var state = new Entry[count];
        var at = HeaderBytes;
        for (ulong i = 0; i < count; i++)
        {
            if (span.Length - at < EntryHeaderBytes) throw new FormatException($"snapshot {metadata} is cut at entry {i + 1}");
            var index = BinaryPrimitives.ReadUInt64LittleEndian(span[at..]);
            var term = BinaryPrimitives.ReadUInt64LittleEndian(span[(at + 8)..]);
            var type = (EntryType)span[at + 16];
            var length = BinaryPrimitives.ReadInt32LittleEndian(span[(at + 17)..]);
            at += EntryHeaderBytes;
            if (index != i + 1 || type is not (EntryType.Command or EntryType.NoOp or EntryType.Configuration) || length < 0 || length > span.Length - at)
                throw new FormatException($"snapshot {metadata} has a bad entry at position {i + 1}");
            state[i] = new Entry(index, term, type, bytes.Slice(at, length));
            at += length;
        }
        if (at != span.Length) throw new FormatException($"snapshot {metadata} has {span.Length - at} trailing bytes");
        return new SimSnapshot(metadata, state);
    }

    public override string ToString() => $"snapshot {Metadata.Index}/t{Metadata.Term}";
}

/// <summary>The first <see cref="Count"/> items of a list that only ever grows at its end: a stable read-only view.</summary>
internal sealed class ListPrefix<T>(IReadOnlyList<T> list, int count) : IReadOnlyList<T>
{
    public int Count { get; } = count <= list.Count ? count : throw new ArgumentOutOfRangeException(nameof(count));

    public T this[int index] => (uint)index < (uint)Count ? list[index] : throw new ArgumentOutOfRangeException(nameof(index));

    public IEnumerator<T> GetEnumerator()
    {
        for (int i = 0; i < Count; i++) yield return list[i];
    }

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
}

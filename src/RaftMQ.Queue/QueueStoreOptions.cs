using RaftMQ.Queue.Store;

namespace RaftMQ.Queue;

/// <summary>
/// How the message store lays out its files. Unlike <see cref="QueueLimits"/> these do not change any command's
/// result, so nodes may differ; nodes with the same options write byte-identical segment files.
/// </summary>
public sealed record QueueStoreOptions
{
    /// <summary>
    /// A segment is sealed and a new one started when the next record would take it past this size. It is also the
    /// most a topic's active segment, or one the newest snapshot links, holds of what every group has finished, so
    /// it bounds the disk beyond the kept records (docs/queue-store.md, "Compaction"): 16 MiB (64 MiB before
    /// compaction, when a held message pinned whole segments anyway).
    /// </summary>
    public long SegmentBytes { get; init; } = 16L << 20;

    /// <summary>Records of one command are gathered in this buffer and written with one call.</summary>
    public int WriteBufferBytes { get; init; } = 256 * 1024;

    /// <summary>Pops read the head segment in chunks of this size.</summary>
    public int ReadBufferBytes { get; init; } = 64 * 1024;

    /// <summary>
    /// Compaction looks at a topic's segments each time its groups have finished this many more messages (acked or
    /// dead-lettered); see docs/queue-store.md, "Compaction".
    /// </summary>
    public long CompactionCheckMessages { get; init; } = 4096;

    /// <summary>
    /// Every this many bytes written to segments, the store asks the kernel to start writing them out, off the loop
    /// (<c>Store/Writeback.cs</c>): steady writeback instead of bursts the Raft log's fsyncs would wait behind. 0 turns
    /// it off.
    /// </summary>
    public long WritebackBytes { get; init; } = 4L << 20;

    public static QueueStoreOptions Default { get; } = new();

    internal void Validate()
    {
        if (SegmentBytes < 1) throw new ArgumentOutOfRangeException(nameof(SegmentBytes), SegmentBytes, "must be positive");
        if (CompactionCheckMessages < 1) throw new ArgumentOutOfRangeException(nameof(CompactionCheckMessages), CompactionCheckMessages, "must be positive");
        if (WritebackBytes < 0) throw new ArgumentOutOfRangeException(nameof(WritebackBytes), WritebackBytes, "must not be negative");
        if (WriteBufferBytes < 1) throw new ArgumentOutOfRangeException(nameof(WriteBufferBytes), WriteBufferBytes, "must be positive");
        if (ReadBufferBytes < MessageRecord.OverheadBytes)
            throw new ArgumentOutOfRangeException(nameof(ReadBufferBytes), ReadBufferBytes, $"must hold a record's {MessageRecord.OverheadBytes}-byte header");
    }
}

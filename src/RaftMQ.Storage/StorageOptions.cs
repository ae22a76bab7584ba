namespace RaftMQ.Storage;

/// <summary>Limits and settings of the durable storage. Every bound the storage keeps is here.</summary>
public sealed class StorageOptions
{
    /// <summary>Largest size of a segment file; a batch that would not fit starts a new segment. Default 64 MiB.</summary>
    public long SegmentBytes { get; init; } = 64L * 1024 * 1024;

    /// <summary>
    /// Largest <see cref="RaftMQ.Raft.Entry.Data"/> (in bytes) accepted; <see cref="DurableLogStorage.Save"/> refuses a longer
    /// entry. The consensus core must refuse proposals over this bound: check at start-up with
    /// <see cref="ValidateEntryLimit"/>. Default 4 MiB.
    /// </summary>
    public int MaxEntryBytes { get; init; } = 4 * 1024 * 1024;

    /// <summary>
    /// Largest encoded batch (entries plus framing), written with one write. A <see cref="DurableLogStorage.Save"/>
    /// of more is split into several batches (still one fsync). Must hold one entry of <see cref="MaxEntryBytes"/>
    /// and fit in a segment. Default 16 MiB.
    /// </summary>
    public int MaxBatchBytes { get; init; } = 16 * 1024 * 1024;

    /// <summary>Bytes of recent entry data kept in memory so reads of the log's tail never touch the disk. Default 16 MiB.</summary>
    public long CacheBytes { get; init; } = 16L * 1024 * 1024;

    /// <summary>Number of recent entries kept in memory (a second bound on the cache). Default 65 536.</summary>
    public int CacheEntries { get; init; } = 65_536;

    /// <summary>Largest read from disk for one <see cref="DurableLogStorage.ReadEntries"/> chunk. Default 1 MiB.</summary>
    public int ReadChunkBytes { get; init; } = 1024 * 1024;

    /// <summary>Largest snapshot accepted by <see cref="SnapshotStore"/>. Default 16 GiB.</summary>
    public long MaxSnapshotBytes { get; init; } = 16L * 1024 * 1024 * 1024;

    /// <summary>
    /// Complete snapshots kept on disk (the newest first); older ones are deleted once a newer one is durable. Default
    /// 1: the log is compacted past an older snapshot's index, so the older one could not rebuild the state anyway, and
    /// with a large state every extra copy costs its whole size on disk.
    /// </summary>
    public int RetainSnapshots { get; init; } = 1;

    /// <summary>The file operations used; the real file system unless a test injects faults.</summary>
    public IStorageFileSystem FileSystem { get; init; } = PhysicalFileSystem.Instance;

    /// <summary>
    /// Checks that every entry a producer of entries (the consensus core) may create, with at most
    /// <paramref name="maxEntryBytes"/> bytes of <see cref="RaftMQ.Raft.Entry.Data"/>, is accepted by this storage.
    /// Call it at start-up, so that a proposal storage would refuse is refused up front rather than stopping the node.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxEntryBytes"/> is not positive or exceeds <see cref="MaxEntryBytes"/>.</exception>
    public void ValidateEntryLimit(long maxEntryBytes)
    {
        if (maxEntryBytes < 1 || maxEntryBytes > MaxEntryBytes)
        {
            throw new ArgumentOutOfRangeException(nameof(maxEntryBytes), maxEntryBytes,
                $"the entry limit must be in [1, MaxEntryBytes = {MaxEntryBytes}] of the storage, which refuses longer entries");
        }
    }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid setting.</summary>
    public void Validate()
    {
        if (SegmentBytes < 64 * 1024 || SegmentBytes > uint.MaxValue)
            throw new ArgumentException($"SegmentBytes must be in [64 KiB, 4 GiB), got {SegmentBytes}", nameof(SegmentBytes));
        if (MaxEntryBytes < 1)
            throw new ArgumentException($"MaxEntryBytes must be positive, got {MaxEntryBytes}", nameof(MaxEntryBytes));
        if (MaxBatchBytes < MaxEntryBytes + WalFormat.MaxFramingPerBatch)
            throw new ArgumentException($"MaxBatchBytes ({MaxBatchBytes}) must hold one entry of MaxEntryBytes ({MaxEntryBytes}) with its framing", nameof(MaxBatchBytes));
        if (MaxBatchBytes > SegmentBytes - WalFormat.SegmentOverhead)
            throw new ArgumentException($"MaxBatchBytes ({MaxBatchBytes}) must fit in a segment of SegmentBytes ({SegmentBytes}) with its header", nameof(MaxBatchBytes));
        if (CacheBytes < 0 || CacheEntries < 1)
            throw new ArgumentException("CacheBytes must be >= 0 and CacheEntries >= 1", nameof(CacheBytes));
        if (ReadChunkBytes < 4096)
            throw new ArgumentException($"ReadChunkBytes must be at least 4096, got {ReadChunkBytes}", nameof(ReadChunkBytes));
        if (MaxSnapshotBytes < 0)
            throw new ArgumentException($"MaxSnapshotBytes must be >= 0, got {MaxSnapshotBytes}", nameof(MaxSnapshotBytes));
        if (RetainSnapshots < 1)
            throw new ArgumentException($"RetainSnapshots must be at least 1, got {RetainSnapshots}", nameof(RetainSnapshots));
        ArgumentNullException.ThrowIfNull(FileSystem);
    }
}

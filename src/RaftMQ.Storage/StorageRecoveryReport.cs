using System.Text;
using RaftMQ.Raft;

namespace RaftMQ.Storage;

/// <summary>What recovery found when a <see cref="DurableLogStorage"/> was opened; log it at start-up.</summary>
public sealed class StorageRecoveryReport
{
    /// <summary>The directory opened.</summary>
    public required string Directory { get; init; }

    /// <summary>Whether the directory held no log and a new one was created.</summary>
    public bool CreatedNew { get; init; }

    /// <summary>Segment files read.</summary>
    public int Segments { get; init; }

    /// <summary>Bytes of segment files read.</summary>
    public long BytesScanned { get; init; }

    /// <summary>The recovered hard state.</summary>
    public HardState HardState { get; init; }

    /// <summary>The snapshot the recovered log starts after.</summary>
    public SnapshotMetadata Snapshot { get; init; }

    /// <summary>The recovered last index.</summary>
    public ulong LastIndex { get; init; }

    /// <summary>Whether an incomplete (never acknowledged) tail was cut off the last segment.</summary>
    public bool TailTruncated => TruncatedFile is not null;

    /// <summary>The file whose tail was cut, or null.</summary>
    public string? TruncatedFile { get; init; }

    /// <summary>Where the file was cut: the start of the incomplete batch.</summary>
    public long TruncatedAtOffset { get; init; }

    /// <summary>Bytes removed from the file's end.</summary>
    public long TruncatedBytes { get; init; }

    /// <summary>Entries of the incomplete batch that were readable and dropped with it.</summary>
    public int DiscardedEntries { get; init; }

    /// <summary>Why the tail was cut (the first problem found).</summary>
    public string? TruncationReason { get; init; }

    /// <summary>Segment files deleted because their creation never completed.</summary>
    public IReadOnlyList<string> DeletedFiles { get; init; } = [];

    /// <summary>
    /// Whether the DURABLE file (how far the log was fsynced) was missing from a directory that held segments: written
    /// by an older version, or deleted. Recovery then could not check that no acknowledged tail was lost; it wrote a
    /// new DURABLE file for the next start.
    /// </summary>
    public bool DurableEndMissing { get; init; }

    /// <summary>Wall time of recovery.</summary>
    public TimeSpan Duration { get; init; }

    public override string ToString()
    {
        var sb = new StringBuilder();
        sb.Append($"storage {Directory}: ");
        sb.Append(CreatedNew ? "created new log" : $"recovered {Segments} segment(s), {BytesScanned} bytes");
        sb.Append($"; snapshot {Snapshot.Index}/{Snapshot.Term}, last index {LastIndex}, term {HardState.Term}, vote {HardState.Vote}, commit {HardState.Commit}");
        sb.Append($"; {Duration.TotalMilliseconds:F0} ms");
        if (TailTruncated)
            sb.Append($"; cut incomplete tail of {TruncatedFile} at offset {TruncatedAtOffset} ({TruncatedBytes} bytes, {DiscardedEntries} readable entries of an unfinished batch): {TruncationReason}");
        foreach (var f in DeletedFiles) sb.Append($"; deleted unfinished segment {f}");
        if (DurableEndMissing)
            sb.Append("; WARNING: no DURABLE file (an older version's log, or it was deleted), so a lost tail could not be detected; wrote a new one");
        return sb.ToString();
    }
}

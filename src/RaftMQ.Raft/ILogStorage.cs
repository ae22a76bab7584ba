namespace RaftMQ.Raft;

/// <summary>
/// The durable part of the log as the consensus core reads it. The core never writes through this interface: the
/// runtime persists each <see cref="Ready"/> (entries, hard state) and then calls <see cref="RaftNode.Advance"/>.
/// Reads must be cheap for recent entries; old entries may come from disk.
/// </summary>
public interface ILogStorage
{
    /// <summary>The hard state persisted last (the empty state for a new node).</summary>
    HardState HardState { get; }

    /// <summary>The snapshot the log starts after (index 0, term 0 when there is none).</summary>
    SnapshotMetadata Snapshot { get; }

    /// <summary>Index of the first entry held; <c>Snapshot.Index + 1</c>.</summary>
    ulong FirstIndex { get; }

    /// <summary>Index of the last entry held; <c>Snapshot.Index</c> when the log is empty.</summary>
    ulong LastIndex { get; }

    /// <summary>Term of the entry at <paramref name="index"/>, for <c>Snapshot.Index &lt;= index &lt;= LastIndex</c>.</summary>
    ulong Term(ulong index);

    /// <summary>
    /// Adds to <paramref name="into"/> the entries from <paramref name="from"/> up to but excluding
    /// <paramref name="to"/>, stopping after the first entry that brings the total past <paramref name="maxBytes"/>
    /// (at least one entry is always returned). Requires <c>FirstIndex &lt;= from &lt; to &lt;= LastIndex + 1</c>.
    /// </summary>
    void ReadEntries(ulong from, ulong to, long maxBytes, List<Entry> into);
}

namespace RaftMQ.Queue.Store;

/// <summary>
/// A segment file of the message store does not hold what this process wrote to it (a checksum, offset or length
/// mismatch, or a file cut short): a local disk or memory fault, not a bad command. The state machine lets it
/// propagate, which stops the node (fail-stop). On restart the store is rebuilt from the newest snapshot and the Raft
/// log; a segment restored from a snapshot is a link to the snapshot's own file, so damage there comes back, and the
/// message says what to do then (docs/operations.md, "Damaged files").
/// </summary>
public sealed class QueueStoreCorruptException(string path, long position, string problem)
    : IOException($"queue segment {path} is corrupt at byte {position}: {problem}. The node stops. A restart rebuilds "
        + "the queue from the newest snapshot and the log; if it stops here again, the damage is in a file the snapshot "
        + "links: replace this node (stop it, move its data directory aside, and add it back to the cluster so it "
        + "catches up from the others; docs/operations.md, \"Damaged files\")")
{
    /// <summary>The damaged segment file.</summary>
    public string FilePath { get; } = path;

    /// <summary>Where in it the bad record starts.</summary>
    public long Position { get; } = position;
}

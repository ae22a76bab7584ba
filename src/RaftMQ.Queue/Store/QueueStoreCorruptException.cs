namespace RaftMQ.Queue.Store;

/// <summary>
/// A segment file of the message store does not hold what this process wrote to it (a checksum, offset or length
/// mismatch, or a file cut short): a local disk or memory fault, not a bad command. The state machine lets it
/// propagate, which stops the node (fail-stop); on restart the store is rebuilt from the snapshot and the Raft log,
/// which do not depend on the damaged file (docs/queue-store.md, "Crash safety").
/// </summary>
public sealed class QueueStoreCorruptException(string path, long position, string problem)
    : IOException($"queue segment {path} is corrupt at byte {position}: {problem}")
{
    /// <summary>The damaged segment file.</summary>
    public string FilePath { get; } = path;

    /// <summary>Where in it the bad record starts.</summary>
    public long Position { get; } = position;
}

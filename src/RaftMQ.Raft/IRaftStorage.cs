namespace RaftMQ.Raft;

/// <summary>
/// The durable log as the node runtime writes it: <see cref="ILogStorage"/> for the core's reads, plus the one write
/// the runtime makes per <see cref="Ready"/>.
/// </summary>
public interface IRaftStorage : ILogStorage, IDisposable
{
    /// <summary>
    /// Persists <paramref name="entries"/> (replacing any stored entries at or after the first one's index) and
    /// <paramref name="hardState"/> when given; when <paramref name="sync"/> is true, everything is on stable storage
    /// when this returns (one fsync for the whole batch). Any failure is fatal for the node: it throws, and the
    /// caller must stop rather than retry.
    /// </summary>
    void Save(HardState? hardState, IReadOnlyList<Entry> entries, bool sync);
}

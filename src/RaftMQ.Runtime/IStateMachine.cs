namespace RaftMQ.Runtime;

/// <summary>
/// The application replicated by Raft. The runtime calls it from its one loop thread only, in log order, so an
/// implementation needs no locking. It must be deterministic: the same commands in the same order give the same
/// state and results on every node. It must not throw for a bad command (return an error result instead): an
/// exception stops the node, because the other nodes would not have failed the same way.
/// </summary>
public interface IStateMachine
{
    /// <summary>Applies the committed command at <paramref name="index"/> and returns its result for the proposer.</summary>
    object? Apply(ulong index, ReadOnlyMemory<byte> command);

    /// <summary>Writes the whole state to <paramref name="destination"/> (streamed; the state as of the last applied index).</summary>
    void WriteSnapshot(Stream destination);

    /// <summary>Replaces the whole state with the one read from <paramref name="source"/>.</summary>
    void RestoreSnapshot(Stream source);
}

namespace RaftMQ.StateMachine;

/// <summary>
/// The application replicated by Raft. The runtime calls <see cref="Apply"/>, <see cref="CaptureSnapshot"/> and
/// <see cref="RestoreSnapshot"/> from its one loop thread only, in log order, so an implementation needs no locking
/// for them. It must be deterministic: the same commands in the same order give the same state and results on every
/// node. It must not throw for a bad command (return an error result instead): an exception stops the node, because
/// the other nodes would not have failed the same way.
/// </summary>
public interface IStateMachine
{
    /// <summary>Applies the committed command at <paramref name="index"/> and returns its result for the proposer.</summary>
    object? Apply(ulong index, ReadOnlyMemory<byte> command);

    /// <summary>
    /// Captures the state as of the last applied index, on the loop: this must be cheap (a point-in-time view, not a
    /// copy of the data), because the loop serves nothing while it runs. The returned snapshot is written out later
    /// on another thread while <see cref="Apply"/> goes on, so it must not see later changes (hashicorp/raft's
    /// FSMSnapshot has the same split).
    /// </summary>
    IStateMachineSnapshot CaptureSnapshot();

    /// <summary>Replaces the whole state with the one read from <paramref name="source"/> (written by a snapshot's <see cref="IStateMachineSnapshot.WriteTo"/>).</summary>
    void RestoreSnapshot(Stream source);
}

/// <summary>A point-in-time view of a state machine, taken on the loop by <see cref="IStateMachine.CaptureSnapshot"/>.</summary>
public interface IStateMachineSnapshot : IDisposable
{
    /// <summary>Writes the captured state to <paramref name="destination"/>. Called once, off the loop thread.</summary>
    void WriteTo(Stream destination);
}

/// <summary>Snapshot helpers for state machines.</summary>
public static class StateMachineSnapshots
{
    /// <summary>
    /// A snapshot serialized at capture time into memory: right for a small state (its size bounds the pause of the
    /// loop), wrong for a large one, which should capture a view and serialize in <see cref="IStateMachineSnapshot.WriteTo"/>.
    /// </summary>
    public static IStateMachineSnapshot Serialized(Action<Stream> write)
    {
        ArgumentNullException.ThrowIfNull(write);
        var buffer = new MemoryStream();
        write(buffer);
        return new BufferedSnapshot(buffer.GetBuffer(), (int)buffer.Length);
    }

    /// <summary>A snapshot whose <see cref="IStateMachineSnapshot.WriteTo"/> runs <paramref name="write"/> (over captured, immutable data).</summary>
    public static IStateMachineSnapshot Deferred(Action<Stream> write)
    {
        ArgumentNullException.ThrowIfNull(write);
        return new DeferredSnapshot(write);
    }

    /// <summary>Captures and writes a snapshot in one go, on the caller's thread (tests and tools).</summary>
    public static void WriteSnapshot(this IStateMachine stateMachine, Stream destination)
    {
        ArgumentNullException.ThrowIfNull(stateMachine);
        using var snapshot = stateMachine.CaptureSnapshot();
        snapshot.WriteTo(destination);
    }

    private sealed class BufferedSnapshot(byte[] bytes, int length) : IStateMachineSnapshot
    {
        public void WriteTo(Stream destination) => destination.Write(bytes, 0, length);

        public void Dispose()
        {
        }
    }

    private sealed class DeferredSnapshot(Action<Stream> write) : IStateMachineSnapshot
    {
        public void WriteTo(Stream destination) => write(destination);

        public void Dispose()
        {
        }
    }
}

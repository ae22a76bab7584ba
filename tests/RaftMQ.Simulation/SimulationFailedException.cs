namespace RaftMQ.Simulation;

/// <summary>A simulated run went wrong; the message names the seed and the command that replays it.</summary>
public class SimulationFailedException : Exception
{
    public SimulationFailedException(string message, ulong seed, string? replay, Exception? inner = null)
        : base(message, inner)
    {
        Seed = seed;
        Replay = replay;
    }

    /// <summary>The seed of the failed run.</summary>
    public ulong Seed { get; }

    /// <summary>The command that replays the run, when the test supplied one.</summary>
    public string? Replay { get; }
}

/// <summary>A Raft safety property was broken (one leader per term, log matching, state machine safety, ...).</summary>
public sealed class InvariantViolationException : SimulationFailedException
{
    public InvariantViolationException(string invariant, string message, ulong seed, string? replay)
        : base(message, seed, replay)
    {
        Invariant = invariant;
    }

    /// <summary>The name of the broken invariant.</summary>
    public string Invariant { get; }
}

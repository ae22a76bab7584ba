using RaftMQ.Raft;

namespace RaftMQ.Simulation;

/// <summary>
/// How one direction of a link treats messages. Delays are virtual milliseconds drawn uniformly, so two messages on
/// one link can overtake each other (reordering); a long delay models a message stuck in a queue for a while.
/// </summary>
public sealed record LinkConfig
{
    /// <summary>No loss, no duplication, 1–5 ms delay.</summary>
    public static LinkConfig Reliable { get; } = new();

    /// <summary>The 6.5840 lab's unreliable network: 10% loss and up to 27 ms of delay.</summary>
    public static LinkConfig Unreliable { get; } = new() { LossProbability = 0.1, MinDelayMs = 1, MaxDelayMs = 27 };

    /// <summary>Chance that a message is lost, in [0, 1].</summary>
    public double LossProbability { get; init; }

    /// <summary>Shortest delivery delay in virtual milliseconds.</summary>
    public int MinDelayMs { get; init; } = 1;

    /// <summary>Longest delivery delay in virtual milliseconds (inclusive).</summary>
    public int MaxDelayMs { get; init; } = 5;

    /// <summary>Chance that a delivered message is delivered a second time (with its own delay).</summary>
    public double DuplicateProbability { get; init; }

    /// <summary>Chance that a message takes a long delay instead of the normal one (long reordering).</summary>
    public double LongDelayProbability { get; init; }

    /// <summary>Shortest long delay.</summary>
    public int LongDelayMinMs { get; init; } = 200;

    /// <summary>Longest long delay (inclusive).</summary>
    public int LongDelayMaxMs { get; init; } = 2_200;

    internal void Validate()
    {
        static bool IsProbability(double p) => p is >= 0 and <= 1;
        if (!IsProbability(LossProbability) || !IsProbability(DuplicateProbability) || !IsProbability(LongDelayProbability))
            throw new ArgumentException("Link probabilities must be in [0, 1].");
        if (MinDelayMs < 0 || MaxDelayMs < MinDelayMs) throw new ArgumentException("Need 0 <= MinDelayMs <= MaxDelayMs.");
        if (LongDelayMinMs < 0 || LongDelayMaxMs < LongDelayMinMs)
            throw new ArgumentException("Need 0 <= LongDelayMinMs <= LongDelayMaxMs.");
    }
}

/// <summary>Settings of a simulated cluster. Everything random in a run derives from <see cref="Seed"/>.</summary>
public sealed class SimOptions
{
    /// <summary>Number of nodes; their ids are 1..Nodes.</summary>
    public int Nodes { get; set; } = 3;

    /// <summary>The seed of the run: network faults, tick phases and the nodes' election randomness.</summary>
    public ulong Seed { get; set; } = 1;

    /// <summary>Virtual milliseconds between two ticks of a node.</summary>
    public int TickMs { get; set; } = 10;

    /// <summary>See <see cref="RaftOptions.ElectionTicks"/>.</summary>
    public int ElectionTicks { get; set; } = 10;

    /// <summary>See <see cref="RaftOptions.HeartbeatTicks"/>.</summary>
    public int HeartbeatTicks { get; set; } = 2;

    /// <summary>See <see cref="RaftOptions.PreVote"/>.</summary>
    public bool PreVote { get; set; } = true;

    /// <summary>See <see cref="RaftOptions.CheckQuorum"/>.</summary>
    public bool CheckQuorum { get; set; } = true;

    /// <summary>The link every (from, to) pair starts with.</summary>
    public LinkConfig Link { get; set; } = LinkConfig.Reliable;

    /// <summary>Further settings applied to each node's <see cref="RaftOptions"/> after the ones above.</summary>
    public Action<RaftOptions>? ConfigureRaft { get; set; }

    /// <summary>The command that replays this run, shown with every failure (see <see cref="SimEnvironment.ReplayCommand"/>).</summary>
    public string? ReplayCommand { get; set; }

    /// <summary>Most messages in flight or held at once; more means a runaway test and fails the run.</summary>
    public int MaxInFlightMessages { get; set; } = 1_000_000;

    /// <summary>Most events processed at one virtual instant before the run is declared livelocked.</summary>
    public int MaxEventsPerInstant { get; set; } = 100_000;

    /// <summary>Most Ready rounds one input may cause before the node is declared stuck.</summary>
    public int MaxReadyRoundsPerStep { get; set; } = 10_000;

    /// <summary>How many recent events a failure report shows.</summary>
    public int TraceCapacity { get; set; } = 64;

    internal void Validate()
    {
        if (Nodes is < 1 or > 64) throw new ArgumentException("Nodes must be in [1, 64].");
        if (TickMs <= 0) throw new ArgumentException("TickMs must be positive.");
        if (MaxInFlightMessages <= 0 || MaxEventsPerInstant <= 0 || MaxReadyRoundsPerStep <= 0 || TraceCapacity < 0)
            throw new ArgumentException("Bounds must be positive.");
        ArgumentNullException.ThrowIfNull(Link);
        Link.Validate();
    }
}

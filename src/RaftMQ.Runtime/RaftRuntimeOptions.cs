using RaftMQ.Raft;

namespace RaftMQ.Runtime;

/// <summary>Settings of a node's runtime loop. Every queue has its bound here.</summary>
public sealed class RaftRuntimeOptions
{
    /// <summary>The consensus settings (id, voters, ticks, batch bounds).</summary>
    public required RaftOptions Raft { get; init; }

    /// <summary>Wall-clock length of one Raft tick; election timeout = Raft.ElectionTicks ticks.</summary>
    public TimeSpan TickInterval { get; init; } = TimeSpan.FromMilliseconds(10);

    /// <summary>Most inputs (peer messages, proposals, reads) waiting in the loop's inbox.</summary>
    public int InboxCapacity { get; init; } = 65_536;

    /// <summary>Most inputs handled before the loop persists and sends (one Ready per batch: group commit).</summary>
    public int MaxInputsPerIteration { get; init; } = 4_096;

    /// <summary>
    /// Most ticks caught up at once after the loop was held up (e.g. by a slow fsync); the driver never catches up
    /// more than one less than an election timeout (<see cref="NodeDriver.Tick"/>).
    /// </summary>
    public int MaxTicksCatchUp { get; init; } = 64;

    /// <summary>
    /// Whether a leader promotes every learner to voter as soon as the core allows it (the learner has caught up within
    /// <see cref="RaftOptions.MaxPromotionLagEntries"/>), so that a node added as a learner becomes a voter on its own. The driver does it
    /// (<see cref="NodeDriver.PromoteCaughtUpLearners"/>); this or <see cref="NodeDriverOptions.PromoteCaughtUpLearners"/> turns it on.
    /// </summary>
    public bool PromoteCaughtUpLearners { get; init; }

    /// <summary>Snapshot policy and transfer settings of the node driver.</summary>
    public NodeDriverOptions Node { get; init; } = new();
}

/// <summary>A node's state as seen from outside the loop (a consistent copy, refreshed after every iteration).</summary>
public sealed record RaftStatus(
    ulong Id, Role Role, ulong Term, ulong Leader, ulong CommitIndex, ulong AppliedIndex, ulong LastIndex, bool Quiesced = false);

/// <summary>The leader's view of one other member: the highest index known to be in its log (Raft's matchIndex).</summary>
public readonly record struct PeerReplication(ulong Peer, ulong MatchIndex);

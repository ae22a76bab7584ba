namespace RaftMQ.Raft;

/// <summary>What a log entry carries.</summary>
public enum EntryType : byte
{
    /// <summary>A command for the state machine.</summary>
    Command = 0,

    /// <summary>The empty entry a new leader appends at the start of its term (§5.4.2, §8).</summary>
    NoOp = 1,

    /// <summary>A membership change: the data is the whole new <see cref="ClusterConfiguration"/> (<see cref="ClusterConfiguration.Encode"/>).</summary>
    Configuration = 2,
}

/// <summary>One entry of the replicated log.</summary>
/// <param name="Index">Position in the log, starting at 1.</param>
/// <param name="Term">Term of the leader that created the entry.</param>
/// <param name="Type">Command, leader no-op or configuration.</param>
/// <param name="Data">The command's bytes; empty for a no-op; the encoded configuration for a configuration entry.</param>
public readonly record struct Entry(ulong Index, ulong Term, EntryType Type, ReadOnlyMemory<byte> Data)
{
    /// <summary>Fixed per-entry cost used when a batch is bounded by bytes.</summary>
    public const int Overhead = 24;

    /// <summary>Size used for byte bounds on batches.</summary>
    public int Size => Data.Length + Overhead;
}

/// <summary>The state Raft must persist before answering any message that depends on it (Figure 2).</summary>
/// <param name="Term">The latest term this node has seen.</param>
/// <param name="Vote">The node voted for in <paramref name="Term"/>, or 0.</param>
/// <param name="Commit">The highest index known committed (persisted so a restart can re-apply quickly).</param>
public readonly record struct HardState(ulong Term, ulong Vote, ulong Commit)
{
    /// <summary>The state of a node that has never run.</summary>
    public static HardState Empty => default;
}

/// <summary>Where a snapshot ends: the last index and term it covers, and the cluster configuration as of that index.</summary>
public readonly record struct SnapshotMetadata(ulong Index, ulong Term)
{
    /// <summary>
    /// The configuration in force at <see cref="Index"/> (the latest configuration entry at or before it), so that
    /// it survives compaction; null when unknown, in which case the core keeps the configuration it has (at start-up,
    /// <see cref="RaftOptions.Voters"/>).
    /// </summary>
    public ClusterConfiguration? Configuration { get; init; }

    /// <summary>
    /// Two metadata are equal when they name the same snapshot point (index and term). The configuration is not
    /// compared: by the log matching property it is determined by that point, and it may be known on one side only.
    /// </summary>
    public bool Equals(SnapshotMetadata other) => Index == other.Index && Term == other.Term;

    public override int GetHashCode() => HashCode.Combine(Index, Term);
}

/// <summary>The role a node plays (§5.1); <see cref="PreCandidate"/> is the pre-vote phase (thesis §9.6).</summary>
public enum Role : byte
{
    Follower = 0,
    PreCandidate = 1,
    Candidate = 2,
    Leader = 3,
}

/// <summary>Volatile facts about a node, reported in a <see cref="Ready"/> when they change.</summary>
/// <param name="Leader">The known leader's id, or 0.</param>
/// <param name="Role">This node's role.</param>
/// <param name="Term">This node's current term.</param>
public readonly record struct SoftState(ulong Leader, Role Role, ulong Term);

/// <summary>A linearizable read confirmed by a quorum: serve it once the applied index reaches <see cref="Index"/> (thesis §6.4).</summary>
/// <param name="Context">The caller's id for the read, as given to <see cref="RaftNode.ReadIndex"/>.</param>
/// <param name="Index">The commit index at the time the read was accepted.</param>
public readonly record struct ReadState(ulong Context, ulong Index);

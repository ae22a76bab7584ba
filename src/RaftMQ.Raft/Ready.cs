namespace RaftMQ.Raft;

/// <summary>
/// What the core asks the runtime to do, in this order: install <see cref="Snapshot"/>, persist <see cref="Entries"/> and <see cref="HardState"/>
/// (fsync when <see cref="MustSync"/>), send <see cref="Messages"/>, apply <see cref="CommittedEntries"/>, release
/// <see cref="ReadStates"/>; then call <see cref="RaftNode.Advance"/>.
/// </summary>
public sealed class Ready
{
    internal Ready(
        SoftState? softState, HardState? hardState, IReadOnlyList<Entry> entries, IReadOnlyList<Entry> committedEntries,
        IReadOnlyList<RaftMessage> messages, IReadOnlyList<ReadState> readStates, bool mustSync,
        SnapshotMetadata? snapshot = null)
    {
        MustSync = mustSync;
        Snapshot = snapshot;
        SoftState = softState;
        HardState = hardState;
        Entries = entries;
        CommittedEntries = committedEntries;
        Messages = messages;
        ReadStates = readStates;
    }

    /// <summary>
    /// A snapshot received from the leader to install before anything else in this Ready: restore the state machine
    /// from it and make it the start of the durable log, discarding every stored entry.
    /// </summary>
    public SnapshotMetadata? Snapshot { get; }

    /// <summary>The new leader, role or term, when one of them changed.</summary>
    public SoftState? SoftState { get; }

    /// <summary>The hard state to persist, when it changed.</summary>
    public HardState? HardState { get; }

    /// <summary>Entries to append to the durable log; any stored entries at or after the first one's index are replaced.</summary>
    public IReadOnlyList<Entry> Entries { get; }

    /// <summary>Committed entries to apply to the state machine, in order.</summary>
    public IReadOnlyList<Entry> CommittedEntries { get; }

    /// <summary>Messages to send once <see cref="Entries"/> and <see cref="HardState"/> are durable.</summary>
    public IReadOnlyList<RaftMessage> Messages { get; }

    /// <summary>Reads confirmed by a quorum; serve each once the applied index reaches its index.</summary>
    public IReadOnlyList<ReadState> ReadStates { get; }

    /// <summary>Whether the persisted part must be fsynced before messages go out (entries, term or vote changed; a commit index alone need not be synced).</summary>
    public bool MustSync { get; }
}

/// <summary>The outcome of <see cref="RaftNode.Propose"/> or <see cref="RaftNode.ReadIndex"/>.</summary>
public enum ProposeStatus : byte
{
    /// <summary>Accepted: the proposal is in the leader's log at (Index, Term), or the read is pending.</summary>
    Accepted = 0,

    /// <summary>This node is not the leader; <see cref="ProposeResult.LeaderHint"/> names the leader if known (0 if not).</summary>
    NotLeader = 1,

    /// <summary>The leader is over a bound (uncommitted bytes or pending reads); try again later.</summary>
    Overloaded = 2,

    /// <summary>The command is larger than <see cref="RaftOptions.MaxEntryBytes"/>; it was not proposed.</summary>
    TooLarge = 3,

    /// <summary>The leader is handing leadership over (<see cref="RaftNode.TransferLeadership"/>); retry on the new leader.</summary>
    Transferring = 4,
}

/// <summary>
/// The result of a proposal. An accepted proposal is committed when an entry with this index and term is applied;
/// if the entry applied at <see cref="Index"/> has another term, the proposal was lost to a leader change.
/// </summary>
public readonly record struct ProposeResult(ProposeStatus Status, ulong Index, ulong Term, ulong LeaderHint)
{
    public bool IsAccepted => Status == ProposeStatus.Accepted;
}

using RaftMQ.Raft;

namespace RaftMQ.Runtime;

/// <summary>This node is not the leader; <see cref="LeaderId"/> is the leader it knows of, or 0.</summary>
public sealed class NotLeaderException(ulong leaderId)
    : Exception(leaderId == 0 ? "No leader is known." : $"Not the leader; the leader is node {leaderId}.")
{
    public ulong LeaderId { get; } = leaderId;
}

/// <summary>Another entry was committed at the proposal's index: it was definitely not applied. Safe to retry.</summary>
public sealed class ProposalDroppedException(ulong index)
    : Exception($"Another entry was committed at index {index}: the proposal there was not applied.")
{
    public ulong Index { get; } = index;
}

/// <summary>The node is over a bound (uncommitted bytes, pending reads, inbox); try again later.</summary>
public sealed class NodeOverloadedException(string what) : Exception($"The node is overloaded: {what}.");

/// <summary>A linearizable read lost its confirmation (leader or term changed); safe to retry.</summary>
public sealed class ReadAbortedException() : Exception("Leadership changed before the read was confirmed.");

/// <summary>The node stopped (shut down or failed); <see cref="Exception.InnerException"/> holds the cause of a failure.</summary>
public sealed class NodeStoppedException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>The command is larger than the node accepts (<c>RaftOptions.MaxEntryBytes</c>); it was not proposed.</summary>
public sealed class CommandTooLargeException(int bytes, int maxBytes)
    : Exception($"The command has {bytes} bytes; the most a node accepts is {maxBytes}.")
{
    public int Bytes { get; } = bytes;

    public int MaxBytes { get; } = maxBytes;
}

/// <summary>
/// Whether the proposal was committed cannot be told here: its entry was covered by a snapshot installed from the
/// leader before this node applied it (<see cref="UnknownReason.SnapshotCovered"/>), or a new leader's entries
/// replaced it in this node's log while a leader of a later term that still holds it may commit it yet
/// (<see cref="UnknownReason.LeaderLost"/>). The outcome is unknown: retry only if the command is idempotent.
/// </summary>
public sealed class ProposalOutcomeUnknownException(ulong index, UnknownReason reason = UnknownReason.SnapshotCovered)
    : Exception(reason == UnknownReason.SnapshotCovered
        ? $"The outcome of the proposal at index {index} is unknown: a snapshot from the leader replaced the log there."
        : $"The outcome of the proposal at index {index} is unknown: a new leader replaced it here, and a later leader may still commit it.")
{
    public ulong Index { get; } = index;

    public UnknownReason Reason { get; } = reason;
}

/// <summary>
/// The leader is handing leadership over (<see cref="RaftNode.TransferLeadership"/>): the command was not proposed.
/// Safe to retry on the new leader.
/// </summary>
public sealed class LeadershipTransferringException(ulong target)
    : Exception($"Leadership is being transferred to node {target}; the command was not proposed.")
{
    public ulong Target { get; } = target;
}

/// <summary>
/// A leadership transfer was refused (<see cref="Status"/> and the core's message: not the leader, unknown or invalid
/// target, a transfer already running) or abandoned (status <see cref="MembershipStatus.Transferring"/>: the target
/// did not take over within an election timeout). <see cref="LeaderHint"/> is the leader as the node knew it, or 0.
/// </summary>
public sealed class LeadershipTransferException(MembershipStatus status, ulong leaderHint, string message, bool abandoned = false)
    : Exception(message)
{
    public MembershipStatus Status { get; } = status;

    /// <summary>The transfer started but was abandoned: the target did not take over, and this node leads on.</summary>
    public bool Abandoned { get; } = abandoned;

    public ulong LeaderHint { get; } = leaderHint;
}

/// <summary>
/// A membership change was refused (<see cref="Status"/>, with the core's message: not the leader, a change in
/// progress, an unknown or duplicate member, the last voter, ...) or its outcome is unknown (<see cref="OutcomeUnknown"/>:
/// leadership changed before the change was seen committed). <see cref="LeaderHint"/> is the leader as the node knew
/// it, or 0.
/// </summary>
public sealed class MembershipChangeException(MembershipStatus status, ulong leaderHint, string message, bool outcomeUnknown = false)
    : Exception(message)
{
    public MembershipStatus Status { get; } = status;

    public ulong LeaderHint { get; } = leaderHint;

    /// <summary>The change was appended but leadership moved before it was seen committed: it may or may not be in force.</summary>
    public bool OutcomeUnknown { get; } = outcomeUnknown;
}

namespace RaftMQ.Runtime;

/// <summary>
/// What became of a command given to <see cref="RaftRuntime.ProposeOrRouteAsync"/>: applied, to be sent to another
/// node, certainly not applied, or not known. The last two are the error model every caller answers with.
/// </summary>
public abstract record ProposeOutcome
{
    private ProposeOutcome()
    {
    }

    /// <summary>Committed and applied; <paramref name="Result"/> is what the state machine's Apply returned.</summary>
    public sealed record Applied(object? Result) : ProposeOutcome;

    /// <summary>
    /// This node is not the leader and <paramref name="LeaderId"/> is: nothing was proposed here; the caller forwards
    /// or redirects. Only without <see cref="ProposalForwarding"/>: with it, the runtime forwards. <paramref name="LeaderChanged"/> completes at the next change of leader after this one was seen:
    /// a caller whose forward did not reach the leader waits for it before asking again.
    /// </summary>
    public sealed record Elsewhere(ulong LeaderId, Task LeaderChanged) : ProposeOutcome;

    /// <summary>
    /// The leader's admission check (<see cref="ProposalForwarding.Admit"/>) refused the command: it was not proposed.
    /// The refusal is the leader's, also when this node forwarded the command.
    /// </summary>
    public sealed record Refused(ProposalRefusal Refusal) : ProposeOutcome;

    /// <summary>Certainly not applied (see <paramref name="Reason"/>); whether to retry depends on the reason.</summary>
    public sealed record NotApplied(NotAppliedReason Reason, string Message) : ProposeOutcome;

    /// <summary>The command was proposed but its commit was not seen: it may or may not be applied.</summary>
    public sealed record Unknown(UnknownReason Reason, string Message) : ProposeOutcome;
}

/// <summary>Why a command was certainly not applied.</summary>
public enum NotAppliedReason
{
    /// <summary>No leader was known before the deadline. Safe to retry.</summary>
    NoLeader,

    /// <summary>The leader is over a bound (<see cref="NodeOverloadedException"/>). Retry later.</summary>
    Overloaded,

    /// <summary>The command is over the node's limit (<see cref="CommandTooLargeException"/>). Retrying cannot help.</summary>
    TooLarge,

    /// <summary>The node stopped (<see cref="NodeStoppedException"/>) before the command was proposed.</summary>
    Stopped,
}

/// <summary>Why the outcome of a proposed command is unknown.</summary>
public enum UnknownReason
{
    /// <summary>The deadline passed before the commit was seen.</summary>
    TimedOut,

    /// <summary>The node stopped (<see cref="NodeStoppedException"/>) after the command was proposed.</summary>
    Stopped,

    /// <summary>A snapshot from the leader replaced the log at the entry (<see cref="ProposalOutcomeUnknownException"/>).</summary>
    SnapshotCovered,

    /// <summary>The leader applied a forwarded command but could not send its result back (too large, or not encodable).</summary>
    ResultLost,

    /// <summary>The node asked restarted since the command was forwarded to it, and cannot tell whether its previous run took it.</summary>
    Stale,

    /// <summary>
    /// The leadership the command was proposed under ended before it committed: the leader it was forwarded to stopped
    /// leading and did not answer within an election timeout (it may have crashed with the command in its log), or a
    /// new leader's entry, not committed yet, replaced it (a later leader that still holds it may commit it).
    /// </summary>
    LeaderLost,
}

namespace RaftMQ.Raft;

/// <summary>The outcome of a membership change or a leadership transfer asked of <see cref="RaftNode"/>.</summary>
public enum MembershipStatus : byte
{
    /// <summary>Accepted: the configuration entry is in the leader's log at (Index, Term), or the transfer started.</summary>
    Accepted = 0,

    /// <summary>This node is not the leader; <see cref="MembershipResult.LeaderHint"/> names the leader if known (0 if not).</summary>
    NotLeader = 1,

    /// <summary>An earlier configuration change is not committed yet; only one change may be in flight.</summary>
    ChangeInProgress = 2,

    /// <summary>The leader has not yet committed an entry of its own term; a change must wait for it (thesis errata).</summary>
    NotCommittedInTerm = 3,

    /// <summary>A leadership transfer is under way; proposals and changes wait for the new leader.</summary>
    Transferring = 4,

    /// <summary>The id is not a member of the current configuration.</summary>
    UnknownMember = 5,

    /// <summary>The id is already a member (voter or learner).</summary>
    AlreadyMember = 6,

    /// <summary>Promotion asked for an id that is not a learner.</summary>
    NotLearner = 7,

    /// <summary>The change would remove the last voter.</summary>
    LastVoter = 8,

    /// <summary>The learner's log is too far behind the leader's to be promoted yet.</summary>
    NotCaughtUp = 9,

    /// <summary>The id is 0, which names no node.</summary>
    InvalidId = 10,

    /// <summary>The configuration would exceed <see cref="ClusterConfiguration.MaxMembers"/>.</summary>
    TooManyMembers = 11,

    /// <summary>A transfer target that cannot lead: this node itself, a learner, or no other voter exists.</summary>
    InvalidTarget = 12,

    /// <summary>A member's address is longer than <see cref="ClusterConfiguration.MaxAddressBytes"/>.</summary>
    InvalidAddress = 13,
}

/// <summary>The result of a membership change or leadership transfer, with a message saying why it was refused.</summary>
/// <param name="Status">What happened.</param>
/// <param name="Index">The configuration entry's index when accepted (0 for a transfer).</param>
/// <param name="Term">The leader's term when accepted.</param>
/// <param name="LeaderHint">The leader's id as this node knows it (itself when it leads), or 0.</param>
/// <param name="Message">A human-readable explanation, empty when accepted.</param>
public readonly record struct MembershipResult(MembershipStatus Status, ulong Index, ulong Term, ulong LeaderHint, string Message)
{
    /// <summary>Whether the change or transfer was accepted.</summary>
    public bool IsAccepted => Status == MembershipStatus.Accepted;
}

// The method VoteResult hides the type of the same name inside these classes; the alias names the type.
using Outcome = RaftMQ.Raft.Quorum.VoteResult;

namespace RaftMQ.Raft.Quorum;

/// <summary>
/// The voters of a cluster: an incoming and an outgoing majority. Outside a membership change the outgoing one is
/// empty and this is simply the incoming majority; during joint consensus (thesis §4.3) every decision needs a
/// majority of both. The core asks only this type, so a membership change does not touch its call sites.
/// </summary>
internal sealed class JointConfig
{
    private readonly ulong[] _ids;

    /// <summary>A configuration of <paramref name="incoming"/> and, during a change, <paramref name="outgoing"/>.</summary>
    public JointConfig(MajorityConfig incoming, MajorityConfig? outgoing = null)
    {
        ArgumentNullException.ThrowIfNull(incoming);
        Incoming = incoming;
        Outgoing = outgoing ?? MajorityConfig.Empty;
        _ids = [.. Incoming.Ids.Union(Outgoing.Ids).Order()];
    }

    /// <summary>A plain (non-joint) configuration of <paramref name="voters"/>.</summary>
    public JointConfig(IEnumerable<ulong> voters)
        : this(new MajorityConfig(voters))
    {
    }

    /// <summary>The configuration being moved to (the only one outside a change).</summary>
    public MajorityConfig Incoming { get; }

    /// <summary>The configuration being left; empty outside a change.</summary>
    public MajorityConfig Outgoing { get; }

    /// <summary>Whether this is a joint configuration (a membership change is under way).</summary>
    public bool IsJoint => Outgoing.Count > 0;

    /// <summary>Every voter of either half, each once, ascending.</summary>
    public IReadOnlyList<ulong> Ids => _ids;

    /// <summary>Whether <paramref name="id"/> votes in either half.</summary>
    public bool Contains(ulong id) => Array.BinarySearch(_ids, id) >= 0;

    /// <summary>The largest index acknowledged by a majority of each half: the smaller of the two.</summary>
    public ulong CommittedIndex(Func<ulong, ulong> ackedIndexOf) =>
        Math.Min(Incoming.CommittedIndex(ackedIndexOf), Outgoing.CommittedIndex(ackedIndexOf));

    /// <summary>Won when both halves are won, lost when either is lost, else pending.</summary>
    public VoteResult VoteResult(Func<ulong, bool?> voteOf)
    {
        var incoming = Incoming.VoteResult(voteOf);
        var outgoing = Outgoing.VoteResult(voteOf);
        if (incoming == Outcome.Lost || outgoing == Outcome.Lost) return Outcome.Lost;
        if (incoming == Outcome.Won && outgoing == Outcome.Won) return Outcome.Won;
        return Outcome.Pending;
    }

    /// <summary>Whether the active voters make a majority of each half.</summary>
    public bool HasQuorum(Func<ulong, bool> isActive) => Incoming.HasQuorum(isActive) && Outgoing.HasQuorum(isActive);

    public override string ToString() => IsJoint ? $"{Incoming}&&{Outgoing}" : Incoming.ToString();
}

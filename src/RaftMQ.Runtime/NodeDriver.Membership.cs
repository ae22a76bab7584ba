using Microsoft.Extensions.Logging;
using RaftMQ.Raft;

namespace RaftMQ.Runtime;

/// <summary>
/// Membership changes (docs/membership.md): the driver proposes adding a learner, promoting it and removing a member
/// through the core, tells each caller once its change is committed (or that its outcome is unknown), and, when
/// <see cref="PromoteCaughtUpLearners"/> is on, has a leader promote a learner as soon as it has caught up. Production
/// (<see cref="RaftRuntime"/>) and the simulator drive membership through these calls only.
/// </summary>
public sealed partial class NodeDriver
{
    private readonly List<PendingChange> _pendingChanges = [];

    /// <summary>
    /// Whether a leader tries, after every tick, to promote its learners to voters; the core refuses while a learner
    /// is behind (<see cref="RaftOptions.MaxPromotionLagEntries"/>), so a learner becomes a voter once caught up.
    /// Starts as <see cref="NodeDriverOptions.PromoteCaughtUpLearners"/>.
    /// </summary>
    public bool PromoteCaughtUpLearners { get; set; }

    /// <summary>Learners this node promoted on its own (<see cref="PromoteCaughtUpLearners"/>).</summary>
    public int LearnersPromoted { get; private set; }

    /// <summary>Membership changes accepted on this node and not yet seen committed.</summary>
    public int PendingMembershipChanges => _pendingChanges.Count;

    /// <summary>
    /// Proposes adding node <paramref name="id"/> as a learner, recording <paramref name="addresses"/> in the new
    /// configuration. See <see cref="ChangeMembership"/> for what <paramref name="completion"/> gets.
    /// </summary>
    public MembershipResult AddLearner(
        ulong id, IEnumerable<KeyValuePair<ulong, byte[]>>? addresses, TaskCompletionSource<MembershipChanged> completion) =>
        ChangeMembership(node => node.AddLearner(id, addresses), completion);

    /// <summary>Proposes making learner <paramref name="id"/> a voter (refused while it is behind). See <see cref="ChangeMembership"/>.</summary>
    public MembershipResult PromoteLearner(ulong id, TaskCompletionSource<MembershipChanged> completion) =>
        ChangeMembership(node => node.PromoteLearner(id), completion);

    /// <summary>
    /// Proposes removing voter or learner <paramref name="id"/> — this node included when it leads: it hands over and
    /// steps down once the change commits. See <see cref="ChangeMembership"/>.
    /// </summary>
    public MembershipResult RemoveMember(ulong id, TaskCompletionSource<MembershipChanged> completion) =>
        ChangeMembership(node => node.RemoveMember(id), completion);

    /// <summary>
    /// Runs <paramref name="change"/> on the core and returns what it said. When refused, <paramref name="completion"/>
    /// gets <see cref="MembershipChangeException"/> at once with the core's status, message and leader hint; when
    /// accepted, it gets <see cref="MembershipChanged"/> once this node sees the entry committed in the term it was
    /// appended in, or <see cref="MembershipChangeException"/> with <see cref="MembershipChangeException.OutcomeUnknown"/>
    /// when the term moved on first (the change may or may not be in force).
    /// </summary>
    public MembershipResult ChangeMembership(Func<RaftNode, MembershipResult> change, TaskCompletionSource<MembershipChanged> completion)
    {
        ArgumentNullException.ThrowIfNull(change);
        ArgumentNullException.ThrowIfNull(completion);
        var r = change(_node);
        if (!r.IsAccepted)
        {
            completion.TrySetException(new MembershipChangeException(r.Status, r.LeaderHint, r.Message));
            return r;
        }
        _pendingChanges.Add(new PendingChange(r.Index, r.Term, _node.Configuration, completion));
        return r;
    }

    /// <summary>After a tick of a leader that promotes learners: tries each learner in turn (the core refuses one that is behind).</summary>
    private void MaybePromoteLearner()
    {
        var node = _node;
        if (!PromoteCaughtUpLearners || node.Role != Role.Leader || node.LeadTransferee != 0) return;
        var learners = node.Configuration.Learners;
        if (learners.Count == 0 || node.ConfigurationIndex > node.CommitIndex) return;
        foreach (var id in learners)
        {
            var r = node.PromoteLearner(id);
            if (r.IsAccepted)
            {
                LearnersPromoted++;
                LogPromoted(_logger, id, r.Index);
                return;
            }
        }
    }

    /// <summary>After each Ready: completes the changes now committed, and fails those whose term ended first.</summary>
    private void CheckMembershipChanges()
    {
        if (_pendingChanges.Count == 0) return;
        var node = _node;
        for (var i = _pendingChanges.Count - 1; i >= 0; i--)
        {
            var p = _pendingChanges[i];
            if (p.Completion.Task.IsCompleted)
            {
                _pendingChanges.RemoveAt(i); // the caller stopped waiting
                continue;
            }
            // Committed in the term the change was appended in: the entry at that index is the change (one leader per term).
            if (node.Term == p.Term && node.CommitIndex >= p.Index)
            {
                p.Completion.TrySetResult(new MembershipChanged(p.Index, p.Term, p.Configuration));
                _pendingChanges.RemoveAt(i);
            }
            else if (node.Term != p.Term)
            {
                p.Completion.TrySetException(new MembershipChangeException(MembershipStatus.NotLeader, node.Leader,
                    $"leadership moved before the change at index {p.Index} was seen committed; it may or may not be in force (see the members list)",
                    outcomeUnknown: true));
                _pendingChanges.RemoveAt(i);
            }
        }
    }

    private void FailMembershipChanges(Exception error)
    {
        foreach (var p in _pendingChanges) p.Completion.TrySetException(error);
        _pendingChanges.Clear();
    }

    private readonly record struct PendingChange(ulong Index, ulong Term, ClusterConfiguration Configuration, TaskCompletionSource<MembershipChanged> Completion);

    [LoggerMessage(EventId = 21, Level = LogLevel.Information, Message = "Learner {Id} caught up: promoted to voter by the entry at index {Index}")]
    private static partial void LogPromoted(ILogger logger, ulong id, ulong index);
}

/// <summary>A committed membership change: its entry's index and term, and the configuration it put in force.</summary>
public sealed record MembershipChanged(ulong Index, ulong Term, ClusterConfiguration Configuration);

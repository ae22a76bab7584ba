using RaftMQ.Raft;
using RaftMQ.Runtime;

namespace RaftMQ.Simulation;

/// <summary>A membership change asked of a simulated node, and the answer its caller got.</summary>
public sealed class SimMembershipChange
{
    internal SimMembershipChange(int id, MembershipChangeKind kind, ulong target, ulong node, MembershipResult result, long issuedAt, Task<MembershipChanged> completion)
    {
        Id = id;
        Kind = kind;
        Target = target;
        Node = node;
        Result = result;
        IssuedAt = issuedAt;
        Completion = completion;
    }

    public int Id { get; }

    public MembershipChangeKind Kind { get; }

    /// <summary>The member added, promoted or removed.</summary>
    public ulong Target { get; }

    /// <summary>The node asked (0 when there was no leader to ask).</summary>
    public ulong Node { get; }

    /// <summary>What the core said when asked: accepted at an index, or refused with a status.</summary>
    public MembershipResult Result { get; }

    public long IssuedAt { get; }

    /// <summary>The caller's answer: the committed change, or a refusal / unknown outcome.</summary>
    public Task<MembershipChanged> Completion { get; }

    public bool IsAccepted => Result.IsAccepted;

    /// <summary>Whether the caller was told the change is committed.</summary>
    public bool IsCommitted => Completion.IsCompletedSuccessfully;

    public override string ToString() =>
        $"change {Id} ({Kind} n{Target} on n{Node} at {IssuedAt} ms): {(Result.IsAccepted ? $"accepted at (index {Result.Index}, term {Result.Term})" : Result.Status.ToString())}" +
        (Completion.IsCompletedSuccessfully ? ", committed" : Completion.IsFaulted ? ", " + Completion.Exception!.InnerException!.Message : "");
}

/// <summary>The membership changes a node can be asked for.</summary>
public enum MembershipChangeKind
{
    AddLearner,
    PromoteLearner,
    RemoveMember,
}

/// <summary>
/// Membership changes in the simulation (docs/membership.md), through the production driver's calls
/// (<see cref="NodeDriver.AddLearner"/>, <see cref="NodeDriver.PromoteLearner"/>, <see cref="NodeDriver.RemoveMember"/>)
/// exactly as <see cref="RaftRuntime"/> makes them. The cluster has a pool of node ids (<see cref="SimOptions.Pool"/>);
/// the first <see cref="SimOptions.Nodes"/> bootstrap as the voters, the others are spares with empty disks. Adding a
/// spare starts it with no configuration (as <c>raftmq-node --join</c> does): it waits for the leader, which sends it
/// the log or a snapshot; the leader promotes it once it has caught up (<see cref="SimOptions.PromoteCaughtUpLearners"/>).
/// A node can be wiped (its disk lost for good: it never runs again under its id, so the only way back is a
/// replacement under a new id) or decommissioned (stopped for good once removed).
/// </summary>
public sealed partial class SimCluster
{
    private readonly HashSet<ulong> _retired = [];
    private readonly HashSet<ulong> _joined = [];
    private readonly List<SimMembershipChange> _membershipChanges = [];

    /// <summary>Every membership change asked through this cluster, in order.</summary>
    public IReadOnlyList<SimMembershipChange> MembershipChanges => _membershipChanges;

    /// <summary>Ids of the nodes that were wiped or decommissioned: they never run again.</summary>
    public IReadOnlyCollection<ulong> Retired => _retired;

    /// <summary>Whether node <paramref name="id"/> was wiped or decommissioned.</summary>
    public bool IsRetired(ulong id) => _retired.Contains(id);

    /// <summary>Whether node <paramref name="id"/> was started as a joining node (a spare added at run time).</summary>
    public bool HasJoined(ulong id) => _joined.Contains(id);

    /// <summary>Spares never started yet (ids past <see cref="SimOptions.Nodes"/>, lowest first).</summary>
    public IEnumerable<ulong> UnusedSpares =>
        NodeIds.Where(id => id > (ulong)_voters.Length && !_joined.Contains(id) && !_retired.Contains(id));

    private IEnumerable<ulong> NodeIds => _nodes.Select(n => n.Id);

    /// <summary>
    /// The configuration a node starts its first run with: the bootstrap voters for nodes 1..Nodes, none for a
    /// spare (it learns its configuration from the leader).
    /// </summary>
    public ClusterConfiguration InitialConfiguration(ulong id) =>
        id <= (ulong)_voters.Length ? new ClusterConfiguration(_voters) : ClusterConfiguration.Empty;

    /// <summary>
    /// Asks <paramref name="via"/> (the leader by default) to add <paramref name="id"/> as a learner. When the core
    /// accepts and <paramref name="id"/> is a spare never started, the spare starts now with an empty disk and no
    /// configuration, as a node joining with <c>raftmq-node --join</c> does once the leader took it.
    /// </summary>
    public SimMembershipChange AddLearner(ulong id, ulong? via = null)
    {
        var change = Change(MembershipChangeKind.AddLearner, id, via, (d, c) => d.AddLearner(id, null, c));
        if (change.IsAccepted && id >= 1 && id <= (ulong)_nodes.Length && !_joined.Contains(id) && !_retired.Contains(id)
            && id > (ulong)_voters.Length && Node(id).Incarnation == 0)
        {
            _joined.Add(id);
            Start(Node(id));
        }
        return change;
    }

    /// <summary>Asks <paramref name="via"/> (the leader by default) to promote learner <paramref name="id"/>.</summary>
    public SimMembershipChange PromoteLearner(ulong id, ulong? via = null) =>
        Change(MembershipChangeKind.PromoteLearner, id, via, (d, c) => d.PromoteLearner(id, c));

    /// <summary>Asks <paramref name="via"/> (the leader by default) to remove member <paramref name="id"/> (the leader itself included).</summary>
    public SimMembershipChange RemoveMember(ulong id, ulong? via = null) =>
        Change(MembershipChangeKind.RemoveMember, id, via, (d, c) => d.RemoveMember(id, c));

    private SimMembershipChange Change(
        MembershipChangeKind kind, ulong target, ulong? via, Func<NodeDriver, TaskCompletionSource<MembershipChanged>, MembershipResult> call)
    {
        var node = via is { } v ? Node(v) : Leader;
        var completion = new TaskCompletionSource<MembershipChanged>();
        var result = new MembershipResult(MembershipStatus.NotLeader, 0, 0, 0, "no node to ask");
        if (node?.Driver is { } driver)
        {
            Drive(node, () => result = call(driver, completion));
            Trace(TraceKind.Propose, node.Id, null, $"{kind} n{target}: " + (result.IsAccepted ? $"accepted at (index {result.Index}, term {result.Term})" : result.Status.ToString()));
        }
        else
        {
            completion.SetException(new MembershipChangeException(result.Status, 0, result.Message));
        }
        var change = new SimMembershipChange(_membershipChanges.Count + 1, kind, target, node?.Id ?? 0, result, Now, completion.Task);
        _membershipChanges.Add(change);
        if (!result.IsAccepted && !completion.Task.IsFaulted)
            throw Failure($"{change}: refused, but its caller was not told");
        return change;
    }

    /// <summary>
    /// Crashes node <paramref name="id"/> and loses its disk for good (a failed drive, a lost machine): it never runs
    /// again under this id. What it held stays in the checker's record. Replace it with a spare: add the spare as a
    /// learner (promoted once caught up) and remove this id.
    /// </summary>
    public void Wipe(ulong id)
    {
        var node = Node(id);
        if (node.IsUp) Stop(node, TraceKind.Crash, "wiped");
        node.Disk = new FaultyFileSystem();
        _retired.Add(id);
        Trace(TraceKind.Crash, id, null, "disk wiped; retired");
    }

    /// <summary>Stops node <paramref name="id"/> for good, its disk kept (an operator shutting down a removed member).</summary>
    public void Decommission(ulong id)
    {
        var node = Node(id);
        if (node.IsUp) Stop(node, TraceKind.Crash, "decommissioned");
        _retired.Add(id);
    }

    /// <summary>
    /// Checks that every change whose caller was told it committed is in the committed log at its index, as the
    /// configuration it reported (call once every node applied everything).
    /// </summary>
    public void CheckCommittedChangesInLog()
    {
        var committed = Checker.Committed;
        foreach (var change in _membershipChanges.Where(c => c.IsCommitted))
        {
            var done = change.Completion.Result;
            if (done.Index == 0 || done.Index > (ulong)committed.Count)
                throw Violation("membership changes", $"{change} was reported committed at index {done.Index}, past the committed log ({committed.Count})");
            var entry = committed[(int)done.Index - 1];
            if (entry.Type != EntryType.Configuration || entry.Term != done.Term
                || !ClusterConfiguration.Decode(entry.Data.Span).Equals(done.Configuration))
                throw Violation("membership changes", $"{change} was reported committed as {done.Configuration}, but the committed entry there is {InvariantChecker.Describe(entry)}");
        }
    }

    // A leader moved its commit index in the last step: a majority of its configuration's voters must hold the entry.
    private void CheckCommitQuorum(SimNode node, RaftNode raft)
    {
        var commit = raft.CommitIndex;
        ulong term;
        if (raft.TryGetEntry(commit, out var e)) term = e.Term;
        else if (commit == node.Storage.Snapshot.Index) term = node.Storage.Snapshot.Term;
        else return;
        Checker.OnLeaderCommit(node.Id, raft.Term, commit, term, raft.Configuration, raft.LastIndex,
            index => raft.TryGetEntry(index, out var entry) ? entry : null);
    }
}

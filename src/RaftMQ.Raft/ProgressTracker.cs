using RaftMQ.Raft.Quorum;

namespace RaftMQ.Raft;

/// <summary>
/// What the core knows of its peers, and every question answered by counting them: the voter configuration, the
/// leader's <see cref="Progress"/> of each voter (itself included), the votes of an election, the read rounds each
/// follower confirmed. Modelled on etcd's <c>tracker.ProgressTracker</c>; the arithmetic itself is in
/// <see cref="JointConfig"/>.
/// </summary>
internal sealed class ProgressTracker
{
    private readonly ulong _self;
    private readonly int _maxInflight;
    private readonly Dictionary<ulong, Progress> _progress = [];
    private readonly Dictionary<ulong, bool> _votes = [];

    // Built once so that counting on the hot path (every append answer) allocates nothing.
    private readonly Func<ulong, ulong> _matchOf;
    private readonly Func<ulong, ulong> _readRoundAckOf;
    private readonly Func<ulong, bool> _isActive;
    private readonly Func<ulong, bool> _isSelf;
    private readonly Func<ulong, bool?> _voteOf;

    public ProgressTracker(ulong self, JointConfig config, int maxInflight)
        : this(self, config, [], maxInflight)
    {
        if (!config.Contains(self)) throw new ArgumentException($"The configuration {config} must include this node ({self}).");
    }

    /// <summary>
    /// A tracker of <paramref name="configuration"/>, which need not include this node: a learner, a node that was
    /// removed, or one that has not joined yet.
    /// </summary>
    public ProgressTracker(ulong self, ClusterConfiguration configuration, int maxInflight)
        : this(self, new JointConfig(configuration.Voters), configuration.Learners, maxInflight)
    {
    }

    private ProgressTracker(ulong self, JointConfig config, IReadOnlyList<ulong> learners, int maxInflight)
    {
        ArgumentNullException.ThrowIfNull(config);
        _self = self;
        _maxInflight = maxInflight;
        Config = config;
        Learners = learners;
        Replicas = [.. config.Ids.Union(learners).Order()];
        ReplicationTargets = Replicas;
        _matchOf = id => _progress[id].Match;
        _readRoundAckOf = id => id == _self ? ReadRound : _progress[id].ReadRoundAck;
        // The leader is always active to itself; followers must have been heard from since the last check.
        _isActive = id => id == _self || _progress[id].RecentActive;
        _isSelf = id => id == _self;
        _voteOf = id => _votes.TryGetValue(id, out var granted) ? granted : null;
    }

    /// <summary>The voters.</summary>
    public JointConfig Config { get; private set; }

    /// <summary>Every voter, ascending: those a candidate asks for votes and whose majorities decide.</summary>
    public IReadOnlyList<ulong> Voters => Config.Ids;

    /// <summary>The learners, ascending: they get the log but never vote or count (thesis §4.2.1).</summary>
    public IReadOnlyList<ulong> Learners { get; private set; }

    /// <summary>Voters and learners, ascending: every member a leader replicates to.</summary>
    public IReadOnlyList<ulong> Replicas { get; private set; }

    /// <summary>Whether <paramref name="id"/> is a learner.</summary>
    public bool IsLearner(ulong id) => Learners.Contains(id);

    /// <summary>
    /// Members a leader removed by a change not yet committed: they still get the log (so that they learn of their
    /// removal and do not campaign) but count in no quorum.
    /// </summary>
    public IReadOnlyList<ulong> Departing { get; private set; } = [];

    /// <summary>Every node a leader sends entries and heartbeats to: <see cref="Replicas"/> and <see cref="Departing"/>.</summary>
    public IReadOnlyList<ulong> ReplicationTargets { get; private set; } = [];

    /// <summary>
    /// Switches to <paramref name="configuration"/>. While leading, a new member gets a progress probed from
    /// <paramref name="next"/> and a member that left becomes <see cref="Departing"/> (this node keeps its own).
    /// </summary>
    public void SetConfiguration(ClusterConfiguration configuration, ulong next)
    {
        Config = new JointConfig(configuration.Voters);
        Learners = configuration.Learners;
        Replicas = [.. Config.Ids.Union(Learners).Order()];
        if (_progress.Count == 0)
        {
            Departing = [];
            ReplicationTargets = Replicas;
            return;
        }
        foreach (var id in Replicas)
            if (!_progress.ContainsKey(id)) _progress[id] = new Progress(next, _maxInflight);
        Departing = [.. _progress.Keys.Where(id => id != _self && !Replicas.Contains(id)).Order()];
        ReplicationTargets = [.. Replicas.Union(Departing).Order()];
    }

    /// <summary>Stops tracking departing member <paramref name="id"/>: the change that removed it committed.</summary>
    public void ForgetDeparting(ulong id)
    {
        _progress.Remove(id);
        Departing = [.. Departing.Where(d => d != id)];
        ReplicationTargets = [.. Replicas.Union(Departing).Order()];
    }

    /// <summary>Whether this node alone is a quorum (a cluster of one): nobody to wait for.</summary>
    public bool SelfIsQuorum => Config.Contains(_self) && Config.HasQuorum(_isSelf);

    /// <summary>
    /// The last read round the leader started. It only grows, across terms too; followers echo it in heartbeat
    /// responses, and the leader has confirmed its own round by starting it.
    /// </summary>
    public ulong ReadRound { get; private set; }

    /// <summary>Whether <paramref name="id"/> is a voter.</summary>
    public bool IsVoter(ulong id) => Config.Contains(id);

    // ---- progress (leader only) ----

    /// <summary>
    /// A new leader's view: every member probed from <paramref name="next"/>, nothing known to match. Members of
    /// <paramref name="previous"/> that the current configuration lacks are <see cref="Departing"/>: pass the
    /// configuration before the latest while the latest is not known to be committed, else none.
    /// </summary>
    public void ResetProgress(ulong next, ClusterConfiguration? previous = null)
    {
        _progress.Clear();
        foreach (var id in Replicas) _progress[id] = new Progress(next, _maxInflight);
        // A leader that is being removed still tracks its own log.
        _progress.TryAdd(_self, new Progress(next, _maxInflight));
        Departing = previous is null
            ? []
            : [.. previous.Voters.Concat(previous.Learners).Where(id => id != _self && !Replicas.Contains(id)).Order()];
        foreach (var id in Departing) _progress[id] = new Progress(next, _maxInflight);
        ReplicationTargets = Departing.Count == 0 ? Replicas : [.. Replicas.Union(Departing).Order()];
    }

    /// <summary>Forgets all progress (this node is no longer leader).</summary>
    public void ClearProgress()
    {
        _progress.Clear();
        Departing = [];
        ReplicationTargets = Replicas;
    }

    /// <summary>The progress of voter <paramref name="id"/>; only while leading.</summary>
    public Progress this[ulong id] => _progress[id];

    /// <summary>The progress of <paramref name="id"/>, if this node leads and it is a voter.</summary>
    public bool TryGetProgress(ulong id, out Progress progress) => _progress.TryGetValue(id, out progress!);

    /// <summary>The largest index a quorum holds (by match index); the leader still checks its term (§5.4.2).</summary>
#if MUTATION_COUNTREMOVED
    // The bug: members being removed, this leader included when it removed itself, still count towards commit.
    public ulong Committed() => new JointConfig(Config.Ids.Union(Departing).Union(_progress.ContainsKey(_self) ? new[] { _self } : Array.Empty<ulong>())).CommittedIndex(_matchOf);
#else
    public ulong Committed() => Config.CommittedIndex(_matchOf);
#endif

    /// <summary>Whether a quorum was heard from since <see cref="ResetRecentActive"/> (thesis §6.2 check-quorum).</summary>
    public bool QuorumActive() => Config.HasQuorum(_isActive);

    /// <summary>Whether every follower was heard from since <see cref="ResetRecentActive"/>.</summary>
    public bool AllRecentlyActive()
    {
        foreach (var (id, pr) in _progress)
            if (id != _self && !pr.RecentActive) return false;
        return true;
    }

    /// <summary>Starts a new check-quorum period: every follower must be heard from again.</summary>
    public void ResetRecentActive()
    {
        foreach (var (id, pr) in _progress)
        {
            if (id == _self) continue;
            pr.SilentLastPeriod = !pr.RecentActive;
            pr.RecentActive = false;
        }
    }

    // ---- read rounds (thesis §6.4) ----

    /// <summary>Starts the next read round; its heartbeats carry the returned number.</summary>
    public ulong StartReadRound() => ++ReadRound;

    /// <summary>
    /// Records that <paramref name="id"/> answered a heartbeat of read round <paramref name="round"/>; true when
    /// that is news (an earlier or repeated answer confirms nothing new).
    /// </summary>
    public bool RecordReadRoundAck(ulong id, ulong round)
    {
        var pr = _progress[id];
        if (round <= pr.ReadRoundAck) return false;
        pr.ReadRoundAck = round;
        return true;
    }

    /// <summary>The highest read round a quorum (the leader included) has answered in this term.</summary>
    public ulong ConfirmedReadRound() => Config.CommittedIndex(_readRoundAckOf);

    // ---- elections (§5.2) ----

    /// <summary>Records <paramref name="id"/>'s answer to this election; only its first answer counts.</summary>
    public void RecordVote(ulong id, bool granted) => _votes.TryAdd(id, granted);

    /// <summary>Forgets the votes of the last election.</summary>
    public void ResetVotes() => _votes.Clear();

    /// <summary>Whether the votes so far win, lose or leave the election open.</summary>
    public VoteResult TallyVotes() => Config.VoteResult(_voteOf);
}

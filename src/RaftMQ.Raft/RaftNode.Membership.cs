namespace RaftMQ.Raft;

// Membership changes (thesis §4, single-server changes) and leadership transfer (thesis §3.10); see docs/membership.md.
public sealed partial class RaftNode
{
    // Configuration entries after the snapshot, in log order, each with its term so that a truncation is noticed.
    private readonly List<ConfigurationRecord> _configurations = [];

    // The configuration as of the start of the log (the snapshot's, or the initial one from the options).
    private ClusterConfiguration _baseConfiguration = ClusterConfiguration.Empty;

    // The last candidate outside the configuration this node granted a pre-vote, and for which term: its real vote
    // request is then heard too.
    private (ulong From, ulong Term) _preVoteGrantedToNonMember;

    private ulong _transferTarget;
    private int _transferElapsed;
    private bool _timeoutNowSent;

    private readonly record struct ConfigurationRecord(ulong Index, ulong Term, ClusterConfiguration Configuration);

    /// <summary>
    /// The configuration this node runs on: the latest one in its log, committed or not (thesis §4.1). Quorums count
    /// only its voters.
    /// </summary>
    public ClusterConfiguration Configuration => _configurations.Count > 0 ? _configurations[^1].Configuration : _baseConfiguration;

    /// <summary>The index of the entry that holds <see cref="Configuration"/>; 0 when it comes from the snapshot or the options.</summary>
    public ulong ConfigurationIndex => _configurations.Count > 0 ? _configurations[^1].Index : 0;

    /// <summary>The voter a leadership transfer is handing over to, or 0 when none is under way.</summary>
    public ulong LeadTransferee => _transferTarget;

    /// <summary>
    /// The configuration in force at <paramref name="index"/>: the latest configuration entry at or before it. A
    /// snapshot taken at a committed index records it in <see cref="SnapshotMetadata.Configuration"/>.
    /// </summary>
    public ClusterConfiguration ConfigurationAt(ulong index)
    {
        for (var i = _configurations.Count - 1; i >= 0; i--)
            if (_configurations[i].Index <= index) return _configurations[i].Configuration;
        return _baseConfiguration;
    }

    /// <summary>
    /// Adds <paramref name="id"/> as a learner: it receives the log but does not vote until promoted.
    /// <paramref name="addresses"/>, if given, are recorded in the new configuration for the members they name (the
    /// new one's, and any other's to record or update); the core never reads them.
    /// </summary>
    public MembershipResult AddLearner(ulong id, IEnumerable<KeyValuePair<ulong, byte[]>>? addresses = null)
    {
        if (RefuseChange(id) is { } refused) return refused;
        var current = Configuration;
        if (current.IsMember(id)) return Refuse(MembershipStatus.AlreadyMember, $"node {id} is already a {RoleName(current, id)}");
        if (current.Voters.Count + current.Learners.Count >= ClusterConfiguration.MaxMembers)
            return Refuse(MembershipStatus.TooManyMembers, $"the configuration already has {ClusterConfiguration.MaxMembers} members");
        var next = current.WithLearner(id);
        if (addresses is not null)
        {
            var list = addresses.ToList();
            if (list.Any(a => a.Value.Length > ClusterConfiguration.MaxAddressBytes))
                return Refuse(MembershipStatus.InvalidAddress, $"an address is over {ClusterConfiguration.MaxAddressBytes} bytes");
            next = next.WithAddresses(list);
        }
        return ProposeConfiguration(next);
    }

    /// <summary>
    /// Makes learner <paramref name="id"/> a voter, once its log is within <see cref="RaftOptions.MaxPromotionLagEntries"/>
    /// of the leader's and holds the current configuration.
    /// </summary>
    public MembershipResult PromoteLearner(ulong id)
    {
        if (RefuseChange(id) is { } refused) return refused;
        var current = Configuration;
        if (current.IsVoter(id)) return Refuse(MembershipStatus.NotLearner, $"node {id} is already a voter");
        if (!current.IsLearner(id)) return Refuse(MembershipStatus.UnknownMember, $"node {id} is not a member; add it as a learner first");
        var match = _tracker.TryGetProgress(id, out var pr) ? pr.Match : 0;
        var caughtUp = match >= ConfigurationIndex && match + (ulong)_options.MaxPromotionLagEntries >= _log.LastIndex;
        if (!caughtUp)
        {
            return Refuse(MembershipStatus.NotCaughtUp,
                $"learner {id} holds the log up to index {match}, the leader's ends at {_log.LastIndex} (at most {_options.MaxPromotionLagEntries} behind, " +
                $"and at least the configuration at {ConfigurationIndex}); try again when it has caught up");
        }
        return ProposeConfiguration(current.WithVoter(id));
    }

    /// <summary>
    /// Makes <paramref name="id"/> a voter: a learner is promoted (as <see cref="PromoteLearner"/>), a new node is
    /// added as a voter at once. Adding it as a learner first keeps the quorum from waiting on an empty log.
    /// </summary>
    public MembershipResult AddVoter(ulong id)
    {
        if (RefuseChange(id) is { } refused) return refused;
        var current = Configuration;
        if (current.IsVoter(id)) return Refuse(MembershipStatus.AlreadyMember, $"node {id} is already a voter");
        if (current.IsLearner(id)) return PromoteLearner(id);
        if (current.Voters.Count + current.Learners.Count >= ClusterConfiguration.MaxMembers)
            return Refuse(MembershipStatus.TooManyMembers, $"the configuration already has {ClusterConfiguration.MaxMembers} members");
        return ProposeConfiguration(current.WithVoter(id));
    }

    /// <summary>
    /// Removes voter or learner <paramref name="id"/>, this leader included: a leader that removes itself keeps leading
    /// (without counting itself) until the change commits, then hands over to the most up-to-date voter and steps down.
    /// </summary>
    public MembershipResult RemoveMember(ulong id)
    {
        if (RefuseChange(id) is { } refused) return refused;
        var current = Configuration;
        if (!current.IsMember(id)) return Refuse(MembershipStatus.UnknownMember, $"node {id} is not a member of the cluster ({current})");
        if (current.IsVoter(id) && current.Voters.Count == 1)
            return Refuse(MembershipStatus.LastVoter, $"node {id} is the last voter; a cluster needs at least one");
        return ProposeConfiguration(current.Without(id));
    }

    /// <summary>
    /// Hands leadership to voter <paramref name="target"/>, or with 0 to the voter whose log is the most up to date
    /// (thesis §3.10): proposals are refused with <see cref="ProposeStatus.Transferring"/> meanwhile, the target is
    /// brought up to date and sent <see cref="TimeoutNow"/>. The transfer is abandoned after an election timeout.
    /// </summary>
    public MembershipResult TransferLeadership(ulong target = 0)
    {
        if (Role != Role.Leader) return NotLeaderResult();
        if (_transferTarget != 0)
            return Refuse(MembershipStatus.Transferring, $"leadership is already being transferred to node {_transferTarget}");
        if (target == 0)
        {
            target = MostUpToDateVoter();
            if (target == 0) return Refuse(MembershipStatus.InvalidTarget, "there is no other voter to hand leadership to");
        }
        else if (target == Id)
        {
            return Refuse(MembershipStatus.InvalidTarget, $"node {Id} is already the leader");
        }
        else if (_tracker.IsLearner(target))
        {
            return Refuse(MembershipStatus.InvalidTarget, $"node {target} is a learner and cannot lead; promote it first");
        }
        else if (!_tracker.IsVoter(target))
        {
            return Refuse(MembershipStatus.UnknownMember, $"node {target} is not a member of the cluster ({Configuration})");
        }
        _transferTarget = target;
        _transferElapsed = 0;
        Wake();
        _timeoutNowSent = false;
        if (!MaybeSendTimeoutNow()) SendAppend(target, sendIfEmpty: true);
        return new MembershipResult(MembershipStatus.Accepted, 0, Term, Id, "");
    }

    // ---- the configuration in the log ----

    /// <summary>At start-up: the configuration as of the snapshot (or the options), then every configuration entry after it.</summary>
    private void LoadConfigurations(ClusterConfiguration initial)
    {
        _baseConfiguration = initial;
        var batch = new List<Entry>();
        for (var lo = _log.FirstIndex; lo <= _log.LastIndex;)
        {
            batch.Clear();
            _log.Slice(lo, _log.LastIndex + 1, _options.MaxBytesPerApplyBatch, batch);
            foreach (var e in batch)
                if (e.Type == EntryType.Configuration) _configurations.Add(new ConfigurationRecord(e.Index, e.Term, ClusterConfiguration.Decode(e.Data.Span)));
            lo = batch[^1].Index + 1;
        }
        _tracker.SetConfiguration(Configuration, _log.LastIndex + 1);
    }

    /// <summary>
    /// After a follower's append at <paramref name="prevIndex"/>: forget configurations whose entries were replaced
    /// (the node reverts to the one before, thesis §4.1) and adopt those that arrived.
    /// </summary>
    private void NoteAppended(ulong prevIndex, IReadOnlyList<Entry> entries)
    {
        var before = Configuration;
        var removed = _configurations.RemoveAll(c => c.Index > prevIndex && !_log.MatchTerm(c.Index, c.Term));
        var added = false;
        foreach (var e in entries)
        {
            if (e.Type != EntryType.Configuration || (_configurations.Count > 0 && _configurations[^1].Index >= e.Index)) continue;
            _configurations.Add(new ConfigurationRecord(e.Index, e.Term, ClusterConfiguration.Decode(e.Data.Span)));
            added = true;
        }
        if ((removed > 0 || added) && !Configuration.Equals(before)) ApplyConfiguration();
    }

    /// <summary>A snapshot replaced the log: its configuration, or when it carries none <paramref name="fallback"/>, is now the base.</summary>
    private void RestoreConfiguration(SnapshotMetadata snapshot, ClusterConfiguration fallback)
    {
        var before = Configuration;
        _baseConfiguration = snapshot.Configuration ?? fallback;
        _configurations.Clear();
        if (!Configuration.Equals(before)) ApplyConfiguration();
    }

    /// <summary>Whether every configuration entry in <paramref name="ae"/> decodes; a peer's malformed entry is not appended.</summary>
    private static bool ConfigurationEntriesValid(AppendEntries ae)
    {
        foreach (var e in ae.Entries)
            if (e.Type == EntryType.Configuration && !ClusterConfiguration.TryDecode(e.Data.Span, out _, out _)) return false;
        return true;
    }

    /// <summary>Runs on <see cref="Configuration"/> from now on: quorums, replication targets, a transfer's target.</summary>
    private void ApplyConfiguration()
    {
        _tracker.SetConfiguration(Configuration, _log.LastIndex + 1);
        if (Role != Role.Leader) return;
        if (_transferTarget != 0 && !_tracker.IsVoter(_transferTarget)) AbortLeadershipTransfer();
        // Fewer voters may make a quorum of what was not one before.
        if (MaybeCommit()) _broadcastPending = true;
        ReleaseConfirmedReads();
    }

    /// <summary>
    /// Messages from outside the configuration are dropped (a stray or misrouted message must not move the term), with
    /// the exceptions a changing membership needs (thesis §4.1): a node whose log lags behind the change that added
    /// the leader still takes the leader's entries and snapshots, and then its heartbeats in the term it adopted; a
    /// node that has not joined yet (no voters known) takes whatever a leader sends.
    /// </summary>
    private bool AcceptsFrom(RaftMessage message)
    {
        if (_tracker.Replicas.Contains(message.From)) return true;
        // A leader still hears from the members it is removing.
        if (Role == Role.Leader && _tracker.TryGetProgress(message.From, out _)) return true;
        if (message is AppendEntries or InstallSnapshot) return true;
        // Heartbeats in this node's term, which only this term's leader sends (one leader a term): a leader that removed
        // itself leads until the change commits, and a follower holding the change that stopped following it (a
        // pre-vote resets the leader it knows) must still answer, or the leader never learns what it lacks and the
        // change never commits. A heartbeat of another term moves no term here.
        if (message is Heartbeat) return _tracker.Voters.Count == 0 || message.Term == Term;
        // The request to take over from a leader that removed itself, from the leader already followed.
        if (message is TimeoutNow) return _tracker.Voters.Count == 0 || (message.Term == Term && message.From == Leader);
        // A candidate this node does not know may be a voter of a configuration its log lacks, whose vote it needs
        // (thesis §4.1). A pre-vote moves no term, so it is heard; the real request only after a granted pre-vote
        // (or when pre-votes are off), and a leadership transfer's, which a leader of this cluster asked for.
        if (message is RequestVote rv)
        {
            return rv.PreVote || rv.LeadershipTransfer || !_options.PreVote
                || _preVoteGrantedToNonMember == (rv.From, rv.Term);
        }
        return false;
    }

    /// <summary>
    /// Whether this node may campaign: it is a voter of its latest configuration, or a change that removes it is not
    /// yet known to be committed and it was a voter before it. The second case lets a removed leader that lost its
    /// leadership before the change committed finish the change: its votes come from the new configuration's voters,
    /// and once the change commits it steps down. A node whose removal is committed never campaigns.
    /// </summary>
    private bool Promotable
    {
        get
        {
            if (_tracker.IsVoter(Id)) return true;
            if (ConfigurationIndex <= _log.Committed) return false;
            return PreviousConfiguration.IsVoter(Id);
        }
    }

    /// <summary>The configuration before the latest one.</summary>
    private ClusterConfiguration PreviousConfiguration =>
        _configurations.Count >= 2 ? _configurations[^2].Configuration : _baseConfiguration;

    // ---- proposing a change ----

    private MembershipResult? RefuseChange(ulong id)
    {
        if (Role != Role.Leader) return NotLeaderResult();
        if (id == 0) return Refuse(MembershipStatus.InvalidId, "node id 0 names no node");
        if (_transferTarget != 0)
            return Refuse(MembershipStatus.Transferring, $"leadership is being transferred to node {_transferTarget}; retry on the new leader");
        if (ConfigurationIndex > _log.Committed)
            return Refuse(MembershipStatus.ChangeInProgress, $"the configuration change at index {ConfigurationIndex} is not committed yet; one change at a time");
        // Thesis errata (single-server changes): a change appended before the leader commits an entry of its own term
        // could overlap an uncommitted change of an earlier leader and lose committed entries.
        if (_log.Term(_log.Committed) != Term)
            return Refuse(MembershipStatus.NotCommittedInTerm, $"the leader has not committed an entry of its term {Term} yet; retry shortly");
        return null;
    }

    private MembershipResult ProposeConfiguration(ClusterConfiguration next)
    {
        var entry = new Entry(_log.LastIndex + 1, Term, EntryType.Configuration, next.Encode());
        _log.AppendLeaderEntry(entry);
        _uncommittedBytes += entry.Size;
        _broadcastPending = true;
        Wake();
        _configurations.Add(new ConfigurationRecord(entry.Index, Term, next));
        ApplyConfiguration();
        return new MembershipResult(MembershipStatus.Accepted, entry.Index, Term, Id, "");
    }

    private MembershipResult NotLeaderResult() => new(MembershipStatus.NotLeader, 0, 0, Leader,
        Leader == 0 ? $"node {Id} is not the leader and knows of none; retry later" : $"node {Id} is not the leader; node {Leader} is");

    private MembershipResult Refuse(MembershipStatus status, string message) => new(status, 0, 0, Leader, message);

    private static string RoleName(ClusterConfiguration configuration, ulong id) => configuration.IsVoter(id) ? "voter" : "learner";

    // ---- leadership transfer (thesis §3.10) and a removed leader stepping down ----

    /// <summary>The other voter with the highest match index (the lowest id among equals), or 0.</summary>
    private ulong MostUpToDateVoter()
    {
        ulong best = 0, bestMatch = 0;
        foreach (var id in _tracker.Voters)
        {
            if (id == Id || !_tracker.TryGetProgress(id, out var pr)) continue;
            if (best == 0 || pr.Match > bestMatch)
            {
                best = id;
                bestMatch = pr.Match;
            }
        }
        return best;
    }

    /// <summary>Sends <see cref="TimeoutNow"/> once the target holds the whole log; true when sent.</summary>
    private bool MaybeSendTimeoutNow()
    {
        if (_timeoutNowSent || !_tracker.TryGetProgress(_transferTarget, out var pr) || pr.Match != _log.LastIndex) return false;
        Send(new TimeoutNow(Id, _transferTarget, Term));
        _timeoutNowSent = true;
        return true;
    }

    /// <summary>
    /// Once the change removing them committed, stops replicating to departing members: each as soon as it holds the
    /// change, after a last heartbeat telling it the change committed (so that it stays quiet), and the others when an
    /// election timeout has passed since (a removed node is often a dead one).
    /// </summary>
    private void MaybeForgetDeparting(bool periodEnded)
    {
        if (_tracker.Departing.Count == 0 || _log.Committed < ConfigurationIndex) return;
        foreach (var id in _tracker.Departing.ToArray())
        {
            var match = _tracker[id].Match;
            if (match < ConfigurationIndex && !periodEnded) continue;
            Send(new Heartbeat(Id, id, Term, Math.Min(match, _log.Committed), 0));
            _tracker.ForgetDeparting(id);
        }
    }

    private void AbortLeadershipTransfer()
    {
        _transferTarget = 0;
        _transferElapsed = 0;
        _timeoutNowSent = false;
    }

    /// <summary>
    /// A leader removed from the configuration leads until the change commits (thesis §4.2.2), then asks the most
    /// up-to-date voter to take over at once, if its log is complete, and steps down. It never campaigns again.
    /// </summary>
    private void MaybeStepDownAfterRemoval()
    {
        if (Role != Role.Leader || _tracker.IsVoter(Id) || _log.Committed < ConfigurationIndex) return;
        var successor = MostUpToDateVoter();
        if (successor != 0 && _tracker[successor].Match == _log.LastIndex) Send(new TimeoutNow(Id, successor, Term));
        BecomeFollower(Term, 0);
    }
}

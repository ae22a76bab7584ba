namespace RaftMQ.Raft;

/// <summary>
/// Quiescence: a cluster with nothing to replicate heartbeats at a slower pace (<see cref="RaftOptions.QuiescedHeartbeatTicks"/>).
/// The leader decides; its heartbeats carry the decision, and a follower scales its election timeout (and the window in
/// which it ignores disruptive votes) to match. Any sign that something needs the normal pace ends it at once on the
/// leader; followers follow with the next append or heartbeat. A follower whose link to its quiet leader goes down
/// (the runtime reports it, <see cref="ReportUnreachable"/>) returns to the normal timeout, so a leader process that
/// dies is replaced as fast as when busy; a leader cut off silently is replaced after the quiet timeout.
/// </summary>
public sealed partial class RaftNode
{
    private bool _quiesced;
    private int _idleTicks;
    private int _randomizedQuiescedTimeout;

    /// <summary>Whether this node runs at the quiet pace: a leader that quiesced, or a follower its leader told so.</summary>
    public bool Quiesced => _quiesced;

    /// <summary>
    /// The election timeout in effect, in ticks (the quiet one while <see cref="Quiesced"/>): how long this node waits
    /// for its leader, and on a leader the check-quorum period.
    /// </summary>
    public int ElectionTicksInEffect => _quiesced ? _options.QuiescedElectionTicks : _options.ElectionTicks;

    private int HeartbeatTicksInEffect => _quiesced ? _options.QuiescedHeartbeatTicks : _options.HeartbeatTicks;

    /// <summary>
    /// Tells the node that the runtime's link to <paramref name="peer"/> went down (its connection closed or a dial
    /// failed). A quiet leader returns to the normal pace; a quiet follower whose leader that is stops waiting for the
    /// quiet timeout and campaigns after the normal one unless it hears from the leader meanwhile. Nothing else changes:
    /// a link reported down is a hint, never taken as proof that the peer is gone.
    /// </summary>
    public void ReportUnreachable(ulong peer)
    {
        if (Role == Role.Leader)
        {
            if (peer != Id && _tracker.TryGetProgress(peer, out _)) Wake();
        }
        else if (peer == Leader)
        {
            _quiesced = false;
        }
    }

    /// <summary>
    /// On the leader: something needs the normal pace for a while (the runtime calls it, e.g. while a follower reports
    /// a disk alarm, whose renewals come at the normal pace). No effect elsewhere.
    /// </summary>
    public void KeepAwake()
    {
        if (Role == Role.Leader) Wake();
    }

    /// <summary>The leader returns to (or stays at) the normal pace, and may quiet again only after a new idle period.</summary>
    private void Wake()
    {
        _idleTicks = 0;
        if (!_quiesced) return;
        _quiesced = false;
        // A fresh check-quorum period at the normal pace: the heartbeats of the quiet period were answered long ago, and
        // a check now would count only what came since the last quiet check.
        _electionElapsed = 0;
    }

    /// <summary>At a leader's heartbeat: whether the cluster is quiet enough to slow down.</summary>
    private bool CanQuiesce()
    {
        if (_options.QuiescedHeartbeatTicks <= _options.HeartbeatTicks || _idleTicks < _options.QuiesceAfterTicks) return false;
        if (_transferTarget != 0 || _tracker.Departing.Count > 0 || _pendingReads.Count > 0 || _readsAwaitingCommit.Count > 0) return false;
        var last = _log.LastIndex;
        if (_log.Committed != last || _log.Term(last) != Term) return false;
        foreach (var peer in _tracker.ReplicationTargets)
        {
            if (peer == Id) continue;
            var pr = _tracker[peer];
            if (pr.Match != last || pr.State != ReplicationState.Replicate || !pr.RecentActive) return false;
        }
        return true;
    }

    /// <summary>A follower learns its leader's pace from a heartbeat (appends and snapshots mean the normal pace).</summary>
    private void FollowPace(bool quiesced)
    {
        if (quiesced && !_quiesced) _randomizedQuiescedTimeout = _options.QuiescedElectionTicks + _random.Next(_options.QuiescedElectionTicks);
        _quiesced = quiesced && _options.QuiescedElectionTicks > _options.ElectionTicks;
    }

    private int ElectionTimeoutInEffect => _quiesced ? _randomizedQuiescedTimeout : _randomizedElectionTimeout;
}

namespace RaftMQ.Raft;

/// <summary>How the leader replicates to one follower.</summary>
internal enum ReplicationState : byte
{
    /// <summary>Next is a guess: send one AppendEntries at a time until the follower matches.</summary>
    Probe = 0,

    /// <summary>The follower matches: stream entries optimistically, up to the in-flight window.</summary>
    Replicate = 1,

    /// <summary>The follower needs entries the leader has compacted: a snapshot is on its way (§7); send nothing else.</summary>
    Snapshot = 2,
}

/// <summary>The leader's view of one follower (§5.3 nextIndex/matchIndex, plus flow control).</summary>
internal sealed class Progress
{
    private readonly ulong[] _inflight; // ring buffer of the last index of each unacknowledged append
    private int _inflightStart;
    private int _inflightCount;

    public Progress(ulong next, int maxInflight)
    {
        Next = next;
        _inflight = new ulong[maxInflight];
    }

    public ulong Match { get; private set; }

    public ulong Next { get; private set; }

    public ReplicationState State { get; private set; }

    /// <summary>In probe mode, an append is outstanding: wait for its answer or a heartbeat response.</summary>
    public bool ProbeSent { get; set; }

    /// <summary>Heard from since the last check-quorum round.</summary>
    public bool RecentActive { get; set; }

    /// <summary>Not heard from during the whole of the last check-quorum period.</summary>
    public bool SilentLastPeriod { get; set; }

    /// <summary>
    /// The follower's last append answer asked for new commit indexes at once (<see cref="AppendEntriesResponse.WantsCommit"/>).
    /// </summary>
    public bool WantsCommit { get; set; }

    /// <summary>The highest commit index sent to this follower in this term (appends and heartbeats).</summary>
    public ulong CommitSent { get; private set; }

    /// <summary>Records a commit index just sent to the follower.</summary>
    public void SentCommit(ulong commit) => CommitSent = Math.Max(CommitSent, commit);

    /// <summary>Highest read round this follower has acknowledged in the current term.</summary>
    public ulong ReadRoundAck { get; set; }

    public bool InflightFull => _inflightCount == _inflight.Length;

    /// <summary>The snapshot index being sent, in snapshot state.</summary>
    public ulong PendingSnapshot { get; private set; }

    public bool IsPaused => State switch
    {
        ReplicationState.Probe => ProbeSent,
        ReplicationState.Replicate => InflightFull,
        _ => true,
    };

    public void BecomeProbe()
    {
        // After a snapshot the follower holds at least its index (if it was installed; if not, probing corrects Next).
        Next = State == ReplicationState.Snapshot ? Math.Max(Match + 1, PendingSnapshot + 1) : Match + 1;
        State = ReplicationState.Probe;
        PendingSnapshot = 0;
        ProbeSent = false;
        ClearInflight();
    }

    public void BecomeSnapshot(ulong snapshotIndex)
    {
        State = ReplicationState.Snapshot;
        PendingSnapshot = snapshotIndex;
        ProbeSent = false;
        ClearInflight();
    }

    /// <summary>The snapshot transfer failed: forget it, so the next probe starts from what the follower has.</summary>
    public void AbortSnapshot() => PendingSnapshot = 0;

    public void BecomeReplicate()
    {
        State = ReplicationState.Replicate;
        Next = Match + 1;
        ProbeSent = false;
        ClearInflight();
    }

    /// <summary>The follower acknowledged up to <paramref name="index"/>; false if that was old news.</summary>
    public bool MaybeUpdate(ulong index)
    {
        var updated = false;
        if (Match < index)
        {
            Match = index;
            updated = true;
            ProbeSent = false;
        }
        if (Next < index + 1) Next = index + 1;
        return updated;
    }

    /// <summary>
    /// The follower rejected an append at <paramref name="rejected"/>; move Next back, at most to just after
    /// <paramref name="matchHint"/>. False when the rejection is stale (answers an append we no longer care about).
    /// </summary>
    public bool MaybeDecrTo(ulong rejected, ulong matchHint)
    {
        if (State == ReplicationState.Replicate)
        {
            if (rejected <= Match) return false;
            Next = Match + 1;
            return true;
        }
        if (Next - 1 != rejected) return false;
        Next = Math.Max(Math.Min(rejected, matchHint + 1), Match + 1);
        ProbeSent = false;
        return true;
    }

    /// <summary>Records an append just sent whose last entry is <paramref name="lastIndex"/> (count entries).</summary>
    public void SentEntries(ulong lastIndex, int count)
    {
        if (State == ReplicationState.Replicate)
        {
            if (count > 0)
            {
                Next = lastIndex + 1;
                AddInflight(lastIndex);
            }
        }
        else
        {
            ProbeSent = true;
        }
    }

    /// <summary>Frees the window slots of appends up to <paramref name="index"/>.</summary>
    public void FreeInflightTo(ulong index)
    {
        while (_inflightCount > 0 && _inflight[_inflightStart] <= index)
        {
            _inflightStart = (_inflightStart + 1) % _inflight.Length;
            _inflightCount--;
        }
    }

    /// <summary>Frees the oldest window slot, so one more append can go out.</summary>
    public void FreeFirstInflight()
    {
        if (_inflightCount == 0) return;
        _inflightStart = (_inflightStart + 1) % _inflight.Length;
        _inflightCount--;
    }

    private void AddInflight(ulong index)
    {
        if (InflightFull) throw new InvalidOperationException("in-flight window overflow");
        _inflight[(_inflightStart + _inflightCount) % _inflight.Length] = index;
        _inflightCount++;
    }

    private void ClearInflight()
    {
        _inflightStart = 0;
        _inflightCount = 0;
    }

    public override string ToString() => $"{State} match={Match} next={Next} inflight={_inflightCount}";
}

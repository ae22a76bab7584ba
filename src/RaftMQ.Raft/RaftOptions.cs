namespace RaftMQ.Raft;

/// <summary>Settings of one consensus core. Every queue and batch it keeps has its bound here.</summary>
public sealed class RaftOptions
{
    /// <summary>This node's id; not 0.</summary>
    public ulong Id { get; set; }

    /// <summary>
    /// The ids of the voting members, this node included: the initial configuration. Configuration entries in the log
    /// and the configuration of a snapshot override it. Empty for a node that joins an existing cluster: it waits to be
    /// added (as a learner) and learns the configuration from the leader.
    /// </summary>
    public IReadOnlyList<ulong> Voters { get; set; } = [];

    /// <summary>Ticks without hearing from a leader before a follower campaigns; randomized in [T, 2T) (§5.2).</summary>
    public int ElectionTicks { get; set; } = 10;

    /// <summary>Ticks between a leader's heartbeats; must be less than <see cref="ElectionTicks"/>.</summary>
    public int HeartbeatTicks { get; set; } = 1;

    /// <summary>
    /// Ticks between a leader's heartbeats while the cluster is quiet, or 0 (the default) to keep the normal pace
    /// always. A leader quiets once, for two election timeouts, it appended nothing and every follower held its whole
    /// log, committed, and answered; its heartbeats then say so, and a follower that gets one waits
    /// <see cref="QuiescedElectionTicks"/> before campaigning. A new entry, a follower that falls behind or goes silent,
    /// a leadership transfer or a link reported down (<see cref="RaftNode.ReportUnreachable"/>) ends the quiet.
    /// </summary>
    public int QuiescedHeartbeatTicks { get; set; }

    /// <summary>
    /// The election timeout (and check-quorum period) while quiet: <see cref="QuiescedHeartbeatTicks"/> scaled by
    /// <see cref="ElectionTicks"/> / <see cref="HeartbeatTicks"/>, so that as many heartbeats fit in it as at the
    /// normal pace; randomized in [T, 2T) like the normal one. <see cref="ElectionTicks"/> when quiescing is off.
    /// </summary>
    public int QuiescedElectionTicks =>
        QuiescedHeartbeatTicks <= HeartbeatTicks || HeartbeatTicks <= 0
            ? ElectionTicks
            : (int)Math.Min(MaxQuiescedTicks, (long)QuiescedHeartbeatTicks * ElectionTicks / HeartbeatTicks);

    /// <summary>Ticks with nothing new before a leader quiets: two election timeouts.</summary>
    internal int QuiesceAfterTicks => 2 * ElectionTicks;

    /// <summary>Bound of <see cref="QuiescedHeartbeatTicks"/> and <see cref="QuiescedElectionTicks"/>.</summary>
    public const int MaxQuiescedTicks = 1 << 24;

    /// <summary>Seed of the randomness used for election timeouts.</summary>
    public ulong RandomSeed { get; set; }

    /// <summary>Run a pre-vote before a real election so a partitioned node cannot disrupt the cluster (thesis §9.6).</summary>
    public bool PreVote { get; set; } = true;

    /// <summary>A leader steps down when it has not heard from a quorum within an election timeout (thesis §6.2).</summary>
    public bool CheckQuorum { get; set; } = true;

    /// <summary>Most AppendEntries in flight to one follower in replicate mode (the pipelining window).</summary>
    public int MaxInflightAppends { get; set; } = 256;

    /// <summary>Largest command accepted by <see cref="RaftNode.Propose"/>; storage and transport must carry one such entry.</summary>
    public int MaxEntryBytes { get; set; } = 4 << 20;

    /// <summary>Most bytes of entries in one AppendEntries (at least one entry is always sent).</summary>
    public long MaxBytesPerAppend { get; set; } = 1 << 20;

    /// <summary>Most bytes of committed entries handed to the application in one <see cref="Ready"/>.</summary>
    public long MaxBytesPerApplyBatch { get; set; } = 4 << 20;

    /// <summary>Most bytes of proposed but uncommitted entries the leader holds; further proposals are dropped.</summary>
    public long MaxUncommittedBytes { get; set; } = 64 << 20;

    /// <summary>Most linearizable reads waiting for leadership confirmation; further reads are dropped.</summary>
    public int MaxPendingReads { get; set; } = 65_536;

    /// <summary>
    /// Most entries a learner's log may lag the leader's last index and still be promoted to voter
    /// (<see cref="RaftNode.PromoteLearner"/>); a voter far behind would weaken the quorum until it catches up.
    /// </summary>
    public int MaxPromotionLagEntries { get; set; } = 1_000;

    /// <summary>The index the application has already applied (e.g. restored from a snapshot); entries after it are re-delivered.</summary>
    public ulong Applied { get; set; }

    internal void Validate()
    {
        if (Id == 0) throw new ArgumentException("Id must not be 0.");
        if (Voters.Count > 0 && !Voters.Contains(Id)) throw new ArgumentException($"Voters must include this node ({Id}) or be empty (a node joining a cluster).");
        if (Voters.Count > ClusterConfiguration.MaxMembers) throw new ArgumentException($"At most {ClusterConfiguration.MaxMembers} voters.");
        if (MaxPromotionLagEntries < 0) throw new ArgumentException("MaxPromotionLagEntries must not be negative.");
        if (Voters.Contains(0UL)) throw new ArgumentException("Voter id 0 is reserved for 'none'.");
        if (Voters.Distinct().Count() != Voters.Count) throw new ArgumentException("Voters must be distinct.");
        if (HeartbeatTicks <= 0) throw new ArgumentException("HeartbeatTicks must be positive.");
        if (ElectionTicks <= HeartbeatTicks) throw new ArgumentException("ElectionTicks must be greater than HeartbeatTicks.");
        if (QuiescedHeartbeatTicks < 0 || QuiescedHeartbeatTicks > MaxQuiescedTicks)
            throw new ArgumentException($"QuiescedHeartbeatTicks must be in [0, {MaxQuiescedTicks}].");
        if (QuiescedHeartbeatTicks > 0 && QuiescedHeartbeatTicks < HeartbeatTicks)
            throw new ArgumentException("QuiescedHeartbeatTicks must be 0 (off) or at least HeartbeatTicks.");
        if (MaxInflightAppends <= 0) throw new ArgumentException("MaxInflightAppends must be positive.");
        if (MaxBytesPerAppend <= 0 || MaxBytesPerApplyBatch <= 0 || MaxUncommittedBytes <= 0)
            throw new ArgumentException("Byte limits must be positive.");
        if (MaxEntryBytes <= 0) throw new ArgumentException("MaxEntryBytes must be positive.");
        if (MaxPendingReads <= 0) throw new ArgumentException("MaxPendingReads must be positive.");
    }
}

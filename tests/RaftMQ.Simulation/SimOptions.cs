using RaftMQ.Raft;

namespace RaftMQ.Simulation;

/// <summary>
/// How one direction of a link treats messages. Delays are virtual milliseconds drawn uniformly, so two messages on
/// one link can overtake each other (reordering); a long delay models a message stuck in a queue for a while.
/// </summary>
public sealed record LinkConfig
{
    /// <summary>No loss, no duplication, 1–5 ms delay.</summary>
    public static LinkConfig Reliable { get; } = new();

    /// <summary>The 6.5840 lab's unreliable network: 10% loss and up to 27 ms of delay.</summary>
    public static LinkConfig Unreliable { get; } = new() { LossProbability = 0.1, MinDelayMs = 1, MaxDelayMs = 27 };

    /// <summary>Chance that a message is lost, in [0, 1].</summary>
    public double LossProbability { get; init; }

    /// <summary>Shortest delivery delay in virtual milliseconds.</summary>
    public int MinDelayMs { get; init; } = 1;

    /// <summary>Longest delivery delay in virtual milliseconds (inclusive).</summary>
    public int MaxDelayMs { get; init; } = 5;

    /// <summary>Chance that a delivered message is delivered a second time (with its own delay).</summary>
    public double DuplicateProbability { get; init; }

    /// <summary>Chance that a message takes a long delay instead of the normal one (long reordering).</summary>
    public double LongDelayProbability { get; init; }

    /// <summary>Shortest long delay.</summary>
    public int LongDelayMinMs { get; init; } = 200;

    /// <summary>Longest long delay (inclusive).</summary>
    public int LongDelayMaxMs { get; init; } = 2_200;

    internal void Validate()
    {
        static bool IsProbability(double p) => p is >= 0 and <= 1;
        if (!IsProbability(LossProbability) || !IsProbability(DuplicateProbability) || !IsProbability(LongDelayProbability))
            throw new ArgumentException("Link probabilities must be in [0, 1].");
        if (MinDelayMs < 0 || MaxDelayMs < MinDelayMs) throw new ArgumentException("Need 0 <= MinDelayMs <= MaxDelayMs.");
        if (LongDelayMinMs < 0 || LongDelayMaxMs < LongDelayMinMs)
            throw new ArgumentException("Need 0 <= LongDelayMinMs <= LongDelayMaxMs.");
    }
}

/// <summary>
/// How each node's disk fails. A write is durable only once synced; the core asks for a sync with every Ready whose
/// <see cref="Ready.MustSync"/> is set (entries, term or vote), while a Ready that only moves the commit index is
/// written without one. Decisions are drawn from the run's seed, so a fault replays exactly.
/// </summary>
public sealed record DiskConfig
{
    /// <summary>A crash is a process crash: everything written survives; no write or sync fails.</summary>
    public static DiskConfig Reliable { get; } = new();

    /// <summary>Power loss at every crash, occasional torn persists and failed syncs, restarts after a fault.</summary>
    public static DiskConfig Faulty { get; } = new()
    {
        LoseUnsyncedOnCrash = true,
        CrashDuringPersistProbability = 0.005,
        SyncFailureProbability = 0.002,
        RestartAfterFaultMs = 300,
    };

    /// <summary>A crash loses writes not yet synced, keeping a random prefix of them (a power loss, not a process crash).</summary>
    public bool LoseUnsyncedOnCrash { get; init; }

    /// <summary>
    /// Chance, per Ready with something to persist, that the node crashes in the middle of persisting it, before its
    /// messages are sent: a prefix of what it was writing survives (unsynced writes first, then entries, then the hard
    /// state), the rest is lost.
    /// </summary>
    public double CrashDuringPersistProbability { get; init; }

    /// <summary>Chance, per sync, that the fsync fails: the node stops at once (fail-stop) and what survives is a prefix, as above.</summary>
    public double SyncFailureProbability { get; init; }

    /// <summary>Virtual milliseconds after a disk fault stopped a node until it restarts from its disk; 0 leaves it down.</summary>
    public int RestartAfterFaultMs { get; init; }

    /// <summary>Whether a write can be lost or a node stopped by this disk.</summary>
    public bool HasFaults => LoseUnsyncedOnCrash || CrashDuringPersistProbability > 0 || SyncFailureProbability > 0;

    internal void Validate()
    {
        if (CrashDuringPersistProbability is < 0 or > 1 || SyncFailureProbability is < 0 or > 1)
            throw new ArgumentException("Disk fault probabilities must be in [0, 1].");
        if (RestartAfterFaultMs < 0) throw new ArgumentException("RestartAfterFaultMs must not be negative.");
    }
}

/// <summary>The application each simulated node runs.</summary>
public enum SimApplication
{
    /// <summary><see cref="SimStateMachine"/>: the sequence of applied entries (every safety property checkable).</summary>
    Entries,

    /// <summary>
    /// The production queue (<c>RaftMQ.Queue.QueueStateMachine</c>) over real segment files in a temporary directory
    /// per node, with the production forwarding hooks: queue results as bytes and the leader's time stamped into
    /// each command by <c>PublishStamper</c> (on virtual time).
    /// </summary>
    Queue,
}

/// <summary>Settings of a simulated cluster. Everything random in a run derives from <see cref="Seed"/>.</summary>
public sealed class SimOptions
{
    /// <summary>Number of nodes; their ids are 1..Nodes. They are the first configuration's voters.</summary>
    public int Nodes { get; set; } = 3;

    /// <summary>
    /// Node ids that exist, 1..Pool (0: as many as <see cref="Nodes"/>). The ones past <see cref="Nodes"/> are spares:
    /// not running, with empty disks, until a membership change adds them (<see cref="SimCluster.AddLearner"/>).
    /// </summary>
    public int Pool { get; set; }

    /// <summary>See <c>NodeDriverOptions.PromoteCaughtUpLearners</c>: a leader promotes a learner once it has caught up.</summary>
    public bool PromoteCaughtUpLearners { get; set; } = true;

    /// <summary>The number of node ids, spares included.</summary>
    public int PoolSize => Math.Max(Pool, Nodes);

    /// <summary>The seed of the run: network faults, tick phases and the nodes' election randomness.</summary>
    public ulong Seed { get; set; } = 1;

    /// <summary>Virtual milliseconds between two ticks of a node.</summary>
    public int TickMs { get; set; } = 10;

    /// <summary>See <see cref="RaftOptions.ElectionTicks"/>.</summary>
    public int ElectionTicks { get; set; } = 10;

    /// <summary>See <see cref="RaftOptions.HeartbeatTicks"/>.</summary>
    public int HeartbeatTicks { get; set; } = 2;

    /// <summary>See <see cref="RaftOptions.QuiescedHeartbeatTicks"/> (0: off).</summary>
    public int QuiescedHeartbeatTicks { get; set; }

    /// <summary>See <see cref="RaftOptions.PreVote"/>.</summary>
    public bool PreVote { get; set; } = true;

    /// <summary>See <see cref="RaftOptions.CheckQuorum"/>.</summary>
    public bool CheckQuorum { get; set; } = true;

    /// <summary>The link every (from, to) pair starts with.</summary>
    public LinkConfig Link { get; set; } = LinkConfig.Reliable;

    /// <summary>
    /// Each node snapshots its state machine every this many applied entries and compacts its log behind the
    /// snapshot (§7); 0 (the default) never snapshots.
    /// </summary>
    public int SnapshotEveryEntries { get; set; }

    /// <summary>Entries kept in the log before the newest snapshot, so a follower a little behind needs no snapshot.</summary>
    public int SnapshotRetainEntries { get; set; }

    /// <summary>
    /// A leader gives up on a snapshot transfer (and reports it failed to its core) when the follower has not
    /// answered within this many virtual milliseconds.
    /// </summary>
    public int SnapshotTransferTimeoutMs { get; set; } = 500;

    /// <summary>Most bytes of commands kept in the log behind a snapshot (see <c>NodeDriverOptions.SnapshotRetainBytes</c>).</summary>
    public long SnapshotRetainBytes { get; set; } = long.MaxValue;

    /// <summary>Largest chunk of a snapshot a leader sends in one message (small, so transfers take several).</summary>
    public int SnapshotChunkBytes { get; set; } = 4096;

    /// <summary>Snapshots are written in the background; each write finishes up to this many virtual milliseconds later.</summary>
    public int SnapshotWriteDelayMaxMs { get; set; }

    /// <summary>Size of a node's log segment files (small, so segments roll and get deleted often).</summary>
    public long SegmentBytes { get; set; } = 256 * 1024;

    /// <summary>Largest command a node accepts (<see cref="RaftOptions.MaxEntryBytes"/> and the storage's bound).</summary>
    public int MaxEntryBytes { get; set; } = 64 * 1024;

    /// <summary>
    /// A Ready's fsync runs off the node's loop (as production's does) and ends up to this many virtual milliseconds
    /// later; the loop goes on meanwhile.
    /// </summary>
    public int LogSyncDelayMaxMs { get; set; } = 2;

    /// <summary>
    /// Chance, per fsync, that it was slow: a Ready's fsync off the loop then ends up to <see cref="SlowFsyncMaxMs"/>
    /// later; an fsync on the loop (installing a snapshot, compacting) holds the loop up that long.
    /// </summary>
    public double SlowFsyncProbability { get; set; }

    /// <summary>Longest hold-up of a slow fsync, in virtual milliseconds.</summary>
    public int SlowFsyncMaxMs { get; set; } = 100;

    /// <summary>Chance, per crash, that the messages already on the wire to and from the node still arrive.</summary>
    public double MessagesSurviveCrashProbability { get; set; }

    /// <summary>How the nodes' disks fail; <see cref="DiskConfig.Reliable"/> by default.</summary>
    public DiskConfig Disk { get; set; } = DiskConfig.Reliable;

    /// <summary>What the nodes run: <see cref="SimApplication.Entries"/> (the default) or the production queue.</summary>
    public SimApplication Application { get; set; } = SimApplication.Entries;

    /// <summary>Further settings applied to each node's <see cref="RaftOptions"/> after the ones above.</summary>
    public Action<RaftOptions>? ConfigureRaft { get; set; }

    /// <summary>The command that replays this run, shown with every failure (see <see cref="SimEnvironment.ReplayCommand"/>).</summary>
    public string? ReplayCommand { get; set; }

    /// <summary>Most messages in flight or held at once; more means a runaway test and fails the run.</summary>
    public int MaxInFlightMessages { get; set; } = 1_000_000;

    /// <summary>Most events processed at one virtual instant before the run is declared livelocked.</summary>
    public int MaxEventsPerInstant { get; set; } = 100_000;

    /// <summary>How many recent events a failure report shows.</summary>
    public int TraceCapacity { get; set; } = 64;

    internal void Validate()
    {
        if (Nodes is < 1 or > 64) throw new ArgumentException("Nodes must be in [1, 64].");
        if (Pool is < 0 or > 64) throw new ArgumentException("Pool must be in [0, 64].");
        if (TickMs <= 0) throw new ArgumentException("TickMs must be positive.");
        if (MaxInFlightMessages <= 0 || MaxEventsPerInstant <= 0 || TraceCapacity < 0)
            throw new ArgumentException("Bounds must be positive.");
        if (SnapshotEveryEntries < 0 || SnapshotRetainEntries < 0) throw new ArgumentException("Snapshot settings must not be negative.");
        if (SnapshotTransferTimeoutMs <= 0 || SnapshotChunkBytes <= 0 || SnapshotWriteDelayMaxMs < 0)
            throw new ArgumentException("Snapshot transfer settings must be positive.");
        if (MessagesSurviveCrashProbability is < 0 or > 1) throw new ArgumentException("MessagesSurviveCrashProbability must be in [0, 1].");
        if (SlowFsyncProbability is < 0 or > 1 || SlowFsyncMaxMs < 0 || LogSyncDelayMaxMs < 0) throw new ArgumentException("Slow fsync settings must be a probability and a non-negative delay.");
        ArgumentNullException.ThrowIfNull(Link);
        Link.Validate();
        ArgumentNullException.ThrowIfNull(Disk);
        Disk.Validate();
    }
}

using RaftMQ.Raft;

namespace RaftMQ.Simulation;

/// <summary>
/// One simulated server: a <see cref="RaftNode"/> over a <see cref="MemoryLogStorage"/> (its "disk") and a state
/// machine that records the entries it applied. A crash drops the node and everything not persisted; the storage and
/// the record of applied entries survive, so a restart can be checked against what was applied before.
/// </summary>
public sealed class SimNode
{
    private readonly InvariantChecker _checker;
    private readonly List<ReadState> _readStates = [];

    // Commit indexes written since the last sync, oldest first: the only writes the core lets go unsynced.
    private readonly List<ulong> _unsyncedCommits = [];

    internal SimNode(ulong id, InvariantChecker checker)
    {
        Id = id;
        _checker = checker;
        Storage = new MemoryLogStorage();
    }

    public ulong Id { get; }

    /// <summary>The consensus core while the node is up; null while it is crashed.</summary>
    public RaftNode? Raft { get; internal set; }

    public bool IsUp => Raft is not null;

    /// <summary>What the node has persisted. Replaced by a copy at each crash, as a disk outlives a process.</summary>
    public MemoryLogStorage Storage { get; internal set; }

    /// <summary>The newest snapshot on the node's disk (taken or installed), or null. Written atomically and synced.</summary>
    public SimSnapshot? Snapshot { get; internal set; }

    /// <summary>Commit index writes not yet synced (a crash with <see cref="DiskConfig.LoseUnsyncedOnCrash"/> may lose them).</summary>
    public int UnsyncedWrites => _unsyncedCommits.Count;

    /// <summary>Disk faults (torn persists, failed syncs) that stopped this node.</summary>
    public int DiskFaults { get; internal set; }

    /// <summary>How often the node's core adopted a snapshot from the leader.</summary>
    public int SnapshotsInstalled { get; internal set; }

    /// <summary>How often the node took a snapshot of its own state machine.</summary>
    public int SnapshotsTaken { get; internal set; }

    /// <summary>Entries to keep when the next persist of entries crashes (<see cref="SimCluster.CrashDuringNextPersist"/>).</summary>
    internal int? CrashDuringPersist { get; set; }

    /// <summary>The commit index as of the last sync.</summary>
    internal ulong SyncedCommit { get; set; }

    /// <summary>A snapshot received from the leader, while the core decides whether to adopt it.</summary>
    internal SimSnapshot? ReceivedSnapshot { get; set; }

    /// <summary>Leader side: snapshot transfers in progress, by follower.</summary>
    internal Dictionary<ulong, SnapshotTransfer> OutgoingSnapshots { get; } = [];

    /// <summary>Transfer outcomes to report to the core once its Ready is advanced.</summary>
    internal List<(ulong Peer, bool Succeeded)> SnapshotReports { get; } = [];

    /// <summary>How often the node was (re)started; 1 for the first run.</summary>
    public int Incarnation { get; internal set; }

    /// <summary>Whether the node's clock is stopped (no ticks), as in a long pause of the process.</summary>
    public bool ClockPaused { get; internal set; }

    /// <summary>The node's state machine: every entry applied, index 1 first. Kept across restarts.</summary>
    public IReadOnlyList<Entry> Applied => _checker.AppliedBy(Id);

    /// <summary>The index applied by the current run of the node (re-applies from 1 after a restart).</summary>
    public ulong AppliedThisRun => _checker.AppliedThisRun(Id);

    /// <summary>Reads confirmed to this node in its current run, in order.</summary>
    public IReadOnlyList<ReadState> ReadStates => _readStates;

    public Role Role => Raft?.Role ?? Role.Follower;

    public ulong Term => Raft?.Term ?? Storage.HardState.Term;

    public ulong CommitIndex => Raft?.CommitIndex ?? Storage.HardState.Commit;

    public bool IsLeader => Raft is { Role: Role.Leader };

    internal void AddReadState(ReadState state) => _readStates.Add(state);

    internal void ClearRunState()
    {
        _readStates.Clear();
        ReceivedSnapshot = null;
        OutgoingSnapshots.Clear();
        SnapshotReports.Clear();
    }

    /// <summary>Records a write of the commit index without a sync.</summary>
    internal void WroteUnsynced(ulong commit) => _unsyncedCommits.Add(commit);

    /// <summary>Everything written is durable now.</summary>
    internal void Synced()
    {
        _unsyncedCommits.Clear();
        SyncedCommit = Storage.HardState.Commit;
    }

    /// <summary>
    /// The disk after a crash that kept only the first <paramref name="keep"/> unsynced writes: the commit index goes
    /// back to the newest surviving one. Term and vote are always synced, so only the commit index can be lost.
    /// </summary>
    internal void LoseUnsynced(int keep)
    {
        if (_unsyncedCommits.Count == 0) return;
        var commit = keep == 0 ? SyncedCommit : _unsyncedCommits[keep - 1];
        Storage.SetHardState(Storage.HardState with { Commit = commit });
        Synced();
    }

    /// <summary>A one-line summary: "n2 Leader t3 last=7 commit=7 applied=7".</summary>
    public override string ToString() => Raft is { } r
        ? $"n{Id} {r.Role} t{r.Term} vote={r.Vote} last={r.LastIndex}/t{r.LastTerm} commit={r.CommitIndex} applied={r.AppliedIndex}{SnapshotSummary}{(ClockPaused ? " paused" : "")}"
        : $"n{Id} down t{Storage.HardState.Term} last={Storage.LastIndex} commit={Storage.HardState.Commit}{SnapshotSummary}";

    private string SnapshotSummary => Storage.Snapshot.Index == 0 && Snapshot is null
        ? ""
        : $" compacted={Storage.Snapshot.Index} snapshot={Snapshot?.Metadata.Index ?? 0}";
}

/// <summary>A snapshot a leader sent to a follower and waits to hear about.</summary>
internal sealed record SnapshotTransfer(SnapshotMetadata Snapshot, ulong Bytes, long StartedAt);

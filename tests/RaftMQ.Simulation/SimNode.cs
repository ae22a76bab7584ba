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

    internal void ClearRunState() => _readStates.Clear();

    /// <summary>A one-line summary: "n2 Leader t3 last=7 commit=7 applied=7".</summary>
    public override string ToString() => Raft is { } r
        ? $"n{Id} {r.Role} t{r.Term} vote={r.Vote} last={r.LastIndex}/t{r.LastTerm} commit={r.CommitIndex} applied={r.AppliedIndex}{(ClockPaused ? " paused" : "")}"
        : $"n{Id} down t{Storage.HardState.Term} last={Storage.LastIndex} commit={Storage.HardState.Commit}";
}

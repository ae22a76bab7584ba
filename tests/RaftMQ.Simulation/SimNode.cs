using RaftMQ.Queue;
using RaftMQ.Raft;
using RaftMQ.Runtime;
using RaftMQ.Storage;

namespace RaftMQ.Simulation;

/// <summary>
/// One simulated server: the production <see cref="NodeDriver"/> over the production <see cref="NodeStorage"/>
/// (write-ahead log and snapshot files) on a <see cref="FaultyFileSystem"/> — the node's disk — with a state machine
/// that records the entries it applied. A crash drops the driver and whatever the disk model loses; the disk and the
/// record of applied entries survive, so a restart can be checked against what was applied before.
/// </summary>
public sealed class SimNode : INodeObserver
{
    /// <summary>Where the node keeps its data on its (simulated) disk.</summary>
    public const string DataDirectory = "/sim/node";

    private readonly InvariantChecker _checker;
    private HardState _persistedHardState;
    private DurableLogStorage? _lastLog;

    internal SimNode(ulong id, InvariantChecker checker)
    {
        Id = id;
        _checker = checker;
        Disk = new FaultyFileSystem();
    }

    public ulong Id { get; }

    /// <summary>The node's disk. Replaced at each crash by what survives of it.</summary>
    public FaultyFileSystem Disk { get; internal set; }

    /// <summary>The node while it runs; null while it is down.</summary>
    public NodeDriver? Driver { get; private set; }

    /// <summary>The consensus core while the node is up; null while it is crashed.</summary>
    public RaftNode? Raft => Driver?.Raft;

    public bool IsUp => Driver is not null;

    /// <summary>The state machine of the current run (null while down, and in queue mode).</summary>
    public SimStateMachine? StateMachine { get; private set; }

    /// <summary>In queue mode (<see cref="SimApplication.Queue"/>), the production queue of the current run; null while down.</summary>
    public QueueStateMachine? Queue { get; private set; }

    /// <summary>In queue mode, the stamper of the current run (the leader's clock in the commands it proposes).</summary>
    public PublishStamper? Stamper { get; internal set; }

    /// <summary>The forwarding hooks of the current run, in queue mode.</summary>
    internal ProposalForwarding? Forwarding { get; set; }

    /// <summary>In queue mode, the node's queue directory (real files; it survives crashes, as the process's disk does).</summary>
    public string? QueueDirectory { get; internal set; }

    /// <summary>The node's log as its storage holds it (as last seen when the node is down).</summary>
    public ILogStorage Storage => Driver?.Storage.Log ?? _lastLog ?? throw new InvalidOperationException($"n{Id} never started");

    /// <summary>The newest snapshot file on the node's disk, or null.</summary>
    public SnapshotMetadata? LatestSnapshot => Driver?.Storage.Snapshots.Latest;

    /// <summary>Disk faults (failed writes or fsyncs) that stopped this node.</summary>
    public int DiskFaults { get; internal set; }

    /// <summary>How often the node's core adopted a snapshot from the leader.</summary>
    public int SnapshotsInstalled { get; private set; }

    /// <summary>How often the node took a snapshot of its own state machine.</summary>
    public int SnapshotsTaken { get; private set; }

    /// <summary>How often the node was (re)started; 1 for the first run.</summary>
    public int Incarnation { get; internal set; }

    /// <summary>Until when the node's loop is held up by a slow fsync: messages wait and ticks are counted, not handled.</summary>
    public long BusyUntil { get; internal set; }

    /// <summary>Until when the node's log fsyncs do not end (a stalled disk): its loop goes on meanwhile.</summary>
    public long LogSyncStalledUntil { get; internal set; }

    /// <summary>Ticks that came while the loop was held up; handled together (at most 64) once it is free.</summary>
    internal int MissedTicks { get; set; }

    /// <summary>Whether the node's clock is stopped (no ticks), as in a long pause of the process.</summary>
    public bool ClockPaused { get; internal set; }

    /// <summary>The node's state machine: every entry applied, index 1 first. Kept across restarts.</summary>
    public IReadOnlyList<Entry> Applied => _checker.AppliedBy(Id);

    /// <summary>The index applied by the current run of the node (re-applies from its snapshot after a restart).</summary>
    public ulong AppliedThisRun => _checker.AppliedThisRun(Id);

    public Role Role => Raft?.Role ?? Role.Follower;

    public ulong Term => Raft?.Term ?? Storage.HardState.Term;

    public ulong CommitIndex => Raft?.CommitIndex ?? Storage.HardState.Commit;

    public bool IsLeader => Raft is { Role: Role.Leader };

    /// <summary>Opens the node's storage on its disk and starts a driver over it.</summary>
    private static readonly QueueStoreOptions SimStoreOptions = new() { SegmentBytes = 256, CompactionCheckMessages = 4 };

    internal void Start(RaftOptions raftOptions, NodeDriverOptions driverOptions, StorageOptions storageOptions, INodeHost host, ulong readContextSeed)
    {
        var storage = NodeStorage.Open(DataDirectory, storageOptions);
        try
        {
            _lastLog = storage.Log;
            _persistedHardState = storage.Log.HardState;
            _checker.OnRestart(Id, _persistedHardState.Commit);
            IStateMachine machine;
            if (QueueDirectory is { } directory)
            {
                // As a node process does at start-up: a new queue over its directory (which drops the old segment
                // files), rebuilt from the newest snapshot and the log by the driver.
                // Small segments and a compaction look every few finished messages, so that rolling, rewriting and
                // linking compacted segments into snapshots happen under every fault (they change no result).
                Queue = new QueueStateMachine(directory, storeOptions: SimStoreOptions);
                machine = Queue;
            }
            else
            {
                StateMachine = new SimStateMachine();
                machine = StateMachine;
            }
            Driver = new NodeDriver(raftOptions, driverOptions, storage, machine, host, readContextSeed, logger: null, observer: this);
        }
        catch
        {
            StateMachine = null;
            Queue?.Dispose();
            Queue = null;
            storage.Dispose();
            throw;
        }
    }

    /// <summary>Stops the driver (callers waiting on it learn it stopped); the disk stays as it is.</summary>
    internal void Stop(Exception reason)
    {
        BusyUntil = 0;
        MissedTicks = 0;
        if (Driver is not { } driver) return;
        Driver = null;
        StateMachine = null;
        driver.FailAll(reason);
        driver.Dispose();
        driver.Storage.Dispose();
        Queue?.Dispose();
        Queue = null;
    }

    void INodeObserver.Persisted(HardState? hardState, IReadOnlyList<Entry> entries)
    {
        if (entries.Count > 0)
            _checker.OnPersistedEntries(Id, entries, Storage.Term(entries[0].Index - 1));
        if (hardState is { } next)
        {
            _checker.OnPersistedHardState(Id, _persistedHardState, next);
            _persistedHardState = next;
        }
    }

    void INodeObserver.Applied(Entry entry)
    {
        StateMachine?.Record(entry);
        _checker.OnApplied(Id, entry, Raft?.Term ?? 0);
    }

    void INodeObserver.SnapshotTaken(SnapshotMetadata snapshot)
    {
        SnapshotsTaken++;
        _checker.OnSnapshotTaken(Id, snapshot, Raft!.TryGetEntry(snapshot.Index, out var e) ? e.Term : null);
    }

    void INodeObserver.SnapshotRestored(SnapshotMetadata snapshot, bool atStartup)
    {
        if (!atStartup) SnapshotsInstalled++;
        // The queue's snapshot holds queue state, not entries: it is checked as holding the committed entries up to its
        // index (its metadata against them); the queue's state itself is compared across nodes by the queue tests.
        var state = StateMachine is { } machine ? machine.Entries : _checker.Committed.Take((int)snapshot.Index).ToList();
        _checker.OnSnapshotRestored(Id, snapshot, state, restart: atStartup, Raft?.Term ?? _persistedHardState.Term);
        // An installed snapshot replaced the log (or its prefix): the checker reads the node's log and configuration again.
        if (!atStartup) _checker.OnLogOpened(Id, Storage, null);
    }

    /// <summary>A one-line summary: "n2 Leader t3 last=7 commit=7 applied=7".</summary>
    public override string ToString()
    {
        if (Raft is { } r)
        {
            return $"n{Id} {r.Role} t{r.Term} vote={r.Vote} last={r.LastIndex}/t{r.LastTerm} commit={r.CommitIndex} applied={r.AppliedIndex}" +
                $"{SnapshotSummary} config@{r.ConfigurationIndex}={r.Configuration}{(ClockPaused ? " paused" : "")}";
        }
        return _lastLog is null ? $"n{Id} never started" : $"n{Id} down t{_lastLog.HardState.Term} last={_lastLog.LastIndex} commit={_lastLog.HardState.Commit}";
    }

    private string SnapshotSummary => Storage.Snapshot.Index == 0 && LatestSnapshot is null
        ? ""
        : $" compacted={Storage.Snapshot.Index} snapshot={LatestSnapshot?.Index ?? 0}";
}

/// <summary>
/// The simulated application: its state is the sequence of entries it applied (no-ops included), which makes every
/// safety property checkable against the other nodes. Its snapshot is that sequence; a command's result is its index.
/// </summary>
public sealed class SimStateMachine : IStateMachine
{
    private List<Entry> _entries = [];

    /// <summary>The applied entries, index 1 first.</summary>
    public IReadOnlyList<Entry> Entries => _entries;

    /// <summary>The last applied index.</summary>
    public ulong AppliedIndex => (ulong)_entries.Count;

    public object? Apply(ulong index, ReadOnlyMemory<byte> command)
    {
        // The entry itself (with its term) is recorded by the node's observer, which sees no-ops too.
        if (index != AppliedIndex + 1) throw new InvalidOperationException($"applied {index} after {AppliedIndex}");
        return index;
    }

    internal void Record(Entry entry)
    {
        if (entry.Index != AppliedIndex + 1) throw new InvalidOperationException($"recorded {entry.Index} after {AppliedIndex}");
        _entries.Add(entry);
    }

    public IStateMachineSnapshot CaptureSnapshot()
    {
        // The list only grows within a run (a restore replaces it), so a view of its first entries is a point-in-time copy.
        var count = _entries.Count;
        var view = new ListPrefix<Entry>(_entries, count);
        var metadata = count == 0 ? default : new SnapshotMetadata(_entries[^1].Index, _entries[^1].Term);
        return StateMachineSnapshots.Deferred(destination => destination.Write(new SimSnapshot(metadata, view).Encode().Span));
    }

    public void RestoreSnapshot(Stream source)
    {
        using var buffer = new MemoryStream();
        source.CopyTo(buffer);
        var snapshot = SimSnapshot.Decode(buffer.ToArray());
        _entries = [.. snapshot.State];
    }
}

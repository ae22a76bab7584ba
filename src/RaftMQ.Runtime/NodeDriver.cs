using Microsoft.Extensions.Logging;
using RaftMQ.Raft;
using RaftMQ.Storage;

namespace RaftMQ.Runtime;

/// <summary>What a <see cref="NodeDriver"/> needs from the world around it: sending, time and a background worker.</summary>
/// <remarks>
/// Production (<see cref="RaftRuntime"/>) sends over TCP, reads the system clock and writes snapshots on the thread
/// pool; the simulator sends over its seeded network, reads virtual time and runs background work as scheduled events.
/// </remarks>
public interface INodeHost
{
    /// <summary>Sends a message to a peer; fire and forget (Raft tolerates loss). Must not block or throw.</summary>
    void Send(RaftMessage message);

    /// <summary>Now, as a timestamp of the host's <see cref="TimeProvider"/>.</summary>
    TimeProvider Time { get; }

    /// <summary>
    /// Runs <paramref name="job"/>'s <see cref="SnapshotJob.Write"/> off the loop, then hands the job back to the
    /// loop's <see cref="NodeDriver.CompleteSnapshot"/> (whether or not it failed).
    /// </summary>
    void WriteSnapshotInBackground(SnapshotJob job);

    /// <summary>
    /// Runs <paramref name="job"/>'s <see cref="LogSyncJob.Run"/> (the fsync of a Ready the loop wrote) off the loop,
    /// then hands the job back to the loop's <see cref="NodeDriver.CompleteLogSync"/>, and returns true; the loop goes
    /// on meanwhile (answering heartbeats, ticking, taking proposals). A host that returns false has the driver fsync
    /// on the loop instead.
    /// </summary>
    bool TrySyncLogInBackground(LogSyncJob job) => false;

    /// <summary>
    /// True when the host knows its link to <paramref name="peer"/> is down now (the connection closed or could not be
    /// made: the peer process is most likely gone); false when it is up or the host cannot tell. A hint for forwarding
    /// only (<see cref="NodeDriver.Forward"/>): a command is not sent to a leader whose link is down, and a forward
    /// already sent is given up as soon as its node no longer leads and its link is down. Raft itself never uses it.
    /// </summary>
    bool IsLinkDown(ulong peer) => false;

    /// <summary>
    /// Called on the loop by <see cref="NodeDriver.ProcessReady"/> once its Readies are handled and before it
    /// completes the membership changes and leadership transfers that waited on them: a host that publishes views of
    /// the node (its status, its configuration) refreshes them here, so that a caller whose change just completed
    /// finds the change in them.
    /// </summary>
    void BeforeCompletingChanges() { }
}

/// <summary>
/// The fsync of one Ready's entries and hard state, which the loop has written: run off the loop, then back on the
/// loop the Ready is finished (its messages sent, its committed entries applied, the core advanced). Or a log
/// compaction's fsync and the deletion of the segment files it freed, after which the log is written again.
/// </summary>
public sealed class LogSyncJob
{
    internal LogSyncJob(Ready? ready, bool sentFirst, DurableLogStorage.LogSync sync, long startedAt)
    {
        Ready = ready;
        SentFirst = sentFirst;
        Sync = sync;
        StartedAt = startedAt;
    }

    /// <summary>The Ready whose entries and hard state this fsyncs; null for a compaction's fsync and file deletions.</summary>
    internal Ready? Ready { get; }

    internal bool SentFirst { get; }

    /// <summary>Whether the Ready's committed entries were applied when its fsync started (they need none of it).</summary>
    internal bool AppliedFirst { get; set; }

    internal DurableLogStorage.LogSync Sync { get; }

    internal long StartedAt { get; }

    /// <summary>Fsyncs. Never throws: a failure is reported when the loop takes the job back, and stops the node.</summary>
    public void Run()
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        Sync.Run();
        RunTime = System.Diagnostics.Stopwatch.GetElapsedTime(started);
    }

    /// <summary>How long <see cref="Run"/> took (wall clock): the fsync, and a segment roll or file deletions with it.</summary>
    public TimeSpan RunTime { get; private set; }

    /// <summary>Why the fsync failed, or null (once <see cref="Run"/> returned).</summary>
    public Exception? Error => Sync.Error;
}

/// <summary>Observes what a node did, in order, on its loop (for metrics, tracing and the simulator's checks).</summary>
public interface INodeObserver
{
    /// <summary>A Ready's entries and hard state were written (and synced when the Ready required it).</summary>
    void Persisted(HardState? hardState, IReadOnlyList<Entry> entries);

    /// <summary>A committed entry was applied to the state machine (no-ops included).</summary>
    void Applied(Entry entry);

    /// <summary>A snapshot of the state machine was made durable and the log compacted behind it.</summary>
    void SnapshotTaken(SnapshotMetadata snapshot);

    /// <summary>The state machine was replaced by a snapshot: at start-up, or one the leader sent.</summary>
    void SnapshotRestored(SnapshotMetadata snapshot, bool atStartup);
}

/// <summary>
/// A snapshot of the state machine captured on the loop at <see cref="Metadata"/>, to be written out off the loop.
/// </summary>
public sealed class SnapshotJob
{
    private readonly IStateMachineSnapshot _captured;
    private readonly SnapshotWriter _writer;

    internal SnapshotJob(SnapshotMetadata metadata, IStateMachineSnapshot captured, SnapshotWriter writer)
    {
        Metadata = metadata;
        _captured = captured;
        _writer = writer;
    }

    public SnapshotMetadata Metadata { get; }

    /// <summary>Why writing failed, or null once it succeeded.</summary>
    public Exception? Error { get; private set; }

    /// <summary>Bytes written to the snapshot file (once <see cref="Write"/> returned).</summary>
    public long Bytes { get; private set; }

    /// <summary>How long <see cref="Write"/> took, fsync and commit included.</summary>
    public TimeSpan Duration { get; private set; }

    /// <summary>Writes, fsyncs and commits the snapshot file. Never throws: a failure is kept in <see cref="Error"/>.</summary>
    public void Write()
    {
        var start = System.Diagnostics.Stopwatch.GetTimestamp();
        try
        {
            _captured.WriteTo(_writer);
            Bytes = _writer.Length;
            _writer.Commit();
            Duration = System.Diagnostics.Stopwatch.GetElapsedTime(start);
        }
        catch (Exception e)
        {
            Error = e;
        }
        finally
        {
            _captured.Dispose();
            _writer.Dispose();
        }
    }
}

/// <summary>Settings of a node that are not the consensus core's: snapshots and their transfer.</summary>
public sealed class NodeDriverOptions
{
    /// <summary>Take a snapshot of the state machine once this many entries were applied since the last one.</summary>
    public ulong SnapshotEveryEntries { get; init; } = 50_000;

    /// <summary>Take a snapshot once this many bytes of commands were applied since the last one, whichever bound comes first.</summary>
    public long SnapshotEveryBytes { get; init; } = 128L << 20;

    /// <summary>Entries kept in the log behind a snapshot, so a follower slightly behind catches up without a snapshot.</summary>
    public ulong SnapshotRetainEntries { get; init; } = 5_000;

    /// <summary>
    /// Most bytes of commands kept behind a snapshot, whichever of this and <see cref="SnapshotRetainEntries"/> keeps
    /// less: with large entries, a count alone would keep the whole backlog on disk twice.
    /// </summary>
    public long SnapshotRetainBytes { get; init; } = 64L << 20;

    /// <summary>Largest chunk of a snapshot sent to a follower in one message.</summary>
    public int SnapshotChunkBytes { get; init; } = 1 << 20;

    /// <summary>A snapshot transfer with no answer for this long is abandoned (and retried by Raft).</summary>
    public TimeSpan SnapshotTransferTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Most bytes of commands applied in one <see cref="NodeDriver.ProcessReady"/> before it returns with Readies
    /// left (at least one Ready is always handled): applying a backlog of large entries does not hold the loop, and
    /// heartbeats, acknowledgements and votes that arrive meanwhile are handled between the chunks.
    /// </summary>
    public long MaxApplyBytesPerStep { get; init; } = 1L << 20;

    /// <summary>
    /// Fairness at the leader: once this many bytes of commands proposed on this node (its callers' and those
    /// forwarded to it) are in the log and not yet applied, a command larger than <see cref="SmallProposalBytes"/>
    /// waits, in arrival order, until enough of them are applied, while smaller ones are proposed at once. A small
    /// request then waits behind at most about this many bytes of others' entries, not behind all that was sent.
    /// 0 turns pacing off.
    /// </summary>
    public long MaxProposalBytesInFlight { get; init; }

    /// <summary>Commands of at most this many bytes are never held back by <see cref="MaxProposalBytesInFlight"/>.</summary>
    public int SmallProposalBytes { get; init; } = 64 << 10;

    /// <summary>Most commands held back by pacing; more are refused as overloaded.</summary>
    public int MaxHeldProposals { get; init; } = 4_096;

    /// <summary>Most bytes of commands held back by pacing; more are refused as overloaded.</summary>
    public long MaxHeldProposalBytes { get; init; } = 64L << 20;

    /// <summary>
    /// Reads this node's disk alarm (cheap: called on the loop at every tick); a follower reports it to the leader
    /// (<see cref="NodeDriver.PeerDiskAlarm"/>). Null sends no reports.
    /// </summary>
    public Func<DiskReading>? ReadDiskAlarm { get; init; }

    /// <summary>
    /// Whether the host holds requests that wait for this node to apply new entries (a follower's long polls; cheap:
    /// called on the loop at every append a follower takes). While it or one of the driver's reads waits, the node asks its
    /// leader for each new commit index at once (<see cref="RaftNode.WaitingToApply"/>); otherwise it learns commits
    /// with the leader's next append or heartbeat. Null: only the driver's own reads count.
    /// </summary>
    public Func<bool>? WaitingToApply { get; init; }

    /// <summary>Forwarding of proposals from followers to the leader over the peer link; null leaves it off.</summary>
    public ProposalForwarding? Forwarding { get; init; }

    /// <summary>
    /// Whether a leader promotes every learner to voter as soon as the core allows it (the learner has caught up within
    /// <see cref="RaftOptions.MaxPromotionLagEntries"/>), so that a node added as a learner becomes a voter on its own.
    /// </summary>
    public bool PromoteCaughtUpLearners { get; init; }
}

/// <summary>
/// One Raft node, driven one synchronous step at a time: it owns the consensus core, the storage and the state
/// machine, and turns each <see cref="Ready"/> into effects in the order Raft requires — persist (fsync before
/// anything that depends on it is sent; a leader may send appends in parallel with its own write), send, apply,
/// release reads, complete proposals, take or install snapshots. It has no thread, clock or socket of its own: the
/// same class runs in production inside <see cref="RaftRuntime"/>'s loop and in the simulator on virtual time.
/// </summary>
/// <remarks>Not thread-safe: its owner calls it from one thread.</remarks>
public sealed partial class NodeDriver : IDisposable
{
    private const int MaxApplyCheckpoints = 4_096;

    /// <summary>
    /// Applied bytes between two points where the log may be compacted by its byte bound: a 64th of that bound, so a
    /// compaction keeps at most that much more than it must, however many entries a Ready applied at once.
    /// </summary>
    private long CheckpointBytes => Math.Max(1, _options.SnapshotRetainBytes / 64);

    private readonly RaftOptions _raftOptions;
    private readonly NodeDriverOptions _options;
    private readonly NodeStorage _storage;
    private readonly IStateMachine _stateMachine;
    private readonly INodeHost _host;
    private readonly INodeObserver? _observer;
    private readonly ILogger _logger;
    private readonly Dictionary<ulong, PendingProposal> _proposals = [];
    private readonly Dictionary<ulong, PendingRead> _unconfirmedReads = [];
    private readonly PriorityQueue<PendingRead, ulong> _confirmedReads = new();
    private readonly Dictionary<ulong, OutgoingSnapshot> _outgoingSnapshots = [];
    private readonly List<(ulong Peer, bool Succeeded)> _snapshotReports = [];
    private readonly HashSet<int> _coveredAcks = []; // CoveredAcknowledgements' answer, reused
    private readonly List<(ulong To, ulong Term, ulong Index)> _laterAcks = []; // its scratch, reused
    private readonly RaftNode _node;
    private ulong _nextReadContext;
    private HardState _persistedHardState;
    private ulong _lastSnapshotIndex;
    private long _bytesSinceSnapshot;
    private SnapshotJob? _snapshotInProgress;
    private long _appliedBytes; // command bytes applied in this run, for the byte bound on the retained log
    private long _appliedBytesAtSnapshot;
    private readonly Queue<(ulong Index, long AppliedBytes)> _applyCheckpoints = new(); // where compaction may cut
    private long _lastCheckpointBytes;
    private IncomingSnapshot? _incomingSnapshot;
    private LogSyncJob? _logSync; // a Ready written and being fsynced off the loop; no other Ready until it is back
    private (InstallSnapshot Install, IncomingSnapshot? Received)? _installAfterSync; // waits for the outstanding Ready
    private SnapshotJob? _snapshotAfterSync; // a finished snapshot compacts the log once no fsync runs
    private ulong _applied; // the state machine's applied index: may run ahead of the core's while a Ready is out

    /// <summary>
    /// Opens the node from its storage: the state machine from the newest snapshot (§7), the core over the log after
    /// it. <paramref name="readContextSeed"/> numbers this run's reads and forwarded proposals; it must differ between
    /// runs of a node (a random number does), so that a late answer to a read or forward of an earlier run can never
    /// be taken for the answer to one of this run.
    /// </summary>
    public NodeDriver(
        RaftOptions raftOptions, NodeDriverOptions options, NodeStorage storage, IStateMachine stateMachine, INodeHost host,
        ulong readContextSeed, ILogger? logger = null, INodeObserver? observer = null)
    {
        ArgumentNullException.ThrowIfNull(raftOptions);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(storage);
        ArgumentNullException.ThrowIfNull(stateMachine);
        ArgumentNullException.ThrowIfNull(host);
        _raftOptions = raftOptions;
        _options = options;
        _storage = storage;
        _stateMachine = stateMachine;
        _host = host;
        _observer = observer;
        _logger = logger ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
#if MUTATION_REUSEREADCONTEXTS
        _nextReadContext = 0; // the bug: every run numbers its reads from 1
#else
        _nextReadContext = readContextSeed;
#endif
        _nextForwardId = readContextSeed;
        _startTerm = storage.Log.HardState.Term;
        PromoteCaughtUpLearners = options.PromoteCaughtUpLearners;
        options.Forwarding?.Validate();
        var log = _storage.Log;
        _persistedHardState = log.HardState;
        var applied = 0UL;
        using (var snapshot = _storage.OpenLatestSnapshot())
        {
            if (snapshot is not null)
            {
                _stateMachine.RestoreSnapshot(snapshot);
                _lastSnapshotIndex = snapshot.Metadata.Index;
                applied = snapshot.Metadata.Index;
                _observer?.SnapshotRestored(snapshot.Metadata, atStartup: true);
                LogSnapshotRestored(_logger, raftOptions.Id, snapshot.Metadata.Index, snapshot.Metadata.Term);
            }
        }
        raftOptions.Applied = applied;
        _node = new RaftNode(raftOptions, log);
        _applied = _node.AppliedIndex;
        LogStarted(_logger, raftOptions.Id, log.HardState.Term, log.LastIndex, log.HardState.Commit);
    }

    /// <summary>The consensus core (read its state between steps; give it input only through the driver).</summary>
    public RaftNode Raft => _node;

    /// <summary>The node's storage.</summary>
    public NodeStorage Storage => _storage;

    /// <summary>What the driver has done so far.</summary>
    public RuntimeCounters Counters { get; } = new();

    /// <summary>Raised on the loop after a Ready changed the leader, role or term.</summary>
    public event Action<SoftState>? SoftStateChanged;

    /// <summary>Proposals waiting for their entry to be applied.</summary>
    public int PendingProposals => _proposals.Count;

    /// <summary>Whether a snapshot is being written in the background.</summary>
    public bool SnapshotInProgress => _snapshotInProgress is not null;

    /// <summary>Whether a Ready's fsync runs off the loop (<see cref="INodeHost.TrySyncLogInBackground"/>).</summary>
    public bool LogSyncInProgress => _logSync is not null;

    /// <summary>
    /// The index of the last entry applied to the state machine (or restored from a snapshot). While a Ready's fsync
    /// runs it may be ahead of the core's <see cref="RaftNode.AppliedIndex"/> and of the durable log: committed entries
    /// are applied without waiting for this node's own write of them (<see cref="RaftNode.TakeCommittedBeforeDurable"/>).
    /// </summary>
    public ulong AppliedIndex => _applied;

    // ---- inputs ----

    /// <summary>Hands the node a message from a peer.</summary>
    public void Step(RaftMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        Counters.Handled();
        switch (message)
        {
            case SnapshotChunk chunk:
                ReceiveSnapshotChunk(chunk);
                break;
            case SnapshotChunkResponse response:
                ContinueSnapshotTransfer(response);
                break;
            case ForwardProposal forward:
                ReceiveForward(forward);
                break;
            case ForwardResult result:
                ReceiveForwardResult(result);
                break;
            case DiskAlarmReport report:
                ReceiveDiskAlarm(report);
                break;
            case InstallSnapshot install when _logSync is not null:
                DeferInstall(install, null); // the core takes it once the outstanding Ready is advanced
                break;
            case AppendEntries:
                // Its own reads wait to apply up to their read index (a follower's may be past the commit it knows).
                _node.WaitingToApply = _unconfirmedReads.Count > 0 || _confirmedReads.Count > 0 || _options.WaitingToApply?.Invoke() == true;
                _node.Step(message);
                break;
            default:
                _node.Step(message);
                break;
        }
    }

    /// <summary>
    /// The host's link to <paramref name="peer"/> went down (<see cref="INodeHost.IsLinkDown"/> turned true): the core
    /// hears of it (<see cref="RaftNode.ReportUnreachable"/>), so a quiet cluster returns to the normal pace.
    /// </summary>
    public void LinkDown(ulong peer) => _node.ReportUnreachable(peer);

    /// <summary>
    /// Advances the node's logical clock by <paramref name="ticks"/> ticks: the ticks that elapsed since the last
    /// call, after the owner handed the node every message that arrived meanwhile. At most one less than an election
    /// timeout is caught up at once: a loop held up (a long fsync, a GC pause) is no sign that the leader or a quorum
    /// went silent, and its messages queued in the meantime were just handled. Catching up more would let one hold-up
    /// start an election on a follower that heard from its leader, or make a leader that heard from its quorum see
    /// a whole check-quorum period with nobody (§6.2) and step down.
    /// </summary>
    public void Tick(int ticks = 1)
    {
        ticks = Math.Min(ticks, Math.Max(1, _node.ElectionTicksInEffect - 1));
        for (int i = 0; i < ticks; i++) _node.Tick();
        ReportDiskAlarm(ticks);
        ExpireSnapshotTransfers();
        ExpireForwards(ticks);
        MaybePromoteLearner();
    }

    /// <summary>
    /// Proposes <paramref name="command"/>; <paramref name="completion"/> gets the state machine's result once it is
    /// applied, or <see cref="NotLeaderException"/>, <see cref="NodeOverloadedException"/>,
    /// <see cref="LeadershipTransferringException"/> (not proposed),
    /// <see cref="ProposalDroppedException"/> (not applied) or <see cref="ProposalOutcomeUnknownException"/>.
    /// Returns what the core said: where the entry went, or why it was refused; Accepted at index 0 when pacing holds
    /// the command back (<see cref="NodeDriverOptions.MaxProposalBytesInFlight"/>): it is proposed once there is room.
    /// </summary>
    public ProposeResult Propose(ReadOnlyMemory<byte> command, TaskCompletionSource<object?> completion)
    {
        ArgumentNullException.ThrowIfNull(completion);
        Counters.Proposed();
        switch (Hold(command, completion, 0, 0))
        {
            case HoldOutcome.Held:
                return new ProposeResult(ProposeStatus.Accepted, 0, 0, 0);
            case HoldOutcome.Refused:
                completion.TrySetException(new NodeOverloadedException(HeldFullMessage));
                return new ProposeResult(ProposeStatus.Overloaded, 0, 0, 0);
            default:
                return ProposeNow(command, completion);
        }
    }

    /// <summary>Proposes a command of this node's caller to the core now (it was not held back, or no longer is).</summary>
    private ProposeResult ProposeNow(ReadOnlyMemory<byte> command, TaskCompletionSource<object?> completion)
    {
        var r = _node.Propose(command);
        switch (r.Status)
        {
            case ProposeStatus.Accepted:
                FailReplacedProposal(r.Index);
                AddProposal(r.Index, new PendingProposal(r.Term, completion, 0, 0, command.Length));
                break;
            case ProposeStatus.NotLeader:
                completion.TrySetException(new NotLeaderException(r.LeaderHint));
                break;
            case ProposeStatus.TooLarge:
                completion.TrySetException(new CommandTooLargeException(command.Length, _raftOptions.MaxEntryBytes));
                break;
            case ProposeStatus.Transferring:
                completion.TrySetException(new LeadershipTransferringException(_node.LeadTransferee));
                break;
            default:
                completion.TrySetException(new NodeOverloadedException("too many uncommitted bytes"));
                break;
        }
        return r;
    }

    /// <summary>
    /// Runs <paramref name="query"/> at a linearizable point (thesis §6.4): once a quorum confirmed leadership and the
    /// state machine applied everything committed before the read began. Works on followers too.
    /// </summary>
    public void Read(Func<object?> query, TaskCompletionSource<object?> completion)
    {
        ArgumentNullException.ThrowIfNull(query);
        ArgumentNullException.ThrowIfNull(completion);
        Counters.Read();
        var context = unchecked(++_nextReadContext);
        var rr = _node.ReadIndex(context);
        switch (rr.Status)
        {
            case ProposeStatus.Accepted:
                _unconfirmedReads[context] = new PendingRead(query, completion);
                break;
            case ProposeStatus.NotLeader:
                completion.TrySetException(new NotLeaderException(rr.LeaderHint));
                break;
            default:
                completion.TrySetException(new NodeOverloadedException("too many pending reads"));
                break;
        }
    }

    /// <summary>The background write of <paramref name="job"/> ended: on success the log is compacted behind it.</summary>
    public void CompleteSnapshot(SnapshotJob job)
    {
        ArgumentNullException.ThrowIfNull(job);
        if (!ReferenceEquals(job, _snapshotInProgress)) throw new InvalidOperationException("not the snapshot in progress");
        if (_logSync is not null)
        {
            // Compacting writes to the log, which must stay as it is while its fsync runs: after it.
            _snapshotAfterSync = job;
            return;
        }
        _snapshotInProgress = null;
        if (job.Error is { } error)
        {
            // The snapshot is lost, not the node: the log still holds everything. Disk errors show up in the log's
            // own fsyncs, which do stop the node.
            LogSnapshotFailed(_logger, _raftOptions.Id, job.Metadata.Index, error);
            return;
        }
        var started = _host.Time.GetTimestamp();
        try
        {
            CompactBehind(job.Metadata);
        }
        finally
        {
            Counters.SnapshotTook(_host.Time.GetTimestamp() - started);
        }
    }

    private void CompactBehind(SnapshotMetadata metadata)
    {
        Counters.SnapshotTaken();
        // A snapshot installed from the leader meanwhile may already cover this one.
        if (metadata.Index <= _storage.Log.Snapshot.Index) return;
        _observer?.SnapshotTaken(metadata);
        // Keep a tail of entries so a follower a little behind is caught up from the log, not with a snapshot: at most
        // SnapshotRetainEntries entries and SnapshotRetainBytes bytes of them.
        var compactTo = metadata.Index > _options.SnapshotRetainEntries ? metadata.Index - _options.SnapshotRetainEntries : 0;
        while (_applyCheckpoints.TryPeek(out var checkpoint) && checkpoint.Index <= metadata.Index
            && _appliedBytesAtSnapshot - checkpoint.AppliedBytes > _options.SnapshotRetainBytes)
        {
            compactTo = Math.Max(compactTo, checkpoint.Index);
            _applyCheckpoints.Dequeue();
        }
        if (compactTo > _storage.Log.Snapshot.Index && _node.TryGetEntry(compactTo, out var e))
        {
            // The record is written here; its fsync and the deletion of the files it frees run off the loop when the
            // host can, like a Ready's fsync, and the log is not written again until they are back.
            var sync = _storage.CompactUnsynced(new SnapshotMetadata(compactTo, e.Term) { Configuration = _node.ConfigurationAt(compactTo) });
            var job = new LogSyncJob(null, false, sync, _host.Time.GetTimestamp());
            if (sync.IsNeeded && _host.TrySyncLogInBackground(job))
            {
                _logSync = job;
            }
            else
            {
                job.Run();
                _storage.CompleteSync(sync);
            }
        }
        LogSnapshotTaken(_logger, _raftOptions.Id, metadata.Index, metadata.Term, _storage.Log.FirstIndex);
    }

    // ---- the Ready ----

    /// <summary>
    /// Handles the Readies the core has, in the order Raft requires, until at least
    /// <see cref="NodeDriverOptions.MaxApplyBytesPerStep"/> bytes of commands were applied: then the rest waits for the
    /// next call (<see cref="HasPendingReady"/>), so that the owner hands the node the messages that arrived meanwhile
    /// (heartbeats, acknowledgements, votes) before it applies more. An exception means the node must stop.
    /// </summary>
    public void ProcessReady()
    {
        do
        {
            ProcessReadies();
        }
        while (ProposeHeld()); // what was applied made room for held-back proposals: their entries make a new Ready
        MaybeTakeSnapshot();
        _host.BeforeCompletingChanges();
        CheckTransfer();
        CheckMembershipChanges();
    }

    /// <summary>Whether the core has a Ready that <see cref="ProcessReady"/> left for its next call.</summary>
    public bool HasPendingReady => _logSync is null && _node.HasReady(); // a running fsync hands its job back as an input

    private void ProcessReadies()
    {
        var node = _node;
        if (_logSync is not null)
        {
            // A Ready's fsync runs: what needs none of it to be durable goes now (heartbeats and their answers above
            // all, so that a long fsync does not look like a dead node), the rest waits for the Ready to be back.
            // Applied first: the proposals it completes are answered while the loop sends (the commit, above all).
            ApplyBeforeDurable(_appliedBytes);
            var early = node.TakeMessagesBeforeDurable();
            if (early.Count > 0) Send(early);
            return;
        }
        var appliedBefore = _appliedBytes;
        while (node.HasReady() && _appliedBytes - appliedBefore < _options.MaxApplyBytesPerStep)
        {
            var ready = node.GetReady();
            Counters.Ready();
            // Thesis §10.2.1: a leader may send appends in parallel with its own write, since it counts itself only
            // once durable. Anything answering a vote must wait for the vote to be durable, hence the term/vote check.
#if MUTATION_SENDBEFOREPERSIST
            var sendFirst = true; // the bug: votes and acknowledgements leave before what they promise is durable
#else
            var sendFirst = node.Role == Role.Leader
                && (ready.HardState is not { } h || (h.Term == _persistedHardState.Term && h.Vote == _persistedHardState.Vote));
#endif
            if (sendFirst) Send(ready.Messages);
            if (ready.Snapshot is { } snapshot) InstallSnapshot(snapshot);
            if (ready.HardState is not null || ready.Entries.Count > 0)
            {
                var saving = _host.Time.GetTimestamp();
                if (ready.MustSync && ready.Snapshot is null)
                {
                    // Written here, fsynced off the loop when the host can: the loop answers heartbeats meanwhile.
                    var job = new LogSyncJob(ready, sendFirst, _storage.SaveUnsynced(ready.HardState, ready.Entries), saving);
                    Counters.SaveTook(_host.Time.GetTimestamp() - saving);
                    if (job.Sync.IsNeeded && _host.TrySyncLogInBackground(job))
                    {
                        _logSync = job;
                        // Committed entries are final whatever this node's disk does: applied while the fsync runs.
                        ApplyReady(ready);
                        job.AppliedFirst = true;
                        ApplyBeforeDurable(appliedBefore); // within this step's apply bound, with what it applied so far
                        return;
                    }
                    job.Run();
                    Synced(job);
                    continue;
                }
                _storage.Save(ready.HardState, ready.Entries, ready.MustSync);
                var saveEnd = _host.Time.GetTimestamp();
                Counters.SaveTook(saveEnd - saving);
                Counters.Saved(ready.Entries.Count, ready.MustSync, _host.Time.GetElapsedTime(saving, saveEnd));
                if (ready.HardState is { } saved) _persistedHardState = saved;
                _observer?.Persisted(ready.HardState, ready.Entries);
            }
            FinishReady(ready, sendFirst);
        }
    }

    /// <summary>
    /// The fsync of the outstanding Ready (<see cref="INodeHost.TrySyncLogInBackground"/>) ended: the Ready is
    /// finished (messages sent, committed entries applied, the core advanced), and what waited for it goes on. Throws
    /// when the fsync failed: the node must stop. Call <see cref="ProcessReady"/> next, as after any input.
    /// </summary>
    public void CompleteLogSync(LogSyncJob job)
    {
        ArgumentNullException.ThrowIfNull(job);
        if (!ReferenceEquals(job, _logSync)) throw new InvalidOperationException("not the log fsync in progress");
        _logSync = null;
        if (job.Ready is null) _storage.CompleteSync(job.Sync); // a compaction's (throws if it failed)
        else Synced(job);
        if (_installAfterSync is { } deferred)
        {
            _installAfterSync = null;
            StepInstall(deferred.Install, deferred.Received);
        }
        if (_snapshotAfterSync is { } snapshot)
        {
            _snapshotAfterSync = null;
            CompleteSnapshot(snapshot);
        }
    }

    /// <summary>A Ready's write is durable: record it and finish the Ready.</summary>
    private void Synced(LogSyncJob job)
    {
        _storage.CompleteSync(job.Sync); // throws if the fsync failed
        var ready = job.Ready!;
        Counters.Saved(ready.Entries.Count, true, _host.Time.GetElapsedTime(job.StartedAt));
        if (ready.HardState is { } saved) _persistedHardState = saved;
        _observer?.Persisted(ready.HardState, ready.Entries);
        FinishReady(ready, job.SentFirst, job.AppliedFirst);
    }

    /// <summary>What follows a Ready's persisting, in order: send, apply, release reads, advance the core.</summary>
    private void FinishReady(Ready ready, bool sentFirst, bool appliedFirst = false)
    {
        var node = _node;
        if (!sentFirst) Send(ready.Messages);
        if (!appliedFirst) ApplyReady(ready);
        foreach (var rs in ready.ReadStates)
        {
            if (_unconfirmedReads.Remove(rs.Context, out var read)) _confirmedReads.Enqueue(read, rs.Index);
        }
        node.Advance(ready);
        ServeConfirmedReads(_applied);
        if (ready.SoftState is { } soft) OnSoftStateChanged(soft);
        foreach (var (peer, succeeded) in _snapshotReports) node.ReportSnapshot(peer, succeeded);
        _snapshotReports.Clear();
    }

    /// <summary>Fails every waiting caller with <paramref name="error"/> (the node stops).</summary>
    public void FailAll(Exception error)
    {
        foreach (var (_, p) in _proposals) Fail(p, error);
        _proposals.Clear();
        _proposedBytesInFlight = 0;
        FailHeld(error);
        FailForwards(error);
        FailTransfer(error);
        FailMembershipChanges(error);
        foreach (var (_, r) in _unconfirmedReads) r.Completion.TrySetException(error);
        _unconfirmedReads.Clear();
        while (_confirmedReads.TryDequeue(out var r, out _)) r.Completion.TrySetException(error);
    }

    /// <summary>Releases files held by snapshot transfers; the storage is the owner's to close.</summary>
    public void Dispose()
    {
        foreach (var transfer in _outgoingSnapshots.Values) transfer.Dispose();
        _outgoingSnapshots.Clear();
        _incomingSnapshot?.Dispose();
        _incomingSnapshot = null;
        _installAfterSync?.Received?.Dispose();
        _installAfterSync = null;
    }

    private void Send(IReadOnlyList<RaftMessage> messages)
    {
        var covered = CoveredAcknowledgements(messages);
        Counters.Sent(messages.Count - covered.Count);
        for (int i = 0; i < messages.Count; i++)
        {
            if (covered.Count > 0 && covered.Contains(i)) continue;
            if (messages[i] is InstallSnapshot install) StartSnapshotTransfer(install.To);
            else _host.Send(messages[i]);
        }
    }

    /// <summary>
    /// The positions in <paramref name="messages"/> of the successful append acknowledgements that a later one in the
    /// same batch covers: to the same leader, in the same term, for an index at least as high. A follower that took
    /// several appends in one iteration persists them with one write and one fsync and so answers each in the same
    /// Ready; the leader needs only the last (it frees its window and advances the follower's match by index), and
    /// leaving out the others is no more than the network losing them, which Raft tolerates. Under load this cuts
    /// a fifth to a third of the peer messages a publish (docs/benchmarks.md, "Covered acknowledgements"). Rejections, heartbeats
    /// and everything else go as they are. Empty (the shared instance) in the common case of one acknowledgement.
    /// </summary>
    private HashSet<int> CoveredAcknowledgements(IReadOnlyList<RaftMessage> messages)
    {
        _coveredAcks.Clear();
        int acks = 0;
        for (int i = 0; i < messages.Count && acks < 2; i++)
        {
            if (messages[i] is AppendEntriesResponse { Reject: false }) acks++;
        }
        if (acks < 2) return _coveredAcks;
        _laterAcks.Clear();
        for (int i = messages.Count - 1; i >= 0; i--)
        {
            if (messages[i] is not AppendEntriesResponse { Reject: false } ack) continue;
            var k = _laterAcks.Count - 1;
            while (k >= 0 && (_laterAcks[k].To != ack.To || _laterAcks[k].Term != ack.Term)) k--;
            if (k < 0) _laterAcks.Add((ack.To, ack.Term, ack.Index));
            else if (_laterAcks[k].Index >= ack.Index) _coveredAcks.Add(i);
            else _laterAcks[k] = (ack.To, ack.Term, ack.Index);
        }
        return _coveredAcks;
    }

    /// <summary>
    /// Answers the proposals the Ready's entries replaced, then applies its committed entries. Neither needs the
    /// Ready's write to be durable.
    /// </summary>
    private void ApplyReady(Ready ready)
    {
        // A leader never overwrites its log (§5.3); anyone else may have just replaced entries this node proposed.
        if (_proposals.Count > 0 && _node.Role != Role.Leader && (ready.Entries.Count > 0 || ready.Snapshot is not null))
            DropOverwrittenProposals();
        ApplyTimed(ready.CommittedEntries);
    }

    /// <summary>
    /// While a Ready's fsync runs, applies the entries committed since (a leader's followers acknowledged them before
    /// its own fsync ended), until the step has applied <see cref="NodeDriverOptions.MaxApplyBytesPerStep"/> bytes since
    /// <paramref name="appliedBefore"/>, and serves the reads they release.
    /// </summary>
    private void ApplyBeforeDurable(long appliedBefore)
    {
        while (_appliedBytes - appliedBefore < _options.MaxApplyBytesPerStep)
        {
            var entries = _node.TakeCommittedBeforeDurable(_raftOptions.MaxBytesPerApplyBatch);
            if (entries.Count == 0) break;
            ApplyTimed(entries);
        }
        ServeConfirmedReads(_applied);
    }

    private void ApplyTimed(IReadOnlyList<Entry> entries)
    {
        if (entries.Count == 0) return;
        var applying = _host.Time.GetTimestamp();
        Apply(entries);
        Counters.ApplyTook(_host.Time.GetTimestamp() - applying);
        Counters.Applied(entries.Count);
    }

    private void Apply(IReadOnlyList<Entry> entries)
    {
        foreach (var e in entries)
        {
            object? result = null;
            if (e.Type == EntryType.Command) result = _stateMachine.Apply(e.Index, e.Data);
            _bytesSinceSnapshot += e.Data.Length;
            _appliedBytes += e.Data.Length;
            if (_appliedBytes - _lastCheckpointBytes >= CheckpointBytes)
            {
                // Bounded: dropping the oldest checkpoint can only make a compaction keep more, never less.
                if (_applyCheckpoints.Count >= MaxApplyCheckpoints) _applyCheckpoints.Dequeue();
                _applyCheckpoints.Enqueue((e.Index, _appliedBytes));
                _lastCheckpointBytes = _appliedBytes;
            }
            _applied = e.Index;
            _observer?.Applied(e);
            if (RemoveProposal(e.Index, out var p))
            {
                if (p.Term == e.Term) Succeed(p, result);
                else Fail(p, new ProposalDroppedException(e.Index));
            }
        }
    }

    /// <summary>
    /// Answers a pending proposal of an earlier leadership of this node at <paramref name="index"/>, which this node,
    /// leading again, has just proposed a new entry at: the old entry is no longer in this log, but a later leader
    /// that holds it may still commit it (see <see cref="DropOverwrittenProposals"/>), so its outcome is unknown.
    /// </summary>
    private void FailReplacedProposal(ulong index)
    {
        if (RemoveProposal(index, out var replaced)) Fail(replaced, new ProposalOutcomeUnknownException(index, UnknownReason.LeaderLost));
    }

    /// <summary>
    /// Answers the proposals whose entries are no longer in the log: replaced by another leader's entry at their
    /// index, or cut off behind a shorter log. Where the entry now at the index is committed, the proposal was
    /// certainly not applied (<see cref="ProposalDroppedException"/>: the caller may propose again). Otherwise the
    /// outcome is unknown: a leader of a later term that still holds the replaced entry may commit it yet (thesis
    /// Figure 3.7: a node that got it wins a later election with the votes of nodes that never got the new entry).
    /// Answering those "not applied" made the runtime propose the command again, and both copies could be applied (a
    /// receive leased twice: queue simulator seed 66001970). Without an answer here the caller would wait until the
    /// log grew back to the index.
    /// </summary>
    private void DropOverwrittenProposals()
    {
        List<ulong>? dropped = null;
        foreach (var (index, p) in _proposals)
        {
            if (index <= _node.FirstIndex - 1) continue; // compacted: answered at apply or at the snapshot install
            if (index > _node.LastIndex || !_node.TryGetEntry(index, out var e) || e.Term != p.Term) (dropped ??= []).Add(index);
        }
        if (dropped is null) return;
        foreach (var index in dropped)
        {
            RemoveProposal(index, out var p);
            Fail(p, index <= _node.CommitIndex
                ? new ProposalDroppedException(index)
                : new ProposalOutcomeUnknownException(index, UnknownReason.LeaderLost));
        }
    }

    private void ServeConfirmedReads(ulong applied)
    {
        while (_confirmedReads.TryPeek(out var read, out var index) && index <= applied)
        {
            _confirmedReads.Dequeue();
            try
            {
                read.Completion.TrySetResult(read.Query());
            }
            catch (Exception e)
            {
                read.Completion.TrySetException(e);
            }
        }
    }

    private void OnSoftStateChanged(SoftState soft)
    {
        LogRoleChanged(_logger, _raftOptions.Id, soft.Role, soft.Term, soft.Leader);
        ExpireForwards(0); // forwards to a leader that is gone need not wait for the next tick
        ForgetPeerAlarms(); // a new leadership, or none: followers report again to whoever leads
        if (soft.Role != Role.Leader && _outgoingSnapshots.Count > 0)
        {
            foreach (var transfer in _outgoingSnapshots.Values) transfer.Dispose();
            _outgoingSnapshots.Clear();
        }
        // A read not yet confirmed may never be: its heartbeat round or forwarded request belongs to the old leader.
        if (_unconfirmedReads.Count > 0)
        {
            foreach (var (_, read) in _unconfirmedReads) read.Completion.TrySetException(new ReadAbortedException());
            _unconfirmedReads.Clear();
        }
        SoftStateChanged?.Invoke(soft);
    }

    // ---- snapshots (§7) ----

    /// <summary>Once enough was applied, captures the state machine on the loop and has the host write it off the loop.</summary>
    private void MaybeTakeSnapshot()
    {
        if (_snapshotInProgress is not null) return;
        var applied = _applied;
        var due = applied - _lastSnapshotIndex >= _options.SnapshotEveryEntries || _bytesSinceSnapshot >= _options.SnapshotEveryBytes;
        if (!due || applied <= _lastSnapshotIndex || !_node.TryGetEntry(applied, out var last)) return;
        // Entries applied during a Ready's fsync (ApplyBeforeDurable) are written but may not be durable yet, so this
        // snapshot can be past the durable log. Its compaction waits for the fsync (CompleteSnapshot), and a crash
        // before the fsync ends restarts the node from the snapshot with an empty log after it (NodeStorage.Open
        // installs a snapshot newer than the log), as if the leader had sent it: it holds committed entries only.
        // The configuration goes with the snapshot, so that a node whose log is compacted behind it recovers it.
        var started = _host.Time.GetTimestamp();
        var metadata = new SnapshotMetadata(applied, last.Term) { Configuration = _node.ConfigurationAt(applied) };
        var writer = _storage.CreateSnapshot(metadata);
        IStateMachineSnapshot captured;
        try
        {
            captured = _stateMachine.CaptureSnapshot();
        }
        catch
        {
            writer.Dispose();
            throw;
        }
        _lastSnapshotIndex = applied;
        _bytesSinceSnapshot = 0;
        _appliedBytesAtSnapshot = _appliedBytes;
        _snapshotInProgress = new SnapshotJob(metadata, captured, writer);
        Counters.SnapshotTook(_host.Time.GetTimestamp() - started);
        _host.WriteSnapshotInBackground(_snapshotInProgress);
    }

    /// <summary>Installs a snapshot the core adopted: the log starts after it and the state machine is rebuilt from it.</summary>
    private void InstallSnapshot(SnapshotMetadata snapshot)
    {
        using var stream = _storage.OpenLatestSnapshot()
            ?? throw new InvalidOperationException($"snapshot {snapshot} was adopted but is not in the store");
        if (stream.Metadata != snapshot)
            throw new InvalidOperationException($"snapshot {snapshot} was adopted but the store's newest is {stream.Metadata}");
        _storage.Log.InstallSnapshot(snapshot);
        _stateMachine.RestoreSnapshot(stream);
        _lastSnapshotIndex = Math.Max(_lastSnapshotIndex, snapshot.Index);
        _applied = snapshot.Index;
        _bytesSinceSnapshot = 0;
        _applyCheckpoints.Clear();
        // The entries these proposals were waiting for are inside the snapshot: whether each was this node's
        // proposal or another leader's cannot be told any more.
        foreach (var index in _proposals.Keys.Where(i => i <= snapshot.Index).ToList())
        {
            RemoveProposal(index, out var p);
            Fail(p, new ProposalOutcomeUnknownException(index));
        }
        _observer?.SnapshotRestored(snapshot, atStartup: false);
        LogSnapshotInstalled(_logger, _raftOptions.Id, snapshot.Index, snapshot.Term);
    }

    private void StartSnapshotTransfer(ulong peer)
    {
        if (_outgoingSnapshots.Remove(peer, out var previous)) previous.Dispose();
        // The newest snapshot is at least as new as the point the log was compacted to, which is all the follower needs.
        var stream = _storage.OpenLatestSnapshot();
        if (stream is null)
        {
            _snapshotReports.Add((peer, false));
            return;
        }
        var transfer = new OutgoingSnapshot(peer, stream, _options.SnapshotChunkBytes, _host.Time.GetTimestamp());
        _outgoingSnapshots[peer] = transfer;
        LogSnapshotSending(_logger, _raftOptions.Id, peer, stream.Metadata.Index, stream.Length);
        _host.Send(transfer.Probe(_node.Id, _node.Term));
    }

    private void ContinueSnapshotTransfer(SnapshotChunkResponse response)
    {
        if (!_outgoingSnapshots.TryGetValue(response.From, out var transfer) || transfer.Snapshot != response.Snapshot) return;
        if (!transfer.TakeResponse(response)) return;
        if (response.Failed || _node.Role != Role.Leader || response.Term > _node.Term)
        {
            EndSnapshotTransfer(transfer, succeeded: false);
            return;
        }
        var next = transfer.Next(response, _node.Id, _node.Term, _host.Time.GetTimestamp());
        if (next is null) EndSnapshotTransfer(transfer, succeeded: true);
        else _host.Send(next);
    }

    private void EndSnapshotTransfer(OutgoingSnapshot transfer, bool succeeded)
    {
        _outgoingSnapshots.Remove(transfer.Peer);
        transfer.Dispose();
        _node.ReportSnapshot(transfer.Peer, succeeded);
    }

    private void ExpireSnapshotTransfers()
    {
        if (_outgoingSnapshots.Count == 0) return;
        foreach (var transfer in _outgoingSnapshots.Values.ToList())
        {
            if (_node.Role != Role.Leader || _host.Time.GetElapsedTime(transfer.LastActivity) > _options.SnapshotTransferTimeout)
                EndSnapshotTransfer(transfer, succeeded: false);
        }
    }

    private void ReceiveSnapshotChunk(SnapshotChunk chunk)
    {
        var node = _node;
        if (chunk.Term < node.Term)
        {
            _host.Send(new SnapshotChunkResponse(node.Id, chunk.From, node.Term, chunk.Snapshot, 0, true));
            return;
        }
        if (_incomingSnapshot is null || _incomingSnapshot.Snapshot != chunk.Snapshot)
        {
            if (chunk.Offset != 0)
            {
                // Not the transfer we hold: ask for it from the start.
                _host.Send(new SnapshotChunkResponse(node.Id, chunk.From, node.Term, chunk.Snapshot, 0, false));
                return;
            }
            _incomingSnapshot?.Dispose();
            _incomingSnapshot = new IncomingSnapshot(chunk.Snapshot, _storage.CreateSnapshot(chunk.Snapshot));
        }
        var incoming = _incomingSnapshot;
        if (incoming.Accept(chunk))
        {
            _incomingSnapshot = null;
            var install = new InstallSnapshot(chunk.From, node.Id, chunk.Term, chunk.Snapshot);
            if (_logSync is null) StepInstall(install, incoming);
            else DeferInstall(install, incoming); // after the outstanding Ready, which the core must advance first
        }
        _host.Send(new SnapshotChunkResponse(node.Id, chunk.From, node.Term, chunk.Snapshot, incoming.Received, false));
    }

    private void DeferInstall(InstallSnapshot install, IncomingSnapshot? received)
    {
        // Only the newest counts; the core never saw the one it replaces, whose file is discarded.
        _installAfterSync?.Received?.Dispose();
        _installAfterSync = (install, received);
    }

    /// <summary>
    /// Tells the core a snapshot is here, and commits its file to the store only if the core adopted it. The store's
    /// newest snapshot is what the node restarts from and what <see cref="InstallSnapshot"/> restores, so one the
    /// core refused (its leader's term ended while it waited for a fsync, or this node's commit had passed it) must
    /// not be left there: a later snapshot the core adopts could be older than it.
    /// </summary>
    private void StepInstall(InstallSnapshot install, IncomingSnapshot? received)
    {
        try
        {
            _node.Step(install);
            if (received is not null && _node.PendingSnapshot == install.Snapshot) received.Commit();
        }
        finally
        {
            received?.Dispose();
        }
    }

    /// <summary>
    /// A proposal waiting for its entry: this node's caller's (<paramref name="Completion"/>), or one forwarded by
    /// node <paramref name="ForwardedBy"/> as its request <paramref name="RequestId"/> (Completion null).
    /// </summary>
    private readonly record struct PendingProposal(
        ulong Term, TaskCompletionSource<object?>? Completion, ulong ForwardedBy, ulong RequestId, int Bytes);

    private sealed record PendingRead(Func<object?> Query, TaskCompletionSource<object?> Completion);

    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "Node {Id} started: term {Term}, last index {LastIndex}, commit {Commit}")]
    private static partial void LogStarted(ILogger logger, ulong id, ulong term, ulong lastIndex, ulong commit);

    [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "Node {Id} is {Role} in term {Term}; leader {Leader}")]
    private static partial void LogRoleChanged(ILogger logger, ulong id, Role role, ulong term, ulong leader);

    [LoggerMessage(EventId = 5, Level = LogLevel.Information, Message = "Node {Id} restored the state machine from snapshot {Index} (term {Term})")]
    private static partial void LogSnapshotRestored(ILogger logger, ulong id, ulong index, ulong term);

    [LoggerMessage(EventId = 6, Level = LogLevel.Information, Message = "Node {Id} took snapshot {Index} (term {Term}); log now starts at {FirstIndex}")]
    private static partial void LogSnapshotTaken(ILogger logger, ulong id, ulong index, ulong term, ulong firstIndex);

    [LoggerMessage(EventId = 7, Level = LogLevel.Information, Message = "Node {Id} installed snapshot {Index} (term {Term}) from the leader")]
    private static partial void LogSnapshotInstalled(ILogger logger, ulong id, ulong index, ulong term);

    [LoggerMessage(EventId = 8, Level = LogLevel.Information, Message = "Node {Id} sending snapshot {Index} ({Bytes} bytes) to node {Peer}")]
    private static partial void LogSnapshotSending(ILogger logger, ulong id, ulong peer, ulong index, long bytes);

    [LoggerMessage(EventId = 9, Level = LogLevel.Warning, Message = "Node {Id} could not write snapshot {Index}; the log keeps the entries")]
    private static partial void LogSnapshotFailed(ILogger logger, ulong id, ulong index, Exception exception);
}

using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using RaftMQ.Raft;
using RaftMQ.Storage;
using RaftMQ.Transport;

namespace RaftMQ.Runtime;

/// <summary>
/// Runs one Raft node: a single loop owns the <see cref="NodeDriver"/> (the consensus core, the storage and the
/// state machine). Everything that touches them — peer messages, ticks, proposals, reads, finished snapshot writes —
/// is posted to the loop's bounded inbox. One iteration takes a batch of inputs, then lets the driver persist, send,
/// apply and complete waiting callers. A Ready's fsync runs on a thread of its own (<see cref="LogSyncThread"/>) while
/// the loop goes on taking inputs, which the next Ready writes together; snapshots are written on the thread pool.
/// <para>
/// The loop has no thread of its own. A thread that posts an input and finds the loop idle runs one iteration itself
/// (the connection's reader with a peer's message, the request's handler with a proposal, the fsync thread with its
/// finished job, the alarm); work left after that goes on in one thread-pool work item, which runs while there is
/// input, as a dedicated loop would. At most one thread runs the loop at a time (<see cref="_running"/>). So an input
/// that finds the loop idle costs no thread wake-up at all (docs/runtime.md, "Who runs the loop").
/// </para>
/// </summary>
public sealed partial class RaftRuntime : IAsyncDisposable, INodeHost
{
    private readonly RaftRuntimeOptions _options;
    private readonly NodeStorage _storage;
    private readonly IStateMachine _stateMachine;
    private readonly ITransport _transport;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Channel<Input> _inbox;
    private readonly CancellationTokenSource _stop = new();
    private NodeDriver? _driver;
    private LoopAlarm? _alarm;
    private TaskCompletionSource? _done; // completes when the loop has stopped: normally, or faulted when the node failed
    private int _running; // 1 while a thread runs the loop (or a work item to run it is queued); 1 for good once it stopped
    private bool _firstReadyDone; // loop only: the first run publishes the views before taking any input
    private readonly Action<RaftRuntime> _runQueued = static runtime => runtime.RunLoop(int.MaxValue);
    private int _wakePending; // 1 while the timer's wake-up waits in the inbox
    private long _lastTick; // the loop's clock: the timestamp up to which ticks were counted
    private long _ticksOwed; // ticks counted before an iteration's inputs but given to the core only after them
    private long _timerDue; // when the timer is set to wake the loop (a timestamp); loop thread only
    private long _lastSlowLog;
    private long _readerViewTicks; // loop only: time spent in PublishReaderView, in the TimeProvider's ticks
    private long _lastSlowFsyncLog;
    private volatile DiskAlarmReport? _peerDiskAlarm;
    private ulong _transferee; // the loop's last view of the core's transfer target
    private long _droppedPeerMessages;
    private int _disposed;
    private TaskCompletionSource _softStateChanged = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile RaftStatus _status;
    private volatile PeerReplication[] _replication = [];
    private long _leaderChanges;
    private RuntimeInstruments? _instruments;
    private LogSyncThread? _logSyncThread;

    public RaftRuntime(
        RaftRuntimeOptions options, NodeStorage storage, IStateMachine stateMachine, ITransport transport,
        TimeProvider? timeProvider = null, ILogger<RaftRuntime>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        _storage = storage;
        _stateMachine = stateMachine;
        _transport = transport;
        _time = timeProvider ?? TimeProvider.System;
        _logger = (ILogger?)logger ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
        _inbox = Channel.CreateBounded<Input>(new BoundedChannelOptions(options.InboxCapacity)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
        _status = new RaftStatus(options.Raft.Id, Role.Follower, storage.Log.HardState.Term, 0, storage.Log.HardState.Commit, 0, storage.Log.LastIndex);
    }

    /// <summary>
    /// The node's state, refreshed at the end of every loop iteration, before the iteration completes membership
    /// changes and transfers. A proposal completes as its entry is applied, mid-iteration, so its index can be past
    /// <see cref="RaftStatus.AppliedIndex"/> until the iteration ends.
    /// </summary>
    public RaftStatus Status => _status;

    /// <summary>What the loop has done so far (log writes and syncs, messages, entries applied, ...).</summary>
    public RuntimeCounters Counters => _driver?.Counters ?? _idleCounters;

    private readonly RuntimeCounters _idleCounters = new();

    /// <summary>On the leader, each other member's replication as of the last loop iteration; empty elsewhere.</summary>
    public IReadOnlyList<PeerReplication> Replication => _replication;

    /// <summary>Times this node saw the leader it knows change (to another node, or to none).</summary>
    public long LeaderChanges => Interlocked.Read(ref _leaderChanges);

    /// <summary>
    /// While this node leads: the report of a peer whose disk alarm is on (<see cref="NodeDriver.PeerDiskAlarm"/>), as
    /// of the last loop iteration; null when no peer reported one. Thread-safe.
    /// </summary>
    public DiskAlarmReport? PeerDiskAlarm => _peerDiskAlarm;

    /// <summary>Peer messages dropped because the inbox was full (Raft retries them).</summary>
    public long DroppedPeerMessages => Interlocked.Read(ref _droppedPeerMessages);

    /// <summary>Completes when the loop ends: normally on shutdown, faulted when the node failed (e.g. an fsync error).</summary>
    public Task Completion => _done?.Task ?? Task.CompletedTask;

    /// <summary>Builds the driver (state machine from the newest snapshot, core over the log) and starts the loop and the tick timer.</summary>
    public void Start()
    {
        if (_done is not null) throw new InvalidOperationException("Already started.");
        LogRecovery(_logger, _options.Raft.Id, _storage.Recovery.ToString());
        // Read contexts start at a random point in every run, so a late answer to a read of an earlier run of this
        // node can never confirm one of this run.
        var readContextSeed = BitConverter.ToUInt64(System.Security.Cryptography.RandomNumberGenerator.GetBytes(8));
        _driver = new NodeDriver(_options.Raft, _options.Node, _storage, _stateMachine, this, readContextSeed, _logger);
        if (_options.PromoteCaughtUpLearners) _driver.PromoteCaughtUpLearners = true;
        _instruments = new RuntimeInstruments(this);
        _driver.Counters.Instruments = _instruments;
        _driver.SoftStateChanged += OnSoftStateChanged;
        _logSyncThread = new LogSyncThread($"raftmq-fsync-{_options.Raft.Id}", OnLogSynced);
        // No fixed tick: the loop gives the core the ticks that passed whenever it wakes, and sets this alarm for the
        // next tick that does something (ScheduleWake).
        _lastTick = _time.GetTimestamp();
        _timerDue = _lastTick + TicksToTimestamp(1);
        _alarm = new LoopAlarm($"raftmq-alarm-{_options.Raft.Id}", _time, OnTimer);
        _alarm.Set(_timerDue);
        _done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _running = 1; // the first run is queued: it publishes the views before any input
        ThreadPool.UnsafeQueueUserWorkItem(_runQueued, this, preferLocal: false);
        _transport.SetReceiver(Deliver); // straight from the connection's reader into the inbox: no extra hop
        _transport.SetLinkDownHandler(OnLinkDown);
    }

    TimeProvider INodeHost.Time => _time;

    void INodeHost.Send(RaftMessage message) => _transport.Send(message);

    bool INodeHost.IsLinkDown(ulong peer) => _transport.IsLinkDown(peer);

    void INodeHost.WriteSnapshotInBackground(SnapshotJob job) =>
        _ = Task.Run(async () =>
        {
            job.Write();
            _instruments?.SnapshotWritten(job);
            try
            {
                // Waits for room like a proposal: the loop must get the job back to take the next snapshot.
                await _inbox.Writer.WriteAsync(new SnapshotWrittenInput(job), _stop.Token).ConfigureAwait(false);
                RunLoopIfIdle();
            }
            catch (Exception e) when (e is OperationCanceledException or ChannelClosedException or ObjectDisposedException)
            {
                // The node stopped; nothing waits for the job.
            }
        });

    /// <summary>
    /// Publishes what callers read outside the loop (<see cref="Status"/>, the readers' view, the transfer and the
    /// configurations) at the end of every <see cref="NodeDriver.ProcessReady"/>, before the driver completes the
    /// membership changes and transfers it committed: a caller whose change completed sees it here.
    /// </summary>
    void INodeHost.BeforeCompletingChanges()
    {
        var driver = _driver!;
        UpdateStatus(driver);
        PublishReaderView();
        NoteTransfer(driver);
        NoteMembership(driver.Raft);
    }

    bool INodeHost.TrySyncLogInBackground(LogSyncJob job)
    {
        _logSyncThread!.Start(job);
        return true;
    }

    /// <summary>On the fsync thread: hands the finished job back to the loop (it waits for room, like a proposal).</summary>
    private void OnLogSynced(LogSyncJob job)
    {
        try
        {
            _inbox.Writer.WriteAsync(new LogSyncedInput(job), _stop.Token).AsTask().GetAwaiter().GetResult();
            RunLoopIfIdle(); // an iteration here may hand this thread its next job, which it then runs without a wake-up
        }
        catch (Exception e) when (e is OperationCanceledException or ChannelClosedException or ObjectDisposedException)
        {
            // The node stopped; nothing waits for the job.
        }
    }

    /// <summary>
    /// Hands the loop a message from a peer, and runs an iteration on this thread when the loop is idle; drops the
    /// message when the inbox is full (never blocks the transport). A snapshot chunk's iteration writes or reads a
    /// piece of a snapshot file, and the last chunk installs the snapshot: that one runs on the pool instead, never on
    /// the transport's thread (the socket engine's, which every socket of the node waits on).
    /// </summary>
    public void Deliver(RaftMessage message)
    {
        if (!_inbox.Writer.TryWrite(new PeerInput(message)))
        {
            Interlocked.Increment(ref _droppedPeerMessages);
            return;
        }
        if (message is SnapshotChunk or SnapshotChunkResponse) RunLoopOnPoolIfIdle();
        else RunLoopIfIdle();
    }

    /// <summary>
    /// Replicates <paramref name="command"/> and returns the state machine's result once it is committed and applied.
    /// Throws <see cref="NotLeaderException"/> on a non-leader (nothing was proposed; safe to retry elsewhere),
    /// <see cref="ProposalDroppedException"/> when a new leader replaced it (not applied; safe to retry),
    /// <see cref="LeadershipTransferringException"/> while this node hands leadership over (not proposed; safe to retry), and
    /// <see cref="OperationCanceledException"/> when cancelled (the outcome is then unknown).
    /// </summary>
    public async Task<object?> ProposeAsync(ReadOnlyMemory<byte> command, CancellationToken cancellationToken = default)
    {
        var tcs = new TaskCompletionSource<object?>(TaskCreationOptions.RunContinuationsAsynchronously);
        await PostAsync(new ProposeInput(command, tcs), cancellationToken).ConfigureAwait(false);
        // A caller that gives up cancels the completion too: a command the leader still holds back (pacing) is then
        // never proposed.
        using var giveUp = cancellationToken.Register(static state => ((TaskCompletionSource<object?>)state!).TrySetCanceled(), tcs);
        return await tcs.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Runs <paramref name="query"/> against the state machine at a linearizable point (thesis §6.4 ReadIndex): after
    /// a quorum confirmed leadership and this node applied everything committed before the read began. Works on
    /// followers (the leader is asked for the index). Throws <see cref="NotLeaderException"/> when no leader is known
    /// and <see cref="ReadAbortedException"/> when leadership changed meanwhile; both are safe to retry.
    /// </summary>
    public async Task<T> ReadAsync<T>(Func<T> query, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(query);
        var tcs = new TaskCompletionSource<object?>(TaskCreationOptions.RunContinuationsAsynchronously);
        await PostAsync(new ReadInput(() => query(), tcs), cancellationToken).ConfigureAwait(false);
        return (T)(await tcs.Task.WaitAsync(cancellationToken).ConfigureAwait(false))!;
    }

    /// <summary>
    /// <see cref="ReadAsync{T}"/> that waits out elections: when no leader is known it waits for one, and when
    /// leadership changed during the read it asks again, until <paramref name="cancellationToken"/> fires.
    /// </summary>
    public async Task<T> ReadWaitingForLeaderAsync<T>(Func<T> query, CancellationToken cancellationToken = default)
    {
        while (true)
        {
            var changed = SoftStateChanged;
            try
            {
                return await ReadAsync(query, cancellationToken).ConfigureAwait(false);
            }
            catch (NotLeaderException)
            {
                await changed.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (ReadAbortedException)
            {
                // Leadership moved while confirming; ask again.
            }
        }
    }

    /// <summary>
    /// Proposes a command through the leader, and says what became of it (<see cref="ProposeOutcome"/>) instead of
    /// throwing. It waits out elections until <paramref name="deadline"/>, and proposes again while the command was
    /// certainly not applied (leadership moved before it was proposed, or a new leader replaced the entry). On the
    /// leader, the application's admission check (<see cref="ProposalForwarding.Admit"/>) runs first, then its
    /// <see cref="ProposalForwarding.Prepare"/>, whose bytes are proposed. When another
    /// node leads: with <see cref="NodeDriverOptions.Forwarding"/> on, the command is forwarded to it over the peer
    /// link and its answer returned as if proposed here; without, <see cref="ProposeOutcome.Elsewhere"/> is returned
    /// and the caller forwards or redirects. <paramref name="command"/> is called once per attempt, right before the
    /// command is proposed or forwarded, on the node running this call; an exception it throws reaches the caller,
    /// with nothing proposed.
    /// </summary>
    public async Task<ProposeOutcome> ProposeOrRouteAsync(Func<ReadOnlyMemory<byte>> command, CancellationToken deadline)
    {
        ArgumentNullException.ThrowIfNull(command);
        var forwarding = _options.Node.Forwarding;
        var sent = false; // once proposed or forwarded, a timeout or a stop leaves the command's fate unknown
        try
        {
            while (true)
            {
                deadline.ThrowIfCancellationRequested();
                // The status of a stopped node is stale: it must not look like a leader to propose on.
                if (_done?.Task is { IsCompleted: true } loop) throw new NodeStoppedException("The node has stopped.", loop.Exception?.InnerException);
                var changed = SoftStateChanged; // read before the status, so a change in between is not missed
                var status = _status;
                if (status.Role == Role.Leader)
                {
                    var bytes = command();
                    if (forwarding?.Admit?.Invoke(bytes) is { } refusal) return new ProposeOutcome.Refused(refusal);
                    if (forwarding?.Prepare is { } prepare) bytes = prepare(bytes);
                    try
                    {
                        sent = true;
                        return new ProposeOutcome.Applied(await ProposeAsync(bytes, deadline).ConfigureAwait(false));
                    }
                    catch (Exception e) when (e is NotLeaderException or ProposalDroppedException)
                    {
                        sent = false; // certainly not applied: route again
                    }
                    catch (LeadershipTransferringException)
                    {
                        // Not proposed: this node is handing leadership over. Wait for the new leader (or for the
                        // transfer to be abandoned, which also signals) and route again.
                        sent = false;
                        await changed.WaitAsync(deadline).ConfigureAwait(false);
                    }
                    continue;
                }
                if (status.Leader != 0)
                {
                    if (forwarding is null) return new ProposeOutcome.Elsewhere(status.Leader, changed);
                    sent = true;
                    var answer = await ForwardAsync(command(), deadline).ConfigureAwait(false);
                    if (answer.Status != ForwardStatus.NotLeader) return Outcome(answer, forwarding);
                    // Certainly not applied. The leader this node knew did not take the command, or this node leads
                    // now, or the leader is handing leadership over: this node's view of the leader changed or will,
                    // after the status read above. A transfer may also be abandoned, leaving the leader as it was:
                    // after an election timeout without news, ask it again.
                    sent = false;
                    try
                    {
                        await changed.WaitAsync(ElectionTimeout, _time, deadline).ConfigureAwait(false);
                    }
                    catch (TimeoutException)
                    {
                    }
                    continue;
                }
                await changed.WaitAsync(deadline).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested)
        {
            return sent
                ? new ProposeOutcome.Unknown(
                    UnknownReason.TimedOut, "timed out waiting for the commit; the command may or may not have been applied")
                : new ProposeOutcome.NotApplied(
                    NotAppliedReason.NoLeader, "timed out waiting for a leader; the command was not applied");
        }
        catch (NodeOverloadedException e)
        {
            return new ProposeOutcome.NotApplied(NotAppliedReason.Overloaded, e.Message);
        }
        catch (CommandTooLargeException e)
        {
            return new ProposeOutcome.NotApplied(NotAppliedReason.TooLarge, e.Message);
        }
        catch (ProposalOutcomeUnknownException e)
        {
            return new ProposeOutcome.Unknown(e.Reason, e.Message);
        }
        catch (NodeStoppedException e)
        {
            return sent
                ? new ProposeOutcome.Unknown(UnknownReason.Stopped, e.Message)
                : new ProposeOutcome.NotApplied(NotAppliedReason.Stopped, e.Message);
        }
    }

    /// <summary>
    /// Hands leadership to voter <paramref name="target"/>, or with 0 to the voter whose log is the most up to date
    /// (thesis §3.10), and completes once this node has stepped down and a new leader is known, with that leader and
    /// its term. Throws <see cref="LeadershipTransferException"/> when the core refused (not the leader, with the
    /// leader's id as hint; an unknown target; a learner or this node as target; a transfer already running) or when
    /// the transfer was abandoned (the target did not take over within an election timeout). Meanwhile proposals here
    /// are not proposed but wait for the new leader (<see cref="ProposeOrRouteAsync"/> routes them there). Cancelling
    /// stops the wait, not the transfer.
    /// </summary>
    public async Task<LeadershipTransferred> TransferLeadershipAsync(ulong target = 0, CancellationToken cancellationToken = default)
    {
        var tcs = new TaskCompletionSource<LeadershipTransferred>(TaskCreationOptions.RunContinuationsAsynchronously);
        await PostAsync(new TransferInput(target, tcs), cancellationToken).ConfigureAwait(false);
        try
        {
            return await tcs.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            tcs.TrySetCanceled(cancellationToken); // the loop forgets the waiter at its next iteration
            throw;
        }
    }

    /// <summary>An election timeout in wall-clock time.</summary>
    private TimeSpan ElectionTimeout => _options.TickInterval * _options.Raft.ElectionTicks;

    /// <summary>Has the loop forward <paramref name="command"/> to the leader and waits for the answer; a caller that gives up cancels the wait on the loop too.</summary>
    private async Task<ForwardResult> ForwardAsync(ReadOnlyMemory<byte> command, CancellationToken deadline)
    {
        var tcs = new TaskCompletionSource<ForwardResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        try
        {
            await PostAsync(new ForwardInput(command, tcs), deadline).ConfigureAwait(false);
            return await tcs.Task.WaitAsync(deadline).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            tcs.TrySetCanceled(deadline); // the loop forgets the forward at its next tick
            throw;
        }
    }

    /// <summary>What a forward's answer means for the caller: the leader's result, decoded, or why there is none.</summary>
    private static ProposeOutcome Outcome(ForwardResult answer, ProposalForwarding forwarding)
    {
        switch (answer.Status)
        {
            case ForwardStatus.Applied:
                try
                {
                    return new ProposeOutcome.Applied(forwarding.Results.Decode(answer.Payload.Span));
                }
                catch (Exception e) when (e is FormatException or ArgumentException or InvalidOperationException or IndexOutOfRangeException or EndOfStreamException)
                {
                    return new ProposeOutcome.Unknown(
                        UnknownReason.ResultLost, "the leader applied the command, but its result could not be decoded: " + e.Message);
                }
            case ForwardStatus.Refused:
                return new ProposeOutcome.Refused(new ProposalRefusal(answer.Code, answer.Message, answer.Payload));
            case ForwardStatus.NotApplied:
                var reason = Enum.IsDefined((NotAppliedReason)answer.Reason) ? (NotAppliedReason)answer.Reason : NotAppliedReason.Overloaded;
                return new ProposeOutcome.NotApplied(reason, answer.Message);
            default:
                var unknown = Enum.IsDefined((UnknownReason)answer.Reason) ? (UnknownReason)answer.Reason : UnknownReason.TimedOut;
                return new ProposeOutcome.Unknown(unknown, answer.Message);
        }
    }

    /// <summary>Completes at the next change of leader, role or term after this call, or when a leadership transfer this node ran ends.</summary>
    public Task SoftStateChanged => Volatile.Read(ref _softStateChanged).Task;

    /// <summary>Completes when a leader is known (this node or another).</summary>
    public async Task WaitForLeaderAsync(CancellationToken cancellationToken = default)
    {
        while (true)
        {
            var changed = SoftStateChanged; // read before the check, so a change in between is not missed
            if (_status.Leader != 0) return;
            await changed.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Stops the loop and the timer; waiting callers get <see cref="NodeStoppedException"/>.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
        _alarm?.Dispose();
        await _stop.CancelAsync().ConfigureAwait(false);
        _inbox.Writer.TryComplete();
        if (_done is not null)
        {
            RunLoopIfIdle(); // an idle loop stops here; a running one stops at its next iteration
            try
            {
                await _done.Task.ConfigureAwait(false);
            }
            catch (Exception)
            {
                // A failed loop was already logged; disposal must still release everything.
            }
        }
        _logSyncThread?.Dispose(); // after the loop, before the storage: an fsync that runs finishes first
        _driver?.Dispose();
        _instruments?.Dispose();
        _storage.Dispose();
        _stop.Dispose();
    }

    private async ValueTask PostAsync(Input input, CancellationToken cancellationToken)
    {
        if (_done is null) throw new InvalidOperationException("Not started.");
        if (_done.Task.IsCompleted) throw new NodeStoppedException("The node has stopped.", _done.Task.Exception?.InnerException);
        try
        {
            await _inbox.Writer.WriteAsync(input, cancellationToken).ConfigureAwait(false);
        }
        catch (ChannelClosedException e)
        {
            throw new NodeStoppedException("The node has stopped.", e);
        }
        RunLoopIfIdle();
    }

    private void OnTimer()
    {
        // The timer only wakes the loop; the loop reads the clock. At most one wake-up waits in the inbox.
        if (Interlocked.Exchange(ref _wakePending, 1) != 0) return;
        if (_inbox.Writer.TryWrite(TickInput.Instance)) RunLoopIfIdle();
        else Volatile.Write(ref _wakePending, 0); // inbox full or closed: the loop is busy (and ticks as it goes) or stopping
    }

    /// <summary>A transport thread saw a link go down: the loop tells the core (a quiet cluster wakes up).</summary>
    private void OnLinkDown(ulong peer)
    {
        // Not waiting for room: a full inbox means a busy loop, which is not quiet; the hint is then worth nothing.
        if (_inbox.Writer.TryWrite(new LinkDownInput(peer))) RunLoopIfIdle();
    }

    private long TicksToTimestamp(long ticks) => (long)(_options.TickInterval.TotalSeconds * ticks * _time.TimestampFrequency);

    /// <summary>
    /// Gives the core the ticks that passed since the last ones (at most <see cref="RaftRuntimeOptions.MaxTicksCatchUp"/>,
    /// or the election timeout in effect when longer: a quiet node sleeps that long; the driver caps a catch-up below an
    /// election timeout). Called after the iteration's messages, so a heartbeat that waited in the inbox while the loop
    /// was held up counts before the time that passed meanwhile.
    /// </summary>
    private void TickForTimePassed(NodeDriver driver)
    {
        var passed = TakeTicksPassed() + _ticksOwed;
        _ticksOwed = 0;
        if (passed <= 0) return;
        driver.Tick((int)Math.Min(passed, Math.Max(_options.MaxTicksCatchUp, driver.Raft.ElectionTicksInEffect))); // a leader promotes caught-up learners here
    }

    /// <summary>
    /// Before the iteration's inputs: the ticks that passed that cannot make the core act (fewer than
    /// <see cref="RaftNode.TicksUntilTimeout"/>). A loop that slept until an input woke it (a quiet node sleeps for
    /// hundreds of ticks) must count that idle time before the input, not after: otherwise a leadership transfer that
    /// starts, or the first append a quiet follower gets, would find most of an election timeout gone at once. The
    /// rest waits for <see cref="TickForTimePassed"/>, after the inputs, so nothing times out before them.
    /// </summary>
    private void TickForIdleTimeBeforeInputs(NodeDriver driver)
    {
        var passed = TakeTicksPassed() + _ticksOwed;
        var harmless = Math.Min(passed, Math.Max(0, driver.Raft.TicksUntilTimeout - 1));
        _ticksOwed = passed - harmless;
        if (harmless > 0) driver.Tick((int)harmless);
    }

    /// <summary>Whole ticks since <see cref="_lastTick"/>, which moves on by as many.</summary>
    private long TakeTicksPassed()
    {
        var tick = TicksToTimestamp(1);
        var passed = (_time.GetTimestamp() - _lastTick) / tick;
        if (passed <= 0) return 0;
        _lastTick += passed * tick;
        return passed;
    }

    /// <summary>Sets the timer for the core's next timeout (a heartbeat on the leader, the election timeout elsewhere).</summary>
    private void ScheduleWake(NodeDriver driver)
    {
        var due = _lastTick + TicksToTimestamp(driver.Raft.TicksUntilTimeout);
        if (due == _timerDue) return;
        _timerDue = due;
        _alarm?.Set(due);
    }

    /// <summary>
    /// Called after every write to the inbox (and once more on disposal): when no thread runs the loop, this one runs an
    /// iteration, and queues a work item for what is left. The write and the claim are each a full fence, and so is
    /// the release in <see cref="RunLoop"/> before it looks at the inbox again: either this claim succeeds, or the
    /// thread that held the loop sees the input after letting go.
    /// </summary>
    private void RunLoopIfIdle()
    {
        if (Interlocked.CompareExchange(ref _running, 1, 0) == 0) RunLoop(1);
    }

    /// <summary>Like <see cref="RunLoopIfIdle"/>, but the claimed loop runs in a thread-pool work item, not on this thread.</summary>
    private void RunLoopOnPoolIfIdle()
    {
        if (Interlocked.CompareExchange(ref _running, 1, 0) == 0) ThreadPool.UnsafeQueueUserWorkItem(_runQueued, this, preferLocal: false);
    }

    /// <summary>
    /// Runs the loop on this thread, which holds <see cref="_running"/>: up to <paramref name="iterations"/> iterations
    /// while there is input or a Ready left, then either queues a work item to go on (more is left) or lets go.
    /// Never throws: a failure stops the node (<see cref="Completion"/> faults), and the loop stays held for good.
    /// </summary>
    private void RunLoop(int iterations)
    {
        var driver = _driver!;
        var ct = _stop.Token;
        var reader = _inbox.Reader;
        while (true)
        {
            bool more;
            try
            {
                if (!_firstReadyDone)
                {
                    _firstReadyDone = true;
                    driver.ProcessReady(); // publishes the views (BeforeCompletingChanges)
                }
                // With Readies left (ProcessReady stops after a bounded amount of applying), the loop goes round again
                // at once: the inputs that arrived meanwhile are handled first, then the next chunk.
                for (var n = 0; n < iterations && !ct.IsCancellationRequested && (driver.HasPendingReady || reader.Count > 0); n++)
                    Iterate(driver, reader);
                if (ct.IsCancellationRequested)
                {
                    StopLoop(null);
                    return;
                }
                more = driver.HasPendingReady || reader.Count > 0;
            }
            catch (Exception e)
            {
                LogFatal(_logger, e);
                StopLoop(e);
                return;
            }
            if (more)
            {
                ThreadPool.UnsafeQueueUserWorkItem(_runQueued, this, preferLocal: false);
                return;
            }
            Interlocked.Exchange(ref _running, 0);
            // An input written after the check above found the loop still held: take it (or a stop) now.
            if (!ct.IsCancellationRequested && reader.Count == 0) return;
            if (Interlocked.CompareExchange(ref _running, 1, 0) != 0) return;
        }
    }

    /// <summary>One iteration: a batch of inputs, the ticks that passed, the Ready.</summary>
    private void Iterate(NodeDriver driver, ChannelReader<Input> reader)
    {
        driver.Counters.Iteration();
        var started = _time.GetTimestamp();
        var (saveBefore, applyBefore, snapshotBefore, viewsBefore) =
            (driver.Counters.SaveTimestampTicks, driver.Counters.ApplyTimestampTicks, driver.Counters.SnapshotTimestampTicks, _readerViewTicks);
        var handled = 0;
        TickForIdleTimeBeforeInputs(driver);
        while (handled < _options.MaxInputsPerIteration && reader.TryRead(out var input))
        {
            // Time is judged after the messages: a heartbeat that waited in the inbox while the loop was
            // held up counts before the ticks that elapsed meanwhile, never after them.
            if (input is TickInput)
            {
                Volatile.Write(ref _wakePending, 0);
                _timerDue = long.MinValue; // fired: set again below
            }
            else
            {
                Handle(driver, input);
            }
            handled++;
        }
        TickForTimePassed(driver);
        var handledAt = _time.GetTimestamp();
        driver.ProcessReady(); // publishes the views (BeforeCompletingChanges)
        ScheduleWake(driver);
        _peerDiskAlarm = driver.PeerDiskAlarm;
        var took = _time.GetElapsedTime(started);
        if (took > SlowIteration)
        {
            NoteSlowIteration(handled, took, _time.GetElapsedTime(started, handledAt),
                _time.GetElapsedTime(0, driver.Counters.SaveTimestampTicks - saveBefore),
                _time.GetElapsedTime(0, driver.Counters.ApplyTimestampTicks - applyBefore),
                _time.GetElapsedTime(0, driver.Counters.SnapshotTimestampTicks - snapshotBefore),
                _time.GetElapsedTime(0, _readerViewTicks - viewsBefore));
        }
    }

    /// <summary>The loop ends, for good (it stays held): waiting callers fail, <see cref="Completion"/> completes.</summary>
    private void StopLoop(Exception? failure)
    {
        if (failure is null)
        {
            FailAll(new NodeStoppedException("The node is shutting down."));
            _done!.TrySetResult();
        }
        else
        {
            FailAll(new NodeStoppedException("The node failed and stopped: " + failure.Message, failure));
            _done!.TrySetException(failure);
        }
    }

    private void Handle(NodeDriver driver, Input input)
    {
        switch (input)
        {
            case PeerInput p:
                driver.Step(p.Message);
                break;
            case ProposeInput p:
                driver.Propose(p.Command, p.Completion);
                break;
            case ReadInput q:
                driver.Read(q.Query, q.Completion);
                break;
            case ForwardInput f:
                driver.Forward(f.Command, f.Completion);
                break;
            case SnapshotWrittenInput w:
                driver.CompleteSnapshot(w.Job);
                break;
            case LinkDownInput d:
                driver.LinkDown(d.Peer);
                break;
            case LogSyncedInput l:
                driver.CompleteLogSync(l.Job); // throws when the fsync failed: the node stops
                if (l.Job.RunTime > SlowIteration) NoteSlowFsync(l.Job.RunTime);
                break;
            case TransferInput t:
                driver.TransferLeadership(t.Target, t.Completion);
                break;
            case MembershipInput m:
                HandleMembership(driver, m);
                break;
        }
    }

    /// <summary>An iteration longer than this is logged: it holds up heartbeats and votes (a third of an election timeout).</summary>
    private TimeSpan SlowIteration => ElectionTimeout / 3;

    private void NoteSlowIteration(int inputs, TimeSpan took, TimeSpan handling, TimeSpan saving, TimeSpan applying, TimeSpan snapshots, TimeSpan views)
    {
        if (!OncePerSecond(ref _lastSlowLog)) return;
        LogSlowIteration(_logger, _options.Raft.Id, (long)took.TotalMilliseconds, inputs, (long)handling.TotalMilliseconds,
            (long)saving.TotalMilliseconds, (long)applying.TotalMilliseconds, (long)snapshots.TotalMilliseconds, (long)views.TotalMilliseconds);
    }

    /// <summary>
    /// Whether a line may be logged now, at most one a second per <paramref name="last"/> (when the last one was
    /// logged): a saturated node would otherwise log every iteration.
    /// </summary>
    private bool OncePerSecond(ref long last)
    {
        var now = _time.GetTimestamp();
        if (last != 0 && _time.GetElapsedTime(last, now) < TimeSpan.FromSeconds(1)) return false;
        last = now;
        return true;
    }

    private void NoteSlowFsync(TimeSpan took)
    {
        if (!OncePerSecond(ref _lastSlowFsyncLog)) return;
        LogSlowFsync(_logger, _options.Raft.Id, (long)took.TotalMilliseconds);
    }

    /// <summary>
    /// Lets a state machine with a view for readers off the loop (<see cref="IReaderView"/>) refresh it, timed into
    /// <see cref="_readerViewTicks"/> (a slow iteration's log line names it).
    /// </summary>
    private void PublishReaderView()
    {
        if (_stateMachine is not IReaderView view) return;
        var started = _time.GetTimestamp();
        view.PublishReaderView(_time.GetUtcNow());
        _readerViewTicks += _time.GetTimestamp() - started;
    }

    private void UpdateStatus(NodeDriver driver)
    {
        var node = driver.Raft;
        if (node.Leader != _status.Leader) Interlocked.Increment(ref _leaderChanges);
        // The state machine's applied index: it may be ahead of the core's while a Ready's fsync runs.
        _status = new RaftStatus(node.Id, node.Role, node.Term, node.Leader, node.CommitIndex, driver.AppliedIndex, node.LastIndex, node.Quiesced);
        UpdateReplication(node);
    }

    /// <summary>Publishes the leader's view of each other member's log (a new array only when a value changed).</summary>
    private void UpdateReplication(RaftNode node)
    {
        if (node.Role != Role.Leader)
        {
            if (_replication.Length > 0) _replication = [];
            return;
        }
        PeerReplication[] next = [.. node.Voters.Concat(node.Learners).Where(p => p != node.Id).Select(p => new PeerReplication(p, node.MatchIndexOf(p) ?? 0))];
        if (!next.AsSpan().SequenceEqual(_replication)) _replication = next;
    }

    private void OnSoftStateChanged(SoftState soft)
    {
        UpdateStatus(_driver!);
        SignalChange();
    }

    /// <summary>
    /// A leadership transfer that ended without a change of leader (abandoned) is news too: proposals refused while
    /// it ran wait for it.
    /// </summary>
    private void NoteTransfer(NodeDriver driver)
    {
        var transferee = driver.LeadTransferee;
        if (transferee == _transferee) return;
        var ended = transferee == 0;
        _transferee = transferee;
        if (ended) SignalChange();
    }

    private void SignalChange()
    {
        var changed = Interlocked.Exchange(
            ref _softStateChanged, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        changed.TrySetResult();
    }

    private void FailAll(Exception e)
    {
        _driver?.FailAll(e);
        _inbox.Writer.TryComplete();
        while (_inbox.Reader.TryRead(out var input))
        {
            switch (input)
            {
                case ProposeInput p: p.Completion.TrySetException(e); break;
                case ReadInput q: q.Completion.TrySetException(e); break;
                case ForwardInput f: f.Completion.TrySetException(e); break;
                case TransferInput t: t.Completion.TrySetException(e); break;
                case MembershipInput m: m.Completion.TrySetException(e); break;
            }
        }
    }

    private abstract record Input;

    private sealed record PeerInput(RaftMessage Message) : Input;

    private sealed record TickInput : Input
    {
        public static readonly TickInput Instance = new();
    }

    private sealed record ProposeInput(ReadOnlyMemory<byte> Command, TaskCompletionSource<object?> Completion) : Input;

    private sealed record ReadInput(Func<object?> Query, TaskCompletionSource<object?> Completion) : Input;

    private sealed record SnapshotWrittenInput(SnapshotJob Job) : Input;

    private sealed record LinkDownInput(ulong Peer) : Input;

    private sealed record LogSyncedInput(LogSyncJob Job) : Input;

    private sealed record ForwardInput(ReadOnlyMemory<byte> Command, TaskCompletionSource<ForwardResult> Completion) : Input;

    private sealed record TransferInput(ulong Target, TaskCompletionSource<LeadershipTransferred> Completion) : Input;

    [LoggerMessage(EventId = 3, Level = LogLevel.Critical, Message = "Node failed and stops (fail-stop)")]
    private static partial void LogFatal(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 11, Level = LogLevel.Warning,
        Message = "Node {Id} loop held up for {Ms} ms: {Inputs} inputs handled in {HandlingMs} ms, log writes and syncs {SaveMs} ms, applying {ApplyMs} ms, snapshots and compaction {SnapshotMs} ms, the state machine's reader views {ViewsMs} ms (the last four within the whole iteration)")]
    private static partial void LogSlowIteration(ILogger logger, ulong id, long ms, int inputs, long handlingMs, long saveMs, long applyMs, long snapshotMs, long viewsMs);

    [LoggerMessage(EventId = 12, Level = LogLevel.Warning,
        Message = "Node {Id} log fsync took {Ms} ms (off the loop; commits and this node's acknowledgements waited for it)")]
    private static partial void LogSlowFsync(ILogger logger, ulong id, long ms);

    [LoggerMessage(EventId = 4, Level = LogLevel.Information, Message = "Node {Id} storage recovery: {Report}")]
    private static partial void LogRecovery(ILogger logger, ulong id, string report);
}

using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using RaftMQ.Raft;
using RaftMQ.Storage;
using RaftMQ.Transport;

namespace RaftMQ.Runtime;

/// <summary>
/// Runs one Raft node: a single loop owns the consensus core, the storage and the state machine. Everything that
/// touches them — peer messages, ticks, proposals, reads — is posted to the loop's bounded inbox. One iteration takes
/// a batch of inputs, then persists (one fsync for the batch), sends, applies and completes waiting callers.
/// </summary>
public sealed partial class RaftRuntime : IAsyncDisposable
{
    private readonly RaftRuntimeOptions _options;
    private readonly NodeStorage _storage;
    private readonly IStateMachine _stateMachine;
    private readonly ITransport _transport;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Channel<Input> _inbox;
    private readonly CancellationTokenSource _stop = new();
    private readonly Dictionary<ulong, PendingProposal> _proposals = [];
    private readonly Dictionary<ulong, PendingRead> _unconfirmedReads = [];
    private readonly PriorityQueue<PendingRead, ulong> _confirmedReads = new();
    private RaftNode? _node;
    private ITimer? _ticker;
    private Task? _loop;
    private int _ticksElapsed;
    private ulong _nextReadContext;
    private long _droppedPeerMessages;
    private int _disposed;
    private HardState _persistedHardState;
    private ulong _lastSnapshotIndex;
    private long _bytesSinceSnapshot;
    private IncomingSnapshot? _incomingSnapshot;
    private readonly Dictionary<ulong, OutgoingSnapshot> _outgoingSnapshots = [];
    private readonly List<(ulong Peer, bool Succeeded)> _snapshotReports = [];
    private TaskCompletionSource _softStateChanged = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile RaftStatus _status;

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

    /// <summary>The node's state, refreshed after every loop iteration.</summary>
    public RaftStatus Status => _status;

    /// <summary>What the loop has done so far (log writes and syncs, messages, entries applied, ...).</summary>
    public RuntimeCounters Counters { get; } = new();

    /// <summary>Peer messages dropped because the inbox was full (Raft retries them).</summary>
    public long DroppedPeerMessages => Interlocked.Read(ref _droppedPeerMessages);

    /// <summary>Completes when the loop ends: normally on shutdown, faulted when the node failed (e.g. an fsync error).</summary>
    public Task Completion => _loop ?? Task.CompletedTask;

    /// <summary>Builds the core from storage and starts the loop and the tick timer.</summary>
    public void Start()
    {
        if (_loop is not null) throw new InvalidOperationException("Already started.");
        var log = _storage.Log;
        _persistedHardState = log.HardState;
        LogRecovery(_logger, _options.Raft.Id, _storage.Recovery.ToString());
        // The state machine starts from the newest snapshot; the log replays what follows it (§7).
        using (var snapshot = _storage.OpenLatestSnapshot())
        {
            if (snapshot is not null)
            {
                _stateMachine.RestoreSnapshot(snapshot);
                _lastSnapshotIndex = snapshot.Metadata.Index;
                _options.Raft.Applied = snapshot.Metadata.Index;
                LogSnapshotRestored(_logger, _options.Raft.Id, snapshot.Metadata.Index, snapshot.Metadata.Term);
            }
        }
        _node = new RaftNode(_options.Raft, log);
        LogStarted(_logger, _options.Raft.Id, log.HardState.Term, log.LastIndex, log.HardState.Commit);
        _loop = Task.Run(() => RunAsync(_stop.Token));
        _transport.SetReceiver(Deliver); // straight from the connection's reader into the inbox: no extra hop
        _ticker = _time.CreateTimer(
            static state => ((RaftRuntime)state!).OnTimer(), this, _options.TickInterval, _options.TickInterval);
    }

    /// <summary>Hands the loop a message from a peer; drops it when the inbox is full (never blocks the transport).</summary>
    public void Deliver(RaftMessage message)
    {
        if (!_inbox.Writer.TryWrite(new PeerInput(message))) Interlocked.Increment(ref _droppedPeerMessages);
    }

    /// <summary>
    /// Replicates <paramref name="command"/> and returns the state machine's result once it is committed and applied.
    /// Throws <see cref="NotLeaderException"/> on a non-leader (nothing was proposed; safe to retry elsewhere),
    /// <see cref="ProposalDroppedException"/> when a new leader replaced it (not applied; safe to retry), and
    /// <see cref="OperationCanceledException"/> when cancelled (the outcome is then unknown).
    /// </summary>
    public async Task<object?> ProposeAsync(ReadOnlyMemory<byte> command, CancellationToken cancellationToken = default)
    {
        var tcs = new TaskCompletionSource<object?>(TaskCreationOptions.RunContinuationsAsynchronously);
        await PostAsync(new ProposeInput(command, tcs), cancellationToken).ConfigureAwait(false);
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

    /// <summary>Completes at the next change of leader, role or term after this call.</summary>
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
        if (_ticker is not null) await _ticker.DisposeAsync().ConfigureAwait(false);
        await _stop.CancelAsync().ConfigureAwait(false);
        _inbox.Writer.TryComplete();
        if (_loop is not null)
        {
            try
            {
                await _loop.ConfigureAwait(false);
            }
            catch (Exception)
            {
                // A failed loop was already logged; disposal must still release everything.
            }
        }
        foreach (var transfer in _outgoingSnapshots.Values) transfer.Dispose();
        _outgoingSnapshots.Clear();
        _incomingSnapshot?.Dispose();
        _storage.Dispose();
        _stop.Dispose();
    }

    private async ValueTask PostAsync(Input input, CancellationToken cancellationToken)
    {
        if (_loop is null) throw new InvalidOperationException("Not started.");
        if (_loop.IsCompleted) throw new NodeStoppedException("The node has stopped.", _loop.Exception?.InnerException);
        try
        {
            await _inbox.Writer.WriteAsync(input, cancellationToken).ConfigureAwait(false);
        }
        catch (ChannelClosedException e)
        {
            throw new NodeStoppedException("The node has stopped.", e);
        }
    }

    private void OnTimer()
    {
        // Ticks are counted, not queued: one wake-up carries however many elapsed while the loop was busy.
        if (Interlocked.Increment(ref _ticksElapsed) == 1) _inbox.Writer.TryWrite(TickInput.Instance);
    }

    private async Task RunAsync(CancellationToken ct)
    {
        var node = _node!;
        try
        {
            ProcessReady(node);
            var reader = _inbox.Reader;
            while (await reader.WaitToReadAsync(ct).ConfigureAwait(false))
            {
                Counters.Iteration();
                var handled = 0;
                while (handled < _options.MaxInputsPerIteration && reader.TryRead(out var input))
                {
                    Handle(node, input);
                    handled++;
                }
                ProcessReady(node);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Shutdown.
        }
        catch (Exception e)
        {
            LogFatal(_logger, e);
            FailAll(new NodeStoppedException("The node failed and stopped: " + e.Message, e));
            throw;
        }
        FailAll(new NodeStoppedException("The node is shutting down."));
    }

    private void Handle(RaftNode node, Input input)
    {
        if (input is PeerInput) Counters.Handled();
        switch (input)
        {
            case PeerInput { Message: SnapshotChunk chunk }:
                ReceiveSnapshotChunk(node, chunk);
                break;
            case PeerInput { Message: SnapshotChunkResponse response }:
                ContinueSnapshotTransfer(node, response);
                break;
            case PeerInput p:
                node.Step(p.Message);
                break;
            case TickInput:
                var ticks = Math.Min(Interlocked.Exchange(ref _ticksElapsed, 0), _options.MaxTicksCatchUp);
                for (int i = 0; i < ticks; i++) node.Tick();
                ExpireSnapshotTransfers(node);
                break;
            case ProposeInput p:
                Counters.Proposed();
                var r = node.Propose(p.Command);
                switch (r.Status)
                {
                    case ProposeStatus.Accepted:
                        _proposals[r.Index] = new PendingProposal(r.Term, p.Completion);
                        break;
                    case ProposeStatus.NotLeader:
                        p.Completion.TrySetException(new NotLeaderException(r.LeaderHint));
                        break;
                    default:
                        p.Completion.TrySetException(new NodeOverloadedException("too many uncommitted bytes"));
                        break;
                }
                break;
            case ReadInput q:
                Counters.Read();
                var context = ++_nextReadContext;
                var rr = node.ReadIndex(context);
                switch (rr.Status)
                {
                    case ProposeStatus.Accepted:
                        _unconfirmedReads[context] = new PendingRead(q.Query, q.Completion);
                        break;
                    case ProposeStatus.NotLeader:
                        q.Completion.TrySetException(new NotLeaderException(rr.LeaderHint));
                        break;
                    default:
                        q.Completion.TrySetException(new NodeOverloadedException("too many pending reads"));
                        break;
                }
                break;
        }
    }

    private void ProcessReady(RaftNode node)
    {
        while (node.HasReady())
        {
            var ready = node.GetReady();
            Counters.Ready();
            // Thesis §10.2.1: a leader may send appends in parallel with its own write, since it counts itself only
            // once durable. Anything answering a vote must wait for the vote to be durable, hence the term/vote check.
            var sendFirst = node.Role == Role.Leader
                && (ready.HardState is not { } h || (h.Term == _persistedHardState.Term && h.Vote == _persistedHardState.Vote));
            if (sendFirst) Send(node, ready.Messages);
            if (ready.Snapshot is { } snapshot) InstallSnapshot(snapshot);
            if (ready.HardState is not null || ready.Entries.Count > 0)
            {
                _storage.Save(ready.HardState, ready.Entries, ready.MustSync);
                Counters.Saved(ready.Entries.Count, ready.MustSync);
                if (ready.HardState is { } saved) _persistedHardState = saved;
            }
            if (!sendFirst) Send(node, ready.Messages);
            Apply(ready.CommittedEntries);
            Counters.Applied(ready.CommittedEntries.Count);
            foreach (var rs in ready.ReadStates)
            {
                if (_unconfirmedReads.Remove(rs.Context, out var read)) _confirmedReads.Enqueue(read, rs.Index);
            }
            node.Advance(ready);
            ServeConfirmedReads(node.AppliedIndex);
            if (ready.SoftState is { } soft) OnSoftStateChanged(node, soft);
            foreach (var (peer, succeeded) in _snapshotReports) node.ReportSnapshot(peer, succeeded);
            _snapshotReports.Clear();
            MaybeTakeSnapshot(node);
        }
        UpdateStatus(node);
    }

    private void UpdateStatus(RaftNode node) =>
        _status = new RaftStatus(node.Id, node.Role, node.Term, node.Leader, node.CommitIndex, node.AppliedIndex, node.LastIndex);

    private void Send(RaftNode node, IReadOnlyList<RaftMessage> messages)
    {
        Counters.Sent(messages.Count);
        for (int i = 0; i < messages.Count; i++)
        {
            if (messages[i] is InstallSnapshot install) StartSnapshotTransfer(node, install.To);
            else _transport.Send(messages[i]);
        }
    }

    // ---- snapshots (§7) ----

    /// <summary>Snapshots the state machine once enough entries were applied, then compacts the log behind it.</summary>
    private void MaybeTakeSnapshot(RaftNode node)
    {
        var applied = node.AppliedIndex;
        var due = applied - _lastSnapshotIndex >= _options.SnapshotEveryEntries || _bytesSinceSnapshot >= _options.SnapshotEveryBytes;
        if (!due || applied == _lastSnapshotIndex || !node.TryGetEntry(applied, out var last)) return;
        var metadata = new SnapshotMetadata(applied, last.Term);
        using (var writer = _storage.CreateSnapshot(metadata))
        {
            using var captured = _stateMachine.CaptureSnapshot();
            captured.WriteTo(writer);
            writer.Commit();
        }
        _lastSnapshotIndex = applied;
        _bytesSinceSnapshot = 0;
        Counters.SnapshotTaken();
        // Keep a tail of entries so a follower a little behind is caught up from the log, not with a snapshot.
        if (applied > _options.SnapshotRetainEntries)
        {
            var compactTo = applied - _options.SnapshotRetainEntries;
            if (compactTo > _storage.Log.Snapshot.Index && node.TryGetEntry(compactTo, out var e))
                _storage.Compact(new SnapshotMetadata(compactTo, e.Term));
        }
        LogSnapshotTaken(_logger, _options.Raft.Id, metadata.Index, metadata.Term, _storage.Log.FirstIndex);
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
        _lastSnapshotIndex = snapshot.Index;
        _bytesSinceSnapshot = 0;
        LogSnapshotInstalled(_logger, _options.Raft.Id, snapshot.Index, snapshot.Term);
    }

    private void StartSnapshotTransfer(RaftNode node, ulong peer)
    {
        if (_outgoingSnapshots.Remove(peer, out var previous)) previous.Dispose();
        // The newest snapshot is at least as new as the point the log was compacted to, which is all the follower needs.
        var stream = _storage.OpenLatestSnapshot();
        if (stream is null)
        {
            _snapshotReports.Add((peer, false));
            return;
        }
        var transfer = new OutgoingSnapshot(peer, stream, _options.SnapshotChunkBytes, _time.GetTimestamp());
        _outgoingSnapshots[peer] = transfer;
        LogSnapshotSending(_logger, _options.Raft.Id, peer, stream.Metadata.Index, stream.Length);
        _transport.Send(transfer.Probe(node.Id, node.Term));
    }

    private void ContinueSnapshotTransfer(RaftNode node, SnapshotChunkResponse response)
    {
        if (!_outgoingSnapshots.TryGetValue(response.From, out var transfer) || transfer.Snapshot != response.Snapshot) return;
        if (response.Failed || node.Role != Role.Leader || response.Term > node.Term)
        {
            EndSnapshotTransfer(node, transfer, succeeded: false);
            return;
        }
        var next = transfer.Next(response, node.Id, node.Term, _time.GetTimestamp());
        if (next is null) EndSnapshotTransfer(node, transfer, succeeded: true);
        else _transport.Send(next);
    }

    private void EndSnapshotTransfer(RaftNode node, OutgoingSnapshot transfer, bool succeeded)
    {
        _outgoingSnapshots.Remove(transfer.Peer);
        transfer.Dispose();
        node.ReportSnapshot(transfer.Peer, succeeded);
    }

    private void ExpireSnapshotTransfers(RaftNode node)
    {
        if (_outgoingSnapshots.Count == 0) return;
        foreach (var transfer in _outgoingSnapshots.Values.ToList())
        {
            if (node.Role != Role.Leader || _time.GetElapsedTime(transfer.LastActivity) > _options.SnapshotTransferTimeout)
                EndSnapshotTransfer(node, transfer, succeeded: false);
        }
    }

    private void ReceiveSnapshotChunk(RaftNode node, SnapshotChunk chunk)
    {
        if (chunk.Term < node.Term)
        {
            _transport.Send(new SnapshotChunkResponse(node.Id, chunk.From, node.Term, chunk.Snapshot, 0, true));
            return;
        }
        if (_incomingSnapshot is null || _incomingSnapshot.Snapshot != chunk.Snapshot)
        {
            if (chunk.Offset != 0)
            {
                // Not the transfer we hold: ask for it from the start.
                _transport.Send(new SnapshotChunkResponse(node.Id, chunk.From, node.Term, chunk.Snapshot, 0, false));
                return;
            }
            _incomingSnapshot?.Dispose();
            _incomingSnapshot = new IncomingSnapshot(chunk.Snapshot, _storage.CreateSnapshot(chunk.Snapshot));
        }
        var incoming = _incomingSnapshot;
        if (incoming.Accept(chunk))
        {
            _incomingSnapshot = null;
            incoming.Dispose();
            node.Step(new InstallSnapshot(chunk.From, node.Id, chunk.Term, chunk.Snapshot));
        }
        _transport.Send(new SnapshotChunkResponse(node.Id, chunk.From, node.Term, chunk.Snapshot, incoming.Received, false));
    }

    private void Apply(IReadOnlyList<Entry> entries)
    {
        foreach (var e in entries)
        {
            object? result = null;
            if (e.Type == EntryType.Command) result = _stateMachine.Apply(e.Index, e.Data);
            _bytesSinceSnapshot += e.Data.Length;
            if (_proposals.Remove(e.Index, out var p))
            {
                if (p.Term == e.Term) p.Completion.TrySetResult(result);
                else p.Completion.TrySetException(new ProposalDroppedException(e.Index));
            }
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

    private void OnSoftStateChanged(RaftNode node, SoftState soft)
    {
        LogRoleChanged(_logger, _options.Raft.Id, soft.Role, soft.Term, soft.Leader);
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
        UpdateStatus(node);
        var changed = Interlocked.Exchange(
            ref _softStateChanged, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        changed.TrySetResult();
    }

    private void FailAll(Exception e)
    {
        foreach (var (_, p) in _proposals) p.Completion.TrySetException(e);
        _proposals.Clear();
        foreach (var (_, r) in _unconfirmedReads) r.Completion.TrySetException(e);
        _unconfirmedReads.Clear();
        while (_confirmedReads.TryDequeue(out var r, out _)) r.Completion.TrySetException(e);
        _inbox.Writer.TryComplete();
        while (_inbox.Reader.TryRead(out var input))
        {
            switch (input)
            {
                case ProposeInput p: p.Completion.TrySetException(e); break;
                case ReadInput q: q.Completion.TrySetException(e); break;
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

    private readonly record struct PendingProposal(ulong Term, TaskCompletionSource<object?> Completion);

    private sealed record PendingRead(Func<object?> Query, TaskCompletionSource<object?> Completion);

    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "Node {Id} started: term {Term}, last index {LastIndex}, commit {Commit}")]
    private static partial void LogStarted(ILogger logger, ulong id, ulong term, ulong lastIndex, ulong commit);

    [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "Node {Id} is {Role} in term {Term}; leader {Leader}")]
    private static partial void LogRoleChanged(ILogger logger, ulong id, Role role, ulong term, ulong leader);

    [LoggerMessage(EventId = 3, Level = LogLevel.Critical, Message = "Node failed and stops (fail-stop)")]
    private static partial void LogFatal(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 4, Level = LogLevel.Information, Message = "Node {Id} storage recovery: {Report}")]
    private static partial void LogRecovery(ILogger logger, ulong id, string report);

    [LoggerMessage(EventId = 5, Level = LogLevel.Information, Message = "Node {Id} restored the state machine from snapshot {Index} (term {Term})")]
    private static partial void LogSnapshotRestored(ILogger logger, ulong id, ulong index, ulong term);

    [LoggerMessage(EventId = 6, Level = LogLevel.Information, Message = "Node {Id} took snapshot {Index} (term {Term}); log now starts at {FirstIndex}")]
    private static partial void LogSnapshotTaken(ILogger logger, ulong id, ulong index, ulong term, ulong firstIndex);

    [LoggerMessage(EventId = 7, Level = LogLevel.Information, Message = "Node {Id} installed snapshot {Index} (term {Term}) from the leader")]
    private static partial void LogSnapshotInstalled(ILogger logger, ulong id, ulong index, ulong term);

    [LoggerMessage(EventId = 8, Level = LogLevel.Information, Message = "Node {Id} sending snapshot {Index} ({Bytes} bytes) to node {Peer}")]
    private static partial void LogSnapshotSending(ILogger logger, ulong id, ulong peer, ulong index, long bytes);
}

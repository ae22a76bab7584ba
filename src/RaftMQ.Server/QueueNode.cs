using RaftMQ.Queue;
using RaftMQ.Raft;
using RaftMQ.Runtime;

namespace RaftMQ.Server;

/// <summary>The values of the <c>X-RaftMQ-Error</c> header on a 503, for clients to act on.</summary>
public static class ErrorCodes
{
    public const string Header = "X-RaftMQ-Error";

    /// <summary>No leader was found in time; the command was not applied. Safe to retry.</summary>
    public const string NoLeader = "no-leader";

    /// <summary>The command reached the log or the leader, but its commit was not seen: it may or may not be applied.</summary>
    public const string OutcomeUnknown = "outcome-unknown";

    /// <summary>The node is over a bound; the command was not applied. Retry later.</summary>
    public const string Overloaded = "overloaded";

    /// <summary>The node is shutting down or failed; the command was not applied.</summary>
    public const string Stopped = "stopped";

    /// <summary>
    /// On a 507: the leader's disk has less free space than its <c>--disk-free-limit-mb</c>, so it refuses publishes
    /// and topic creation; not applied. Retry once consumers have drained the queue or space was freed.
    /// </summary>
    public const string DiskFull = "disk-full";

    /// <summary>
    /// On a 409 to a publish: the topic holds its own <c>max_messages</c> or <c>max_bytes</c> and its overflow policy is
    /// <c>reject-publish</c>; nothing was stored. Retry once consumers have acked enough (or messages expired).
    /// </summary>
    public const string TopicFull = "topic-full";

    /// <summary>On a 401: no API key, or one the node's <c>--auth-file</c> does not hold (docs/security.md).</summary>
    public const string Unauthorized = "unauthorized";

    /// <summary>On a 403: the API key lacks the permission the endpoint needs on the topic (or on every topic).</summary>
    public const string Forbidden = "forbidden";

    /// <summary>On a 403: a state-changing request from a browser page of another origin (<c>--allowed-origins</c>).</summary>
    public const string OriginNotAllowed = "origin-not-allowed";

    /// <summary>On a 403: the Host header names a host the node does not answer to (<c>--allowed-hosts</c>).</summary>
    public const string HostNotAllowed = "host-not-allowed";
}

/// <summary>What became of a queue command sent through the cluster.</summary>
public abstract record CommandOutcome
{
    /// <summary>Committed and applied; the state machine's result.</summary>
    public sealed record Applied(QueueResult Result) : CommandOutcome;

    /// <summary>Not done (<see cref="ErrorCodes.NoLeader"/>, ...) or not known to be done (<see cref="ErrorCodes.OutcomeUnknown"/>).</summary>
    public sealed record Unavailable(string Code, string Error) : CommandOutcome;

    /// <summary>The leader's disk alarm is on: a command that adds data was refused, not applied. <paramref name="Disk"/> is the leader's reading.</summary>
    public sealed record DiskFull(DiskState Disk) : CommandOutcome;
}

/// <summary>
/// One RaftMQ node as the HTTP layer sees it: the queue state machine on the Raft runtime, plus the routing that
/// lets a client talk to any node — writes and pops go to the leader (a follower forwards them over the peer link
/// and answers with the leader's result), reads are linearizable everywhere.
/// </summary>
public sealed class QueueNode : IAsyncDisposable
{
    private readonly TaskCompletionSource<RaftHost> _started = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public QueueNode(
        NodeSettings settings, NodeIdentity identity, MemberDirectory members, QueueStateMachine stateMachine, DiskAlarm disk, TimeProvider? time = null)
    {
        Settings = settings;
        Disk = disk;
        Identity = identity;
        Members = members;
        StateMachine = stateMachine;
        StateMachine.Deliverable = Waiters.Notify;
        Time = time ?? TimeProvider.System;
        Stamper = new PublishStamper(Time);
        Forwarding = new ProposalForwarding { Results = QueueResultCodec.Instance, Admit = Admit, Prepare = Stamper.Stamp };
    }

    /// <summary>This node's clock: the leader's publish and receive stamps, and the timers of waiting receives.</summary>
    public TimeProvider Time { get; }

    /// <summary>The receives waiting on this node for messages (long polling).</summary>
    public ReceiveWaiters Waiters { get; } = new();

    /// <summary>Stamps binary publishes with this node's clock when it proposes them as the leader (its own and forwarded ones).</summary>
    public PublishStamper Stamper { get; }

    public NodeSettings Settings { get; }

    /// <summary>Who this node is: its cluster and its Raft id (fixed in its data directory at its first start).</summary>
    public NodeIdentity Identity { get; }

    /// <summary>The cluster's id, as peers and clients see it.</summary>
    public string ClusterId => Identity.ClusterId;

    /// <summary>Where the members are, from the configuration in force.</summary>
    public MemberDirectory Members { get; }

    /// <summary>
    /// The HTTP address of node <paramref name="id"/> (a Raft id), or null when unknown: <see cref="NodeAddress.Url"/>,
    /// written as every member's <c>url</c> is (<c>http://HOST:PORT</c>, the port always written, no trailing slash).
    /// </summary>
    public string? UrlOf(ulong id) => Members.AddressOf(id)?.Url;

    public QueueStateMachine StateMachine { get; }

    /// <summary>This node's disk alarm; it decides for the commands this node proposes as the leader, its own and forwarded ones.</summary>
    public DiskAlarm Disk { get; }

    /// <summary>How a follower forwards commands to the leader: queue results as bytes, the leader's disk check and its publish time.</summary>
    public ProposalForwarding Forwarding { get; }

    /// <summary>The runtime, once storage is recovered and the loop runs; null before.</summary>
    public RaftRuntime? Runtime => Host?.Runtime;

    /// <summary>The running node (storage, transport, runtime), once started; null before.</summary>
    public RaftHost? Host => _started.Task.IsCompletedSuccessfully ? _started.Task.Result : null;

    public void SetStarted(RaftHost host) => _started.TrySetResult(host);

    public void SetFailed(Exception e) => _started.TrySetException(e);

    /// <summary>Creates a deadline token for one client request.</summary>
    public CancellationTokenSource RequestDeadline(CancellationToken aborted)
    {
        var cts = CancellationTokenSource.CreateLinkedTokenSource(aborted);
        cts.CancelAfter(Settings.RequestTimeoutMs);
        return cts;
    }

    /// <summary>
    /// Runs a replicated command: on the leader it is proposed; on a follower the runtime forwards it to the leader
    /// over the peer link and returns the leader's answer; during an election it waits (until the deadline) for a
    /// leader. A command is retried only when it certainly was not applied, so nothing is applied twice.
    /// </summary>
    public Task<CommandOutcome> ExecuteAsync(QueueCommand command, CancellationToken deadline) =>
        ExecuteAsync(command.Encode(), deadline);

    /// <summary><see cref="ExecuteAsync(QueueCommand, CancellationToken)"/> of a command already encoded.</summary>
    public async Task<CommandOutcome> ExecuteAsync(byte[] encoded, CancellationToken deadline)
    {
        RaftRuntime runtime;
        try
        {
            runtime = (await _started.Task.WaitAsync(deadline).ConfigureAwait(false)).Runtime;
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested)
        {
            return new CommandOutcome.Unavailable(ErrorCodes.NoLeader, "timed out waiting for a leader; the command was not applied");
        }
        var outcome = await runtime.ProposeOrRouteAsync(() => encoded, deadline).ConfigureAwait(false);
        switch (outcome)
        {
            case ProposeOutcome.Applied applied:
                return new CommandOutcome.Applied((QueueResult)applied.Result!);
            case ProposeOutcome.Refused { Refusal: { Code: ErrorCodes.DiskFull } refusal }:
                return new CommandOutcome.DiskFull(DecodeDisk(refusal.Detail.Span));
            case ProposeOutcome.Refused refused:
                // Admit refuses only for the disk; a leader of another build could say more.
                return new CommandOutcome.Unavailable(ErrorCodes.Overloaded, refused.Refusal.Message);
            case ProposeOutcome.NotApplied { Reason: NotAppliedReason.TooLarge } tooLarge:
                // RrmqEndpoints.CheckAgainst rules this out at start-up: every body the server accepts fits.
                throw new InvalidOperationException(tooLarge.Message);
            case ProposeOutcome.NotApplied notApplied:
                return new CommandOutcome.Unavailable(
                    notApplied.Reason switch
                    {
                        NotAppliedReason.NoLeader => ErrorCodes.NoLeader,
                        NotAppliedReason.Overloaded => ErrorCodes.Overloaded,
                        _ => ErrorCodes.Stopped,
                    },
                    notApplied.Message);
            case ProposeOutcome.Unknown unknown:
                return new CommandOutcome.Unavailable(ErrorCodes.OutcomeUnknown, unknown.Message);
            default:
                // Forwarding is on (Program starts the host with it), so the runtime never hands routing back.
                throw new InvalidOperationException($"unexpected outcome {outcome}");
        }
    }

    /// <summary>
    /// The leader's admission check, for its own commands and forwarded ones: while the disk alarm is on, commands
    /// that add data are refused (the leader appends the entry first). Pops and reads pass; they free space.
    /// </summary>
    private ProposalRefusal? Admit(ReadOnlyMemory<byte> command)
    {
        if (command.Length == 0 || !AddsData((QueueOp)command.Span[0])) return null;
        if (Disk.Admit(command.Length) is { Alarm: true } full) return new ProposalRefusal(ErrorCodes.DiskFull, "the disk alarm is on", EncodeDisk(full));
        // The cluster-wide alarm: a follower whose disk is under its limit could not store the entry either.
        if (Runtime?.PeerDiskAlarm is { } peer)
        {
            var state = new DiskState(true, peer.FreeBytes, peer.LimitBytes, "") { Node = ClusterConfig.IndexOf(peer.From) };
            return new ProposalRefusal(ErrorCodes.DiskFull, $"the disk alarm of node {state.Node} is on", EncodeDisk(state));
        }
        return null;
    }

    /// <summary>This node's disk alarm as the runtime reports it to the leader (a reading at most 10 ms old: <see cref="DiskAlarm.ForReport"/>).</summary>
    public DiskReading ReadDiskAlarm()
    {
        var d = Disk.ForReport;
        return new DiskReading(d.Alarm, d.FreeBytes, d.LimitBytes);
    }

    private static bool AddsData(QueueOp op) =>
        op is QueueOp.Publish or QueueOp.PublishBatch or QueueOp.PublishMessages or QueueOp.CreateTopic or QueueOp.ConfigureTopic or QueueOp.Redrive;

    /// <summary>
    /// The free and limit bytes the refusal is about, for a follower to answer with the same numbers: the leader's
    /// (16 bytes), or a peer's followed by that node's index (24 bytes).
    /// </summary>
    private static byte[] EncodeDisk(DiskState disk)
    {
        var bytes = new byte[disk.Node is null ? 16 : 24];
        System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(bytes, disk.FreeBytes);
        System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(8), disk.LimitBytes);
        if (disk.Node is { } node) System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(16), node);
        return bytes;
    }

    private static DiskState DecodeDisk(ReadOnlySpan<byte> detail) =>
        detail.Length is 16 or 24
            ? new DiskState(true, System.Buffers.Binary.BinaryPrimitives.ReadInt64LittleEndian(detail),
                System.Buffers.Binary.BinaryPrimitives.ReadInt64LittleEndian(detail[8..]), "")
            {
                Node = detail.Length == 24 ? (int)System.Buffers.Binary.BinaryPrimitives.ReadInt64LittleEndian(detail[16..]) : null,
            }
            : new DiskState(true, 0, 0, "");

    /// <summary>Runs a query at a linearizable point on this node (ReadIndex), waiting out elections until the deadline.</summary>
    public async Task<(bool Ok, T Value, string? Error)> ReadAsync<T>(Func<QueueStateMachine, T> query, CancellationToken deadline)
    {
        try
        {
            var runtime = (await _started.Task.WaitAsync(deadline).ConfigureAwait(false)).Runtime;
            var value = await runtime.ReadWaitingForLeaderAsync(() => query(StateMachine), deadline).ConfigureAwait(false);
            return (true, value, null);
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested)
        {
            return (false, default!, "timed out waiting for a leader to confirm the read");
        }
        catch (NodeStoppedException e)
        {
            return (false, default!, e.Message);
        }
        catch (NodeOverloadedException e)
        {
            return (false, default!, e.Message);
        }
    }

    /// <summary>Nothing of its own to release: the runtime belongs to its <see cref="RaftHost"/>.</summary>
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

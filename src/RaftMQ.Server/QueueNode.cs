using System.Net;
using System.Net.Sockets;
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

    /// <summary>A forwarded request reached a node that is no longer the leader; not applied.</summary>
    public const string NotLeader = "not-leader";

    /// <summary>
    /// On a 507: the leader's disk has less free space than its <c>--disk-free-limit-mb</c>, so it refuses publishes
    /// and topic creation; not applied. Retry once consumers have drained the queue or space was freed.
    /// </summary>
    public const string DiskFull = "disk-full";
}

/// <summary>What became of a queue command sent through the cluster.</summary>
public abstract record CommandOutcome
{
    /// <summary>Committed and applied; the state machine's result.</summary>
    public sealed record Applied(QueueResult Result) : CommandOutcome;

    /// <summary>Answered by the leader this request was forwarded to; relay it as it is.</summary>
    public sealed record Relayed(int StatusCode, string ContentType, byte[] Body, string? ErrorCode) : CommandOutcome;

    /// <summary>Not done (<see cref="ErrorCodes.NoLeader"/>, ...) or not known to be done (<see cref="ErrorCodes.OutcomeUnknown"/>).</summary>
    public sealed record Unavailable(string Code, string Error) : CommandOutcome;

    /// <summary>This node is not the leader and the request was already forwarded once: the sender retries.</summary>
    public sealed record NotLeader(ulong LeaderHint) : CommandOutcome;

    /// <summary>This node is the leader and its disk alarm is on: a command that adds data was refused, not applied.</summary>
    public sealed record DiskFull(DiskState Disk) : CommandOutcome;
}

/// <summary>
/// One RaftMQ node as the HTTP layer sees it: the queue state machine on the Raft runtime, plus the routing that
/// lets a client talk to any node — writes and pops go to the leader, reads are linearizable everywhere.
/// </summary>
public sealed class QueueNode : IAsyncDisposable
{
    /// <summary>Header on a request a follower forwarded to the leader (it is never forwarded again).</summary>
    public const string ForwardedHeader = "X-RaftMQ-Forwarded";

    /// <summary>Header on a 503 from a node that is not the leader, naming the leader it knows (config index) if any.</summary>
    public const string NotLeaderHeader = "X-RaftMQ-Not-Leader";

    private readonly ClusterConfig _config;
    private readonly HttpClient _forwarder;
    private readonly TaskCompletionSource<RaftHost> _started = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public QueueNode(NodeSettings settings, ClusterConfig config, QueueStateMachine stateMachine, DiskAlarm disk)
    {
        Settings = settings;
        Disk = disk;
        _config = config;
        StateMachine = stateMachine;
        _forwarder = new HttpClient(new SocketsHttpHandler
        {
            ConnectTimeout = TimeSpan.FromMilliseconds(500),
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30),
            MaxConnectionsPerServer = 256,
        })
        {
            Timeout = Timeout.InfiniteTimeSpan,
        };
    }

    public NodeSettings Settings { get; }

    public ClusterConfig Config => _config;

    public QueueStateMachine StateMachine { get; }

    /// <summary>This node's disk alarm; it decides for the commands this node proposes as the leader.</summary>
    public DiskAlarm Disk { get; }

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
    /// Runs a replicated command: on the leader it is proposed; on a follower it is forwarded to the leader over
    /// HTTP; during an election it waits (until the deadline) for a leader. A command is retried only when it
    /// certainly was not applied, so nothing is applied twice.
    /// </summary>
    public async Task<CommandOutcome> ExecuteAsync(
        QueueCommand command, bool forwarded, string method, string pathAndQuery, byte[] body, CancellationToken deadline)
    {
        var encoded = command.Encode();
        RaftRuntime runtime;
        try
        {
            runtime = (await _started.Task.WaitAsync(deadline).ConfigureAwait(false)).Runtime;
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested)
        {
            return new CommandOutcome.Unavailable(ErrorCodes.NoLeader, "timed out waiting for a leader; the command was not applied");
        }
        // Called on the leader right before each proposal. The leader's disk decides (a follower forwards and relays
        // the answer): it is the one that would append the entry first. Pops and reads pass; they free space.
        ReadOnlyMemory<byte> CommandUnlessDiskFull() =>
            AddsData(command.Op) && Disk.Current is { Alarm: true } full ? throw new DiskAlarmOnException(full) : encoded;
        while (true)
        {
            // A forwarded request is never forwarded again, nor does it wait here for a leader: the sender routes it.
            if (forwarded && runtime.Status is { Role: not Role.Leader } status) return new CommandOutcome.NotLeader(status.Leader);
            ProposeOutcome outcome;
            try
            {
                outcome = await runtime.ProposeOrRouteAsync(CommandUnlessDiskFull, deadline).ConfigureAwait(false);
            }
            catch (DiskAlarmOnException e)
            {
                return new CommandOutcome.DiskFull(e.Disk);
            }
            switch (outcome)
            {
                case ProposeOutcome.Applied applied:
                    return new CommandOutcome.Applied((QueueResult)applied.Result!);
                case ProposeOutcome.Elsewhere elsewhere when forwarded:
                    return new CommandOutcome.NotLeader(elsewhere.LeaderId);
                case ProposeOutcome.Elsewhere elsewhere:
                    try
                    {
                        var relayed = await ForwardAsync(elsewhere.LeaderId, method, pathAndQuery, body, deadline).ConfigureAwait(false);
                        if (relayed is not null) return relayed;
                    }
                    catch (OperationCanceledException) when (deadline.IsCancellationRequested)
                    {
                        return new CommandOutcome.Unavailable(
                            ErrorCodes.OutcomeUnknown, "timed out waiting for the commit; the command may or may not have been applied");
                    }
                    try
                    {
                        // The leader we know did not take the request: wait for the next leader change.
                        await elsewhere.LeaderChanged.WaitAsync(deadline).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException) when (deadline.IsCancellationRequested)
                    {
                        return new CommandOutcome.Unavailable(ErrorCodes.NoLeader, "timed out waiting for a leader; the command was not applied");
                    }
                    continue;
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
            }
        }
    }

    /// <summary>Thrown by the command factory on a leader whose disk alarm is on: nothing is proposed.</summary>
    private sealed class DiskAlarmOnException(DiskState disk) : Exception("the disk alarm is on")
    {
        public DiskState Disk { get; } = disk;
    }

    private static bool AddsData(QueueOp op) => op is QueueOp.Publish or QueueOp.PublishBatch or QueueOp.CreateTopic;

    /// <summary>
    /// Forwards to the leader, at the same path and query on the leader's own address (never a host the request
    /// names: see <see cref="RequestTarget"/>). Null when the leader certainly did not apply the request (could not
    /// connect, or it said it is no longer the leader), so the caller may route it again.
    /// </summary>
    private async Task<CommandOutcome?> ForwardAsync(
        ulong leader, string method, string pathAndQuery, byte[] body, CancellationToken deadline)
    {
        var target = _config.Addresses[ClusterConfig.IndexOf(leader)];
        using var request = new HttpRequestMessage(new HttpMethod(method), RequestTarget.OnNode(target.HttpUri, pathAndQuery));
        request.Headers.Add(ForwardedHeader, Settings.Index.ToString(System.Globalization.CultureInfo.InvariantCulture));
        request.Content = new ByteArrayContent(body);
        request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        HttpResponseMessage response;
        try
        {
            response = await _forwarder.SendAsync(request, deadline).ConfigureAwait(false);
        }
        catch (HttpRequestException e) when (e.InnerException is SocketException { SocketErrorCode: SocketError.ConnectionRefused or SocketError.HostUnreachable or SocketError.NetworkUnreachable })
        {
            return null; // never reached the leader
        }
        catch (HttpRequestException e)
        {
            return new CommandOutcome.Unavailable(
                ErrorCodes.OutcomeUnknown,
                $"lost the connection to the leader (node {ClusterConfig.IndexOf(leader)}) after sending: the command may or may not have been applied ({e.Message})");
        }
        using (response)
        {
            if (response.StatusCode == HttpStatusCode.ServiceUnavailable && response.Headers.Contains(NotLeaderHeader)) return null;
            var bytes = await response.Content.ReadAsByteArrayAsync(deadline).ConfigureAwait(false);
            var errorCode = response.Headers.TryGetValues(ErrorCodes.Header, out var codes) ? codes.FirstOrDefault() : null;
            return new CommandOutcome.Relayed(
                (int)response.StatusCode, response.Content.Headers.ContentType?.ToString() ?? "application/json", bytes, errorCode);
        }
    }

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

    /// <summary>Releases the forwarding client; the runtime belongs to its <see cref="RaftHost"/>.</summary>
    public ValueTask DisposeAsync()
    {
        _forwarder.Dispose();
        return ValueTask.CompletedTask;
    }
}

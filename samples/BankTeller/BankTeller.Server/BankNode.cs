using BankTeller.Protocol;
using RaftMQ.Hosting;
using RaftMQ.Runtime;
using RaftMQ.StateMachine.Sessions;

namespace BankTeller.Server;

/// <summary>What became of a write sent to this node.</summary>
public abstract record WriteOutcome
{
    /// <summary>Committed and applied (or answered from the session table); the state machine's result.</summary>
    public sealed record Applied(object? Result) : WriteOutcome;

    /// <summary>Another node leads: the client is sent there (nothing was proposed here).</summary>
    public sealed record Redirect(ulong Leader) : WriteOutcome;

    /// <summary>Not applied, or not known to be (<see cref="ErrorCodes.OutcomeUnknown"/>).</summary>
    public sealed record Unavailable(string Code, string Error) : WriteOutcome;
}

/// <summary>
/// One bank node: the bank state machine under the library's client sessions, hosted by <see cref="RaftHost"/>.
/// Writes are proposed on the leader, stamped with its clock (the session table's only clock); a follower redirects
/// the client to the leader. Reads are linearizable on any node (ReadIndex, thesis §6.4).
/// </summary>
public sealed class BankNode(ServerSettings settings, ClusterConfig config)
{
    private readonly TaskCompletionSource<RaftHost> _host = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public ServerSettings Settings { get; } = settings;

    public ClusterConfig Config { get; } = config;

    /// <summary>The application state; read it only on the runtime's loop (through <see cref="ReadAsync{T}"/>).</summary>
    public BankStateMachine Bank { get; } = new();

    /// <summary>What the runtime applies: the bank behind the session table.</summary>
    public SessionStateMachine StateMachine { get; private set; } = null!;

    public RaftRuntime? Runtime => _host.Task.IsCompletedSuccessfully ? _host.Task.Result.Runtime : null;

    public SessionStateMachine CreateStateMachine() =>
        StateMachine = new SessionStateMachine(
            Bank, BankResultCodec.Instance, new ClientSessionOptions { SessionTimeout = TimeSpan.FromSeconds(Settings.SessionTimeoutSeconds) });

    public void SetStarted(RaftHost host) => _host.TrySetResult(host);

    public void SetFailed(Exception e) => _host.TrySetException(e);

    public CancellationTokenSource RequestDeadline(CancellationToken aborted)
    {
        var cts = CancellationTokenSource.CreateLinkedTokenSource(aborted);
        cts.CancelAfter(Settings.RequestTimeoutMs);
        return cts;
    }

    /// <summary>The HTTP base address of node <paramref name="nodeId"/>.</summary>
    public Uri HttpUri(ulong nodeId) => Config.Addresses[ClusterConfig.IndexOf(nodeId)].HttpUri;

    /// <summary>
    /// Proposes the envelope <paramref name="envelope"/> builds from the leader's clock. Waits out an election until the
    /// deadline; a proposal a new leader dropped was not applied and is proposed again (and a duplicate would be
    /// caught by the session table anyway).
    /// </summary>
    public async Task<WriteOutcome> WriteAsync(Func<long, byte[]> envelope, CancellationToken deadline)
    {
        RaftRuntime runtime;
        try
        {
            runtime = (await _host.Task.WaitAsync(deadline).ConfigureAwait(false)).Runtime;
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested)
        {
            return new WriteOutcome.Unavailable(ErrorCodes.NoLeader, "no leader was elected in time; not applied");
        }
        var outcome = await runtime.ProposeOrRouteAsync(
            () => envelope(TimeProvider.System.GetUtcNow().ToUnixTimeMilliseconds()), deadline).ConfigureAwait(false);
        return outcome switch
        {
            ProposeOutcome.Applied applied => new WriteOutcome.Applied(applied.Result),
            ProposeOutcome.Elsewhere elsewhere => new WriteOutcome.Redirect(elsewhere.LeaderId),
            ProposeOutcome.NotApplied { Reason: NotAppliedReason.NoLeader } =>
                new WriteOutcome.Unavailable(ErrorCodes.NoLeader, "no leader was elected in time; not applied"),
            // A bank command is a few dozen bytes, far below any command limit.
            ProposeOutcome.NotApplied { Reason: NotAppliedReason.TooLarge } tooLarge => throw new InvalidOperationException(tooLarge.Message),
            ProposeOutcome.NotApplied notApplied => new WriteOutcome.Unavailable(ErrorCodes.Unavailable, notApplied.Message),
            ProposeOutcome.Unknown { Reason: UnknownReason.TimedOut } =>
                new WriteOutcome.Unavailable(ErrorCodes.OutcomeUnknown, "the commit was not seen in time; retry with the same session and sequence"),
            ProposeOutcome.Unknown unknown => new WriteOutcome.Unavailable(ErrorCodes.OutcomeUnknown, unknown.Message),
            _ => throw new InvalidOperationException("unexpected outcome " + outcome),
        };
    }

    /// <summary>Runs <paramref name="query"/> on the bank at a linearizable point; null when no leader confirmed it in time.</summary>
    public async Task<(bool Ok, T Value)> ReadAsync<T>(Func<BankStateMachine, T> query, CancellationToken deadline)
    {
        try
        {
            var runtime = (await _host.Task.WaitAsync(deadline).ConfigureAwait(false)).Runtime;
            return (true, await runtime.ReadWaitingForLeaderAsync(() => query(Bank), deadline).ConfigureAwait(false));
        }
        catch (Exception e) when (e is OperationCanceledException or NodeStoppedException or NodeOverloadedException)
        {
            return (false, default!);
        }
    }
}

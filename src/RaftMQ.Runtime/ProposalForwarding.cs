using RaftMQ.StateMachine.Sessions;

namespace RaftMQ.Runtime;

/// <summary>
/// Turns on forwarding: a follower hands a command to the leader over the peer link
/// (<see cref="RaftMQ.Raft.ForwardProposal"/>) and gets the apply result back (<see cref="RaftMQ.Raft.ForwardResult"/>),
/// so a client may write through any node. Without it, <see cref="RaftRuntime.ProposeOrRouteAsync"/> answers
/// <see cref="ProposeOutcome.Elsewhere"/> and the application routes the command itself. Every node of a cluster
/// should have the same setting. Each bound here is per node.
/// </summary>
public sealed class ProposalForwarding
{
    /// <summary>Encodes the state machine's apply results on the leader and decodes them on the follower. Must not throw for a result the state machine returns.</summary>
    public required IResultCodec Results { get; init; }

    /// <summary>
    /// The application's admission check, run on the leader right before it proposes a command — its own callers' and
    /// forwarded ones alike: a refusal is answered (<see cref="ProposeOutcome.Refused"/>) and nothing is proposed.
    /// Null admits everything. Called from the runtime's loop and from callers' threads: it must be thread-safe,
    /// quick, and must not throw.
    /// </summary>
    public Func<ReadOnlyMemory<byte>, ProposalRefusal?>? Admit { get; init; }

    /// <summary>
    /// The application's last word on a command, run on the leader right after <see cref="Admit"/> admitted it and
    /// right before it is proposed — its own callers' commands and forwarded ones alike, never on a follower: what it
    /// returns is what goes into the log. So a value only the leader should choose (a publish time, say) is chosen once
    /// and replicated, and every node applies the same bytes. Null proposes the command as given. It runs again on
    /// each attempt (a command proposed anew after a leader change is prepared by the new leader). Called from the
    /// runtime's loop and from callers' threads: it must be thread-safe, quick, must not throw, and must return a new
    /// buffer rather than change the one it is given.
    /// </summary>
    public Func<ReadOnlyMemory<byte>, ReadOnlyMemory<byte>>? Prepare { get; init; }

    /// <summary>Most forwarded proposals a leader holds in its log, not yet answered; beyond it a forward is refused as overloaded.</summary>
    public int MaxForwardedInFlight { get; init; } = 4_096;

    /// <summary>Most forwards a follower waits on at once; beyond it a command is not sent (overloaded).</summary>
    public int MaxOutstandingForwards { get; init; } = 4_096;

    /// <summary>
    /// Largest encoded apply result sent back; a larger one is answered as unknown (it must fit a transport frame,
    /// see <c>TcpTransportOptions.MaxFrameBytes</c>).
    /// </summary>
    public int MaxResultBytes { get; init; } = 8 << 20;

    /// <summary>
    /// A forward with no answer for this long is given up as unknown (it may have been applied), also when its caller
    /// stopped waiting; callers normally give up sooner, at their own deadline.
    /// </summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid setting.</summary>
    public void Validate()
    {
        ArgumentNullException.ThrowIfNull(Results, nameof(Results));
        if (MaxForwardedInFlight <= 0) throw new ArgumentException("MaxForwardedInFlight must be positive.");
        if (MaxOutstandingForwards <= 0) throw new ArgumentException("MaxOutstandingForwards must be positive.");
        if (MaxResultBytes <= 0) throw new ArgumentException("MaxResultBytes must be positive.");
        if (Timeout <= TimeSpan.Zero) throw new ArgumentException("Timeout must be positive.");
    }
}

/// <summary>
/// The application's admission check said no (<see cref="ProposalForwarding.Admit"/>): a short machine-readable
/// <paramref name="Code"/> (at most <see cref="RaftMQ.Raft.ForwardResult.MaxCodeBytes"/> UTF-8 bytes), a message for
/// people (cut to <see cref="RaftMQ.Raft.ForwardResult.MaxMessageBytes"/>), and application-defined
/// <paramref name="Detail"/> bytes. The command was not proposed.
/// </summary>
public sealed record ProposalRefusal(string Code, string Message, ReadOnlyMemory<byte> Detail = default);

using RaftMQ.Raft;

namespace RaftMQ.Simulation;

/// <summary>Where an interceptor sees a message: as the sender hands it to the network, or as it reaches the receiver.</summary>
public enum InterceptPoint : byte
{
    BeforeSend = 0,
    BeforeReceive = 1,
}

/// <summary>What an interceptor does with a message.</summary>
public enum InterceptAction : byte
{
    /// <summary>Let it go on (to the next interceptor, then the network or the receiver).</summary>
    Pass = 0,

    /// <summary>Lose it.</summary>
    Drop = 1,

    /// <summary>Park it in <see cref="SimCluster.Held"/> until the test releases or drops it.</summary>
    Hold = 2,

    /// <summary>Replace it by <see cref="InterceptDecision.Replacement"/> and go on.</summary>
    Rewrite = 3,
}

/// <summary>An interceptor's verdict on one message.</summary>
public readonly record struct InterceptDecision(InterceptAction Action, RaftMessage? Replacement)
{
    public static InterceptDecision Pass => new(InterceptAction.Pass, null);

    public static InterceptDecision Drop => new(InterceptAction.Drop, null);

    public static InterceptDecision Hold => new(InterceptAction.Hold, null);

    public static InterceptDecision Rewrite(RaftMessage replacement)
    {
        ArgumentNullException.ThrowIfNull(replacement);
        return new InterceptDecision(InterceptAction.Rewrite, replacement);
    }
}

/// <summary>A rule installed with <see cref="SimCluster.Intercept{T}"/>; remove it with <see cref="SimCluster.RemoveInterceptor"/>.</summary>
public sealed class Interceptor
{
    private readonly Func<RaftMessage, bool> _matches;
    private readonly Func<RaftMessage, InterceptDecision> _decide;

    internal Interceptor(InterceptPoint point, Func<RaftMessage, bool> matches, Func<RaftMessage, InterceptDecision> decide)
    {
        Point = point;
        _matches = matches;
        _decide = decide;
    }

    public InterceptPoint Point { get; }

    /// <summary>How many messages this rule matched so far.</summary>
    public int Matched { get; private set; }

    internal InterceptDecision Decide(RaftMessage message)
    {
        if (!_matches(message)) return InterceptDecision.Pass;
        Matched++;
        return _decide(message);
    }
}

/// <summary>A message parked by an interceptor, waiting for <see cref="SimCluster.Release"/> or <see cref="SimCluster.DropHeld"/>.</summary>
/// <param name="Id">Unique within the run.</param>
/// <param name="Point">Where it was stopped: a released send enters the network, a released receive is delivered at once.</param>
/// <param name="Message">The message.</param>
/// <param name="HeldAt">Virtual time it was parked.</param>
public sealed record HeldMessage(long Id, InterceptPoint Point, RaftMessage Message, long HeldAt);

/// <summary>A message travelling on the simulated network.</summary>
/// <param name="Id">Unique within the run.</param>
/// <param name="Message">The message.</param>
/// <param name="SentAt">Virtual time it entered the network.</param>
/// <param name="DeliverAt">Virtual time it is due at the receiver.</param>
public sealed record InFlightMessage(long Id, RaftMessage Message, long SentAt, long DeliverAt);

using System.Buffers.Binary;

namespace RaftMQ.Queue;

/// <summary>
/// The leader's side of the publish time: given the bytes of a command about to be proposed, writes the current time
/// (Unix milliseconds from the <see cref="TimeProvider"/>) into the timestamp field of a <see cref="QueueOp.PublishMessages"/>
/// command or a consumer-group command (<see cref="QueueCommand.IsStamped"/>: the publish time, or the "now" leases
/// and delays are measured from), so the time is in the log entry and every node applying it decides the same. Other
/// commands pass unchanged. The stamps this instance gives never go back: each is at least the previous one, whatever the
/// clock does. Meant for <c>ProposalForwarding.Prepare</c>; thread-safe, never throws.
/// </summary>
public sealed class PublishStamper
{
    private readonly TimeProvider _time;
    private long _last;

    public PublishStamper(TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(time);
        _time = time;
    }

    /// <summary>The last stamp given (Unix ms); 0 before the first.</summary>
    public long Last => Interlocked.Read(ref _last);

    /// <summary>A copy of <paramref name="command"/> with the leader's time stamped, or the same bytes when it carries no time.</summary>
    public ReadOnlyMemory<byte> Stamp(ReadOnlyMemory<byte> command)
    {
        var at = QueueCommand.TimestampPosition(command.Span);
        if (at < 0) return command;
        var stamped = command.ToArray();
        BinaryPrimitives.WriteInt64LittleEndian(stamped.AsSpan(at), Next());
        return stamped;
    }

    /// <summary>max(now, last): the next stamp, never smaller than the one before.</summary>
    public long Next()
    {
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        while (true)
        {
            var last = Interlocked.Read(ref _last);
            var next = Math.Max(now, last);
            if (Interlocked.CompareExchange(ref _last, next, last) == last) return next;
        }
    }
}

using Microsoft.Extensions.Logging;
using RaftMQ.Queue;
using RaftMQ.Raft;

namespace RaftMQ.Server;

/// <summary>
/// Expiry by age on an idle cluster. Messages expire as the replicated clock moves, and only stamped commands move it
/// (docs/queue-store.md, "Retention"). So every <see cref="ServerLimits.ExpiryCheckMs"/> the leader asks the state
/// machine when the next message is due (<see cref="QueueStateMachine.NextExpiry"/>) and, once its own clock has
/// passed that, proposes a ConfigureTopic of that topic that changes nothing: a stamped command, whose time expires
/// the message on every node. Nothing is proposed while nothing is due, nor by followers; and while no topic has an
/// age limit the leader does not even read.
/// </summary>
public static partial class ExpiryTicker
{
    public static async Task RunAsync(QueueNode node, TimeProvider time, ILogger logger, CancellationToken stop)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(ServerLimits.ExpiryCheckMs), time);
        try
        {
            while (await timer.WaitForNextTickAsync(stop).ConfigureAwait(false))
            {
                try
                {
                    await TickAsync(node, time, stop).ConfigureAwait(false);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // A stopping runtime, say: the next tick tries again, and a stopped node ends with its process.
                    LogFailed(logger, e.Message);
                }
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
    }

    private static async Task TickAsync(QueueNode node, TimeProvider time, CancellationToken stop)
    {
        if (node.Runtime?.Status.Role != Role.Leader || !node.StateMachine.AnyAgeLimit()) return;
        using var deadline = node.RequestDeadline(stop);
        var (ok, next, _) = await node.ReadAsync(sm => sm.NextExpiry(), deadline.Token).ConfigureAwait(false);
        if (!ok || next is not { } due || due.DueMs > time.GetUtcNow().ToUnixTimeMilliseconds()) return;
        // Refused while a disk alarm is on, or lost to a change of leader: the next tick tries again.
        await node.ExecuteAsync(QueueCommand.ConfigureTopic(due.Topic, 0, createIfMissing: false), deadline.Token).ConfigureAwait(false);
    }

    [LoggerMessage(EventId = 40, Level = LogLevel.Warning, Message = "Expiry check failed: {Reason}")]
    private static partial void LogFailed(ILogger logger, string reason);
}

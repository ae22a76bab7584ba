using System.Collections.Concurrent;

namespace RaftMQ.Server;

/// <summary>
/// Long polling (docs/rest-api.md, "Long polling"): receives waiting for messages on this node, woken when a command
/// applied here may have made a topic's messages deliverable (a publish, a nack, a redrive), with at most
/// <see cref="ServerLimits.MaxWaitingReceives"/> waiting at once. Thread-safe.
/// </summary>
public sealed class ReceiveWaiters
{
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _signals = new(StringComparer.Ordinal);
    private int _waiting;

    /// <summary>Receives waiting now.</summary>
    public int Waiting => Volatile.Read(ref _waiting);

    /// <summary>Takes one of the waiting places; false when all are taken (the caller then answers at once).</summary>
    public bool TryEnter()
    {
        while (true)
        {
            var n = Volatile.Read(ref _waiting);
            if (n >= ServerLimits.MaxWaitingReceives) return false;
            if (Interlocked.CompareExchange(ref _waiting, n + 1, n) == n) return true;
        }
    }

    /// <summary>
    /// Gives back a place taken by <see cref="TryEnter"/>. The last one out drops every signal, so the signals of
    /// topics nobody waits on (deleted ones included) do not pile up; a receive that took one just before misses at
    /// most one wake-up, which its next recheck makes up for.
    /// </summary>
    public void Exit()
    {
        if (Interlocked.Decrement(ref _waiting) == 0) _signals.Clear();
    }

    /// <summary>A task completed at the next <see cref="Notify"/> of <paramref name="topic"/>.</summary>
    public Task Next(string topic) =>
        _signals.GetOrAdd(topic, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;

    /// <summary>Wakes every receive waiting on <paramref name="topic"/> (called on the apply loop; cheap when none waits).</summary>
    public void Notify(string topic)
    {
        if (_signals.TryRemove(topic, out var signal)) signal.TrySetResult();
    }
}

namespace RaftMQ.Server;

/// <summary>
/// Long polling (docs/rest-api.md, "Long polling"): the receives waiting on this node, by topic and group, with at
/// most <see cref="ServerLimits.MaxWaitingReceives"/> at once. Each (topic, group) that has waiters holds one signal,
/// completed and replaced when an applied command may have made that group's messages deliverable
/// (<see cref="Notify"/>, called by the state machine on the apply loop). A waiter takes the signal before it reads the
/// state, so a command applied after the read always wakes it. Memory: one entry per (topic, group) waited on, dropped
/// with its last waiter. Thread-safe.
/// </summary>
public sealed class ReceiveWaiters
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, Dictionary<string, Slot>> _byTopic = new(StringComparer.Ordinal);
    private int _waiting;

    /// <summary>Receives waiting now.</summary>
    public int Waiting => Volatile.Read(ref _waiting);

    /// <summary>
    /// Takes one of the waiting places for a receive of <paramref name="group"/> on <paramref name="topic"/>; null
    /// when all <see cref="ServerLimits.MaxWaitingReceives"/> are taken (the caller then answers at once). Dispose the
    /// waiter to give the place back.
    /// </summary>
    public Waiter? TryEnter(string topic, string group)
    {
        lock (_gate)
        {
            if (_waiting >= ServerLimits.MaxWaitingReceives) return null;
            if (!_byTopic.TryGetValue(topic, out var groups)) _byTopic.Add(topic, groups = new Dictionary<string, Slot>(StringComparer.Ordinal));
            if (!groups.TryGetValue(group, out var slot)) groups.Add(group, slot = new Slot());
            slot.Waiters++;
            Volatile.Write(ref _waiting, _waiting + 1);
            return new Waiter(this, topic, group, slot);
        }
    }

    /// <summary>
    /// Wakes the receives waiting for <paramref name="group"/> of <paramref name="topic"/>, or for every group of it
    /// when <paramref name="group"/> is null. Called on the apply loop: O(groups waited on in the topic); a dictionary
    /// look-up when none waits.
    /// </summary>
    public void Notify(string topic, string? group)
    {
        lock (_gate)
        {
            if (!_byTopic.TryGetValue(topic, out var groups)) return;
            if (group is null)
            {
                foreach (var slot in groups.Values) slot.Fire();
            }
            else if (groups.TryGetValue(group, out var slot))
            {
                slot.Fire();
            }
        }
    }

    private void Leave(string topic, string group, Slot slot)
    {
        lock (_gate)
        {
            Volatile.Write(ref _waiting, _waiting - 1);
            if (--slot.Waiters > 0) return;
            var groups = _byTopic[topic];
            groups.Remove(group);
            if (groups.Count == 0) _byTopic.Remove(topic);
        }
    }

    private Task Current(Slot slot)
    {
        lock (_gate) return slot.Signal.Task;
    }

    internal sealed class Slot
    {
        public int Waiters;

        /// <summary>One woken receive of the group at a time reads and proposes (see <see cref="Waiter.TakeTurnAsync"/>).</summary>
        public readonly SemaphoreSlim Turn = new(1, 1);

        public TaskCompletionSource Signal = New();

        /// <summary>Completes the current signal and puts a fresh one in its place (under the gate).</summary>
        public void Fire()
        {
            var fired = Signal;
            Signal = New();
            fired.TrySetResult();
        }

        private static TaskCompletionSource New() => new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private sealed class Release(SemaphoreSlim turn) : IDisposable
    {
        private int _done;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _done, 1) == 0) turn.Release();
        }
    }

    /// <summary>One waiting receive's place: its signal, and the place given back on dispose.</summary>
    public sealed class Waiter : IDisposable
    {
        private readonly ReceiveWaiters _owner;
        private readonly Slot _slot;
        private bool _disposed;

        internal Waiter(ReceiveWaiters owner, string topic, string group, Slot slot)
        {
            (_owner, Topic, Group, _slot) = (owner, topic, group, slot);
        }

        public string Topic { get; }

        public string Group { get; }

        /// <summary>A task completed by the next <see cref="Notify"/> of this waiter's group; take it before reading the state.</summary>
        public Task Signal() => _owner.Current(_slot);

        /// <summary>
        /// Waits until no other woken receive of this group on this node is reading or proposing, and holds the turn
        /// until disposed. A command that makes one message deliverable wakes every receive waiting for the group;
        /// taking turns, the first proposes and gets it, and the others then read that nothing is left and go back to
        /// waiting, instead of each proposing a receive that comes back empty.
        /// </summary>
        public async Task<IDisposable> TakeTurnAsync(CancellationToken cancellationToken)
        {
            await _slot.Turn.WaitAsync(cancellationToken).ConfigureAwait(false);
            return new Release(_slot.Turn);
        }

        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            _owner.Leave(Topic, Group, _slot);
        }
    }
}

using System.Collections.Concurrent;
using System.Threading.Channels;
using RaftMQ.Raft;
using RaftMQ.Transport;

namespace RaftMQ.Runtime.Tests;

/// <summary>Connects runtimes in this process: a message goes straight into the addressee's inbox.</summary>
internal sealed class InProcessNetwork
{
    private readonly ConcurrentDictionary<ulong, Action<RaftMessage>> _receivers = new();
    private long _isolated;

    public ITransport Join(ulong id) => new Endpoint(this, id);

    /// <summary>From now on, messages to and from node <paramref name="id"/> are lost.</summary>
    public void Isolate(ulong id) => Interlocked.Exchange(ref _isolated, (long)id);

    private readonly object _holdGate = new();
    private readonly Dictionary<ulong, List<RaftMessage>> _held = []; // under _holdGate

    /// <summary>From now on, messages to node <paramref name="id"/> wait, in order, until <see cref="Release"/>.</summary>
    public void Hold(ulong id)
    {
        lock (_holdGate) _held[id] = [];
    }

    /// <summary>The messages held for node <paramref name="id"/> so far.</summary>
    public IReadOnlyList<RaftMessage> Held(ulong id)
    {
        lock (_holdGate) return _held.TryGetValue(id, out var held) ? [.. held] : [];
    }

    /// <summary>Delivers the messages held for node <paramref name="id"/>, and the later ones as they come.</summary>
    public void Release(ulong id)
    {
        lock (_holdGate)
        {
            if (!_held.Remove(id, out var held)) return;
            foreach (var m in held) Deliver(m);
        }
    }

    private bool Lost(RaftMessage m)
    {
        var isolated = (ulong)Interlocked.Read(ref _isolated);
        return isolated != 0 && (m.From == isolated || m.To == isolated);
    }

    private void Send(RaftMessage message)
    {
        if (Lost(message)) return;
        lock (_holdGate)
        {
            if (_held.TryGetValue(message.To, out var held))
            {
                held.Add(message);
                return;
            }
        }
        Deliver(message);
    }

    private void Deliver(RaftMessage message)
    {
        if (_receivers.TryGetValue(message.To, out var receiver)) receiver(message);
    }

    private sealed class Endpoint(InProcessNetwork network, ulong id) : ITransport
    {
        private readonly Channel<RaftMessage> _inbound = Channel.CreateUnbounded<RaftMessage>();

        public ChannelReader<RaftMessage> Inbound => _inbound.Reader;

        public void SetReceiver(Action<RaftMessage> receiver) => network._receivers[id] = receiver;

        public Task StartAsync(CancellationToken cancellationToken = default) => Task.CompletedTask;

        public void Send(RaftMessage message) => network.Send(message);

        public ValueTask DisposeAsync()
        {
            network._receivers.TryRemove(id, out _);
            return ValueTask.CompletedTask;
        }
    }
}

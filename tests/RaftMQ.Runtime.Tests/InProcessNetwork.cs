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

/// <summary>Three runtimes (voters 1, 2, 3) over real storage, joined by an <see cref="InProcessNetwork"/>, with forwarding on.</summary>
internal static class InProcessCluster
{
    /// <summary>Starts a runtime per machine in <paramref name="machines"/> (node i + 1 runs machine i), each in its own directory under <paramref name="directory"/>.</summary>
    public static RaftRuntime[] Start(string directory, InProcessNetwork network, IReadOnlyList<RaftMQ.StateMachine.IStateMachine> machines, ulong seed, TimeSpan forwardTimeout)
    {
        var nodes = new RaftRuntime[machines.Count];
        for (var i = 0; i < nodes.Length; i++)
        {
            var id = (ulong)(i + 1);
            var options = new RaftRuntimeOptions
            {
                // A long election timeout, so that a busy machine does not start elections of its own mid-test.
                Raft = new RaftOptions { Id = id, Voters = [1, 2, 3], ElectionTicks = 100, HeartbeatTicks = 2, RandomSeed = seed + id },
                Node = new NodeDriverOptions { Forwarding = new ProposalForwarding { Results = new IntCodec(), Timeout = forwardTimeout } },
                TickInterval = TimeSpan.FromMilliseconds(10),
            };
            nodes[i] = new RaftRuntime(options, RaftMQ.Storage.NodeStorage.Open(Path.Combine(directory, "n" + id)), machines[i], network.Join(id));
            nodes[i].Start();
        }
        return nodes;
    }
}

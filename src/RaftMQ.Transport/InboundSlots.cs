using System.Net;

namespace RaftMQ.Transport;

/// <summary>
/// The inbound connection bounds of a <see cref="TcpTransport"/>: at most <c>maxConnections</c> open, of which at
/// most <c>maxPending</c> still in their handshake, at most <c>maxPendingPerAddress</c> of those from one IP address.
/// A newcomer over a pending bound takes the slot of the oldest pending connection (of its own address first), so
/// a flood of junk connections only ever shortens the life of other junk: the newest connection, which may be a
/// restarted peer, always gets its whole handshake timeout. Only when every slot holds an authenticated peer is a
/// newcomer refused. Safe to use from any thread.
/// </summary>
/// <typeparam name="T">What the caller closes when a connection is evicted.</typeparam>
internal sealed class InboundSlots<T>(int maxConnections, int maxPending, int maxPendingPerAddress)
    where T : class
{
    private readonly Lock gate = new();
    private readonly LinkedList<Slot> pending = new();
    private readonly Dictionary<IPAddress, int> pendingPerAddress = [];
    private int authenticated;

    /// <summary>Connections in their handshake.</summary>
    public int Pending
    {
        get
        {
            lock (gate) return pending.Count;
        }
    }

    /// <summary>Authenticated connections.</summary>
    public int Authenticated
    {
        get
        {
            lock (gate) return authenticated;
        }
    }

    /// <summary>
    /// Takes a slot for a new connection from <paramref name="address"/>; null when it must be refused. Adds to
    /// <paramref name="evicted"/> the pending connections that lost their slot to it: the caller closes them.
    /// </summary>
    public Slot? Admit(IPAddress address, T connection, List<T> evicted)
    {
        ArgumentNullException.ThrowIfNull(address);
        address = address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
        lock (gate)
        {
            if (pendingPerAddress.GetValueOrDefault(address) >= maxPendingPerAddress)
            {
                Evict(OldestFrom(address), evicted);
            }

            if ((pending.Count >= maxPending || pending.Count + authenticated >= maxConnections) && pending.First is { } oldest)
            {
                Evict(oldest.Value, evicted);
            }

            if (pending.Count + authenticated >= maxConnections)
            {
                return null;
            }

            var slot = new Slot(address, connection);
            slot.Node = pending.AddLast(slot);
            pendingPerAddress[address] = pendingPerAddress.GetValueOrDefault(address) + 1;
            return slot;
        }
    }

    /// <summary>Moves a connection that passed its handshake to the authenticated slots; false if it was evicted meanwhile.</summary>
    public bool Authenticate(Slot slot)
    {
        lock (gate)
        {
            if (slot.Node is null)
            {
                return false;
            }

            RemovePending(slot);
            slot.IsAuthenticated = true;
            authenticated++;
            return true;
        }
    }

    /// <summary>Frees the slot of a connection that has closed; safe to call once per slot, evicted or not.</summary>
    public void Release(Slot slot)
    {
        lock (gate)
        {
            if (slot.Node is not null)
            {
                RemovePending(slot);
            }
            else if (slot.IsAuthenticated)
            {
                slot.IsAuthenticated = false;
                authenticated--;
            }
        }
    }

    private Slot OldestFrom(IPAddress address)
    {
        for (var node = pending.First; node is not null; node = node.Next)
        {
            if (node.Value.Address.Equals(address))
            {
                return node.Value;
            }
        }

        throw new InvalidOperationException($"no pending connection from {address} although {pendingPerAddress[address]} are counted");
    }

    private void Evict(Slot slot, List<T> evicted)
    {
        RemovePending(slot);
        evicted.Add(slot.Connection);
    }

    private void RemovePending(Slot slot)
    {
        pending.Remove(slot.Node!);
        slot.Node = null;
        var left = pendingPerAddress[slot.Address] - 1;
        if (left == 0)
        {
            pendingPerAddress.Remove(slot.Address);
        }
        else
        {
            pendingPerAddress[slot.Address] = left;
        }
    }

    /// <summary>One connection's place: pending (in the list) or authenticated, until released.</summary>
    public sealed class Slot(IPAddress address, T connection)
    {
        public IPAddress Address { get; } = address;

        public T Connection { get; } = connection;

        internal LinkedListNode<Slot>? Node { get; set; }

        internal bool IsAuthenticated { get; set; }
    }
}

namespace RaftMQ.Transport;

/// <summary>
/// What a transport dropped, refused and moved; monotonic, safe to read from any thread. A refusal or error is counted
/// after its log line is written, so whoever sees the count also finds the line.
/// </summary>
public sealed class TransportCounters
{
    private long sendQueueDrops;
    private long oversizedDrops;
    private long unknownPeerDrops;
    private long unsupportedDrops;
    private long inboundDrops;
    private long spoofedDrops;
    private long messagesSent;
    private long messagesReceived;
    private long bytesSent;
    private long bytesReceived;
    private long outboundConnects;
    private long inboundAccepts;
    private long authFailures;
    private long protocolErrors;
    private long connectionsRefused;

    /// <summary>Messages dropped because their peer's send queue was full (the oldest goes).</summary>
    public long SendQueueDrops => Volatile.Read(ref sendQueueDrops);

    /// <summary>Outgoing messages larger than the frame cap.</summary>
    public long OversizedDrops => Volatile.Read(ref oversizedDrops);

    /// <summary>Outgoing messages to an id that is not a configured peer.</summary>
    public long UnknownPeerDrops => Volatile.Read(ref unknownPeerDrops);

    /// <summary>Outgoing messages of a type the codec cannot encode.</summary>
    public long UnsupportedDrops => Volatile.Read(ref unsupportedDrops);

    /// <summary>Received messages dropped because the inbound queue was full.</summary>
    public long InboundDrops => Volatile.Read(ref inboundDrops);

    /// <summary>Received messages whose From is not the authenticated peer, or whose To is not this node.</summary>
    public long SpoofedDrops => Volatile.Read(ref spoofedDrops);

    /// <summary>Messages written and flushed to a connection.</summary>
    public long MessagesSent => Volatile.Read(ref messagesSent);

    /// <summary>Messages received and queued on the inbound channel.</summary>
    public long MessagesReceived => Volatile.Read(ref messagesReceived);

    /// <summary>Bytes of frames (header included) written and flushed to a connection.</summary>
    public long BytesSent => Volatile.Read(ref bytesSent);

    /// <summary>Bytes of frames (header included) read from authenticated connections.</summary>
    public long BytesReceived => Volatile.Read(ref bytesReceived);

    /// <summary>Outbound connections that completed the handshake.</summary>
    public long OutboundConnects => Volatile.Read(ref outboundConnects);

    /// <summary>Inbound connections that completed the handshake.</summary>
    public long InboundAccepts => Volatile.Read(ref inboundAccepts);

    /// <summary>Handshakes refused: wrong cluster, secret or node id, or a malformed hello.</summary>
    public long AuthFailures => Volatile.Read(ref authFailures);

    /// <summary>Authenticated connections closed for breaking the protocol (bad frame, bad message).</summary>
    public long ProtocolErrors => Volatile.Read(ref protocolErrors);

    /// <summary>
    /// Inbound connections closed by the connection bounds: refused at accept because every one of
    /// <see cref="TcpTransportOptions.MaxInboundConnections"/> slots held an authenticated peer, or closed in their
    /// handshake to make room for a newer connection (<see cref="TcpTransportOptions.MaxPendingHandshakes"/>,
    /// <see cref="TcpTransportOptions.MaxPendingHandshakesPerAddress"/>).
    /// </summary>
    public long ConnectionsRefused => Volatile.Read(ref connectionsRefused);

    internal void SendQueueDropped() => Interlocked.Increment(ref sendQueueDrops);

    internal void OversizedDropped() => Interlocked.Increment(ref oversizedDrops);

    internal void UnknownPeerDropped() => Interlocked.Increment(ref unknownPeerDrops);

    internal void UnsupportedDropped() => Interlocked.Increment(ref unsupportedDrops);

    internal void InboundDropped() => Interlocked.Increment(ref inboundDrops);

    internal void SpoofedDropped() => Interlocked.Increment(ref spoofedDrops);

    internal void Sent(int count, long bytes)
    {
        Interlocked.Add(ref messagesSent, count);
        Interlocked.Add(ref bytesSent, bytes);
    }

    internal void BytesRead(long bytes) => Interlocked.Add(ref bytesReceived, bytes);

    internal void Received() => Interlocked.Increment(ref messagesReceived);

    internal void OutboundConnected() => Interlocked.Increment(ref outboundConnects);

    internal void InboundAccepted() => Interlocked.Increment(ref inboundAccepts);

    internal void AuthFailed() => Interlocked.Increment(ref authFailures);

    internal void ProtocolError() => Interlocked.Increment(ref protocolErrors);

    internal void ConnectionRefused() => Interlocked.Increment(ref connectionsRefused);
}

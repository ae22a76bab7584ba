using System.Net;

namespace RaftMQ.Transport;

/// <summary>Settings and bounds of a <see cref="TcpTransport"/>.</summary>
public sealed class TcpTransportOptions
{
    /// <summary>Smallest accepted <see cref="ClusterSecret"/>: HMAC-SHA256 keys shorter than this are guessable.</summary>
    public const int MinSecretBytes = 16;

    /// <summary>Longest <see cref="ClusterId"/> in UTF-8 bytes (it travels in a one-byte length field).</summary>
    public const int MaxClusterIdBytes = 255;

    /// <summary>This node's id: never 0 (Raft uses 0 for "none").</summary>
    public ulong NodeId { get; set; }

    /// <summary>Where to listen for peers; port 0 picks a free port (see <see cref="TcpTransport.LocalEndPoint"/>).</summary>
    public IPEndPoint ListenEndPoint { get; set; } = new(IPAddress.Loopback, 0);

    /// <summary>The other voters and their peer endpoints. Only these ids may connect.</summary>
    public IDictionary<ulong, EndPoint> Peers { get; init; } = new Dictionary<ulong, EndPoint>();

    /// <summary>Names the cluster; a peer of another cluster is refused at the handshake.</summary>
    public string ClusterId { get; set; } = string.Empty;

    /// <summary>The shared secret peers prove knowledge of (HMAC-SHA256 key), at least <see cref="MinSecretBytes"/>.</summary>
    public byte[] ClusterSecret { get; set; } = [];

    /// <summary>
    /// Mutual TLS on every peer connection (docs/security.md, "TLS"); null (the default) runs the handshake over plain
    /// TCP. Every node of a cluster must agree: a plain peer and a TLS peer refuse each other at the handshake.
    /// </summary>
    public PeerTlsOptions? Tls { get; set; }

    /// <summary>Largest frame payload accepted or sent; a bigger incoming frame closes the connection, a bigger outgoing message is dropped.</summary>
    public int MaxFrameBytes { get; set; } = 16 << 20;

    /// <summary>Messages queued per peer; when full the oldest is dropped.</summary>
    public int SendQueueCapacity { get; set; } = 4096;

    /// <summary>Most bytes of encoded messages queued for one peer; a message that would pass it is dropped.</summary>
    public long MaxQueuedBytesPerPeer { get; set; } = 64L << 20;

    /// <summary>Messages received but not yet read from <see cref="ITransport.Inbound"/>; when full new ones are dropped.</summary>
    public int InboundQueueCapacity { get; set; } = 8192;

    /// <summary>Bytes written to a connection before a flush; queued frames are batched up to this.</summary>
    public int MaxBatchBytes { get; set; } = 1 << 20;

    /// <summary>
    /// Open inbound connections, authenticated or not. A newcomer beyond it takes the slot of the oldest connection
    /// still in its handshake; only when every slot holds an authenticated peer is it closed on accept.
    /// </summary>
    public int MaxInboundConnections { get; set; } = 64;

    /// <summary>
    /// Inbound connections still in their handshake, from all addresses. A newcomer beyond it closes the oldest of
    /// them, so junk connections cannot keep a peer out: the newest always gets its <see cref="HandshakeTimeout"/>.
    /// </summary>
    public int MaxPendingHandshakes { get; set; } = 16;

    /// <summary>Inbound connections still in their handshake from one IP address; a newcomer beyond it closes that address's oldest.</summary>
    public int MaxPendingHandshakesPerAddress { get; set; } = 8;

    /// <summary>At most one log line per this interval for each kind of refusal (refused, evicted, failed handshake).</summary>
    public TimeSpan RefusalLogInterval { get; set; } = RateLimitedLog.DefaultInterval;

    /// <summary>Pending connections the OS queues before this node accepts them.</summary>
    public int ListenBacklog { get; set; } = 128;

    /// <summary>Time allowed for a TCP connect.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(3);

    /// <summary>
    /// Time allowed for the whole handshake, on either side: two round trips and two HMACs, a few milliseconds on a
    /// LAN (with <see cref="Tls"/>, the TLS handshake before them too). It bounds how long a silent connection holds a
    /// pending slot.
    /// </summary>
    public TimeSpan HandshakeTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Time allowed for one flush; a peer that stops reading for longer is disconnected.</summary>
    public TimeSpan WriteTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>First reconnect delay; it doubles per failed attempt up to <see cref="MaxReconnectDelay"/>, with jitter.</summary>
    public TimeSpan InitialReconnectDelay { get; set; } = TimeSpan.FromMilliseconds(50);

    /// <summary>Upper bound of the reconnect delay.</summary>
    public TimeSpan MaxReconnectDelay { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid setting.</summary>
    public void Validate()
    {
        if (NodeId == 0) throw new ArgumentException("NodeId must not be 0.");
        if (ListenEndPoint is null) throw new ArgumentException("ListenEndPoint is required.");
        if (Peers is null) throw new ArgumentException("Peers must not be null.");
        foreach (var (id, endPoint) in Peers) ValidatePeer(id, endPoint);
        if (string.IsNullOrEmpty(ClusterId)) throw new ArgumentException("ClusterId is required.");
        if (System.Text.Encoding.UTF8.GetByteCount(ClusterId) > MaxClusterIdBytes)
            throw new ArgumentException($"ClusterId must be at most {MaxClusterIdBytes} UTF-8 bytes.");
        if (ClusterSecret is null || ClusterSecret.Length < MinSecretBytes)
            throw new ArgumentException($"ClusterSecret must be at least {MinSecretBytes} bytes.");
        Tls?.Validate();
        if (MaxFrameBytes < 1024 || MaxFrameBytes > 1 << 30)
            throw new ArgumentException("MaxFrameBytes must be between 1 KiB and 1 GiB.");
        if (SendQueueCapacity <= 0) throw new ArgumentException("SendQueueCapacity must be positive.");
        if (MaxQueuedBytesPerPeer <= 0) throw new ArgumentException("MaxQueuedBytesPerPeer must be positive.");
        if (InboundQueueCapacity <= 0) throw new ArgumentException("InboundQueueCapacity must be positive.");
        if (MaxBatchBytes <= 0) throw new ArgumentException("MaxBatchBytes must be positive.");
        if (MaxInboundConnections <= 0) throw new ArgumentException("MaxInboundConnections must be positive.");
        if (MaxPendingHandshakes <= 0 || MaxPendingHandshakes > MaxInboundConnections)
            throw new ArgumentException("MaxPendingHandshakes must be positive and at most MaxInboundConnections.");
        if (MaxPendingHandshakesPerAddress <= 0 || MaxPendingHandshakesPerAddress > MaxPendingHandshakes)
            throw new ArgumentException("MaxPendingHandshakesPerAddress must be positive and at most MaxPendingHandshakes.");
        if (RefusalLogInterval <= TimeSpan.Zero) throw new ArgumentException("RefusalLogInterval must be positive.");
        if (ListenBacklog <= 0) throw new ArgumentException("ListenBacklog must be positive.");
        if (ConnectTimeout <= TimeSpan.Zero || HandshakeTimeout <= TimeSpan.Zero || WriteTimeout <= TimeSpan.Zero)
            throw new ArgumentException("ConnectTimeout, HandshakeTimeout and WriteTimeout must be positive.");
        if (InitialReconnectDelay <= TimeSpan.Zero || MaxReconnectDelay < InitialReconnectDelay)
            throw new ArgumentException("Reconnect delays must be positive and MaxReconnectDelay >= InitialReconnectDelay.");
    }

    internal void ValidatePeer(ulong id, EndPoint endPoint)
    {
        if (id == 0 || id == NodeId) throw new ArgumentException($"Peer id {id} must be non-zero and differ from NodeId.");
        if (endPoint is null) throw new ArgumentException($"Peer {id} has no endpoint.");
    }
}

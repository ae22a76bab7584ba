using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using RaftMQ.Raft;

namespace RaftMQ.Transport;

/// <summary>
/// Raft messages over TCP. Each node listens on its peer endpoint and keeps one outbound connection per peer;
/// messages from A to B travel on A's outbound connection, so each connection carries one direction only.
/// Every connection is authenticated (see <see cref="Handshake"/>) before any Raft message is read from it.
/// </summary>
public sealed class TcpTransport : ITransport
{
    private readonly TcpTransportOptions options;
    private readonly ILogger logger;
    private readonly TimeProvider time;
    private readonly Channel<RaftMessage> inbound;
    private readonly ConcurrentDictionary<ulong, PeerSender> peers = new();
    private readonly ConcurrentDictionary<ulong, InboundLink> authenticated = new();
    private readonly ConcurrentDictionary<InboundLink, byte> links = new();
    private readonly InboundSlots<InboundLink> slots;
    private readonly RateLimitedLog refusalLog;
    private readonly RateLimitedLog evictionLog;
    private readonly RateLimitedLog handshakeFailureLog;
    private readonly CancellationTokenSource stop = new();
    private readonly Lock gate = new();
    private Socket? listener;
    private Task? acceptLoop;
    private volatile Action<RaftMessage>? receiver;
    private volatile Action<ulong>? linkDownHandler;
    private bool started;
    private bool disposed;

    public TcpTransport(TcpTransportOptions options, ILogger<TcpTransport>? logger = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        this.options = options;
        this.logger = logger ?? (ILogger)NullLogger.Instance;
        time = timeProvider ?? TimeProvider.System;
        slots = new(options.MaxInboundConnections, options.MaxPendingHandshakes, options.MaxPendingHandshakesPerAddress);
        refusalLog = new RateLimitedLog(options.RefusalLogInterval, time);
        evictionLog = new RateLimitedLog(options.RefusalLogInterval, time);
        handshakeFailureLog = new RateLimitedLog(options.RefusalLogInterval, time);
        Instruments = new TransportInstruments(Counters, () => LinksDown().Count);

        // Full means the node's loop is behind: drop new arrivals rather than stall every peer's reader (§5.3 retries).
        inbound = Channel.CreateBounded<RaftMessage>(
            new BoundedChannelOptions(options.InboundQueueCapacity) { FullMode = BoundedChannelFullMode.Wait });
        foreach (var (id, endPoint) in options.Peers)
        {
            peers[id] = NewSender(id, endPoint);
        }
    }

    /// <summary>This node's id.</summary>
    public ulong NodeId => options.NodeId;

    /// <inheritdoc/>
    public ChannelReader<RaftMessage> Inbound => inbound.Reader;

    /// <summary>Drops, refusals and traffic, for metrics and tests.</summary>
    public TransportCounters Counters { get; } = new();

    /// <summary>The counters as instruments on the <see cref="TransportInstruments.MeterName"/> meter, for the transport's lifetime.</summary>
    public TransportInstruments Instruments { get; }

    /// <summary>The bound listening endpoint (with the real port when 0 was asked for); only after <see cref="StartAsync"/>.</summary>
    public IPEndPoint LocalEndPoint =>
        (IPEndPoint?)listener?.LocalEndPoint ?? throw new InvalidOperationException("The transport has not been started.");

    /// <inheritdoc/>
    public Task StartAsync(CancellationToken cancellationToken = default)
    {
        lock (gate)
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            if (started)
            {
                throw new InvalidOperationException("The transport is already started.");
            }

            var socket = new Socket(options.ListenEndPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                // A restarted node must rebind its port while old connections linger in TIME_WAIT: SO_REUSEADDR. Set
                // as a raw option, because .NET's ReuseAddress also sets SO_REUSEPORT on Unix, which lets a second
                // process listen on a port a running node listens on (the kernel then shares the connections out
                // between them) instead of failing with "Address already in use". On Windows the option would let
                // another process steal the port, and is not needed there.
                AllowRebindInTimeWait(socket);

                socket.Bind(options.ListenEndPoint);
                socket.Listen(options.ListenBacklog);
            }
            catch (SocketException e)
            {
                // Most often the port is in use: say which port, in words an operator can act on.
                socket.Dispose();
                throw new IOException($"cannot listen for peers on {options.ListenEndPoint}: {e.Message}", e);
            }
            catch
            {
                socket.Dispose();
                throw;
            }

            listener = socket;
            started = true;
            logger.Listening(options.NodeId, LocalEndPoint.ToString());
            acceptLoop = Task.Run(AcceptLoopAsync, CancellationToken.None);
            foreach (var sender in peers.Values)
            {
                sender.Start();
            }
        }

        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public void Send(RaftMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (peers.TryGetValue(message.To, out var sender))
        {
            sender.Enqueue(message);
        }
        else
        {
            Counters.UnknownPeerDropped();
        }
    }

    /// <inheritdoc/>
    public bool IsLinkDown(ulong peerId) => peers.TryGetValue(peerId, out var sender) && sender.LinkDown;

    /// <summary>The peers whose link is down now (<see cref="IsLinkDown"/>), in id order.</summary>
    public IReadOnlyList<ulong> LinksDown() => [.. peers.Where(p => p.Value.LinkDown).Select(p => p.Key).Order()];

    /// <inheritdoc/>
    public void SetLinkDownHandler(Action<ulong> handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        linkDownHandler = handler;
    }

    /// <inheritdoc/>
    public void SetReceiver(Action<RaftMessage> receiver)
    {
        ArgumentNullException.ThrowIfNull(receiver);
        this.receiver = receiver;
        // A reader that saw no receiver an instant ago may still queue one message after this drain; it stays
        // unread, which Raft treats like any lost message.
        while (inbound.Reader.TryRead(out var queued))
        {
            receiver(queued);
        }
    }

    /// <summary>Adds a peer, or moves an existing one to a new endpoint (its link is redialled).</summary>
    public void SetPeer(ulong id, EndPoint endPoint)
    {
        options.ValidatePeer(id, endPoint);
        lock (gate)
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            if (peers.TryGetValue(id, out var existing))
            {
                existing.UpdateEndPoint(endPoint);
                return;
            }

            var sender = NewSender(id, endPoint);
            peers[id] = sender;
            if (started)
            {
                sender.Start();
            }
        }
    }

    /// <summary>Forgets a peer: its queue and connections are closed and it may no longer connect.</summary>
    public async ValueTask RemovePeerAsync(ulong id)
    {
        PeerSender? sender;
        lock (gate)
        {
            peers.TryRemove(id, out sender);
        }

        if (authenticated.TryGetValue(id, out var link))
        {
            link.Scope.Close("peer removed");
        }

        if (sender is not null)
        {
            await sender.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Closes the listener and every connection at once; queued messages are discarded.</summary>
    public async ValueTask DisposeAsync()
    {
        lock (gate)
        {
            if (disposed)
            {
                return;
            }

            disposed = true;
        }

        await stop.CancelAsync().ConfigureAwait(false);
        listener?.Dispose();
        if (acceptLoop is not null)
        {
            await acceptLoop.ConfigureAwait(false);
        }

        foreach (var sender in peers.Values)
        {
            await sender.DisposeAsync().ConfigureAwait(false);
        }

        // The accept loop has ended, so every link's Completion is set and no new link appears.
        foreach (var link in links.Keys)
        {
            await link.Completion!.ConfigureAwait(false);
        }

        inbound.Writer.TryComplete();
        Instruments.Dispose();
        stop.Dispose();
    }

    private PeerSender NewSender(ulong id, EndPoint endPoint) =>
        new(id, endPoint, options, Counters, logger, time, peer => linkDownHandler?.Invoke(peer));

    /// <summary>
    /// SO_REUSEADDR alone (not SO_REUSEPORT): rebinding a port whose old connections are in TIME_WAIT works, binding a
    /// port another socket listens on fails.
    /// </summary>
    private static void AllowRebindInTimeWait(Socket socket)
    {
        if (OperatingSystem.IsLinux())
        {
            socket.SetRawSocketOption(1 /* SOL_SOCKET */, 2 /* SO_REUSEADDR */, BitConverter.GetBytes(1));
        }
        else if (OperatingSystem.IsMacOS() || OperatingSystem.IsFreeBSD())
        {
            socket.SetRawSocketOption(0xffff /* SOL_SOCKET */, 4 /* SO_REUSEADDR */, BitConverter.GetBytes(1));
        }
    }

    private async Task AcceptLoopAsync()
    {
        var socketListener = listener!;
        while (!stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await socketListener.AcceptAsync(stop.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException || stop.IsCancellationRequested)
            {
                return;
            }
            catch (SocketException)
            {
                // A transient accept failure (out of descriptors, a reset before accept): pause briefly, keep serving.
                try
                {
                    await Task.Delay(options.InitialReconnectDelay, time, stop.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                continue;
            }

            Admit(socket);
        }
    }

    /// <summary>Gives a new connection a slot (closing the pending ones it displaces), or closes it when there is none.</summary>
    private void Admit(Socket socket)
    {
        var remote = socket.RemoteEndPoint as IPEndPoint;
        var link = new InboundLink(new PeerConnection(socket), new ConnectionScope(stop.Token));
        var evicted = new List<InboundLink>(1);
        link.Slot = slots.Admit(remote?.Address ?? IPAddress.None, link, evicted);
        foreach (var old in evicted)
        {
            old.Scope.Close("evicted by a newer connection");
            if (evictionLog.TryLog(out var suppressed))
            {
                logger.HandshakeEvicted(old.Connection.Remote, options.MaxPendingHandshakes, options.MaxPendingHandshakesPerAddress, suppressed);
            }

            Counters.ConnectionRefused();
        }

        if (link.Slot is null)
        {
            if (refusalLog.TryLog(out var suppressed))
            {
                logger.TooManyConnections(link.Connection.Remote, options.MaxInboundConnections, suppressed);
            }

            Counters.ConnectionRefused();

            link.Scope.Dispose();
            _ = link.Connection.DisposeAsync().AsTask();
            return;
        }

        links.TryAdd(link, 0);
        link.Completion = Task.Run(() => ServeAsync(link), CancellationToken.None);
    }

    /// <summary>Authenticates one inbound connection, then delivers its messages until it ends. Never throws.</summary>
    private async Task ServeAsync(InboundLink link)
    {
        var connection = link.Connection;
        var scope = link.Scope;
        ulong peerId = 0;
        try
        {
            using (var handshakeTimeout = new CancellationTokenSource(options.HandshakeTimeout, time))
            using (var linked = CancellationTokenSource.CreateLinkedTokenSource(scope.Token, handshakeTimeout.Token))
            {
                string? tlsRefusal = null;
                try
                {
                    if (options.Tls is { } tls)
                    {
                        try
                        {
                            await connection.SecureAsServerAsync(tls.ServerOptions(why => tlsRefusal = why), linked.Token).ConfigureAwait(false);
                        }
                        catch (Exception ex) when (ex is System.Security.Authentication.AuthenticationException or IOException)
                        {
                            throw new HandshakeException(tlsRefusal is not null
                                ? $"TLS: refused the peer's certificate: {tlsRefusal}"
                                : $"TLS handshake failed: {ex.Message} (a peer without TLS, or not speaking TLS?)", ex);
                        }
                    }

                    peerId = await Handshake.AcceptAsync(connection, options, id => RefusePeer(id, connection), linked.Token).ConfigureAwait(false);
                }
                catch (Exception ex) when (!scope.Token.IsCancellationRequested)
                {
                    var why = ex switch
                    {
                        HandshakeException => ex.Message,
                        OperationCanceledException => $"handshake timed out after {options.HandshakeTimeout.TotalMilliseconds} ms",
                        _ => $"connection failed during the handshake: {ex.Message}",
                    };
                    if (handshakeFailureLog.TryLog(out var suppressed))
                    {
                        logger.InboundHandshakeFailed(connection.Remote, why, suppressed);
                    }

                    Counters.AuthFailed();
                    return;
                }
            }

            if (!slots.Authenticate(link.Slot!))
            {
                // Evicted just as it finished: its scope is closed, so it must not replace a live connection.
                peerId = 0;
                return;
            }

            Counters.InboundAccepted();
            logger.InboundConnected(peerId, connection.Remote);

            // A peer that reconnects (say, after a restart) supersedes its old connection.
            authenticated.AddOrUpdate(
                peerId,
                link,
                (_, old) =>
                {
                    old.Scope.Close("replaced by a newer connection from the same peer");
                    return link;
                });
            var reason = await ReceiveAsync(connection, peerId, scope.Token).ConfigureAwait(false);
            logger.InboundLost(peerId, connection.Remote, reason);
        }
        catch (ProtocolException ex)
        {
            logger.ProtocolError(peerId, connection.Remote, ex.Message);
            Counters.ProtocolError();
        }
        catch (OperationCanceledException) when (scope.Token.IsCancellationRequested)
        {
            if (peerId != 0 && !stop.IsCancellationRequested)
            {
                logger.InboundLost(peerId, connection.Remote, scope.Reason);
            }
        }
        catch (Exception ex)
        {
            logger.InboundLost(peerId, connection.Remote, ex.Message);
        }
        finally
        {
            if (peerId != 0)
            {
                authenticated.TryRemove(KeyValuePair.Create(peerId, link));
            }

            await connection.DisposeAsync().ConfigureAwait(false);
            scope.Dispose();
            links.TryRemove(link, out _);
            slots.Release(link.Slot!);
        }
    }

    /// <summary>
    /// Why the dialer that says it is <paramref name="id"/> may not connect, or null: it must be a configured peer and,
    /// with TLS, have presented a certificate naming the address that peer is configured at.
    /// </summary>
    private string? RefusePeer(ulong id, PeerConnection connection)
    {
        if (!peers.TryGetValue(id, out var sender))
        {
            return $"node {id} is not a configured peer";
        }

        return options.Tls is null || PeerTlsOptions.Refuses(connection.RemoteCertificate, sender.EndPoint) is not { } why
            ? null
            : $"TLS: node {id} is not who it says: {why}";
    }

    /// <summary>Reads frames and delivers their messages; returns why the peer went away.</summary>
    /// <exception cref="ProtocolException">A bad frame or message: the caller closes the connection.</exception>
    private async Task<string> ReceiveAsync(PeerConnection connection, ulong peerId, CancellationToken cancellationToken)
    {
        var reader = connection.Reader;
        while (true)
        {
            var result = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            var buffer = result.Buffer;
            while (Frame.TryRead(ref buffer, options.MaxFrameBytes, out var payload))
            {
                Counters.BytesRead(Frame.HeaderSize + payload.Length);
                Deliver(RaftMessageCodec.Read(payload), peerId);
            }

            if (result.IsCompleted)
            {
                return buffer.IsEmpty
                    ? "peer closed the connection"
                    : throw new ProtocolException($"connection closed inside a frame ({buffer.Length} bytes pending)");
            }

            reader.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    private void Deliver(RaftMessage message, ulong peerId)
    {
        // An authenticated peer may speak only for itself, and only to this node.
        if (message.From != peerId || message.To != options.NodeId)
        {
            logger.SpoofedMessage(message.GetType().Name, peerId, message.From, message.To);
            Counters.SpoofedDropped();
            return;
        }

        if (receiver is { } direct)
        {
            Counters.Received();
            direct(message);
        }
        else if (inbound.Writer.TryWrite(message))
        {
            Counters.Received();
        }
        else
        {
            Counters.InboundDropped();
        }
    }

    private sealed class InboundLink(PeerConnection connection, ConnectionScope scope)
    {
        public PeerConnection Connection { get; } = connection;

        public ConnectionScope Scope { get; } = scope;

        public Task? Completion { get; set; }

        public InboundSlots<InboundLink>.Slot? Slot { get; set; }
    }
}

using System.Net;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using RaftMQ.Raft;

namespace RaftMQ.Transport;

/// <summary>
/// The outbound half of one peer link: a bounded queue that drops its oldest message when full, and a loop that
/// keeps one authenticated connection open (reconnecting with jittered exponential backoff) and writes every
/// queued message to it, flushing once per batch.
/// <para>
/// While the connection is up, the thread that queues a message writes it at once when no other thread is writing
/// (one token, <see cref="writing"/>): a socket with room takes it without blocking, so a message costs no thread
/// wake-up. A write the socket cannot take at once (its buffer is full) is handed to the loop, which waits for it
/// under the write timeout and writes what queued meanwhile; so does everything queued while the link was down.
/// </para>
/// </summary>
internal sealed class PeerSender : IAsyncDisposable
{
    private readonly ulong peerId;
    private readonly TcpTransportOptions options;
    private readonly TransportCounters counters;
    private readonly ILogger logger;
    private readonly TimeProvider time;
    private readonly Channel<RaftMessage> queue;
    private long queuedBytes;
    private readonly CancellationTokenSource stop = new();
    private readonly Lock gate = new();
    private EndPoint endPoint;
    private ConnectionScope? current;
    private Task? loop;
    private bool disposed;
    private volatile bool linkDown;
    private int writing; // 1 while one thread writes to the connection: the pump, or a thread that queued a message
    private volatile Live? live; // the connection queuing threads may write to; null while the link is down
    private Task? handedOver; // a flush a queuing thread started and could not finish; its token passes to the pump
    private readonly Channel<byte> wake = Channel.CreateBounded<byte>(
        new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite, SingleReader = true });
    private readonly Action<ulong>? linkWentDown;

    public PeerSender(
        ulong peerId, EndPoint endPoint, TcpTransportOptions options, TransportCounters counters, ILogger logger, TimeProvider time,
        Action<ulong>? linkWentDown = null)
    {
        this.linkWentDown = linkWentDown;
        this.peerId = peerId;
        this.endPoint = endPoint;
        this.options = options;
        this.counters = counters;
        this.logger = logger;
        this.time = time;

        // Drop the oldest: a newer message supersedes it (a newer heartbeat, a later AppendEntries), and Raft
        // re-sends whatever the peer still lacks (§5.3).
        queue = Channel.CreateBounded<RaftMessage>(
            new BoundedChannelOptions(options.SendQueueCapacity)
            {
                FullMode = BoundedChannelFullMode.DropOldest,
                SingleReader = true,
                SingleWriter = false,
            },
            dropped =>
            {
                Interlocked.Add(ref queuedBytes, -SizeOf(dropped));
                counters.SendQueueDropped();
            });
    }

    /// <summary>
    /// Queues a message; never blocks. A message that would take the queue past its byte bound is dropped (Raft
    /// resends what the peer still needs). After disposal the message is silently discarded.
    /// </summary>
    public void Enqueue(RaftMessage message)
    {
        var size = SizeOf(message);
        if (Interlocked.Add(ref queuedBytes, size) > options.MaxQueuedBytesPerPeer)
        {
            Interlocked.Add(ref queuedBytes, -size);
            counters.SendQueueDropped();
            return;
        }

        if (!queue.Writer.TryWrite(message))
        {
            Interlocked.Add(ref queuedBytes, -size);
            return;
        }

        WriteQueuedNow();
    }

    /// <summary>The connection a queuing thread may write to, and its scope.</summary>
    private sealed record Live(PeerConnection Connection, ConnectionScope Scope);

    /// <summary>
    /// On a thread that queued a message: writes the queue to the connection now, unless the link is down or another
    /// thread is writing (which looks at the queue again after it lets go). Never blocks on the socket.
    /// </summary>
    private void WriteQueuedNow()
    {
        while (live is { } link && Interlocked.CompareExchange(ref writing, 1, 0) == 0)
        {
            if (!ReferenceEquals(link, live) || link.Scope.Token.IsCancellationRequested)
            {
                // The link went down meanwhile, or is going (closed, not yet torn down): its messages wait in the
                // queue for the next connection, as they would have without this thread.
                ReleaseWriting();
                if (ReferenceEquals(link, live)) return;
                continue;
            }

            try
            {
                while (WriteBatch(link.Connection, out var count, out var bytes))
                {
                    var flush = link.Connection.FlushAsync(link.Scope.Token);
                    if (!flush.IsCompleted)
                    {
                        // The socket's buffer is full: the pump waits for this flush (under the write timeout) and
                        // holds the token until it is done.
                        Volatile.Write(ref handedOver, Sent(flush, count, bytes));
                        wake.Writer.TryWrite(0);
                        return;
                    }

                    flush.GetAwaiter().GetResult();
                    counters.Sent(count, bytes);
                }
            }
            catch (Exception ex)
            {
                link.Scope.Close(ex is OperationCanceledException ? "connection closed" : ex.Message);
            }

            // Let go, then look again: a message queued while this thread held the token found it taken.
            ReleaseWriting();
            if (queue.Reader.Count == 0) return;
        }
    }

    private void ReleaseWriting() => Interlocked.Exchange(ref writing, 0);

    private async Task Sent(ValueTask flush, int count, long bytes)
    {
        await flush.ConfigureAwait(false);
        counters.Sent(count, bytes);
    }

    /// <summary>
    /// Dequeues up to <see cref="TcpTransportOptions.MaxBatchBytes"/> of messages into the connection's buffer; false
    /// when nothing was written (the queue was empty, or held only messages that cannot be sent).
    /// </summary>
    private bool WriteBatch(PeerConnection connection, out int count, out long bytes)
    {
        count = 0;
        bytes = 0;
        while (bytes < options.MaxBatchBytes && TryDequeue(out var message))
        {
            if (!RaftMessageCodec.TryGetSize(message, out var size))
            {
                // A message type without an encoding must not take the link down with it.
                counters.UnsupportedDropped();
                logger.UnsupportedMessage(message.GetType().Name, peerId);
                continue;
            }

            if (size > options.MaxFrameBytes)
            {
                counters.OversizedDropped();
                logger.MessageTooLarge(message.GetType().Name, size, peerId, options.MaxFrameBytes);
                continue;
            }

            Frame.WriteHeader(connection.Writer, (int)size);
            RaftMessageCodec.Write(message, connection.Writer);
            bytes += Frame.HeaderSize + size;
            count++;
        }

        return count > 0;
    }

    /// <summary>
    /// True from the moment a connection to the peer ends or a dial fails until a connection is made again; false
    /// before the first dial. The outbound connection is watched for end of stream, so a peer process that dies is
    /// noticed at once, not at the next send.
    /// </summary>
    public bool LinkDown => linkDown;

    /// <summary>The link goes down: the callback hears of it once per outage (not once per failed redial).</summary>
    private void MarkDown()
    {
        if (linkDown) return;
        linkDown = true;
        try
        {
            linkWentDown?.Invoke(peerId);
        }
        catch (Exception ex)
        {
            logger.LinkDownHandlerFailed(ex, peerId);
        }
    }

    /// <summary>Bytes of messages waiting for this peer.</summary>
    public long QueuedBytes => Interlocked.Read(ref queuedBytes);

    private static long SizeOf(RaftMessage message) =>
        RaftMessageCodec.TryGetSize(message, out var size) ? size + Frame.HeaderSize : Frame.HeaderSize;

    private bool TryDequeue([System.Diagnostics.CodeAnalysis.MaybeNullWhen(false)] out RaftMessage message)
    {
        if (!queue.Reader.TryRead(out message)) return false;
        Interlocked.Add(ref queuedBytes, -SizeOf(message));
        return true;
    }



    public void Start()
    {
        lock (gate)
        {
            if (!disposed)
            {
                loop ??= Task.Run(RunAsync);
            }
        }
    }

    /// <summary>Points the link at a new address; the current connection, if any, is closed and redialled.</summary>
    public void UpdateEndPoint(EndPoint newEndPoint)
    {
        lock (gate)
        {
            if (newEndPoint.Equals(endPoint))
            {
                return;
            }

            endPoint = newEndPoint;
            current?.Close("peer endpoint changed");
        }
    }

    public async ValueTask DisposeAsync()
    {
        Task? running;
        lock (gate)
        {
            if (disposed)
            {
                return;
            }

            disposed = true;
            running = loop;
        }

        queue.Writer.TryComplete();
        wake.Writer.TryComplete();
        await stop.CancelAsync().ConfigureAwait(false);

        if (running is not null)
        {
            await running.ConfigureAwait(false);
        }

        stop.Dispose();
    }

    private async Task RunAsync()
    {
        var attempt = 0;
        string? lastFailure = null;
        while (!stop.IsCancellationRequested)
        {
            EndPoint target;
            lock (gate)
            {
                target = endPoint;
            }

            PeerConnection connection;
            try
            {
                connection = await DialAsync(target).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                MarkDown();
                // One line per outage, not one per retry: log only when the reason changes.
                var reason = ex.Message;
                if (reason != lastFailure)
                {
                    if (ex is HandshakeException)
                    {
                        logger.AuthenticationFailed("to", $"peer {peerId} at {EndPointText.Of(target)}", reason);
                    }
                    else
                    {
                        logger.PeerUnreachable(peerId, EndPointText.Of(target), reason);
                    }

                    lastFailure = reason;
                }

                if (ex is HandshakeException)
                {
                    counters.AuthFailed();
                }

                if (!await BackoffAsync(attempt++).ConfigureAwait(false))
                {
                    return;
                }

                continue;
            }

            attempt = 0;
            lastFailure = null;
            linkDown = false;
            counters.OutboundConnected();
            logger.OutboundConnected(peerId, EndPointText.Of(target));
            string lost;
            await using (connection.ConfigureAwait(false))
            {
                lost = await PumpAsync(connection).ConfigureAwait(false);
            }

            if (stop.IsCancellationRequested)
            {
                return;
            }

            logger.OutboundLost(peerId, lost);
            if (!await BackoffAsync(attempt++).ConfigureAwait(false))
            {
                return;
            }
        }
    }

    /// <summary>Connects and authenticates, each step under its own deadline.</summary>
    private async Task<PeerConnection> DialAsync(EndPoint target)
    {
        PeerConnection connection;
        using (var connectTimeout = new CancellationTokenSource(options.ConnectTimeout, time))
        using (var linked = CancellationTokenSource.CreateLinkedTokenSource(stop.Token, connectTimeout.Token))
        {
            try
            {
                connection = await PeerConnection.ConnectAsync(target, linked.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (connectTimeout.IsCancellationRequested && !stop.IsCancellationRequested)
            {
                throw new TimeoutException($"connect timed out after {options.ConnectTimeout.TotalMilliseconds} ms");
            }
        }

        using var handshakeTimeout = new CancellationTokenSource(options.HandshakeTimeout, time);
        using var handshakeLinked = CancellationTokenSource.CreateLinkedTokenSource(stop.Token, handshakeTimeout.Token);
        try
        {
            if (options.Tls is { } tls)
            {
                await SecureAsync(connection, tls, target, handshakeLinked.Token).ConfigureAwait(false);
            }

            await Handshake.DialAsync(connection, options, peerId, handshakeLinked.Token).ConfigureAwait(false);
            return connection;
        }
        catch (OperationCanceledException) when (handshakeTimeout.IsCancellationRequested && !stop.IsCancellationRequested)
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw new HandshakeException($"handshake timed out after {options.HandshakeTimeout.TotalMilliseconds} ms");
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>The TLS handshake as the client: the listener must present a certificate of the cluster's CA naming <paramref name="target"/>.</summary>
    private async Task SecureAsync(PeerConnection connection, PeerTlsOptions tls, EndPoint target, CancellationToken cancellationToken)
    {
        string? refusal = null;
        try
        {
            await connection.SecureAsClientAsync(tls.ClientOptions(target, why => refusal = why), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is System.Security.Authentication.AuthenticationException or IOException)
        {
            throw new HandshakeException(refusal is not null
                ? $"TLS: refused node {peerId}'s certificate: {refusal}"
                : $"TLS handshake failed: {ex.Message} (does node {peerId} run with TLS, with a certificate of the same CA, and accept this node's?)", ex);
        }
    }

    /// <summary>Where this peer is dialled.</summary>
    public EndPoint EndPoint
    {
        get
        {
            lock (gate)
            {
                return endPoint;
            }
        }
    }

    /// <summary>
    /// Writes what queuing threads could not (messages queued while the link was down, flushes the socket did not take
    /// at once) until the connection fails or the transport stops; returns why it ended.
    /// </summary>
    private async Task<string> PumpAsync(PeerConnection connection)
    {
        using var scope = new ConnectionScope(stop.Token);
        lock (gate)
        {
            current = scope;
        }

        var watch = WatchAsync(connection, scope);
        var holding = false; // whether this loop holds the writing token
        try
        {
            live = new Live(connection, scope);
            wake.Writer.TryWrite(0); // what queued while the link was down
            while (await wake.Reader.WaitToReadAsync(scope.Token).ConfigureAwait(false))
            {
                wake.Reader.TryRead(out _);
                if (Interlocked.Exchange(ref handedOver, null) is { } flush)
                {
                    holding = true; // a queuing thread's flush: its token is now this loop's
                    if (!await WithinWriteTimeoutAsync(flush, scope).ConfigureAwait(false)) break;
                }
                else if (Interlocked.CompareExchange(ref writing, 1, 0) == 0)
                {
                    holding = true;
                }
                else
                {
                    continue; // a queuing thread writes, and looks at the queue again when it lets go
                }

                var timedOut = false;
                while (WriteBatch(connection, out var count, out var bytes))
                {
                    if (!await WithinWriteTimeoutAsync(Sent(connection.FlushAsync(scope.Token), count, bytes), scope).ConfigureAwait(false))
                    {
                        timedOut = true;
                        break;
                    }
                }

                if (timedOut) break;
                holding = false;
                ReleaseWriting();
                if (queue.Reader.Count > 0) wake.Writer.TryWrite(0);
            }

            scope.Close("send queue closed");
        }
        catch (OperationCanceledException) when (scope.Token.IsCancellationRequested)
        {
        }
        catch (Exception ex)
        {
            // Any failure of this one connection ends it; the loop redials. Nothing reaches the sender.
            scope.Close(ex.Message);
        }
        finally
        {
            MarkDown();
            lock (gate)
            {
                current = null;
            }

            scope.Close("connection ended");
            await StopWritingAsync(holding).ConfigureAwait(false);
            await watch.ConfigureAwait(false);
        }

        return scope.Reason;
    }

    /// <summary>
    /// Waits for <paramref name="flush"/> no longer than the write timeout: a peer that stops reading would otherwise
    /// hold it, and the link, forever. False (the connection closed) when it timed out.
    /// </summary>
    private async Task<bool> WithinWriteTimeoutAsync(Task flush, ConnectionScope scope)
    {
        if (flush.IsCompleted)
        {
            await flush.ConfigureAwait(false);
            return true;
        }

        try
        {
            await flush.WaitAsync(options.WriteTimeout, time, scope.Token).ConfigureAwait(false);
            return true;
        }
        catch (TimeoutException)
        {
            scope.Close($"write timed out after {options.WriteTimeout.TotalMilliseconds} ms");
            return false;
        }
    }

    /// <summary>
    /// The link is going down: no queuing thread may start writing to it, and one that writes now finishes first (it
    /// never blocks), so the connection can be disposed. Takes the token (unless this loop holds it already) and
    /// leaves it free for the next connection.
    /// </summary>
    private async Task StopWritingAsync(bool holding)
    {
        live = null;
        var spin = new SpinWait();
        while (!holding)
        {
            if (Interlocked.Exchange(ref handedOver, null) is { } flush)
            {
                try
                {
                    await flush.ConfigureAwait(false); // the scope is closed: it ends at once
                }
                catch (Exception)
                {
                }

                break;
            }

            if (Interlocked.CompareExchange(ref writing, 1, 0) == 0) break;
            spin.SpinOnce();
        }

        ReleaseWriting();
    }

    /// <summary>
    /// Reads the outbound connection only to notice it die: the peer never sends on it after the handshake, so end
    /// of stream, an error or any byte at all closes it, and an idle link learns of a dead peer before its next send.
    /// </summary>
    private static async Task WatchAsync(PeerConnection connection, ConnectionScope scope)
    {
        try
        {
            var result = await connection.Reader.ReadAsync(scope.Token).ConfigureAwait(false);
            scope.Close(result.Buffer.IsEmpty ? "peer closed the connection" : "peer sent unexpected bytes");
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception ex)
        {
            scope.Close(ex.Message);
        }
    }

    /// <summary>Waits the backoff for <paramref name="attempt"/>; false when the transport stops meanwhile.</summary>
    private async Task<bool> BackoffAsync(int attempt)
    {
        var ceiling = Math.Min(
            options.MaxReconnectDelay.Ticks,
            options.InitialReconnectDelay.Ticks * Math.Pow(2, Math.Min(attempt, 30)));

        // Equal jitter: half fixed, half random, so peers that lost the same leader do not redial in lockstep.
        var half = (long)ceiling / 2;
        var delay = TimeSpan.FromTicks(half + Random.Shared.NextInt64(half + 1));
        try
        {
            await Task.Delay(delay, time, stop.Token).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }
}

using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;

namespace RaftMQ.Transport;

/// <summary>
/// One TCP connection to or from a peer, read and written through pipes; over TLS once <see cref="SecureAsServerAsync"/>
/// or <see cref="SecureAsClientAsync"/> has run (before anything else was read or written).
/// </summary>
internal sealed class PeerConnection : IAsyncDisposable
{
    private const int PipeBufferBytes = 64 * 1024;

    private readonly Socket socket;
    private readonly NetworkStream stream;
    private SslStream? tls;
    private int disposed;

    public PeerConnection(Socket socket)
    {
        this.socket = socket;

        // Raft messages are small and latency-bound (heartbeats, votes); batching is done by the writer loop.
        socket.NoDelay = true;
        Remote = socket.RemoteEndPoint?.ToString() ?? "?";
        stream = new NetworkStream(socket, ownsSocket: true);
        Attach(stream);
    }

    public PipeReader Reader { get; private set; } = null!;

    public PipeWriter Writer { get; private set; } = null!;

    /// <summary>The certificate the peer presented in the TLS handshake; null without TLS.</summary>
    public X509Certificate? RemoteCertificate => tls?.RemoteCertificate;

    /// <summary>Runs the listener's TLS handshake; from then on the pipes read and write through TLS.</summary>
    public async Task SecureAsServerAsync(SslServerAuthenticationOptions options, CancellationToken cancellationToken)
    {
        var ssl = new SslStream(stream, leaveInnerStreamOpen: true);
        tls = ssl;
        await ssl.AuthenticateAsServerAsync(options, cancellationToken).ConfigureAwait(false);
        Attach(ssl);
    }

    /// <summary>Runs the dialer's TLS handshake; from then on the pipes read and write through TLS.</summary>
    public async Task SecureAsClientAsync(SslClientAuthenticationOptions options, CancellationToken cancellationToken)
    {
        var ssl = new SslStream(stream, leaveInnerStreamOpen: true);
        tls = ssl;
        await ssl.AuthenticateAsClientAsync(options, cancellationToken).ConfigureAwait(false);
        Attach(ssl);
    }

    private void Attach(Stream over)
    {
        // The pipes over the plain stream have read and written nothing yet (the TLS handshake comes first), so they
        // hold no bytes and are simply replaced.
        Reader = PipeReader.Create(over, new StreamPipeReaderOptions(bufferSize: PipeBufferBytes, leaveOpen: true));
        Writer = PipeWriter.Create(over, new StreamPipeWriterOptions(minimumBufferSize: PipeBufferBytes, leaveOpen: true));
    }

    /// <summary>The remote address, for logs.</summary>
    public string Remote { get; }

    public static async Task<PeerConnection> ConnectAsync(EndPoint endPoint, CancellationToken cancellationToken)
    {
        var socket = endPoint is IPEndPoint ip
            ? new Socket(ip.AddressFamily, SocketType.Stream, ProtocolType.Tcp)
            : new Socket(SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await socket.ConnectAsync(endPoint, cancellationToken).ConfigureAwait(false);
            return new PeerConnection(socket);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Reads one whole frame and returns a copy of its payload (handshake messages are small).</summary>
    public async ValueTask<byte[]> ReadFrameAsync(int maxPayloadBytes, CancellationToken cancellationToken)
    {
        while (true)
        {
            var result = await Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            var buffer = result.Buffer;
            if (Frame.TryRead(ref buffer, maxPayloadBytes, out var payload))
            {
                var bytes = payload.ToArray();
                Reader.AdvanceTo(buffer.Start);
                return bytes;
            }

            if (result.IsCompleted || result.IsCanceled)
            {
                throw new EndOfStreamException("The peer closed the connection.");
            }

            Reader.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    /// <summary>Writes one frame and flushes it.</summary>
    public async ValueTask WriteFrameAsync(ReadOnlyMemory<byte> payload, CancellationToken cancellationToken)
    {
        Frame.WriteHeader(Writer, payload.Length);
        Writer.Write(payload.Span);
        await FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        var result = await Writer.FlushAsync(cancellationToken).ConfigureAwait(false);
        if (result.IsCompleted || result.IsCanceled)
        {
            throw new EndOfStreamException("The peer closed the connection.");
        }
    }

    /// <summary>Closes the socket at once; buffered bytes not yet flushed are discarded (Raft retries).</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref disposed, 1) != 0)
        {
            return;
        }

        // Close the socket first so completing the writer cannot block on, or fail flushing to, a dead peer.
        socket.Dispose();
        try
        {
            await Reader.CompleteAsync().ConfigureAwait(false);
            await Writer.CompleteAsync().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or SocketException)
        {
        }

        if (tls is not null)
        {
            try
            {
                await tls.DisposeAsync().ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or ObjectDisposedException or SocketException)
            {
            }
        }

        await stream.DisposeAsync().ConfigureAwait(false);
    }
}

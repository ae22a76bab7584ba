using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using Microsoft.AspNetCore.Connections;

namespace RaftMQ.Hosting;

/// <summary>
/// On an HTTPS port, a connection whose first byte is not a TLS handshake record (a plain HTTP client, curl with
/// <c>http://</c>) gets one plain <c>400</c> saying the port speaks HTTPS, and is closed, rather than a TLS error it
/// cannot show or a silent reset. Nothing is logged per connection. TLS connections pass through untouched (the byte
/// is only looked at, not consumed).
/// </summary>
internal static class PlainHttpRefusal
{
    /// <summary>The first byte of every TLS connection: a handshake record (ContentType 22).</summary>
    private const byte TlsHandshakeRecord = 0x16;

    /// <summary>How long a new connection may stay silent before its first byte; then it is closed.</summary>
    private static readonly TimeSpan FirstByteTimeout = TimeSpan.FromSeconds(10);

    private static readonly byte[] Answer = Encoding.ASCII.GetBytes(Response());

    public static async Task OnConnectionAsync(ConnectionContext connection, ConnectionDelegate next)
    {
        var input = connection.Transport.Input;
        ReadResult result;
        using (var silent = CancellationTokenSource.CreateLinkedTokenSource(connection.ConnectionClosed))
        {
            silent.CancelAfter(FirstByteTimeout);
            try
            {
                result = await input.ReadAsync(silent.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }

        var buffer = result.Buffer;
        if (buffer.IsEmpty)
        {
            input.AdvanceTo(buffer.End);
            return;
        }

        if (buffer.FirstSpan[0] == TlsHandshakeRecord)
        {
            input.AdvanceTo(buffer.Start); // nothing consumed: the TLS layer reads the same bytes
            await next(connection).ConfigureAwait(false);
            return;
        }

        // Consume what arrived (a plain request), so that closing does not reset the connection before the answer is read.
        input.AdvanceTo(buffer.End);
        try
        {
            await connection.Transport.Output.WriteAsync(Answer, connection.ConnectionClosed).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or ConnectionResetException)
        {
        }
    }

    private static string Response()
    {
        const string body = """{"success": false, "error": "this port speaks HTTPS only (the node runs with TLS): use https://"}""";
        return "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nX-RaftMQ-Error: tls-required\r\nConnection: close\r\n"
            + $"Content-Length: {body.Length}\r\n\r\n{body}";
    }
}

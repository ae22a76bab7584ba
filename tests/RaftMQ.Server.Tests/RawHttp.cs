using System.Net;
using System.Net.Sockets;
using System.Text;

namespace RaftMQ.Server.Tests;

/// <summary>
/// HTTP/1.1 over a bare socket, for requests HttpClient will not send (absolute-form and authority-form request
/// targets, arbitrary bytes). One request per connection (<c>Connection: close</c>); the answer is read to the end.
/// The Host header names the authority of a target that has one, as a client sending such a target would (Kestrel
/// refuses a request whose Host differs from its absolute-form target's).
/// </summary>
internal static class RawHttp
{
    /// <summary>An answer: status code, header block, and body (chunked transfer encoding undone).</summary>
    public sealed record Response(int Status, string Headers, string Body);

    public static Task<Response> SendAsync(int port, string method, string target, string? body = null, TimeSpan? timeout = null) =>
        SendAsync(port, method, target, body is null ? null : Encoding.UTF8.GetBytes(body), timeout);

    public static Task<Response> SendAsync(int port, string method, string target, byte[]? body, TimeSpan? timeout = null)
    {
        var head = new StringBuilder()
            .Append(method).Append(' ').Append(target).Append(" HTTP/1.1\r\n")
            .Append("Host: ").Append(HostFor(port, target)).Append("\r\n")
            .Append("Connection: close\r\n");
        if (body is not null) head.Append("Content-Type: application/json\r\nContent-Length: ").Append(body.Length).Append("\r\n");
        head.Append("\r\n");
        return SendBytesAsync(port, [.. Encoding.ASCII.GetBytes(head.ToString()), .. body ?? []], timeout);
    }

    /// <summary>
    /// Sends <paramref name="request"/> as it is (any bytes, valid HTTP or not) and reads the answer to the end. A
    /// server that refuses a request before reading all of it closes with bytes unread, which resets the connection
    /// (RST rather than FIN) after its answer: an answer read before the reset counts, a reset before any answer throws.
    /// </summary>
    public static async Task<Response> SendBytesAsync(int port, byte[] request, TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(20));
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, port, cts.Token);
        var stream = client.GetStream();
        using var answer = new MemoryStream();
        try
        {
            await stream.WriteAsync(request, cts.Token);
            await stream.CopyToAsync(answer, cts.Token);
        }
        catch (IOException e) when (e.InnerException is SocketException { SocketErrorCode: SocketError.ConnectionReset or SocketError.Shutdown }
                                    && answer.Length > 0)
        {
            // Reset after the answer arrived (above): what was read is the answer.
        }
        return Parse(answer.ToArray());
    }

    private static string HostFor(int port, string target) =>
        target.StartsWith('/') || target == "*" ? $"127.0.0.1:{port}"
        : Uri.TryCreate(target, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https" ? uri.Authority
        : target; // authority-form

    private static Response Parse(byte[] bytes)
    {
        var end = bytes.AsSpan().IndexOf("\r\n\r\n"u8);
        if (end < 0) throw new InvalidDataException($"no complete HTTP answer: '{Encoding.UTF8.GetString(bytes)}'");
        var headers = Encoding.ASCII.GetString(bytes, 0, end);
        var status = int.Parse(headers.Split("\r\n")[0].Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
        var body = bytes.AsSpan(end + 4);
        var chunked = headers.Contains("Transfer-Encoding: chunked", StringComparison.OrdinalIgnoreCase);
        return new Response(status, headers, Encoding.UTF8.GetString(chunked ? Dechunk(body) : body));
    }

    private static byte[] Dechunk(ReadOnlySpan<byte> chunked)
    {
        using var body = new MemoryStream();
        while (true)
        {
            var eol = chunked.IndexOf("\r\n"u8);
            var size = Convert.ToInt32(Encoding.ASCII.GetString(chunked[..eol]).Split(';')[0].Trim(), 16);
            if (size == 0) return body.ToArray();
            body.Write(chunked.Slice(eol + 2, size));
            chunked = chunked[(eol + 2 + size + 2)..];
        }
    }
}

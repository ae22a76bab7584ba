using System.Net;
using System.Net.Sockets;
using System.Text;

namespace RaftMQ.Client.Tests;

/// <summary>
/// A scripted HTTP/1.1 endpoint on loopback that claims to be the leader on /v1/status and answers every other
/// request with <see cref="Behaviour"/>: an exact response, or dropping the connection after reading the request
/// (the "sent, but the answer was lost" case a real node cannot be made to produce on demand).
/// </summary>
public sealed class FakeNode : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private int _requests;

    public FakeNode(Func<string, string?> behaviour)
    {
        Behaviour = behaviour;
        _listener.Start();
        Url = new Uri($"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}");
        _loop = AcceptLoopAsync();
    }

    public Uri Url { get; }

    /// <summary>Given "METHOD /path", the raw response to send, or null to close the connection unanswered.</summary>
    public Func<string, string?> Behaviour { get; }

    /// <summary>Requests other than /v1/status received so far.</summary>
    public int Requests => Volatile.Read(ref _requests);

    /// <summary>
    /// A client of one scripted node. Generous status and attempt deadlines: the tests count requests per retry, and a
    /// discovery probe that timed out on a loaded machine would use up a retry without sending the request.
    /// </summary>
    public static RaftMQClient Client(Uri url, int maxRetries = 3) => new(new RaftMQClientOptions
    {
        Nodes = { url },
        MaxRetries = maxRetries,
        StatusTimeout = TimeSpan.FromSeconds(10),
        AttemptTimeout = TimeSpan.FromSeconds(10),
        RetryDelay = TimeSpan.FromMilliseconds(5),
        MaxRetryDelay = TimeSpan.FromMilliseconds(20),
        OperationTimeout = TimeSpan.FromSeconds(10),
    });

    public static string Response(int status, string body, string? errorCode = null) =>
        $"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {Encoding.UTF8.GetByteCount(body)}\r\n"
        + (errorCode is null ? "" : $"X-RaftMQ-Error: {errorCode}\r\n") + $"Connection: close\r\n\r\n{body}";

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }
            _ = ServeAsync(client);
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        using (client)
        {
            try
            {
                var stream = client.GetStream();
                var head = await ReadHeadAsync(stream);
                if (head is null) return;
                var requestLine = head[..head.IndexOf('\r', StringComparison.Ordinal)];
                var parts = requestLine.Split(' ');
                var target = $"{parts[0]} {parts[1]}";
                var length = 0;
                foreach (var line in head.Split("\r\n"))
                    if (line.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase)) length = int.Parse(line[15..].Trim(), System.Globalization.CultureInfo.InvariantCulture);
                var body = new byte[length];
                await stream.ReadExactlyAsync(body, _stop.Token);
                string? response;
                if (target == "GET /v1/status")
                {
                    response = Response(200, $$"""{"service":"raftmq","node":0,"cluster_id":"fake","ready":true,"role":"Leader","term":1,"leader":0,"leader_url":"{{Url}}","commit_index":1,"applied_index":1,"last_index":1}""");
                }
                else
                {
                    Interlocked.Increment(ref _requests);
                    response = Behaviour(target);
                }
                if (response is null)
                {
                    // Reset rather than a clean close, as when a node dies after reading the request.
                    client.Client.LingerState = new LingerOption(true, 0);
                    return;
                }
                await stream.WriteAsync(Encoding.UTF8.GetBytes(response), _stop.Token);
            }
            catch (Exception e) when (e is IOException or OperationCanceledException or SocketException)
            {
                // The client went away; nothing to serve.
            }
        }
    }

    private async Task<string?> ReadHeadAsync(NetworkStream stream)
    {
        var buffer = new List<byte>();
        var one = new byte[1];
        while (buffer.Count < 64 * 1024)
        {
            if (await stream.ReadAsync(one, _stop.Token) == 0) return null;
            buffer.Add(one[0]);
            var n = buffer.Count;
            if (n >= 4 && buffer[n - 4] == '\r' && buffer[n - 3] == '\n' && buffer[n - 2] == '\r' && buffer[n - 1] == '\n')
                return Encoding.ASCII.GetString(buffer.ToArray());
        }
        return null;
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        await _loop;
        _stop.Dispose();
    }
}

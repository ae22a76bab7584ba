using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using RaftMQ.Raft;

namespace RaftMQ.Transport.Tests;

/// <summary>Real transports on loopback with free ports, and waits that end on a condition or a deadline.</summary>
internal static class TestSupport
{
    public const string ClusterId = "test-cluster";

    /// <summary>Generous: a wait ends as soon as its condition holds, this only bounds a genuine failure.</summary>
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);

    public static readonly byte[] Secret = "a shared secret of the test cluster"u8.ToArray();

    public static TcpTransportOptions Options(ulong id, int port = 0, byte[]? secret = null, string clusterId = ClusterId) => new()
    {
        NodeId = id,
        ListenEndPoint = new IPEndPoint(IPAddress.Loopback, port),
        ClusterId = clusterId,
        ClusterSecret = secret ?? Secret,
        InitialReconnectDelay = TimeSpan.FromMilliseconds(5),
        MaxReconnectDelay = TimeSpan.FromMilliseconds(100),
    };

    public static IPEndPoint Loopback(int port) => new(IPAddress.Loopback, port);

    /// <summary>
    /// Starts transports 1..n on free ports, each with all the others as peers from the start. (Added after the
    /// start, one transport at a time, the first could dial a peer that did not know it yet and be refused: a refusal
    /// counted and logged, and the refusal log is rate-limited, which tests that count refusals or look for a line
    /// would trip over.) A transport that dials a peer not yet listening is refused by the OS and redials.
    /// </summary>
    public static async Task<TcpTransport[]> StartClusterAsync(int n, Action<TcpTransportOptions>? configure = null, ILogger<TcpTransport>? logger = null)
    {
        var ports = Enumerable.Range(0, n).Select(_ => new ReservedPort()).ToArray();
        try
        {
            var transports = new TcpTransport[n];
            for (var i = 0; i < n; i++)
            {
                var options = Options((ulong)i + 1, ports[i].Port);
                for (var j = 0; j < n; j++)
                {
                    if (j != i) options.Peers[(ulong)j + 1] = ports[j].EndPoint;
                }

                configure?.Invoke(options);
                transports[i] = new TcpTransport(options, logger);
            }

            foreach (var t in transports)
            {
                await t.StartAsync();
            }

            return transports;
        }
        finally
        {
            foreach (var port in ports) port.Dispose(); // the transports listen on them now
        }
    }

    /// <summary>
    /// Holds a loopback port that nothing listens on: dials to it are refused, the OS hands it to no one else,
    /// and a transport may still bind and listen on it (both sockets set SO_REUSEADDR; this one never listens).
    /// </summary>
    public sealed class ReservedPort : IDisposable
    {
        private readonly Socket socket = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);

        public ReservedPort()
        {
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            socket.Bind(Loopback(0));
        }

        public int Port => ((IPEndPoint)socket.LocalEndPoint!).Port;

        public IPEndPoint EndPoint => Loopback(Port);

        public void Dispose() => socket.Dispose();
    }

    public static async Task<RaftMessage> ReceiveAsync(this TcpTransport transport)
    {
        using var cts = new CancellationTokenSource(Deadline);
        return await transport.Inbound.ReadAsync(cts.Token);
    }

    /// <summary>Reads until a message matches, skipping others (Raft traffic may include older messages).</summary>
    public static async Task<T> ReceiveAsync<T>(this TcpTransport transport, Func<T, bool> match)
        where T : RaftMessage
    {
        using var cts = new CancellationTokenSource(Deadline);
        while (true)
        {
            if (await transport.Inbound.ReadAsync(cts.Token) is T m && match(m))
            {
                return m;
            }
        }
    }

    public static void WaitUntil(Func<bool> condition, string what) =>
        SpinWait.SpinUntil(condition, Deadline).ShouldBeTrue($"timed out waiting until {what}");

    /// <summary>Waits until the remote end closes <paramref name="socket"/> (end of stream or reset).</summary>
    public static async Task AssertClosedByPeerAsync(Socket socket)
    {
        using var cts = new CancellationTokenSource(Deadline);
        var buffer = new byte[1024];
        try
        {
            while (await socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token) > 0)
            {
            }
        }
        catch (SocketException)
        {
            // A reset also means closed: the peer discarded unread bytes.
        }
    }

    public static async Task<Socket> ConnectRawAsync(IPEndPoint endPoint)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(endPoint);
        return socket;
    }

    /// <summary>Checks that <paramref name="from"/> and <paramref name="to"/> still exchange messages in both directions.</summary>
    public static async Task AssertExchangeAsync(TcpTransport from, TcpTransport to)
    {
        var marker = (ulong)Random.Shared.NextInt64(1, long.MaxValue);
        from.Send(new ReadIndexRequest(from.NodeId, to.NodeId, 1, marker));
        (await to.ReceiveAsync<ReadIndexRequest>(m => m.Context == marker)).From.ShouldBe(from.NodeId);
        to.Send(new ReadIndexResponse(to.NodeId, from.NodeId, 1, marker, 7));
        (await from.ReceiveAsync<ReadIndexResponse>(m => m.Context == marker)).From.ShouldBe(to.NodeId);
    }

    public static async Task DisposeAllAsync(IEnumerable<TcpTransport> transports)
    {
        foreach (var t in transports)
        {
            await t.DisposeAsync();
        }
    }
}

/// <summary>Collects formatted log lines so tests can check a refusal was logged with its reason.</summary>
internal sealed class ListLogger : ILogger<TcpTransport>
{
    public ConcurrentQueue<(LogLevel Level, string Message)> Lines { get; } = new();

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
        Lines.Enqueue((logLevel, formatter(state, exception)));

    public bool Has(LogLevel level, string fragment) =>
        Lines.Any(l => l.Level == level && l.Message.Contains(fragment, StringComparison.Ordinal));
}

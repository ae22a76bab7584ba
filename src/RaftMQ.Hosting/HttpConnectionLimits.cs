using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using RaftMQ.Transport;

namespace RaftMQ.Hosting;

/// <summary>
/// The bounds on a node's HTTP connections. A connection over <see cref="MaxConnections"/> or
/// <see cref="MaxConnectionsPerAddress"/> is closed as soon as it is accepted, before any byte is read.
/// </summary>
public sealed record HttpConnectionLimits
{
    /// <summary>
    /// Open HTTP connections, from all clients. 4096 is far more than a broker node's clients need (a benchmark runs
    /// 16–64 keep-alive clients) and, with the other layers' descriptors, fits a hard RLIMIT_NOFILE of 8192 (see
    /// <see cref="FileDescriptorBudget"/>).
    /// </summary>
    public int MaxConnections { get; init; } = 4096;

    /// <summary>
    /// Open HTTP connections from one IP address. A quarter of <see cref="MaxConnections"/>: one address cannot take
    /// every connection, yet a load generator on one machine (or clients behind one NAT) is not held back.
    /// </summary>
    public int MaxConnectionsPerAddress { get; init; } = 1024;

    /// <summary>
    /// How long a connection may sit idle, before its first request or between requests (Kestrel's keep-alive
    /// timeout, checked about once a second). A client's pooled connection is closed after it and simply redialled.
    /// </summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>How long a client may take to send a request's headers once it has started.</summary>
    public TimeSpan RequestHeadersTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>At most one log line per this interval for each kind of refusal (the node's limit, one address's limit).</summary>
    public TimeSpan RefusalLogInterval { get; init; } = RateLimitedLog.DefaultInterval;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid setting.</summary>
    public void Validate()
    {
        if (MaxConnections <= 0) throw new ArgumentException("MaxConnections must be positive.");
        if (MaxConnectionsPerAddress <= 0 || MaxConnectionsPerAddress > MaxConnections)
            throw new ArgumentException($"MaxConnectionsPerAddress must be positive and at most MaxConnections ({MaxConnections}).");
        if (IdleTimeout <= TimeSpan.Zero || RequestHeadersTimeout <= TimeSpan.Zero || RefusalLogInterval <= TimeSpan.Zero)
            throw new ArgumentException("IdleTimeout, RequestHeadersTimeout and RefusalLogInterval must be positive.");
    }
}

/// <summary>
/// Kestrel connection middleware that enforces <see cref="HttpConnectionLimits.MaxConnections"/> and
/// <see cref="HttpConnectionLimits.MaxConnectionsPerAddress"/>: it counts a connection from accept to close, and
/// closes one over either bound at once, logging refusals at most once per interval per kind.
/// </summary>
public sealed partial class HttpConnectionLimiter
{
    private readonly HttpConnectionLimits limits;
    private readonly ILogger logger;
    private readonly Lock gate = new();
    private readonly Dictionary<IPAddress, int> perAddress = [];
    private readonly RateLimitedLog nodeLimitLog;
    private readonly RateLimitedLog addressLimitLog;
    private int open;
    private long refused;

    public HttpConnectionLimiter(HttpConnectionLimits limits, ILogger logger, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(limits);
        ArgumentNullException.ThrowIfNull(logger);
        limits.Validate();
        this.limits = limits;
        this.logger = logger;
        nodeLimitLog = new RateLimitedLog(limits.RefusalLogInterval, timeProvider);
        addressLimitLog = new RateLimitedLog(limits.RefusalLogInterval, timeProvider);
    }

    /// <summary>Connections open now.</summary>
    public int Open
    {
        get
        {
            lock (gate) return open;
        }
    }

    /// <summary>Connections closed at accept since start.</summary>
    public long Refused => Interlocked.Read(ref refused);

    /// <summary>The middleware: runs <paramref name="next"/> for a connection within the bounds, closes any other.</summary>
    public async Task OnConnectionAsync(ConnectionContext connection, ConnectionDelegate next)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(next);
        var remote = connection.RemoteEndPoint as IPEndPoint;
        var address = remote?.Address is { } a ? (a.IsIPv4MappedToIPv6 ? a.MapToIPv4() : a) : IPAddress.None;
        if (!TryEnter(address, out var overAddressLimit))
        {
            Interlocked.Increment(ref refused);
            var log = overAddressLimit ? addressLimitLog : nodeLimitLog;
            if (log.TryLog(out var suppressed))
            {
                var why = overAddressLimit
                    ? $"{limits.MaxConnectionsPerAddress} connections from this address are open (--max-connections-per-ip)"
                    : $"{limits.MaxConnections} connections are open (--max-connections)";
                LogRefused(logger, remote?.ToString() ?? "?", why, RateLimitedLog.Since(suppressed));
            }

            // Returning without running the pipeline makes Kestrel close the connection; nothing was read from it.
            return;
        }

        try
        {
            await next(connection).ConfigureAwait(false);
        }
        finally
        {
            Leave(address);
        }
    }

    private bool TryEnter(IPAddress address, out bool overAddressLimit)
    {
        lock (gate)
        {
            var fromAddress = perAddress.GetValueOrDefault(address);
            overAddressLimit = fromAddress >= limits.MaxConnectionsPerAddress;
            if (overAddressLimit || open >= limits.MaxConnections)
            {
                return false;
            }

            perAddress[address] = fromAddress + 1;
            open++;
            return true;
        }
    }

    private void Leave(IPAddress address)
    {
        lock (gate)
        {
            open--;
            var left = perAddress[address] - 1;
            if (left == 0) perAddress.Remove(address);
            else perAddress[address] = left;
        }
    }

    [LoggerMessage(1, LogLevel.Warning, "Refused HTTP connection from {Remote}: {Reason}{Suppressed}")]
    private static partial void LogRefused(ILogger logger, string remote, string reason, string suppressed);
}

using System.Net;
using System.Net.Sockets;

namespace RaftMQ;

/// <summary>
/// Loopback ports for the nodes of a local cluster (<c>raftmq cluster up</c>, the tests' clusters, the benchmarks).
/// A node binds its ports some time after they are chosen, so the choice has to hold until then:
/// <list type="bullet">
/// <item>They lie outside the kernel's ephemeral range (<c>/proc/sys/net/ipv4/ip_local_port_range</c>). A port handed
/// out by a bind to port 0 is in that range, and so is the local port of every outgoing connection of every process:
/// either could take a port between its choice and the node's bind, and the node would fail to start.</item>
/// <item>Each is held by an exclusive lock on a file in the temp directory for as long as this process runs, so that
/// processes choosing at the same time (test assemblies, two CLIs) never choose the same one.</item>
/// <item>Each is free when chosen (a listener binds it and lets it go), and this process never chooses it twice
/// until it has gone round the whole range.</item>
/// </list>
/// Shared as source by the CLI, the test support and the benchmarks (one piece of code, linked into each).
/// </summary>
internal static class LoopbackPorts
{
    private const int Span = 6000;
    private static readonly Lock Gate = new();
    private static readonly List<FileStream> Held = [];
    private static readonly int[] Candidates = BuildCandidates();
    private static readonly string? LockDirectory = MakeLockDirectory();
    private static int _next = Random.Shared.Next(Candidates.Length);

    /// <summary><paramref name="count"/> distinct loopback ports that are free now and that no other process using this class will choose.</summary>
    public static int[] Take(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var ports = new int[count];
        lock (Gate)
        {
            var found = 0;
            for (int tried = 0; found < count; tried++)
            {
                if (tried == Candidates.Length)
                    throw new InvalidOperationException($"no free loopback port outside the ephemeral range ({Candidates.Length} tried)");
                var port = Candidates[_next];
                _next = (_next + 1) % Candidates.Length;
                if (TryHold(port)) ports[found++] = port;
            }
        }
        return ports;
    }

    private static bool TryHold(int port)
    {
        FileStream? lockFile = null;
        if (LockDirectory is { } directory)
        {
            try
            {
                // FileShare.None takes an exclusive advisory lock (flock on Unix), released when this process ends.
                lockFile = new FileStream(Path.Combine(directory, $"{port}.lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return false; // another process holds it
            }
        }
        try
        {
            using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            probe.Bind(new IPEndPoint(IPAddress.Loopback, port));
        }
        catch (SocketException)
        {
            lockFile?.Dispose();
            return false; // something else listens on it
        }
        if (lockFile is not null) Held.Add(lockFile);
        return true;
    }

    /// <summary>The directory of the lock files (per user: another user's files could not be opened), or null if it cannot be made.</summary>
    private static string? MakeLockDirectory()
    {
        try
        {
            var directory = Path.Combine(Path.GetTempPath(), $"raftmq-ports-{Environment.UserName}");
            Directory.CreateDirectory(directory);
            return directory;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null; // without lock files the ports are still outside the ephemeral range and free when chosen
        }
    }

    /// <summary>
    /// The <see cref="Span"/> ports just below the ephemeral range (26768–32767 with Linux's default 32768–60999), or
    /// just above it if there is no room below. Well below would meet other services' usual ports (RabbitMQ's
    /// distribution port 25672, for one, which the side-by-side benchmarks start).
    /// </summary>
    private static int[] BuildCandidates()
    {
        var (low, high) = EphemeralRange();
        if (low - Span >= 1024) return [.. Enumerable.Range(low - Span, Span)];
        if (high + Span <= IPEndPoint.MaxPort) return [.. Enumerable.Range(high + 1, Span)];
        return [.. Enumerable.Range(1024, IPEndPoint.MaxPort - 1023)];
    }

    private static (int Low, int High) EphemeralRange()
    {
        try
        {
            var parts = File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range").Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length == 2 && int.TryParse(parts[0], out var low) && int.TryParse(parts[1], out var high)) return (low, high);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Not Linux: the IANA range, which Windows and macOS use.
        }
        return (49152, IPEndPoint.MaxPort);
    }
}

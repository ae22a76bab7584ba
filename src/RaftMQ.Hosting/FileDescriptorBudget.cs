using System.Runtime.InteropServices;
using RaftMQ.Transport;

namespace RaftMQ.Hosting;

/// <summary>
/// Checks at start-up that the connection bounds of every layer, plus a reserve for files, fit the process's limit
/// on open file descriptors (RLIMIT_NOFILE), so that a node full of connections still has a descriptor for its next
/// log segment. The soft limit is raised towards the hard one when that is enough. When even the hard limit is too
/// small, a node given an explicit <c>--max-connections</c> refuses to start, naming the options to lower; a node on
/// the default HTTP bound lowers it to what fits (with a warning), unless fewer than
/// <see cref="MinHttpConnections"/> would remain.
/// </summary>
public static partial class FileDescriptorBudget
{
    /// <summary>
    /// Descriptors kept for everything but connections: the runtime's own (an idle node holds about 180: assemblies,
    /// pipes, epoll, the console), the log's segments and durable-end file, snapshots being written or sent, the
    /// listening sockets, and the queue's segment files (one or two per topic holding messages, so a few hundred
    /// such topics fit; the queue does not bound them itself).
    /// </summary>
    public const int FileReserve = 512;

    /// <summary>The fewest HTTP connections a node lowers its default bound to before refusing to start instead.</summary>
    public const int MinHttpConnections = 64;

    /// <summary>What the node may hold open at once.</summary>
    /// <param name="HttpConnections">The HTTP bound (<c>--max-connections</c>).</param>
    /// <param name="PeerInbound">Inbound peer connections (TcpTransportOptions.MaxInboundConnections).</param>
    /// <param name="PeerOutbound">Outbound peer connections: one per peer.</param>
    public readonly record struct Demand(int HttpConnections, int PeerInbound, int PeerOutbound)
    {
        /// <summary>Every descriptor but the HTTP connections'.</summary>
        public long Fixed => (long)PeerInbound + PeerOutbound + FileReserve;

        /// <summary>Every descriptor the node may need.</summary>
        public long Total => HttpConnections + Fixed;
    }

    /// <summary>What to do about the limit, decided by <see cref="Decide"/>.</summary>
    /// <param name="SoftLimit">The soft limit to run with (raised if it was too low; never above the hard limit).</param>
    /// <param name="HttpConnections">The HTTP bound to run with (lowered only from the default).</param>
    /// <param name="Error">Why the node must not start, naming the options to change; null when it may.</param>
    /// <param name="Warning">A note for the log when the HTTP bound was lowered; null otherwise.</param>
    public readonly record struct Plan(ulong SoftLimit, int HttpConnections, string? Error, string? Warning);

    /// <summary>
    /// The decision, as a pure function of the demand and the current limits (<see cref="ulong.MaxValue"/> stands
    /// for unlimited). <paramref name="httpExplicit"/>: the HTTP bound was given on the command line.
    /// </summary>
    public static Plan Decide(Demand demand, ulong soft, ulong hard, bool httpExplicit)
    {
        var needed = (ulong)demand.Total;
        if (needed <= soft) return new Plan(soft, demand.HttpConnections, null, null);
        if (needed <= hard) return new Plan(hard, demand.HttpConnections, null, null);

        var room = hard > (ulong)demand.Fixed ? hard - (ulong)demand.Fixed : 0;
        var parts =
            $"{demand.HttpConnections} HTTP connections (--max-connections) + {demand.PeerInbound} inbound peer connections + " +
            $"{demand.PeerOutbound} outbound peer connections + {FileReserve} for files";
        if (!httpExplicit && room >= MinHttpConnections)
        {
            return new Plan(hard, (int)room, null,
                $"the open-file limit (RLIMIT_NOFILE, hard) is {hard}, too low for {parts} = {needed}; " +
                $"--max-connections lowered to {room}. Raise the hard limit (ulimit -Hn) or pass --max-connections to silence this");
        }

        var fix = room >= MinHttpConnections
            ? $"lower --max-connections to at most {room}, or raise the hard limit (ulimit -Hn, LimitNOFILE in systemd) to at least {needed}"
            : $"raise the hard limit (ulimit -Hn, LimitNOFILE in systemd) to at least {demand.Fixed + MinHttpConnections}";
        return new Plan(soft, demand.HttpConnections,
            $"the node may need {needed} open files ({parts}) but the open-file limit (RLIMIT_NOFILE) allows {hard}: {fix}", null);
    }

    /// <summary>The demand of a node hosted with <paramref name="host"/> and serving HTTP within <paramref name="http"/>.</summary>
    public static Demand For(RaftHostOptions host, HttpConnectionLimits http)
    {
        ArgumentNullException.ThrowIfNull(host);
        ArgumentNullException.ThrowIfNull(http);
        var transport = new TcpTransportOptions();
        host.ConfigureTransport?.Invoke(transport);
        return new Demand(http.MaxConnections, transport.MaxInboundConnections, host.Peers.Count);
    }

    /// <summary>
    /// Applies <see cref="Decide"/> to this process: raises the soft limit when needed and returns the plan (its
    /// <see cref="Plan.Error"/> set when the node must not start). Where the limit cannot be read (not Linux) the
    /// demand is taken to fit.
    /// </summary>
    public static Plan Apply(Demand demand, bool httpExplicit)
    {
        if (!OperatingSystem.IsLinux() || GetRLimit(RLimitNoFile, out var current) != 0)
        {
            return new Plan(ulong.MaxValue, demand.HttpConnections, null, null);
        }

        var plan = Decide(demand, current.Current, current.Max, httpExplicit);
        if (plan.Error is null && plan.SoftLimit > current.Current)
        {
            var raised = new RLimit { Current = plan.SoftLimit, Max = current.Max };
            if (SetRLimit(RLimitNoFile, in raised) != 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                return plan with { Error = $"cannot raise the open-file limit (RLIMIT_NOFILE) from {current.Current} to {plan.SoftLimit}: errno {errno}" };
            }
        }

        return plan;
    }

    /// <summary>RLIMIT_NOFILE on Linux (every architecture .NET runs on).</summary>
    private const int RLimitNoFile = 7;

    [StructLayout(LayoutKind.Sequential)]
    private struct RLimit
    {
        public ulong Current;
        public ulong Max;
    }

    [LibraryImport("libc", EntryPoint = "getrlimit", SetLastError = true)]
    private static partial int GetRLimit(int resource, out RLimit limit);

    [LibraryImport("libc", EntryPoint = "setrlimit", SetLastError = true)]
    private static partial int SetRLimit(int resource, in RLimit limit);
}

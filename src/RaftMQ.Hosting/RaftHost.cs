using System.Net;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using RaftMQ.Raft;
using RaftMQ.Runtime;
using RaftMQ.StateMachine;
using RaftMQ.Storage;
using RaftMQ.Transport;

namespace RaftMQ.Hosting;

/// <summary>
/// One node of a static cluster, ready to use: the write-ahead log and snapshots in a directory
/// (<see cref="NodeStorage"/>), the authenticated TCP peer transport (<see cref="TcpTransport"/>) and the Raft loop
/// over the application's state machine (<see cref="RaftRuntime"/>). The application talks to <see cref="Runtime"/>:
/// <c>ProposeAsync</c> for commands, <c>ReadAsync</c> for linearizable queries, <c>Status</c> for the role and indexes.
/// </summary>
public sealed class RaftHost : IAsyncDisposable
{
    private readonly TcpTransport _transport;
    private readonly PeerSync _peers;
    private int _disposed;

    private RaftHost(RaftRuntime runtime, TcpTransport transport, string dataDirectory, PeerSync peers)
    {
        Runtime = runtime;
        _transport = transport;
        DataDirectory = dataDirectory;
        _peers = peers;
    }

    /// <summary>The running node.</summary>
    public RaftRuntime Runtime { get; }

    /// <summary>The full path of the node's data directory.</summary>
    public string DataDirectory { get; }

    /// <summary>The peer transport's traffic, drops and refusals (for metrics).</summary>
    public TransportCounters TransportCounters => _transport.Counters;

    /// <summary>The peers whose link from this node is down now: its connection closed or could not be made.</summary>
    public IReadOnlyList<ulong> LinksDown() => _transport.LinksDown();

    /// <summary>Where the node listens for peers (useful when the options asked for port 0).</summary>
    public IPEndPoint PeerEndPoint => _transport.LocalEndPoint;

    /// <summary>Completes when the node stops; faulted when it failed (fail-stop, e.g. a disk error).</summary>
    public Task Completion => Runtime.Completion;

    /// <summary>
    /// Opens (or creates) the node's storage, restores <paramref name="stateMachine"/> from the newest snapshot,
    /// replays the log after it, starts listening for peers and runs the node. Throws when the storage cannot be
    /// recovered or the peer port cannot be bound; nothing is left running then.
    /// </summary>
    public static Task<RaftHost> StartAsync(
        RaftHostOptions options, IStateMachine stateMachine, ILoggerFactory? loggers = null, CancellationToken cancellationToken = default) =>
        StartAsync(options, stateMachine, forwarding: null, loggers, cancellationToken);

    /// <summary>
    /// Why <see cref="StartAsync(RaftHostOptions, IStateMachine, ILoggerFactory?, CancellationToken)"/> failed, in one
    /// line an operator can act on, when it failed for a reason of the machine, not of the code: damaged stored data
    /// (the message names the file and what to do), a port in use or a directory it cannot write. Null for anything
    /// else, which is a bug to report with its stack trace.
    /// </summary>
    public static string? DescribeStartFailure(Exception e) => e switch
    {
        StorageCorruptedException or IOException or UnauthorizedAccessException => e.Message,
        _ => null,
    };

    /// <summary>
    /// <see cref="StartAsync(RaftHostOptions, IStateMachine, ILoggerFactory?, CancellationToken)"/> with
    /// <paramref name="forwarding"/>: a follower then forwards the commands given to
    /// <see cref="RaftRuntime.ProposeOrRouteAsync"/> to the leader over the peer link (null leaves it off).
    /// </summary>
    public static async Task<RaftHost> StartAsync(
        RaftHostOptions options, IStateMachine stateMachine, ProposalForwarding? forwarding, ILoggerFactory? loggers = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(stateMachine);
        options.Validate();
        loggers ??= NullLoggerFactory.Instance;
        var transportOptions = new TcpTransportOptions
        {
            NodeId = options.NodeId,
            ListenEndPoint = options.ListenEndPoint,
            ClusterId = options.ClusterId,
            ClusterSecret = options.ClusterSecret,
            Tls = options.PeerTls,
        };
        foreach (var (id, endPoint) in options.Peers) transportOptions.Peers[id] = endPoint;
        options.ConfigureTransport?.Invoke(transportOptions);
        transportOptions.Validate();
        var runtimeOptions = RuntimeOptions(options, forwarding);
        NodeLimits.Validate(runtimeOptions.Raft, runtimeOptions.Node, options.Storage ?? new StorageOptions(), transportOptions);
        var transport = new TcpTransport(transportOptions, loggers.CreateLogger<TcpTransport>());
        try
        {
            await transport.StartAsync(cancellationToken).ConfigureAwait(false);
            var dataDirectory = Path.GetFullPath(options.DataDirectory);
            var storage = NodeStorage.Open(dataDirectory, options.Storage);
            if (options.ForceNewCluster) ForceSingleVoter(storage, options, dataDirectory, loggers.CreateLogger("RaftMQ.Node"));
            loggers.CreateLogger("RaftMQ.Node").LogInformation(
                "Node {Id} of cluster {ClusterId}: data in {DataDirectory}", options.NodeId, options.ClusterId, dataDirectory);
            var runtime = new RaftRuntime(
                runtimeOptions, storage, stateMachine, transport, TimeProvider.System, loggers.CreateLogger<RaftRuntime>());
            var peers = new PeerSync(options, transport, loggers.CreateLogger("RaftMQ.Node"));
            runtime.ConfigurationChanged += peers.OnConfigurationChanged;
            runtime.Start();
            return new RaftHost(runtime, transport, dataDirectory, peers);
        }
        catch
        {
            await transport.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>The file that records, in the data directory, that <see cref="RaftHostOptions.ForceNewCluster"/> was applied.</summary>
    public const string ForcedMarkerFileName = "forced-new-cluster";

    /// <summary>
    /// Appends (and syncs) a configuration entry with this node as the only voter, after the last entry of its log, in
    /// the latest term it knows (see <see cref="RaftHostOptions.ForceNewCluster"/>), and records that it did so in
    /// <see cref="ForcedMarkerFileName"/>. Applied once: with the file present the node refuses to start with the
    /// option, since by then the new cluster may have grown and forcing again would drop its members.
    /// </summary>
    private static void ForceSingleVoter(NodeStorage storage, RaftHostOptions options, string dataDirectory, ILogger logger)
    {
        var marker = Path.Combine(dataDirectory, ForcedMarkerFileName);
        if (File.Exists(marker))
        {
            throw new InvalidOperationException(
                $"--force-new-cluster was already applied to this node ({File.ReadAllText(marker).Trim()}); start it without the option. "
                + $"To force again (the cluster lost its majority once more), delete {marker} first");
        }
        var log = storage.Log;
        var alone = new ClusterConfiguration([options.NodeId]);
        if (options.Members?.AddressOf(options.NodeId) is { } address)
            alone = alone.WithAddresses([KeyValuePair.Create(options.NodeId, MemberAddress.Encode(address))]);
        var term = Math.Max(log.HardState.Term, log.Term(log.LastIndex));
        var entry = new Entry(log.LastIndex + 1, term, EntryType.Configuration, alone.Encode());
        storage.Save(null, [entry], sync: true);
        var markerOptions = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows()) markerOptions.UnixCreateMode = PhysicalFileSystem.OwnerOnlyFile;
        using (var stream = new FileStream(marker, markerOptions))
        {
            stream.Write(System.Text.Encoding.UTF8.GetBytes($"node {options.NodeId} made the only voter by the entry at index {entry.Index}, term {term}, {DateTime.UtcNow:O}\n"));
            stream.Flush(flushToDisk: true);
        }
        logger.LogWarning(
            "--force-new-cluster: node {Id} is now the only voter (configuration entry at index {Index}, term {Term}); "
            + "whatever the lost members held beyond this node's log is gone. Never start the old members with their data again",
            options.NodeId, entry.Index, term);
    }

    /// <summary>
    /// The runtime settings the host derives from <paramref name="options"/> (timings in ticks, snapshot policy), with
    /// <paramref name="forwarding"/> if given.
    /// </summary>
    public static RaftRuntimeOptions RuntimeOptions(RaftHostOptions options, ProposalForwarding? forwarding = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var tick = options.TickInterval;
        var heartbeatTicks = Math.Max(1, (int)(options.HeartbeatInterval / tick));
        return new RaftRuntimeOptions
        {
            Raft = new RaftOptions
            {
                Id = options.NodeId,
                Voters = options.JoinExisting ? [] : [options.NodeId, .. options.Peers.Keys.Order()],
                ElectionTicks = Math.Max(2, (int)(options.ElectionTimeout / tick)),
                HeartbeatTicks = heartbeatTicks,
                QuiescedHeartbeatTicks = options.IdleHeartbeatInterval == TimeSpan.Zero
                    ? 0
                    : Math.Max(heartbeatTicks, (int)Math.Min(RaftOptions.MaxQuiescedTicks, options.IdleHeartbeatInterval / tick)),
                RandomSeed = (ulong)RandomNumberGenerator.GetInt32(int.MaxValue),
                MaxEntryBytes = options.MaxCommandBytes,
            },
            TickInterval = tick,
            PromoteCaughtUpLearners = options.PromoteCaughtUpLearners,
            Node = new NodeDriverOptions
            {
                SnapshotEveryEntries = options.SnapshotEveryEntries,
                SnapshotEveryBytes = options.SnapshotEveryBytes,
                SnapshotRetainEntries = options.SnapshotRetainEntries ?? options.SnapshotEveryEntries / 10,
                MaxProposalBytesInFlight = RaftHostOptions.MaxProposalBytesInFlight,
                ReadDiskAlarm = options.ReadDiskAlarm,
                WaitingToApply = options.WaitingToApply,
                Forwarding = forwarding,
            },
        };
    }

    /// <summary>Stops the node, then the transport; callers still waiting get <see cref="NodeStoppedException"/>.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
        await Runtime.DisposeAsync().ConfigureAwait(false);
        _peers.Stop();
        await _transport.DisposeAsync().ConfigureAwait(false);
    }
}

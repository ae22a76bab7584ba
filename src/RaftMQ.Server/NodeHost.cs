using System.Net;
using System.Security.Cryptography;
using System.Text;
using RaftMQ.Raft;
using RaftMQ.Runtime;
using RaftMQ.Storage;
using RaftMQ.Transport;

namespace RaftMQ.Server;

/// <summary>Wires one node together: durable storage, the peer transport and the Raft runtime over the queue.</summary>
public sealed class NodeHost : IAsyncDisposable
{
    private readonly IAsyncDisposable? _transport;

    private NodeHost(RaftRuntime runtime, IAsyncDisposable? transport)
    {
        Runtime = runtime;
        _transport = transport;
    }

    public RaftRuntime Runtime { get; }

    /// <summary>The data directory: the explicit option, else one keyed by the cluster's identity and the node's index.</summary>
    public static string DataDirectory(NodeSettings settings, ClusterConfig config) =>
        settings.DataDirectory ?? Path.Combine("raftmq-data", config.ClusterId, $"node-{settings.Index}");

    /// <summary>The peers' shared secret: the configured one, else one derived from the cluster id.</summary>
    public static byte[] ClusterSecret(NodeSettings settings, ClusterConfig config)
    {
        var text = settings.ClusterSecret ?? Environment.GetEnvironmentVariable("RAFTMQ_CLUSTER_SECRET");
        return SHA256.HashData(Encoding.UTF8.GetBytes(text ?? "raftmq-cluster:" + config.ClusterId));
    }

    public static RaftOptions RaftOptions(NodeSettings settings, ClusterConfig config) => new()
    {
        Id = ClusterConfig.NodeId(settings.Index),
        Voters = [.. Enumerable.Range(0, config.Addresses.Count).Select(ClusterConfig.NodeId)],
        ElectionTicks = Math.Max(2, settings.ElectionTimeoutMs / settings.TickMs),
        HeartbeatTicks = Math.Max(1, settings.HeartbeatMs / settings.TickMs),
        RandomSeed = (ulong)RandomNumberGenerator.GetInt32(int.MaxValue),
    };

    public static async Task<NodeHost> StartAsync(NodeSettings settings, ClusterConfig config, QueueNode node, ILoggerFactory loggers)
    {
        var id = ClusterConfig.NodeId(settings.Index);
        var me = config.Addresses[settings.Index];
        var transportOptions = new TcpTransportOptions
        {
            NodeId = id,
            ListenEndPoint = ListenEndPoint(me),
            ClusterId = config.ClusterId,
            ClusterSecret = ClusterSecret(settings, config),
        };
        for (int i = 0; i < config.Addresses.Count; i++)
            if (i != settings.Index) transportOptions.Peers[ClusterConfig.NodeId(i)] = ClusterConfig.PeerEndPoint(config.Addresses[i]);
        var transport = new TcpTransport(transportOptions, loggers.CreateLogger<TcpTransport>());
        try
        {
            await transport.StartAsync().ConfigureAwait(false);
            var dataDirectory = DataDirectory(settings, config);
            var storage = NodeStorage.Open(dataDirectory);
            loggers.CreateLogger("RaftMQ.Node").LogInformation(
                "Node {Index} of cluster {ClusterId}: data in {DataDirectory}", settings.Index, config.ClusterId, Path.GetFullPath(dataDirectory));
            var runtime = new RaftRuntime(
                new RaftRuntimeOptions
                {
                    Raft = RaftOptions(settings, config),
                    TickInterval = TimeSpan.FromMilliseconds(settings.TickMs),
                    SnapshotEveryEntries = (ulong)settings.SnapshotEveryEntries,
                    // Keep a tenth of the interval behind each snapshot for followers that are a little behind.
                    SnapshotRetainEntries = (ulong)settings.SnapshotEveryEntries / 10,
                },
                storage, node.StateMachine, transport, TimeProvider.System, loggers.CreateLogger<RaftRuntime>());
            runtime.Start();
            node.SetStarted(runtime);
            return new NodeHost(runtime, transport);
        }
        catch
        {
            await transport.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private static IPEndPoint ListenEndPoint(NodeAddress me)
    {
        if (me.Ip == "localhost") return new IPEndPoint(IPAddress.Loopback, me.InternalPort);
        return new IPEndPoint(IPAddress.TryParse(me.Ip, out var ip) ? ip : IPAddress.Any, me.InternalPort);
    }

    public async ValueTask DisposeAsync()
    {
        await Runtime.DisposeAsync().ConfigureAwait(false);
        if (_transport is not null) await _transport.DisposeAsync().ConfigureAwait(false);
    }
}

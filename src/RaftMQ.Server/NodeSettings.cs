using System.Globalization;
using Microsoft.Extensions.Logging;

namespace RaftMQ.Server;

/// <summary>
/// How a node is started: <c>raftmq-node CONFIG INDEX [options]</c>. Parsed by hand, not by a framework, because the
/// HTTP port must answer within a few hundred milliseconds of launch.
/// </summary>
public sealed record NodeSettings
{
    public const string Usage = """
        usage: raftmq-node CONFIG.json INDEX [options]

          CONFIG.json                 {"addresses": [{"ip": "127.0.0.1", "port": 8567, "internal_port": 8568}, ...]}
          INDEX                       this node's position in "addresses" (0-based)

        options:
          --data-dir DIR              where the log and snapshots live
                                      (default: ./raftmq-data/<cluster id>/node-<INDEX>)
          --election-timeout-ms N     minimum election timeout; the actual one is random in [N, 2N)   (default 150)
          --heartbeat-ms N            leader heartbeat interval, less than the election timeout       (default 50)
          --tick-ms N                 length of one Raft clock tick                                    (default 10)
          --request-timeout-ms N      how long a request waits for a leader and a commit               (default 2500)
          --max-connections N         most open HTTP connections; a connection over it is closed at   (default 4096)
                                      accept, and the start-up check of open files (RLIMIT_NOFILE) counts it
          --max-connections-per-ip N  most open HTTP connections from one IP address                  (default 1024)
          --idle-timeout-ms N         close an HTTP connection idle this long (checked once a second) (default 60000)
          --snapshot-every N          snapshot the queue and compact the log every N applied entries  (default 50000)
          --disk-free-limit-mb N      refuse publishes and topic creation (507 disk-full) while the data
                                      directory's file system has less than N MB free; 0 turns it off  (default 256)
          --cluster-secret TEXT       passphrase the peers authenticate each other with (same on every node)
          --cluster-secret-file PATH  file holding the peers' secret as hex digits (openssl rand -hex 32)
                                      default: $RAFTMQ_CLUSTER_SECRET, else the node's copy in its data
                                      directory, else CONFIG.json.secret, created with a random secret by
                                      the first node to start (docs/security.md)
          --log-level LEVEL           Trace, Debug, Information, Warning, Error                        (default Information)
          --help                      show this help
        """;

    public required string ConfigPath { get; init; }

    public required int Index { get; init; }

    public string? DataDirectory { get; init; }

    public int ElectionTimeoutMs { get; init; } = 150;

    public int HeartbeatMs { get; init; } = 50;

    public int TickMs { get; init; } = 10;

    public int RequestTimeoutMs { get; init; } = 2500;

    /// <summary>The HTTP connection bound (--max-connections); null for the default, which the start-up check may lower.</summary>
    public int? MaxConnections { get; init; }

    /// <summary>The HTTP connection bound per IP address (--max-connections-per-ip); null for the default.</summary>
    public int? MaxConnectionsPerIp { get; init; }

    /// <summary>How long an idle HTTP connection stays open (--idle-timeout-ms); null for the default.</summary>
    public int? IdleTimeoutMs { get; init; }

    /// <summary>
    /// The node's HTTP connection bounds. A per-address bound left at its default never exceeds the total one, so
    /// <c>--max-connections 50</c> alone is valid.
    /// </summary>
    public HttpConnectionLimits HttpLimits()
    {
        var defaults = new HttpConnectionLimits();
        var max = MaxConnections ?? defaults.MaxConnections;
        return defaults with
        {
            MaxConnections = max,
            MaxConnectionsPerAddress = MaxConnectionsPerIp ?? Math.Min(defaults.MaxConnectionsPerAddress, max),
            IdleTimeout = IdleTimeoutMs is { } ms ? TimeSpan.FromMilliseconds(ms) : defaults.IdleTimeout,
        };
    }

    public int SnapshotEveryEntries { get; init; } = 50_000;

    /// <summary>
    /// The disk alarm's limit (see <see cref="DiskAlarm"/>). 256 MB leaves room for what is already admitted when the
    /// alarm trips (a publish costs its bytes twice, in the log and in the queue's segment files, on every node), for
    /// the log entries of the pops that drain the queue (compacted only at the next snapshot), and for some of a
    /// snapshot; RabbitMQ's default of 50 MB assumes a smaller write pipeline.
    /// </summary>
    public int DiskFreeLimitMb { get; init; } = 256;

    public string? ClusterSecret { get; init; }

    public string? ClusterSecretFile { get; init; }

    public LogLevel LogLevel { get; init; } = LogLevel.Information;

    /// <summary>The data directory: the explicit option, else one keyed by the cluster's identity and the node's index.</summary>
    public string DataDirectoryFor(ClusterConfig config) =>
        DataDirectory ?? Path.Combine("raftmq-data", config.ClusterId, $"node-{Index}");

    /// <summary>Where this node looks for the peers' secret (<see cref="RaftMQ.Hosting.ClusterSecret.Resolve"/>).</summary>
    public ClusterSecretSources SecretSources(ClusterConfig config) => new()
    {
        Passphrase = ClusterSecret,
        SecretFile = ClusterSecretFile,
        EnvironmentVariable = "RAFTMQ_CLUSTER_SECRET",
        DataDirectory = DataDirectoryFor(config),
        SharedFile = RaftMQ.Hosting.ClusterSecret.SharedFileFor(ConfigPath),
    };

    /// <summary>How the library hosts this node: the config's addresses, the peers' key and this command line's timings.</summary>
    public RaftHostOptions HostOptions(ClusterConfig config, byte[] clusterSecret) =>
        config.HostOptions(Index, DataDirectoryFor(config), clusterSecret) with
        {
            TickInterval = TimeSpan.FromMilliseconds(TickMs),
            ElectionTimeout = TimeSpan.FromMilliseconds(ElectionTimeoutMs),
            HeartbeatInterval = TimeSpan.FromMilliseconds(HeartbeatMs),
            SnapshotEveryEntries = (ulong)SnapshotEveryEntries,
        };

    /// <summary>Parses the command line; throws <see cref="ConfigException"/> with a message for the user.</summary>
    public static NodeSettings Parse(IReadOnlyList<string> args)
    {
        var positional = new List<string>();
        var named = new Dictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < args.Count; i++)
        {
            var a = args[i];
            if (!a.StartsWith("--", StringComparison.Ordinal))
            {
                positional.Add(a);
                continue;
            }
            var eq = a.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0)
            {
                named[a[2..eq]] = a[(eq + 1)..];
            }
            else if (a == "--help")
            {
                named["help"] = "";
            }
            else
            {
                if (i + 1 >= args.Count) throw new ConfigException($"option {a} needs a value");
                named[a[2..]] = args[++i];
            }
        }
        if (named.ContainsKey("help")) throw new HelpRequestedException();
        if (positional.Count != 2) throw new ConfigException("expected two arguments: the config file and this node's index");
        if (!int.TryParse(positional[1], NumberStyles.None, CultureInfo.InvariantCulture, out var index))
            throw new ConfigException($"INDEX must be a non-negative integer, not '{positional[1]}'");

        var s = new NodeSettings { ConfigPath = positional[0], Index = index };
        foreach (var (key, value) in named)
        {
            s = key switch
            {
                "data-dir" => s with { DataDirectory = value },
                "election-timeout-ms" => s with { ElectionTimeoutMs = PositiveInt(key, value) },
                "heartbeat-ms" => s with { HeartbeatMs = PositiveInt(key, value) },
                "tick-ms" => s with { TickMs = PositiveInt(key, value) },
                "request-timeout-ms" => s with { RequestTimeoutMs = PositiveInt(key, value) },
                "max-connections" => s with { MaxConnections = PositiveInt(key, value) },
                "max-connections-per-ip" => s with { MaxConnectionsPerIp = PositiveInt(key, value) },
                "idle-timeout-ms" => s with { IdleTimeoutMs = PositiveInt(key, value) },
                "snapshot-every" => s with { SnapshotEveryEntries = PositiveInt(key, value) },
                "disk-free-limit-mb" => s with { DiskFreeLimitMb = NonNegativeInt(key, value) },
                "cluster-secret" => s with { ClusterSecret = value },
                "cluster-secret-file" => s with { ClusterSecretFile = value },
                "log-level" => s with
                {
                    LogLevel = Enum.TryParse<LogLevel>(value, ignoreCase: true, out var level)
                        ? level
                        : throw new ConfigException($"--log-level: unknown level '{value}'"),
                },
                _ => throw new ConfigException($"unknown option --{key}"),
            };
        }
        if (s.HeartbeatMs < s.TickMs || s.ElectionTimeoutMs <= s.HeartbeatMs)
            throw new ConfigException("need --tick-ms <= --heartbeat-ms < --election-timeout-ms");
        if (s.HttpLimits() is var http && http.MaxConnectionsPerAddress > http.MaxConnections)
            throw new ConfigException($"--max-connections-per-ip {http.MaxConnectionsPerAddress} is over --max-connections {http.MaxConnections}");
        return s;
    }

    private static int NonNegativeInt(string key, string value) =>
        int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n)
            ? n
            : throw new ConfigException($"--{key} must be a non-negative integer, not '{value}'");

    private static int PositiveInt(string key, string value) =>
        int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0
            ? n
            : throw new ConfigException($"--{key} must be a positive integer, not '{value}'");
}

/// <summary>The user asked for --help.</summary>
public sealed class HelpRequestedException() : Exception("help requested");

using System.Globalization;
using RaftMQ.Hosting;

namespace BankTeller.Server;

/// <summary>The bank server's command line: <c>bank-server CONFIG INDEX [options]</c>.</summary>
public sealed record ServerSettings
{
    public const string Usage = """
        usage: bank-server CONFIG.json INDEX [options]

          CONFIG.json                 {"addresses": [{"ip": "127.0.0.1", "port": 7001, "internal_port": 8001}, ...]}
                                      port serves the bank's HTTP API, internal_port the Raft peers
          INDEX                       this node's position in "addresses" (0-based)

        options:
          --data-dir DIR              write-ahead log and snapshots (default: ./bank-data/<cluster id>/node-<INDEX>)
          --cluster-secret TEXT       passphrase the nodes authenticate each other with (same on every node)
          --cluster-secret-file PATH  file holding the nodes' secret as hex digits (openssl rand -hex 32)
                                      default: $BANK_CLUSTER_SECRET, else the node's copy in its data
                                      directory, else CONFIG.json.secret, created with a random secret by
                                      the first node to start
          --election-timeout-ms N     minimum election timeout                       (default 150)
          --heartbeat-ms N            leader heartbeat interval                      (default 50)
          --tick-ms N                 one Raft clock tick                            (default 10)
          --request-timeout-ms N      how long a request waits for a leader/commit   (default 3000)
          --snapshot-every N          snapshot and compact every N applied entries   (default 10000)
          --session-timeout-s N       a client session idle this long expires        (default 3600)
          --log-level LEVEL           Trace, Debug, Information, Warning, Error       (default Information)
        """;

    public required string ConfigPath { get; init; }

    public required int Index { get; init; }

    public string? DataDirectory { get; init; }

    public string? ClusterSecret { get; init; }

    public string? ClusterSecretFile { get; init; }

    public int ElectionTimeoutMs { get; init; } = 150;

    public int HeartbeatMs { get; init; } = 50;

    public int TickMs { get; init; } = 10;

    public int RequestTimeoutMs { get; init; } = 3000;

    public int SnapshotEveryEntries { get; init; } = 10_000;

    public int SessionTimeoutSeconds { get; init; } = 3600;

    public LogLevel LogLevel { get; init; } = LogLevel.Information;

    /// <summary>Parses the command line; throws <see cref="ConfigException"/> with a message for the user.</summary>
    public static ServerSettings Parse(IReadOnlyList<string> args)
    {
        var positional = new List<string>();
        var s = new ServerSettings { ConfigPath = "", Index = 0 };
        for (int i = 0; i < args.Count; i++)
        {
            var a = args[i];
            if (!a.StartsWith("--", StringComparison.Ordinal))
            {
                positional.Add(a);
                continue;
            }
            if (i + 1 >= args.Count) throw new ConfigException($"option {a} needs a value");
            var value = args[++i];
            s = a[2..] switch
            {
                "data-dir" => s with { DataDirectory = value },
                "cluster-secret" => s with { ClusterSecret = value },
                "cluster-secret-file" => s with { ClusterSecretFile = value },
                "election-timeout-ms" => s with { ElectionTimeoutMs = Positive(a, value) },
                "heartbeat-ms" => s with { HeartbeatMs = Positive(a, value) },
                "tick-ms" => s with { TickMs = Positive(a, value) },
                "request-timeout-ms" => s with { RequestTimeoutMs = Positive(a, value) },
                "snapshot-every" => s with { SnapshotEveryEntries = Positive(a, value) },
                "session-timeout-s" => s with { SessionTimeoutSeconds = Positive(a, value) },
                "log-level" => s with
                {
                    LogLevel = Enum.TryParse<LogLevel>(value, ignoreCase: true, out var level) ? level : throw new ConfigException($"{a}: unknown level '{value}'"),
                },
                _ => throw new ConfigException($"unknown option {a}"),
            };
        }
        if (positional.Count != 2) throw new ConfigException("expected two arguments: the config file and this node's index");
        if (!int.TryParse(positional[1], NumberStyles.None, CultureInfo.InvariantCulture, out var index))
            throw new ConfigException($"INDEX must be a non-negative integer, not '{positional[1]}'");
        if (s.HeartbeatMs < s.TickMs || s.ElectionTimeoutMs <= s.HeartbeatMs)
            throw new ConfigException("need --tick-ms <= --heartbeat-ms < --election-timeout-ms");
        return s with { ConfigPath = positional[0], Index = index };
    }

    /// <summary>The data directory: the explicit option, else one keyed by the cluster's identity and the node's index.</summary>
    public string DataDirectoryFor(ClusterConfig config) =>
        DataDirectory ?? Path.Combine("bank-data", config.ClusterId, $"node-{Index}");

    /// <summary>Where this node looks for the nodes' secret (<see cref="RaftMQ.Hosting.ClusterSecret.Resolve"/>).</summary>
    public ClusterSecretSources SecretSources(ClusterConfig config) => new()
    {
        Passphrase = ClusterSecret,
        SecretFile = ClusterSecretFile,
        EnvironmentVariable = "BANK_CLUSTER_SECRET",
        DataDirectory = DataDirectoryFor(config),
        SharedFile = RaftMQ.Hosting.ClusterSecret.SharedFileFor(ConfigPath),
    };

    /// <summary>The library's hosting options for this node: the config's addresses, the nodes' key and these settings.</summary>
    public RaftHostOptions HostOptions(ClusterConfig config, byte[] clusterSecret) =>
        config.HostOptions(Index, DataDirectoryFor(config), clusterSecret) with
        {
            TickInterval = TimeSpan.FromMilliseconds(TickMs),
            ElectionTimeout = TimeSpan.FromMilliseconds(ElectionTimeoutMs),
            HeartbeatInterval = TimeSpan.FromMilliseconds(HeartbeatMs),
            SnapshotEveryEntries = (ulong)SnapshotEveryEntries,
        };

    private static int Positive(string option, string value) =>
        int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0
            ? n
            : throw new ConfigException($"{option} must be a positive integer, not '{value}'");
}

using System.Globalization;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;

namespace RaftMQ.Server;

/// <summary>
/// How a node is started: <c>raftmq-node CONFIG INDEX [options]</c>. Every option can also come from a JSON settings
/// file (<c>--settings FILE</c>, keys named as the options: <c>{"election-timeout-ms": 300}</c>) or from an environment
/// variable (<c>RAFTMQ_ELECTION_TIMEOUT_MS=300</c>), read through the .NET configuration providers; the command line
/// wins over the environment, which wins over the file. Each setting is parsed and checked in one place
/// (<see cref="Apply"/>), whatever its source, and a bad one stops the node with a message naming it. The command line
/// itself is parsed by hand, and the configuration providers are loaded only when a file or a variable is given: the
/// HTTP port must answer within a few hundred milliseconds of launch.
/// </summary>
public sealed record NodeSettings
{
    public const string Usage = """
        usage: raftmq-node CONFIG.json INDEX [options]                 start (or restart) a node of a cluster
               raftmq-node --join URL --address IP:PORT[:PEER_PORT] [options]   add a new node to a running cluster

          CONFIG.json                 {"addresses": [{"ip": "127.0.0.1", "port": 8567, "internal_port": 8568}, ...]}
          INDEX                       this node's position in "addresses" (0-based)
          --join URL                  a new node asks the cluster at URL (any member's HTTP address, as
                                      http://HOST:PORT) to add it; it joins as a learner and becomes a voter
                                      once it has caught up. Once joined, the node's identity is in its data
                                      directory and --join is ignored
          --address IP:PORT[:PEER_PORT]  with --join: where this node serves HTTP and its peers (default PORT + 1000)
          --node N                    with --join: the node number to ask for (default: one above the highest member)

        options:
          --data-dir DIR              where the log and snapshots live
                                      (default: ./raftmq-data/<cluster id>/node-<INDEX>;
                                      with --join: ./raftmq-data/joined-<PORT>)
          --election-timeout-ms N     minimum election timeout; the actual one is random in [N, 2N)   (default 150)
          --heartbeat-ms N            leader heartbeat interval, less than the election timeout       (default 50)
          --idle-heartbeat-ms N       heartbeat interval once the cluster is quiet (nothing to         (default 500)
                                      replicate for two election timeouts); the election timeout
                                      scales with it meanwhile; 0 keeps the normal pace always
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
                                      the first node to start (docs/security.md). A node started with
                                      --join must be given the cluster's secret (or find it in its data directory)
          --auth-file PATH            clients must send an API key (Authorization: Bearer KEY) of this JSON file,
                                      with the permission the endpoint needs (publish, consume, admin per topic);
                                      401 without a valid key, 403 without the permission. Re-read when it
                                      changes, no restart (docs/security.md). Default: no client authentication
          --auth-rrmq                 with --auth-file: the RRMQ endpoints (PUT/GET /topic, PUT /message,
                                      GET /message/TOPIC) need a key too (default: they stay open)
          --allowed-origins LIST      comma-separated origins (https://host[:port]) whose browser pages may send
                                      requests that change state, and read answers (CORS); "*": any origin,
                                      no check and no CORS. Default: none besides the node's own pages (a
                                      request that changes state with another Origin is refused, 403)
          --allowed-hosts LIST        comma-separated host names the node answers to (DNS-rebinding protection;
                                      the node's own IP is always allowed); default "*": any. Set it when
                                      browsers can reach the node
          --tls-cert FILE             TLS everywhere, with --tls-key and --tls-ca: this node's certificate (PEM),
                                      served on the HTTP port (HTTPS only) and presented to its peers. It must
                                      be issued by --tls-ca and name the node's address (raftmq cert node)
          --tls-key FILE              the certificate's private key (PEM; keep it 0600)
          --tls-ca FILE               the cluster's CA certificate (PEM): peers connect over mutual TLS and
                                      each must present a certificate of this CA naming its address
                                      (docs/security.md, "TLS"). Default: no TLS
          --force-new-cluster         UNSAFE recovery of a cluster that lost its majority for good: this node
                                      becomes the only voter and commits what its log holds; what only the lost
                                      nodes held is gone. Then start new nodes with --join (docs/membership.md)
          --log-level LEVEL           Trace, Debug, Information, Warning, Error, Critical              (default Information)
          --log-format FORMAT         text (one line per event) or json (one JSON object per line)     (default text)
          --settings FILE             a JSON object of any of the options above, named without the dashes in front:
                                      {"election-timeout-ms": 300, "log-format": "json"}
          --help                      show this help

        Every option can also be set as an environment variable: RAFTMQ_ and its name in capitals with underscores
        (RAFTMQ_ELECTION_TIMEOUT_MS=300). The command line wins over the environment, which wins over --settings.
        """;

    /// <summary>Prefix of the environment variables that set options (<c>RAFTMQ_ELECTION_TIMEOUT_MS</c>).</summary>
    public const string EnvironmentPrefix = "RAFTMQ_";

    /// <summary>How a node's log lines are written.</summary>
    public LogFormat LogFormat { get; init; } = LogFormat.Text;

    /// <summary>The cluster config file; empty for a node started with <c>--join</c> and <c>--address</c> only.</summary>
    public required string ConfigPath { get; init; }

    /// <summary>This node's number (its index in the config, or the number it joined as); -1 until a joining node knows it.</summary>
    public required int Index { get; init; }

    /// <summary>With <c>--join</c>: the HTTP address of a member to ask to add this node.</summary>
    public Uri? Join { get; init; }

    /// <summary>With <c>--join</c>: this node's addresses (<c>--address</c>), or null to take them from the config at <see cref="Index"/>.</summary>
    public NodeAddress? Address { get; init; }

    /// <summary><c>--force-new-cluster</c>: make this node the only voter before it starts (see RaftHostOptions.ForceNewCluster).</summary>
    public bool ForceNewCluster { get; init; }

    /// <summary>With <c>--join</c>: the node number asked for (<c>--node</c>), or null for the cluster to choose.</summary>
    public int? NodeNumber { get; init; }

    public string? DataDirectory { get; init; }

    public int ElectionTimeoutMs { get; init; } = 150;

    public int HeartbeatMs { get; init; } = 50;

    /// <summary><c>--idle-heartbeat-ms</c>: the heartbeat interval of a quiet cluster; 0 turns quiescing off.</summary>
    public int IdleHeartbeatMs { get; init; } = 500;

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

    /// <summary><c>--auth-file</c>: the API keys clients must present, or null for no client authentication.</summary>
    public string? AuthFile { get; init; }

    /// <summary><c>--tls-cert</c>: the node's certificate (PEM); TLS is on when this, <see cref="TlsKey"/> and <see cref="TlsCa"/> are given.</summary>
    public string? TlsCert { get; init; }

    /// <summary><c>--tls-key</c>: the private key of <see cref="TlsCert"/> (PEM).</summary>
    public string? TlsKey { get; init; }

    /// <summary><c>--tls-ca</c>: the cluster's CA certificate (PEM), the only issuer accepted for peers.</summary>
    public string? TlsCa { get; init; }

    /// <summary>Whether the node runs with TLS (all three TLS files given).</summary>
    public bool Tls => TlsCert is not null;

    /// <summary><c>--auth-rrmq</c>: the RRMQ endpoints need a key too (only with <see cref="AuthFile"/>).</summary>
    public bool AuthRrmq { get; init; }

    /// <summary>
    /// <c>--allowed-origins</c>: origins besides the node's own whose pages may send state-changing requests; empty
    /// (the default) allows none, null (<c>*</c>) any.
    /// </summary>
    public IReadOnlyList<string>? AllowedOrigins { get; init; } = [];

    /// <summary><c>--allowed-hosts</c>: the host names the node answers to; null (the default, <c>*</c>) for any.</summary>
    public IReadOnlyList<string>? AllowedHosts { get; init; }

    /// <summary>The data directory: the explicit option, else one keyed by the cluster's identity and the node's index.</summary>
    public string DataDirectoryFor(ClusterConfig? config) =>
        DataDirectory ?? (config is null
            ? Path.Combine("raftmq-data", $"joined-{Address!.Port}")
            : Path.Combine("raftmq-data", config.ClusterId, $"node-{Index}"));

    /// <summary>Where this node looks for the peers' secret (<see cref="RaftMQ.Hosting.ClusterSecret.Resolve"/>).</summary>
    public ClusterSecretSources SecretSources(ClusterConfig? config) => new()
    {
        Passphrase = ClusterSecret,
        SecretFile = ClusterSecretFile,
        EnvironmentVariable = "RAFTMQ_CLUSTER_SECRET",
        DataDirectory = DataDirectoryFor(config),
        // A joining node uses the shared file of its config only when there is one already: it never makes one up.
        SharedFile = ConfigPath.Length == 0 || (Join is not null && !File.Exists(RaftMQ.Hosting.ClusterSecret.SharedFileFor(ConfigPath)))
            ? null
            : RaftMQ.Hosting.ClusterSecret.SharedFileFor(ConfigPath),
    };

    /// <summary>How the library hosts this node: the config's addresses, the peers' key and this command line's timings.</summary>
    public RaftHostOptions HostOptions(ClusterConfig config, byte[] clusterSecret) =>
        HostOptions(config.Identity(Index), config.Address(Index), DataDirectoryFor(config), clusterSecret);

    /// <summary>
    /// How the library hosts the node <paramref name="identity"/> names, listening at <paramref name="me"/> (on
    /// <paramref name="listenAddress"/> when given: its host name resolved once at start): the members it knows as its
    /// first peers, the peers' key and this command line's timings.
    /// </summary>
    public RaftHostOptions HostOptions(
        NodeIdentity identity, NodeAddress me, string dataDirectory, byte[] clusterSecret, MemberDirectory? members = null,
        System.Net.IPAddress? listenAddress = null) => new()
    {
        NodeId = identity.NodeId,
        Peers = identity.Members.Where(m => m.Key != identity.NodeId)
            .ToDictionary(m => m.Key, m => ClusterConfig.PeerEndPoint(m.Value)),
        ListenEndPoint = new System.Net.IPEndPoint(listenAddress ?? ClusterConfig.ListenAddress(me.Ip), me.InternalPort),
        DataDirectory = dataDirectory,
        ClusterId = identity.ClusterId,
        ClusterSecret = clusterSecret,
        JoinExisting = identity.Joined,
        Members = members,
        ForceNewCluster = ForceNewCluster,
        TickInterval = TimeSpan.FromMilliseconds(TickMs),
        ElectionTimeout = TimeSpan.FromMilliseconds(ElectionTimeoutMs),
        HeartbeatInterval = TimeSpan.FromMilliseconds(HeartbeatMs),
        IdleHeartbeatInterval = TimeSpan.FromMilliseconds(IdleHeartbeatMs),
        SnapshotEveryEntries = (ulong)SnapshotEveryEntries,
    };

    /// <summary>Parses the command line; throws <see cref="ConfigException"/> with a message for the user.</summary>
    /// <param name="args">The command line.</param>
    /// <param name="environment">The environment variables to read (null: the process's own).</param>
    public static NodeSettings Parse(IReadOnlyList<string> args, IReadOnlyDictionary<string, string>? environment = null)
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
            var name = eq > 0 ? a[2..eq] : a[2..];
            // Named first: an unknown option would otherwise be read as one that takes the next argument.
            if (!Options.ContainsKey(name) && name is not ("settings" or "help"))
                throw new ConfigException($"unknown option --{name} (raftmq-node --help lists them)");
            if (eq > 0)
            {
                named[a[2..eq]] = a[(eq + 1)..];
            }
            else if (a is "--help" or "--force-new-cluster" or "--auth-rrmq")
            {
                named[a[2..]] = "";
            }
            else
            {
                if (i + 1 >= args.Count) throw new ConfigException($"option {a} needs a value") { ShowUsage = true };
                named[a[2..]] = args[++i];
            }
        }
        if (named.ContainsKey("help")) throw new HelpRequestedException();
        var joining = named.ContainsKey("join");
        if (joining && positional.Count == 0)
        {
            if (!named.ContainsKey("address")) throw new ConfigException("--join needs --address IP:PORT[:PEER_PORT] (or a config file and INDEX) to say where this node listens") { ShowUsage = true };
        }
        else if (positional.Count != 2)
        {
            throw new ConfigException("expected two arguments: the config file and this node's index (or --join URL --address IP:PORT)") { ShowUsage = true };
        }
        var index = -1;
        if (positional.Count == 2 && !int.TryParse(positional[1], NumberStyles.None, CultureInfo.InvariantCulture, out index))
            throw new ConfigException($"INDEX must be a non-negative integer, not '{positional[1]}'") { ShowUsage = true };
        if (!joining && (named.ContainsKey("address") || named.ContainsKey("node")))
            throw new ConfigException("--address and --node go with --join") { ShowUsage = true };

        var s = new NodeSettings { ConfigPath = positional.Count == 2 ? positional[0] : "", Index = index };
        // Lowest precedence first: the settings file, then the environment, then the command line.
        named.Remove("settings", out var settingsFile);
        foreach (var (key, value, source) in FromConfiguration(settingsFile, environment ?? ReadEnvironment()))
            s = s.Apply(key, value, source);
        foreach (var (key, value) in named) s = s.Apply(key, value, $"--{key}");
        if (s.HeartbeatMs < s.TickMs || s.ElectionTimeoutMs <= s.HeartbeatMs)
            throw new ConfigException("need --tick-ms <= --heartbeat-ms < --election-timeout-ms");
        if (s.IdleHeartbeatMs != 0 && s.IdleHeartbeatMs < s.HeartbeatMs)
            throw new ConfigException($"--idle-heartbeat-ms {s.IdleHeartbeatMs} must be 0 (off) or at least --heartbeat-ms {s.HeartbeatMs}");
        if ((long)s.IdleHeartbeatMs / s.TickMs > RaftMQ.Raft.RaftOptions.MaxQuiescedTicks / 8)
            throw new ConfigException($"--idle-heartbeat-ms {s.IdleHeartbeatMs} is too long for --tick-ms {s.TickMs}");
        if ((s.TlsCert is null) != (s.TlsKey is null) || (s.TlsCert is null) != (s.TlsCa is null))
            throw new ConfigException("--tls-cert, --tls-key and --tls-ca go together: the node's certificate, its key and the cluster's CA (TLS on the HTTP port and between peers)");
        if (s.AuthRrmq && s.AuthFile is null) throw new ConfigException("--auth-rrmq needs --auth-file PATH (the keys the RRMQ endpoints would ask for)");
        if (s.HttpLimits() is var http && http.MaxConnectionsPerAddress > http.MaxConnections)
            throw new ConfigException($"--max-connections-per-ip {http.MaxConnectionsPerAddress} is over --max-connections {http.MaxConnections}");
        return s;
    }

    /// <summary>
    /// This with the option <paramref name="key"/> (its command-line name without the dashes) set to
    /// <paramref name="value"/>; <paramref name="source"/> names where it came from in an error.
    /// </summary>
    private NodeSettings Apply(string key, string value, string source) =>
        Options.TryGetValue(key, out var set) ? set(this, value, source) : throw new ConfigException($"unknown option {source}");

    /// <summary>Every named option and how it sets its property: the one place each is parsed and checked, whatever its source.</summary>
    private static readonly Dictionary<string, Func<NodeSettings, string, string, NodeSettings>> Options = new(StringComparer.Ordinal)
    {
        ["data-dir"] = (s, v, _) => s with { DataDirectory = v },
        ["election-timeout-ms"] = (s, v, source) => s with { ElectionTimeoutMs = PositiveInt(source, v) },
        ["heartbeat-ms"] = (s, v, source) => s with { HeartbeatMs = PositiveInt(source, v) },
        ["idle-heartbeat-ms"] = (s, v, source) => s with { IdleHeartbeatMs = NonNegativeInt(source, v) },
        ["tick-ms"] = (s, v, source) => s with { TickMs = PositiveInt(source, v) },
        ["request-timeout-ms"] = (s, v, source) => s with { RequestTimeoutMs = PositiveInt(source, v) },
        ["max-connections"] = (s, v, source) => s with { MaxConnections = PositiveInt(source, v) },
        ["max-connections-per-ip"] = (s, v, source) => s with { MaxConnectionsPerIp = PositiveInt(source, v) },
        ["idle-timeout-ms"] = (s, v, source) => s with { IdleTimeoutMs = PositiveInt(source, v) },
        ["snapshot-every"] = (s, v, source) => s with { SnapshotEveryEntries = PositiveInt(source, v) },
        ["disk-free-limit-mb"] = (s, v, source) => s with { DiskFreeLimitMb = NonNegativeInt(source, v) },
        ["cluster-secret"] = (s, v, _) => s with { ClusterSecret = v },
        ["cluster-secret-file"] = (s, v, _) => s with { ClusterSecretFile = v },
        ["join"] = (s, v, source) => s with
        {
            Join = NodeUrl.Parse(v, out var join) is { } why
                ? throw new ConfigException($"{source} must be a member's HTTP address like http://10.0.0.1:8567 (https:// with TLS): {why}")
                : join,
        },
        ["address"] = (s, v, source) => s with
        {
            Address = MemberAddress.Decode(v) is { } address && ClusterConfig.IsHost(address.Ip)
                ? address
                : throw new ConfigException($"{source} must be IP:PORT or IP:PORT:PEER_PORT (ports 1-65535, the peer port PORT + 1000 by default; a host name for IP), not '{v}'"),
        },
        ["node"] = (s, v, source) => s with { NodeNumber = NonNegativeInt(source, v) },
        ["force-new-cluster"] = (s, v, source) => s with { ForceNewCluster = Flag(source, v) },
        ["auth-file"] = (s, v, source) => s with { AuthFile = v.Length > 0 ? v : throw new ConfigException($"{source} needs a file path") },
        ["tls-cert"] = (s, v, source) => s with { TlsCert = v.Length > 0 ? v : throw new ConfigException($"{source} needs a file path") },
        ["tls-key"] = (s, v, source) => s with { TlsKey = v.Length > 0 ? v : throw new ConfigException($"{source} needs a file path") },
        ["tls-ca"] = (s, v, source) => s with { TlsCa = v.Length > 0 ? v : throw new ConfigException($"{source} needs a file path") },
        ["auth-rrmq"] = (s, v, source) => s with { AuthRrmq = Flag(source, v) },
        ["allowed-origins"] = (s, v, source) => s with { AllowedOrigins = Origins(source, v) },
        ["allowed-hosts"] = (s, v, source) => s with { AllowedHosts = Hosts(source, v) },
        ["log-level"] = (s, v, source) => s with
        {
            LogLevel = Enum.TryParse<LogLevel>(v, ignoreCase: true, out var level) && Enum.IsDefined(level)
                ? level
                : throw new ConfigException($"{source}: unknown level '{v}' (Trace, Debug, Information, Warning, Error, Critical)"),
        },
        ["log-format"] = (s, v, source) => s with
        {
            LogFormat = v.ToUpperInvariant() switch
            {
                "TEXT" => LogFormat.Text,
                "JSON" => LogFormat.Json,
                _ => throw new ConfigException($"{source}: unknown log format '{v}' (text or json)"),
            },
        },
    };

    /// <summary>
    /// The options a settings file and the environment give, lowest precedence first, through the configuration
    /// providers (JSON file, then environment variables); nothing is loaded when there are neither.
    /// </summary>
    private static List<(string Key, string Value, string Source)> FromConfiguration(string? settingsFile, IReadOnlyDictionary<string, string> environment)
    {
        var result = new List<(string, string, string)>();
        if (settingsFile is not null)
        {
            var path = Path.GetFullPath(settingsFile);
            IConfigurationRoot file;
            try
            {
                file = new ConfigurationBuilder().AddJsonFile(path, optional: false, reloadOnChange: false).Build();
            }
            catch (Exception e) when (e is FileNotFoundException or InvalidDataException or FormatException or IOException or System.Text.Json.JsonException)
            {
                // The provider's own message only says the file did not load; the innermost one says where and why.
                var detail = e.GetBaseException();
                throw new ConfigException($"--settings {settingsFile}: {e.Message}{(ReferenceEquals(detail, e) ? "" : $" ({detail.Message})")}");
            }
            foreach (var (key, value) in file.AsEnumerable().OrderBy(kv => kv.Key, StringComparer.Ordinal))
            {
                if (value is null) continue; // the parent of a nested object: its children are reported below
                if (key is "settings" or "help" || key.Contains(':', StringComparison.Ordinal))
                    throw new ConfigException($"--settings {settingsFile}: unknown setting \"{key}\"");
                result.Add((key, value, $"\"{key}\" in {settingsFile}"));
            }
        }
        var variables = environment.Where(kv => IsOptionVariable(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
        if (variables.Count > 0)
        {
            var env = new ConfigurationBuilder().AddInMemoryCollection(variables!).Build();
            foreach (var (name, value) in env.AsEnumerable().OrderBy(kv => kv.Key, StringComparer.Ordinal))
            {
                if (value is null) continue;
                result.Add((OptionName(name), value, name));
            }
        }
        return result;
    }

    /// <summary>The option an environment variable sets: RAFTMQ_ELECTION_TIMEOUT_MS is election-timeout-ms.</summary>
    private static string OptionName(string variable) =>
        variable[EnvironmentPrefix.Length..].Replace('_', '-').ToLowerInvariant();

    /// <summary>
    /// Whether a variable sets an option: RAFTMQ_ and the name of one. Others with the prefix are left alone (tools
    /// around a node use some); RAFTMQ_CLUSTER_SECRET is read where the secret is resolved (docs/security.md).
    /// </summary>
    private static bool IsOptionVariable(string name) =>
        name.StartsWith(EnvironmentPrefix, StringComparison.Ordinal) && name != "RAFTMQ_CLUSTER_SECRET"
        && Options.ContainsKey(OptionName(name));

    private static Dictionary<string, string> ReadEnvironment()
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (System.Collections.DictionaryEntry e in Environment.GetEnvironmentVariables())
        {
            if (e.Key is string k && e.Value is string v && k.StartsWith(EnvironmentPrefix, StringComparison.Ordinal)) result[k] = v;
        }
        return result;
    }

    /// <summary>A flag: no value on the command line; "true" or "false" in a settings file or the environment.</summary>
    private static bool Flag(string source, string value) => value.ToUpperInvariant() switch
    {
        "" or "TRUE" => true,
        "FALSE" => false,
        _ => throw new ConfigException($"{source} is a flag: true or false, not '{value}'"),
    };

    private static string[] List(string value) =>
        value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>Origins as <c>scheme://host:port</c>, or null for <c>*</c> (any).</summary>
    private static List<string>? Origins(string source, string value)
    {
        var items = List(value);
        if (items is ["*"]) return null;
        var result = new List<string>();
        foreach (var o in items)
        {
            result.Add(RequestGuard.NormalizeOrigin(o)
                ?? throw new ConfigException($"{source}: '{o}' is not an origin: scheme, host and port only, like https://console.example.com or http://10.0.0.5:8080 (or \"*\" alone for any)"));
        }
        return result;
    }

    /// <summary>Host names, or null for <c>*</c> (any).</summary>
    private static List<string>? Hosts(string source, string value)
    {
        var items = List(value);
        if (items is ["*"]) return null;
        if (items.Length == 0) throw new ConfigException($"{source} needs at least one host name (or \"*\" for any)");
        foreach (var h in items)
        {
            if (Uri.CheckHostName(h.TrimStart('[').TrimEnd(']')) == UriHostNameType.Unknown)
                throw new ConfigException($"{source}: '{h}' is not a host name or IP address (no scheme or port: queue.example.com, 10.0.0.5)");
        }
        return [.. items];
    }

    private static int NonNegativeInt(string source, string value) =>
        int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n)
            ? n
            : throw new ConfigException(TooLarge(value) ? $"{source} must be at most {int.MaxValue}, not '{value}'" : $"{source} must be a non-negative integer, not '{value}'");

    private static int PositiveInt(string source, string value) =>
        int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0
            ? n
            : throw new ConfigException(TooLarge(value) ? $"{source} must be at most {int.MaxValue}, not '{value}'" : $"{source} must be a positive integer, not '{value}'");

    /// <summary>Digits only, but more than an option's integer holds.</summary>
    private static bool TooLarge(string value) => value.Length > 0 && value.All(char.IsAsciiDigit) && !int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out _);
}

/// <summary>The user asked for --help.</summary>
public sealed class HelpRequestedException() : Exception("help requested");

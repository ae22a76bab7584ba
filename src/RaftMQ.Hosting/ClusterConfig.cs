using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace RaftMQ.Hosting;

/// <summary>One node's addresses: <see cref="Port"/> serves HTTP, <see cref="InternalPort"/> the Raft peers.</summary>
public sealed record NodeAddress(string Ip, int Port, int InternalPort, bool InternalPortGiven)
{
    /// <summary>The node's HTTP API: <c>https</c> when this process runs with TLS (<see cref="NodeHttp"/>).</summary>
    public Uri HttpUri => new(Url);

    /// <summary><see cref="HttpUri"/> as text, the port always written (80 and 443 included), no path: <c>http://HOST:PORT</c>.</summary>
    public string Url => $"{NodeHttp.Scheme}://{(Ip.Contains(':') ? $"[{Ip}]" : Ip)}:{Port}";
}

/// <summary>
/// A static cluster described by a JSON file: <c>{"addresses": [{"ip": ..., "port": ..., "internal_port": ...}, ...]}</c>
/// (the RRMQ format). <c>port</c> is the application's client port, <c>internal_port</c> the Raft peers' port; a node
/// without <c>internal_port</c> talks to peers on <c>port + 1000</c>. Node ids are the indexes plus one.
/// </summary>
public sealed class ClusterConfig
{
    /// <summary>Offset of the peer port from the HTTP port when the file gives no internal_port.</summary>
    public const int DefaultInternalPortOffset = 1000;

    public const int MaxNodes = 15;

    private ClusterConfig(IReadOnlyList<NodeAddress> addresses)
    {
        Addresses = addresses;
        ClusterId = ComputeClusterId(addresses);
    }

    public IReadOnlyList<NodeAddress> Addresses { get; }

    /// <summary>
    /// A short stable name for this cluster, derived from its address list, so two clusters never share a data
    /// directory or accept each other's peers.
    /// </summary>
    public string ClusterId { get; }

    /// <summary>Raft node ids are the config indexes plus one (Raft reserves 0 for "none").</summary>
    public static ulong NodeId(int index) => (ulong)index + 1;

    public static int IndexOf(ulong nodeId) => (int)(nodeId - 1);

    public static ClusterConfig Load(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException($"cannot read config file '{path}': {e.Message}");
        }
        return Parse(text, path);
    }

    public static ClusterConfig Parse(string json, string source = "config")
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 8 });
        }
        catch (JsonException e)
        {
            throw new ConfigException($"{source}: not valid JSON ({e.Message})");
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object
                || !doc.RootElement.TryGetProperty("addresses", out var list) || list.ValueKind != JsonValueKind.Array)
                throw new ConfigException($"{source}: expected an object with an \"addresses\" array");
            var addresses = new List<NodeAddress>();
            var i = 0;
            foreach (var a in list.EnumerateArray())
            {
                if (a.ValueKind != JsonValueKind.Object) throw new ConfigException($"{source}: addresses[{i}] is not an object");
                if (!a.TryGetProperty("ip", out var ipEl) || ipEl.ValueKind != JsonValueKind.String || ipEl.GetString() is not { Length: > 0 } ip)
                    throw new ConfigException($"{source}: addresses[{i}].ip must be a non-empty string");
                if (!IsHost(ip))
                    throw new ConfigException($"{source}: addresses[{i}].ip must be an IP address or a host name, not '{ip}'");
                var port = ReadPort(a, "port", i, source) ?? throw new ConfigException($"{source}: addresses[{i}].port is missing");
                var internalPort = ReadPort(a, "internal_port", i, source);
                if (internalPort is null && port + DefaultInternalPortOffset > 65535)
                    throw new ConfigException($"{source}: addresses[{i}] has no internal_port and port + {DefaultInternalPortOffset} is not a valid port");
                addresses.Add(new NodeAddress(ip, port, internalPort ?? port + DefaultInternalPortOffset, internalPort is not null));
                i++;
            }
            if (addresses.Count == 0) throw new ConfigException($"{source}: \"addresses\" is empty");
            if (addresses.Count > MaxNodes) throw new ConfigException($"{source}: at most {MaxNodes} nodes are supported");
            var endpoints = new HashSet<string>();
            foreach (var a in addresses)
            {
                if (!endpoints.Add($"{a.Ip}:{a.Port}") || !endpoints.Add($"{a.Ip}:{a.InternalPort}"))
                    throw new ConfigException($"{source}: {a.Ip} uses a port twice ({a.Port}/{a.InternalPort})");
            }
            return new ClusterConfig(addresses);
        }
    }

    private static int? ReadPort(JsonElement a, string name, int i, string source)
    {
        if (!a.TryGetProperty(name, out var el) || el.ValueKind == JsonValueKind.Null) return null;
        if (el.ValueKind != JsonValueKind.Number || !el.TryGetInt32(out var port) || port is < 1 or > 65535)
            throw new ConfigException($"{source}: addresses[{i}].{name} must be a port number (1-65535)");
        return port;
    }

    private static string ComputeClusterId(IReadOnlyList<NodeAddress> addresses)
    {
        var canonical = string.Join(';', addresses.Select(a => $"{a.Ip}:{a.Port}:{a.InternalPort}"));
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(canonical));
        return Convert.ToHexStringLower(hash.AsSpan(0, 8));
    }

    /// <summary>The addresses of node <paramref name="index"/>; a <see cref="ConfigException"/> when the config has no such node.</summary>
    public NodeAddress Address(int index) =>
        index >= 0 && index < Addresses.Count
            ? Addresses[index]
            : throw new ConfigException($"INDEX {index} is out of range: the config has {Addresses.Count} node(s)");

    /// <summary>
    /// The hosting options of node <paramref name="index"/>: its peer listen endpoint, the other nodes as peers, and
    /// the cluster id. The caller sets the data directory, the secret and the timings.
    /// </summary>
    public RaftHostOptions HostOptions(int index, string dataDirectory, byte[] clusterSecret)
    {
        Address(index);
        var peers = new Dictionary<ulong, EndPoint>();
        for (int i = 0; i < Addresses.Count; i++)
            if (i != index) peers[NodeId(i)] = PeerEndPoint(Addresses[i]);
        return new RaftHostOptions
        {
            NodeId = NodeId(index),
            Peers = peers,
            ListenEndPoint = ListenEndPoint(Addresses[index].Ip, Addresses[index].InternalPort),
            DataDirectory = dataDirectory,
            ClusterId = ClusterId,
            ClusterSecret = clusterSecret,
        };
    }

    /// <summary>
    /// The identity node <paramref name="index"/> takes when it bootstraps this cluster: the cluster id derived from
    /// the address list, id index + 1, and every node of the config as a first member.
    /// </summary>
    public NodeIdentity Identity(int index)
    {
        Address(index);
        return new NodeIdentity(ClusterId, NodeId(index), Joined: false,
            Addresses.Select((a, i) => (a, i)).ToDictionary(x => NodeId(x.i), x => x.a));
    }

    /// <summary>Whether <paramref name="host"/> is an IP address or a well-formed host name (which may not resolve).</summary>
    public static bool IsHost(string host) =>
        IPAddress.TryParse(host, out _) || (host.Length <= 253 && Uri.CheckHostName(host) == UriHostNameType.Dns);

    /// <summary>Where a node listens: "localhost" is loopback, an IP is itself, a host name its first resolved address.</summary>
    public static IPEndPoint ListenEndPoint(string ip, int port) => new(ListenAddress(ip), port);

    /// <summary>
    /// The address a node whose config entry says <paramref name="ip"/> listens on: "localhost" is loopback, an IP is
    /// itself, a host name is resolved (once, at start) and the first address it resolves to is taken. A
    /// <see cref="ConfigException"/> when it does not resolve.
    /// </summary>
    public static IPAddress ListenAddress(string ip)
    {
        if (ip == "localhost") return IPAddress.Loopback;
        if (IPAddress.TryParse(ip, out var parsed)) return parsed;
        if (!IsHost(ip)) throw new ConfigException($"'{ip}' is not an IP address or a host name");
        IPAddress[] resolved;
        try
        {
            resolved = Dns.GetHostAddresses(ip);
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or ArgumentException)
        {
            throw new ConfigException($"cannot resolve this node's host name '{ip}' to an address to listen on: {e.Message}");
        }
        return resolved.Length > 0 ? resolved[0] : throw new ConfigException($"cannot resolve this node's host name '{ip}': it has no address");
    }

    /// <summary>
    /// The peer endpoint of a node: an IP address as it is; a host name as a <see cref="DnsEndPoint"/>, which the
    /// transport resolves at each connection attempt, so a name that does not resolve (yet) is retried like a peer
    /// that is down, and a peer with TLS is checked against the name (a DNS subject alternative name).
    /// </summary>
    public static EndPoint PeerEndPoint(NodeAddress a) =>
        IPAddress.TryParse(a.Ip, out var ip) ? new IPEndPoint(ip, a.InternalPort) : new DnsEndPoint(a.Ip, a.InternalPort);
}

/// <summary>A configuration or command-line error; the message tells the user what to fix.</summary>
public sealed class ConfigException(string message) : Exception(message)
{
    /// <summary>The command line itself is malformed (arguments missing, an unknown option): the usage helps.</summary>
    public bool ShowUsage { get; init; }
}

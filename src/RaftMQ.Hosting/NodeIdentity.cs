using System.Text.Json;
using RaftMQ.Storage;

namespace RaftMQ.Hosting;

/// <summary>
/// Who a node is, fixed when its data directory is first used: the cluster's id, the node's Raft id, whether it
/// bootstrapped the cluster or joined a running one, and the members it knew then with their addresses. Stored in
/// the data directory (<see cref="FileName"/>) and read at every later start, so a node keeps its identity when the
/// cluster's address list changes. A node that bootstrapped starts its first configuration from
/// <see cref="Members"/>; a node that joined starts with none and learns it from the leader.
/// </summary>
public sealed record NodeIdentity(string ClusterId, ulong NodeId, bool Joined, IReadOnlyDictionary<ulong, NodeAddress> Members)
{
    /// <summary>The identity's file name in the data directory.</summary>
    public const string FileName = "node-identity.json";

    /// <summary>The identity stored in <paramref name="dataDirectory"/>, or null when there is none yet.</summary>
    /// <exception cref="ConfigException">The file exists but is unreadable or malformed.</exception>
    public static NodeIdentity? Load(string dataDirectory)
    {
        var path = Path.Combine(dataDirectory, FileName);
        if (!File.Exists(path)) return null;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { MaxDepth = 8 });
            var root = doc.RootElement;
            var clusterId = root.GetProperty("cluster_id").GetString() ?? throw new FormatException("cluster_id is null");
            var nodeId = root.GetProperty("node_id").GetUInt64();
            var joined = root.GetProperty("joined").GetBoolean();
            var members = new Dictionary<ulong, NodeAddress>();
            foreach (var m in root.GetProperty("members").EnumerateArray())
            {
                var address = MemberAddress.Decode(m.GetProperty("address").GetString() ?? "")
                    ?? throw new FormatException($"member {m.GetProperty("id")} has a malformed address");
                members[m.GetProperty("id").GetUInt64()] = address;
            }
            if (nodeId == 0 || clusterId.Length == 0) throw new FormatException("node_id 0 or an empty cluster_id");
            return new NodeIdentity(clusterId, nodeId, joined, members);
        }
        catch (Exception e) when (e is JsonException or FormatException or KeyNotFoundException or InvalidOperationException or IOException or UnauthorizedAccessException)
        {
            throw new ConfigException($"the node identity file '{path}' is unreadable or malformed ({e.Message}); it names the node and its cluster and cannot be rebuilt from its log: restore it, or wipe the data directory and add the node to its cluster again");
        }
    }

    /// <summary>
    /// Writes the identity into <paramref name="dataDirectory"/> (created if missing, the owner's only): a temporary
    /// file (mode 0600), fsync, rename, fsync of the directory.
    /// </summary>
    public void Save(string dataDirectory)
    {
        PhysicalFileSystem.CreateDirectoryOwnerOnly(dataDirectory);
        var path = Path.Combine(dataDirectory, FileName);
        var temp = path + ".tmp";
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = PhysicalFileSystem.OwnerOnlyFile; // like every file of the node's
        using (var stream = new FileStream(temp, options))
        {
            using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
            {
                w.WriteStartObject();
                w.WriteString("cluster_id", ClusterId);
                w.WriteNumber("node_id", NodeId);
                w.WriteBoolean("joined", Joined);
                w.WriteStartArray("members");
                foreach (var (id, address) in Members.OrderBy(m => m.Key))
                {
                    w.WriteStartObject();
                    w.WriteNumber("id", id);
                    w.WriteString("address", MemberAddress.Format(address));
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteEndObject();
            }
            stream.Flush(flushToDisk: true);
        }
        File.Move(temp, path, overwrite: true);
        PhysicalFileSystem.Instance.SyncDirectory(Path.GetFullPath(dataDirectory));
    }
}

/// <summary>
/// A member's addresses as the cluster's configuration records them (the bytes the consensus core carries for each
/// member without reading them): <c>IP:PORT:INTERNAL_PORT</c> in UTF-8, an IPv6 address in brackets.
/// </summary>
public static class MemberAddress
{
    /// <summary>"127.0.0.1:8567:8568".</summary>
    public static string Format(NodeAddress a) => $"{(a.Ip.Contains(':') ? $"[{a.Ip}]" : a.Ip)}:{a.Port}:{a.InternalPort}";

    /// <summary>The bytes recorded in the configuration.</summary>
    public static byte[] Encode(NodeAddress a) => System.Text.Encoding.UTF8.GetBytes(Format(a));

    /// <summary>Parses <see cref="Format"/>'s text (also <c>HOST:PORT</c>, with the peer port at PORT + 1000); null when malformed.</summary>
    public static NodeAddress? Decode(string text)
    {
        string host;
        string rest;
        if (text.StartsWith('['))
        {
            var close = text.IndexOf(']', StringComparison.Ordinal);
            if (close < 2 || close + 1 >= text.Length || text[close + 1] != ':') return null;
            host = text[1..close];
            rest = text[(close + 2)..];
        }
        else
        {
            var colon = text.IndexOf(':', StringComparison.Ordinal);
            if (colon < 1) return null;
            host = text[..colon];
            rest = text[(colon + 1)..];
        }
        var ports = rest.Split(':');
        if (ports.Length is < 1 or > 2 || host.Length > 253) return null;
        if (!TryPort(ports[0], out var port)) return null;
        var internalPort = port + ClusterConfig.DefaultInternalPortOffset;
        if (ports.Length == 2 && !TryPort(ports[1], out internalPort)) return null;
        if (internalPort > 65535 || internalPort == port) return null;
        return new NodeAddress(host, port, internalPort, ports.Length == 2);
    }

    /// <summary>Decodes the bytes of a configuration; null when empty or malformed.</summary>
    public static NodeAddress? Decode(ReadOnlySpan<byte> bytes)
    {
        if (bytes.IsEmpty) return null;
        try
        {
            return Decode(new System.Text.UTF8Encoding(false, true).GetString(bytes));
        }
        catch (System.Text.DecoderFallbackException)
        {
            return null;
        }
    }

    private static bool TryPort(string s, out int port) =>
        int.TryParse(s, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out port) && port is >= 1 and <= 65535;
}

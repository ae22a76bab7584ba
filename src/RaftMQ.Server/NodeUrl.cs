namespace RaftMQ.Server;

/// <summary>
/// A node's HTTP address as a member's <c>url</c> (<c>POST /v1/cluster/members</c>) or <c>raftmq-node --join URL</c>
/// gives it: <c>http://HOST:PORT</c> (<c>https://</c> in a TLS cluster), the port written out, and nothing else: no
/// user info, no path (not even <c>/</c>), no query, no fragment. HOST is an IP address (IPv6 in brackets) or a host
/// name, which need not resolve yet.
/// </summary>
public static class NodeUrl
{
    /// <summary>What is wrong with <paramref name="text"/> as a node's URL, or null with <paramref name="url"/> set.</summary>
    public static string? Parse(string text, out Uri url)
    {
        url = null!;
        if (!Uri.TryCreate(text, UriKind.Absolute, out var parsed) || !text.Contains("://", StringComparison.Ordinal))
            return $"'{text}' is not a URL";
        if (parsed.Scheme is not ("http" or "https")) return $"'{text}' is not http:// or https://";
        if (parsed.UserInfo.Length > 0) return $"'{text}' carries user info (the part before '@'), which a node's address has none of";
        var authority = text[(text.IndexOf("://", StringComparison.Ordinal) + 3)..];
        var end = authority.IndexOfAny(['/', '?', '#', '\\']);
        if (end >= 0)
        {
            return $"'{text}' has a {(parsed.Query.Length > 0 ? "query" : parsed.Fragment.Length > 0 ? "fragment" : "path")} "
                + $"after the port: give only {parsed.Scheme}://HOST:PORT";
        }
        var colon = authority.LastIndexOf(':');
        if (colon < 0 || colon < authority.LastIndexOf(']') || colon == authority.Length - 1)
            return $"'{text}' has no port: write it out, like {parsed.Scheme}://{authority}:8567";
        if (parsed.Port is < 1 or > 65535) return $"'{text}' has no valid port (1-65535)";
        if (!ClusterConfig.IsHost(Host(parsed))) return $"'{text}' does not name a host (an IP address or a host name)";
        url = parsed;
        return null;
    }

    /// <summary>The host of a node's URL as a member address records it: an IPv6 address without its brackets.</summary>
    public static string Host(Uri url) => url.Host.Trim('[', ']');
}

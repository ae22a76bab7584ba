using RaftMQ.Client;

namespace RaftMQ.Cli;

/// <summary>
/// A node's URL as the CLI writes it, everywhere: as the nodes write theirs (<c>NodeAddress.Url</c>, the members
/// list), by the client's <see cref="RaftMQClient.MemberUrl"/>: <c>http://HOST:PORT</c>, the port always written (80
/// and 443 included), no trailing slash, no path.
/// <see cref="Uri.ToString"/> and <see cref="Uri.GetLeftPart"/> drop a scheme's default port, so a node at
/// <c>http://10.0.0.4:80</c> would read as <c>http://10.0.0.4</c>.
/// </summary>
internal static class NodeUrl
{
    /// <summary><paramref name="url"/> as <c>SCHEME://HOST:PORT</c>, in <paramref name="scheme"/> when given (IPv6 hosts keep their brackets).</summary>
    public static string Format(Uri url, string? scheme = null) =>
        RaftMQClient.MemberUrl(scheme is null ? url : new UriBuilder(url) { Scheme = scheme, Port = url.Port }.Uri);
}

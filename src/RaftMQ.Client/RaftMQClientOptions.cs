using System.Security.Cryptography.X509Certificates;

namespace RaftMQ.Client;

/// <summary>Settings of a <see cref="RaftMQClient"/>. Every wait and every retry loop has a bound here.</summary>
public sealed class RaftMQClientOptions
{
    /// <summary>
    /// Base URLs of some or all nodes of the cluster, for example <c>http://127.0.0.1:8567</c>. One reachable node is
    /// enough: the client learns the leader's URL from it.
    /// </summary>
    public IList<Uri> Nodes { get; } = [];

    /// <summary>
    /// Upper bound on one HTTP attempt. Longer than the node's own request timeout (2.5 s by default), so a node that
    /// waits for an election answers before the client gives up on it. Default 5 s.
    /// </summary>
    public TimeSpan AttemptTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Upper bound on a whole operation: leader discovery, every attempt and every back-off. Default 15 s.</summary>
    public TimeSpan OperationTimeout { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>Upper bound on the status request sent to each node while looking for the leader. Default 1 s.</summary>
    public TimeSpan StatusTimeout { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Upper bound on opening a TCP connection to a node. Default 2 s.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>How many times a safe-to-retry failure is retried before the operation fails. Default 10.</summary>
    public int MaxRetries { get; set; } = 10;

    /// <summary>First back-off between retries; it doubles (with jitter) up to <see cref="MaxRetryDelay"/>. Default 50 ms.</summary>
    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromMilliseconds(50);

    /// <summary>Largest back-off between two retries. Default 1 s.</summary>
    public TimeSpan MaxRetryDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How long a known leader is trusted before the client asks the cluster again. A deposed leader that is still
    /// running forwards requests to the new one, so this only bounds how long the client pays that extra hop.
    /// Default 5 s.
    /// </summary>
    public TimeSpan LeaderRefreshInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Most connections the client opens to one node. Default 256.</summary>
    public int MaxConnectionsPerNode { get; set; } = 256;

    /// <summary>Most nodes the client remembers (given plus learned from the cluster). Default 32.</summary>
    public int MaxKnownNodes { get; set; } = 32;

    /// <summary>
    /// The API key to send as <c>Authorization: Bearer KEY</c> with every request, for nodes started with
    /// <c>--auth-file</c> (docs/security.md); null (the default) sends none. A node that refuses it answers 401
    /// (<see cref="AuthenticationFailedException"/>) or, without the permission, 403 (<see cref="PermissionDeniedException"/>).
    /// </summary>
    public string? ApiKey { get; set; }

    /// <summary>
    /// The CA that issued the nodes' HTTPS certificates (a cluster run with <c>--tls-ca</c>, docs/security.md "TLS"):
    /// this client then trusts that CA only, for its own connections, and still checks that each node's certificate
    /// names the host in its URL. Null (the default) validates against the system's trusted roots. Nothing is
    /// changed for other HTTP clients of the process.
    /// </summary>
    public X509Certificate2? CaCertificate { get; set; }

    /// <summary>Longest <see cref="ApiKey"/> accepted (the nodes accept no longer key).</summary>
    public const int MaxApiKeyLength = 512;

    internal void Validate()
    {
        if (ApiKey is not null && (ApiKey.Length is 0 or > MaxApiKeyLength || !ApiKey.All(IsTokenChar)))
            throw new ArgumentException($"the API key must be 1 to {MaxApiKeyLength} letters, digits or - . _ ~ + / = (a bearer token)", nameof(ApiKey));
        if (Nodes.Count == 0) throw new ArgumentException("give at least one node URL", nameof(Nodes));
        foreach (var n in Nodes)
        {
            if (n is null || !n.IsAbsoluteUri || (n.Scheme != Uri.UriSchemeHttp && n.Scheme != Uri.UriSchemeHttps))
                throw new ArgumentException($"node URL '{n}' is not an absolute http(s) URL", nameof(Nodes));
        }
        Positive(AttemptTimeout, nameof(AttemptTimeout));
        Positive(OperationTimeout, nameof(OperationTimeout));
        Positive(StatusTimeout, nameof(StatusTimeout));
        Positive(ConnectTimeout, nameof(ConnectTimeout));
        Positive(RetryDelay, nameof(RetryDelay));
        Positive(MaxRetryDelay, nameof(MaxRetryDelay));
        Positive(LeaderRefreshInterval, nameof(LeaderRefreshInterval));
        if (MaxRetries < 0) throw new ArgumentOutOfRangeException(nameof(MaxRetries), MaxRetries, "must not be negative");
        if (MaxConnectionsPerNode < 1) throw new ArgumentOutOfRangeException(nameof(MaxConnectionsPerNode), MaxConnectionsPerNode, "must be positive");
        if (MaxKnownNodes < Nodes.Count) throw new ArgumentOutOfRangeException(nameof(MaxKnownNodes), MaxKnownNodes, "must be at least the number of nodes given");
    }

    private static bool IsTokenChar(char c) => char.IsAsciiLetterOrDigit(c) || c is '-' or '.' or '_' or '~' or '+' or '/' or '=';

    private static void Positive(TimeSpan value, string name)
    {
        if (value <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(name, value, "must be positive");
    }
}

using System.Net;
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace RaftMQ.Transport;

/// <summary>
/// Mutual TLS on the peer links (<see cref="TcpTransportOptions.Tls"/>): every connection, both ways, is a TLS
/// session in which each node presents <see cref="Certificate"/> and accepts the other's only when it chains to
/// <see cref="Authority"/> (the cluster's CA, and nothing else: the system's trusted roots play no part) and names the
/// address the peer is configured at. The cluster-secret handshake then runs inside the session, as without TLS.
/// </summary>
public sealed class PeerTlsOptions
{
    private SslStreamCertificateContext? context;

    /// <summary>This node's certificate, with its private key; it must name the node's peer address.</summary>
    public required X509Certificate2 Certificate { get; init; }

    /// <summary>The cluster's certificate authority: a peer's certificate must be issued by it.</summary>
    public required X509Certificate2 Authority { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> when the certificate cannot serve (no private key).</summary>
    public void Validate()
    {
        if (Certificate is null || Authority is null) throw new ArgumentException("Tls needs a Certificate and an Authority.");
        if (!Certificate.HasPrivateKey) throw new ArgumentException("Tls.Certificate has no private key.");
    }

    private SslStreamCertificateContext Context =>
        context ??= SslStreamCertificateContext.Create(Certificate, additionalCertificates: null, offline: true);

    /// <summary>The dialer's side: presents this node's certificate, checks the listener's against <paramref name="expected"/>.</summary>
    internal SslClientAuthenticationOptions ClientOptions(EndPoint expected, Action<string> refused) => new()
    {
        TargetHost = HostName(expected),
        ClientCertificateContext = Context,
        EnabledSslProtocols = SslProtocols.Tls13 | SslProtocols.Tls12,
        CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        RemoteCertificateValidationCallback = (_, certificate, _, _) =>
            Accept(certificate, ServerAuth, expected, refused),
    };

    /// <summary>
    /// The listener's side: presents this node's certificate and asks for the dialer's, which must chain to the
    /// authority; which address it must name is known only once the dialer says who it is (<see cref="Refuses"/>).
    /// </summary>
    internal SslServerAuthenticationOptions ServerOptions(Action<string> refused) => new()
    {
        ServerCertificateContext = Context,
        ClientCertificateRequired = true,
        EnabledSslProtocols = SslProtocols.Tls13 | SslProtocols.Tls12,
        CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        RemoteCertificateValidationCallback = (_, certificate, _, _) =>
            Accept(certificate, ClientAuth, expected: null, refused),
    };

    /// <summary>Why <paramref name="certificate"/> (already checked against the authority) is not the peer at <paramref name="expected"/>, or null.</summary>
    internal static string? Refuses(X509Certificate? certificate, EndPoint expected)
    {
        if (certificate is null) return "it presented no certificate";
        using var owned = certificate as X509Certificate2 is null ? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData()) : null;
        var cert = owned ?? (X509Certificate2)certificate;
        return Names(cert, expected)
            ? null
            : $"its certificate ({cert.Subject}) does not name its configured address {HostName(expected)}";
    }

    /// <summary>Whether <paramref name="certificate"/>'s subject alternative names include the host of <paramref name="endPoint"/>.</summary>
    public static bool Names(X509Certificate2 certificate, EndPoint endPoint)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        var san = certificate.Extensions.OfType<X509SubjectAlternativeNameExtension>().FirstOrDefault();
        if (san is null) return false;
        if (HostOf(endPoint) is IPAddress ip)
        {
            var mapped = ip.IsIPv4MappedToIPv6 ? ip.MapToIPv4() : ip;
            return san.EnumerateIPAddresses().Any(a => a.Equals(mapped));
        }

        var host = HostName(endPoint);
        return san.EnumerateDnsNames().Any(d => string.Equals(d, host, StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>
    /// A chain policy that trusts <paramref name="authority"/> as the only root (no system store, no revocation
    /// check: the cluster's CA publishes no revocation list). The peers' checks and the node's own HTTPS clients use it.
    /// </summary>
    public static X509ChainPolicy CaOnlyPolicy(X509Certificate2 authority)
    {
        ArgumentNullException.ThrowIfNull(authority);
        var policy = new X509ChainPolicy
        {
            TrustMode = X509ChainTrustMode.CustomRootTrust,
            RevocationMode = X509RevocationMode.NoCheck,
        };
        policy.CustomTrustStore.Add(authority);
        return policy;
    }

    /// <summary>
    /// Why <paramref name="certificate"/> is not one issued by <paramref name="authority"/> for <paramref name="usage"/>
    /// (an extended key usage) and valid now, or null when it is.
    /// </summary>
    public static string? ChainRefusal(X509Certificate2 certificate, X509Certificate2 authority, Oid usage)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        ArgumentNullException.ThrowIfNull(authority);
        using var chain = new X509Chain { ChainPolicy = CaOnlyPolicy(authority) };
        chain.ChainPolicy.ApplicationPolicy.Add(usage);
        if (chain.Build(certificate))
        {
            return null;
        }

        var problems = chain.ChainStatus.Where(s => s.Status != X509ChainStatusFlags.NoError)
            .Select(s => s.Status switch
            {
                X509ChainStatusFlags.UntrustedRoot or X509ChainStatusFlags.PartialChain => "not issued by the cluster's CA",
                X509ChainStatusFlags.NotTimeValid => $"not valid now (valid {certificate.NotBefore:u} to {certificate.NotAfter:u})",
                X509ChainStatusFlags.NotValidForUsage => "not issued for this use (extended key usage)",
                _ => s.StatusInformation.Trim(),
            })
            .Distinct();
        return $"certificate {certificate.Subject}: {string.Join("; ", problems)}";
    }

    /// <summary>The extended key usage a TLS server's certificate carries.</summary>
    public static readonly Oid ServerAuth = new("1.3.6.1.5.5.7.3.1");

    /// <summary>The extended key usage a TLS client's certificate carries.</summary>
    public static readonly Oid ClientAuth = new("1.3.6.1.5.5.7.3.2");

    private bool Accept(X509Certificate? certificate, Oid usage, EndPoint? expected, Action<string> refused)
    {
        if (certificate is null)
        {
            refused("the peer presented no certificate");
            return false;
        }

        using var cert = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        if (ChainRefusal(cert, Authority, usage) is { } why)
        {
            refused(why);
            return false;
        }

        if (expected is not null && !Names(cert, expected))
        {
            refused($"certificate {cert.Subject} does not name the peer's address {HostName(expected)}");
            return false;
        }

        return true;
    }

    private static object? HostOf(EndPoint endPoint) => endPoint switch
    {
        IPEndPoint ip => ip.Address,
        DnsEndPoint dns when IPAddress.TryParse(dns.Host, out var parsed) => parsed,
        _ => null,
    };

    private static string HostName(EndPoint endPoint) => endPoint switch
    {
        IPEndPoint ip => (ip.Address.IsIPv4MappedToIPv6 ? ip.Address.MapToIPv4() : ip.Address).ToString(),
        DnsEndPoint dns => dns.Host,
        _ => endPoint.ToString() ?? "?",
    };
}

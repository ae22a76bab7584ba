using System.Net;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using RaftMQ.Transport;

namespace RaftMQ.Hosting;

/// <summary>
/// A node's TLS files, loaded and checked at start-up (<c>--tls-cert</c>, <c>--tls-key</c>, <c>--tls-ca</c>): its
/// certificate and private key (PEM), served on the HTTP API and presented to peers, and the cluster's CA, the only
/// issuer it accepts for a peer. Every problem a user can cause is a <see cref="ConfigException"/> of one line naming
/// the file and what to do.
/// </summary>
public sealed class NodeTls
{
    private NodeTls(X509Certificate2 certificate, X509Certificate2 authority, string certificatePath)
    {
        Certificate = certificate;
        Authority = authority;
        CertificatePath = certificatePath;
    }

    /// <summary>This node's certificate with its private key.</summary>
    public X509Certificate2 Certificate { get; }

    /// <summary>The cluster's CA.</summary>
    public X509Certificate2 Authority { get; }

    /// <summary>Where the certificate was read from, for the log.</summary>
    public string CertificatePath { get; }

    /// <summary>Mutual TLS for the peer transport with these files.</summary>
    public PeerTlsOptions Peer => new() { Certificate = Certificate, Authority = Authority };

    /// <summary>
    /// Loads and checks the files: readable PEM, the key matching the certificate, the certificate valid now, issued by
    /// the CA for server and client use, and naming <paramref name="host"/> (the node's address in the cluster), since
    /// its peers and clients check that name.
    /// </summary>
    public static NodeTls Load(string certificatePath, string keyPath, string authorityPath, string host)
    {
        var authority = ReadCertificate(authorityPath, "--tls-ca");
        if (authority.Extensions.OfType<X509BasicConstraintsExtension>().FirstOrDefault() is not { CertificateAuthority: true })
            throw new ConfigException($"--tls-ca {authorityPath}: {authority.Subject} is not a CA certificate (give the cluster's ca.pem, made by: raftmq cert ca)");
        var leaf = ReadCertificate(certificatePath, "--tls-cert");
        CheckTime(leaf, $"--tls-cert {certificatePath}");
        CheckTime(authority, $"--tls-ca {authorityPath}");

        X509Certificate2 certificate;
        try
        {
            certificate = X509Certificate2.CreateFromPemFile(certificatePath, keyPath);
        }
        catch (Exception e) when (e is CryptographicException or ArgumentException)
        {
            throw new ConfigException($"--tls-key {keyPath}: not the private key of --tls-cert {certificatePath} (or not a PEM private key): {e.Message}");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException($"--tls-key {keyPath}: cannot read it: {e.Message}");
        }

        foreach (var usage in new[] { PeerTlsOptions.ServerAuth, PeerTlsOptions.ClientAuth })
        {
            if (PeerTlsOptions.ChainRefusal(certificate, authority, usage) is { } why)
                throw new ConfigException($"--tls-cert {certificatePath} does not fit --tls-ca {authorityPath}: {why} (a node certificate from: raftmq cert node)");
        }

        EndPoint me = IPAddress.TryParse(host, out var ip) ? new IPEndPoint(ip, 0) : new DnsEndPoint(host, 0);
        if (!PeerTlsOptions.Names(certificate, me))
            throw new ConfigException($"--tls-cert {certificatePath} does not name this node's address {host} (its peers check it): make one with: raftmq cert node NAME --host {host}");
        return new NodeTls(certificate, authority, certificatePath);
    }

    private static X509Certificate2 ReadCertificate(string path, string option)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException($"{option} {path}: cannot read it: {e.Message}");
        }

        try
        {
            return X509Certificate2.CreateFromPem(text);
        }
        catch (CryptographicException e)
        {
            throw new ConfigException($"{option} {path}: not a PEM certificate (-----BEGIN CERTIFICATE-----): {e.Message}");
        }
    }

    private static void CheckTime(X509Certificate2 certificate, string what)
    {
        var now = DateTime.Now;
        if (now > certificate.NotAfter) throw new ConfigException($"{what}: the certificate expired on {certificate.NotAfter.ToUniversalTime():u}; make a new one");
        if (now < certificate.NotBefore) throw new ConfigException($"{what}: the certificate is not valid before {certificate.NotBefore.ToUniversalTime():u} (is the clock right?)");
    }
}

/// <summary>
/// How this node process speaks HTTP to other members (the console's overview, a join request): <c>http</c>, or
/// <c>https</c> trusting the cluster's CA once <see cref="UseTls"/> ran. A cluster runs with TLS everywhere or not at
/// all, so a member's URL (<see cref="NodeAddress.HttpUri"/>) takes this process's scheme.
/// </summary>
public static class NodeHttp
{
    private static X509Certificate2? authority;

    /// <summary><c>https</c> once <see cref="UseTls"/> ran, else <c>http</c>.</summary>
    public static string Scheme => authority is null ? "http" : "https";

    /// <summary>Members serve HTTPS with certificates of <paramref name="ca"/>; called once, at start-up.</summary>
    public static void UseTls(X509Certificate2 ca) => authority = ca;

    /// <summary>TLS settings for a client of the members: the cluster's CA as the only trusted root (no other certificate passes).</summary>
    public static SslClientAuthenticationOptions? ClientOptions() => authority is null ? null : TrustOnly(authority);

    /// <summary>TLS client settings that trust <paramref name="ca"/> and nothing else, with the usual host name check.</summary>
    public static SslClientAuthenticationOptions TrustOnly(X509Certificate2 ca) =>
        new() { CertificateChainPolicy = RaftMQ.Transport.PeerTlsOptions.CaOnlyPolicy(ca) };
}

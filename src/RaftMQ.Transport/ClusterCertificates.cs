using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace RaftMQ.Transport;

/// <summary>
/// Makes a cluster's certificates with the platform's cryptography (ECDSA P-256, SHA-256): a certificate authority,
/// node certificates (server and client use, naming the node's addresses, for the HTTP API and mutual TLS between
/// peers) and client certificates (client use only). Used by <c>raftmq cert</c> and the tests; any other CA whose
/// certificates carry the same names and key usages serves as well.
/// </summary>
public static class ClusterCertificates
{
    /// <summary>A new self-signed CA certificate, with its private key, valid from a minute ago for <paramref name="validity"/>.</summary>
    public static X509Certificate2 CreateAuthority(string name, TimeSpan validity)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(Subject(name), key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var now = DateTimeOffset.UtcNow.AddMinutes(-1);
        return request.CreateSelfSigned(now, now + validity);
    }

    /// <summary>
    /// A node certificate issued by <paramref name="authority"/> (which must hold its private key): usable as a TLS
    /// server and client, naming each of <paramref name="hosts"/> (IP addresses and DNS names) as a subject
    /// alternative name.
    /// </summary>
    public static X509Certificate2 CreateNode(X509Certificate2 authority, string name, IReadOnlyCollection<string> hosts, TimeSpan validity)
    {
        ArgumentNullException.ThrowIfNull(hosts);
        if (hosts.Count == 0) throw new ArgumentException("a node certificate needs at least one host name or IP address", nameof(hosts));
        var names = new SubjectAlternativeNameBuilder();
        foreach (var host in hosts)
        {
            if (IPAddress.TryParse(host, out var ip)) names.AddIpAddress(ip);
            else if (Uri.CheckHostName(host) == UriHostNameType.Dns) names.AddDnsName(host);
            else throw new ArgumentException($"'{host}' is neither an IP address nor a host name", nameof(hosts));
        }

        return Issue(authority, name, [PeerTlsOptions.ServerAuth, PeerTlsOptions.ClientAuth], names.Build(), validity);
    }

    /// <summary>A client certificate issued by <paramref name="authority"/>: TLS client use only, so it cannot serve as a node.</summary>
    public static X509Certificate2 CreateClient(X509Certificate2 authority, string name, TimeSpan validity) =>
        Issue(authority, name, [PeerTlsOptions.ClientAuth], alternativeNames: null, validity);

    /// <summary>
    /// Writes <paramref name="certificate"/> as PEM to <paramref name="certificatePath"/> and, when
    /// <paramref name="keyPath"/> is given, its private key (PKCS#8 PEM) there, created readable by the owner only.
    /// Existing files are not overwritten (<see cref="IOException"/>).
    /// </summary>
    public static void WritePem(X509Certificate2 certificate, string certificatePath, string? keyPath)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        if (keyPath is not null)
        {
            using var key = certificate.GetECDsaPrivateKey() ?? throw new ArgumentException("the certificate has no ECDSA private key", nameof(certificate));
            WriteNew(keyPath, key.ExportPkcs8PrivateKeyPem(), ownerOnly: true);
        }

        WriteNew(certificatePath, certificate.ExportCertificatePem() + "\n", ownerOnly: false);
    }

    private static X509Certificate2 Issue(
        X509Certificate2 authority, string name, Oid[] usages, X509Extension? alternativeNames, TimeSpan validity)
    {
        ArgumentNullException.ThrowIfNull(authority);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        using var caKey = authority.GetECDsaPrivateKey() ?? throw new ArgumentException("the CA certificate has no ECDSA private key", nameof(authority));
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(Subject(name), key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        var eku = new OidCollection();
        foreach (var usage in usages) eku.Add(usage);
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(eku, false));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(authority, true, false));
        if (alternativeNames is not null) request.CertificateExtensions.Add(alternativeNames);
        var now = DateTimeOffset.UtcNow.AddMinutes(-1);
        var notAfter = now + validity;
        if (notAfter > authority.NotAfter) notAfter = authority.NotAfter;
        using var issued = request.Create(authority.SubjectName, X509SignatureGenerator.CreateForECDsa(caKey), now, notAfter, RandomNumberGenerator.GetBytes(16));
        return issued.CopyWithPrivateKey(key);
    }

    private static X500DistinguishedName Subject(string name)
    {
        var builder = new X500DistinguishedNameBuilder();
        builder.AddCommonName(name);
        builder.AddOrganizationName("RaftMQ");
        return builder.Build();
    }

    private static void WriteNew(string path, string text, bool ownerOnly)
    {
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (ownerOnly && !OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using var stream = new FileStream(path, options);
        stream.Write(System.Text.Encoding.ASCII.GetBytes(text));
        stream.Flush(flushToDisk: true);
    }
}

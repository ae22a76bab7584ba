using System.CommandLine;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using RaftMQ.Transport;

namespace RaftMQ.Cli;

/// <summary><c>raftmq cert ca|node|client</c>: a cluster's certificates as PEM files (docs/security.md, "TLS").</summary>
public static partial class Cli
{
    /// <summary>File names in a certificate directory: <c>ca.pem</c>/<c>ca.key</c>, <c>NAME.pem</c>/<c>NAME.key</c>.</summary>
    internal const string CaFile = "ca.pem";
    internal const string CaKeyFile = "ca.key";

    private static Command CertCommand()
    {
        var cert = new Command("cert", Describe(
            "Create a certificate authority and node or client certificates (ECDSA P-256, PEM) for TLS: nodes take "
            + "--tls-cert NAME.pem --tls-key NAME.key --tls-ca ca.pem; clients and the CLI take --ca ca.pem. Keys are "
            + "written readable by their owner only; existing files are never overwritten.",
            "cert ca --dir certs", "cert node node-0 --host 10.0.0.1 --dir certs", "cert client orders-app --dir certs"));

        Option<string> Dir() => new("--dir") { Description = "Directory of the CA and the certificates (created if missing)", DefaultValueFactory = _ => "." };
        Option<int> Days(int days) => new("--days") { Description = "Days the certificate is valid", DefaultValueFactory = _ => days };

        var caDir = Dir();
        var caDays = Days(3650);
        var caName = new Option<string>("--name") { Description = "The CA's common name", DefaultValueFactory = _ => "RaftMQ cluster CA" };
        var ca = new Command("ca", Describe("Create the cluster's CA: DIR/ca.pem (give it to nodes and clients) and DIR/ca.key (keep it safe).",
            "cert ca --dir certs")) { caDir, caDays, caName };
        ca.SetAction(Guard((r, ct) =>
        {
            var dir = r.GetValue(caDir)!;
            var created = CreateAuthority(dir, ValidDays(r.GetValue(caDays)), r.GetValue(caName)!);
            Console.Out.WriteLine($"created {Path.Combine(dir, CaFile)} and {Path.Combine(dir, CaKeyFile)} (valid until {created.NotAfter.ToUniversalTime():yyyy-MM-dd})");
            return Task.FromResult(ExitCodes.Ok);
        }));

        var nodeName = new Argument<string>("NAME") { Description = "The node's name: the files are DIR/NAME.pem and DIR/NAME.key" };
        var hosts = new Option<string[]>("--host")
        {
            Description = "An IP address or DNS name the node is reached at, as the cluster config and client URLs name it (repeat it; default 127.0.0.1 and localhost)",
            AllowMultipleArgumentsPerToken = true,
        };
        var nodeDir = Dir();
        var nodeDays = Days(825);
        var node = new Command("node", Describe(
            "Create a node certificate issued by DIR/ca.pem: for the node's HTTPS port and mutual TLS with its peers. It must name "
            + "the address the node has in the cluster config (peers check it).",
            "cert node node-0 --dir certs", "cert node node-1 --host 10.0.0.2 --host mq1.example.com --dir certs")) { nodeName, hosts, nodeDir, nodeDays };
        node.SetAction(Guard((r, ct) =>
        {
            var dir = r.GetValue(nodeDir)!;
            var name = FileName(r.GetValue(nodeName)!);
            var names = r.GetValue(hosts) is { Length: > 0 } given ? given : ["127.0.0.1", "localhost"];
            CreateNode(dir, name, names, ValidDays(r.GetValue(nodeDays)));
            Console.Out.WriteLine($"created {Path.Combine(dir, name + ".pem")} and {Path.Combine(dir, name + ".key")} for {string.Join(", ", names)}");
            return Task.FromResult(ExitCodes.Ok);
        }));

        var clientName = new Argument<string>("NAME") { Description = "The client's name: the files are DIR/NAME.pem and DIR/NAME.key" };
        var clientDir = Dir();
        var clientDays = Days(825);
        var client = new Command("client", Describe(
            "Create a client certificate issued by DIR/ca.pem (TLS client use only: it cannot act as a node).",
            "cert client orders-app --dir certs")) { clientName, clientDir, clientDays };
        client.SetAction(Guard((r, ct) =>
        {
            var dir = r.GetValue(clientDir)!;
            var name = FileName(r.GetValue(clientName)!);
            var authority = LoadAuthority(dir);
            Write(ClusterCertificates.CreateClient(authority, name, TimeSpan.FromDays(ValidDays(r.GetValue(clientDays)))), dir, name);
            Console.Out.WriteLine($"created {Path.Combine(dir, name + ".pem")} and {Path.Combine(dir, name + ".key")}");
            return Task.FromResult(ExitCodes.Ok);
        }));

        cert.Add(ca);
        cert.Add(node);
        cert.Add(client);
        return cert;
    }

    /// <summary>Creates DIR/ca.pem and DIR/ca.key.</summary>
    internal static X509Certificate2 CreateAuthority(string dir, int days, string name = "RaftMQ cluster CA")
    {
        Directory.CreateDirectory(dir);
        var authority = ClusterCertificates.CreateAuthority(name, TimeSpan.FromDays(days));
        Write(authority, dir, "ca");
        return authority;
    }

    /// <summary>Creates DIR/NAME.pem and DIR/NAME.key, a node certificate of DIR's CA for <paramref name="hosts"/>.</summary>
    internal static void CreateNode(string dir, string name, IReadOnlyCollection<string> hosts, int days)
    {
        var authority = LoadAuthority(dir);
        X509Certificate2 node;
        try
        {
            node = ClusterCertificates.CreateNode(authority, name, hosts, TimeSpan.FromDays(days));
        }
        catch (ArgumentException e)
        {
            throw new CliException($"--host: {e.Message.Split(" (Parameter", 2)[0]}", ExitCodes.Usage);
        }
        Write(node, dir, name);
    }

    private static X509Certificate2 LoadAuthority(string dir)
    {
        var certificate = Path.Combine(dir, CaFile);
        var key = Path.Combine(dir, CaKeyFile);
        if (!File.Exists(certificate) || !File.Exists(key))
            throw new CliException($"no CA in {Path.GetFullPath(dir)} ({CaFile} and {CaKeyFile}); create one with: {Name} cert ca --dir {dir}");
        try
        {
            return X509Certificate2.CreateFromPemFile(certificate, key);
        }
        catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            throw new CliException($"cannot use the CA in {dir}: {e.Message}");
        }
    }

    private static void Write(X509Certificate2 certificate, string dir, string name)
    {
        Directory.CreateDirectory(dir);
        var pem = Path.Combine(dir, name + ".pem");
        var key = Path.Combine(dir, name + ".key");
        foreach (var existing in new[] { pem, key }.Where(File.Exists))
            throw new CliException($"{existing} already exists; remove it first or choose another --dir or NAME");
        try
        {
            ClusterCertificates.WritePem(certificate, pem, key);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CliException($"cannot write {name}.pem/{name}.key in {dir}: {e.Message}");
        }
    }

    private static int ValidDays(int days) =>
        days is >= 1 and <= 36_500 ? days : throw new CliException("--days must be between 1 and 36500", ExitCodes.Usage);

    private static string FileName(string name) =>
        name.Length is > 0 and <= 64 && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.') && name[0] != '.'
            ? name
            : throw new CliException($"NAME must be 1-64 letters, digits, '-', '_' or '.' (it names the files), not '{name}'", ExitCodes.Usage);

    /// <summary>The CA to trust: --ca, else $RAFTMQ_CA, else the local cluster's when the target is that cluster; null for the system's roots.</summary>
    internal static X509Certificate2? TrustedCa(ParseResult r, IReadOnlyList<Uri> urls)
    {
        var path = r.GetValue(Ca) ?? Environment.GetEnvironmentVariable("RAFTMQ_CA");
        var source = r.GetValue(Ca) is not null ? "--ca" : "$RAFTMQ_CA";
        if (string.IsNullOrWhiteSpace(path))
        {
            LocalCluster? local;
            try
            {
                local = LocalCluster.Load(DataDir(r));
            }
            catch (CliException)
            {
                return null;
            }
            if (local?.File.Ca is not { } recorded || !urls.All(u => local.Urls.Any(l => SameNode(l, u)))) return null;
            path = recorded;
            source = $"the local cluster file ({LocalCluster.ClusterFileName})";
        }
        try
        {
            return X509Certificate2.CreateFromPem(File.ReadAllText(path));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CliException($"{source}: cannot read {path}: {e.Message}", ExitCodes.Usage);
        }
        catch (CryptographicException e)
        {
            throw new CliException($"{source}: {path} is not a PEM certificate: {e.Message}", ExitCodes.Usage);
        }
    }

    private static bool SameNode(Uri a, Uri b) =>
        a.Scheme == b.Scheme && string.Equals(a.Host, b.Host, StringComparison.OrdinalIgnoreCase) && a.Port == b.Port;
}

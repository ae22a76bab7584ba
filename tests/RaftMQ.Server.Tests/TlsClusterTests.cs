using System.Net;
using System.Security.Cryptography.X509Certificates;
using RaftMQ.Client;
using RaftMQ.Transport;

namespace RaftMQ.Server.Tests;

/// <summary>
/// TLS everywhere on real node processes: HTTPS on the API, mutual TLS between peers with certificates of the
/// cluster's CA, a plain HTTP client refused cleanly, a peer of another CA kept out, and bad TLS files refused at start.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class TlsClusterTests
{
    private static readonly TimeSpan Year = TimeSpan.FromDays(365);

    /// <summary>A CA (certificate only on disk, as nodes get it) and one node certificate for 127.0.0.1, in <paramref name="dir"/>.</summary>
    private static (X509Certificate2 Ca, string[] Args) MakeFiles(string dir, string prefix, string host = "127.0.0.1")
    {
        Directory.CreateDirectory(dir);
        var ca = ClusterCertificates.CreateAuthority($"{prefix} CA", Year);
        var caPem = Path.Combine(dir, $"{prefix}-ca.pem");
        ClusterCertificates.WritePem(ca, caPem, keyPath: null);
        var node = ClusterCertificates.CreateNode(ca, $"{prefix} node", [host], Year);
        var (cert, key) = (Path.Combine(dir, $"{prefix}-node.pem"), Path.Combine(dir, $"{prefix}-node.key"));
        ClusterCertificates.WritePem(node, cert, key);
        return (ca, ["--tls-cert", cert, "--tls-key", key, "--tls-ca", caPem]);
    }

    [Fact]
    public async Task A_TLS_cluster_serves_over_https_refuses_plain_http_and_keeps_a_peer_of_another_CA_out()
    {
        var dir = TestCluster.NewDirectory();
        var (ca, tls) = MakeFiles(dir, "cluster");
        var (_, foreign) = MakeFiles(dir, "foreign");
        await using var cluster = TestCluster.CreateIn(dir, 3, [.. tls, "--request-timeout-ms", "8000"]);
        cluster.UseTls(ca);
        cluster.Start(0);
        cluster.Start(1);
        cluster.Start(2, foreign); // the cluster's secret (shared file), but a certificate and CA of its own
        await cluster.WaitUntilAnsweringAsync(0);
        await cluster.WaitUntilAnsweringAsync(1);

        // Nodes 1 and 2 (indexes 0, 1) refuse node 3's certificate, and node 3 refuses theirs.
        var refused = await Task.WhenAll(
            cluster.Node(0).WaitForLineAsync(l => l.Contains("not issued by the cluster's CA", StringComparison.Ordinal), TestCluster.DefaultTimeout),
            cluster.Node(2).WaitForLineAsync(l => l.Contains("not issued by the cluster's CA", StringComparison.Ordinal), TestCluster.DefaultTimeout));
        refused.ShouldAllBe(r => r, $"outputs:\n{cluster.Node(0).Output}\n---\n{cluster.Node(2).Output}");

        // The two nodes of the CA elect a leader and serve through the client, which trusts that CA only.
        (await Eventually.TrueAsync(
            async () => await cluster.TryStatusAsync(0) is ("Leader", _) || await cluster.TryStatusAsync(1) is ("Leader", _),
            TestCluster.DefaultTimeout)).ShouldBeTrue("nodes 1 and 2 elect a leader");
        var options = new RaftMQClientOptions { CaCertificate = ca, OperationTimeout = TimeSpan.FromSeconds(20) };
        options.Nodes.Add(cluster.Url(0, "/"));
        options.Nodes.Add(cluster.Url(1, "/"));
        using (var client = new RaftMQClient(options))
        {
            await client.CreateTopicAsync("secure");
            await client.PublishAsync("secure", "over tls");
            (await client.PopAsync("secure")).ShouldBe("over tls");
        }

        // Without the CA the same URL fails validation: nothing was turned off process-wide.
        using (var untrusting = new HttpClient { Timeout = TimeSpan.FromSeconds(5) })
        {
            var e = await Should.ThrowAsync<HttpRequestException>(() => untrusting.GetAsync(cluster.Url(0, "/status")));
            e.HttpRequestError.ShouldBe(HttpRequestError.SecureConnectionError);
        }

        // The console's overview asks the peers over HTTPS, trusting the cluster's CA: node 2 (index 1) is up in it.
        var (overviewStatus, overview) = await cluster.SendAsync(0, HttpMethod.Get, "/v1/cluster/overview");
        overviewStatus.ShouldBe(HttpStatusCode.OK, overview);
        using (var json = System.Text.Json.JsonDocument.Parse(overview))
        {
            var peer = json.RootElement.GetProperty("members").EnumerateArray().Single(m => m.GetProperty("node").GetInt32() == 1);
            peer.GetProperty("url").GetString().ShouldBe($"https://127.0.0.1:{cluster.Ports[1].Http}");
            peer.GetProperty("up").GetBoolean().ShouldBeTrue(overview);
        }

        // A plain HTTP request on the HTTPS port gets a plain 400 saying so; the node goes on serving HTTPS.
        var plain = await RawHttp.SendAsync(cluster.Ports[0].Http, "GET", "/status");
        plain.Status.ShouldBe(400);
        plain.Headers.ShouldContain("X-RaftMQ-Error: tls-required");
        plain.Body.ShouldContain("HTTPS");
        (await cluster.TryStatusAsync(0)).ShouldNotBeNull();
        var (status, body) = await cluster.PublishAsync(1, "secure", "after the plain request");
        status.ShouldBe(HttpStatusCode.OK, body);

        // The outsider never joined: it never followed the cluster's leader, and it is no leader itself.
        cluster.Node(2).Output.ShouldNotContain("; leader 1", customMessage: "node 3 must never follow this cluster's leader");
        cluster.Node(2).Output.ShouldNotContain("; leader 2", customMessage: "node 3 must never follow this cluster's leader");
        cluster.Node(2).HasExited.ShouldBeFalse();
    }

    [Fact]
    public async Task TLS_files_that_cannot_serve_stop_the_node_at_start_with_one_line()
    {
        var dir = TestCluster.NewDirectory();
        var (_, good) = MakeFiles(dir, "good");
        var (_, other) = MakeFiles(dir, "other");
        var (_, elsewhere) = MakeFiles(dir, "elsewhere", host: "10.9.9.9");
        var expired = Path.Combine(dir, "expired.pem");
        var expiredKey = Path.Combine(dir, "expired.key");
        var caWithKey = ClusterCertificates.CreateAuthority("expiring CA", Year);
        ClusterCertificates.WritePem(ClusterCertificates.CreateNode(caWithKey, "old", ["127.0.0.1"], TimeSpan.FromSeconds(1)), expired, expiredKey);
        await using var cluster = TestCluster.CreateIn(dir, 1);

        (string[] Args, string Expected)[] cases =
        [
            (["--tls-cert", good[1]], "--tls-cert, --tls-key and --tls-ca go together"),
            (["--tls-cert", good[1], "--tls-key", other[3], "--tls-ca", good[5]], $"--tls-key {other[3]}: not the private key of --tls-cert {good[1]}"),
            (["--tls-cert", Path.Combine(dir, "missing.pem"), "--tls-key", good[3], "--tls-ca", good[5]], "--tls-cert " + Path.Combine(dir, "missing.pem") + ": cannot read it"),
            (["--tls-cert", good[1], "--tls-key", good[3], "--tls-ca", other[5]], "not issued by the cluster's CA"),
            (["--tls-cert", elsewhere[1], "--tls-key", elsewhere[3], "--tls-ca", elsewhere[5]], "does not name this node's address 127.0.0.1"),
            (["--tls-cert", expired, "--tls-key", expiredKey, "--tls-ca", good[5]], "the certificate expired on"),
            (["--tls-cert", good[1], "--tls-key", good[3], "--tls-ca", good[1]], "is not a CA certificate"),
        ];
        foreach (var (args, expected) in cases)
        {
            await using var node = NodeProcess.Start(cluster.ConfigPath, 0, dir, args);
            (await node.WaitForLineAsync(l => l.Contains(expected, StringComparison.Ordinal), TestCluster.DefaultTimeout))
                .ShouldBeTrue($"no line with {expected}; output:\n{node.Output}");
            (await node.WaitForExitAsync(TestCluster.DefaultTimeout)).ShouldBeTrue($"output:\n{node.Output}");
            node.ExitCode.ShouldBe(2, node.Output);
            node.Output.ShouldNotContain("Unhandled exception");
        }
        Directory.Exists(Path.Combine(dir, "raftmq-data")).ShouldBeFalse("the node stopped before it made its data directory");
    }
}

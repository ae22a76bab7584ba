using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using RaftMQ.Client;

namespace RaftMQ.Server.Tests;

/// <summary>
/// Client authentication and the browser protections on real node processes (docs/security.md): API keys from
/// <c>--auth-file</c> with per-topic permissions, reloaded without a restart; the RRMQ endpoints open unless
/// <c>--auth-rrmq</c>; the Origin check and the Host allow-list; the .NET client and the CLI passing a key.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ClientAuthTests
{
    private const string ProducerKey = "producer-0123456789abcdef";
    private const string ConsumerKey = "consumer-0123456789abcdef";
    private const string AdminKey = "admin-0123456789abcdef01";
    private const string LateKey = "late-0123456789abcdef0123";

    private static readonly string Keys = $$"""
        {"keys": [
          {"name": "producer", "key": "{{ProducerKey}}", "permissions": [{"topics": "orders*", "allow": ["publish"]}]},
          {"name": "consumer", "key": "{{ConsumerKey}}", "permissions": [{"topics": "orders*", "allow": ["consume"]}]},
          {"name": "admin", "key": "{{AdminKey}}", "permissions": [{"topics": "*", "allow": ["admin"]}]}
        ]}
        """;

    /// <summary>A one-node cluster whose key file (written first) is <c>keys.json</c> in its directory, started with <paramref name="args"/>.</summary>
    private static async Task<(TestCluster Cluster, string KeyFile)> StartAsync(string keys, params string[] args)
    {
        var dir = TestCluster.NewDirectory();
        Directory.CreateDirectory(dir);
        var keyFile = Path.Combine(dir, "keys.json");
        File.WriteAllText(keyFile, keys);
        var cluster = TestCluster.CreateIn(dir, 1, [.. args.Select(a => a.Replace("KEYS", keyFile, StringComparison.Ordinal))]);
        await cluster.StartAllAsync();
        await cluster.WaitForLeaderAsync();
        return (cluster, keyFile);
    }

    private sealed record Answer(HttpStatusCode Status, string Body, HttpResponseMessage Response)
    {
        public string? Header(string name) =>
            Response.Headers.TryGetValues(name, out var v) ? string.Join(", ", v) : null;

        public string Error => JsonNode.Parse(Body)?["error"]?.GetValue<string>() ?? "";
    }

    private static async Task<Answer> SendAsync(
        TestCluster cluster, HttpMethod method, string path, string? body = null, string? key = null, params (string Name, string Value)[] headers)
    {
        using var request = new HttpRequestMessage(method, cluster.Url(0, path));
        if (body is not null) request.Content = new StringContent(body, System.Text.Encoding.UTF8, "application/json");
        if (key is not null) request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + key);
        foreach (var (name, value) in headers)
        {
            if (name == "Host") request.Headers.Host = value;
            else request.Headers.TryAddWithoutValidation(name, value);
        }
        var response = await cluster.Http.SendAsync(request);
        return new Answer(response.StatusCode, await response.Content.ReadAsStringAsync(), response);
    }

    private const string OneMessage = """{"messages": [{"payload": "hello"}]}""";

    [Fact]
    public async Task Without_a_key_401_with_an_unknown_one_401_without_the_permission_403_and_with_it_the_request_runs()
    {
        var (cluster, _) = await StartAsync(Keys, "--auth-file", "KEYS");
        await using var _c = cluster;
        (await SendAsync(cluster, HttpMethod.Put, "/v1/topics/orders", key: AdminKey)).Status.ShouldBe(HttpStatusCode.Created);

        var none = await SendAsync(cluster, HttpMethod.Post, V1Api.Path("orders", "messages"), OneMessage);
        none.Status.ShouldBe(HttpStatusCode.Unauthorized, none.Body);
        none.Response.Headers.WwwAuthenticate.ToString().ShouldStartWith("Bearer");
        none.Header("X-RaftMQ-Error").ShouldBe("unauthorized");
        none.Error.ShouldContain("Authorization: Bearer");

        var unknown = await SendAsync(cluster, HttpMethod.Post, V1Api.Path("orders", "messages"), OneMessage, key: "not-a-key-0123456789abcdef");
        unknown.Status.ShouldBe(HttpStatusCode.Unauthorized, unknown.Body);
        unknown.Response.Headers.WwwAuthenticate.ToString().ShouldContain("error=\"invalid_token\"");

        var wrong = await SendAsync(cluster, HttpMethod.Post, V1Api.Path("orders", "messages"), OneMessage, key: ConsumerKey);
        wrong.Status.ShouldBe(HttpStatusCode.Forbidden, wrong.Body);
        wrong.Header("X-RaftMQ-Error").ShouldBe("forbidden");
        wrong.Error.ShouldBe("the API key \"consumer\" lacks publish permission on topic \"orders\"");

        (await SendAsync(cluster, HttpMethod.Post, V1Api.Path("orders", "messages"), OneMessage, key: ProducerKey)).Status.ShouldBe(HttpStatusCode.OK);
        (await SendAsync(cluster, HttpMethod.Post, V1Api.Path("orders", "messages/pop"), "{}", key: ProducerKey)).Status.ShouldBe(HttpStatusCode.Forbidden);
        var popped = await SendAsync(cluster, HttpMethod.Post, V1Api.Path("orders", "messages/pop"), "{}", key: ConsumerKey);
        popped.Status.ShouldBe(HttpStatusCode.OK, popped.Body);
        JsonNode.Parse(popped.Body)!["messages"]!.AsArray().Count.ShouldBe(1, "the producer's publish was stored; the refused ones were not");

        // A topic the key has no grant on; the batch endpoint names its topic in the body.
        (await SendAsync(cluster, HttpMethod.Put, "/v1/topics/billing", key: AdminKey)).Status.ShouldBe(HttpStatusCode.Created);
        var other = await SendAsync(cluster, HttpMethod.Post, "/v1/messages", """{"topic": "billing", "messages": ["x"]}""", key: ProducerKey);
        other.Status.ShouldBe(HttpStatusCode.Forbidden, other.Body);
        other.Error.ShouldContain("topic \"billing\"");
        (await SendAsync(cluster, HttpMethod.Post, "/v1/messages", """{"topic": "orders", "messages": ["x"]}""", key: ProducerKey)).Status.ShouldBe(HttpStatusCode.OK);
        (await SendAsync(cluster, HttpMethod.Post, "/v1/messages/pop", """{"topic": "billing"}""", key: ConsumerKey)).Status.ShouldBe(HttpStatusCode.Forbidden);

        // Topic administration and the cluster need admin; node-wide reads any key; health and status none.
        (await SendAsync(cluster, HttpMethod.Delete, "/v1/topics/orders", key: ProducerKey)).Status.ShouldBe(HttpStatusCode.Forbidden);
        var transfer = await SendAsync(cluster, HttpMethod.Post, "/v1/cluster/transfer-leader", key: ProducerKey);
        transfer.Status.ShouldBe(HttpStatusCode.Forbidden);
        transfer.Error.ShouldContain("on every topic");
        (await SendAsync(cluster, HttpMethod.Get, "/v1/cluster/members", key: ProducerKey)).Status.ShouldBe(HttpStatusCode.OK);
        (await SendAsync(cluster, HttpMethod.Get, "/v1/metrics")).Status.ShouldBe(HttpStatusCode.Unauthorized);
        (await SendAsync(cluster, HttpMethod.Get, "/v1/metrics", key: ConsumerKey)).Status.ShouldBe(HttpStatusCode.OK);
        (await SendAsync(cluster, HttpMethod.Get, "/metrics")).Status.ShouldBe(HttpStatusCode.Unauthorized);
        (await SendAsync(cluster, HttpMethod.Get, "/no/such/endpoint")).Status.ShouldBe(HttpStatusCode.Unauthorized);
        (await SendAsync(cluster, HttpMethod.Get, "/healthz")).Status.ShouldBe(HttpStatusCode.OK);
        (await SendAsync(cluster, HttpMethod.Get, "/readyz")).Status.ShouldBe(HttpStatusCode.OK);
        (await SendAsync(cluster, HttpMethod.Get, "/status")).Status.ShouldBe(HttpStatusCode.OK);
        (await SendAsync(cluster, HttpMethod.Get, "/v1/status")).Status.ShouldBe(HttpStatusCode.OK);

        // The RRMQ endpoints stay open without --auth-rrmq, as a drop-in RRMQ node's are.
        (await cluster.CreateTopicAsync(0, "rrmq")).Status.ShouldBe(HttpStatusCode.Created);
        (await cluster.PublishAsync(0, "rrmq", "m1")).Status.ShouldBe(HttpStatusCode.OK);
        (await cluster.TopicsAsync(0)).Status.ShouldBe(HttpStatusCode.OK);
        var rrmqPop = await cluster.PopAsync(0, "rrmq");
        rrmqPop.Status.ShouldBe(HttpStatusCode.OK, rrmqPop.Body);
        rrmqPop.Body.ShouldBe("""{"success":true,"message":"m1"}""");
    }

    [Fact]
    public async Task With_auth_rrmq_the_RRMQ_endpoints_need_a_key_with_the_permission_too()
    {
        var (cluster, _) = await StartAsync(Keys, "--auth-file", "KEYS", "--auth-rrmq");
        await using var _c = cluster;

        (await cluster.CreateTopicAsync(0, "orders")).Status.ShouldBe(HttpStatusCode.Unauthorized);
        (await cluster.TopicsAsync(0)).Status.ShouldBe(HttpStatusCode.Unauthorized);
        (await cluster.PopAsync(0, "orders")).Status.ShouldBe(HttpStatusCode.Unauthorized);
        var notAdmin = await SendAsync(cluster, HttpMethod.Put, "/topic", """{"topic": "orders"}""", key: ProducerKey);
        notAdmin.Status.ShouldBe(HttpStatusCode.Forbidden, notAdmin.Body);
        notAdmin.Error.ShouldContain("admin permission on topic \"orders\"");
        (await SendAsync(cluster, HttpMethod.Put, "/topic", """{"topic": "orders"}""", key: AdminKey)).Status.ShouldBe(HttpStatusCode.Created);
        (await SendAsync(cluster, HttpMethod.Put, "/topic", """{"topic": "audit"}""", key: AdminKey)).Status.ShouldBe(HttpStatusCode.Created);

        (await SendAsync(cluster, HttpMethod.Put, "/message", """{"topic": "orders", "message": "m1"}""", key: ProducerKey)).Status.ShouldBe(HttpStatusCode.OK);
        (await SendAsync(cluster, HttpMethod.Put, "/message", """{"topic": "audit", "message": "m2"}""", key: ProducerKey)).Status.ShouldBe(HttpStatusCode.Forbidden);
        (await SendAsync(cluster, HttpMethod.Get, "/message/orders", key: ProducerKey)).Status.ShouldBe(HttpStatusCode.Forbidden);
        var popped = await SendAsync(cluster, HttpMethod.Get, "/message/orders", key: ConsumerKey);
        popped.Status.ShouldBe(HttpStatusCode.OK, popped.Body);
        popped.Body.ShouldBe("""{"success":true,"message":"m1"}""");
        (await SendAsync(cluster, HttpMethod.Get, "/message/audit", key: ConsumerKey)).Status.ShouldBe(HttpStatusCode.Forbidden);
        (await SendAsync(cluster, HttpMethod.Get, "/topic", key: ConsumerKey)).Status.ShouldBe(HttpStatusCode.OK);
        (await SendAsync(cluster, HttpMethod.Get, "/status")).Status.ShouldBe(HttpStatusCode.OK);
    }

    [Fact]
    public async Task A_changed_key_file_is_used_without_a_restart_and_a_broken_one_keeps_the_last_good_keys()
    {
        var (cluster, keyFile) = await StartAsync(Keys, "--auth-file", "KEYS");
        await using var _c = cluster;
        (await SendAsync(cluster, HttpMethod.Put, "/v1/topics/audit", key: AdminKey)).Status.ShouldBe(HttpStatusCode.Created);
        (await SendAsync(cluster, HttpMethod.Get, V1Api.Path("audit"), key: LateKey)).Status.ShouldBe(HttpStatusCode.Unauthorized);
        (await SendAsync(cluster, HttpMethod.Post, V1Api.Path("audit", "messages"), OneMessage, key: ProducerKey)).Status.ShouldBe(HttpStatusCode.Forbidden);

        // Replaced as an editor or a deployment does: written aside, then renamed over the file.
        var changed = Keys.Replace("\"orders*\", \"allow\": [\"publish\"]", "[\"orders*\", \"audit\"], \"allow\": [\"publish\"]", StringComparison.Ordinal)
            .Replace("\n]}", ",\n" + $$"""{"name": "late", "key": "{{LateKey}}", "permissions": [{"topics": "audit", "allow": ["consume"]}]}""" + "\n]}", StringComparison.Ordinal);
        changed.ShouldNotBe(Keys);
        File.WriteAllText(keyFile + ".tmp", changed);
        File.Move(keyFile + ".tmp", keyFile, overwrite: true);
        (await Eventually.TrueAsync(
            async () => (await SendAsync(cluster, HttpMethod.Get, V1Api.Path("audit"), key: LateKey)).Status == HttpStatusCode.OK,
            TestCluster.DefaultTimeout)).ShouldBeTrue($"the new key was not accepted; output:\n{cluster.Node(0).Output}");
        (await SendAsync(cluster, HttpMethod.Post, V1Api.Path("audit", "messages"), OneMessage, key: ProducerKey)).Status.ShouldBe(HttpStatusCode.OK);
        (await cluster.Node(0).WaitForLineAsync(l => l.Contains("Reloaded the auth file", StringComparison.Ordinal), TestCluster.DefaultTimeout))
            .ShouldBeTrue($"the reload was not logged; output:\n{cluster.Node(0).Output}");

        // A broken file is logged and changes nothing.
        File.WriteAllText(keyFile, "{\"keys\": [ {\"name\": \"late\"");
        (await cluster.Node(0).WaitForLineAsync(
                l => l.Contains($"auth file {keyFile}: not valid JSON", StringComparison.Ordinal) && l.Contains("stay in force until the file is fixed", StringComparison.Ordinal),
                TestCluster.DefaultTimeout))
            .ShouldBeTrue($"no error logged for the broken file; output:\n{cluster.Node(0).Output}");
        (await SendAsync(cluster, HttpMethod.Get, V1Api.Path("audit"), key: LateKey)).Status.ShouldBe(HttpStatusCode.OK);
        (await SendAsync(cluster, HttpMethod.Get, V1Api.Path("audit"))).Status.ShouldBe(HttpStatusCode.Unauthorized);

        // Fixed again without the late key: it is refused from then on.
        File.WriteAllText(keyFile, Keys);
        (await Eventually.TrueAsync(
            async () => (await SendAsync(cluster, HttpMethod.Get, V1Api.Path("audit"), key: LateKey)).Status == HttpStatusCode.Unauthorized,
            TestCluster.DefaultTimeout)).ShouldBeTrue($"the removed key was still accepted; output:\n{cluster.Node(0).Output}");
    }

    [Fact]
    public async Task By_default_a_browser_page_of_another_origin_cannot_change_state_and_the_nodes_own_pages_can()
    {
        // No option at all: the node as every existing deployment starts it.
        await using var cluster = TestCluster.Create(1);
        await cluster.StartAllAsync();
        await cluster.WaitForLeaderAsync();
        (await cluster.CreateTopicAsync(0, "t")).Status.ShouldBe(HttpStatusCode.Created);
        var self = $"http://127.0.0.1:{cluster.Ports[0].Http}";
        const string publish = """{"topic": "t", "message": "m"}""";

        var foreign = await SendAsync(cluster, HttpMethod.Put, "/message", publish, headers: ("Origin", "http://evil.example"));
        foreign.Status.ShouldBe(HttpStatusCode.Forbidden, foreign.Body);
        foreign.Header("X-RaftMQ-Error").ShouldBe("origin-not-allowed");
        foreign.Error.ShouldContain("http://evil.example");
        (await SendAsync(cluster, HttpMethod.Post, V1Api.Path("t", "messages/pop"), "{}", headers: ("Origin", "null"))).Status.ShouldBe(HttpStatusCode.Forbidden);
        (await SendAsync(cluster, HttpMethod.Put, "/message", publish, headers: ("Origin", $"http://127.0.0.1:{cluster.Ports[0].Http + 1}"))).Status
            .ShouldBe(HttpStatusCode.Forbidden, "another port is another origin");

        // The console the node serves sends its own origin; clients send none.
        (await SendAsync(cluster, HttpMethod.Put, "/message", publish, headers: ("Origin", self))).Status.ShouldBe(HttpStatusCode.OK);
        (await SendAsync(cluster, HttpMethod.Put, "/message", publish)).Status.ShouldBe(HttpStatusCode.OK);

        // GET /message consumes: a link followed from (or prefetched by) another site must not pop.
        var link = await SendAsync(cluster, HttpMethod.Get, "/message/t", headers: ("Sec-Fetch-Site", "cross-site"));
        link.Status.ShouldBe(HttpStatusCode.Forbidden, link.Body);
        (await SendAsync(cluster, HttpMethod.Get, "/message/t", headers: ("Sec-Purpose", "prefetch"))).Status.ShouldBe(HttpStatusCode.Forbidden);
        (await SendAsync(cluster, HttpMethod.Get, "/message/t", headers: ("Sec-Fetch-Site", "same-origin"))).Status.ShouldBe(HttpStatusCode.OK);
        (await cluster.PopAsync(0, "t")).Status.ShouldBe(HttpStatusCode.OK, "two were published, one popped before");
        (await cluster.PopAsync(0, "t")).Status.ShouldBe(HttpStatusCode.NotFound, "the refused requests published and popped nothing");

        // Reads are not refused for their origin (without CORS headers the page cannot read them).
        (await SendAsync(cluster, HttpMethod.Get, "/topic", headers: ("Origin", "http://evil.example"))).Status.ShouldBe(HttpStatusCode.OK);
    }

    [Fact]
    public async Task Allowed_hosts_refuse_other_host_names_and_allowed_origins_admit_the_listed_ones()
    {
        await using var cluster = TestCluster.Create(1, "--allowed-hosts", "queue.example,Console.Example", "--allowed-origins", "https://console.example");
        await cluster.StartAllAsync();
        await cluster.WaitForLeaderAsync();
        var port = cluster.Ports[0].Http;

        var rebound = await SendAsync(cluster, HttpMethod.Get, "/topic", headers: ("Host", $"evil.example:{port}"));
        rebound.Status.ShouldBe(HttpStatusCode.Forbidden, rebound.Body);
        rebound.Header("X-RaftMQ-Error").ShouldBe("host-not-allowed");
        rebound.Error.ShouldContain("evil.example");
        (await SendAsync(cluster, HttpMethod.Get, "/topic", headers: ("Host", $"queue.example:{port}"))).Status.ShouldBe(HttpStatusCode.OK);
        (await SendAsync(cluster, HttpMethod.Get, "/topic", headers: ("Host", "console.example"))).Status.ShouldBe(HttpStatusCode.OK);
        (await SendAsync(cluster, HttpMethod.Get, "/topic")).Status.ShouldBe(HttpStatusCode.OK, "the node's own IP is always allowed");
        (await SendAsync(cluster, HttpMethod.Get, "/healthz", headers: ("Host", "evil.example"))).Status.ShouldBe(HttpStatusCode.OK);

        var create = """{"topic": "t"}""";
        (await SendAsync(cluster, HttpMethod.Put, "/topic", create, headers: [("Host", "queue.example"), ("Origin", "https://console.example")])).Status
            .ShouldBe(HttpStatusCode.Created);
        (await SendAsync(cluster, HttpMethod.Put, "/topic", """{"topic": "u"}""", headers: [("Host", "queue.example"), ("Origin", "http://console.example")])).Status
            .ShouldBe(HttpStatusCode.Forbidden, "http is another origin than https");
        (await SendAsync(cluster, HttpMethod.Put, "/topic", """{"topic": "u"}""", headers: [("Host", "queue.example"), ("Origin", "https://evil.example")])).Status
            .ShouldBe(HttpStatusCode.Forbidden);

        // A listed origin's page may read the answers (CORS), and its preflight is answered; another origin gets neither.
        var listed = await SendAsync(cluster, HttpMethod.Get, "/topic", headers: [("Host", "queue.example"), ("Origin", "https://console.example")]);
        listed.Status.ShouldBe(HttpStatusCode.OK);
        listed.Header("Access-Control-Allow-Origin").ShouldBe("https://console.example");
        var preflight = await SendAsync(cluster, HttpMethod.Options, "/message", headers:
            [("Host", "queue.example"), ("Origin", "https://console.example"), ("Access-Control-Request-Method", "PUT"), ("Access-Control-Request-Headers", "authorization, content-type")]);
        preflight.Status.ShouldBe(HttpStatusCode.NoContent);
        preflight.Header("Access-Control-Allow-Origin").ShouldBe("https://console.example");
        preflight.Header("Access-Control-Allow-Headers").ShouldBe("Authorization, Content-Type");
        var other = await SendAsync(cluster, HttpMethod.Get, "/topic", headers: [("Host", "queue.example"), ("Origin", "https://evil.example")]);
        other.Status.ShouldBe(HttpStatusCode.OK);
        other.Header("Access-Control-Allow-Origin").ShouldBeNull();
        var otherPreflight = await SendAsync(cluster, HttpMethod.Options, "/message", headers:
            [("Host", "queue.example"), ("Origin", "https://evil.example"), ("Access-Control-Request-Method", "PUT")]);
        otherPreflight.Status.ShouldNotBe(HttpStatusCode.NoContent);
        otherPreflight.Header("Access-Control-Allow-Origin").ShouldBeNull();
    }

    [Fact]
    public async Task The_client_and_the_CLI_send_the_key_and_report_401_and_403_clearly()
    {
        var (cluster, _) = await StartAsync(Keys, "--auth-file", "KEYS");
        await using var _c = cluster;
        (await SendAsync(cluster, HttpMethod.Put, "/v1/topics/orders", key: AdminKey)).Status.ShouldBe(HttpStatusCode.Created);
        (await SendAsync(cluster, HttpMethod.Put, "/v1/topics/audit", key: AdminKey)).Status.ShouldBe(HttpStatusCode.Created);

        RaftMQClient Client(string? key)
        {
            var options = new RaftMQClientOptions { ApiKey = key, MaxRetries = 1 };
            options.Nodes.Add(cluster.Url(0, "/"));
            return new RaftMQClient(options);
        }
        OutgoingMessage[] batch = [new OutgoingMessage("hello"u8.ToArray())];

        using (var producer = Client(ProducerKey))
        {
            (await producer.PublishMessagesAsync("orders", batch)).Published.ShouldBe(1);
            var denied = await Should.ThrowAsync<PermissionDeniedException>(() => producer.PublishMessagesAsync("audit", batch));
            denied.ServerError.ShouldBe("the API key \"producer\" lacks publish permission on topic \"audit\"");
            await Should.ThrowAsync<PermissionDeniedException>(() => producer.PopMessagesAsync("orders", 1));
        }
        using (var anonymous = Client(null))
        {
            var e = await Should.ThrowAsync<AuthenticationFailedException>(() => anonymous.PublishMessagesAsync("orders", batch));
            e.Message.ShouldContain("none was given");
            await anonymous.PublishAsync("orders", "through RRMQ, open");
        }
        using (var impostor = Client("impostor-0123456789abcdef"))
        {
            (await Should.ThrowAsync<AuthenticationFailedException>(() => impostor.PopMessagesAsync("orders", 1))).Message.ShouldContain("the key given was refused");
        }
        using (var consumer = Client(ConsumerKey))
        {
            (await consumer.PopMessagesAsync("orders", 10)).Count.ShouldBe(2);
        }

        // The CLI: --api-key, else $RAFTMQ_API_KEY; exit code 4 with what to do.
        var url = cluster.Url(0, "/").ToString();
        var (code, _, stderr) = await RunCliAsync(null, "topic", "stats", "orders", "--urls", url);
        code.ShouldBe(4, stderr);
        stderr.ShouldContain("401");
        stderr.ShouldContain("--api-key");
        (code, _, stderr) = await RunCliAsync(null, "topic", "stats", "orders", "--urls", url, "--api-key", ConsumerKey);
        code.ShouldBe(0, stderr);
        (code, _, stderr) = await RunCliAsync(ConsumerKey, "topic", "stats", "orders", "--urls", url);
        code.ShouldBe(0, stderr);
        (code, _, stderr) = await RunCliAsync(ConsumerKey, "publish", "audit", "x", "--id", "1", "--urls", url);
        code.ShouldBe(4, stderr);
        stderr.ShouldContain("lacks publish permission on topic \"audit\"");
    }

    [Fact]
    public async Task A_key_file_that_cannot_be_used_stops_the_node_at_start_with_what_is_wrong()
    {
        var dir = TestCluster.NewDirectory();
        Directory.CreateDirectory(dir);
        var keyFile = Path.Combine(dir, "keys.json");
        File.WriteAllText(keyFile, """{"keys": [{"name": "a", "key": "0123456789abcdef0123", "permissions": [{"topics": "*", "allow": ["read"]}]}]}""");
        await using var cluster = TestCluster.CreateIn(dir, 1);

        await using (var node = NodeProcess.Start(cluster.ConfigPath, 0, dir, "--auth-file", keyFile))
            await ExitsWithAsync(node, $"raftmq-node: auth file {keyFile}: keys[0] (\"a\") permissions[0]: unknown permission \"read\"");
        await using (var node = NodeProcess.Start(cluster.ConfigPath, 0, dir, "--auth-rrmq"))
            await ExitsWithAsync(node, "--auth-rrmq needs --auth-file");
        Directory.Exists(Path.Combine(dir, "raftmq-data")).ShouldBeFalse("the node stopped before it made its data directory");
    }

    /// <summary>Waits for the line holding <paramref name="expected"/>, then for the node to exit with code 2.</summary>
    private static async Task ExitsWithAsync(NodeProcess node, string expected)
    {
        (await node.WaitForLineAsync(l => l.Contains(expected, StringComparison.Ordinal), TestCluster.DefaultTimeout))
            .ShouldBeTrue($"no line with {expected}; output:\n{node.Output}");
        (await node.WaitForExitAsync(TestCluster.DefaultTimeout)).ShouldBeTrue($"output:\n{node.Output}");
        node.ExitCode.ShouldBe(2, node.Output);
    }

    /// <summary>Runs the CLI to completion (within a minute) with $RAFTMQ_API_KEY set to <paramref name="envKey"/> or unset.</summary>
    private static async Task<(int Code, string Stdout, string Stderr)> RunCliAsync(string? envKey, params string[] args)
    {
        var home = Directory.CreateTempSubdirectory("raftmq-cli-").FullName;
        try
        {
            var psi = CliCommand.StartInfo(home, args);
            psi.Environment["HOME"] = home;
            psi.Environment["RAFTMQ_DATA"] = home;
            psi.Environment.Remove("RAFTMQ_URLS");
            if (envKey is null) psi.Environment.Remove("RAFTMQ_API_KEY");
            else psi.Environment["RAFTMQ_API_KEY"] = envKey;
            using var cli = Process.Start(psi)!;
            var stdout = cli.StandardOutput.ReadToEndAsync();
            var stderr = cli.StandardError.ReadToEndAsync();
            using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            try
            {
                await cli.WaitForExitAsync(deadline.Token);
            }
            catch (OperationCanceledException)
            {
                cli.Kill(entireProcessTree: true);
                throw new TimeoutException($"raftmq {string.Join(' ', args)} did not finish within 60 s");
            }
            return (cli.ExitCode, await stdout, await stderr);
        }
        finally
        {
            Directory.Delete(home, recursive: true);
        }
    }
}

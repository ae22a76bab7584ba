using System.Net;
using System.Text.Json;

namespace RaftMQ.Server.Tests;

/// <summary>
/// A node's settings from the command line, a --settings file and RAFTMQ_ variables (real node processes), and how
/// bad ones are refused.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class NodeSettingsTests
{
    private static string SettingsFile(TestCluster cluster, string json)
    {
        var path = Path.Combine(cluster.Directory, $"settings-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, json);
        return path;
    }

    /// <summary>Waits until the one-node cluster's node (started outside the cluster object) is its leader.</summary>
    private static async Task WaitForLeaderAsync(TestCluster cluster, NodeProcess node) =>
        (await Eventually.TrueAsync(async () => await cluster.TryStatusAsync(0) is { Role: "Leader" }, TestCluster.DefaultTimeout))
            .ShouldBeTrue($"output:\n{node.Output}");

    private static async Task<string> ExitOutputAsync(NodeProcess node, int exitCode, string expected)
    {
        (await node.WaitForLineAsync(l => l.Contains(expected, StringComparison.Ordinal), TestCluster.DefaultTimeout))
            .ShouldBeTrue($"no line with {expected}; output:\n{node.Output}");
        (await node.WaitForExitAsync(TestCluster.DefaultTimeout)).ShouldBeTrue($"the node kept running; output:\n{node.Output}");
        node.ExitCode.ShouldBe(exitCode, $"output:\n{node.Output}");
        return node.Output;
    }

    [Fact]
    public async Task The_command_line_wins_over_the_environment_which_wins_over_the_settings_file()
    {
        await using var cluster = TestCluster.Create(1);
        var file = SettingsFile(cluster, """{"data-dir": "from-file", "log-format": "json", "disk-free-limit-mb": 0}""");
        var env = new Dictionary<string, string> { ["RAFTMQ_DATA_DIR"] = "from-env", ["RAFTMQ_SOAK"] = "1" };

        // The environment's data directory beats the file's; the file's log format holds.
        await using (var node = NodeProcess.StartWithEnvironment(env, cluster.ConfigPath, 0, cluster.Directory, "--settings", file))
        {
            await WaitForLeaderAsync(cluster, node);
            (await cluster.CreateTopicAsync(0, "t")).Status.ShouldBe(HttpStatusCode.Created);
            Directory.Exists(Path.Combine(cluster.Directory, "from-env")).ShouldBeTrue($"output:\n{node.Output}");
            Directory.Exists(Path.Combine(cluster.Directory, "from-file")).ShouldBeFalse();
            node.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries)[0].ShouldStartWith("{");
            await node.TerminateAsync(TimeSpan.FromSeconds(5));
        }

        // The command line beats both.
        await using (var node = NodeProcess.StartWithEnvironment(env, cluster.ConfigPath, 0, cluster.Directory, "--settings", file, "--data-dir", "from-args"))
        {
            await WaitForLeaderAsync(cluster, node);
            Directory.Exists(Path.Combine(cluster.Directory, "from-args")).ShouldBeTrue($"output:\n{node.Output}");
            await node.TerminateAsync(TimeSpan.FromSeconds(5));
        }
    }

    [Theory]
    [InlineData("""{"heartbeat-ms": "often"}""", "\"heartbeat-ms\" in ", "must be a positive integer, not 'often'")]
    [InlineData("""{"idle-timeout-ms": 0}""", "\"idle-timeout-ms\" in ", "must be a positive integer, not '0'")]
    [InlineData("""{"log-format": "xml"}""", "\"log-format\" in ", "unknown log format 'xml'")]
    [InlineData("""{"no-such-setting": 1}""", "unknown option \"no-such-setting\" in ", "settings-")]
    [InlineData("""{"log": {"level": "Debug"}}""", "unknown setting \"log:level\"", "settings-")]
    [InlineData("""{"heartbeat-ms": 5""", "--settings ", "BytePositionInLine")]
    [InlineData("""{"request-timeout-ms": 99999999999}""", "\"request-timeout-ms\" in ", "must be at most 2147483647, not '99999999999'")]
    public async Task A_bad_settings_file_stops_the_node_naming_the_setting(string json, string names, string says)
    {
        await using var cluster = TestCluster.Create(1);
        var output = await ExitOutputAsync(cluster.Start(0, "--settings", SettingsFile(cluster, json)), 2, names);
        output.ShouldContain(says);
    }

    [Fact]
    public async Task A_missing_settings_file_stops_the_node()
    {
        await using var cluster = TestCluster.Create(1);
        await ExitOutputAsync(cluster.Start(0, "--settings", "none.json"), 2, "--settings none.json");
    }

    [Fact]
    public async Task A_bad_variable_stops_the_node_naming_it()
    {
        await using var cluster = TestCluster.Create(1);
        var env = new Dictionary<string, string> { ["RAFTMQ_REQUEST_TIMEOUT_MS"] = "-5" };
        await using var node = NodeProcess.StartWithEnvironment(env, cluster.ConfigPath, 0, cluster.Directory);
        await ExitOutputAsync(node, 2, "RAFTMQ_REQUEST_TIMEOUT_MS must be a positive integer, not '-5'");
    }

    [Fact]
    public async Task With_log_format_json_every_line_is_one_json_object_with_the_messages_values()
    {
        await using var cluster = TestCluster.Create(1, "--log-format", "json", "--log-level", "Debug");
        var node = cluster.Start(0);
        await cluster.WaitForLeaderAsync();
        (await node.WaitForLineAsync(l => l.Contains("\"Peers authenticate", StringComparison.Ordinal), TestCluster.DefaultTimeout))
            .ShouldBeTrue($"output:\n{node.Output}");
        var lines = node.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        lines.Length.ShouldBeGreaterThan(1);
        var events = lines.Select(l => JsonDocument.Parse(l).RootElement).ToList();
        foreach (var e in events)
        {
            e.GetProperty("level").GetString().ShouldNotBeNullOrEmpty();
            e.GetProperty("category").GetString().ShouldNotBeNullOrEmpty();
            e.GetProperty("message").GetString().ShouldNotBeNull();
            DateTimeOffset.Parse(e.GetProperty("timestamp").GetString()!, System.Globalization.CultureInfo.InvariantCulture);
        }
        var secret = events.First(e => e.GetProperty("message").GetString()!.StartsWith("Peers authenticate", StringComparison.Ordinal));
        secret.GetProperty("state").GetProperty("Source").GetString().ShouldNotBeNullOrEmpty("the message's named values are fields");
    }
}

/// <summary><c>--idle-heartbeat-ms</c>: its default, off, and the values refused.</summary>
public sealed class IdleHeartbeatSettingsTests
{
    private static readonly Dictionary<string, string> NoEnvironment = [];

    private static NodeSettings Parse(params string[] options) => NodeSettings.Parse(["config.json", "0", .. options], NoEnvironment);

    [Fact]
    public void The_default_is_500_ms_and_0_turns_quiescing_off()
    {
        var s = Parse();
        s.IdleHeartbeatMs.ShouldBe(500);
        var host = new RaftMQ.Hosting.RaftHostOptions
        {
            NodeId = 1,
            Peers = new Dictionary<ulong, EndPoint>(),
            ListenEndPoint = new IPEndPoint(IPAddress.Loopback, 0),
            DataDirectory = "unused",
            ClusterId = "c",
            ClusterSecret = [1],
            TickInterval = TimeSpan.FromMilliseconds(s.TickMs),
            ElectionTimeout = TimeSpan.FromMilliseconds(s.ElectionTimeoutMs),
            HeartbeatInterval = TimeSpan.FromMilliseconds(s.HeartbeatMs),
            IdleHeartbeatInterval = TimeSpan.FromMilliseconds(s.IdleHeartbeatMs),
        };
        var raft = RaftMQ.Hosting.RaftHost.RuntimeOptions(host).Raft;
        raft.QuiescedHeartbeatTicks.ShouldBe(50);
        raft.QuiescedElectionTicks.ShouldBe(150, "the quiet timeout keeps the ratio of 150 ms to 50 ms");

        Parse("--idle-heartbeat-ms", "0").IdleHeartbeatMs.ShouldBe(0);
        NodeSettings.Parse(["config.json", "0"], new Dictionary<string, string> { ["RAFTMQ_IDLE_HEARTBEAT_MS"] = "2000" }).IdleHeartbeatMs.ShouldBe(2000);
    }

    [Theory]
    [InlineData("20", "must be 0 (off) or at least --heartbeat-ms 50")]
    [InlineData("-1", "idle-heartbeat-ms")]
    [InlineData("soon", "idle-heartbeat-ms")]
    public void A_value_below_the_heartbeat_or_not_a_number_is_refused(string value, string says) =>
        Should.Throw<RaftMQ.Hosting.ConfigException>(() => Parse("--idle-heartbeat-ms", value)).Message.ShouldContain(says);
}

/// <summary>An option the node does not know is named as unknown, wherever it stands on the command line.</summary>
public sealed class UnknownOptionTests
{
    private static readonly Dictionary<string, string> NoEnvironment = [];

    [Theory]
    [InlineData("config.json", "0", "--no-such-flag")]
    [InlineData("--no-such-flag", "config.json", "0")]
    [InlineData("config.json", "0", "--no-such-flag=5")]
    [InlineData("config.json", "0", "--data-dir", "d", "--no-such-flag", "5")]
    public void Is_refused_by_its_name(params string[] args) =>
        Should.Throw<RaftMQ.Hosting.ConfigException>(() => NodeSettings.Parse(args, NoEnvironment))
            .Message.ShouldBe("unknown option --no-such-flag (raftmq-node --help lists them)");

    [Theory]
    [InlineData("http://10.0.0.1:8567", "10.0.0.1:8571", "10.0.0.1")]
    [InlineData("https://mq-1.example.com:443", "mq-4.example.com:8571:8572", "mq-4.example.com")]
    [InlineData("http://[::1]:80", "[::1]:8571", "::1")]
    public void A_join_url_and_address_with_an_ip_or_a_host_name_parse(string join, string address, string host)
    {
        var s = NodeSettings.Parse(["--join", join, "--address", address], NoEnvironment);
        s.Join!.OriginalString.ShouldBe(join);
        s.Address!.Ip.ShouldBe(host);
    }

    [Theory]
    [InlineData("http://10.0.0.1:8567/", "--join must be a member's HTTP address like http://10.0.0.1:8567 (https:// with TLS): 'http://10.0.0.1:8567/' has a path after the port")]
    [InlineData("http://10.0.0.1", "--join must be a member's HTTP address like http://10.0.0.1:8567 (https:// with TLS): 'http://10.0.0.1' has no port")]
    public void A_join_url_with_more_or_less_than_http_host_port_is_refused_in_one_line(string join, string says)
    {
        var e = Should.Throw<RaftMQ.Hosting.ConfigException>(() => NodeSettings.Parse(["--join", join, "--address", "10.0.0.4:8571"], NoEnvironment));
        e.Message.ShouldStartWith(says);
        e.ShowUsage.ShouldBeFalse("a bad value is one line; the usage is for a malformed command line");
    }

    [Fact]
    public void An_address_whose_host_is_no_ip_address_or_host_name_is_refused() =>
        Should.Throw<RaftMQ.Hosting.ConfigException>(() => NodeSettings.Parse(["--join", "http://10.0.0.1:8567", "--address", "not a host:8571"], NoEnvironment))
            .Message.ShouldBe("--address must be IP:PORT or IP:PORT:PEER_PORT (ports 1-65535, the peer port PORT + 1000 by default; a host name for IP), not 'not a host:8571'");

    [Fact]
    public void Known_options_still_parse_in_both_forms() =>
        NodeSettings.Parse(["config.json", "0", "--log-level", "Critical", "--request-timeout-ms=4000", "--auth-rrmq", "--auth-file", "a"], NoEnvironment)
            .RequestTimeoutMs.ShouldBe(4000);
}

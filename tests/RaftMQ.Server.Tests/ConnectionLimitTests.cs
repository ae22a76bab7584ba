using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace RaftMQ.Server.Tests;

/// <summary>
/// The HTTP connection bounds and the open-file check of a real node process: connections over the bounds are
/// closed at once while open ones are served, idle ones are closed after the idle timeout, refusals cost a bounded
/// number of log lines, and a node whose bounds cannot fit the open-file limit says so and does not start.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ConnectionLimitTests
{
    [Fact]
    public async Task Connections_over_the_bounds_are_closed_at_once_while_open_ones_are_served_and_the_log_stays_short()
    {
        await using var cluster = TestCluster.Create(1, "--max-connections", "50", "--max-connections-per-ip", "40");
        await cluster.StartAllAsync();
        var clock = Stopwatch.StartNew();
        using var handler = new SocketsHttpHandler { MaxConnectionsPerServer = 1 };
        using var keepAlive = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(10) };
        (await keepAlive.GetAsync(cluster.Url(0, "/status"))).StatusCode.ShouldBe(HttpStatusCode.OK);

        var server = new IPEndPoint(IPAddress.Loopback, cluster.Ports[0].Http);
        var sockets = new List<Socket>();
        try
        {
            // The HTTP clients hold one or two connections from 127.0.0.1. From 127.0.0.2: 40 of 45 may be open.
            var fromTwo = await OpenAsync(server, "127.0.0.2", 45, sockets);
            await ClosedByServerAsync(fromTwo, atLeast: 5);

            // From 127.0.0.3: at most 50 - 40 - the clients' may be open.
            var fromThree = await OpenAsync(server, "127.0.0.3", 20, sockets);
            await ClosedByServerAsync(fromThree, atLeast: 10);

            // 200 more, all over the node's bound.
            var refused = await OpenAsync(server, "127.0.0.4", 200, sockets);
            (await ClosedByServerAsync(refused, atLeast: 200)).ShouldBe(200);

            (await keepAlive.GetAsync(cluster.Url(0, "/status"))).StatusCode.ShouldBe(HttpStatusCode.OK, "the open keep-alive connection is served");
            var openFromTwo = fromTwo.Count - Closed(fromTwo);
            openFromTwo.ShouldBe(40, "one address holds at most --max-connections-per-ip, and none within it is closed");
            (openFromTwo + fromThree.Count - Closed(fromThree)).ShouldBeInRange(48, 49, "the node holds --max-connections in all, the clients' included");
        }
        finally
        {
            sockets.ForEach(s => s.Dispose());
        }

        // With the idle connections gone, a new client is served.
        (await Eventually.TrueAsync(async () => await cluster.TryStatusAsync(0) is not null, TestCluster.DefaultTimeout)).ShouldBeTrue();
        (await cluster.CreateTopicAsync(0, "after-the-flood")).Status.ShouldBe(HttpStatusCode.Created);
        // 5 from 127.0.0.2, 10 and the clients' one or two from 127.0.0.3, 200 from 127.0.0.4.
        var metrics = System.Text.Json.JsonDocument.Parse((await cluster.SendAsync(0, HttpMethod.Get, "/v1/metrics")).Body).RootElement;
        metrics.GetProperty("http").GetProperty("connections_refused").GetInt64().ShouldBeInRange(216, 217);
        metrics.GetProperty("http").GetProperty("open_connections").GetInt32().ShouldBeInRange(1, 3);

        // At most one line per kind (per address, node-wide) per 10 s interval, not one per refused connection.
        foreach (var kind in new[] { "(--max-connections-per-ip)", "(--max-connections)" })
        {
            (await cluster.Node(0).WaitForLineAsync(l => l.Contains("Refused HTTP connection", StringComparison.Ordinal) && l.Contains(kind, StringComparison.Ordinal), TestCluster.DefaultTimeout))
                .ShouldBeTrue($"no refusal logged for {kind}; output:\n{cluster.Node(0).Output}");
        }

        var lines = cluster.Node(0).Output.Split('\n').Count(l => l.Contains("Refused HTTP connection", StringComparison.Ordinal));
        var intervals = (int)(clock.Elapsed.TotalSeconds / 10) + 1;
        lines.ShouldBeInRange(2, 2 * intervals, $"refusal lines for 265 refused connections; output:\n{cluster.Node(0).Output}");
    }

    [Fact]
    public async Task An_idle_connection_is_closed_after_the_idle_timeout()
    {
        await using var cluster = TestCluster.Create(1, "--idle-timeout-ms", "1000");
        await cluster.StartAllAsync();
        var server = new IPEndPoint(IPAddress.Loopback, cluster.Ports[0].Http);

        // One that answered a request and was kept alive, and one that never sent a byte.
        using var used = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await used.ConnectAsync(server);
        var idleAtMost = Stopwatch.StartNew(); // started before the request: the server's idle time is shorter
        await used.SendAsync(Encoding.ASCII.GetBytes($"GET /status HTTP/1.1\r\nHost: 127.0.0.1:{server.Port}\r\n\r\n"));
        var answer = new byte[4096];
        var read = await used.ReceiveAsync(answer);
        Encoding.ASCII.GetString(answer, 0, read).ShouldStartWith("HTTP/1.1 200");
        using var silent = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await silent.ConnectAsync(server);

        await AssertClosedByServerAsync(used);
        idleAtMost.Elapsed.ShouldBeGreaterThanOrEqualTo(TimeSpan.FromMilliseconds(1000), "closed for being idle, not at once");
        await AssertClosedByServerAsync(silent);
        (await cluster.TryStatusAsync(0)).ShouldNotBeNull();
    }

    [Fact]
    public async Task A_node_whose_explicit_connection_bound_cannot_fit_the_open_file_limit_refuses_to_start()
    {
        await using var cluster = TestCluster.Create(1, "--max-connections", "100000000");
        var node = cluster.Start(0);
        await AssertExitsWithAsync(node, 2);
        node.Output.ShouldContain("--max-connections");
        node.Output.ShouldContain("RLIMIT_NOFILE");
        node.Output.ShouldContain("lower --max-connections to at most");
    }

    [Fact]
    public async Task A_node_under_a_tiny_open_file_limit_refuses_to_start_and_says_which_limit_to_raise()
    {
        await using var cluster = TestCluster.Create(1);
        await using var node = NodeProcess.StartWithOpenFileLimit(256, cluster.ConfigPath, 0, cluster.Directory);
        await AssertExitsWithAsync(node, 2);
        node.Output.ShouldContain("allows 256");
        node.Output.ShouldContain("raise the hard limit");
    }

    [Fact]
    public async Task A_node_on_the_default_bound_under_a_low_open_file_limit_lowers_the_bound_warns_and_serves()
    {
        await using var cluster = TestCluster.Create(1);
        await using var node = NodeProcess.StartWithOpenFileLimit(1024, cluster.ConfigPath, 0, cluster.Directory);
        (await node.WaitForLineAsync(l => l.Contains("--max-connections lowered to", StringComparison.Ordinal), TestCluster.DefaultTimeout))
            .ShouldBeTrue($"no warning; output:\n{node.Output}");
        (await Eventually.TrueAsync(async () => await cluster.TryStatusAsync(0) is not null, TestCluster.DefaultTimeout))
            .ShouldBeTrue($"the node did not answer; output:\n{node.Output}");
    }

    [Theory]
    [InlineData("--max-connections 10 --max-connections-per-ip 11", "--max-connections-per-ip 11 is over --max-connections 10")]
    [InlineData("--max-connections 0", "--max-connections must be a positive integer")]
    [InlineData("--idle-timeout-ms soon", "--idle-timeout-ms must be a positive integer")]
    public async Task Bad_connection_options_are_refused_in_one_line(string options, string message)
    {
        await using var cluster = TestCluster.Create(1, options.Split(' '));
        var node = cluster.Start(0);
        await AssertExitsWithAsync(node, 2);
        node.Output.ShouldContain(message);
        // A bad value is named, not answered with the whole usage (docs/operations.md).
        node.Output.ShouldNotContain("usage:");
    }

    [Fact]
    public async Task The_help_lists_the_connection_options_and_their_defaults()
    {
        await using var cluster = TestCluster.Create(1, "--help");
        var node = cluster.Start(0);
        await AssertExitsWithAsync(node, 0);
        node.Output.ShouldContain("--max-connections N");
        node.Output.ShouldContain("(default 4096)");
        node.Output.ShouldContain("--max-connections-per-ip N");
        node.Output.ShouldContain("(default 1024)");
        node.Output.ShouldContain("--idle-timeout-ms N");
        node.Output.ShouldContain("(default 60000)");
    }

    private static async Task<List<Socket>> OpenAsync(IPEndPoint server, string from, int count, List<Socket> all)
    {
        var opened = new List<Socket>();
        for (var i = 0; i < count; i++)
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            all.Add(s);
            s.Bind(new IPEndPoint(IPAddress.Parse(from), 0));
            await s.ConnectAsync(server);
            opened.Add(s);
        }

        return opened;
    }

    /// <summary>
    /// Waits until at least <paramref name="atLeast"/> of <paramref name="sockets"/> are closed by the server (end of
    /// stream or reset: an idle HTTP connection is sent nothing else), then returns how many are.
    /// </summary>
    private static async Task<int> ClosedByServerAsync(List<Socket> sockets, int atLeast)
    {
        (await Eventually.TrueAsync(() => Task.FromResult(Closed(sockets) >= atLeast), TestCluster.DefaultTimeout))
            .ShouldBeTrue($"only {Closed(sockets)} of {sockets.Count} connections were closed, expected at least {atLeast}");
        return Closed(sockets);
    }

    private static int Closed(List<Socket> sockets) => sockets.Count(s => s.Poll(0, SelectMode.SelectRead));

    private static async Task AssertClosedByServerAsync(Socket socket)
    {
        using var cts = new CancellationTokenSource(TestCluster.DefaultTimeout);
        var buffer = new byte[1024];
        try
        {
            while (await socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token) > 0)
            {
            }
        }
        catch (SocketException)
        {
            // A reset is a close too.
        }
    }

    private static async Task AssertExitsWithAsync(NodeProcess node, int exitCode)
    {
        (await node.WaitForExitAsync(TestCluster.DefaultTimeout))
            .ShouldBeTrue($"the node kept running; output:\n{node.Output}");
        node.ExitCode.ShouldBe(exitCode, $"output:\n{node.Output}");
    }
}


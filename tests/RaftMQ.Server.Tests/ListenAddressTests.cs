using System.Net;
using System.Net.Sockets;
using System.Text.Json;

namespace RaftMQ.Server.Tests;

/// <summary>
/// Where a node listens, on real node processes: an address it cannot listen on (a port in use, an address not on this
/// machine) stops it with one line on standard error and exit code 1; a config <c>ip</c> that is no address and no
/// host name that resolves stops it with exit code 2; a host name is resolved at start and its first address bound.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ListenAddressTests
{
    /// <summary>Runs <paramref name="test"/> with a one-node config whose entry is <paramref name="ip"/> on fresh ports.</summary>
    private static async Task WithConfigAsync(string ip, Func<string, string, (int Http, int Peer), Task> test)
    {
        var directory = TestCluster.NewDirectory();
        Directory.CreateDirectory(directory);
        try
        {
            var ports = TestCluster.FreePorts(2);
            var config = Path.Combine(directory, "config.json");
            File.WriteAllText(config, $$"""{"addresses": [{"ip": {{JsonSerializer.Serialize(ip)}}, "port": {{ports[0]}}, "internal_port": {{ports[1]}}}]}""");
            await test(directory, config, (ports[0], ports[1]));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    /// <summary>Waits for the node to exit with <paramref name="exitCode"/> and returns its one line of standard error.</summary>
    private static async Task<string> OneErrorLineAsync(NodeProcess node, int exitCode)
    {
        (await node.WaitForExitAsync(TestCluster.DefaultTimeout)).ShouldBeTrue($"the node kept running; output:\n{node.Output}");
        node.ExitCode.ShouldBe(exitCode, $"output:\n{node.Output}");
        node.ErrorLines.Count.ShouldBe(1, $"standard error:\n{string.Join('\n', node.ErrorLines)}");
        node.Output.ShouldNotContain("Exception", customMessage: node.Output);
        node.Output.ShouldNotContain("   at ", customMessage: node.Output);
        return node.ErrorLines[0];
    }

    [Theory]
    [InlineData("HTTP")]
    [InlineData("peer")]
    public async Task A_port_in_use_stops_the_node_with_one_line_on_stderr_naming_the_address_and_exit_code_1(string which) =>
        await WithConfigAsync("127.0.0.1", async (directory, config, ports) =>
        {
            var taken = which == "HTTP" ? ports.Http : ports.Peer;
            using var holder = new TcpListener(IPAddress.Loopback, taken);
            holder.Start();
            await using var node = NodeProcess.Start(config, 0, directory);
            var line = await OneErrorLineAsync(node, 1);
            line.ShouldStartWith(which == "HTTP" ? "raftmq-node: cannot listen on " : "raftmq-node: cannot listen for peers on ");
            line.ShouldContain($"127.0.0.1:{taken}");
            line.ShouldEndWith(": Address already in use");
        });

    [Fact]
    public async Task An_address_not_on_this_machine_stops_the_node_with_one_line_on_stderr_and_exit_code_1() =>
        // 192.0.2.1 is TEST-NET-1 (RFC 5737): no machine has it.
        await WithConfigAsync("192.0.2.1", async (directory, config, ports) =>
        {
            await using var node = NodeProcess.Start(config, 0, directory);
            var line = await OneErrorLineAsync(node, 1);
            line.ShouldStartWith("raftmq-node: cannot listen ");
            line.ShouldMatch(@$"192\.0\.2\.1:({ports.Http}|{ports.Peer}): Cannot assign requested address$");
        });

    [Theory]
    [InlineData("not a host", "config.json: addresses[0].ip must be an IP address or a host name, not 'not a host'")]
    [InlineData("10.0.0.1:8567", "config.json: addresses[0].ip must be an IP address or a host name, not '10.0.0.1:8567'")]
    [InlineData("no-such-host.invalid", "cannot resolve this node's host name 'no-such-host.invalid' to an address to listen on")]
    public async Task A_config_ip_that_is_no_address_and_no_host_name_that_resolves_stops_the_node_with_exit_code_2(string ip, string says) =>
        await WithConfigAsync(ip, async (directory, config, _) =>
        {
            await using var node = NodeProcess.Start(config, 0, directory);
            var line = await OneErrorLineAsync(node, 2);
            line.ShouldStartWith("raftmq-node: ");
            line.ShouldContain(says);
        });

    [Fact]
    public async Task A_node_named_by_a_host_name_listens_on_the_first_address_it_resolves_to() =>
        await WithConfigAsync(Dns.GetHostName(), async (directory, config, ports) =>
        {
            var first = Dns.GetHostAddresses(Dns.GetHostName())[0];
            await using var node = NodeProcess.Start(config, 0, directory);
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
            var status = new UriBuilder("http", first.ToString(), ports.Http, "/status").Uri;
            var answered = await Eventually.TrueAsync(async () =>
            {
                try
                {
                    return (await http.GetStringAsync(status)).Contains("\"Leader\"", StringComparison.Ordinal);
                }
                catch (HttpRequestException)
                {
                    return false;
                }
            }, TestCluster.DefaultTimeout);
            answered.ShouldBeTrue($"no leader answered at {status}; output:\n{node.Output}");
            node.HasExited.ShouldBeFalse();
        });

    [Fact]
    public async Task A_node_restarted_at_another_address_of_its_config_serves_there_and_warns_that_the_cluster_records_the_old_one()
    {
        // The config edited after the first start: its data directory says who it is, the config only where it listens.
        var data = Path.Combine(TestCluster.NewDirectory(), "data");
        await using var cluster = TestCluster.Create(1, "--data-dir", data);
        await cluster.StartAllAsync();
        await cluster.WaitForLeaderAsync();
        (await cluster.CreateTopicAsync(0, "kept")).Status.ShouldBe(HttpStatusCode.Created);
        (await cluster.PublishAsync(0, "kept", "m")).Status.ShouldBe(HttpStatusCode.OK);
        await cluster.StopAllAsync();
        var moved = TestCluster.FreePorts(2);
        File.WriteAllText(cluster.ConfigPath, $$"""{"addresses": [{"ip": "127.0.0.1", "port": {{moved[0]}}, "internal_port": {{moved[1]}}}]}""");

        var node = cluster.Start(0);
        var warned = await node.WaitForLineAsync(l => l.StartsWith("raftmq-node: warning: ", StringComparison.Ordinal), TestCluster.DefaultTimeout);
        warned.ShouldBeTrue($"no warning; output:\n{node.Output}");
        node.ErrorLines.ShouldHaveSingleItem().ShouldBe(
            $"raftmq-node: warning: the cluster records node 0 at 127.0.0.1:{cluster.Ports[0].Http}:{cluster.Ports[0].Peer}, but {cluster.ConfigPath} "
            + $"puts it at 127.0.0.1:{moved[0]}:{moved[1]}: it listens there, while its peers dial, and leader hints send clients to, the recorded address. "
            + "To move a node, remove it and add it back at the new address (docs/membership.md)");
        var pop = new Uri($"http://127.0.0.1:{moved[0]}/message/kept");
        var popped = await Eventually.TrueAsync(async () =>
        {
            try
            {
                return await cluster.Http.GetStringAsync(pop) == """{"success":true,"message":"m"}""";
            }
            catch (HttpRequestException)
            {
                return false;
            }
        }, TestCluster.DefaultTimeout);
        popped.ShouldBeTrue($"the message was not popped at {pop}; output:\n{node.Output}");
        Directory.Delete(Path.GetDirectoryName(data)!, recursive: true);
    }
}

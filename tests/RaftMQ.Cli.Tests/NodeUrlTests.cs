namespace RaftMQ.Cli.Tests;

/// <summary>
/// Node URLs as the CLI writes them (the nodes' way: <c>http://HOST:PORT</c>, the port always written), the
/// <c>--url</c> alias of <c>--urls</c>, and the scheme <c>cluster add</c> gives an address without one: against
/// scripted nodes, which can report members and leaders at ports 80 and 443.
/// </summary>
public sealed class NodeUrlTests
{
    [Theory]
    [InlineData("http://10.0.0.4", null, "http://10.0.0.4:80")]
    [InlineData("http://10.0.0.4:80/", null, "http://10.0.0.4:80")]
    [InlineData("https://mq.example.com/", null, "https://mq.example.com:443")]
    [InlineData("http://127.0.0.1:8567/", null, "http://127.0.0.1:8567")]
    [InlineData("http://[::1]:8567", null, "http://[::1]:8567")]
    [InlineData("http://[::1]", null, "http://[::1]:80")]
    [InlineData("http://10.0.0.4:8567", "https", "https://10.0.0.4:8567")]
    public void A_node_url_is_written_with_its_port_even_the_default_one_and_no_trailing_slash(string url, string? scheme, string expected) =>
        NodeUrl.Format(new Uri(url), scheme).ShouldBe(expected);

    /// <summary>A leader, node 0, with a member at port 80; it adds whatever it is asked to as node 2.</summary>
    private static (int, string) Leader(ScriptedNode self, ScriptedRequest request)
    {
        const string others = """{"node":1,"role":"voter","url":"http://10.0.0.5:80","peer_port":1080}""";
        switch (request.Method, request.Path)
        {
            case ("GET", "/v1/status"):
                return (200, $$"""{"service":"raftmq","node":0,"cluster_id":"scripted","ready":true,"role":"Leader","term":2,"leader":0,"leader_url":"{{self.Url}}","commit_index":5,"applied_index":5,"last_index":5}""");
            case ("GET", "/v1/cluster/members"):
                return (200, $$"""{"success":true,"cluster_id":"scripted","leader":0,"leader_url":"{{self.Url}}","members":[{"node":0,"role":"voter","url":"{{self.Url}}","peer_port":1},{{others}}]}""");
            case ("POST", "/v1/cluster/members"):
                var url = System.Text.Json.JsonDocument.Parse(request.Body).RootElement.GetProperty("url").GetString();
                return (201, $$"""{"success":true,"node":2,"cluster_id":"scripted","leader":0,"leader_url":"{{self.Url}}","members":[{"node":0,"role":"voter","url":"{{self.Url}}","peer_port":1},{{others}},{"node":2,"role":"learner","url":"{{url}}","peer_port":1081}]}""");
            default:
                return (404, """{"success":false,"error":"not scripted"}""");
        }
    }

    /// <summary>A follower, node 1, whose leader is node 0 at port 80.</summary>
    private static (int, string) Follower(ScriptedNode self, ScriptedRequest request) =>
        (request.Method, request.Path) == ("GET", "/v1/status")
            ? (200, """{"service":"raftmq","node":1,"cluster_id":"scripted","ready":true,"role":"Follower","term":2,"leader":0,"leader_url":"http://10.0.0.5:80","commit_index":5,"applied_index":5,"last_index":5}""")
            : (404, """{"success":false,"error":"not scripted"}""");

    [Fact]
    public async Task Status_members_and_add_write_a_default_port_as_the_nodes_do()
    {
        await using var leader = new ScriptedNode(Leader);
        await using var follower = new ScriptedNode(Follower);
        await using var env = new CliEnvironment();

        var status = await env.RunAsync("cluster", "status", "--urls", follower.Url);
        status.ExitCode.ShouldBe(0, status.ToString());
        status.Stdout.ShouldContain("leader: node 0 (http://10.0.0.5:80), term 2 (1 of 1 nodes up)", Case.Sensitive, status.ToString());

        var members = await env.RunAsync("cluster", "members", "--urls", leader.Url);
        members.ExitCode.ShouldBe(0, members.ToString());
        members.Stdout.ShouldContain("http://10.0.0.5:80 ", Case.Sensitive, members.ToString());
        members.Stdout.ShouldContain($"{leader.Url} ", Case.Sensitive, members.ToString());

        // No scheme, and the cluster's URLs are http://: the node is added at http://, its port written as given.
        var added = await env.RunAsync("cluster", "add", "10.0.0.6:80", "--urls", leader.Url);
        added.ExitCode.ShouldBe(0, added.ToString());
        added.Stdout.ShouldContain("added node 2 at http://10.0.0.6:80 as a learner", Case.Sensitive, added.ToString());
        added.Stdout.ShouldContain("http://10.0.0.6:80 ", Case.Sensitive, added.ToString()); // in the members table too
        leader.Requests.Single(r => r.Method == "POST").Body.ShouldContain("\"url\":\"http://10.0.0.6:80\"");

        // Nodes that do not answer, at the default ports: the table and the error name them with their ports.
        var none = await env.RunAsync("cluster", "status", "--urls", "http://127.0.0.1,https://127.0.0.1", "--timeout", "2");
        none.ExitCode.ShouldBe(1, none.ToString());
        none.Stdout.ShouldContain("http://127.0.0.1:80 ", Case.Sensitive, none.ToString());
        none.Stdout.ShouldContain("https://127.0.0.1:443 ", Case.Sensitive, none.ToString());
        none.Stderr.ShouldContain("no node answered: http://127.0.0.1:80", Case.Sensitive, none.ToString());
        none.Stderr.ShouldContain("; https://127.0.0.1:443", Case.Sensitive, none.ToString());
    }

    [Fact]
    public async Task Url_is_an_alias_of_urls_on_the_command_line_and_in_the_shell()
    {
        await using var leader = new ScriptedNode(Leader);
        await using var env = new CliEnvironment();

        var help = await env.RunAsync("--help");
        help.ExitCode.ShouldBe(0, help.ToString());
        help.Stdout.ShouldContain("--url, --urls <urls>", Case.Sensitive, help.ToString());

        var members = await env.RunAsync("cluster", "members", "--url", leader.Url);
        members.ExitCode.ShouldBe(0, members.ToString());
        members.Stdout.ShouldContain("cluster scripted: 2 voter(s), 0 learner(s), node 0 leads", Case.Sensitive, members.ToString());

        // A shell started with --urls passes them to each command that names no nodes itself, by either name.
        var shell = await env.RunWithInputAsync($"cluster members --url {leader.Url}\ncluster members --urls={leader.Url}\n", "shell", "--urls", "http://127.0.0.1:1");
        shell.ExitCode.ShouldBe(0, shell.ToString());
        shell.Stdout.Split("node 0 leads").Length.ShouldBe(3, shell.ToString());
    }
}

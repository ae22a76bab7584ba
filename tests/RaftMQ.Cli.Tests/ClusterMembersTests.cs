namespace RaftMQ.Cli.Tests;

/// <summary><c>raftmq cluster members</c> against a scripted leader: the summary says when the configuration listed is not committed yet.</summary>
public sealed class ClusterMembersTests
{
    private static Func<ScriptedNode, ScriptedRequest, (int, string)> Leader(string state) => (self, request) =>
        (request.Method, request.Path) switch
        {
            ("GET", "/v1/status") => (200, $$"""{"service":"raftmq","node":0,"cluster_id":"scripted","ready":true,"role":"Leader","term":2,"leader":0,"leader_url":"{{self.Url}}","commit_index":5,"applied_index":5,"last_index":5}"""),
            ("GET", "/v1/cluster/members") => (200, $$"""{"success":true,"cluster_id":"scripted","leader":0,"leader_url":"{{self.Url}}",{{state}}"members":[{"node":0,"role":"voter","url":"{{self.Url}}","peer_port":1},{"node":1,"role":"learner","url":"http://10.0.0.5:8567","peer_port":9567}]}"""),
            _ => (404, """{"success":false,"error":"not scripted"}"""),
        };

    [Theory]
    [InlineData("\"committed\":false,\"configuration_index\":12,", "; this configuration is not committed yet (log entry 12)")]
    [InlineData("\"committed\":true,\"configuration_index\":12,", "")]
    [InlineData("", "")] // a node that does not say
    public async Task The_summary_says_when_the_configuration_is_not_committed_yet(string state, string suffix)
    {
        await using var leader = new ScriptedNode(Leader(state));
        await using var env = new CliEnvironment();
        var members = await env.RunAsync("cluster", "members", "--urls", leader.Url);
        members.ExitCode.ShouldBe(0, members.ToString());
        members.Stdout.ShouldContain($"cluster scripted: 1 voter(s), 1 learner(s), node 0 leads{suffix}\n", Case.Sensitive, members.ToString());
    }
}

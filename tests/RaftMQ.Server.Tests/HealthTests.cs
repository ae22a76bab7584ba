using System.Net;
using System.Text.Json;

namespace RaftMQ.Server.Tests;

/// <summary>GET /healthz (the process serves) and GET /readyz (it knows a leader and has applied what it knows is committed).</summary>
[Collection(ClusterCollection.Name)]
public sealed class HealthTests
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(10) };

    private static async Task<(HttpStatusCode Status, string State, string Reason)> GetAsync(TestCluster cluster, int node, string path)
    {
        using var response = await Http.GetAsync(cluster.Url(node, path));
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return (response.StatusCode, json.RootElement.GetProperty("status").GetString()!, json.RootElement.GetProperty("reason").GetString()!);
    }

    [Fact]
    public async Task Every_node_is_ready_with_a_leader_and_a_node_that_lost_its_majority_is_live_but_not_ready()
    {
        await using var cluster = TestCluster.Create(3, "--request-timeout-ms", "8000");
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderAsync();
        (await cluster.CreateTopicAsync(leader, "t")).Status.ShouldBe(HttpStatusCode.Created);
        for (int i = 0; i < 3; i++)
        {
            var node = i;
            (await Eventually.TrueAsync(async () => (await GetAsync(cluster, node, "/readyz")).Status == HttpStatusCode.OK, TestCluster.DefaultTimeout))
                .ShouldBeTrue($"node {node} never became ready");
            (await GetAsync(cluster, node, "/readyz")).ShouldBe((HttpStatusCode.OK, "Healthy", "ready"));
            (await GetAsync(cluster, node, "/healthz")).ShouldBe((HttpStatusCode.OK, "Healthy", "serving"));
        }

        // Two of three gone: the survivor elects nobody, forgets the leader, and says so; it still serves.
        var survivor = (leader + 1) % 3;
        for (int i = 0; i < 3; i++)
            if (i != survivor) await cluster.Node(i).KillAsync();
        (await Eventually.TrueAsync(async () => (await GetAsync(cluster, survivor, "/readyz")).Status == HttpStatusCode.ServiceUnavailable, TestCluster.DefaultTimeout))
            .ShouldBeTrue("the survivor still claims to be ready");
        (await GetAsync(cluster, survivor, "/readyz")).ShouldBe((HttpStatusCode.ServiceUnavailable, "Unhealthy", "no leader is known"));
        (await GetAsync(cluster, survivor, "/healthz")).ShouldBe((HttpStatusCode.OK, "Healthy", "serving"));
    }
}

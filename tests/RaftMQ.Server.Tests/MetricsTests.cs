using System.Net;
using System.Text.Json;

namespace RaftMQ.Server.Tests;

/// <summary>GET /v1/metrics: each node's own counters follow the traffic it saw.</summary>
[Collection(ClusterCollection.Name)]
public sealed class MetricsTests
{
    private static async Task<JsonElement> MetricsAsync(TestCluster cluster, int node)
    {
        var (status, body) = await cluster.SendAsync(node, HttpMethod.Get, "/v1/metrics", null);
        status.ShouldBe(HttpStatusCode.OK);
        return JsonDocument.Parse(body).RootElement;
    }

    [Fact]
    public async Task The_leader_and_a_follower_count_what_they_did()
    {
        await using var cluster = TestCluster.Create(3);
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderAsync();
        var follower = Enumerable.Range(0, 3).First(i => i != leader);
        (await cluster.CreateTopicAsync(leader, "t")).Status.ShouldBe(HttpStatusCode.Created);
        const int published = 10;
        for (int i = 0; i < published; i++) (await cluster.PublishAsync(leader, "t", $"m{i}")).Status.ShouldBe(HttpStatusCode.OK);

        var l = await MetricsAsync(cluster, leader);
        l.GetProperty("node").GetInt32().ShouldBe(leader);
        l.GetProperty("ready").GetBoolean().ShouldBeTrue();
        l.GetProperty("role").GetString().ShouldBe("Leader");
        l.GetProperty("leader").GetInt32().ShouldBe(leader);
        var lr = l.GetProperty("runtime");
        lr.GetProperty("proposals").GetInt64().ShouldBe(published + 1, "the topic and the messages were proposed here");
        lr.GetProperty("entries_applied").GetInt64().ShouldBeGreaterThanOrEqualTo(published + 1);
        lr.GetProperty("log_syncs").GetInt64().ShouldBeInRange(1, lr.GetProperty("log_writes").GetInt64());
        l.GetProperty("transport").GetProperty("messages_sent").GetInt64().ShouldBeGreaterThan(0);
        l.GetProperty("transport").GetProperty("messages_received").GetInt64().ShouldBeGreaterThan(0);
        l.GetProperty("transport").GetProperty("protocol_errors").GetInt64().ShouldBe(0);

        // Every acknowledged entry is on a majority's disk; wait (bounded) until this follower has them all too.
        var commit = l.GetProperty("commit_index").GetUInt64();
        JsonElement f = default;
        (await Eventually.TrueAsync(
            async () => (f = await MetricsAsync(cluster, follower)).GetProperty("last_index").GetUInt64() >= commit,
            TimeSpan.FromSeconds(10))).ShouldBeTrue("the follower holds every committed entry");
        f.GetProperty("role").GetString().ShouldBe("Follower");
        f.GetProperty("runtime").GetProperty("proposals").GetInt64().ShouldBe(0, "writes went to the leader directly");
        f.GetProperty("runtime").GetProperty("entries_persisted").GetInt64().ShouldBeGreaterThanOrEqualTo(published + 1);
        f.GetProperty("runtime").GetProperty("messages_handled").GetInt64().ShouldBeGreaterThan(0);
    }
}

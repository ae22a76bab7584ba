using System.Diagnostics;
using System.Net;
using System.Text.Json;

namespace RaftMQ.Server.Tests;

/// <summary>
/// A quiet cluster with real processes (--idle-heartbeat-ms, docs/runtime.md "A quiet cluster"): it slows its
/// heartbeats once idle, a publish is still answered, and a quiet leader that is killed is replaced as fast as a busy
/// one, because its peers see their links to it go down instead of waiting for the quiet timeout.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class QuiescenceTests
{
    // A slow quiet pace, so that the quiet path and the normal one are seconds apart even on a busy machine: quiet
    // heartbeats every 2 s, so a follower waiting for the quiet timeout would wait 6 to 12 s.
    private static readonly string[] Args = ["--request-timeout-ms", "8000", "--idle-heartbeat-ms", "2000"];

    [Fact]
    public async Task An_idle_cluster_quiets_and_a_killed_quiet_leader_is_replaced_without_waiting_for_the_quiet_timeout()
    {
        await using var cluster = TestCluster.Create(3, Args);
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderAsync();
        (await cluster.CreateTopicAsync(leader, "quiet")).Status.ShouldBe(HttpStatusCode.Created);
        (await cluster.PublishAsync(leader, "quiet", "one")).ShouldBe((HttpStatusCode.OK, """{"success":true}"""));

        (await Eventually.TrueAsync(async () => (await QuiescedAsync(cluster)).All(q => q), TestCluster.DefaultTimeout))
            .ShouldBeTrue("every node of the idle cluster runs at the quiet pace");

        // At the normal pace the leader sends 4 heartbeats (two rounds to two followers) in 50 to 100 ms; quiet, the
        // second round is 2 s after the first.
        var sentBefore = await LeaderMessagesSentAsync(cluster, leader);
        var watch = Stopwatch.StartNew();
        (await Eventually.TrueAsync(async () => await LeaderMessagesSentAsync(cluster, leader) >= sentBefore + 4, TestCluster.DefaultTimeout))
            .ShouldBeTrue("the quiet leader still heartbeats");
        watch.Elapsed.ShouldBeGreaterThan(TimeSpan.FromSeconds(1), "two rounds of heartbeats are a quiet interval apart");

        // A publish to the quiet cluster is answered, and so is a pop through a follower.
        (await cluster.PublishAsync(leader, "quiet", "two")).ShouldBe((HttpStatusCode.OK, """{"success":true}"""));
        (await Eventually.TrueAsync(async () => (await QuiescedAsync(cluster)).All(q => q), TestCluster.DefaultTimeout))
            .ShouldBeTrue("the cluster quiets again once idle");

        watch.Restart();
        await cluster.Node(leader).KillAsync();
        var next = await cluster.WaitForLeaderAsync(not: leader);
        // Waiting for the quiet timeout would take at least 6 s less the 2 s since the last heartbeat.
        watch.Elapsed.ShouldBeLessThan(TimeSpan.FromSeconds(3.5), "the followers saw their links to the killed leader go down");
        (await cluster.PopAsync(next, "quiet")).Body.ShouldBe("""{"success":true,"message":"one"}""");
        (await cluster.PopAsync(next, "quiet")).Body.ShouldBe("""{"success":true,"message":"two"}""");
    }

    /// <summary>Each running node's <c>quiesced</c> from its GET /v1/metrics.</summary>
    private static async Task<bool[]> QuiescedAsync(TestCluster cluster)
    {
        var result = new List<bool>();
        for (var i = 0; i < 3; i++)
        {
            if (!cluster.IsRunning(i)) continue;
            var (status, body) = await cluster.SendAsync(i, HttpMethod.Get, "/v1/metrics");
            status.ShouldBe(HttpStatusCode.OK);
            result.Add(JsonDocument.Parse(body).RootElement.GetProperty("quiesced").GetBoolean());
        }
        return [.. result];
    }

    private static async Task<long> LeaderMessagesSentAsync(TestCluster cluster, int leader)
    {
        var (status, body) = await cluster.SendAsync(leader, HttpMethod.Get, "/v1/metrics");
        status.ShouldBe(HttpStatusCode.OK);
        return JsonDocument.Parse(body).RootElement.GetProperty("transport").GetProperty("messages_sent").GetInt64();
    }
}

using System.Net;
using System.Text.Json.Nodes;

using static RaftMQ.Server.Tests.V1Api;

namespace RaftMQ.Server.Tests;

/// <summary>
/// Retention through a real 3-node cluster, every call through a follower: a topic's max_messages with
/// reject-publish (409, nothing stored) and drop-oldest (old receipts stale, counted in the stats), and max_age_ms
/// dead-lettering with the reason, on a cluster that gets no other command.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class RetentionApiTests
{
    private static long Number(JsonObject json, string name) => json[name]!.GetValue<long>();

    [Fact]
    public async Task A_topic_past_its_limits_refuses_or_drops_and_expires_by_age_as_configured()
    {
        await using var cluster = TestCluster.Create(3, "--request-timeout-ms", "8000");
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderAsync();
        var follower = Enumerable.Range(0, 3).First(i => i != leader);
        const string topic = "orders";

        await Ok(cluster, follower, HttpMethod.Put, Path(topic), """{"max_messages": 3, "max_bytes": 100000, "overflow": "reject-publish"}""", HttpStatusCode.Created);
        var stats = await Ok(cluster, follower, HttpMethod.Get, Path(topic));
        (Number(stats, "max_messages"), Number(stats, "max_bytes"), Number(stats, "max_age_ms"), stats["overflow"]!.GetValue<string>(), stats["expire"]!.GetValue<string>())
            .ShouldBe((3L, 100000L, 0L, "reject-publish", "dead-letter"));

        // Reject-publish: a batch that would pass max_messages is refused whole with 409 topic-full.
        await Ok(cluster, follower, HttpMethod.Post, Path(topic, "publish"), """{"messages": [{"body": "a"}, {"body": "b"}]}""");
        using (var request = new HttpRequestMessage(HttpMethod.Post, cluster.Url(follower, Path(topic, "publish")))
        {
            Content = new StringContent("""{"messages": [{"body": "c"}, {"body": "d"}]}""", System.Text.Encoding.UTF8, "application/json"),
        })
        using (var response = await cluster.Http.SendAsync(request))
        {
            var text = await response.Content.ReadAsStringAsync();
            response.StatusCode.ShouldBe(HttpStatusCode.Conflict, text);
            response.Headers.GetValues("X-RaftMQ-Error").ShouldBe(["topic-full"]);
            text.ShouldContain("max_messages");
        }
        stats = await Ok(cluster, follower, HttpMethod.Get, Path(topic));
        (Number(stats, "tail"), Number(stats, "messages")).ShouldBe((2L, 2L));
        await Ok(cluster, follower, HttpMethod.Post, Path(topic, "publish"), """{"messages": [{"body": "c"}]}""");

        // Drop-oldest: the lease on offset 0 ends with it, and its receipt is stale.
        await Ok(cluster, follower, HttpMethod.Put, Path(topic), """{"overflow": "drop-oldest"}""");
        var leased = (await Ok(cluster, follower, HttpMethod.Post, Path(topic, "receive"), """{"max": 1}"""))["messages"]!.AsArray().Single()!;
        leased["offset"]!.GetValue<long>().ShouldBe(0);
        var published = await Ok(cluster, follower, HttpMethod.Post, Path(topic, "publish"), """{"messages": [{"body": "d"}, {"body": "e"}]}""");
        published["offsets"]!.AsArray().Select(o => o!.GetValue<long>()).ShouldBe([3, 4]);
        stats = await Ok(cluster, follower, HttpMethod.Get, Path(topic));
        (Number(stats, "head"), Number(stats, "messages"), Number(stats, "overflow_dropped_total"), Number(stats, "expired_total")).ShouldBe((2L, 3L, 2L, 0L));
        var receipt = leased["receipt"]!.GetValue<string>();
        var acked = await Ok(cluster, follower, HttpMethod.Post, Path(topic, "ack"), $$"""{"receipts": ["{{receipt}}"]}""");
        (acked["acked"]!.GetValue<int>(), acked["stale"]!.AsArray().Single()!.GetValue<string>()).ShouldBe((0, receipt));

        // Age: the messages expire into the dead letters with no other command sent — the leader moves the
        // replicated clock itself once a message is due (the test only reads).
        // "f" is published after the setting, so only that can expire it (max_messages off, so nothing is dropped for it).
        await Ok(cluster, follower, HttpMethod.Put, Path(topic), """{"max_age_ms": 2000, "max_messages": 0}""");
        await Ok(cluster, follower, HttpMethod.Post, Path(topic, "publish"), """{"messages": [{"body": "f"}]}""");
        (await Eventually.TrueAsync(
            async () => Number(await Ok(cluster, follower, HttpMethod.Get, Path(topic)), "expired_total") == 4,
            TimeSpan.FromSeconds(20), TimeSpan.FromMilliseconds(100))).ShouldBeTrue();
        stats = await Ok(cluster, leader, HttpMethod.Get, Path(topic));
        (Number(stats, "messages"), Number(stats, "dead_lettered"), Number(stats, "max_age_ms")).ShouldBe((0L, 4L, 2000L));
        var letters = (await Ok(cluster, follower, HttpMethod.Get, Path(topic, "dead-letters/peek") + "?max=10"))["messages"]!.AsArray();
        letters.Select(m => m!["body"]!.GetValue<string>()).ShouldBe(["c", "d", "e", "f"]);
        letters.ShouldAllBe(m => m!["headers"]!["raftmq-reason"]!.GetValue<string>() == "expired");

        // Prometheus counts both removals per topic, on every node (refreshed about once a second).
        foreach (var node in new[] { leader, follower })
        {
            (await Eventually.TrueAsync(
                async () =>
                {
                    var (status, text) = await cluster.SendAsync(node, HttpMethod.Get, "/metrics", null);
                    status.ShouldBe(HttpStatusCode.OK);
                    var samples = PrometheusMetricsTests.Parse(text);
                    double? Of(string name) => samples.FirstOrDefault(x => x.Name == name && x.Labels.GetValueOrDefault("topic") == topic)?.Value;
                    return Of("raftmq_queue_expired_total") == 4 && Of("raftmq_queue_overflow_dropped_total") == 2;
                },
                TimeSpan.FromSeconds(20), TimeSpan.FromMilliseconds(200))).ShouldBeTrue($"node {node}'s /metrics counts 4 expired and 2 dropped");
        }

        // The RRMQ publish is refused with 409 by a full reject-publish topic, and behaves as before elsewhere.
        await Ok(cluster, follower, HttpMethod.Put, Path("legacy"), """{"max_messages": 1}""", HttpStatusCode.Created);
        (await cluster.PublishAsync(follower, "legacy", "one")).Status.ShouldBe(HttpStatusCode.OK);
        var refused = await cluster.PublishAsync(follower, "legacy", "two");
        (refused.Status, refused.Body).ShouldBe((HttpStatusCode.Conflict, """{"success":false}"""));
        (await cluster.PopAsync(follower, "legacy")).Body.ShouldBe("""{"success":true,"message":"one"}""");
        (await cluster.PublishAsync(follower, "legacy", "two")).Status.ShouldBe(HttpStatusCode.OK);
    }
}

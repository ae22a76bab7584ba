using System.Net;

namespace RaftMQ.Client.Tests;

/// <summary>Batch publish and pop: their error model against scripted endpoints, and their behaviour on a real cluster.</summary>
public sealed class BatchErrorModelTests
{
    [Fact]
    public async Task A_batch_whose_connection_drops_after_sending_is_reported_unknown_and_not_retried()
    {
        await using var node = new FakeNode(_ => null);
        using var client = FakeNode.Client(node.Url);
        (await Should.ThrowAsync<OutcomeUnknownException>(() => client.PublishBatchAsync("t", ["a", "b"]))).Operation.ShouldBe("publish");
        (await Should.ThrowAsync<OutcomeUnknownException>(() => client.PopBatchAsync("t", 5))).Operation.ShouldBe("pop");
        node.Requests.ShouldBe(2);
    }

    [Fact]
    public async Task A_node_reporting_outcome_unknown_is_surfaced_and_not_retried()
    {
        await using var node = new FakeNode(_ => FakeNode.Response(503, """{"success":false,"error":"timed out"}""", "outcome-unknown"));
        using var client = FakeNode.Client(node.Url);
        await Should.ThrowAsync<OutcomeUnknownException>(() => client.PublishBatchAsync("t", ["a"]));
        await Should.ThrowAsync<OutcomeUnknownException>(() => client.PopBatchAsync("t", 2));
        node.Requests.ShouldBe(2);
    }

    [Fact]
    public async Task A_batch_refused_as_not_applied_is_retried_then_reported_unavailable()
    {
        await using var node = new FakeNode(_ => FakeNode.Response(503, """{"success":false,"error":"no leader"}""", "no-leader"));
        using var client = FakeNode.Client(node.Url, maxRetries: 2);
        (await Should.ThrowAsync<ClusterUnavailableException>(() => client.PublishBatchAsync("t", ["a"]))).Reason.ShouldBe("no-leader");
        node.Requests.ShouldBe(3);
    }

    [Fact]
    public async Task Final_answers_are_not_retried_and_keep_the_servers_reason()
    {
        await using var node = new FakeNode(target => target switch
        {
            "POST /v1/messages" => FakeNode.Response(413, """{"success":false,"error":"more than 1000 messages in one batch"}"""),
            "POST /v1/messages/pop" => FakeNode.Response(404, """{"success":false,"error":"no such topic"}"""),
            _ => FakeNode.Response(500, "{}"),
        });
        using var client = FakeNode.Client(node.Url);
        var rejected = await Should.ThrowAsync<RequestRejectedException>(() => client.PublishBatchAsync("t", ["a"]));
        rejected.StatusCode.ShouldBe(HttpStatusCode.RequestEntityTooLarge);
        rejected.ServerError.ShouldBe("more than 1000 messages in one batch");
        (await Should.ThrowAsync<TopicNotFoundException>(() => client.PopBatchAsync("missing", 3))).Topic.ShouldBe("missing");
        node.Requests.ShouldBe(2);
    }

    [Fact]
    public void Bad_arguments_fail_before_any_request()
    {
        using var client = new RaftMQClient([new Uri("http://127.0.0.1:1")]);
        Should.Throw<ArgumentNullException>(() => client.PublishBatchAsync("t", null!));
        Should.Throw<ArgumentException>(() => client.PublishBatchAsync("t", []));
        Should.Throw<ArgumentException>(() => client.PublishBatchAsync("t", ["a", null!]));
        Should.Throw<ArgumentException>(() => client.PublishBatchAsync("", ["a"]));
        Should.Throw<ArgumentException>(() => client.PublishBatchAsync("t", [.. Enumerable.Repeat(new string('x', 60_000), 20)]))
            .Message.ShouldContain("request limit");
        Should.Throw<ArgumentOutOfRangeException>(() => client.PopBatchAsync("t", 0));
        Should.Throw<ArgumentOutOfRangeException>(() => client.PopBatchAsync("t", -1));
        Should.Throw<ArgumentException>(() => client.PopBatchAsync("", 1));
    }
}

[Collection(RealClusters.Name)]
public sealed class BatchClusterTests
{
    [Fact]
    public async Task Batches_through_a_follower_keep_order_with_single_publishes_and_pops()
    {
        await using var cluster = TestCluster.Create(3, "--request-timeout-ms", "8000");
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderAsync();
        using var client = RealClusters.Client(cluster.Url((leader + 1) % 3, "/"));

        await client.CreateTopicAsync("t");
        await client.PublishAsync("t", "m0");
        await client.PublishBatchAsync("t", ["m1", "m2", "ü 3"]);
        await client.PublishAsync("t", "m4");
        await client.PublishBatchAsync("t", [.. Enumerable.Range(5, 100).Select(i => $"m{i}")]);
        (await client.PopBatchAsync("t", 2)).ShouldBe(["m0", "m1"]);
        (await client.PopAsync("t")).ShouldBe("m2");
        (await client.PopBatchAsync("t", 1000)).ShouldBe(["ü 3", "m4", .. Enumerable.Range(5, 100).Select(i => $"m{i}")]);
        (await client.PopBatchAsync("t", 10)).ShouldBeEmpty();
        (await Should.ThrowAsync<TopicNotFoundException>(() => client.PublishBatchAsync("missing", ["x"]))).Topic.ShouldBe("missing");
        await Should.ThrowAsync<TopicNotFoundException>(() => client.PopBatchAsync("missing", 1));

        // Over the cluster's bounds: refused whole, nothing published.
        var tooMany = await Should.ThrowAsync<RequestRejectedException>(() => client.PublishBatchAsync("t", [.. Enumerable.Repeat("x", 1001)]));
        tooMany.StatusCode.ShouldBe(HttpStatusCode.RequestEntityTooLarge);
        (await Should.ThrowAsync<RequestRejectedException>(() => client.PublishBatchAsync("t", ["ok", new string('x', 64 * 1024 + 1)])))
            .StatusCode.ShouldBe(HttpStatusCode.RequestEntityTooLarge);
        (await Should.ThrowAsync<RequestRejectedException>(() => client.PopBatchAsync("t", 1001))).StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        (await client.PopBatchAsync("t", 10)).ShouldBeEmpty();
    }
}

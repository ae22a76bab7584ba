using System.Net;

namespace RaftMQ.Client.Tests;

/// <summary>RaftMQPublisher: its error model against scripted endpoints.</summary>
public sealed class PublisherErrorModelTests
{
    [Fact]
    public async Task After_a_failed_batch_nothing_more_is_sent_and_later_messages_say_they_were_not_published()
    {
        await using var node = new FakeNode(_ => FakeNode.Response(503, """{"success":false,"error":"timed out"}""", "outcome-unknown"));
        using var client = FakeNode.Client(node.Url, maxRetries: 1);
        await using var publisher = new RaftMQPublisher(client, "t");
        await Should.ThrowAsync<OutcomeUnknownException>(() => publisher.PublishAsync("first"));
        var later = await Should.ThrowAsync<PublisherFaultedException>(() => publisher.PublishAsync("second"));
        later.InnerException.ShouldBeOfType<OutcomeUnknownException>();
        node.Requests.ShouldBe(1, "the second message was never sent");
    }

    [Fact]
    public async Task Disposing_sends_everything_queued_and_answers_every_message()
    {
        await using var node = new FakeNode(_ => FakeNode.Response(200, """{"success":true,"published":1}"""));
        using var client = FakeNode.Client(node.Url, maxRetries: 1);
        var publisher = new RaftMQPublisher(client, "t", new RaftMQPublisherOptions { MaxBatchMessages = 4 });
        var sent = Enumerable.Range(0, 10).Select(i => publisher.PublishAsync($"m{i}")).ToList();
        await publisher.DisposeAsync();
        sent.ShouldAllBe(t => t.IsCompletedSuccessfully);
        node.Requests.ShouldBeInRange(3, 10, "at most 4 messages a request");
        await Should.ThrowAsync<ObjectDisposedException>(() => publisher.PublishAsync("late"));
    }

    [Fact]
    public void Bounds_outside_what_the_cluster_accepts_are_refused()
    {
        using var client = new RaftMQClient([new Uri("http://127.0.0.1:1")]);
        Should.Throw<ArgumentOutOfRangeException>(() => new RaftMQPublisher(client, "t", new RaftMQPublisherOptions { MaxBatchMessages = 1001 }));
        Should.Throw<ArgumentOutOfRangeException>(() => new RaftMQPublisher(client, "t", new RaftMQPublisherOptions { MaxQueuedMessages = 0 }));
        Should.Throw<ArgumentException>(() => new RaftMQPublisher(client, ""));
    }
}

[Collection(RealClusters.Name)]
public sealed class PublisherClusterTests
{
    [Fact]
    public async Task Concurrent_publishes_arrive_in_call_order_in_far_fewer_requests()
    {
        await using var cluster = TestCluster.Create(3, "--request-timeout-ms", "8000");
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderAsync();
        using var client = RealClusters.Client(cluster.Url(leader, "/"));
        await client.CreateTopicAsync("t");

        const int count = 500;
        var expected = Enumerable.Range(0, count).Select(i => $"m{i} ü").ToList();
        await using (var publisher = new RaftMQPublisher(client, "t", new RaftMQPublisherOptions { MaxBatchMessages = 50 }))
        {
            await Task.WhenAll(expected.Select(m => publisher.PublishAsync(m)));
        }

        var popped = new List<string>();
        while (await client.PopBatchAsync("t", 1000) is { Count: > 0 } some) popped.AddRange(some);
        popped.ShouldBe(expected);
        var (status, metrics) = await cluster.SendAsync(leader, HttpMethod.Get, "/v1/metrics");
        status.ShouldBe(HttpStatusCode.OK);
        var proposals = System.Text.Json.JsonDocument.Parse(metrics).RootElement.GetProperty("runtime").GetProperty("proposals").GetInt64();
        // The topic, at least count / 50 publish requests, the pops; one request per message would be over 500.
        proposals.ShouldBeInRange(1 + count / 50 + 1, count / 2);
    }
}

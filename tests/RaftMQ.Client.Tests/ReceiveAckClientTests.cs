using System.Collections.Concurrent;
using System.Net;

namespace RaftMQ.Client.Tests;

/// <summary>
/// <see cref="RaftMQClient.ReceiveAndAckAsync"/> and the consumer's use of it, against real node processes: acks ride
/// on the next receive (no ack requests of their own while handlers are quick), an ack waiting on a slow handler goes
/// alone after <see cref="RaftMQConsumerOptions.AckDelay"/>, and acks left at a stop are sent.
/// </summary>
[Collection(RealClusters.Name)]
public sealed class ReceiveAckClientTests
{
    private static RaftMQClient Client(params Uri[] nodes)
    {
        var options = new RaftMQClientOptions { AttemptTimeout = TimeSpan.FromSeconds(12), OperationTimeout = TimeSpan.FromSeconds(30) };
        foreach (var n in nodes) options.Nodes.Add(n);
        return new RaftMQClient(options);
    }

    /// <summary>The requests of <paramref name="route"/> node <paramref name="node"/> answered so far (its /metrics request counter).</summary>
    private static async Task<long> AnsweredAsync(TestCluster cluster, int node, string route)
    {
        var text = await cluster.Http.GetStringAsync(cluster.Url(node, "/metrics"));
        return text.Split('\n')
            .Where(l => l.StartsWith("raftmq_http_requests_total{", StringComparison.Ordinal) && l.Contains($"route=\"{route}\"", StringComparison.Ordinal))
            .Sum(l => long.Parse(l[(l.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task ReceiveAndAck_acks_the_previous_batch_and_leases_the_next_in_one_call()
    {
        await using var cluster = TestCluster.Create(3, "--request-timeout-ms", "8000");
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderAsync();
        using var client = Client(cluster.Url((leader + 1) % 3, "/"));
        const string topic = "pairs";
        await client.ConfigureTopicAsync(topic);
        await client.PublishMessagesAsync(topic, [.. Enumerable.Range(0, 5).Select(i => OutgoingMessage.FromText($"m{i}"))]);

        var first = await client.ReceiveAsync(topic, max: 2);
        var next = await client.ReceiveAndAckAsync(topic, [.. first.Select(d => d.Receipt)], max: 2);
        next.Acks.Applied.ShouldBe(2);
        next.Acks.Stale.ShouldBeEmpty();
        next.Deliveries.Select(d => d.Text).ShouldBe(["m2", "m3"]);
        (await client.GetTopicStatsAsync(topic)).Groups[0].AckedTotal.ShouldBe(2);

        // The same receipts again: stale, not applied; the receive still happens.
        var again = await client.ReceiveAndAckAsync(topic, [first[0].Receipt], max: 5, wait: TimeSpan.FromMilliseconds(100));
        again.Acks.Applied.ShouldBe(0);
        again.Acks.Stale.ShouldBe([first[0].Receipt]);
        again.Deliveries.Select(d => d.Text).ShouldBe(["m4"]);
        var none = await client.ReceiveAndAckAsync(topic, [], max: 5);
        (none.Acks.Applied, none.Acks.Stale.Count, none.Deliveries.Count).ShouldBe((0, 0, 0));

        var bad = await Should.ThrowAsync<RequestRejectedException>(() => client.ReceiveAndAckAsync(topic, ["not a receipt"]));
        bad.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        bad.ServerError.ShouldNotBeNull().ShouldContain("\"ack\" receipt 0");
        await Should.ThrowAsync<TopicNotFoundException>(() => client.ReceiveAndAckAsync("nowhere", [next.Deliveries[0].Receipt]));
        await Should.ThrowAsync<ArgumentNullException>(() => client.ReceiveAndAckAsync(topic, null!));
    }

    [Fact]
    public async Task The_consumer_sends_its_acks_with_its_receives_and_alone_only_after_the_ack_delay_or_at_a_stop()
    {
        await using var cluster = TestCluster.Create(1);
        await cluster.StartAllAsync();
        var node = await cluster.WaitForLeaderAsync();
        using var client = Client(cluster.Url(node, "/"));
        const string topic = "riding";
        await client.ConfigureTopicAsync(topic);
        const string ackRoute = "/v1/topics/{topic}/ack";
        var errors = new ConcurrentQueue<Exception>();

        // Quick handlers: 60 messages in batches of 7, every ack carried by a receive, none sent alone.
        await client.PublishMessagesAsync(topic, [.. Enumerable.Range(0, 60).Select(i => OutgoingMessage.FromText($"q{i}"))]);
        var acksBefore = await AnsweredAsync(cluster, node, ackRoute);
        var handled = new ConcurrentBag<string>();
        await using (var quick = new RaftMQConsumer(client, topic, (d, _) =>
            {
                handled.Add(d.Text);
                return Task.CompletedTask;
            }, new RaftMQConsumerOptions { Prefetch = 7, AckDelay = TimeSpan.FromMinutes(1) }) { OnError = errors.Enqueue })
        {
            (await Eventually.TrueAsync(async () => (await client.GetTopicStatsAsync(topic)).Groups[0].AckedTotal == 60, TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(50)))
                .ShouldBeTrue("every message acked");
            (await Eventually.TrueAsync(() => Task.FromResult(quick.Processed == 60), TimeSpan.FromSeconds(10))).ShouldBeTrue("the acks' outcome came back");
            await quick.StopAsync();
        }
        handled.Count.ShouldBe(60);
        (await AnsweredAsync(cluster, node, ackRoute)).ShouldBe(acksBefore, "no ack request of its own");
        errors.ShouldBeEmpty();

        // A slow second handler: the first message's ack waits for the next receive only AckDelay, then goes alone
        // while the handler still runs. Then a third message whose handler returns only when the consumer stops: its
        // ack is left when the loop ends, and sent then.
        await client.PublishMessagesAsync(topic, [OutgoingMessage.FromText("fast"), OutgoingMessage.FromText("slow"), OutgoingMessage.FromText("last")]);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var lastStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var consumer = new RaftMQConsumer(client, topic, async (d, stop) =>
        {
            if (d.Text == "slow") await release.Task;
            if (d.Text == "last")
            {
                lastStarted.TrySetResult();
                var stopped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                await using (stop.Register(() => stopped.TrySetResult()))
                    await stopped.Task; // returns normally at the stop: handled, to be acked
            }
        }, new RaftMQConsumerOptions { Prefetch = 3, AckDelay = TimeSpan.FromMilliseconds(300), Lease = TimeSpan.FromMinutes(5) }) { OnError = errors.Enqueue };
        try
        {
            (await Eventually.TrueAsync(async () => (await client.GetTopicStatsAsync(topic)).Groups[0].AckedTotal == 61, TimeSpan.FromSeconds(20), TimeSpan.FromMilliseconds(50)))
                .ShouldBeTrue("the fast message's ack went alone while the slow handler ran");
            release.Task.IsCompleted.ShouldBeFalse();
            (await AnsweredAsync(cluster, node, ackRoute)).ShouldBe(acksBefore + 1);
            release.SetResult();
            await lastStarted.Task.WaitAsync(TimeSpan.FromSeconds(20));
            // "slow" is acked (alone: its AckDelay passes while "last" runs), "last" is not yet.
            (await Eventually.TrueAsync(async () => (await client.GetTopicStatsAsync(topic)).Groups[0].AckedTotal == 62, TimeSpan.FromSeconds(20), TimeSpan.FromMilliseconds(50)))
                .ShouldBeTrue();
            await consumer.StopAsync().WaitAsync(TimeSpan.FromSeconds(30));
        }
        finally
        {
            release.TrySetResult();
            await consumer.DisposeAsync();
        }
        var stats = (await client.GetTopicStatsAsync(topic)).Groups[0];
        (stats.AckedTotal, stats.Unacked).ShouldBe((63L, 0L), "the ack left at the stop was sent");
        consumer.Processed.ShouldBe(3);
        errors.ShouldBeEmpty();
    }
}
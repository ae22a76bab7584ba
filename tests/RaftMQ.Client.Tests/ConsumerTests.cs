using System.Collections.Concurrent;

namespace RaftMQ.Client.Tests;

/// <summary>
/// <see cref="RaftMQConsumer"/> against real node processes: ack on success (riding on the next receive), nack on
/// failure, lease extension, clean stop.
/// </summary>
[Collection(RealClusters.Name)]
public sealed class ConsumerTests
{
    private static RaftMQClient Client(params Uri[] nodes)
    {
        var options = new RaftMQClientOptions { AttemptTimeout = TimeSpan.FromSeconds(12), OperationTimeout = TimeSpan.FromSeconds(30) };
        foreach (var n in nodes) options.Nodes.Add(n);
        return new RaftMQClient(options);
    }

    [Fact]
    public async Task Every_message_is_handled_or_dead_lettered_and_a_slow_handler_keeps_its_lease()
    {
        await using var cluster = TestCluster.Create(3, "--request-timeout-ms", "8000");
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderAsync();
        using var client = Client(cluster.Url((leader + 1) % 3, "/"));
        const string topic = "tasks";
        await client.ConfigureTopicAsync(topic, maxDeliveries: 2);
        await client.PublishMessagesAsync(topic, [.. Enumerable.Range(0, 20).Select(i => OutgoingMessage.FromText(i == 7 ? "bad" : $"job {i}"))]);

        var handled = new ConcurrentBag<string>();
        var errors = new ConcurrentQueue<Exception>();
        await using (var consumer = new RaftMQConsumer(client, topic, (d, _) =>
            {
                if (d.Text == "bad") throw new InvalidOperationException("cannot do bad");
                handled.Add(d.Text);
                return Task.CompletedTask;
            },
            new RaftMQConsumerOptions { Prefetch = 4, Lease = TimeSpan.FromSeconds(10) }) { OnError = errors.Enqueue })
        {
            (await Eventually.TrueAsync(async () =>
            {
                var s = await client.GetTopicStatsAsync(topic);
                return s.Groups[0].Unacked == 0 && s.DeadLettered == 1;
            }, TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(50))).ShouldBeTrue();
            await consumer.StopAsync();
            (consumer.Processed, consumer.Failed).ShouldBe((19L, 2L));
        }
        handled.Order().ShouldBe(Enumerable.Range(0, 20).Where(i => i != 7).Select(i => $"job {i}").Order());
        errors.ShouldBeEmpty();
        var letter = (await client.PeekAsync(topic, deadLetters: true)).Single();
        letter.Text.ShouldBe("bad");
        letter.Headers.ShouldContain(new KeyValuePair<string, string>("raftmq-last-error", "cannot do bad"));

        // A handler slower than the lease: the consumer extends it, so no other consumer gets the message meanwhile.
        await client.PublishMessagesAsync(topic, [OutgoingMessage.FromText("slow")]);
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var slow = new RaftMQConsumer(client, topic, async (d, _) =>
        {
            started.TrySetResult();
            await release.Task;
        }, new RaftMQConsumerOptions { Prefetch = 1, Lease = TimeSpan.FromSeconds(3) }) { OnError = errors.Enqueue };
        await started.Task.WaitAsync(TimeSpan.FromSeconds(30));
        // More than two whole leases pass while the handler runs (extended every 1.5 s); no receive meanwhile gets it.
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(7);
        while (DateTime.UtcNow < until) (await client.ReceiveAsync(topic, lease: TimeSpan.FromMinutes(1))).ShouldBeEmpty();
        release.SetResult();
        (await Eventually.TrueAsync(() => Task.FromResult(slow.Processed == 1), TimeSpan.FromSeconds(30))).ShouldBeTrue();
        await slow.StopAsync();
        errors.ShouldBeEmpty();
        (await client.GetTopicStatsAsync(topic)).Groups[0].Unacked.ShouldBe(0);
    }

    [Fact]
    public async Task Stop_nacks_the_prefetched_messages_it_did_not_start()
    {
        await using var cluster = TestCluster.Create(3, "--request-timeout-ms", "8000");
        await cluster.StartAllAsync();
        await cluster.WaitForLeaderAsync();
        using var client = Client(cluster.Url(0, "/"));
        const string topic = "stop";
        await client.ConfigureTopicAsync(topic);
        await client.PublishMessagesAsync(topic, [.. Enumerable.Range(0, 5).Select(i => OutgoingMessage.FromText($"m{i}"))]);
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var consumer = new RaftMQConsumer(client, topic, async (d, stop) =>
        {
            started.TrySetResult();
            // Runs until the consumer stops: then it throws, and the message is nacked.
            var stopped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            await using (stop.Register(() => stopped.TrySetCanceled(stop)))
                await stopped.Task;
        }, new RaftMQConsumerOptions { Prefetch = 5, Lease = TimeSpan.FromMinutes(5) });
        await started.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await consumer.StopAsync();
        await consumer.DisposeAsync();
        // All five are ready again at once (not after the 5-minute lease), delivery count 1 behind them.
        var again = await client.ReceiveAsync(topic, max: 10);
        again.Select(d => (d.Text, d.DeliveryCount)).ShouldBe(Enumerable.Range(0, 5).Select(i => ($"m{i}", 2)));
    }
    /// <summary>The requests of <paramref name="route"/> node <paramref name="node"/> answered so far (its /metrics request counter).</summary>
    private static async Task<long> RequestsAnsweredAsync(TestCluster cluster, int node, string route = "/v1/topics/{topic}/receive")
    {
        var text = await cluster.Http.GetStringAsync(cluster.Url(node, "/metrics"));
        return text.Split('\n')
            .Where(l => l.StartsWith("raftmq_http_requests_total{", StringComparison.Ordinal) && l.Contains($"route=\"{route}\"", StringComparison.Ordinal))
            .Sum(l => long.Parse(l[(l.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task An_idle_consumer_waits_on_the_server_and_gets_a_message_published_meanwhile_at_once()
    {
        await using var cluster = TestCluster.Create(1);
        await cluster.StartAllAsync();
        var node = await cluster.WaitForLeaderAsync();
        using var client = Client(cluster.Url(node, "/"));
        const string topic = "quiet";
        await client.ConfigureTopicAsync(topic);
        var handled = new ConcurrentQueue<string>();
        var errors = new ConcurrentQueue<Exception>();
        var consumer = new RaftMQConsumer(client, topic, (d, _) =>
        {
            handled.Enqueue(d.Text);
            return Task.CompletedTask;
        }, new RaftMQConsumerOptions { Wait = RaftMQConsumerOptions.MaxWait }) { OnError = errors.Enqueue };
        try
        {
            // Idle for three seconds: the consumer's receive waits on the server (20 s), so at most the one it had
            // started before is answered meanwhile, not one per short pause. Polling would show as a second answered
            // receive, which is watched for until the three seconds are over.
            var before = await RequestsAnsweredAsync(cluster, node);
            var polled = await Eventually.TrueAsync(
                async () => await RequestsAnsweredAsync(cluster, node) - before > 1, TimeSpan.FromSeconds(3), TimeSpan.FromMilliseconds(200));
            polled.ShouldBeFalse("an idle consumer does not poll");

            // A message published now reaches the waiting receive at once: well before its 20 s wait would end.
            await client.PublishMessagesAsync(topic, [OutgoingMessage.FromText("wake")]);
            (await Eventually.TrueAsync(() => Task.FromResult(handled.Contains("wake")), TimeSpan.FromSeconds(10))).ShouldBeTrue("delivered to the waiting receive");

            // Stopping cancels the waiting receive (a fresh 20 s one): it does not sit out its wait.
            await consumer.StopAsync().WaitAsync(TimeSpan.FromSeconds(10));
        }
        finally
        {
            await consumer.DisposeAsync();
        }
        consumer.Processed.ShouldBe(1);
        errors.ShouldBeEmpty();
        (await client.GetTopicStatsAsync(topic)).Groups[0].Unacked.ShouldBe(0);
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
        var acksBefore = await RequestsAnsweredAsync(cluster, node, ackRoute);
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
        (await RequestsAnsweredAsync(cluster, node, ackRoute)).ShouldBe(acksBefore, "no ack request of its own");
        errors.ShouldBeEmpty();

        // A slow second handler: the first message's ack waits for the next receive only AckDelay, then goes alone
        // while the handler still runs. Then a third message whose handler returns only when the consumer stops: its
        // ack is left when the loop ends, and sent then.
        // Another topic: the stopped consumer's waiting receive may still be on the server an instant after its stop.
        const string slowTopic = "riding-slow";
        await client.ConfigureTopicAsync(slowTopic);
        await client.PublishMessagesAsync(slowTopic, [OutgoingMessage.FromText("fast"), OutgoingMessage.FromText("slow"), OutgoingMessage.FromText("last")]);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var lastStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var consumer = new RaftMQConsumer(client, slowTopic, async (d, stop) =>
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
            (await Eventually.TrueAsync(async () => (await client.GetTopicStatsAsync(slowTopic)).Groups[0].AckedTotal == 1, TimeSpan.FromSeconds(20), TimeSpan.FromMilliseconds(50)))
                .ShouldBeTrue("the fast message's ack went alone while the slow handler ran");
            release.Task.IsCompleted.ShouldBeFalse();
            (await RequestsAnsweredAsync(cluster, node, ackRoute)).ShouldBe(acksBefore + 1);
            release.SetResult();
            await lastStarted.Task.WaitAsync(TimeSpan.FromSeconds(20));
            // "slow" is acked (alone: its AckDelay passes while "last" runs), "last" is not yet.
            (await Eventually.TrueAsync(async () => (await client.GetTopicStatsAsync(slowTopic)).Groups[0].AckedTotal == 2, TimeSpan.FromSeconds(20), TimeSpan.FromMilliseconds(50)))
                .ShouldBeTrue();
            await consumer.StopAsync().WaitAsync(TimeSpan.FromSeconds(30));
        }
        finally
        {
            release.TrySetResult();
            await consumer.DisposeAsync();
        }
        var stats = (await client.GetTopicStatsAsync(slowTopic)).Groups[0];
        (stats.AckedTotal, stats.Unacked).ShouldBe((3L, 0L), "the ack left at the stop was sent");
        consumer.Processed.ShouldBe(3);
        errors.ShouldBeEmpty();
    }
}

using System.Net;

namespace RaftMQ.Client.Tests;

/// <summary>The consumer-group operations of the client against real node processes, through a follower.</summary>
[Collection(RealClusters.Name)]
public sealed class GroupClientTests
{
    private static RaftMQClient Client(params Uri[] nodes)
    {
        var options = new RaftMQClientOptions { AttemptTimeout = TimeSpan.FromSeconds(12), OperationTimeout = TimeSpan.FromSeconds(30) };
        foreach (var n in nodes) options.Nodes.Add(n);
        return new RaftMQClient(options);
    }

    [Fact]
    public async Task Receive_ack_nack_extend_peek_stats_redrive_and_delete()
    {
        await using var cluster = TestCluster.Create(3, "--request-timeout-ms", "8000");
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderAsync();
        using var client = Client(cluster.Url((leader + 1) % 3, "/"));
        const string topic = "work items";

        (await client.ConfigureTopicAsync(topic, maxDeliveries: 1)).ShouldBeTrue();
        (await client.ConfigureTopicAsync(topic)).ShouldBeFalse();
        (await client.CreateGroupAsync(topic, "audit", GroupStartPosition.Latest)).ShouldBeTrue();
        (await client.CreateGroupAsync(topic, "audit")).ShouldBeFalse();
        await client.PublishMessagesAsync(topic, [OutgoingMessage.FromText("one", [new("k", "v")]), new OutgoingMessage(new byte[] { 0xff, 0 })]);

        var got = await client.ReceiveAsync(topic, max: 10, lease: TimeSpan.FromMinutes(1));
        got.Select(d => (d.Offset, d.DeliveryCount)).ShouldBe([(0UL, 1), (1UL, 1)]);
        got[0].Text.ShouldBe("one");
        got[0].Headers.ShouldBe([new("k", "v")]);
        got[1].Body.ShouldBe(new byte[] { 0xff, 0 });
        got[0].PublishedAtMs.ShouldBeGreaterThan(0);

        var extended = await client.ExtendAsync(topic, [got[0].Receipt], TimeSpan.FromMinutes(2));
        (extended.Applied, extended.Stale.Count).ShouldBe((1, 0));
        var acked = await client.AckAsync(topic, [got[0].Receipt, got[0].Receipt]);
        (acked.Applied, acked.Stale.Single()).ShouldBe((1, got[0].Receipt));
        (await client.NackAsync(topic, [got[1].Receipt], error: "unreadable")).Applied.ShouldBe(1);

        var stats = await client.GetTopicStatsAsync(topic);
        (stats.DeadLettered, stats.MaxDeliveries, string.Join(",", stats.Groups.Select(g => g.Group))).ShouldBe((1L, 1, "default,audit"));
        stats.Groups[1].Ready.ShouldBe(2);
        stats.Groups[1].DeliveryCounts.Select(c => c.Key).ShouldBe(["0", "1", "2", "3", "4", "5-9", "10-19", "20-49", "50-99", "100+"]);
        stats.Groups[1].DeliveryCounts.Select(c => c.Value).ShouldBe([2L, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // audit: both never delivered
        stats.Groups[0].DeliveryCounts.Sum(c => c.Value).ShouldBe(0L); // default: one acked, one dead-lettered
        var letter = (await client.PeekAsync(topic, deadLetters: true)).Single();
        letter.Payload.ShouldBe(new byte[] { 0xff, 0 });
        letter.Headers.ShouldContain(new KeyValuePair<string, string>("raftmq-last-error", "unreadable"));
        (await client.GetTopicStatsAsync(topic, deadLetters: true)).Messages.ShouldBe(1);

        (await client.RedriveAsync(topic)).ShouldBe(1);
        (await client.PeekAsync(topic, from: 2)).Single().Payload.ShouldBe(new byte[] { 0xff, 0 });
        (await client.ReceiveAsync(topic, "audit", 10)).Select(d => d.Offset).ShouldBe([0UL, 1UL, 2UL]);

        // Messages with ids: a repeat is answered with the first offsets and not stored.
        (await client.ConfigureTopicAsync(topic, null, TimeSpan.FromMinutes(10))).ShouldBeFalse();
        var batch = new[] { OutgoingMessage.FromText("x") with { Id = "x-1" }, OutgoingMessage.FromText("y") with { Id = "y-1" } };
        (await client.PublishIdempotentAsync(topic, batch)).ShouldBe(new IdempotentPublishResult([3UL, 4UL], 0), new IdempotentPublishComparer());
        (await client.PublishIdempotentAsync(topic, batch)).ShouldBe(new IdempotentPublishResult([3UL, 4UL], 2), new IdempotentPublishComparer());
        (await client.GetTopicStatsAsync(topic)).Tail.ShouldBe(5UL);
        await Should.ThrowAsync<ArgumentException>(() => client.PublishIdempotentAsync(topic, [OutgoingMessage.FromText("no id")]));
        (await client.PublishToTopicAsync(topic, [OutgoingMessage.FromText("later") with { Delay = TimeSpan.FromHours(1) }])).Offsets.ShouldBe([5UL]);
        (await client.GetTopicStatsAsync(topic)).Groups[0].Delayed.ShouldBe(1);
        // Long polling: once default's ready messages are leased, nothing is ready (the last is delayed an hour) within the wait.
        (await client.ReceiveAsync(topic, "default", 10)).Select(d => d.Offset).ShouldBe([2UL, 3UL, 4UL]);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        (await client.ReceiveAsync(topic, "default", 10, null, TimeSpan.FromMilliseconds(400))).ShouldBeEmpty();
        sw.ElapsedMilliseconds.ShouldBeGreaterThanOrEqualTo(400);

        // Retention: the six retained messages (audit has acked none) fill max_messages 6, so reject-publish refuses
        // with 409; drop-oldest then drops offset 0 to take one more, and the stats show the settings and the count.
        (await client.ConfigureTopicAsync(topic, new TopicSettings { MaxMessages = 6 })).ShouldBeFalse();
        var full = await Should.ThrowAsync<RequestRejectedException>(() => client.PublishMessagesAsync(topic, [OutgoingMessage.FromText("z")]));
        (full.StatusCode, full.ServerError!.Contains("max_messages", StringComparison.Ordinal)).ShouldBe((System.Net.HttpStatusCode.Conflict, true));
        (await client.ConfigureTopicAsync(topic, new TopicSettings { Overflow = TopicOverflow.DropOldest, MaxAge = TimeSpan.FromHours(1), Expire = TopicExpiry.Drop }))
            .ShouldBeFalse();
        (await client.PublishMessagesAsync(topic, [OutgoingMessage.FromText("z")])).FirstOffset.ShouldBe(6UL);
        var retained = await client.GetTopicStatsAsync(topic);
        (retained.Head, retained.Messages, retained.MaxMessages, retained.MaxBytes, retained.MaxAgeMs, retained.Overflow, retained.Expire,
            retained.OverflowDroppedTotal, retained.ExpiredTotal).ShouldBe((1UL, 6L, 6L, 0L, 3_600_000L, "drop-oldest", "drop", 1L, 0L));
        (await Should.ThrowAsync<RequestRejectedException>(() => client.ConfigureTopicAsync(topic, new TopicSettings { MaxMessages = -1 })))
            .ServerError.ShouldBe("\"max_messages\" must be an integer between 0 and 10000000");

        (await Should.ThrowAsync<RequestRejectedException>(() => client.ReceiveAsync(topic, "nobody"))).Message.ShouldContain("no such consumer group");

        // Deleting groups: audit (which acked nothing) goes, then a repeat finds it gone; default, the last, stays.
        (await client.DeleteGroupAsync(topic, "audit")).ShouldBeTrue();
        (await client.DeleteGroupAsync(topic, "audit")).ShouldBeFalse();
        (await client.GetTopicStatsAsync(topic)).Groups.Select(g => g.Group).ShouldBe(["default"]);
        (await Should.ThrowAsync<RequestRejectedException>(() => client.DeleteGroupAsync(topic, "default"))).StatusCode.ShouldBe(System.Net.HttpStatusCode.Conflict);
        await Should.ThrowAsync<TopicNotFoundException>(() => client.DeleteGroupAsync("no such topic", "default"));
        await client.DeleteTopicAsync(topic);
        await Should.ThrowAsync<TopicNotFoundException>(() => client.GetTopicStatsAsync(topic));
        await Should.ThrowAsync<TopicNotFoundException>(() => client.ReceiveAsync(topic));
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
}

/// <summary>Compares publish results by their offsets, in order, and duplicates.</summary>
internal sealed class IdempotentPublishComparer : IEqualityComparer<IdempotentPublishResult>
{
    public bool Equals(IdempotentPublishResult? x, IdempotentPublishResult? y) =>
        x is not null && y is not null && x.Offsets.SequenceEqual(y.Offsets) && x.Duplicates == y.Duplicates;

    public int GetHashCode(IdempotentPublishResult obj) => obj.Duplicates;
}

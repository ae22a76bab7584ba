using System.Net;

namespace RaftMQ.Client.Tests;

/// <summary>PublishMessagesAsync and PopMessagesAsync: binary payloads with headers, offsets and publish times.</summary>
[Collection(RealClusters.Name)]
public sealed class MessageClusterTests
{
    private static KeyValuePair<string, string> H(string name, string value) => new(name, value);

    [Fact]
    public async Task Binary_messages_with_headers_round_trip_through_a_follower_with_offsets_and_times()
    {
        await using var cluster = TestCluster.Create(3, "--request-timeout-ms", "8000");
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderAsync();
        using var client = RealClusters.Client(cluster.Url((leader + 1) % 3, "/"));
        await client.CreateTopicAsync("bin/t");
        var before = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

        var all = Enumerable.Range(0, 256).Select(i => (byte)i).ToArray();
        (await client.PublishMessagesAsync("bin/t", [new OutgoingMessage(all, [H("content-type", "application/octet-stream"), H("x-n", "é")])]))
            .ShouldBe(new PublishResult(1, 0));
        await client.PublishAsync("bin/t", "string model");
        (await client.PublishMessagesAsync("bin/t", [OutgoingMessage.FromText("a"), new OutgoingMessage(new byte[] { 0xFF })]))
            .ShouldBe(new PublishResult(2, 2));

        var popped = await client.PopMessagesAsync("bin/t", 10);
        popped.Select(m => m.Offset).ShouldBe([0UL, 1UL, 2UL, 3UL]);
        popped[0].Payload.ShouldBe(all);
        popped[0].Headers.ShouldBe([H("content-type", "application/octet-stream"), H("x-n", "é")]);
        popped[0].TimestampMs.ShouldBeInRange(before - 5_000, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() + 5_000);
        popped[1].Text.ShouldBe("string model");
        popped[1].Timestamp.ShouldBeNull();
        popped[2].Text.ShouldBe("a");
        popped[2].TimestampMs.ShouldBeGreaterThanOrEqualTo(popped[0].TimestampMs);
        popped[3].Payload.ShouldBe(new byte[] { 0xFF });
        (await client.PopMessagesAsync("bin/t", 10)).ShouldBeEmpty();

        await Should.ThrowAsync<TopicNotFoundException>(() => client.PublishMessagesAsync("missing", [OutgoingMessage.FromText("x")]));
        await Should.ThrowAsync<TopicNotFoundException>(() => client.PopMessagesAsync("missing", 1));
        var badHeader = await Should.ThrowAsync<RequestRejectedException>(() =>
            client.PublishMessagesAsync("bin/t", [OutgoingMessage.FromText("x", [H("bad name", "v")])]));
        badHeader.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        badHeader.ServerError!.ShouldContain("token");
        (await Should.ThrowAsync<RequestRejectedException>(() => client.PublishMessagesAsync("bin/t", [new OutgoingMessage(new byte[64 * 1024 + 1])])))
            .StatusCode.ShouldBe(HttpStatusCode.RequestEntityTooLarge);
        (await client.PopMessagesAsync("bin/t", 10)).ShouldBeEmpty();
    }

    [Fact]
    public void Bad_arguments_fail_before_any_request()
    {
        using var client = new RaftMQClient([new Uri("http://127.0.0.1:1")]);
        Should.Throw<ArgumentNullException>(() => client.PublishMessagesAsync("t", null!));
        Should.Throw<ArgumentException>(() => client.PublishMessagesAsync("t", []));
        Should.Throw<ArgumentException>(() => client.PublishMessagesAsync("t", [OutgoingMessage.FromText("a"), null!]));
        Should.Throw<ArgumentException>(() => client.PublishMessagesAsync("", [OutgoingMessage.FromText("a")]));
        Should.Throw<ArgumentException>(() => client.PublishMessagesAsync("t", [.. Enumerable.Repeat(new OutgoingMessage(new byte[60_000]), 20)]))
            .Message.ShouldContain("request limit");
        Should.Throw<ArgumentOutOfRangeException>(() => client.PopMessagesAsync("t", 0));
        Should.Throw<ArgumentException>(() => client.PopMessagesAsync("", 1));
    }
}

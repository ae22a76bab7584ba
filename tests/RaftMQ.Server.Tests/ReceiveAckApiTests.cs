using System.Net;
using System.Text.Json.Nodes;

using static RaftMQ.Server.Tests.V1Api;

namespace RaftMQ.Server.Tests;

/// <summary>
/// A receive that acks the consumer's previous batch (<c>"ack"</c> in the receive body) through a real 3-node
/// cluster: one request and one log entry per cycle, stale and foreign receipts reported, the acks applied at once by
/// a waiting receive, the dead-letter receive alike, and bad receipts refused.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ReceiveAckApiTests
{
    private static string[] ReceiptsOf(JsonObject answer) => [.. Messages(answer).Select(m => m!["receipt"]!.GetValue<string>())];

    private static string Ack(IEnumerable<string> receipts) => $"[{string.Join(',', receipts.Select(r => $"\"{r}\""))}]";

    private static string[] Stale(JsonObject answer) => [.. answer["stale"]!.AsArray().Select(s => s!.GetValue<string>())];

    /// <summary>A node's last log index and term (GET /v1/metrics): a new term's leader adds an entry of its own.</summary>
    private static async Task<(long LastIndex, long Term)> LogAsync(TestCluster cluster, int node)
    {
        var (status, text) = await cluster.SendAsync(node, HttpMethod.Get, "/v1/metrics");
        status.ShouldBe(HttpStatusCode.OK, text);
        var json = JsonNode.Parse(text)!;
        return (json["last_index"]!.GetValue<long>(), json["term"]!.GetValue<long>());
    }

    [Fact]
    public async Task A_receive_acks_the_previous_batch_in_the_same_entry_and_a_waiting_one_applies_its_acks_at_once()
    {
        await using var cluster = TestCluster.Create(3, "--request-timeout-ms", "8000");
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderAsync();
        var follower = Enumerable.Range(0, 3).First(i => i != leader);
        const string topic = "cycle";
        await Ok(cluster, leader, HttpMethod.Put, Path(topic), """{"max_deliveries": 1}""", HttpStatusCode.Created);
        await Ok(cluster, leader, HttpMethod.Put, Path(topic, "groups/audit"), """{"start": "earliest"}""", HttpStatusCode.Created);
        await Ok(cluster, leader, HttpMethod.Post, Path(topic, "publish"), """{"messages": [{"body": "a"}, {"body": "b"}, {"body": "c"}, {"body": "d"}]}""");

        var first = await Ok(cluster, follower, HttpMethod.Post, Path(topic, "receive"), """{"max": 2}""");
        first.ContainsKey("acked").ShouldBeFalse("a receive without acks answers as before");
        var batch = ReceiptsOf(first);
        batch.Length.ShouldBe(2);

        // The next receive carries the acks of the batch: one request, one log entry (through a follower, forwarded).
        var before = await LogAsync(cluster, leader);
        var next = await Ok(cluster, follower, HttpMethod.Post, Path(topic, "receive"), $$"""{"max": 2, "ack": {{Ack(batch)}}}""");
        var after = await LogAsync(cluster, leader);
        (after.LastIndex - before.LastIndex).ShouldBeInRange(1, 1 + after.Term - before.Term, "the ack and the receive are one entry");
        next["acked"]!.GetValue<int>().ShouldBe(2);
        Stale(next).ShouldBeEmpty();
        Messages(next).Select(m => m!["body"]!.GetValue<string>()).ShouldBe(["c", "d"]);
        var group = (await Ok(cluster, leader, HttpMethod.Get, Path(topic)))["groups"]!.AsArray().Single(g => g!["group"]!.GetValue<string>() == "default")!;
        (group["acked_total"]!.GetValue<long>(), group["leased"]!.GetValue<int>()).ShouldBe((2L, 2));

        // Acked receipts again, and a receipt of another group at the same offset: stale, not applied; the receive
        // still happens (and finds nothing: c and d are leased).
        var audit = ReceiptsOf(await Ok(cluster, leader, HttpMethod.Post, Path(topic, "receive"), """{"group": "audit", "max": 1}""")).Single();
        var stale = await Ok(cluster, leader, HttpMethod.Post, Path(topic, "receive"), $$"""{"max": 2, "ack": {{Ack([.. batch, audit])}}}""");
        stale["acked"]!.GetValue<int>().ShouldBe(0);
        string[] expected = [audit, .. batch];
        Stale(stale).Order(StringComparer.Ordinal).ShouldBe(expected.Order(StringComparer.Ordinal));
        Messages(stale).ShouldBeEmpty();
        // An empty "ack" is a plain receive, answered with the ack fields.
        var empty = await Ok(cluster, leader, HttpMethod.Post, Path(topic, "receive"), """{"max": 2, "ack": []}""");
        (empty["acked"]!.GetValue<int>(), Stale(empty).Length, Messages(empty).Count).ShouldBe((0, 0, 0));

        // A waiting receive applies its acks at once, not when its wait ends: c and d are acked while it still waits.
        var waiting = Ok(cluster, follower, HttpMethod.Post, Path(topic, "receive"), $$"""{"max": 5, "wait_ms": 8000, "ack": {{Ack(ReceiptsOf(next))}}}""");
        (await Eventually.TrueAsync(async () =>
                (await Ok(cluster, leader, HttpMethod.Get, Path(topic)))["groups"]!.AsArray().Any(g => g!["group"]!.GetValue<string>() == "default" && g["acked_total"]!.GetValue<long>() == 4),
            TimeSpan.FromSeconds(6), TimeSpan.FromMilliseconds(50)))
            .ShouldBeTrue("the acks were applied while the receive waited");
        waiting.IsCompleted.ShouldBeFalse("nothing was ready: the receive is still waiting");
        await Ok(cluster, leader, HttpMethod.Post, Path(topic, "publish"), """{"messages": [{"body": "e"}]}""");
        var woken = await waiting;
        woken["acked"]!.GetValue<int>().ShouldBe(2);
        Stale(woken).ShouldBeEmpty();
        var e = Messages(woken).Single()!;
        e["body"]!.GetValue<string>().ShouldBe("e");

        // The dead-letter receive takes acks the same way: e is nacked at its delivery limit, then received and acked
        // there in one receive.
        (await Ok(cluster, leader, HttpMethod.Post, Path(topic, "nack"), $$"""{"receipts": ["{{e["receipt"]!.GetValue<string>()}}"]}"""))["nacked"]!.GetValue<int>().ShouldBe(1);
        var letter = ReceiptsOf(await Ok(cluster, follower, HttpMethod.Post, Path(topic, "dead-letters/receive"), """{"max": 1}""")).Single();
        var settled = await Ok(cluster, follower, HttpMethod.Post, Path(topic, "dead-letters/receive"), $$"""{"max": 1, "ack": ["{{letter}}"]}""");
        (settled["acked"]!.GetValue<int>(), Messages(settled).Count).ShouldBe((1, 0));
        (await Ok(cluster, leader, HttpMethod.Get, Path(topic, "dead-letters")))["messages"]!.GetValue<long>().ShouldBe(0);

        // Bad acks: 400 with the field named, nothing proposed.
        before = await LogAsync(cluster, leader);
        (await Refused(cluster, leader, HttpMethod.Post, Path(topic, "receive"), """{"ack": "x"}""", HttpStatusCode.BadRequest))
            .ShouldBe("\"ack\" must be an array of receipt strings");
        (await Refused(cluster, leader, HttpMethod.Post, Path(topic, "receive"), """{"ack": ["not a receipt"]}""", HttpStatusCode.BadRequest))
            .ShouldContain("\"ack\" receipt 0 is not a receipt");
        (await Refused(cluster, leader, HttpMethod.Post, Path(topic, "receive"), """{"ack": [1]}""", HttpStatusCode.BadRequest))
            .ShouldContain("\"ack\" receipt 0 is not a receipt");
        (await Refused(cluster, leader, HttpMethod.Post, Path(topic, "receive"), $$"""{"ack": {{Ack(Enumerable.Repeat(batch[0], 1_001))}}}""", HttpStatusCode.BadRequest))
            .ShouldContain("more than 1000 receipts");
        (await Refused(cluster, leader, HttpMethod.Post, Path(topic, "receive"), $$"""{"group": "nope", "ack": {{Ack(batch)}}}""", HttpStatusCode.NotFound))
            .ShouldContain("no such consumer group");
        after = await LogAsync(cluster, leader);
        (after.LastIndex - before.LastIndex).ShouldBeLessThanOrEqualTo(1 + after.Term - before.Term, "only the receive of the missing group reached the log");
    }
}
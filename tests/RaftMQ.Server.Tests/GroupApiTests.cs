using System.Net;
using System.Text;
using System.Text.Json.Nodes;

using static RaftMQ.Server.Tests.V1Api;

namespace RaftMQ.Server.Tests;

/// <summary>
/// At-least-once consumption through a real 3-node cluster: topics, groups, receive with a lease, ack, nack,
/// extend, redelivery after a lease expires, dead letters and redrive, peek, stats, and bad input.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class GroupApiTests
{
    /// <summary>A publish answer as "OFFSET,... duplicates N".</summary>
    private static string Published(JsonObject json) =>
        $"{string.Join(',', json["offsets"]!.AsArray().Select(o => o!.GetValue<long>()))} duplicates {json["duplicates"]!.GetValue<int>()}";

    [Fact]
    public async Task Deleting_a_group_frees_what_only_it_held_and_the_last_group_stays()
    {
        await using var cluster = TestCluster.Create(3, "--request-timeout-ms", "8000");
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderAsync();
        var follower = Enumerable.Range(0, 3).First(i => i != leader);
        const string topic = "fanout";
        await Ok(cluster, leader, HttpMethod.Put, Path(topic), "{}", HttpStatusCode.Created);
        await Ok(cluster, leader, HttpMethod.Put, Path(topic, "groups/billing"), "{}", HttpStatusCode.Created);
        // A trailing slash names the same group, as routing ignores it (not an empty group name).
        (await Ok(cluster, follower, HttpMethod.Put, Path(topic, "groups/audit/"), null, HttpStatusCode.Created))["created"]!.GetValue<bool>().ShouldBeTrue();
        (await Ok(cluster, leader, HttpMethod.Get, Path(topic)))["groups"]!.AsArray().Select(g => g!["group"]!.GetValue<string>()).ShouldBe(["default", "billing", "audit"]);
        (await Ok(cluster, follower, HttpMethod.Delete, Path(topic, "groups/audit/")))["deleted"]!.GetValue<bool>().ShouldBeTrue();
        await Ok(cluster, leader, HttpMethod.Post, Path(topic, "publish"), """{"messages": [{"body": "a"}, {"body": "b"}]}""");
        var got = Messages(await Ok(cluster, leader, HttpMethod.Post, Path(topic, "receive"), """{"group": "billing", "max": 2}"""));
        var receipts = string.Join(',', got.Select(m => $"\"{m!["receipt"]!.GetValue<string>()}\""));
        (await Ok(cluster, leader, HttpMethod.Post, Path(topic, "ack"), $$"""{"group": "billing", "receipts": [{{receipts}}]}"""))["acked"]!.GetValue<int>().ShouldBe(2);
        // default was never consumed: it still holds both messages.
        (await Ok(cluster, leader, HttpMethod.Get, Path(topic)))["messages"]!.GetValue<long>().ShouldBe(2);

        // Before its first dead letter a topic's dead letters read as none (peek), are not there to lease, and
        // cannot be redriven themselves.
        Messages(await Ok(cluster, follower, HttpMethod.Get, Path(topic, "dead-letters/peek") + "?max=10")).ShouldBeEmpty();
        (await Refused(cluster, leader, HttpMethod.Post, Path(topic, "dead-letters/receive"), "{}", HttpStatusCode.NotFound)).ShouldContain("no dead letters");
        (await Refused(cluster, leader, HttpMethod.Post, Path(topic, "dead-letters/redrive"), "{}", HttpStatusCode.BadRequest)).ShouldContain("redrive the topic");

        (await Ok(cluster, follower, HttpMethod.Delete, Path(topic, "groups/default")))["deleted"]!.GetValue<bool>().ShouldBeTrue();
        var stats = await Ok(cluster, leader, HttpMethod.Get, Path(topic));
        stats["messages"]!.GetValue<long>().ShouldBe(0);
        stats["groups"]!.AsArray().Select(g => g!["group"]!.GetValue<string>()).ShouldBe(["billing"]);
        // The RRMQ pop receives and acks on default: with it gone there is nothing to pop.
        var (status, _) = await cluster.SendAsync(leader, HttpMethod.Get, $"/message/{topic}");
        status.ShouldBe(HttpStatusCode.NotFound);
        (await Refused(cluster, leader, HttpMethod.Post, "/v1/topics/fanout/messages/pop", "{}", HttpStatusCode.NotFound)).ShouldContain("default");

        (await Refused(cluster, leader, HttpMethod.Delete, Path(topic, "groups/default"), null, HttpStatusCode.NotFound)).ShouldContain("no such consumer group");
        (await Refused(cluster, leader, HttpMethod.Delete, Path(topic, "groups/billing"), null, HttpStatusCode.Conflict)).ShouldContain("last");
        (await Refused(cluster, leader, HttpMethod.Delete, Path("missing", "groups/billing"), null, HttpStatusCode.NotFound)).ShouldContain("no such topic");
        (await Refused(cluster, leader, HttpMethod.Delete, Path(topic, "groups/bad%20name"), null, HttpStatusCode.BadRequest)).ShouldNotBeEmpty();
    }

    [Fact]
    public async Task Receive_ack_redelivery_dead_letters_and_redrive_through_followers()
    {
        await using var cluster = TestCluster.Create(3, "--request-timeout-ms", "8000");
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderAsync();
        var follower = Enumerable.Range(0, 3).First(i => i != leader);
        const string topic = "jobs/eu";

        (await Ok(cluster, follower, HttpMethod.Put, Path(topic), """{"max_deliveries": 2}""", HttpStatusCode.Created))["created"]!.GetValue<bool>().ShouldBeTrue();
        (await Ok(cluster, leader, HttpMethod.Put, Path(topic), """{"max_deliveries": 2}"""))["created"]!.GetValue<bool>().ShouldBeFalse();
        var binary = new byte[] { 0, 255, 128, 1 };
        var published = await Ok(cluster, follower, HttpMethod.Post, Path(topic, "publish"),
            $$$"""{"messages": [{"body": "first ✓", "headers": {"kind": "a"}}, {"body_base64": "{{{Convert.ToBase64String(binary)}}}"}, {"body": "third"}]}""");
        published["offsets"]!.AsArray().Select(o => o!.GetValue<long>()).ShouldBe([0, 1, 2]);
        published["duplicates"]!.GetValue<int>().ShouldBe(0);

        // Three leased through a follower (forwarded, the lease measured by the leader's clock).
        var got = Messages(await Ok(cluster, follower, HttpMethod.Post, Path(topic, "receive"), """{"group": "default", "max": 3, "lease_ms": 1500}"""));
        got.Count.ShouldBe(3);
        got.Select(m => m!["delivery_count"]!.GetValue<int>()).ShouldBe([1, 1, 1]);
        got[0]!["body"]!.GetValue<string>().ShouldBe("first ✓");
        got[0]!["headers"]!["kind"]!.GetValue<string>().ShouldBe("a");
        got[1]!["body"].ShouldBeNull();
        Convert.FromBase64String(got[1]!["body_base64"]!.GetValue<string>()).ShouldBe(binary);
        got[0]!["published_at"]!.GetValue<long>().ShouldBeGreaterThan(0);
        var receipts = got.Select(m => m!["receipt"]!.GetValue<string>()).ToArray();

        var acked = await Ok(cluster, leader, HttpMethod.Post, Path(topic, "ack"), $$"""{"receipts": ["{{receipts[0]}}", "{{receipts[2]}}", "{{receipts[0]}}"]}""");
        acked["acked"]!.GetValue<int>().ShouldBe(2);
        acked["stale"]!.AsArray().Select(s => s!.GetValue<string>()).ShouldBe([receipts[0]]);
        var extended = await Ok(cluster, follower, HttpMethod.Post, Path(topic, "extend"), $$"""{"receipts": ["{{receipts[1]}}"], "lease_ms": 1500}""");
        extended["extended"]!.GetValue<int>().ShouldBe(1);

        // Nobody acks offset 1: once its lease ends it is delivered again, with delivery_count 2.
        JsonNode? again = null;
        (await Eventually.TrueAsync(async () =>
        {
            var r = Messages(await Ok(cluster, follower, HttpMethod.Post, Path(topic, "receive"), """{"max": 1, "lease_ms": 60000}"""));
            again = r.SingleOrDefault();
            return again is not null;
        }, TimeSpan.FromSeconds(20), TimeSpan.FromMilliseconds(100))).ShouldBeTrue();
        (again!["offset"]!.GetValue<long>(), again["delivery_count"]!.GetValue<int>()).ShouldBe((1L, 2));
        // The first consumer's receipt is stale now: refused, not applied.
        (await Ok(cluster, leader, HttpMethod.Post, Path(topic, "ack"), $$"""{"receipts": ["{{receipts[1]}}"]}"""))["acked"]!.GetValue<int>().ShouldBe(0);

        // The delivery-count histogram: offset 1 is unacked on its second delivery, and one more published is unacked
        // and never delivered.
        (await Ok(cluster, follower, HttpMethod.Post, Path(topic, "publish"), """{"messages": [{"body": "fourth"}]}"""))["offsets"]!.AsArray().Single()!.GetValue<long>().ShouldBe(3);
        var counts = (await Ok(cluster, follower, HttpMethod.Get, Path(topic)))["groups"]!.AsArray().Single()!["delivery_counts"]!.AsObject();
        counts.Select(c => (c.Key, c.Value!.GetValue<long>())).ShouldBe(
            [("0", 1L), ("1", 0L), ("2", 1L), ("3", 0L), ("4", 0L), ("5-9", 0L), ("10-19", 0L), ("20-49", 0L), ("50-99", 0L), ("100+", 0L)]);
        var fourth = Messages(await Ok(cluster, leader, HttpMethod.Post, Path(topic, "receive"), """{"max": 1}""")).Single()!;
        (await Ok(cluster, leader, HttpMethod.Post, Path(topic, "ack"), $$"""{"receipts": ["{{fourth["receipt"]!.GetValue<string>()}}"]}"""))["acked"]!.GetValue<int>().ShouldBe(1);

        // A nack at the delivery limit dead-letters it, with its story.
        var nacked = await Ok(cluster, follower, HttpMethod.Post, Path(topic, "nack"),
            $$"""{"group": "default", "receipts": ["{{again["receipt"]!.GetValue<string>()}}"], "delay_ms": 0, "error": "cannot parse"}""");
        nacked["nacked"]!.GetValue<int>().ShouldBe(1);
        var stats = await Ok(cluster, follower, HttpMethod.Get, Path(topic));
        stats["dead_lettered"]!.GetValue<long>().ShouldBe(1);
        stats["max_deliveries"]!.GetValue<int>().ShouldBe(2);
        var group = stats["groups"]!.AsArray().Single()!;
        (group["group"]!.GetValue<string>(), group["ready"]!.GetValue<long>(), group["leased"]!.GetValue<int>(), group["unacked"]!.GetValue<long>())
            .ShouldBe(("default", 0L, 0, 0L));
        group["dead_lettered_total"]!.GetValue<long>().ShouldBe(1);

        var letter = Messages(await Ok(cluster, leader, HttpMethod.Get, Path(topic, "dead-letters/peek") + "?max=10")).Single()!;
        Convert.FromBase64String(letter["body_base64"]!.GetValue<string>()).ShouldBe(binary);
        letter["headers"]!["raftmq-delivery-count"]!.GetValue<string>().ShouldBe("2");
        letter["headers"]!["raftmq-last-error"]!.GetValue<string>().ShouldBe("cannot parse");
        letter["headers"]!["raftmq-original-offset"]!.GetValue<string>().ShouldBe("1");

        var dead = await Ok(cluster, leader, HttpMethod.Get, Path(topic, "dead-letters"));
        (dead["topic"]!.GetValue<string>(), dead["dead_letters"]!.GetValue<bool>(), dead["messages"]!.GetValue<long>()).ShouldBe((topic, true, 1L));
        (await Ok(cluster, follower, HttpMethod.Post, Path(topic, "redrive"), """{"max": 10}"""))["redriven"]!.GetValue<int>().ShouldBe(1);
        var back = Messages(await Ok(cluster, leader, HttpMethod.Post, Path(topic, "receive"), """{"max": 10}""")).Single()!;
        (back["offset"]!.GetValue<long>(), back["delivery_count"]!.GetValue<int>()).ShouldBe((4L, 1));
        Convert.FromBase64String(back["body_base64"]!.GetValue<string>()).ShouldBe(binary);
        (await Ok(cluster, leader, HttpMethod.Get, Path(topic)))["dead_lettered"]!.GetValue<long>().ShouldBe(0);

        // A second group sees every retained message; the RRMQ pop is a receive and ack on "default".
        (await Ok(cluster, follower, HttpMethod.Put, Path(topic, "groups/audit"), """{"start": "earliest"}""", HttpStatusCode.Created))["created"]!.GetValue<bool>().ShouldBeTrue();
        (await Ok(cluster, follower, HttpMethod.Put, Path(topic, "groups/audit"), """{"start": "latest"}"""))["created"]!.GetValue<bool>().ShouldBeFalse();
        (await cluster.PublishAsync(follower, topic, "rrmq")).Status.ShouldBe(HttpStatusCode.OK);
        (await cluster.PopAsync(follower, topic)).Body.ShouldBe("""{"success":true,"message":"rrmq"}""");
        Messages(await Ok(cluster, leader, HttpMethod.Post, Path(topic, "receive"), """{"group": "audit", "max": 10}"""))
            .Select(m => m!["offset"]!.GetValue<long>()).ShouldBe([4, 5]);
        Messages(await Ok(cluster, leader, HttpMethod.Get, Path(topic, "peek") + "?from=5")).Single()!["body"]!.GetValue<string>().ShouldBe("rrmq");

        (await Ok(cluster, follower, HttpMethod.Delete, Path(topic))).Count.ShouldBe(1);
        (await Refused(cluster, leader, HttpMethod.Get, Path(topic), null, HttpStatusCode.NotFound)).ShouldBe("no such topic");
        (await Refused(cluster, leader, HttpMethod.Get, Path(topic, "dead-letters/peek"), null, HttpStatusCode.NotFound)).ShouldBe("no such topic");
        (await Refused(cluster, leader, HttpMethod.Get, Path(topic, "dead-letters"), null, HttpStatusCode.NotFound)).ShouldContain("no dead letters");
    }

    [Fact]
    public async Task Leases_survive_the_leaders_death_and_every_message_is_acked_once()
    {
        await using var cluster = TestCluster.Create(3, "--request-timeout-ms", "8000");
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderAsync();
        var other = (leader + 1) % 3;
        const string topic = "failover";
        await Ok(cluster, other, HttpMethod.Put, Path(topic), null, HttpStatusCode.Created);
        var messages = string.Join(", ", Enumerable.Range(0, 10).Select(i => $$"""{"body": "m{{i}}"}"""));
        await Ok(cluster, other, HttpMethod.Post, Path(topic, "publish"), $$"""{"messages": [{{messages}}]}""");
        var got = Messages(await Ok(cluster, other, HttpMethod.Post, Path(topic, "receive"), """{"max": 6, "lease_ms": 120000}"""));
        got.Count.ShouldBe(6);

        // The leader dies with six messages leased: the new leader holds the same leases.
        await cluster.Node(leader).KillAsync();
        await cluster.WaitForLeaderAsync(not: leader);
        var rest = Messages(await Ok(cluster, other, HttpMethod.Post, Path(topic, "receive"), """{"max": 10, "lease_ms": 120000}"""));
        rest.Select(m => m!["body"]!.GetValue<string>()).ShouldBe(Enumerable.Range(6, 4).Select(i => $"m{i}"), "the leased six are not delivered again");
        var receipts = string.Join(", ", got.Concat(rest).Select(m => $"\"{m!["receipt"]!.GetValue<string>()}\""));
        var acked = await Ok(cluster, other, HttpMethod.Post, Path(topic, "ack"), $$"""{"receipts": [{{receipts}}]}""");
        (acked["acked"]!.GetValue<int>(), acked["stale"]!.AsArray().Count).ShouldBe((10, 0));
        var group = (await Ok(cluster, other, HttpMethod.Get, Path(topic)))["groups"]!.AsArray().Single()!;
        (group["unacked"]!.GetValue<long>(), group["acked_total"]!.GetValue<long>()).ShouldBe((0L, 10L));
    }

    [Fact]
    public async Task A_retried_publish_whose_answer_was_lost_is_stored_once_until_the_window_expires()
    {
        await using var cluster = TestCluster.Create(3, "--request-timeout-ms", "8000");
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderAsync();
        var follower = Enumerable.Range(0, 3).First(i => i != leader);
        const string topic = "orders";
        await Ok(cluster, follower, HttpMethod.Put, Path(topic), """{"dedup_window_ms": 600000}""", HttpStatusCode.Created);
        const string batch = """{"messages": [{"body": "order 1", "id": "o-1"}, {"body": "order 2", "id": "o-2"}]}""";
        var first = await Ok(cluster, follower, HttpMethod.Post, Path(topic, "publish"), batch);
        Published(first).ShouldBe("0,1 duplicates 0");

        // The producer never saw that answer and retries, through the leader and then, after the leader died,
        // through the new one: each retry is answered with the original offsets and stores nothing.
        var again = await Ok(cluster, leader, HttpMethod.Post, Path(topic, "publish"), batch);
        Published(again).ShouldBe("0,1 duplicates 2");
        await cluster.Node(leader).KillAsync();
        var next = await cluster.WaitForLeaderAsync(not: leader);
        var third = await Ok(cluster, next, HttpMethod.Post, Path(topic, "publish"),
            """{"messages": [{"body": "order 2", "id": "o-2"}, {"body": "order 3", "id": "o-3"}]}""");
        Published(third).ShouldBe("1,2 duplicates 1");
        Messages(await Ok(cluster, next, HttpMethod.Get, Path(topic, "peek") + "?max=10")).Select(m => m!["body"]!.GetValue<string>())
            .ShouldBe(["order 1", "order 2", "order 3"]);
        var stats = await Ok(cluster, next, HttpMethod.Get, Path(topic));
        (stats["published_total"]!.GetValue<long>(), stats["dedup_ids"]!.GetValue<int>(), stats["dedup_window_ms"]!.GetValue<long>()).ShouldBe((3L, 3, 600000L));

        // A short window: the id is a duplicate until the leader's clock has moved past it, then stored again.
        await Ok(cluster, next, HttpMethod.Put, Path(topic), """{"dedup_window_ms": 300}""");
        const string retry = """{"messages": [{"body": "late", "id": "late-1"}]}""";
        (await Ok(cluster, next, HttpMethod.Post, Path(topic, "publish"), retry))["duplicates"]!.GetValue<int>().ShouldBe(0);
        JsonObject? stored = null;
        (await Eventually.TrueAsync(async () =>
        {
            stored = await Ok(cluster, next, HttpMethod.Post, Path(topic, "publish"), retry);
            return stored["duplicates"]!.GetValue<int>() == 0;
        }, TimeSpan.FromSeconds(20), TimeSpan.FromMilliseconds(50))).ShouldBeTrue();
        stored!["offsets"]!.AsArray().Single()!.GetValue<long>().ShouldBe(4);
    }

    [Fact]
    public async Task A_delayed_message_is_delivered_once_its_delay_is_over_and_not_before()
    {
        await using var cluster = TestCluster.Create(3, "--request-timeout-ms", "8000");
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderAsync();
        var follower = (leader + 1) % 3;
        const string topic = "reminders";
        await Ok(cluster, follower, HttpMethod.Put, Path(topic), null, HttpStatusCode.Created);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        await Ok(cluster, follower, HttpMethod.Post, Path(topic, "publish"), """{"messages": [{"body": "later", "delay_ms": 1500}, {"body": "now"}]}""");
        var first = Messages(await Ok(cluster, follower, HttpMethod.Post, Path(topic, "receive"), """{"max": 10}"""));
        first.Select(m => m!["body"]!.GetValue<string>()).ShouldBe(["now"]);
        var group = (await Ok(cluster, leader, HttpMethod.Get, Path(topic)))["groups"]!.AsArray().Single()!;
        (group["delayed"]!.GetValue<int>(), group["ready"]!.GetValue<long>()).ShouldBe((1, 0L));

        JsonNode? later = null;
        (await Eventually.TrueAsync(async () =>
        {
            later = Messages(await Ok(cluster, follower, HttpMethod.Post, Path(topic, "receive"), """{"max": 10}""")).SingleOrDefault();
            return later is not null;
        }, TimeSpan.FromSeconds(20), TimeSpan.FromMilliseconds(50))).ShouldBeTrue();
        // Not before its time: the leader's clock and this one both run at least 1.5 s between publish and delivery.
        sw.ElapsedMilliseconds.ShouldBeGreaterThanOrEqualTo(1500);
        (later!["body"]!.GetValue<string>(), later["delivery_count"]!.GetValue<int>(), later["offset"]!.GetValue<long>()).ShouldBe(("later", 1, 0L));
    }

    [Fact]
    public async Task A_delayed_message_and_an_ended_lease_reach_the_RRMQ_pop_with_nothing_but_pops_proposed()
    {
        await using var cluster = TestCluster.Create(3, "--request-timeout-ms", "8000");
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderAsync();
        var follower = (leader + 1) % 3;
        const string topic = "popped-later";
        await Ok(cluster, follower, HttpMethod.Put, Path(topic), null, HttpStatusCode.Created);
        await Ok(cluster, follower, HttpMethod.Post, Path(topic, "publish"), """{"messages": [{"body": "leased"}, {"body": "later", "delay_ms": 1000}]}""");
        Messages(await Ok(cluster, leader, HttpMethod.Post, Path(topic, "receive"), """{"max": 10, "lease_ms": 1000}"""))
            .Select(m => m!["body"]!.GetValue<string>()).ShouldBe(["leased"]); // its consumer goes away

        // From here on only pops are proposed: each carries the leader's time, so the delay and the lease end.
        var popped = new List<string>();
        (await Eventually.TrueAsync(async () =>
        {
            var (status, body) = await cluster.PopAsync(follower, topic);
            if (status == HttpStatusCode.OK) popped.Add(JsonNode.Parse(body)!["message"]!.GetValue<string>());
            else status.ShouldBe(HttpStatusCode.NotFound); // empty for now
            return popped.Count == 2;
        }, TimeSpan.FromSeconds(20), TimeSpan.FromMilliseconds(50))).ShouldBeTrue($"popped: {string.Join(", ", popped)}");
        popped.Order().ShouldBe(["later", "leased"]);
    }

    [Fact]
    public async Task A_waiting_receive_is_answered_by_a_publish_or_an_ended_lease_and_otherwise_when_its_wait_is_over()
    {
        await using var cluster = TestCluster.Create(3, "--request-timeout-ms", "8000");
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderAsync();
        var follower = (leader + 1) % 3;
        var other = (leader + 2) % 3;
        const string topic = "polled";
        await Ok(cluster, leader, HttpMethod.Put, Path(topic), null, HttpStatusCode.Created);

        // Nothing comes: the answer is an empty list once the wait is over, not before.
        var sw = System.Diagnostics.Stopwatch.StartNew();
        Messages(await Ok(cluster, follower, HttpMethod.Post, Path(topic, "receive"), """{"wait_ms": 700}""")).ShouldBeEmpty();
        sw.ElapsedMilliseconds.ShouldBeGreaterThanOrEqualTo(700);

        // A publish through another node answers a receive waiting on a follower.
        sw.Restart();
        var waiting = Ok(cluster, follower, HttpMethod.Post, Path(topic, "receive"), """{"wait_ms": 15000, "lease_ms": 500}""");
        await Ok(cluster, other, HttpMethod.Post, Path(topic, "publish"), """{"messages": [{"body": "hello"}]}""");
        var got = Messages(await waiting).Single()!;
        (got["body"]!.GetValue<string>(), got["delivery_count"]!.GetValue<int>()).ShouldBe(("hello", 1));
        sw.ElapsedMilliseconds.ShouldBeLessThan(15000);

        // Its lease of 500 ms ends unacked: a receive waiting on the leader gets it again without any new publish.
        sw.Restart();
        var again = Messages(await Ok(cluster, leader, HttpMethod.Post, Path(topic, "receive"), """{"wait_ms": 15000}""")).Single()!;
        (again["body"]!.GetValue<string>(), again["delivery_count"]!.GetValue<int>()).ShouldBe(("hello", 2));
        sw.ElapsedMilliseconds.ShouldBeLessThan(15000);
    }

    [Fact]
    public async Task Bad_input_gets_a_4xx_with_a_clear_error()
    {
        await using var cluster = TestCluster.Create(3, "--request-timeout-ms", "8000");
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderAsync();
        const string topic = "t";
        await Ok(cluster, leader, HttpMethod.Put, Path(topic), null, HttpStatusCode.Created);
        var receipt = "r0-1";

        (HttpMethod, string, string?, HttpStatusCode, string)[] cases =
        [
            (HttpMethod.Put, Path(topic), """{"max_messages": -1}""", HttpStatusCode.BadRequest, "\"max_messages\" must be an integer between 0 and 10000000"),
            (HttpMethod.Put, Path(topic), """{"max_bytes": 1.5}""", HttpStatusCode.BadRequest, "\"max_bytes\" must be an integer between 0 and 1073741824"),
            (HttpMethod.Put, Path(topic), """{"max_age_ms": 31536000001}""", HttpStatusCode.BadRequest, "\"max_age_ms\" must be an integer between 0 and 31536000000"),
            (HttpMethod.Put, Path(topic), """{"overflow": "drop-newest"}""", HttpStatusCode.BadRequest, "\"overflow\" must be \"reject-publish\" or \"drop-oldest\""),
            (HttpMethod.Put, Path(topic), """{"expire": 1}""", HttpStatusCode.BadRequest, "\"expire\" must be \"dead-letter\" or \"drop\""),
            (HttpMethod.Put, Path(topic), """{"max_messages": 5, "overflow": "sideways"}""", HttpStatusCode.BadRequest, "\"overflow\""),
            (HttpMethod.Put, Path(topic), """{"dedup_window_ms": -1}""", HttpStatusCode.BadRequest, "\"dedup_window_ms\" must be an integer between 0 and"),
            (HttpMethod.Put, Path(topic), """{"max_deliveries": 0}""", HttpStatusCode.BadRequest, "\"max_deliveries\" must be an integer between 1 and"),
            (HttpMethod.Put, Path(topic), """{"colour": "red"}""", HttpStatusCode.BadRequest, "unknown field \"colour\""),
            (HttpMethod.Put, "/topic", """{"topic": "x\u0000dlq"}""", HttpStatusCode.BadRequest, ""),
            (HttpMethod.Post, Path(topic, "publish"), """{"messages": [{"body": "a", "id": 7}]}""", HttpStatusCode.BadRequest, "message 0: \"id\" must be a string"),
            (HttpMethod.Post, Path(topic, "publish"), """{"messages": [{"body": "a", "id": ""}]}""", HttpStatusCode.BadRequest, "\"id\" must be 1 to 128 bytes"),
            (HttpMethod.Post, Path(topic, "publish"), """{"messages": [{"body": "a", "delay_ms": -1}]}""", HttpStatusCode.BadRequest, "message 0: \"delay_ms\" must be an integer between 0 and 86400000"),
            (HttpMethod.Post, Path(topic, "publish"), """{"messages": [{"body": "a", "delay_ms": 86400001}]}""", HttpStatusCode.BadRequest, "\"delay_ms\" must be an integer between 0 and"),
            (HttpMethod.Post, Path(topic, "publish"), """{"messages": [{"body": "a", "body_base64": "YQ=="}]}""", HttpStatusCode.BadRequest, "exactly one of"),
            (HttpMethod.Post, Path(topic, "publish"), """{"messages": []}""", HttpStatusCode.BadRequest, "must not be empty"),
            // A field given twice is refused, not read as its last value (nor headers merged): nothing is published.
            (HttpMethod.Post, Path(topic, "publish"), """{"messages": [{"body": "a"}], "messages": [{"body": "b"}, {"body": "c"}]}""", HttpStatusCode.BadRequest, "field \"messages\" appears twice"),
            (HttpMethod.Post, Path(topic, "publish"), """{"messages": [{"body": "a", "delay_ms": 0, "delay_ms": 5000}]}""", HttpStatusCode.BadRequest, "message 0: field \"delay_ms\" appears twice"),
            (HttpMethod.Post, Path(topic, "publish"), """{"messages": [{"body": "a", "id": "x", "id": "y"}]}""", HttpStatusCode.BadRequest, "message 0: field \"id\" appears twice"),
            (HttpMethod.Post, Path(topic, "publish"), """{"messages": [{"body": "a"}, {"body": "a", "headers": {"h": "1"}, "headers": {"k": "2"}}]}""", HttpStatusCode.BadRequest, "message 1: field \"headers\" appears twice"),
            (HttpMethod.Post, Path(topic, "receive"), """{"wait_ms": 20001}""", HttpStatusCode.BadRequest, "\"wait_ms\" must be an integer between 0 and 20000"),
            (HttpMethod.Post, Path(topic, "receive"), """{"max": 0}""", HttpStatusCode.BadRequest, "\"max\" must be an integer between 1 and 1000"),
            (HttpMethod.Post, Path(topic, "receive"), """{"lease_ms": 0}""", HttpStatusCode.BadRequest, "\"lease_ms\" must be an integer between 1 and"),
            (HttpMethod.Post, Path(topic, "receive"), """{"group": "no such"}""", HttpStatusCode.BadRequest, "\"group\""),
            (HttpMethod.Post, Path(topic, "receive"), """{"max": 1, "max": 2}""", HttpStatusCode.BadRequest, "appears twice"),
            (HttpMethod.Post, Path(topic, "receive"), """{"group": "ghost"}""", HttpStatusCode.NotFound, "no such consumer group \"ghost\""),
            (HttpMethod.Post, Path("missing", "receive"), "{}", HttpStatusCode.NotFound, "no such topic"),
            (HttpMethod.Post, Path(topic, "ack"), """{"receipts": ["not-a-receipt"]}""", HttpStatusCode.BadRequest, "receipt 0 is not a receipt"),
            (HttpMethod.Post, Path(topic, "ack"), """{"receipts": []}""", HttpStatusCode.BadRequest, "must not be empty"),
            (HttpMethod.Post, Path(topic, "ack"), "{}", HttpStatusCode.BadRequest, "missing field \"receipts\""),
            (HttpMethod.Post, Path(topic, "ack"), $$"""{"receipts": ["{{receipt}}"], "lease_ms": 5}""", HttpStatusCode.BadRequest, "unknown field \"lease_ms\""),
            (HttpMethod.Post, Path(topic, "nack"), $$"""{"receipts": ["{{receipt}}"], "delay_ms": -1}""", HttpStatusCode.BadRequest, "\"delay_ms\""),
            (HttpMethod.Post, Path(topic, "extend"), $$"""{"receipts": ["{{receipt}}"], "lease_ms": 999999999999}""", HttpStatusCode.BadRequest, "\"lease_ms\""),
            (HttpMethod.Get, Path(topic, "peek") + "?max=0", null, HttpStatusCode.BadRequest, "\"max\""),
            (HttpMethod.Get, Path(topic, "peek") + "?from=-1", null, HttpStatusCode.BadRequest, "\"from\""),
            (HttpMethod.Get, Path(topic, "peek") + "?colour=1", null, HttpStatusCode.BadRequest, "unknown query parameter"),
            (HttpMethod.Put, Path(topic, "groups/bad%20name"), null, HttpStatusCode.BadRequest, "group name"),
            (HttpMethod.Put, Path(topic, "groups/g"), """{"start": "middle"}""", HttpStatusCode.BadRequest, "\"start\" must be"),
            (HttpMethod.Post, Path(topic, "redrive"), """{"max": 0}""", HttpStatusCode.BadRequest, "\"max\""),
            (HttpMethod.Post, Path(topic, "receive"), "[1]", HttpStatusCode.BadRequest, "JSON object"),
            (HttpMethod.Post, Path(topic, "receive"), "{", HttpStatusCode.BadRequest, "not valid JSON"),
        ];
        foreach (var (method, path, body, status, error) in cases)
            (await Refused(cluster, leader, method, path, body, status)).ShouldContain(error, Case.Sensitive, $"{method} {path} {body}");

        // Nothing was applied: the topic is as created.
        var stats = await Ok(cluster, leader, HttpMethod.Get, Path(topic));
        (stats["tail"]!.GetValue<long>(), stats["max_deliveries"]!.GetValue<int>(), stats["groups"]!.AsArray().Count).ShouldBe((0L, 20, 1));
        (stats["max_messages"]!.GetValue<long>(), stats["max_bytes"]!.GetValue<long>(), stats["max_age_ms"]!.GetValue<long>(),
            stats["overflow"]!.GetValue<string>(), stats["expire"]!.GetValue<string>()).ShouldBe((0L, 0L, 0L, "reject-publish", "dead-letter"));
        // A receipt of the right form that names no delivery is stale, not an error.
        (await Ok(cluster, leader, HttpMethod.Post, Path(topic, "ack"), $$"""{"receipts": ["{{receipt}}"]}"""))["stale"]!.AsArray().Count.ShouldBe(1);
    }

    [Fact]
    public async Task A_receipt_of_one_group_is_stale_for_another_group_at_the_same_offset_and_count()
    {
        await using var cluster = TestCluster.Create(3, "--request-timeout-ms", "8000");
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderAsync();
        var follower = (leader + 1) % 3;
        const string topic = "fanout";
        await Ok(cluster, leader, HttpMethod.Put, Path(topic), null, HttpStatusCode.Created);
        await Ok(cluster, leader, HttpMethod.Put, Path(topic, "groups/billing"), null, HttpStatusCode.Created);
        await Ok(cluster, leader, HttpMethod.Post, Path(topic, "publish"), """{"messages": [{"body": "m"}]}""");
        var mine = Messages(await Ok(cluster, follower, HttpMethod.Post, Path(topic, "receive"), """{"group": "default", "lease_ms": 600000}""")).Single()!;
        var theirs = Messages(await Ok(cluster, follower, HttpMethod.Post, Path(topic, "receive"), """{"group": "billing", "lease_ms": 600000}""")).Single()!;
        (mine["offset"]!.GetValue<long>(), mine["delivery_count"]!.GetValue<int>()).ShouldBe((theirs["offset"]!.GetValue<long>(), theirs["delivery_count"]!.GetValue<int>()));
        var receipt = mine["receipt"]!.GetValue<string>();
        receipt.ShouldNotBe(theirs["receipt"]!.GetValue<string>());

        // default's receipt, given for billing (and the form without a group): stale, nothing acked in billing.
        foreach (var op in new[] { "ack", "nack", "extend" })
        {
            var answer = await Ok(cluster, follower, HttpMethod.Post, Path(topic, op), $$"""{"group": "billing", "receipts": ["{{receipt}}", "r0-1"]}""");
            answer["stale"]!.AsArray().Select(s => s!.GetValue<string>()).ShouldBe([receipt, "r0-1"], op);
        }
        var billing = (await Ok(cluster, leader, HttpMethod.Get, Path(topic)))["groups"]!.AsArray().Single(g => g!["group"]!.GetValue<string>() == "billing")!;
        (billing["leased"]!.GetValue<int>(), billing["acked_total"]!.GetValue<long>()).ShouldBe((1, 0L));
        // The dead letters of the topic are another topic, not there before the first dead letter.
        (await Refused(cluster, leader, HttpMethod.Post, Path(topic, "dead-letters/ack"), $$"""{"receipts": ["{{receipt}}"]}""", HttpStatusCode.NotFound)).ShouldContain("no dead letters");

        // Each receipt acks its own group's delivery.
        (await Ok(cluster, leader, HttpMethod.Post, Path(topic, "ack"), $$"""{"group": "billing", "receipts": ["{{theirs["receipt"]!.GetValue<string>()}}"]}"""))["acked"]!.GetValue<int>().ShouldBe(1);
        var acked = await Ok(cluster, leader, HttpMethod.Post, Path(topic, "ack"), $$"""{"receipts": ["{{receipt}}", "{{receipt}}"]}""");
        (acked["acked"]!.GetValue<int>(), acked["stale"]!.AsArray().Single()!.GetValue<string>()).ShouldBe((1, receipt));
    }

    [Fact]
    public async Task A_receipt_of_a_group_or_topic_deleted_and_created_again_is_stale_for_the_new_one()
    {
        await using var cluster = TestCluster.Create(3, "--request-timeout-ms", "8000");
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderAsync();
        var follower = (leader + 1) % 3;
        const string topic = "again";
        await Ok(cluster, leader, HttpMethod.Put, Path(topic), null, HttpStatusCode.Created);
        await Ok(cluster, leader, HttpMethod.Put, Path(topic, "groups/billing"), null, HttpStatusCode.Created);
        await Ok(cluster, leader, HttpMethod.Post, Path(topic, "publish"), """{"messages": [{"body": "m"}]}""");
        var old = Messages(await Ok(cluster, follower, HttpMethod.Post, Path(topic, "receive"), """{"group": "billing", "lease_ms": 600000}""")).Single()!;

        // The group deleted and created again, at the earliest message: the same offset and delivery count.
        await Ok(cluster, leader, HttpMethod.Delete, Path(topic, "groups/billing"));
        await Ok(cluster, follower, HttpMethod.Put, Path(topic, "groups/billing"), """{"start": "earliest"}""", HttpStatusCode.Created);
        var fresh = Messages(await Ok(cluster, follower, HttpMethod.Post, Path(topic, "receive"), """{"group": "billing", "lease_ms": 600000}""")).Single()!;
        (fresh["offset"]!.GetValue<long>(), fresh["delivery_count"]!.GetValue<int>()).ShouldBe((old["offset"]!.GetValue<long>(), old["delivery_count"]!.GetValue<int>()));
        var oldReceipt = old["receipt"]!.GetValue<string>();
        fresh["receipt"]!.GetValue<string>().ShouldNotBe(oldReceipt);

        // The old consumer's late ack, nack, extend and receive-ack settle nothing of the new group's, through the
        // leader and through a follower.
        foreach (var (op, node) in new[] { ("ack", leader), ("nack", follower), ("extend", leader) })
        {
            var answer = await Ok(cluster, node, HttpMethod.Post, Path(topic, op), $$"""{"group": "billing", "receipts": ["{{oldReceipt}}"]}""");
            answer["stale"]!.AsArray().Select(s => s!.GetValue<string>()).ShouldBe([oldReceipt], op);
        }
        var receiveAck = await Ok(cluster, follower, HttpMethod.Post, Path(topic, "receive"), $$"""{"group": "billing", "ack": ["{{oldReceipt}}"]}""");
        (receiveAck["acked"]!.GetValue<int>(), receiveAck["stale"]!.AsArray().Single()!.GetValue<string>()).ShouldBe((0, oldReceipt));
        var billing = (await Ok(cluster, leader, HttpMethod.Get, Path(topic)))["groups"]!.AsArray().Single(g => g!["group"]!.GetValue<string>() == "billing")!;
        (billing["leased"]!.GetValue<int>(), billing["acked_total"]!.GetValue<long>()).ShouldBe((1, 0L));
        (await Ok(cluster, follower, HttpMethod.Post, Path(topic, "ack"), $$"""{"group": "billing", "receipts": ["{{fresh["receipt"]!.GetValue<string>()}}"]}"""))["acked"]!.GetValue<int>().ShouldBe(1);

        // The topic deleted and created again: a different message at the same offset.
        var before = Messages(await Ok(cluster, leader, HttpMethod.Post, Path(topic, "receive"), """{"lease_ms": 600000}""")).Single()!["receipt"]!.GetValue<string>();
        await Ok(cluster, leader, HttpMethod.Delete, Path(topic));
        await Ok(cluster, follower, HttpMethod.Put, Path(topic), null, HttpStatusCode.Created);
        await Ok(cluster, leader, HttpMethod.Post, Path(topic, "publish"), """{"messages": [{"body": "another"}]}""");
        var after = Messages(await Ok(cluster, leader, HttpMethod.Post, Path(topic, "receive"), """{"lease_ms": 600000}""")).Single()!;
        after["body"]!.GetValue<string>().ShouldBe("another");
        var late = await Ok(cluster, follower, HttpMethod.Post, Path(topic, "ack"), $$"""{"receipts": ["{{before}}"]}""");
        (late["acked"]!.GetValue<int>(), late["stale"]!.AsArray().Single()!.GetValue<string>()).ShouldBe((0, before));
        (await Ok(cluster, leader, HttpMethod.Post, Path(topic, "ack"), $$"""{"receipts": ["{{after["receipt"]!.GetValue<string>()}}"]}"""))["acked"]!.GetValue<int>().ShouldBe(1);
    }
}

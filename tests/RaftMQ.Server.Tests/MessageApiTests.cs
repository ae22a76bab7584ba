using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace RaftMQ.Server.Tests;

/// <summary>POST /v1/topics/&lt;topic&gt;/messages and .../messages/pop through real processes: binary payloads, headers, offsets, publish times.</summary>
[Collection(ClusterCollection.Name)]
public sealed class MessageApiTests
{
    private static string Escape(string topic) => Uri.EscapeDataString(topic);

    private static Task<(HttpStatusCode Status, string Body)> PublishAsync(TestCluster cluster, int node, string topic, object body) =>
        cluster.SendAsync(node, HttpMethod.Post, $"/v1/topics/{Escape(topic)}/messages", JsonSerializer.Serialize(body));

    private static async Task<JsonArray> PopAsync(TestCluster cluster, int node, string topic, int max)
    {
        var (status, body) = await cluster.SendAsync(node, HttpMethod.Post, $"/v1/topics/{Escape(topic)}/messages/pop", $$"""{"max":{{max}}}""");
        status.ShouldBe(HttpStatusCode.OK, body);
        var json = JsonNode.Parse(body)!.AsObject();
        json["success"]!.GetValue<bool>().ShouldBeTrue();
        return json["messages"]!.AsArray();
    }

    [Fact]
    public async Task Binary_messages_with_headers_through_followers_and_the_leader_come_back_with_offsets_and_times()
    {
        await using var cluster = TestCluster.Create(3, "--request-timeout-ms", "8000");
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderAsync();
        var follower = Enumerable.Range(0, 3).First(i => i != leader);
        const string topic = "bin/äry";
        (await cluster.CreateTopicAsync(follower, topic)).Status.ShouldBe(HttpStatusCode.Created);
        var before = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

        // Payloads of every byte value, sent alternately through a follower (forwarded) and the leader.
        var expected = new List<(byte[] Payload, Dictionary<string, string> Headers)>();
        long offset = 0;
        for (int round = 0; round < 6; round++)
        {
            var node = round % 2 == 0 ? follower : leader;
            var batch = Enumerable.Range(0, round + 1).Select(i =>
            {
                var payload = Enumerable.Range(0, 40 + i).Select(b => (byte)((b * 37 + round + i) % 256)).ToArray();
                var headers = new Dictionary<string, string> { ["round"] = $"{round}", ["x-item"] = $"{i} é€" };
                if (i == 0) headers.Clear();
                expected.Add((payload, headers));
                return new { payload_base64 = Convert.ToBase64String(payload), headers };
            }).ToArray();
            var (status, body) = await PublishAsync(cluster, node, topic, new { messages = batch });
            status.ShouldBe(HttpStatusCode.OK, body);
            body.ShouldBe($$"""{"success":true,"published":{{batch.Length}},"first_offset":{{offset}}}""");
            offset += batch.Length;
        }
        // A text payload, then the RRMQ publish: both in the same topic, in order.
        (await PublishAsync(cluster, follower, topic, new { messages = new[] { new { payload = "plain text ✓" } } })).Body
            .ShouldBe($$"""{"success":true,"published":1,"first_offset":{{offset}}}""");
        expected.Add((Encoding.UTF8.GetBytes("plain text ✓"), []));
        (await cluster.PublishAsync(leader, topic, "rrmq")).Status.ShouldBe(HttpStatusCode.OK);
        expected.Add((Encoding.UTF8.GetBytes("rrmq"), []));
        var after = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

        var popped = new List<JsonNode?>();
        popped.AddRange(await PopAsync(cluster, leader, topic, 5));
        popped.AddRange(await PopAsync(cluster, follower, topic, 1000));
        (await PopAsync(cluster, follower, topic, 1)).ShouldBeEmpty();
        popped.Count.ShouldBe(expected.Count);
        long lastTime = 0;
        for (int i = 0; i < popped.Count; i++)
        {
            var m = popped[i]!.AsObject();
            m["offset"]!.GetValue<long>().ShouldBe(i);
            Convert.FromBase64String(m["payload_base64"]!.GetValue<string>()).ShouldBe(expected[i].Payload, $"message {i}");
            m["headers"]!.AsObject().ToDictionary(h => h.Key, h => h.Value!.GetValue<string>()).ShouldBe(expected[i].Headers);
            var time = m["timestamp_ms"]!.GetValue<long>();
            if (i == popped.Count - 1)
            {
                time.ShouldBe(0, "an RRMQ publish carries no time");
                continue;
            }
            // Stamped by the leader when it proposed: within the test's window, never going back.
            time.ShouldBeInRange(before - 5_000, after + 5_000);
            time.ShouldBeGreaterThanOrEqualTo(lastTime);
            lastTime = time;
        }

        // The RRMQ pop reads a binary publish's payload as text.
        (await PublishAsync(cluster, follower, topic, new { messages = new[] { new { payload = "to rrmq", headers = new { k = "v" } } } })).Status
            .ShouldBe(HttpStatusCode.OK);
        (await cluster.PopAsync(leader, topic)).Body.ShouldBe("""{"success":true,"message":"to rrmq"}""");
    }

    [Fact]
    public async Task Bad_input_gets_a_4xx_with_a_reason_and_changes_nothing()
    {
        await using var cluster = TestCluster.Create(1);
        await cluster.StartAllAsync();
        await cluster.WaitForLeaderAsync();
        (await cluster.CreateTopicAsync(0, "t")).Status.ShouldBe(HttpStatusCode.Created);
        const string publish = "/v1/topics/t/messages";
        const string pop = "/v1/topics/t/messages/pop";
        var manyHeaders = Enumerable.Range(0, 17).ToDictionary(i => $"h{i}", i => "v");
        var bigHeaders = Enumerable.Range(0, 5).ToDictionary(i => $"h{i}", i => new string('v', 1000));
        (string Path, string Body, HttpStatusCode Status, string Error)[] cases =
        [
            (publish, "", HttpStatusCode.BadRequest, "not valid JSON"),
            (publish, "[]", HttpStatusCode.BadRequest, "JSON object"),
            (publish, "{}", HttpStatusCode.BadRequest, "missing field \\\"messages\\\""),
            (publish, """{"messages":[]}""", HttpStatusCode.BadRequest, "must not be empty"),
            (publish, """{"messages":"x"}""", HttpStatusCode.BadRequest, "array"),
            (publish, """{"messages":[{"payload":"a"}],"topic":"t"}""", HttpStatusCode.BadRequest, "unknown field"),
            (publish, """{"messages":[5]}""", HttpStatusCode.BadRequest, "message 0 must be an object"),
            (publish, """{"messages":[{}]}""", HttpStatusCode.BadRequest, "exactly one of"),
            (publish, """{"messages":[{"payload":"a","payload_base64":"YQ=="}]}""", HttpStatusCode.BadRequest, "exactly one of"),
            (publish, """{"messages":[{"payload":"a"},{"payload_base64":"not base64!"}]}""", HttpStatusCode.BadRequest, "message 1: \\\"payload_base64\\\" is not valid base64"),
            (publish, """{"messages":[{"payload_base64":"YQ"}]}""", HttpStatusCode.BadRequest, "not valid base64"),
            (publish, """{"messages":[{"payload":5}]}""", HttpStatusCode.BadRequest, "must be a string"),
            (publish, """{"messages":[{"payload":"a","headers":[]}]}""", HttpStatusCode.BadRequest, "must be an object"),
            (publish, """{"messages":[{"payload":"a","headers":{"k":1}}]}""", HttpStatusCode.BadRequest, "must be a string"),
            (publish, """{"messages":[{"payload":"a","headers":{"bad name":"v"}}]}""", HttpStatusCode.BadRequest, "token"),
            (publish, """{"messages":[{"payload":"a","headers":{"":"v"}}]}""", HttpStatusCode.BadRequest, "empty"),
            (publish, """{"messages":[{"payload":"a","headers":{"k":"1","k":"2"}}]}""", HttpStatusCode.BadRequest, "twice"),
            (publish, JsonSerializer.Serialize(new { messages = new[] { new { payload = "a", headers = manyHeaders } } }), HttpStatusCode.BadRequest, "more than 16 headers"),
            (publish, JsonSerializer.Serialize(new { messages = new[] { new { payload = "a", headers = new Dictionary<string, string> { [new string('n', 65)] = "v" } } } }), HttpStatusCode.BadRequest, "longer than 64"),
            (publish, JsonSerializer.Serialize(new { messages = new[] { new { payload = "a", headers = new Dictionary<string, string> { ["k"] = new string('v', 1025) } } } }), HttpStatusCode.BadRequest, "longer than 1024"),
            (publish, JsonSerializer.Serialize(new { messages = new[] { new { payload = "a", headers = bigHeaders } } }), HttpStatusCode.BadRequest, "more than 4096"),
            (publish, JsonSerializer.Serialize(new { messages = new[] { new { payload_base64 = Convert.ToBase64String(new byte[64 * 1024 + 1]) } } }), HttpStatusCode.RequestEntityTooLarge, "longer than 65536"),
            (publish, JsonSerializer.Serialize(new { messages = Enumerable.Repeat(new { payload = "x" }, 1001) }), HttpStatusCode.RequestEntityTooLarge, "more than 1000"),
            ("/v1/topics/missing/messages", """{"messages":[{"payload":"a"}]}""", HttpStatusCode.NotFound, "no such topic"),
            ("/v1/topics/missing/messages/pop", """{"max":1}""", HttpStatusCode.NotFound, "no such topic"),
            ("/v1/topics/t/other", "{}", HttpStatusCode.NotFound, "no such endpoint"),
            ("/v1/topics/t", "{}", HttpStatusCode.MethodNotAllowed, "method not allowed"),
            ("/v1/topics", "{}", HttpStatusCode.NotFound, "no such endpoint"),
            ("/V1/TOPICS", "{}", HttpStatusCode.NotFound, "no such endpoint"),
            ("/v1/topics/t/dead-letters/other", "{}", HttpStatusCode.NotFound, "no such endpoint"),
            ("/v1/topics/t/DEAD-LETTERS/REDRIVE", "{}", HttpStatusCode.BadRequest, "not its dead letters"),
            (pop, "", HttpStatusCode.BadRequest, "not valid JSON"),
            (pop, """{"max":0}""", HttpStatusCode.BadRequest, "between 1 and 1000"),
            (pop, """{"max":1001}""", HttpStatusCode.BadRequest, "between 1 and 1000"),
            (pop, """{"max":"1"}""", HttpStatusCode.BadRequest, "between 1 and 1000"),
            (pop, """{"max":1,"topic":"t"}""", HttpStatusCode.BadRequest, "unknown field"),
        ];
        foreach (var (path, body, status, error) in cases)
        {
            var (got, text) = await cluster.SendAsync(0, HttpMethod.Post, path, body);
            var shown = body.Length > 80 ? body[..80] + "..." : body;
            got.ShouldBe(status, $"POST {path} {shown} answered {text}");
            text.StartsWith("""{"success":false,"error":""", StringComparison.Ordinal).ShouldBeTrue($"POST {path} {shown} answered {text}");
            text.Contains(error, StringComparison.Ordinal).ShouldBeTrue($"POST {path} {shown} answered {text}, expected {error}");
        }
        (await cluster.SendAsync(0, HttpMethod.Post, pop, "{}")).Body.ShouldBe("""{"success":true,"messages":[]}""", "no bad request changed the queue; max defaults to 1");
        // A topic name with a slash is one escaped path segment.
        (await cluster.CreateTopicAsync(0, "a/b")).Status.ShouldBe(HttpStatusCode.Created);
        (await cluster.SendAsync(0, HttpMethod.Post, "/v1/topics/a%2Fb/messages", """{"messages":[{"payload":"in a/b"}]}""")).Status.ShouldBe(HttpStatusCode.OK);
        (await cluster.PopAsync(0, "a/b")).Body.ShouldBe("""{"success":true,"message":"in a/b"}""");
    }

    [Fact]
    public async Task Paths_match_in_any_case_except_the_topic_and_no_name_is_created_that_a_path_cannot_reach()
    {
        await using var cluster = TestCluster.Create(1);
        await cluster.StartAllAsync();
        await cluster.WaitForLeaderAsync();
        (await cluster.CreateTopicAsync(0, "Mixed")).Status.ShouldBe(HttpStatusCode.Created);
        (await cluster.SendAsync(0, HttpMethod.Post, "/V1/Topics/Mixed/MESSAGES", """{"messages":[{"payload":"one"},{"payload":"two"}]}""")).Status.ShouldBe(HttpStatusCode.OK);
        // Under /dead-letters in any case: the topic's dead letters (none yet), never the topic's own messages.
        foreach (var path in new[] { "/v1/topics/Mixed/dead-letters/receive", "/v1/topics/Mixed/Dead-Letters/receive", "/V1/TOPICS/Mixed/DEAD-LETTERS/RECEIVE" })
        {
            var (status, body) = await cluster.SendAsync(0, HttpMethod.Post, path, """{"max": 10}""");
            body.ShouldNotContain("receipt", Case.Sensitive, $"POST {path} answered {status} {body}");
            status.ShouldBe(HttpStatusCode.NotFound, $"POST {path}: the topic never dead-lettered; answered {body}");
        }
        var popped = JsonNode.Parse((await cluster.SendAsync(0, HttpMethod.Post, "/v1/topics/Mixed/Messages/Pop", """{"max":1}""")).Body)!;
        popped["messages"]!.AsArray().Select(m => Encoding.UTF8.GetString(Convert.FromBase64String(m!["payload_base64"]!.GetValue<string>()))).ShouldBe(["one"]);
        (await cluster.SendAsync(0, HttpMethod.Get, "/MESSAGE/Mixed", null)).Body.ShouldBe("""{"success":true,"message":"two"}""");
        (await cluster.SendAsync(0, HttpMethod.Get, "/message/mixed", null)).Status.ShouldBe(HttpStatusCode.NotFound, "topic names keep their case");

        // U+0000 cannot travel in a path (%00 is refused), so no topic may hold it.
        var (nul, error) = await cluster.SendAsync(0, HttpMethod.Put, "/topic", """{"topic":"a\u0000b"}""");
        nul.ShouldBe(HttpStatusCode.BadRequest, error);
        error.ShouldContain("U+0000");
        (await cluster.SendAsync(0, HttpMethod.Get, "/topic", null)).Body.ShouldNotContain("a\\u0000b");

        // A path under /v1/topics that no endpoint serves is 404 for every method; a served one asked with another method 405.
        (await cluster.SendAsync(0, HttpMethod.Get, "/v1/topics/Mixed/nothing", null)).Status.ShouldBe(HttpStatusCode.NotFound);
        (await cluster.SendAsync(0, HttpMethod.Delete, "/v1/topics/Mixed/nothing/else", null)).Status.ShouldBe(HttpStatusCode.NotFound);
        (await cluster.SendAsync(0, HttpMethod.Get, "/v1/topics/Mixed/messages", null)).Status.ShouldBe(HttpStatusCode.MethodNotAllowed);
    }
}

using System.Net;
using System.Text.Json;

namespace RaftMQ.Server.Tests;

/// <summary>POST /v1/messages and /v1/messages/pop through real processes: routing, order, bounds and bad input.</summary>
[Collection(ClusterCollection.Name)]
public sealed class BatchApiTests
{
    private static Task<(HttpStatusCode Status, string Body)> PublishBatchAsync(TestCluster cluster, int node, string topic, params string[] messages) =>
        cluster.SendAsync(node, HttpMethod.Post, "/v1/messages", JsonSerializer.Serialize(new { topic, messages }));

    private static Task<(HttpStatusCode Status, string Body)> PopBatchAsync(TestCluster cluster, int node, string topic, int max) =>
        cluster.SendAsync(node, HttpMethod.Post, "/v1/messages/pop", JsonSerializer.Serialize(new { topic, max }));

    private static string Popped(params string[] messages) => AnswerJson.Of(new { success = true, messages });

    [Fact]
    public async Task Batches_through_the_leader_and_followers_keep_order_with_single_publishes_and_pops()
    {
        await using var cluster = TestCluster.Create(3, "--request-timeout-ms", "8000");
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderAsync();
        var (f1, f2) = (Enumerable.Range(0, 3).First(i => i != leader), Enumerable.Range(0, 3).Last(i => i != leader));
        (await cluster.CreateTopicAsync(f1, "t")).Status.ShouldBe(HttpStatusCode.Created);

        // Interleaved single and batch publishes, sent to every node in turn: the queue keeps the order they were acknowledged in.
        var expected = new List<string>();
        int[] nodes = [leader, f1, f2];
        for (int round = 0; round < 6; round++)
        {
            var node = nodes[round % 3];
            var single = $"s{round}";
            (await cluster.PublishAsync(node, "t", single)).ShouldBe((HttpStatusCode.OK, """{"success":true}"""));
            expected.Add(single);
            var batch = Enumerable.Range(0, round + 1).Select(i => $"b{round}.{i} ü").ToArray();
            (await PublishBatchAsync(cluster, nodes[(round + 1) % 3], "t", batch)).ShouldBe((HttpStatusCode.OK, $$"""{"success":true,"published":{{batch.Length}}}"""));
            expected.AddRange(batch);
        }

        // Pops of every kind, again from every node.
        (await PopBatchAsync(cluster, f2, "t", 3)).Body.ShouldBe(Popped([.. expected.Take(3)]));
        (await cluster.PopAsync(leader, "t")).Body.ShouldBe(AnswerJson.Of(new { success = true, message = expected[3] }));
        (await cluster.SendAsync(f1, HttpMethod.Post, "/v1/messages/pop", """{"topic":"t"}""")).Body.ShouldBe(Popped(expected[4]), "max defaults to 1");
        (await PopBatchAsync(cluster, leader, "t", 1000)).Body.ShouldBe(Popped([.. expected.Skip(5)]));
        (await PopBatchAsync(cluster, f1, "t", 5)).ShouldBe((HttpStatusCode.OK, """{"success":true,"messages":[]}"""));
        (await PopBatchAsync(cluster, f2, "missing", 5)).Status.ShouldBe(HttpStatusCode.NotFound);
        (await PublishBatchAsync(cluster, f2, "missing", "x")).Status.ShouldBe(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Bounds_and_bad_input_get_a_4xx_with_a_reason_and_change_nothing()
    {
        await using var cluster = TestCluster.Create(1);
        await cluster.StartAllAsync();
        await cluster.WaitForLeaderAsync();
        (await cluster.CreateTopicAsync(0, "t")).Status.ShouldBe(HttpStatusCode.Created);
        (await PublishBatchAsync(cluster, 0, "t", "kept")).Status.ShouldBe(HttpStatusCode.OK);

        (string Path, string Body, HttpStatusCode Status)[] cases =
        [
            ("/v1/messages", "", HttpStatusCode.BadRequest),
            ("/v1/messages", "not json", HttpStatusCode.BadRequest),
            ("/v1/messages", "null", HttpStatusCode.BadRequest),
            ("/v1/messages", """["t"]""", HttpStatusCode.BadRequest),
            ("/v1/messages", "{}", HttpStatusCode.BadRequest),
            ("/v1/messages", """{"topic":"t"}""", HttpStatusCode.BadRequest),
            ("/v1/messages", """{"messages":["a"]}""", HttpStatusCode.BadRequest),
            ("/v1/messages", """{"topic":"t","messages":[]}""", HttpStatusCode.BadRequest),
            ("/v1/messages", """{"topic":"t","messages":"a"}""", HttpStatusCode.BadRequest),
            ("/v1/messages", """{"topic":"t","messages":["a",1]}""", HttpStatusCode.BadRequest),
            ("/v1/messages", """{"topic":"t","messages":["a",null]}""", HttpStatusCode.BadRequest),
            ("/v1/messages", """{"topic":"t","messages":[["a"]]}""", HttpStatusCode.BadRequest),
            ("/v1/messages", """{"topic":5,"messages":["a"]}""", HttpStatusCode.BadRequest),
            ("/v1/messages", """{"topic":"","messages":["a"]}""", HttpStatusCode.BadRequest),
            ("/v1/messages", """{"topic":"..","messages":["a"]}""", HttpStatusCode.BadRequest),
            ("/v1/messages", "{\"topic\":\"t\",\"messages\":[\"unterminated", HttpStatusCode.BadRequest),
            ("/v1/messages", """{"topic":"t","messages":["a"]} trailing""", HttpStatusCode.BadRequest),
            ("/v1/messages", JsonSerializer.Serialize(new { topic = "t", messages = Enumerable.Repeat("x", 1001) }), HttpStatusCode.RequestEntityTooLarge),
            ("/v1/messages", JsonSerializer.Serialize(new { topic = "t", messages = new[] { "a", new string('x', 64 * 1024 + 1) } }), HttpStatusCode.RequestEntityTooLarge),
            ("/v1/messages/pop", "", HttpStatusCode.BadRequest),
            ("/v1/messages/pop", "{}", HttpStatusCode.BadRequest),
            ("/v1/messages/pop", """{"topic":"t","max":0}""", HttpStatusCode.BadRequest),
            ("/v1/messages/pop", """{"topic":"t","max":-1}""", HttpStatusCode.BadRequest),
            ("/v1/messages/pop", """{"topic":"t","max":1001}""", HttpStatusCode.BadRequest),
            ("/v1/messages/pop", """{"topic":"t","max":"5"}""", HttpStatusCode.BadRequest),
            ("/v1/messages/pop", """{"topic":"t","max":1.5}""", HttpStatusCode.BadRequest),
            ("/v1/messages/pop", """{"topic":"t","max":99999999999}""", HttpStatusCode.BadRequest),
            ("/v1/messages/pop", """{"topic":["t"],"max":1}""", HttpStatusCode.BadRequest),
        ];
        foreach (var (path, body, status) in cases)
        {
            var (got, text) = await cluster.SendAsync(0, HttpMethod.Post, path, body);
            got.ShouldBe(status, $"POST {path} {(body.Length > 80 ? body[..80] + "..." : body)} answered {text}");
            text.ShouldContain("\"success\":false");
            text.ShouldContain("\"error\":");
            // The reason is the API's, not the serializer's (which names .NET types).
            text.ShouldNotContain("RaftMQ.", customMessage: $"POST {path} {body}");
            text.ShouldNotContain("System.", customMessage: $"POST {path} {body}");
        }

        // Messages each within their bound, but a body over 1 MiB: refused before the upload (as curl does, with
        // Expect: 100-continue; without it the node answers and closes the connection mid-upload).
        using var request = new HttpRequestMessage(HttpMethod.Post, cluster.Url(0, "/v1/messages"))
        {
            Content = new StringContent(
                JsonSerializer.Serialize(new { topic = "t", messages = Enumerable.Repeat(new string('x', 60_000), 20) }),
                System.Text.Encoding.UTF8, "application/json"),
        };
        request.Headers.ExpectContinue = true;
        using (var response = await cluster.Http.SendAsync(request))
        {
            response.StatusCode.ShouldBe(HttpStatusCode.RequestEntityTooLarge);
            (await response.Content.ReadAsStringAsync()).ShouldContain("larger than");
        }
        (await PopBatchAsync(cluster, 0, "t", 1000)).Body.ShouldBe(Popped("kept"), "no bad request changed the queue");
    }

    [Fact]
    public async Task A_batch_pop_stops_at_one_MiB_of_messages()
    {
        await using var cluster = TestCluster.Create(1);
        await cluster.StartAllAsync();
        await cluster.WaitForLeaderAsync();
        await cluster.CreateTopicAsync(0, "t");
        var messages = Enumerable.Range(0, 1200).Select(i => i.ToString("D4") + new string('x', 1496)).ToArray();
        (await PublishBatchAsync(cluster, 0, "t", messages[..600])).Status.ShouldBe(HttpStatusCode.OK);
        (await PublishBatchAsync(cluster, 0, "t", messages[600..])).Status.ShouldBe(HttpStatusCode.OK);

        var first = await PopBatchAsync(cluster, 0, "t", 1000);
        first.Status.ShouldBe(HttpStatusCode.OK);
        // 699 messages of 1,500 bytes fit in 1 MiB (1,048,576 bytes); the 700th would not.
        first.Body.ShouldBe(Popped(messages[..699]));
        (await PopBatchAsync(cluster, 0, "t", 1000)).Body.ShouldBe(Popped(messages[699..]));
    }
}

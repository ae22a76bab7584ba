using System.Net;
using System.Text.Json;
using Xunit.Abstractions;

namespace RaftMQ.Server.Tests;

/// <summary>Legitimate load through the public API, each request within the documented limits: no node may stop.</summary>
[Collection(ClusterCollection.Name)]
public sealed class LoadTests(ITestOutputHelper output)
{
    private const int Concurrent = 48;
    private const int Bursts = 3; // whether a burst's entries reach the log together depends on timing; three make it likely
    private const int MessagesPerRequest = 16;
    private const int MessageChars = 60_000; // ASCII: 16 x 60,000 bytes plus JSON is about 0.96 MB, under the 1 MiB body limit

    /// <summary>The <c>X-RaftMQ-Error</c> codes of a 503 that mean "not applied" (docs/rest-api.md); outcome-unknown is separate.</summary>
    private static readonly string[] NotApplied = ["no-leader", "not-leader", "overloaded", "stopped"];

    [Fact]
    public async Task Forty_eight_concurrent_1_MB_batches_to_the_leader_leave_every_node_serving_and_each_acknowledged_message_poppable_once()
    {
        await using var cluster = TestCluster.Create(3, "--request-timeout-ms", "8000");
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderAsync();
        (await cluster.CreateTopicAsync(leader, "load")).Status.ShouldBe(HttpStatusCode.Created);
        using var http = new HttpClient { Timeout = TimeSpan.FromMinutes(2) };

        // Request r publishes "r<r>.m<i>.xxx...": every message says which request carried it and where in it.
        var batches = Enumerable.Range(0, Concurrent * Bursts)
            .Select(r => Enumerable.Range(0, MessagesPerRequest).Select(i => $"r{r:D3}.m{i:D2}.".PadRight(MessageChars, 'x')).ToArray())
            .ToArray();
        var acknowledged = new HashSet<int>();
        var unknown = new HashSet<int>();
        for (int burst = 0; burst < Bursts; burst++)
        {
            var first = burst * Concurrent;
            var answers = await BurstAsync(http, cluster.Url(leader, "/v1/messages"), batches[first..(first + Concurrent)]);
            for (int i = 0; i < cluster.Size; i++)
                cluster.Node(i).HasExited.ShouldBeFalse($"node {i} stopped under burst {burst}; its last output:\n{Tail(cluster.Node(i).Output)}");
            for (int k = 0; k < Concurrent; k++)
            {
                var (status, code, text) = answers[k];
                var r = first + k;
                output.WriteLine($"request {r}: {status} {code} {text}");
                if (status == 200)
                {
                    text.ShouldBe($$"""{"success":true,"published":{{MessagesPerRequest}}}""");
                    acknowledged.Add(r);
                }
                else if (status == 503 && code == "outcome-unknown")
                {
                    unknown.Add(r);
                }
                else
                {
                    (status == 503 && NotApplied.Contains(code)).ShouldBeTrue($"request {r} got neither success nor a documented error: {status} {code} {text}");
                }
            }
            // The leader (whichever node it is now) still serves, and the next burst goes to it.
            leader = await cluster.WaitForLeaderAsync();
        }
        output.WriteLine($"{acknowledged.Count} acknowledged, {unknown.Count} outcome unknown, {batches.Length - acknowledged.Count - unknown.Count} refused");
        acknowledged.ShouldNotBeEmpty("a healthy cluster takes some of the load");

        (await cluster.CreateTopicAsync(leader, "after")).Status.ShouldBe(HttpStatusCode.Created);
        (await cluster.PublishAsync(leader, "after", "ok")).Status.ShouldBe(HttpStatusCode.OK);
        (await cluster.PopAsync(leader, "after")).Body.ShouldBe("""{"success":true,"message":"ok"}""");

        // Drain the topic: each acknowledged batch exactly once, whole and in order; an unknown one whole or not at all.
        var popped = new List<string>();
        while (true)
        {
            using var response = await http.PostAsync(
                cluster.Url(leader, "/v1/messages/pop"), new StringContent("""{"topic":"load","max":1000}""", System.Text.Encoding.UTF8, "application/json"));
            var text = await response.Content.ReadAsStringAsync();
            response.StatusCode.ShouldBe(HttpStatusCode.OK, text);
            var messages = JsonDocument.Parse(text).RootElement.GetProperty("messages").EnumerateArray().Select(m => m.GetString()!).ToList();
            if (messages.Count == 0) break;
            popped.AddRange(messages);
        }
        popped.ShouldBeUnique();
        var byRequest = popped.Select((m, at) => (Request: int.Parse(m[1..4], System.Globalization.CultureInfo.InvariantCulture), Message: m, At: at))
            .GroupBy(p => p.Request)
            .ToDictionary(g => g.Key, g => g.ToList());
        foreach (var r in acknowledged) byRequest.ShouldContainKey(r, $"request {r} was acknowledged but its messages are gone");
        foreach (var (r, got) in byRequest)
        {
            (acknowledged.Contains(r) || unknown.Contains(r)).ShouldBeTrue($"request {r} was refused as not applied, yet its messages were published");
            got.Select(p => p.Message).ShouldBe(batches[r], $"request {r}: the batch is not whole and in order");
            (got[^1].At - got[0].At).ShouldBe(MessagesPerRequest - 1, $"request {r}: the batch is not contiguous");
        }
        for (int i = 0; i < cluster.Size; i++) cluster.Node(i).HasExited.ShouldBeFalse($"node {i} stopped; its last output:\n{Tail(cluster.Node(i).Output)}");
    }

    /// <summary>
    /// One burst, as that many clients would send it: a connection each, opened beforehand, then every body at once.
    /// Status 0 is no answer at all (the connection failed).
    /// </summary>
    private static async Task<(int Status, string? Code, string Text)[]> BurstAsync(HttpClient http, Uri url, string[][] batches)
    {
        var bodies = batches.Select(messages => System.Text.Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new { topic = "load", messages }))).ToArray();
        foreach (var body in bodies) body.Length.ShouldBeLessThan(1 << 20, "each request is within the documented body limit");
        await Task.WhenAll(bodies.Select(async _ => (await http.GetAsync(new Uri(url, "/status"))).Dispose()));
        var go = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var sends = bodies.Select(async body =>
        {
            await go.Task;
            try
            {
                using var content = new ByteArrayContent(body);
                content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
                using var response = await http.PostAsync(url, content);
                var code = response.Headers.TryGetValues("X-RaftMQ-Error", out var codes) ? codes.Single() : null;
                return (Status: (int)response.StatusCode, Code: code, Text: await response.Content.ReadAsStringAsync());
            }
            catch (HttpRequestException e)
            {
                return (Status: 0, Code: (string?)null, Text: $"no answer: {e.Message}");
            }
        }).ToArray();
        go.SetResult();
        return await Task.WhenAll(sends);
    }

    private static string Tail(string text) => text.Length <= 4000 ? text : "..." + text[^4000..];
}

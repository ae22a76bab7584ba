using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace RaftMQ.Server.Tests;

/// <summary>GET /metrics on a real cluster: valid Prometheus text whose values follow what the cluster does.</summary>
[Collection(ClusterCollection.Name)]
public sealed partial class PrometheusMetricsTests
{
    [Fact]
    public async Task Every_node_exports_prometheus_text_whose_values_move_with_the_traffic()
    {
        await using var cluster = TestCluster.Create(3);
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderAsync();
        var follower = Enumerable.Range(0, 3).First(i => i != leader);

        var before = await ScrapeAsync(cluster, leader);
        Value(before, "raftmq_raft_term").ShouldBeGreaterThanOrEqualTo(1);
        Value(before, "raftmq_raft_role", ("role", "leader")).ShouldBe(1);
        var commitBefore = Value(before, "raftmq_raft_commit_index");

        (await cluster.CreateTopicAsync(leader, "orders")).Status.ShouldBe(HttpStatusCode.Created);
        for (int i = 0; i < 5; i++) (await cluster.PublishAsync(follower, "orders", $"m{i}")).Status.ShouldBe(HttpStatusCode.OK);
        (await cluster.PopAsync(leader, "orders")).Status.ShouldBe(HttpStatusCode.OK);

        var after = await ScrapeAsync(cluster, leader);
        Value(after, "raftmq_raft_commit_index").ShouldBeGreaterThanOrEqualTo(commitBefore + 7, "a topic, five messages and a pop were committed");
        Value(after, "raftmq_queue_ready", ("topic", "orders")).ShouldBe(4);
        Value(after, "raftmq_queue_published_total", ("topic", "orders")).ShouldBe(5);
        Value(after, "raftmq_queue_consumed_total", ("topic", "orders")).ShouldBe(1);
        Value(after, "raftmq_log_fsync_duration_seconds_count").ShouldBeGreaterThan(0);
        Value(after, "raftmq_http_requests_total", ("route", "/message/{**topic}"), ("status", "200")).ShouldBe(1);
        Value(after, "raftmq_raft_follower_lag", ("peer", (follower + 1).ToString(CultureInfo.InvariantCulture))).ShouldBeGreaterThanOrEqualTo(0);
        Value(after, "raftmq_transport_sent_bytes_total").ShouldBeGreaterThan(0);

        // A follower applies the same commands: its queue gauges reach the same depth (bounded wait, not a sleep).
        (await Eventually.TrueAsync(
            async () => Find(await ScrapeAsync(cluster, follower), "raftmq_queue_ready", ("topic", "orders")) == 4,
            TimeSpan.FromSeconds(10))).ShouldBeTrue("the follower's gauge shows the topic's depth");
        Value(await ScrapeAsync(cluster, follower), "raftmq_raft_role", ("role", "follower")).ShouldBe(1);
    }

    [Fact]
    public async Task Each_group_of_a_topic_has_its_own_series_that_agree_with_the_topic_stats()
    {
        await using var cluster = TestCluster.Create(3, "--request-timeout-ms", "8000");
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderAsync();
        var follower = Enumerable.Range(0, 3).First(i => i != leader);
        const string topic = "jobs";

        await Ok(cluster, follower, HttpMethod.Put, "/v1/topics/jobs", """{"max_deliveries": 2}""", HttpStatusCode.Created);
        await Ok(cluster, follower, HttpMethod.Put, "/v1/topics/jobs/groups/audit", """{"start": "earliest"}""", HttpStatusCode.Created);
        await Ok(cluster, follower, HttpMethod.Post, "/v1/topics/jobs/publish",
            """{"messages": [{"body": "m0"}, {"body": "m1"}, {"body": "m2"}, {"body": "m3"}]}""");
        // Created after the publish, from the tail: nothing for it to consume, so its oldest age is 0.
        await Ok(cluster, leader, HttpMethod.Put, "/v1/topics/jobs/groups/late", """{"start": "latest"}""", HttpStatusCode.Created);

        // default: three leased; 0 acked, 1 nacked for ten minutes (delayed), 2 still leased, 3 never delivered (ready).
        var leased = Receipts(await Ok(cluster, follower, HttpMethod.Post, "/v1/topics/jobs/receive", """{"max": 3, "lease_ms": 600000}"""));
        leased.Length.ShouldBe(3);
        await Ok(cluster, follower, HttpMethod.Post, "/v1/topics/jobs/ack", $$"""{"receipts": ["{{leased[0]}}"]}""");
        await Ok(cluster, follower, HttpMethod.Post, "/v1/topics/jobs/nack", $$"""{"receipts": ["{{leased[1]}}"], "delay_ms": 600000}""");

        // audit: message 0 nacked twice reaches max_deliveries 2 and is dead-lettered.
        for (var delivery = 1; delivery <= 2; delivery++)
        {
            var got = Receipts(await Ok(cluster, leader, HttpMethod.Post, "/v1/topics/jobs/receive", """{"group": "audit", "max": 1, "lease_ms": 600000}"""));
            got.Length.ShouldBe(1, $"delivery {delivery} of message 0 to audit");
            await Ok(cluster, leader, HttpMethod.Post, "/v1/topics/jobs/nack", $$"""{"group": "audit", "receipts": ["{{got[0]}}"], "delay_ms": 0}""");
        }

        // (ready, leased, delayed, unacked, delivered, acked, dead-lettered) per group.
        var expected = new Dictionary<string, long[]>
        {
            ["default"] = [1, 1, 1, 3, 3, 1, 0],
            ["audit"] = [3, 0, 0, 3, 2, 0, 1],
            ["late"] = [0, 0, 0, 0, 0, 0, 0],
        };
        // The stats answer the same numbers: the metrics are counted by the same code.
        var stats = await Ok(cluster, leader, HttpMethod.Get, "/v1/topics/jobs");
        stats["dead_lettered"]!.GetValue<long>().ShouldBe(1);
        foreach (var g in stats["groups"]!.AsArray())
        {
            string[] fields = ["ready", "leased", "delayed", "unacked", "delivered_total", "acked_total", "dead_lettered_total"];
            fields.Select(f => g![f]!.GetValue<long>()).ShouldBe(expected[g!["group"]!.GetValue<string>()], $"stats of {g["group"]}");
        }

        // Every node publishes its groups' counts within a refresh: wait for them (bounded), on the leader and a follower.
        foreach (var node in new[] { leader, follower })
        {
            List<Sample> samples = [];
            (await Eventually.TrueAsync(async () =>
            {
                samples = await ScrapeAsync(cluster, node);
                return expected.All(e => GroupValues(samples, topic, e.Key).SequenceEqual(e.Value.Select(v => (double?)v)))
                    && Find(samples, "raftmq_queue_dead_letters", ("topic", topic)) == 1;
            }, TimeSpan.FromSeconds(15))).ShouldBeTrue(
                $"node {node}: " + string.Join("; ", expected.Keys.Select(g => $"{g}: {string.Join(",", GroupValues(samples, topic, g))}")));
            Value(samples, "raftmq_queue_group_oldest_age_seconds", ("topic", topic), ("group", "late")).ShouldBe(0);
            // Only the source topic has group series: its dead letters are counted by raftmq_queue_dead_letters.
            samples.Where(s => s.Name == "raftmq_queue_group_ready").Select(s => (s.Labels["topic"], s.Labels["group"]))
                .ShouldBe([(topic, "default"), (topic, "audit"), (topic, "late")], ignoreOrder: true);
        }

        // The oldest unacked message's age is measured by the node's clock at the scrape: it grows with no command applied.
        var first = Value(await ScrapeAsync(cluster, follower), "raftmq_queue_group_oldest_age_seconds", ("topic", topic), ("group", "default"));
        first.ShouldBeGreaterThanOrEqualTo(0);
        first.ShouldBeLessThan(600, "message 1 was published during this test");
        (await Eventually.TrueAsync(
            async () => Value(await ScrapeAsync(cluster, follower), "raftmq_queue_group_oldest_age_seconds", ("topic", topic), ("group", "default")) >= first + 1,
            TimeSpan.FromSeconds(15))).ShouldBeTrue("the age of the oldest unacked message grows while it waits");
    }

    /// <summary>A group's (ready, leased, delayed, unacked, delivered, acked, dead-lettered) series; null where one is missing.</summary>
    private static double?[] GroupValues(List<Sample> samples, string topic, string group) =>
        [.. new[]
        {
            "raftmq_queue_group_ready", "raftmq_queue_group_leased", "raftmq_queue_group_delayed", "raftmq_queue_group_unacked",
            "raftmq_queue_group_delivered_total", "raftmq_queue_group_acked_total", "raftmq_queue_group_dead_lettered_total",
        }.Select(name => Find(samples, name, ("topic", topic), ("group", group)))];

    private static async Task<JsonObject> Ok(TestCluster cluster, int node, HttpMethod method, string path, string? body = null, HttpStatusCode expected = HttpStatusCode.OK)
    {
        var (status, text) = await cluster.SendAsync(node, method, path, body);
        status.ShouldBe(expected, $"{method} {path}: {text}");
        return JsonNode.Parse(text)!.AsObject();
    }

    private static string[] Receipts(JsonObject received) =>
        [.. received["messages"]!.AsArray().Select(m => m!["receipt"]!.GetValue<string>())];

    private static async Task<List<Sample>> ScrapeAsync(TestCluster cluster, int node)
    {
        using var response = await cluster.Http.GetAsync(cluster.Url(node, "/metrics"));
        response.StatusCode.ShouldBe(HttpStatusCode.OK);
        response.Content.Headers.ContentType!.MediaType.ShouldBe("text/plain");
        return Parse(await response.Content.ReadAsStringAsync());
    }

    /// <summary>Parses the Prometheus text format strictly: every line a comment, blank, or a valid sample.</summary>
    internal static List<Sample> Parse(string text)
    {
        var samples = new List<Sample>();
        foreach (var line in text.Split('\n'))
        {
            if (line.Length == 0) continue;
            if (line.StartsWith('#'))
            {
                CommentLine().IsMatch(line).ShouldBeTrue($"bad comment line: {line}");
                continue;
            }
            var m = SampleLine().Match(line);
            m.Success.ShouldBeTrue($"bad sample line: {line}");
            var labels = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (Match l in LabelPair().Matches(m.Groups["labels"].Value)) labels[l.Groups[1].Value] = l.Groups[2].Value;
            var value = m.Groups["value"].Value switch
            {
                "+Inf" => double.PositiveInfinity,
                "-Inf" => double.NegativeInfinity,
                "NaN" => double.NaN,
                var v => double.Parse(v, NumberStyles.Float, CultureInfo.InvariantCulture),
            };
            samples.Add(new Sample(m.Groups["name"].Value, labels, value));
        }
        samples.ShouldNotBeEmpty();
        return samples;
    }

    private static double? Find(List<Sample> samples, string name, params (string Key, string Value)[] labels) =>
        samples.FirstOrDefault(s => s.Name == name && labels.All(l => s.Labels.TryGetValue(l.Key, out var v) && v == l.Value))?.Value;

    private static double Value(List<Sample> samples, string name, params (string Key, string Value)[] labels) =>
        Find(samples, name, labels) ?? throw new ShouldAssertException(
            $"no sample {name} with {string.Join(",", labels)}; have: {string.Join(" ", samples.Select(s => s.Name).Distinct())}");

    internal sealed record Sample(string Name, IReadOnlyDictionary<string, string> Labels, double Value);

    [GeneratedRegex(@"^# (HELP|TYPE|UNIT|EOF)( [a-zA-Z_:][a-zA-Z0-9_:]*( .*)?)?$")]
    private static partial Regex CommentLine();

    [GeneratedRegex(@"^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?<labels>([a-zA-Z_][a-zA-Z0-9_]*=""([^""\\]|\\.)*"",?)*)\})? (?<value>[-+]?([0-9.eE+-]+|Inf|NaN))( -?[0-9]+)?$")]
    private static partial Regex SampleLine();

    [GeneratedRegex(@"([a-zA-Z_][a-zA-Z0-9_]*)=""((?:[^""\\]|\\.)*)""")]
    private static partial Regex LabelPair();
}

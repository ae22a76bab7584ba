using System.Globalization;
using System.Net;
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

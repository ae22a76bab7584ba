using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace RaftMQ.Server.Tests;

/// <summary>The RRMQ cluster behaviours with real processes on real TCP: elections, failover, routing, durability.</summary>
[Collection(ClusterCollection.Name)]
public sealed partial class ClusterTests
{
    // Generous request timeout: on a loaded 2-core machine an election can take longer than the default.
    private static readonly string[] Args = ["--request-timeout-ms", "8000"];

    [Fact]
    public async Task Five_nodes_elect_exactly_one_leader_per_term_through_leader_kills()
    {
        await using var cluster = TestCluster.Create(5, Args);
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderAsync();
        for (int kill = 0; kill < 2; kill++)
        {
            await cluster.Node(leader).KillAsync();
            leader = await cluster.WaitForLeaderAsync(not: leader);
        }
        AssertOneLeaderPerTerm(cluster);
    }

    [Fact]
    public async Task A_topic_and_a_message_survive_the_leaders_death()
    {
        await using var cluster = TestCluster.Create(5, Args);
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderAsync();
        (await cluster.CreateTopicAsync(leader, "durable")).Status.ShouldBe(HttpStatusCode.Created);
        (await cluster.PublishAsync(leader, "durable", "kept")).Status.ShouldBe(HttpStatusCode.OK);

        await cluster.Node(leader).KillAsync();
        var next = await cluster.WaitForLeaderAsync(not: leader);
        (await cluster.TopicsAsync(next)).Body.ShouldBe("""{"success":true,"topics":["durable"]}""");
        (await cluster.PopAsync(next, "durable")).Body.ShouldBe("""{"success":true,"message":"kept"}""");
        AssertOneLeaderPerTerm(cluster);
    }

    [Fact]
    public async Task Followers_forward_writes_and_pops_and_serve_the_latest_reads()
    {
        await using var cluster = TestCluster.Create(3, Args);
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderAsync();
        var followers = Enumerable.Range(0, 3).Where(i => i != leader).ToArray();
        for (int round = 0; round < 5; round++)
        {
            var (a, b) = (followers[round % 2], followers[(round + 1) % 2]);
            var topic = $"t{round}";
            (await cluster.CreateTopicAsync(a, topic)).ShouldBe((HttpStatusCode.Created, """{"success":true}"""));
            // Linearizable: the other follower sees the write as soon as it was acknowledged.
            (await cluster.TopicsAsync(b)).Body.ShouldContain($"\"{topic}\"");
            (await cluster.PublishAsync(b, topic, $"m{round}")).ShouldBe((HttpStatusCode.OK, """{"success":true}"""));
            (await cluster.PopAsync(a, topic)).Body.ShouldBe($$"""{"success":true,"message":"m{{round}}"}""");
            (await cluster.PopAsync(b, topic)).ShouldBe((HttpStatusCode.NotFound, """{"success":false}"""));
        }
    }

    [Fact]
    public async Task A_client_sent_forwarded_header_has_no_effect_on_leader_or_follower()
    {
        // Followers forward over the authenticated peer link; an HTTP header saying "already forwarded" means nothing.
        await using var cluster = TestCluster.Create(3, Args);
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderAsync();
        var follower = Enumerable.Range(0, 3).First(i => i != leader);
        async Task<(HttpStatusCode Status, string Body, bool NotLeaderHeader)> SendAsync(int node, HttpMethod method, string path, string? body)
        {
            using var request = new HttpRequestMessage(method, cluster.Url(node, path));
            request.Headers.Add("X-RaftMQ-Forwarded", "1");
            if (body is not null) request.Content = new StringContent(body, System.Text.Encoding.UTF8, "application/json");
            using var response = await cluster.Http.SendAsync(request);
            return (response.StatusCode, await response.Content.ReadAsStringAsync(), response.Headers.Contains("X-RaftMQ-Not-Leader"));
        }
        foreach (var node in new[] { follower, leader })
        {
            var topic = $"spoof{node}";
            (await SendAsync(node, HttpMethod.Put, "/topic", $$"""{"topic":"{{topic}}"}""")).ShouldBe((HttpStatusCode.Created, """{"success":true}""", false));
            (await SendAsync(node, HttpMethod.Put, "/message", $$"""{"topic":"{{topic}}","message":"m"}""")).ShouldBe((HttpStatusCode.OK, """{"success":true}""", false));
            (await SendAsync(node, HttpMethod.Post, "/v1/messages", $$"""{"topic":"{{topic}}","messages":["n","o"]}""")).ShouldBe((HttpStatusCode.OK, """{"success":true,"published":2}""", false));
            (await SendAsync(node, HttpMethod.Get, $"/message/{topic}", null)).ShouldBe((HttpStatusCode.OK, """{"success":true,"message":"m"}""", false));
            (await SendAsync(node, HttpMethod.Post, "/v1/messages/pop", $$"""{"topic":"{{topic}}","max":5}""")).ShouldBe((HttpStatusCode.OK, """{"success":true,"messages":["n","o"]}""", false));
            (await SendAsync(node, HttpMethod.Get, $"/message/{topic}", null)).ShouldBe((HttpStatusCode.NotFound, """{"success":false}""", false));
        }
    }

    [Fact]
    public async Task A_write_through_a_follower_while_the_leader_is_dead_goes_to_the_next_leader_not_unknown()
    {
        await using var cluster = TestCluster.Create(3, Args);
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderAsync();
        var follower = Enumerable.Range(0, 3).First(i => i != leader);
        (await cluster.CreateTopicAsync(follower, "routed")).Status.ShouldBe(HttpStatusCode.Created);
        (await cluster.PublishAsync(follower, "routed", "before")).ShouldBe((HttpStatusCode.OK, """{"success":true}"""));
        (await Eventually.TrueAsync(async () => (await LinksDownAsync(cluster, follower)).Length == 0, TestCluster.DefaultTimeout))
            .ShouldBeTrue("every link of a healthy cluster comes up");

        await cluster.Node(leader).KillAsync();
        // The killed process closed its connections: the follower's link to it is down long before an election ends.
        (await Eventually.TrueAsync(async () => (await LinksDownAsync(cluster, follower)).SequenceEqual([leader]), TestCluster.DefaultTimeout))
            .ShouldBeTrue($"node {follower} should see its link to the killed node {leader} down");
        // Not sent to the dead leader (where its fate would be unknown): held until the next leader takes it.
        (await cluster.PublishAsync(follower, "routed", "during")).ShouldBe((HttpStatusCode.OK, """{"success":true}"""));

        var next = await cluster.WaitForLeaderAsync(not: leader);
        (await cluster.PopAsync(next, "routed")).Body.ShouldBe("""{"success":true,"message":"before"}""");
        (await cluster.PopAsync(next, "routed")).Body.ShouldBe("""{"success":true,"message":"during"}""");
        (await cluster.PopAsync(next, "routed")).Status.ShouldBe(HttpStatusCode.NotFound);
    }

    /// <summary>The nodes whose peer link from node <paramref name="node"/> is down, from its GET /v1/metrics.</summary>
    private static async Task<int[]> LinksDownAsync(TestCluster cluster, int node)
    {
        var (status, body) = await cluster.SendAsync(node, HttpMethod.Get, "/v1/metrics");
        status.ShouldBe(HttpStatusCode.OK);
        return [.. JsonDocument.Parse(body).RootElement.GetProperty("transport").GetProperty("links_down").EnumerateArray().Select(e => e.GetInt32())];
    }

    [Fact]
    public async Task Killing_the_leader_under_continuous_publishing_loses_and_duplicates_no_acknowledged_message()
    {
        await using var cluster = TestCluster.Create(3, Args);
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderAsync();
        (await cluster.CreateTopicAsync(leader, "stream")).Status.ShouldBe(HttpStatusCode.Created);

        const int total = 300;
        var acknowledged = new List<int>();
        var killed = -1;
        for (int i = 0; i < total; i++)
        {
            if (i == 100)
            {
                killed = leader;
                await cluster.Node(leader).KillAsync();
            }
            // Round-robin over the running nodes, so some requests go through followers; never retried.
            var running = Enumerable.Range(0, 3).Where(cluster.IsRunning).ToArray();
            var target = running[i % running.Length];
            try
            {
                var (status, body) = await cluster.PublishAsync(target, "stream", $"{i}");
                if (status == HttpStatusCode.OK && body == """{"success":true}""") acknowledged.Add(i);
            }
            catch (HttpRequestException)
            {
                // Outcome unknown: the message may or may not be in the queue, but at most once.
            }
        }
        acknowledged.Count.ShouldBeGreaterThan(250, "most publishes should succeed around one failover");

        var survivor = await cluster.WaitForLeaderAsync(not: killed);
        var popped = new List<int>();
        while (true)
        {
            var (status, body) = await cluster.PopAsync(survivor, "stream");
            if (status == HttpStatusCode.NotFound) break;
            status.ShouldBe(HttpStatusCode.OK);
            popped.Add(int.Parse(JsonDocument.Parse(body).RootElement.GetProperty("message").GetString()!, System.Globalization.CultureInfo.InvariantCulture));
        }
        popped.ShouldBeUnique();
        popped.ShouldBe(popped.Order().ToList(), "FIFO order of a single publisher");
        acknowledged.Except(popped).ShouldBeEmpty("every acknowledged message is delivered");
        AssertOneLeaderPerTerm(cluster);
    }

    /// <summary>From every node's complete log of role changes: no term has two different leaders.</summary>
    private static void AssertOneLeaderPerTerm(TestCluster cluster)
    {
        var leaders = new Dictionary<long, HashSet<int>>();
        for (int i = 0; i < cluster.Size; i++)
        {
            foreach (Match m in LeaderLine().Matches(cluster.Node(i).Output))
            {
                var term = long.Parse(m.Groups["term"].Value, System.Globalization.CultureInfo.InvariantCulture);
                if (!leaders.TryGetValue(term, out var set)) leaders[term] = set = [];
                set.Add(i);
            }
        }
        leaders.ShouldNotBeEmpty();
        foreach (var (term, set) in leaders) set.Count.ShouldBe(1, $"term {term} had leaders {string.Join(",", set)}");
    }

    [GeneratedRegex(@"is Leader in term (?<term>\d+)")]
    private static partial Regex LeaderLine();
}

/// <summary>Cluster tests run one at a time: each starts several processes on a small machine.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ClusterCollection
{
    public const string Name = "Real clusters";
}

using System.Net;
using System.Text;
using System.Text.Json;

namespace RaftMQ.Server.Tests;

/// <summary>A test that needs to mount a tmpfs; skipped, with the reason, where that is not permitted.</summary>
public sealed class TmpfsFactAttribute : FactAttribute
{
    public TmpfsFactAttribute()
    {
        if (TmpfsMount.WhyNotAvailable() is { } reason) Skip = reason;
    }
}

/// <summary>
/// The disk alarm (<c>--disk-free-limit-mb</c>): below the limit the leader refuses publishes and topic creation
/// with 507 and <c>X-RaftMQ-Error: disk-full</c>; pops and reads go on; nothing acknowledged is lost.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class DiskAlarmTests
{
    private const string DiskFull = "disk-full";

    private sealed record Answer(HttpStatusCode Status, string? ErrorCode, string Body)
    {
        public JsonElement Json => JsonDocument.Parse(Body).RootElement;
    }

    private static async Task<Answer> SendAsync(TestCluster cluster, int node, HttpMethod method, string path, object? body = null)
    {
        using var request = new HttpRequestMessage(method, cluster.Url(node, path));
        if (body is not null) request.Content = new StringContent(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json");
        using var response = await cluster.Http.SendAsync(request);
        var code = response.Headers.TryGetValues("X-RaftMQ-Error", out var codes) ? codes.Single() : null;
        return new Answer(response.StatusCode, code, await response.Content.ReadAsStringAsync());
    }

    private static Task<Answer> PublishBatchAsync(TestCluster cluster, int node, string topic, IReadOnlyList<string> messages) =>
        SendAsync(cluster, node, HttpMethod.Post, "/v1/messages", new { topic, messages });

    private static async Task<JsonElement> DiskMetricsAsync(TestCluster cluster, int node) =>
        (await SendAsync(cluster, node, HttpMethod.Get, "/v1/metrics")).Json.GetProperty("disk");

    private static void ShouldBeDiskFull(Answer a, long limitBytes, NodeProcess? node = null)
    {
        a.Status.ShouldBe(HttpStatusCode.InsufficientStorage, node is null ? a.Body : $"{a.Body}\nnode output:\n{node.Output}");
        a.ErrorCode.ShouldBe(DiskFull);
        var json = a.Json;
        json.GetProperty("success").GetBoolean().ShouldBeFalse();
        json.GetProperty("error").GetString()!.ShouldContain("disk full");
        json.GetProperty("limit_bytes").GetInt64().ShouldBe(limitBytes);
        json.GetProperty("free_bytes").GetInt64().ShouldBeLessThan(limitBytes);
    }

    /// <summary>Pops everything with batch pops, oldest first.</summary>
    private static async Task<List<string>> DrainAsync(TestCluster cluster, int node, string topic)
    {
        var popped = new List<string>();
        while (true)
        {
            var a = await SendAsync(cluster, node, HttpMethod.Post, "/v1/messages/pop", new { topic, max = 1000 });
            a.Status.ShouldBe(HttpStatusCode.OK, a.Body);
            var batch = a.Json.GetProperty("messages").EnumerateArray().Select(m => m.GetString()!).ToList();
            if (batch.Count == 0) return popped;
            popped.AddRange(batch);
        }
    }

    [TmpfsFact]
    public async Task A_full_disk_refuses_publishes_keeps_pops_and_loses_nothing_acknowledged()
    {
        const int limitMb = 20;
        const long limitBytes = limitMb * 1024L * 1024;
        await using var tmpfs = await TmpfsMount.MountAsync(Path.GetTempPath(), 64);
        await using var cluster = TestCluster.CreateIn(Path.Combine(tmpfs.Path, "cluster"), 1, "--disk-free-limit-mb", $"{limitMb}");
        // Space the test gives back at the end, to see the alarm clear.
        var reserve = Path.Combine(tmpfs.Path, "reserve");
        await File.WriteAllBytesAsync(reserve, new byte[16 << 20]);
        await cluster.StartAllAsync();
        var node = await cluster.WaitForLeaderAsync();
        (await cluster.CreateTopicAsync(node, "t")).Status.ShouldBe(HttpStatusCode.Created);
        (await DiskMetricsAsync(cluster, node)).GetProperty("alarm").GetBoolean().ShouldBeFalse();

        // Fill through the API: 100 KB batches (each costs about twice that: the log and the queue's segment file).
        var acknowledged = new List<string>();
        Answer refused = null!;
        for (int batch = 0; refused is null; batch++)
        {
            batch.ShouldBeLessThan(1000, "the disk alarm never refused a publish");
            var messages = Enumerable.Range(0, 100).Select(i => $"{batch:D5}.{i:D3} ".PadRight(1000, 'x')).ToList();
            var a = await PublishBatchAsync(cluster, node, "t", messages);
            if (a.Status == HttpStatusCode.OK) acknowledged.AddRange(messages);
            else refused = a;
        }
        ShouldBeDiskFull(refused, limitBytes, cluster.Node(node));
        acknowledged.Count.ShouldBeGreaterThan(0);

        // Every way of adding data is refused; the node stays up and says so in its metrics.
        var single = await SendAsync(cluster, node, HttpMethod.Put, "/message", new { topic = "t", message = "one more" });
        ShouldBeDiskFull(single, limitBytes);
        ShouldBeDiskFull(await SendAsync(cluster, node, HttpMethod.Put, "/topic", new { topic = "new" }), limitBytes);
        var disk = await DiskMetricsAsync(cluster, node);
        disk.GetProperty("alarm").GetBoolean().ShouldBeTrue();
        disk.GetProperty("limit_bytes").GetInt64().ShouldBe(limitBytes);
        disk.GetProperty("free_bytes").GetInt64().ShouldBeLessThan(limitBytes);
        cluster.Node(node).HasExited.ShouldBeFalse();
        // The console logger writes from a queue of its own, so the line can follow the answer that the alarm refused.
        (await Eventually.TrueAsync(() => Task.FromResult(cluster.Node(node).Output.Contains("Disk alarm", StringComparison.Ordinal)), TimeSpan.FromSeconds(10)))
            .ShouldBeTrue($"the node never logged its disk alarm: {cluster.Node(node).Output}");

        // Reads and pops go on, and give back exactly what was acknowledged, in order: nothing refused was applied.
        (await cluster.TopicsAsync(node)).ShouldBe((HttpStatusCode.OK, """{"success":true,"topics":["t"]}"""));
        (await cluster.PopAsync(node, "t")).ShouldBe((HttpStatusCode.OK, AnswerJson.Of(new { success = true, message = acknowledged[0] })));
        var rest = await DrainAsync(cluster, node, "t");
        rest.Count.ShouldBe(acknowledged.Count - 1);
        rest.SequenceEqual(acknowledged.Skip(1)).ShouldBeTrue("the popped messages differ from the acknowledged ones");
        (await cluster.PopAsync(node, "t")).Status.ShouldBe(HttpStatusCode.NotFound);

        // Space comes back: within the alarm's check interval, publishes are accepted again.
        File.Delete(reserve);
        (await Eventually.TrueAsync(
            async () => (await cluster.PublishAsync(node, "t", "after")).Status == HttpStatusCode.OK, TimeSpan.FromSeconds(5)))
            .ShouldBeTrue("publishes were still refused after space was freed");
        (await cluster.PopAsync(node, "t")).ShouldBe((HttpStatusCode.OK, """{"success":true,"message":"after"}"""));
        cluster.Node(node).HasExited.ShouldBeFalse();
    }

    [Fact]
    public async Task A_follower_relays_the_leaders_refusal_and_its_own_alarm_refuses_cluster_wide()
    {
        // A limit no disk meets (2 PB): every node's alarm is on.
        await using var cluster = TestCluster.Create(3, "--disk-free-limit-mb", "2000000000");
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderAsync();
        var follower = Enumerable.Range(0, 3).First(i => i != leader);
        const long limitBytes = 2000000000L * 1024 * 1024;

        // A follower forwards; the leader's disk decides and its answer comes back as it is.
        ShouldBeDiskFull(await SendAsync(cluster, follower, HttpMethod.Put, "/topic", new { topic = "t" }), limitBytes);
        ShouldBeDiskFull(await SendAsync(cluster, follower, HttpMethod.Put, "/message", new { topic = "t", message = "m" }), limitBytes);
        ShouldBeDiskFull(await PublishBatchAsync(cluster, follower, "t", ["a", "b"]), limitBytes);
        // Pops and reads are not refused (the topic does not exist: 404, not 507).
        (await cluster.PopAsync(follower, "t")).Status.ShouldBe(HttpStatusCode.NotFound);
        (await cluster.TopicsAsync(follower)).ShouldBe((HttpStatusCode.OK, """{"success":true,"topics":[]}"""));

        // Now the leader alone has room (limit 0: off). The followers' alarms are on: they report them to the leader,
        // which refuses new data for them (the cluster-wide alarm), naming the node.
        await cluster.Node(leader).TerminateAsync(TimeSpan.FromSeconds(5));
        cluster.Start(leader, "--disk-free-limit-mb", "0");
        var newLeader = await cluster.WaitForLeaderAsync();
        // The alarmed nodes can still win the election; move leadership until the node without the alarm leads.
        for (int attempt = 0; newLeader != leader; attempt++)
        {
            attempt.ShouldBeLessThan(20, "leadership never moved to the node without the alarm");
            await cluster.Node(newLeader).TerminateAsync(TimeSpan.FromSeconds(5));
            var stopped = newLeader;
            newLeader = await cluster.WaitForLeaderAsync();
            cluster.Start(stopped);
            await cluster.WaitUntilAnsweringAsync(stopped);
        }
        var alarmed = Enumerable.Range(0, 3).Where(i => i != leader).ToArray();
        (await DiskMetricsAsync(cluster, alarmed[0])).GetProperty("alarm").GetBoolean().ShouldBeTrue();
        (await DiskMetricsAsync(cluster, leader)).GetProperty("alarm").GetBoolean().ShouldBeFalse();
        Answer refused = null!;
        (await Eventually.TrueAsync(
            async () => (refused = await SendAsync(cluster, alarmed[0], HttpMethod.Put, "/topic", new { topic = "t" })).Status == HttpStatusCode.InsufficientStorage,
            TimeSpan.FromSeconds(10))).ShouldBeTrue($"the followers' alarms did not refuse: {refused.Status} {refused.Body}");
        ShouldBeDiskFull(refused, limitBytes);
        refused.Json.GetProperty("error").GetString()!.ShouldMatch($"^disk full: node ({alarmed[0]}|{alarmed[1]}) has .*any node's disk alarm is on");
        ShouldBeDiskFull(await SendAsync(cluster, leader, HttpMethod.Put, "/topic", new { topic = "t" }), limitBytes);

        // Room comes back on the followers (restarted with the alarm off): the leader admits data again by itself.
        foreach (var i in alarmed)
        {
            await cluster.Node(i).TerminateAsync(TimeSpan.FromSeconds(5));
            cluster.Start(i, "--disk-free-limit-mb", "0");
            await cluster.WaitUntilAnsweringAsync(i);
        }
        await cluster.WaitForLeaderAsync();
        // An attempt may time out (503, outcome unknown) while the restarts move leadership and still be applied: the
        // retry then finds the topic (409). Either way the leader admitted the creation, which every alarm refused.
        Answer created = null!;
        (await Eventually.TrueAsync(
            async () => (created = await SendAsync(cluster, alarmed[0], HttpMethod.Put, "/topic", new { topic = "t" })).Status
                is HttpStatusCode.Created or HttpStatusCode.Conflict,
            TimeSpan.FromSeconds(15))).ShouldBeTrue($"topic creation was still refused after every alarm cleared: {created.Status} {created.Body}");
        (await cluster.TopicsAsync(alarmed[0])).ShouldBe((HttpStatusCode.OK, """{"success":true,"topics":["t"]}"""));
        (await SendAsync(cluster, alarmed[0], HttpMethod.Put, "/message", new { topic = "t", message = "m" })).Status.ShouldBe(HttpStatusCode.OK);
        (await cluster.PopAsync(alarmed[0], "t")).ShouldBe((HttpStatusCode.OK, """{"success":true,"message":"m"}"""));
    }

    [TmpfsFact]
    public async Task A_follower_with_a_full_disk_keeps_running_the_cluster_refuses_publishes_and_recovers_when_space_returns()
    {
        const int limitMb = 20;
        const long limitBytes = limitMb * 1024L * 1024;
        await using var tmpfs = await TmpfsMount.MountAsync(Path.GetTempPath(), 64);
        var reserve = Path.Combine(tmpfs.Path, "reserve");
        await File.WriteAllBytesAsync(reserve, new byte[16 << 20]);
        // Nodes 0 and 1 have the temporary directory's disk; node 2 keeps its data on the small tmpfs.
        await using var cluster = TestCluster.Create(3);
        cluster.Start(0);
        cluster.Start(1);
        const int small = 2;
        cluster.Start(small, "--data-dir", Path.Combine(tmpfs.Path, "node-2"), "--disk-free-limit-mb", $"{limitMb}");
        for (int i = 0; i < 3; i++) await cluster.WaitUntilAnsweringAsync(i);
        var leader = await cluster.WaitForLeaderAsync();
        if (leader == small)
        {
            // The test is about a follower's disk: hand leadership to node 0.
            (await SendAsync(cluster, leader, HttpMethod.Post, "/v1/cluster/transfer-leader", new { to = 0 })).Status.ShouldBe(HttpStatusCode.OK);
            leader = await cluster.WaitForLeaderAsync(not: small);
        }
        (await cluster.CreateTopicAsync(leader, "t")).Status.ShouldBe(HttpStatusCode.Created);

        // Fill through the leader until the cluster refuses: node 2's disk is the one that fills. The leader and node 1
        // commit without node 2, so on a busy machine node 2 can fall far behind and its disk fill later than the
        // leader's log grows: each batch waits for node 2 to hold everything the leader has, so that the leader hears
        // of node 2's alarm by the time node 2's disk is what the batches have filled.
        var acknowledged = new List<string>();
        Answer refused = null!;
        for (int batch = 0; refused is null; batch++)
        {
            batch.ShouldBeLessThan(1000, "the cluster never refused a publish");
            var messages = Enumerable.Range(0, 100).Select(i => $"{batch:D5}.{i:D3} ".PadRight(1000, 'x')).ToList();
            var a = await PublishBatchAsync(cluster, leader, "t", messages);
            if (a.Status != HttpStatusCode.OK)
            {
                refused = a;
                break;
            }
            acknowledged.AddRange(messages);
            var leaderLast = (await SendAsync(cluster, leader, HttpMethod.Get, "/v1/status")).Json.GetProperty("last_index").GetInt64();
            long smallLast = 0;
            (await Eventually.TrueAsync(
                async () => (smallLast = (await SendAsync(cluster, small, HttpMethod.Get, "/v1/status")).Json.GetProperty("last_index").GetInt64()) >= leaderLast,
                TimeSpan.FromSeconds(30))).ShouldBeTrue($"node {small} stayed behind: last index {smallLast}, the leader's {leaderLast}");
        }
        ShouldBeDiskFull(refused, limitBytes, cluster.Node(small));
        refused.Json.GetProperty("error").GetString()!.ShouldStartWith($"disk full: node {small} has");
        acknowledged.Count.ShouldBeGreaterThan(0);
        // Refused through any node, and by every way of adding data; the full node keeps running and serving.
        ShouldBeDiskFull(await SendAsync(cluster, small, HttpMethod.Put, "/message", new { topic = "t", message = "one more" }), limitBytes);
        ShouldBeDiskFull(await SendAsync(cluster, 1, HttpMethod.Put, "/topic", new { topic = "new" }), limitBytes);
        (await DiskMetricsAsync(cluster, small)).GetProperty("alarm").GetBoolean().ShouldBeTrue();
        for (int i = 0; i < 3; i++) cluster.Node(i).HasExited.ShouldBeFalse($"node {i} stopped:\n{cluster.Node(i).Output}");
        (await cluster.TopicsAsync(small)).ShouldBe((HttpStatusCode.OK, """{"success":true,"topics":["t"]}"""));

        // Pops go on, through the full node too, and give back exactly what was acknowledged, in order.
        (await cluster.PopAsync(small, "t")).ShouldBe((HttpStatusCode.OK, AnswerJson.Of(new { success = true, message = acknowledged[0] })));
        var rest = await DrainAsync(cluster, leader, "t");
        rest.SequenceEqual(acknowledged.Skip(1)).ShouldBeTrue("the popped messages differ from the acknowledged ones");

        // Space comes back on node 2: its alarm clears, it tells the leader, and publishes are accepted again.
        File.Delete(reserve);
        (await Eventually.TrueAsync(
            async () => (await cluster.PublishAsync(leader, "t", "after")).Status == HttpStatusCode.OK, TimeSpan.FromSeconds(10)))
            .ShouldBeTrue("publishes were still refused after space was freed on the follower");
        (await cluster.PopAsync(small, "t")).ShouldBe((HttpStatusCode.OK, """{"success":true,"message":"after"}"""));
        for (int i = 0; i < 3; i++) cluster.Node(i).HasExited.ShouldBeFalse();
    }
}

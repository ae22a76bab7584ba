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
        cluster.Node(node).Output.ShouldContain("Disk alarm");

        // Reads and pops go on, and give back exactly what was acknowledged, in order: nothing refused was applied.
        (await cluster.TopicsAsync(node)).ShouldBe((HttpStatusCode.OK, """{"success":true,"topics":["t"]}"""));
        (await cluster.PopAsync(node, "t")).ShouldBe((HttpStatusCode.OK, JsonSerializer.Serialize(new { success = true, message = acknowledged[0] })));
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
    public async Task A_follower_relays_the_leaders_refusal_and_its_own_alarm_does_not_refuse()
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

        // Now the leader alone has room (limit 0: off). The follower's alarm stays on, but it does not decide.
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
        var alarmed = Enumerable.Range(0, 3).First(i => i != leader);
        (await DiskMetricsAsync(cluster, alarmed)).GetProperty("alarm").GetBoolean().ShouldBeTrue();
        (await DiskMetricsAsync(cluster, leader)).GetProperty("alarm").GetBoolean().ShouldBeFalse();
        (await SendAsync(cluster, alarmed, HttpMethod.Put, "/topic", new { topic = "t" })).Status.ShouldBe(HttpStatusCode.Created);
        (await SendAsync(cluster, alarmed, HttpMethod.Put, "/message", new { topic = "t", message = "m" })).Status.ShouldBe(HttpStatusCode.OK);
        (await cluster.PopAsync(alarmed, "t")).ShouldBe((HttpStatusCode.OK, """{"success":true,"message":"m"}"""));
    }
}

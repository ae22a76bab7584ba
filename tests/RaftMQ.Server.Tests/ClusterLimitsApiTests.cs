using System.Net;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

using static RaftMQ.Server.Tests.V1Api;

namespace RaftMQ.Server.Tests;

/// <summary>
/// The queue-wide bounds through a real 3-node cluster (docs/rest-api.md, "Limits"): read and changed through a
/// follower, enforced by the leader, refused when malformed, and kept by a node that restarts from a snapshot taken
/// after the change.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed partial class ClusterLimitsApiTests
{
    [GeneratedRegex(@"took snapshot (\d+)")]
    private static partial Regex SnapshotTaken();

    [GeneratedRegex(@"restored the state machine from snapshot (\d+)")]
    private static partial Regex SnapshotRestored();

    [GeneratedRegex(@"^raftmq_queue_limit_size_bytes(\{[^}]*\})? 3000000000\b", RegexOptions.Multiline)]
    private static partial Regex LimitGauge();

    private const string Limits = "/v1/cluster/limits";

    private static (long, long, long, long, long, long) Read(JsonObject json) => (
        json["max_bytes"]!.GetValue<long>(), json["max_messages"]!.GetValue<long>(), json["max_topic_bytes"]!.GetValue<long>(),
        json["max_topic_messages"]!.GetValue<long>(), json["bytes"]!.GetValue<long>(), json["messages"]!.GetValue<long>());

    [Fact]
    public async Task Limits_are_read_and_changed_through_any_node_and_survive_a_restart_from_a_snapshot()
    {
        // A snapshot every few entries, so the change is inside the snapshot the restarted node loads.
        await using var cluster = TestCluster.Create(3, "--request-timeout-ms", "8000", "--snapshot-every", "4");
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderAsync();
        var follower = Enumerable.Range(0, 3).First(i => i != leader);

        Read(await Ok(cluster, follower, HttpMethod.Get, Limits)).ShouldBe((1L << 30, 20_000_000L, 1L << 30, 10_000_000L, 0L, 0L));
        await Ok(cluster, follower, HttpMethod.Put, Path("t"), null, HttpStatusCode.Created);

        var changed = await Ok(cluster, follower, HttpMethod.Put, Limits, """{"max_topic_messages": 2, "max_bytes": 3000000000}""");
        Read(changed).ShouldBe((3_000_000_000L, 20_000_000L, 1L << 30, 2L, 0L, 0L));
        // Every node's metrics show the bound it enforces.
        foreach (var node in Enumerable.Range(0, 3))
        {
            (await Eventually.TrueAsync(
                async () => LimitGauge().IsMatch((await cluster.SendAsync(node, HttpMethod.Get, "/metrics")).Body),
                TimeSpan.FromSeconds(20), TimeSpan.FromMilliseconds(100))).ShouldBeTrue($"node {node}'s raftmq_queue_limit_size_bytes");
        }
        var changeIndex = JsonNode.Parse((await cluster.SendAsync(follower, HttpMethod.Get, "/v1/status")).Body)!["applied_index"]!.GetValue<long>();
        await Ok(cluster, follower, HttpMethod.Post, Path("t", "publish"), """{"messages": [{"body": "a"}, {"body": "b"}]}""");
        var error = await Refused(cluster, follower, HttpMethod.Post, Path("t", "publish"), """{"messages": [{"body": "c"}]}""", HttpStatusCode.InsufficientStorage);
        error.ShouldContain("/v1/cluster/limits");
        (await cluster.PublishAsync(leader, "t", "c")).Status.ShouldBe(HttpStatusCode.InsufficientStorage, "the RRMQ publish meets the same bound");
        Read(await Ok(cluster, leader, HttpMethod.Get, Limits)).ShouldBe((3_000_000_000L, 20_000_000L, 1L << 30, 2L, 2L * (28 + 1), 2L));

        // Malformed changes: 400, nothing changed.
        foreach (var bad in new[]
        {
            "{}", """{"max_bytes": 0}""", """{"max_messages": -1}""", """{"max_bytes": "1"}""", """{"max_bytes": 1.5}""",
            """{"max_topic_bytes": 1099511627777}""", """{"limit": 5}""", """{"max_bytes": 5, "max_bytes": 6}""", "[1]", "{\"max_bytes\": ",
        })
        {
            await Refused(cluster, follower, HttpMethod.Put, Limits, bad, HttpStatusCode.BadRequest);
        }
        Read(await Ok(cluster, follower, HttpMethod.Get, Limits)).Item4.ShouldBe(2L);

        // Enough entries that every node snapshots past the change; then a follower restarts and must still enforce it.
        for (int i = 0; i < 6; i++) await Ok(cluster, leader, HttpMethod.Put, Path($"other-{i}"), null, HttpStatusCode.Created);
        (await cluster.Node(follower).WaitForLineAsync(
            line => SnapshotTaken().Match(line) is { Success: true } m && long.Parse(m.Groups[1].Value) >= changeIndex, TimeSpan.FromSeconds(20)))
            .ShouldBeTrue($"the follower took a snapshot at or past the change (index {changeIndex})");
        await cluster.Node(follower).KillAsync();
        cluster.Start(follower);
        await cluster.WaitUntilAnsweringAsync(follower);
        (await Eventually.TrueAsync(
            async () => (await cluster.SendAsync(follower, HttpMethod.Get, Limits)).Status == HttpStatusCode.OK,
            TimeSpan.FromSeconds(20), TimeSpan.FromMilliseconds(100))).ShouldBeTrue();
        Read(await Ok(cluster, follower, HttpMethod.Get, Limits)).ShouldBe((3_000_000_000L, 20_000_000L, 1L << 30, 2L, 2L * (28 + 1), 2L));
        var restored = SnapshotRestored().Match(cluster.Node(follower).Output);
        restored.Success.ShouldBeTrue("the restarted node restored a snapshot");
        long.Parse(restored.Groups[1].Value).ShouldBeGreaterThanOrEqualTo(changeIndex);

        // Raising the bound admits the publish, through the restarted node.
        await Ok(cluster, follower, HttpMethod.Put, Limits, """{"max_topic_messages": 3}""");
        await Ok(cluster, follower, HttpMethod.Post, Path("t", "publish"), """{"messages": [{"body": "c"}]}""");
    }
}

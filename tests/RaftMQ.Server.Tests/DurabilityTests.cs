using System.Net;

namespace RaftMQ.Server.Tests;

/// <summary>State on disk: restarts, snapshots, catching up a follower by InstallSnapshot, isolation of clusters.</summary>
[Collection(ClusterCollection.Name)]
public sealed class DurabilityTests
{
    private static readonly string[] Args = ["--request-timeout-ms", "8000"];

    [Fact]
    public async Task A_single_node_restarts_as_leader_with_its_topics_and_messages()
    {
        await using var cluster = TestCluster.Create(1, Args);
        await cluster.StartAllAsync();
        await cluster.CreateTopicAsync(0, "a");
        await cluster.CreateTopicAsync(0, "b");
        for (int i = 0; i < 3; i++) await cluster.PublishAsync(0, "a", $"m{i}");
        (await cluster.PopAsync(0, "a")).Body.ShouldBe("""{"success":true,"message":"m0"}""");

        await cluster.Node(0).KillAsync();
        cluster.Start(0);
        await cluster.WaitUntilAnsweringAsync(0);
        (await cluster.WaitForLeaderAsync()).ShouldBe(0);
        (await cluster.TopicsAsync(0)).Body.ShouldBe("""{"success":true,"topics":["a","b"]}""");
        (await cluster.PopAsync(0, "a")).Body.ShouldBe("""{"success":true,"message":"m1"}""");
        (await cluster.PopAsync(0, "a")).Body.ShouldBe("""{"success":true,"message":"m2"}""");
        (await cluster.PopAsync(0, "a")).Status.ShouldBe(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task A_whole_cluster_restart_recovers_the_state_from_disk()
    {
        await using var cluster = TestCluster.Create(3, Args);
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderAsync();
        await cluster.CreateTopicAsync(leader, "orders");
        for (int i = 0; i < 20; i++) (await cluster.PublishAsync(i % 3, "orders", $"o{i}")).Status.ShouldBe(HttpStatusCode.OK);
        for (int i = 0; i < 5; i++) (await cluster.PopAsync(leader, "orders")).Status.ShouldBe(HttpStatusCode.OK);

        await cluster.StopAllAsync();
        await cluster.StartAllAsync();
        var next = await cluster.WaitForLeaderAsync();
        (await cluster.TopicsAsync(next)).Body.ShouldBe("""{"success":true,"topics":["orders"]}""");
        for (int i = 5; i < 20; i++)
            (await cluster.PopAsync(i % 3, "orders")).Body.ShouldBe($$"""{"success":true,"message":"o{{i}}"}""");
        (await cluster.PopAsync(next, "orders")).Status.ShouldBe(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task A_follower_that_missed_compacted_entries_is_caught_up_with_a_snapshot()
    {
        // Snapshot every 40 entries, keeping 4 behind: a follower away for 200 entries needs the snapshot.
        await using var cluster = TestCluster.Create(3, [.. Args, "--snapshot-every", "40"]);
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderAsync();
        var away = (leader + 1) % 3;
        var other = (leader + 2) % 3;
        await cluster.CreateTopicAsync(leader, "t");
        await cluster.Node(away).KillAsync();
        for (int i = 0; i < 200; i++) (await cluster.PublishAsync(leader, "t", $"{i}")).Status.ShouldBe(HttpStatusCode.OK);
        (await cluster.Node(leader).WaitForLineAsync(l => l.Contains("took snapshot", StringComparison.Ordinal), TestCluster.DefaultTimeout))
            .ShouldBeTrue("the leader should have taken a snapshot");

        // The leader restarts too (its queued messages to the dead follower die with it), recovering from its
        // snapshot and the log after it.
        await cluster.Node(leader).KillAsync();
        cluster.Start(leader);
        (await cluster.Node(leader).WaitForLineAsync(l => l.Contains("restored the state machine from snapshot", StringComparison.Ordinal), TestCluster.DefaultTimeout))
            .ShouldBeTrue($"the restarted node should start from its snapshot; output:\n{cluster.Node(leader).Output}");
        await cluster.WaitForLeaderAsync(not: away);

        cluster.Start(away);
        (await cluster.Node(away).WaitForLineAsync(l => l.Contains("installed snapshot", StringComparison.Ordinal), TestCluster.DefaultTimeout))
            .ShouldBeTrue($"the returning follower should install the leader's snapshot; output:\n{cluster.Node(away).Output}");

        // Now the returning follower must be part of every majority: the third node goes down.
        var current = await cluster.WaitForLeaderAsync();
        var victim = current == away ? (away + 1) % 3 : (current == leader ? other : leader);
        await cluster.Node(victim).KillAsync();
        for (int i = 0; i < 200; i++)
            (await cluster.PopAsync(away, "t")).Body.ShouldBe($$"""{"success":true,"message":"{{i}}"}""");
        (await cluster.PopAsync(away, "t")).Status.ShouldBe(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Two_clusters_started_from_the_same_directory_never_see_each_others_state()
    {
        var directory = TestCluster.NewDirectory();
        await using (var first = TestCluster.CreateIn(directory, 1, Args))
        {
            await first.StartAllAsync();
            await first.CreateTopicAsync(0, "first-only");
            await first.StopAllAsync();
        }
        await using var second = TestCluster.CreateIn(directory, 1, Args);
        await second.StartAllAsync();
        (await second.TopicsAsync(0)).Body.ShouldBe("""{"success":true,"topics":[]}""");
    }
}

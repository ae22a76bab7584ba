using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using RaftMQ.Client;

namespace RaftMQ.Server.Tests;

/// <summary>
/// Membership changes on real node processes: nodes joining with <c>raftmq-node --join</c>, members removed with
/// <c>DELETE /v1/cluster/members/{node}</c> (the leader included), a joined node's restart, and every misuse.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class MembershipTests
{
    // Elections only when a node is really gone: the tests name nodes by their role, and a busy machine must not move
    // leadership on its own (removing the leader hands over at once; no test waits for an election timeout).
    private static readonly string[] Args = ["--request-timeout-ms", "8000", "--election-timeout-ms", "1000", "--heartbeat-ms", "100"];
    private static readonly TimeSpan Progress = TimeSpan.FromSeconds(30);

    private sealed record Member(int Node, string Role, string Url);

    /// <summary>The members as node <paramref name="via"/> reports them (null when it does not answer 200).</summary>
    private static async Task<List<Member>?> MembersAsync(TestCluster cluster, int via)
    {
        try
        {
            var (status, body) = await cluster.SendAsync(via, HttpMethod.Get, "/v1/cluster/members");
            if (status != HttpStatusCode.OK) return null;
            using var doc = JsonDocument.Parse(body);
            return [.. doc.RootElement.GetProperty("members").EnumerateArray().Select(m => new Member(
                m.GetProperty("node").GetInt32(), m.GetProperty("role").GetString()!, m.GetProperty("url").GetString()!))];
        }
        catch (HttpRequestException)
        {
            return null;
        }
    }

    /// <summary>Waits until node <paramref name="via"/> answers a members list that satisfies <paramref name="condition"/>.</summary>
    private static async Task WaitForMembersAsync(TestCluster cluster, int via, Func<List<Member>, bool> condition, string what)
    {
        List<Member>? last = null;
        var ok = await Eventually.TrueAsync(async () => (last = await MembersAsync(cluster, via)) is not null && condition(last), Progress);
        ok.ShouldBeTrue($"node {via} did not report {what}; last seen: {(last is null ? "no answer" : string.Join(", ", last))}");
    }

    private static async Task WaitForVotersAsync(TestCluster cluster, int via, int[] voters)
    {
        List<Member>? last = null;
        var ok = await Eventually.TrueAsync(async () =>
        {
            last = await MembersAsync(cluster, via);
            return last is not null && last.All(m => m.Role == "voter") && last.Select(m => m.Node).Order().SequenceEqual(voters);
        }, Progress);
        ok.ShouldBeTrue($"the members did not become voters {string.Join(',', voters)}; last seen: {(last is null ? "none" : string.Join(", ", last))}");
    }

    [Fact]
    public async Task Three_nodes_grow_to_five_and_shrink_to_three_removing_the_leader_while_a_client_publishes_and_no_acknowledged_message_is_lost()
    {
        await using var cluster = TestCluster.CreateGrowable(3, 2, Args);
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderAsync();
        (await cluster.CreateTopicAsync(leader, "growing")).Status.ShouldBe(HttpStatusCode.Created);

        using var client = new RaftMQClient(Enumerable.Range(0, 5).Select(i => cluster.Url(i, "/")));
        await using var history = PublishHistory.Start(client, "growing");
        var acknowledged = history.Acknowledged;
        async Task MakesProgress(string after)
        {
            var before = acknowledged.Count;
            (await Eventually.TrueAsync(() => Task.FromResult(acknowledged.Count >= before + 20), Progress))
                .ShouldBeTrue($"the publisher made no progress after {after}");
        }

        var removed = new List<int>();
        try
        {
            await MakesProgress("the start");

            // Grow: node 3 asks the leader, node 4 a follower (which names the leader).
            cluster.StartJoining(3, leader);
            await WaitForVotersAsync(cluster, leader, [0, 1, 2, 3]);
            await MakesProgress("node 3 joined");
            cluster.StartJoining(4, (leader + 1) % 3);
            await WaitForVotersAsync(cluster, leader, [0, 1, 2, 3, 4]);
            await MakesProgress("node 4 joined");
            foreach (var i in new[] { 3, 4 }) await WaitForMembersAsync(cluster, i, m => m.Count == 5, "the five members");

            // Shrink: the leader first (it hands over and steps down), then one of the nodes that joined.
            leader = await cluster.WaitForLeaderAsync();
            var (status, body) = await cluster.SendAsync(leader, HttpMethod.Delete, $"/v1/cluster/members/{leader}");
            status.ShouldBe(HttpStatusCode.OK, body);
            removed.Add(leader);
            var newLeader = await cluster.WaitForLeaderAsync(not: leader);
            await cluster.Node(leader).TerminateAsync(TimeSpan.FromSeconds(5));
            await MakesProgress($"the leader (node {leader}) was removed");
            var second = new[] { 4, 3 }.First(i => i != newLeader && i != leader);
            (status, body) = await cluster.SendAsync(newLeader, HttpMethod.Delete, $"/v1/cluster/members/{second}");
            status.ShouldBe(HttpStatusCode.OK, body);
            removed.Add(second);
            await cluster.Node(second).TerminateAsync(TimeSpan.FromSeconds(5));
            await WaitForVotersAsync(cluster, newLeader, [.. Enumerable.Range(0, 5).Except(removed)]);
            await MakesProgress($"node {second} was removed");
        }
        finally
        {
            await history.StopAsync();
        }

        await history.DrainAndCheckAsync();
        acknowledged.Count.ShouldBeGreaterThanOrEqualTo(100);
        // Every remaining node holds the same queue: a pop through each finds it empty, and each one still serves.
        foreach (var i in Enumerable.Range(0, 5).Except(removed))
            (await cluster.PopAsync(i, "growing")).Status.ShouldBe(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task A_joined_node_restarted_with_the_same_command_keeps_its_identity_and_membership()
    {
        await using var cluster = TestCluster.CreateGrowable(3, 1, Args);
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderAsync();
        (await cluster.CreateTopicAsync(leader, "kept")).Status.ShouldBe(HttpStatusCode.Created);
        (await cluster.PublishAsync(leader, "kept", "before")).Status.ShouldBe(HttpStatusCode.OK);
        cluster.StartJoining(3, leader);
        await WaitForVotersAsync(cluster, leader, [0, 1, 2, 3]);
        var (_, statusBefore) = await cluster.SendAsync(3, HttpMethod.Get, "/v1/status");
        var clusterId = JsonDocument.Parse(statusBefore).RootElement.GetProperty("cluster_id").GetString();

        await cluster.Node(3).KillAsync();
        cluster.Start(3); // the same --join command: the identity in its data directory wins
        await cluster.WaitUntilAnsweringAsync(3);

        (await cluster.Node(3).WaitForLineAsync(l => l.Contains("Node 4 started", StringComparison.Ordinal), TimeSpan.FromSeconds(15)))
            .ShouldBeTrue(cluster.Node(3).Output);
        cluster.Node(3).Output.ShouldNotContain("asking the cluster");
        await WaitForVotersAsync(cluster, 3, [0, 1, 2, 3]);
        using (var status = JsonDocument.Parse((await cluster.SendAsync(3, HttpMethod.Get, "/v1/status")).Body))
        {
            status.RootElement.GetProperty("node").GetInt32().ShouldBe(3);
            status.RootElement.GetProperty("cluster_id").GetString().ShouldBe(clusterId);
        }
        // It serves: a publish through it, then the messages in order through another node.
        (await cluster.PublishAsync(3, "kept", "after")).Status.ShouldBe(HttpStatusCode.OK);
        (await cluster.PopAsync(0, "kept")).Body.ShouldBe("""{"success":true,"message":"before"}""");
        (await cluster.PopAsync(1, "kept")).Body.ShouldBe("""{"success":true,"message":"after"}""");
        File.Exists(Path.Combine(cluster.JoinedDataDirectory(3), "node-identity.json")).ShouldBeTrue();
    }

    [Fact]
    public async Task Every_misuse_of_the_members_endpoints_gets_a_clear_error()
    {
        await using var cluster = TestCluster.CreateGrowable(3, 1, Args);
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderAsync();
        var follower = (leader + 1) % 3;
        const string path = "/v1/cluster/members";

        // A follower names the leader.
        using (var request = new HttpRequestMessage(HttpMethod.Delete, cluster.Url(follower, path + "/" + follower)))
        {
            using var response = await cluster.Http.SendAsync(request);
            response.StatusCode.ShouldBe(HttpStatusCode.Conflict);
            response.Headers.GetValues("X-RaftMQ-Error").ShouldBe(["not-leader"]);
            using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            doc.RootElement.GetProperty("leader").GetInt32().ShouldBe(leader);
            doc.RootElement.GetProperty("leader_url").GetString().ShouldBe(cluster.Url(leader, "/").ToString());
        }
        // Bad bodies and node numbers.
        (await cluster.SendAsync(leader, HttpMethod.Post, path, "{}")).Status.ShouldBe(HttpStatusCode.BadRequest);
        (await cluster.SendAsync(leader, HttpMethod.Post, path, "not json")).Status.ShouldBe(HttpStatusCode.BadRequest);
        (await cluster.SendAsync(leader, HttpMethod.Post, path, """{"url": "ftp://127.0.0.1:9"}""")).Status.ShouldBe(HttpStatusCode.BadRequest);
        (await cluster.SendAsync(leader, HttpMethod.Post, path, """{"url": "http://127.0.0.1:9", "peer_port": 70000}""")).Status.ShouldBe(HttpStatusCode.BadRequest);
        (await cluster.SendAsync(leader, HttpMethod.Delete, path + "/abc")).Status.ShouldBe(HttpStatusCode.BadRequest);
        var (status, body) = await cluster.SendAsync(leader, HttpMethod.Delete, path + "/7");
        status.ShouldBe(HttpStatusCode.NotFound);
        body.ShouldContain("node 7 is not a member");
        // Adding a member twice: by its address, or by its number.
        (status, body) = await cluster.SendAsync(leader, HttpMethod.Post, path, $$"""{"url": "{{cluster.Url(follower, "").ToString().TrimEnd('/')}}"}""");
        status.ShouldBe(HttpStatusCode.Conflict);
        body.ShouldContain($"already node {follower}");
        (status, body) = await cluster.SendAsync(leader, HttpMethod.Post, path, $$"""{"url": "http://127.0.0.1:{{cluster.Ports[3].Http}}", "node": {{follower}}}""");
        status.ShouldBe(HttpStatusCode.Conflict);
        body.ShouldContain($"node {follower} is already a member");

        // A node added but never started stays a learner (it cannot catch up), and can be removed.
        (status, body) = await cluster.SendAsync(leader, HttpMethod.Post, path,
            $$"""{"url": "http://127.0.0.1:{{cluster.Ports[3].Http}}", "peer_port": {{cluster.Ports[3].Peer}}}""");
        status.ShouldBe(HttpStatusCode.Created, body);
        using (var doc = JsonDocument.Parse(body))
        {
            doc.RootElement.GetProperty("node").GetInt32().ShouldBe(3);
            doc.RootElement.GetProperty("members").EnumerateArray().Single(m => m.GetProperty("node").GetInt32() == 3)
                .GetProperty("role").GetString().ShouldBe("learner");
        }
        await WaitForMembersAsync(cluster, follower, m => m.Any(x => x.Node == 3 && x.Role == "learner"), "node 3 as a learner");
        (await cluster.SendAsync(leader, HttpMethod.Delete, path + "/3")).Status.ShouldBe(HttpStatusCode.OK);

        // Removing down to the last voter: the last one is refused.
        foreach (var i in Enumerable.Range(0, 3).Where(i => i != leader))
        {
            (status, body) = await cluster.SendAsync(leader, HttpMethod.Delete, $"{path}/{i}");
            status.ShouldBe(HttpStatusCode.OK, body);
        }
        using (var request = new HttpRequestMessage(HttpMethod.Delete, cluster.Url(leader, $"{path}/{leader}")))
        {
            using var response = await cluster.Http.SendAsync(request);
            response.StatusCode.ShouldBe(HttpStatusCode.Conflict);
            response.Headers.GetValues("X-RaftMQ-Error").ShouldBe(["last-voter"]);
            (await response.Content.ReadAsStringAsync()).ShouldContain("last voter");
        }
        // The one remaining node serves alone.
        (await cluster.CreateTopicAsync(leader, "alone")).Status.ShouldBe(HttpStatusCode.Created);
        await WaitForMembersAsync(cluster, leader, m => m.Select(x => x.Node).SequenceEqual([leader]), $"node {leader} alone");
    }

    [Fact]
    public async Task A_node_whose_disk_was_wiped_is_replaced_by_a_new_node_that_catches_up_from_a_snapshot()
    {
        await using var cluster = TestCluster.CreateGrowable(3, 1, [.. Args, "--snapshot-every", "20"]);
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderAsync();
        (await cluster.CreateTopicAsync(leader, "kept")).Status.ShouldBe(HttpStatusCode.Created);
        for (var i = 0; i < 60; i++) (await cluster.PublishAsync(leader, "kept", "m" + i)).Status.ShouldBe(HttpStatusCode.OK);

        // A follower's disk dies: the process is gone and its data with it.
        var dead = (leader + 1) % 3;
        await cluster.Node(dead).KillAsync();
        var (status, body) = await cluster.SendAsync(leader, HttpMethod.Delete, $"/v1/cluster/members/{dead}");
        status.ShouldBe(HttpStatusCode.OK, body);
        await WaitForVotersAsync(cluster, leader, [.. Enumerable.Range(0, 3).Where(i => i != dead)]);

        // Its replacement joins empty, gets the snapshot and the log after it, and is promoted.
        cluster.StartJoining(3, leader);
        await WaitForVotersAsync(cluster, leader, [.. Enumerable.Range(0, 4).Where(i => i != dead)]);
        (await cluster.Node(3).WaitForLineAsync(l => l.Contains("installed snapshot", StringComparison.Ordinal), TimeSpan.FromSeconds(15)))
            .ShouldBeTrue(cluster.Node(3).Output);
        // The cluster of three now survives the loss of any one of them: the replacement counts in the quorum.
        var other = Enumerable.Range(0, 3).Single(i => i != dead && i != leader);
        await cluster.Node(other).KillAsync();
        for (var i = 0; i < 60; i++) (await cluster.PopAsync(3, "kept")).Body.ShouldBe($$"""{"success":true,"message":"m{{i}}"}""");
        (await cluster.PopAsync(leader, "kept")).Status.ShouldBe(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task A_join_without_an_address_or_without_the_clusters_secret_stops_at_once_with_what_to_do()
    {
        var directory = TestCluster.NewDirectory();
        Directory.CreateDirectory(directory);
        try
        {
            var port = TestCluster.FreePorts(1)[0];
            await using (var noAddress = NodeProcess.StartWith(["--join", $"http://127.0.0.1:{port}"], 0, directory))
            {
                (await noAddress.WaitForExitAsync(TimeSpan.FromSeconds(30))).ShouldBeTrue();
                noAddress.ExitCode.ShouldBe(2);
                noAddress.Output.ShouldContain("--join needs --address");
            }
            await using (var noSecret = NodeProcess.StartWith(
                ["--join", $"http://127.0.0.1:{port}", "--address", $"127.0.0.1:{port}", "--data-dir", Path.Combine(directory, "d")], 0, directory))
            {
                (await noSecret.WaitForExitAsync(TimeSpan.FromSeconds(30))).ShouldBeTrue();
                noSecret.ExitCode.ShouldBe(2);
                noSecret.Output.ShouldContain("needs the cluster's secret");
            }
            File.Exists(Path.Combine(directory, "d", "node-identity.json")).ShouldBeFalse();
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task After_losing_its_majority_for_good_a_node_restarted_with_force_new_cluster_serves_alone_and_grows_again()
    {
        await using var cluster = TestCluster.CreateGrowable(3, 1, Args);
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderAsync();
        (await cluster.CreateTopicAsync(leader, "kept")).Status.ShouldBe(HttpStatusCode.Created);
        for (var i = 0; i < 5; i++) (await cluster.PublishAsync(leader, "kept", "m" + i)).Status.ShouldBe(HttpStatusCode.OK);

        // Two of three nodes are lost for good; the survivor alone cannot commit anything.
        var survivor = (leader + 1) % 3;
        foreach (var i in Enumerable.Range(0, 3).Where(i => i != survivor)) await cluster.Node(i).KillAsync();
        await cluster.Node(survivor).TerminateAsync(TimeSpan.FromSeconds(5));

        cluster.Start(survivor, "--force-new-cluster");
        await cluster.WaitUntilAnsweringAsync(survivor);
        (await cluster.Node(survivor).WaitForLineAsync(l => l.Contains("is now the only voter", StringComparison.Ordinal), TimeSpan.FromSeconds(15)))
            .ShouldBeTrue(cluster.Node(survivor).Output);
        (await cluster.WaitForLeaderAsync()).ShouldBe(survivor);
        await WaitForMembersAsync(cluster, survivor, m => m.Select(x => x.Node).SequenceEqual([survivor]), $"node {survivor} alone");
        for (var i = 0; i < 5; i++) (await cluster.PopAsync(survivor, "kept")).Body.ShouldBe($$"""{"success":true,"message":"m{{i}}"}""");
        (await cluster.PublishAsync(survivor, "kept", "alone")).Status.ShouldBe(HttpStatusCode.OK);

        // It grows again with a new node. The option works once: left on at a restart, the node refuses to start
        // (forcing again would drop the new member); without it, the node is back in the grown cluster.
        cluster.StartJoining(3, survivor);
        await WaitForVotersAsync(cluster, survivor, [.. new[] { survivor, 3 }.Order()]);
        await cluster.Node(survivor).TerminateAsync(TimeSpan.FromSeconds(5));
        var again = cluster.Start(survivor, "--force-new-cluster");
        (await again.WaitForExitAsync(TimeSpan.FromSeconds(30))).ShouldBeTrue(again.Output);
        again.ExitCode.ShouldBe(1);
        again.Output.ShouldContain("already applied");
        cluster.Start(survivor);
        await cluster.WaitUntilAnsweringAsync(survivor);
        await WaitForVotersAsync(cluster, 3, [.. new[] { survivor, 3 }.Order()]);
        (await cluster.PopAsync(3, "kept")).Body.ShouldBe("""{"success":true,"message":"alone"}""");
    }
}

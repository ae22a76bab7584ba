using System.Net;

namespace RaftMQ.Server.Tests;

/// <summary>
/// The peers' secret with real node processes started the RRMQ way (one config file, no secret given): the first node
/// creates a random secret next to the config, every node keeps a copy, all data stays owner-only, and a node with
/// another secret is refused by the others.
/// </summary>
[Collection(ClusterCollection.Name)]
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class PeerSecretTests
{
    private const UnixFileMode GroupOrOther =
        UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
        | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;

    private static readonly string[] Args = ["--request-timeout-ms", "8000"];

    [Fact]
    public async Task Nodes_started_without_a_secret_share_a_generated_one_and_keep_their_data_owner_only()
    {
        await using var cluster = TestCluster.Create(3, [.. Args, "--snapshot-every", "20"]);
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderAsync();
        var follower = (leader + 1) % 3;
        (await cluster.CreateTopicAsync(follower, "t")).Status.ShouldBe(HttpStatusCode.Created);
        for (int i = 0; i < 30; i++) (await cluster.PublishAsync(follower, "t", $"m{i}")).Status.ShouldBe(HttpStatusCode.OK);
        (await cluster.PopAsync((leader + 2) % 3, "t")).Body.ShouldBe("""{"success":true,"message":"m0"}""");
        (await cluster.Node(leader).WaitForLineAsync(l => l.Contains("took snapshot", StringComparison.Ordinal), TestCluster.DefaultTimeout))
            .ShouldBeTrue("the leader should have written a snapshot too");

        var shared = cluster.ConfigPath + ".secret";
        File.GetUnixFileMode(shared).ShouldBe(UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var secret = File.ReadAllText(shared).Trim();
        Convert.FromHexString(secret).Length.ShouldBe(32);

        var data = Path.Combine(cluster.Directory, "raftmq-data");
        var copies = Directory.GetFiles(data, "cluster-secret", SearchOption.AllDirectories);
        copies.Length.ShouldBe(3, "each node keeps a copy in its data directory");
        foreach (var copy in copies) File.ReadAllText(copy).Trim().ShouldBe(secret);

        var entries = Directory.GetFileSystemEntries(data, "*", SearchOption.AllDirectories).Append(data).ToList();
        entries.Count(e => e.EndsWith(".snap", StringComparison.Ordinal) || e.Contains("snapshot", StringComparison.Ordinal))
            .ShouldBeGreaterThan(0, $"a snapshot was written; entries:\n{string.Join('\n', entries)}");
        foreach (var entry in entries)
            (File.GetUnixFileMode(entry) & GroupOrOther).ShouldBe((UnixFileMode)0, $"{entry} must be the owner's only");
    }

    [Fact]
    public async Task A_node_with_another_secret_is_refused_by_the_others()
    {
        await using var cluster = TestCluster.Create(3, Args);
        cluster.Start(0);
        cluster.Start(1);
        cluster.Start(2, "--cluster-secret", "not this cluster's secret");
        for (int i = 0; i < 3; i++) await cluster.WaitUntilAnsweringAsync(i);

        // Node 3 (index 2) proves a key the others do not have: they refuse it, and it learns only that.
        var refused = await Task.WhenAll(
            cluster.Node(0).WaitForLineAsync(l => l.Contains("node 3 failed to prove the cluster secret", StringComparison.Ordinal), TestCluster.DefaultTimeout),
            cluster.Node(1).WaitForLineAsync(l => l.Contains("node 3 failed to prove the cluster secret", StringComparison.Ordinal), TestCluster.DefaultTimeout),
            cluster.Node(2).WaitForLineAsync(l => l.Contains("closed the connection instead of a welcome", StringComparison.Ordinal), TestCluster.DefaultTimeout));
        refused.ShouldAllBe(r => r, $"outputs:\n{cluster.Node(0).Output}\n---\n{cluster.Node(2).Output}");

        // The two nodes that share the secret form a majority and serve; the outsider never hears of their writes.
        var ok = await Eventually.TrueAsync(
            async () => await cluster.TryStatusAsync(0) is ("Leader", _) || await cluster.TryStatusAsync(1) is ("Leader", _),
            TestCluster.DefaultTimeout);
        ok.ShouldBeTrue("nodes 0 and 1 elect a leader");
        var leader = await cluster.TryStatusAsync(0) is ("Leader", _) ? 0 : 1;
        (await cluster.CreateTopicAsync(leader, "inside")).Status.ShouldBe(HttpStatusCode.Created);
        cluster.Node(2).Output.ShouldNotContain($"; leader {leader + 1}", customMessage: "the outsider must never follow this cluster's leader");
        (await cluster.TryStatusAsync(2))!.Value.Role.ShouldNotBe("Leader");
    }
}

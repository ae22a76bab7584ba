using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using RaftMQ.Linearizability;
using Xunit.Abstractions;

namespace RaftMQ.Server.Tests;

/// <summary>
/// A real-process nemesis: producers publishing with message ids (retrying until answered) and consumers receiving
/// with leases, acking, nacking and dropping, through random nodes of a 3-node cluster, while nodes are paused
/// (SIGSTOP, then SIGCONT) and killed (SIGKILL, then restarted), the leader among them. Then the faults stop, the
/// consumers drain the topic, and the queue-history checker the simulator uses judges the whole history: nothing
/// acknowledged lost, nothing stored twice, no message leased twice at once, every message acked once. 8 faults
/// by default, 60 with <c>RAFTMQ_SOAK=1</c>, each lasting until the cluster has acknowledged more publishes (or a
/// random while); <c>RAFTMQ_SEED=n</c> replays a fault schedule (the timing of a real run is not replayed).
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class NemesisTests(ITestOutputHelper output)
{
    private const string Topic = "nemesis";
    private const string Group = "default";
    private const long LeaseMs = 2_000;

    /// <summary>Faults per run: 8 by default, 60 with <c>RAFTMQ_SOAK=1</c>.</summary>
    private static int Faults => Environment.GetEnvironmentVariable("RAFTMQ_SOAK") == "1" ? 60 : 8;

    private static void Signal(NodeProcess node, string signal)
    {
        using var kill = Process.Start(new ProcessStartInfo("kill", $"-{signal} {node.Pid}") { UseShellExecute = false })!;
        kill.WaitForExit();
    }

    [Fact]
    public async Task Producers_and_consumers_through_pauses_and_kills_lose_nothing_and_store_nothing_twice()
    {
        var seed = Environment.GetEnvironmentVariable("RAFTMQ_SEED") is { } s ? int.Parse(s, System.Globalization.CultureInfo.InvariantCulture) : Environment.TickCount;
        output.WriteLine($"seed {seed} (RAFTMQ_SEED={seed} replays the fault schedule)");
        await using var cluster = TestCluster.Create(3, "--request-timeout-ms", "4000");
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderAsync();
        (await cluster.SendAsync(leader, HttpMethod.Put, $"/v1/topics/{Topic}", """{"dedup_window_ms": 3600000}""")).Status.ShouldBe(HttpStatusCode.Created);
        var clients = new NemesisClients(cluster, 3, Topic, Group, LeaseMs, async node =>
        {
            try
            {
                var (status, text) = await cluster.SendAsync(node, HttpMethod.Get, $"/v1/topics/{Topic}");
                return status == HttpStatusCode.OK ? JsonNode.Parse(text) : null;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                return null;
            }
        });

        var faults = new List<string>();
        async Task Nemesis(Random random)
        {
            // Each fault lasts, and each quiet spell after it, until the producers have had some more publishes
            // acknowledged (the cluster got on without the node, or with it again), or at most a random while.
            for (int f = 0; f < Faults; f++)
            {
                var victim = random.Next(2) == 0 ? await cluster.WaitForLeaderAsync() : random.Next(3);
                if (random.Next(3) == 0)
                {
                    faults.Add($"kill {victim}");
                    await cluster.Node(victim).KillAsync();
                    await clients.ProgressAsync(random.Next(5, 40), random.Next(300, 1_200));
                    cluster.Start(victim);
                }
                else
                {
                    faults.Add($"pause {victim}");
                    Signal(cluster.Node(victim), "STOP");
                    await clients.ProgressAsync(random.Next(5, 40), random.Next(150, 1_500));
                    Signal(cluster.Node(victim), "CONT");
                }
                await clients.ProgressAsync(random.Next(10, 60), random.Next(200, 800));
            }
        }

        var schedule = new Random(seed);
        var producers = new[] { clients.Produce("p0", new Random(schedule.Next())), clients.Produce("p1", new Random(schedule.Next())) };
        var consumers = new[] { clients.Consume("c0", new Random(schedule.Next())), clients.Consume("c1", new Random(schedule.Next())) };
        var nemesis = Nemesis(new Random(schedule.Next()));
        await nemesis;
        output.WriteLine($"faults: {string.Join(", ", faults)}");
        for (int i = 0; i < 3; i++) await cluster.WaitUntilAnsweringAsync(i);
        await cluster.WaitForLeaderAsync();
        clients.StopProducing();
        await Task.WhenAll(producers);
        clients.StartDraining();
        await Task.WhenAll(consumers);

        var check = QueueHistoryChecker.Check(clients.History.Calls, [Group], drained: true);
        output.WriteLine($"{clients.History.Calls.Count} calls; {check.Deliveries} deliveries, {check.Redeliveries} redeliveries, {check.Acked} acked");
        output.WriteLine($"failed publishes: {clients.PublishFailures} ({clients.PublishFailureReasons})");
        check.Describe().ShouldBe("ok", $"seed {seed}");
        check.Acked.ShouldBeGreaterThan(0);
        faults.ShouldNotBeEmpty();
    }
}

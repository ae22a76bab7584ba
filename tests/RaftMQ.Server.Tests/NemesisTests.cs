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

    private static long Now() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    private static string Path(string action) => $"/v1/topics/{Topic}/{action}";

    private static Task<(HttpStatusCode Status, string Body)> SendAsync(TestCluster cluster, int node, string path, string body) =>
        V1Api.TryPostAsync(cluster, node, path, body);

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
        var history = new QueueHistory(Now);
        using var producing = new CancellationTokenSource();
        var draining = false;
        var drainDeadline = long.MaxValue;
        var lastDelivery = Now();
        var published = 0;

        async Task Produce(string name, Random random)
        {
            for (var n = 0; !producing.IsCancellationRequested; )
            {
                var ids = Enumerable.Range(0, random.Next(1, 4)).Select(_ => $"{name}-{n++}").ToArray();
                var body = $$"""{"messages": [{{string.Join(", ", ids.Select(id => $$"""{"body": "{{id}}", "id": "{{id}}"}"""))}}]}""";
                while (true) // the same ids until answered: a repeat of a stored id is answered, not stored again
                {
                    var call = history.Publish(name, ids);
                    var (status, text) = await SendAsync(cluster, random.Next(3), Path("publish"), body);
                    if (status == HttpStatusCode.OK)
                    {
                        history.Published(call, [.. JsonNode.Parse(text)!["offsets"]!.AsArray().Select(o => o!.GetValue<ulong>())]);
                    Interlocked.Increment(ref published);
                        break;
                    }
                    history.Unknown(call); // tried again at once, at another random node
                }
            }
        }

        // Drained: no delivery for two leases, and the group says nothing is left unacked (a linearizable read).
        async Task<bool> DrainedAsync(Random random)
        {
            if (Now() - Volatile.Read(ref lastDelivery) < 2 * LeaseMs + 1_500) return false;
            try
            {
                var (status, text) = await cluster.SendAsync(random.Next(3), HttpMethod.Get, $"/v1/topics/{Topic}");
                return status == HttpStatusCode.OK
                    && JsonNode.Parse(text)!["groups"]!.AsArray().Single(g => g!["group"]!.GetValue<string>() == Group)!["unacked"]!.GetValue<long>() == 0;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                return false;
            }
        }

        async Task Consume(string name, Random random)
        {
            while (!draining || !await DrainedAsync(random))
            {
                if (draining && Now() > drainDeadline) throw new TimeoutException($"seed {seed}: the topic was not drained within a minute");
                var max = random.Next(1, 4);
                var call = history.Receive(name, Group, max, LeaseMs);
                var (status, text) = await SendAsync(cluster, random.Next(3), Path("receive"), $$"""{"max": {{max}}, "lease_ms": {{LeaseMs}}, "wait_ms": 300}""");
                if (status != HttpStatusCode.OK)
                {
                    history.Unknown(call);
                    continue;
                }
                var got = JsonNode.Parse(text)!["messages"]!.AsArray().Select(m => (
                    Delivery: new QueueDelivery(m!["offset"]!.GetValue<ulong>(), m["delivery_count"]!.GetValue<int>(), m["body"]!.GetValue<string>()),
                    Receipt: m["receipt"]!.GetValue<string>())).ToList();
                history.Received(call, [.. got.Select(g => g.Delivery)]);
                if (got.Count == 0) continue;
                Volatile.Write(ref lastDelivery, Now());
                var roll = draining ? 0 : random.Next(20);
                if (roll == 19) continue; // dropped: delivered again when the lease ends
                var receipts = got.Select(g => new QueueReceipt(g.Delivery.Offset, g.Delivery.DeliveryCount)).ToList();
                var nack = roll == 18;
                var settle = nack ? history.Nack(name, Group, receipts) : history.Ack(name, Group, receipts);
                var list = string.Join(", ", got.Select(g => $"\"{g.Receipt}\""));
                var (ackStatus, ackText) = await SendAsync(cluster, random.Next(3), Path(nack ? "nack" : "ack"), $$"""{"receipts": [{{list}}]}""");
                if (ackStatus != HttpStatusCode.OK)
                {
                    history.Unknown(settle);
                    continue;
                }
                history.Settled(settle, [.. JsonNode.Parse(ackText)!["stale"]!.AsArray().Select(r => receipts[got.FindIndex(g => g.Receipt == r!.GetValue<string>())])]);
            }
        }

        var faults = new List<string>();
        async Task Nemesis(Random random)
        {
            // Each fault lasts, and each quiet spell after it, until the producers have had some more publishes
            // acknowledged (the cluster got on without the node, or with it again), or at most a random while.
            async Task Progress(int publishes, int atMostMs)
            {
                var target = Volatile.Read(ref published) + publishes;
                await Eventually.TrueAsync(() => Task.FromResult(Volatile.Read(ref published) >= target), TimeSpan.FromMilliseconds(atMostMs));
            }
            for (int f = 0; f < Faults; f++)
            {
                var victim = random.Next(2) == 0 ? await cluster.WaitForLeaderAsync() : random.Next(3);
                if (random.Next(3) == 0)
                {
                    faults.Add($"kill {victim}");
                    await cluster.Node(victim).KillAsync();
                    await Progress(random.Next(5, 40), random.Next(300, 1_200));
                    cluster.Start(victim);
                }
                else
                {
                    faults.Add($"pause {victim}");
                    Signal(cluster.Node(victim), "STOP");
                    await Progress(random.Next(5, 40), random.Next(150, 1_500));
                    Signal(cluster.Node(victim), "CONT");
                }
                await Progress(random.Next(10, 60), random.Next(200, 800));
            }
        }

        var schedule = new Random(seed);
        var producers = new[] { Produce("p0", new Random(schedule.Next())), Produce("p1", new Random(schedule.Next())) };
        var consumers = new[] { Consume("c0", new Random(schedule.Next())), Consume("c1", new Random(schedule.Next())) };
        var nemesis = Nemesis(new Random(schedule.Next()));
        await nemesis;
        output.WriteLine($"faults: {string.Join(", ", faults)}");
        for (int i = 0; i < 3; i++) await cluster.WaitUntilAnsweringAsync(i);
        await cluster.WaitForLeaderAsync();
        producing.Cancel();
        await Task.WhenAll(producers);
        drainDeadline = Now() + 60_000;
        draining = true;
        await Task.WhenAll(consumers);

        var check = QueueHistoryChecker.Check(history.Calls, [Group], drained: true);
        output.WriteLine($"{history.Calls.Count} calls; {check.Deliveries} deliveries, {check.Redeliveries} redeliveries, {check.Acked} acked");
        check.Describe().ShouldBe("ok", $"seed {seed}");
        check.Acked.ShouldBeGreaterThan(0);
        faults.ShouldNotBeEmpty();
    }
}

using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using RaftMQ.Linearizability;
using Xunit.Abstractions;

namespace RaftMQ.Server.Tests;

/// <summary>A test that needs network namespaces (<see cref="NodeNetwork"/>): skipped, with the reason, where they cannot be made.</summary>
public sealed class NetnsFactAttribute : FactAttribute
{
    public NetnsFactAttribute()
    {
        if (NodeNetwork.WhyNotAvailable() is { } reason) Skip = reason;
    }
}

/// <summary>
/// The real-process nemesis with network partitions: a 5-node cluster, each node a process in its own network
/// namespace (<see cref="NodeNetwork"/>), while producers publish with message ids (retrying at another random node
/// until answered), consumers receive with leases, ack, nack and drop, and readers read the topic's tail, all through
/// random nodes. Faults, from a seeded schedule: a node cut off from every other (the leader half the time), a
/// majority/minority split, a bridge (two halves that cannot see each other and one node that sees both), random
/// links cut, one-way cuts (the leader deaf to some followers, or mute to them, or random directed links), SIGSTOP
/// pauses and SIGKILL with a restart, a partition sometimes together with a pause or a kill. Each fault lasts until
/// the cluster has acknowledged more publishes or a random deadline passes, then everything is healed and the cluster
/// is let make progress before the next. At the end the consumers drain the topic, every node must have caught up
/// with the leader, and the queue-history checker judges the history (nothing acknowledged lost, nothing stored twice,
/// no lease given twice at once, acks and redeliveries consistent, order kept) and the tail reads must be linearizable.
/// 10 faults by default, 80 with <c>RAFTMQ_SOAK=1</c>; <c>RAFTMQ_SEED=n</c> replays a fault schedule (the timing of a
/// real run is not replayed).
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class PartitionNemesisTests(ITestOutputHelper output)
{
    private const int Nodes = 5;
    private const string Topic = "partitions";
    private const string Group = "default";
    private const long LeaseMs = 2_000;

    private static int Faults => Environment.GetEnvironmentVariable("RAFTMQ_SOAK") == "1" ? 80 : 10;

    private static long Now() => NemesisClients.Now();

    private static void Signal(NodeProcess node, string signal)
    {
        using var kill = Process.Start(new ProcessStartInfo("kill", $"-{signal} {node.Pid}") { UseShellExecute = false })!;
        kill.WaitForExit();
        kill.ExitCode.ShouldBe(0, $"kill -{signal} {node.Pid}");
    }

    [NetnsFact]
    public async Task Producers_and_consumers_through_partitions_pauses_and_kills_lose_nothing_and_store_nothing_twice()
    {
        var seed = Environment.GetEnvironmentVariable("RAFTMQ_SEED") is { } s ? int.Parse(s, CultureInfo.InvariantCulture) : Environment.TickCount;
        output.WriteLine($"seed {seed} (RAFTMQ_SEED={seed} replays the fault schedule)");
        var started = Stopwatch.StartNew();
        await using var network = await NodeNetwork.CreateAsync(Nodes);
        // A node cut off from the leader answers 503 within 2 s, and a client gives up on a paused node after 3 s:
        // the clients spend a fault retrying elsewhere rather than waiting on the nodes it cut off.
        await using var cluster = TestCluster.CreateOn(network, "--request-timeout-ms", "2000");
        cluster.Http.Timeout = TimeSpan.FromSeconds(3);
        output.WriteLine($"network 10.213.{network.Subnet}.0/24, namespaces {network.Namespace(0)}..{network.Namespace(Nodes - 1)}");
        await cluster.StartAllAsync();
        var firstLeader = await cluster.WaitForLeaderAsync();
        (await cluster.SendAsync(firstLeader, HttpMethod.Put, $"/v1/topics/{Topic}", """{"dedup_window_ms": 3600000}""")).Status.ShouldBe(HttpStatusCode.Created);

        var reads = new List<CounterRead>();
        var clients = new NemesisClients(cluster, Nodes, Topic, Group, LeaseMs, StatsAsync);

        // The topic's tail (the next offset) read through a random node: a linearizable read, or no answer.
        async Task<JsonNode?> StatsAsync(int node)
        {
            var invoked = Now();
            try
            {
                var (status, text) = await cluster.SendAsync(node, HttpMethod.Get, $"/v1/topics/{Topic}");
                if (status != HttpStatusCode.OK) return null;
                var json = JsonNode.Parse(text)!;
                var read = new CounterRead(invoked, Now(), json["tail"]!.GetValue<long>(), $"GET /v1/topics/{Topic} at node {node}");
                lock (reads) reads.Add(read);
                return json;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                return null;
            }
        }

        async Task Read(Random random)
        {
            while (clients.Producing) await StatsAsync(random.Next(Nodes));
        }

        // The node that leads now (the highest term's self-declared leader among those answering), or -1.
        async Task<int> LeaderNowAsync()
        {
            var best = (Node: -1, Term: -1L);
            for (int i = 0; i < Nodes; i++)
            {
                if (await cluster.TryStatusAsync(i) is { Role: "Leader" } st && st.Term > best.Term) best = (i, st.Term);
            }
            return best.Node;
        }

        var faults = new List<string>();
        async Task Nemesis(Random random)
        {
            // A fault lasts, and the quiet spell after it, until the producers have had some more publishes
            // acknowledged (the cluster got on without the nodes cut off, or with them again), or a random while.
            for (int f = 0; f < Faults; f++)
            {
                // Every draw is made whatever the cluster looks like, so a seed always gives the same schedule.
                var leaderNow = await LeaderNowAsync();
                var order = Enumerable.Range(0, Nodes).OrderBy(_ => random.Next()).ToList();
                var preferLeader = random.Next(2) == 0;
                if (preferLeader && leaderNow >= 0) order = [leaderNow, .. order.Where(n => n != leaderNow)];
                var partition = random.Next(7);
                var processFault = partition >= 5 ? partition - 4 : random.Next(4) == 0 ? 1 + random.Next(2) : 0; // 1 pause, 2 kill
                var linkDraws = Enumerable.Range(0, Nodes * Nodes).Select(_ => random.Next(100)).ToArray();
                var oneWayKind = random.Next(3);
                var minority = 1 + random.Next((Nodes - 1) / 2);
                var processVictim = partition >= 5 ? order[0] : order[random.Next(Nodes)];
                var atMostMs = random.Next(500, 3_000);
                var publishes = random.Next(5, 40);
                var quietPublishes = random.Next(10, 60);
                var quietMs = random.Next(300, 1_000);

                string what;
                switch (partition)
                {
                    case 0: // one node cut off from all the others, both ways
                        what = $"isolate {order[0]}";
                        await network.SplitAsync([order[0]], order.Skip(1));
                        break;
                    case 1: // majority/minority
                        what = $"split [{string.Join(" ", order.Take(minority))}] | [{string.Join(" ", order.Skip(minority))}]";
                        await network.SplitAsync(order.Take(minority), order.Skip(minority));
                        break;
                    case 2: // a bridge: the first node sees both halves, which cannot see each other
                        var half = (Nodes - 1) / 2;
                        what = $"bridge {order[0]} between [{string.Join(" ", order.Skip(1).Take(half))}] and [{string.Join(" ", order.Skip(1 + half))}]";
                        await network.SplitAsync(order.Skip(1).Take(half), order.Skip(1 + half));
                        break;
                    case 3: // random links cut both ways, each with probability 0.4
                        var links = new List<string>();
                        for (int a = 0; a < Nodes; a++)
                        {
                            for (int b = a + 1; b < Nodes; b++)
                            {
                                if (linkDraws[a * Nodes + b] >= 40) continue;
                                links.Add($"{a}-{b}");
                                await network.SplitAsync([a], [b]);
                            }
                        }
                        what = $"cut links [{string.Join(" ", links)}]";
                        break;
                    case 4: // one way only
                        var cuts = new List<(int From, int To)>();
                        var k = order[0];
                        var some = order.Skip(1).Take(1 + linkDraws[0] % (Nodes - 1)).ToList();
                        if (oneWayKind == 0) cuts.AddRange(some.Select(o => (k, o))); // the first node mute to some
                        else if (oneWayKind == 1) cuts.AddRange(some.Select(o => (o, k))); // ... or deaf to them
                        else
                        {
                            for (int a = 0; a < Nodes; a++)
                                for (int b = 0; b < Nodes; b++)
                                    if (a != b && linkDraws[a * Nodes + b] < 25) cuts.Add((a, b));
                        }
                        foreach (var (from, to) in cuts) await network.CutAsync(from, to);
                        what = $"one-way [{string.Join(" ", cuts.Select(c => $"{c.From}->{c.To}"))}]";
                        break;
                    default:
                        what = "";
                        break;
                }
                var routes = await network.RoutesAsync();
                routes.ShouldBe(network.Cuts, ignoreOrder: true, $"seed {seed}: the blackhole routes the namespaces hold");

                var paused = -1;
                var killed = -1;
                if (processFault == 1)
                {
                    paused = processVictim;
                    Signal(cluster.Node(paused), "STOP");
                }
                else if (processFault == 2)
                {
                    killed = processVictim;
                    await cluster.Node(killed).KillAsync();
                }
                var label = string.Join(" + ", new[] { what, paused >= 0 ? $"pause {paused}" : "", killed >= 0 ? $"kill {killed}" : "" }.Where(x => x.Length > 0));
                var before = clients.Published;
                var failedBefore = clients.PublishFailures;
                var faultStarted = Stopwatch.StartNew();

                await clients.ProgressAsync(publishes, atMostMs);
                // What the fault did: how long it lasted, the publishes acknowledged meanwhile, who led at its end
                // (not asked with a node paused: a paused node answers nothing until its status request times out).
                var leaderThen = paused < 0 ? (await LeaderNowAsync()).ToString(CultureInfo.InvariantCulture) : "?";
                faults.Add($"{label} (leader {leaderNow} -> {leaderThen}, {faultStarted.ElapsedMilliseconds} ms, {clients.Published - before} publishes, {clients.PublishFailures - failedBefore} failed)");
                await network.HealAllAsync();
                if (paused >= 0) Signal(cluster.Node(paused), "CONT");
                if (killed >= 0) cluster.Start(killed);
                await clients.ProgressAsync(quietPublishes, quietMs);
            }
        }

        var schedule = new Random(seed);
        var producers = new[] { clients.Produce("p0", new Random(schedule.Next())), clients.Produce("p1", new Random(schedule.Next())) };
        var consumers = new[] { clients.Consume("c0", new Random(schedule.Next())), clients.Consume("c1", new Random(schedule.Next())) };
        var reader = Read(new Random(schedule.Next()));
        var nemesis = Nemesis(new Random(schedule.Next()));
        try
        {
            await nemesis;
        }
        finally
        {
            output.WriteLine($"faults:{Environment.NewLine}  {string.Join(Environment.NewLine + "  ", faults.Select((f, i) => $"{i + 1}. {f}"))}");
        }
        (await network.RoutesAsync()).ShouldBeEmpty("every cut is healed");
        for (int i = 0; i < Nodes; i++) await cluster.WaitUntilAnsweringAsync(i);
        await cluster.WaitForLeaderAsync();
        clients.StopProducing();
        await Task.WhenAll(producers);
        await reader;
        clients.StartDraining();
        await Task.WhenAll(consumers);

        // Every node caught up after the heal: each has applied all the leader had committed once the topic was
        // drained, and all name the same leader (whichever it is by then: a busy machine may see another election).
        var leader = await cluster.WaitForLeaderAsync();
        var (leaderAnswer, leaderText) = await cluster.SendAsync(leader, HttpMethod.Get, "/v1/status");
        leaderAnswer.ShouldBe(HttpStatusCode.OK, leaderText);
        var commit = JsonNode.Parse(leaderText)!["commit_index"]!.GetValue<long>();
        var statuses = new string[Nodes];
        var caughtUp = await Eventually.TrueAsync(
            async () =>
            {
                var leaders = new HashSet<int>();
                var behind = false;
                for (int i = 0; i < Nodes; i++)
                {
                    HttpStatusCode status;
                    string text;
                    try
                    {
                        (status, text) = await cluster.SendAsync(i, HttpMethod.Get, "/v1/status");
                    }
                    catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                    {
                        statuses[i] = $"node {i}: {e.Message}";
                        return false;
                    }
                    statuses[i] = $"node {i}: {(int)status} {text}";
                    if (status != HttpStatusCode.OK) return false;
                    var json = JsonNode.Parse(text)!;
                    behind |= json["applied_index"]!.GetValue<long>() < commit;
                    leaders.Add(json["leader"]?.GetValue<int>() ?? -1);
                }
                return !behind && leaders.Count == 1 && !leaders.Contains(-1);
            },
            TimeSpan.FromSeconds(30));
        caughtUp.ShouldBeTrue($"seed {seed}: not every node caught up (commit {commit} at leader {leader}) after the heal:{Environment.NewLine}{string.Join(Environment.NewLine, statuses)}");

        var check = QueueHistoryChecker.Check(clients.History.Calls, [Group], drained: true);
        List<CounterRead> allReads;
        lock (reads) allReads = [.. reads];
        var readCheck = CounterReadChecker.Check(OffsetWrites(clients.History.Calls), allReads);
        output.WriteLine($"{clients.History.Calls.Count} calls; {check.AckedPublishes} messages published, {check.Deliveries} deliveries, {check.Redeliveries} redeliveries, " +
            $"{check.Acked} acked; {allReads.Count} tail reads; {started.Elapsed.TotalSeconds:F1} s");
        output.WriteLine($"failed publishes: {clients.PublishFailures} ({clients.PublishFailureReasons})");
        if (!check.Ok) Assert.Fail($"seed {seed}: {check.Describe()}");
        if (readCheck != "ok") Assert.Fail($"seed {seed}: {readCheck}");
        check.Acked.ShouldBeGreaterThan(0);
        allReads.ShouldNotBeEmpty();
        faults.Count.ShouldBe(Faults);
    }

    /// <summary>
    /// When each offset of the topic came to be written, for the tail reads: an offset holds the ids of one publish,
    /// written by one of the calls that carried them, so no sooner than the first of those calls was invoked and no
    /// later than the first of them answered Ok (a call never answered Ok bounds nothing).
    /// </summary>
    private static IReadOnlyList<CounterWrite> OffsetWrites(IReadOnlyList<QueueCall> calls)
    {
        var firstInvoked = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var c in calls.Where(c => c.Kind == QueueCallKind.Publish))
            foreach (var id in c.MessageIds) firstInvoked.TryAdd(id, c.InvokedAt);
        var writes = new Dictionary<long, CounterWrite>();
        foreach (var c in calls.Where(c => c.Kind == QueueCallKind.Publish && c.Outcome == QueueCallOutcome.Ok))
        {
            for (int i = 0; i < c.MessageIds.Count; i++)
            {
                var offset = (long)c.Offsets[i];
                var w = new CounterWrite(offset, firstInvoked[c.MessageIds[i]], c.AnsweredAt, c.ToString());
                if (!writes.TryGetValue(offset, out var known) || w.AnsweredAt < known.AnsweredAt) writes[offset] = w;
            }
        }
        // Offsets whose publish no client saw answered (it was delivered, so stored): written after the first call
        // carrying its id was invoked, at an unknown time after.
        foreach (var c in calls.Where(c => c.Kind == QueueCallKind.Receive && c.Outcome == QueueCallOutcome.Ok))
        {
            foreach (var d in c.Deliveries)
            {
                if (!writes.ContainsKey((long)d.Offset) && firstInvoked.TryGetValue(d.MessageId, out var invoked))
                    writes[(long)d.Offset] = new CounterWrite((long)d.Offset, invoked, long.MaxValue, $"publish of {d.MessageId} (delivered, never answered Ok)");
            }
        }
        return [.. writes.Values.OrderBy(w => w.Position)];
    }
}

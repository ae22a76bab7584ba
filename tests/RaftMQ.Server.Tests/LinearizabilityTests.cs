using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text.Json;
using RaftMQ.Linearizability;

namespace RaftMQ.Server.Tests;

/// <summary>
/// Concurrent clients against a real cluster, through a leader kill: every topic's history of publishes and pops,
/// as the clients observed it, must be linearizable (one order, consistent with real time, of a FIFO queue).
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class LinearizabilityTests
{
    private const int Clients = 4;
    private const int OpsPerClient = 60;
    private static readonly string[] Topics = ["x", "y"];

    [Fact]
    public async Task Concurrent_publishes_and_pops_are_linearizable_through_a_leader_kill()
    {
        await using var cluster = TestCluster.Create(3, "--request-timeout-ms", "4000");
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderAsync();
        foreach (var t in Topics) (await cluster.CreateTopicAsync(leader, t)).Status.ShouldBe(HttpStatusCode.Created);

        var clock = Stopwatch.StartNew();
        var histories = Topics.ToDictionary(t => t, _ => new ConcurrentQueue<Operation<QueueInput, QueueOutput>>());
        var completed = 0;
        var killed = 0;
        async Task RunClient(int client)
        {
            var random = new Random(client * 7919);
            for (int i = 0; i < OpsPerClient; i++)
            {
                if (Interlocked.Increment(ref completed) == Clients * OpsPerClient / 3 && Interlocked.Exchange(ref killed, 1) == 0)
                    await cluster.Node(leader).KillAsync();
                var topic = Topics[random.Next(Topics.Length)];
                var running = Enumerable.Range(0, cluster.Size).Where(cluster.IsRunning).ToArray();
                var node = running[random.Next(running.Length)];
                var input = random.Next(2) == 0
                    ? new QueueInput(QueueOpKind.Publish, $"c{client}-{i}")
                    : new QueueInput(QueueOpKind.Pop, null);
                var call = clock.ElapsedTicks;
                var output = await ExecuteAsync(cluster, node, topic, input);
                var returned = clock.ElapsedTicks;
                if (output is null) continue; // certainly not applied: not part of the history
                histories[topic].Enqueue(new Operation<QueueInput, QueueOutput>(
                    client, input, output, call, output.Known ? returned : long.MaxValue));
            }
        }
        await Task.WhenAll(Enumerable.Range(0, Clients).Select(RunClient));

        foreach (var (topic, history) in histories)
        {
            var ops = history.ToList();
            ops.Count(o => o.Output.Known).ShouldBeGreaterThan(OpsPerClient, $"topic {topic}: most operations should succeed");
            var result = LinearizabilityChecker.Check(new QueueModel(), ops);
            result.TimedOut.ShouldBeFalse($"topic {topic}: the checker ran out of steps on {ops.Count} operations");
            result.IsLinearizable.ShouldBeTrue($"topic {topic} is not linearizable:\n{Describe(ops)}");
        }
    }

    /// <summary>The observed output; null when the node says the command was certainly not applied.</summary>
    private static async Task<QueueOutput?> ExecuteAsync(TestCluster cluster, int node, string topic, QueueInput input)
    {
        try
        {
            using var request = input.Kind == QueueOpKind.Publish
                ? new HttpRequestMessage(HttpMethod.Put, cluster.Url(node, "/message"))
                {
                    Content = new StringContent(JsonSerializer.Serialize(new { topic, message = input.Message }), System.Text.Encoding.UTF8, "application/json"),
                }
                : new HttpRequestMessage(HttpMethod.Get, cluster.Url(node, "/message/" + topic));
            using var response = await cluster.Http.SendAsync(request);
            var body = await response.Content.ReadAsStringAsync();
            switch (response.StatusCode)
            {
                case HttpStatusCode.OK when input.Kind == QueueOpKind.Publish:
                    return QueueOutput.Ok;
                case HttpStatusCode.OK:
                    return QueueOutput.Popped(JsonDocument.Parse(body).RootElement.GetProperty("message").GetString());
                case HttpStatusCode.NotFound when input.Kind == QueueOpKind.Pop:
                    return QueueOutput.Popped(null);
                case HttpStatusCode.ServiceUnavailable:
                    var code = response.Headers.TryGetValues("X-RaftMQ-Error", out var v) ? v.First() : "";
                    return code == "outcome-unknown" ? QueueOutput.Unknown : null;
                default:
                    throw new InvalidOperationException($"unexpected {(int)response.StatusCode} {body}");
            }
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return QueueOutput.Unknown; // the node died mid-request: it may or may not have been applied
        }
    }

    private static string Describe(IEnumerable<Operation<QueueInput, QueueOutput>> ops) =>
        string.Join('\n', ops.OrderBy(o => o.Call).Select(o =>
            $"[{o.Call},{(o.Return == long.MaxValue ? "∞" : o.Return)}] c{o.Client} {o.Input.Kind} {o.Input.Message} -> {(o.Output.Known ? o.Output.Message ?? "ok/empty" : "unknown")}"));
}

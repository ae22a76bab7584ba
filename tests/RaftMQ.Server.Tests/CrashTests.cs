using Xunit.Abstractions;
using System.Net;
using System.Text.Json;

namespace RaftMQ.Server.Tests;

/// <summary>
/// SIGKILL at random moments while a node is being written to, then restart: every acknowledged message must be
/// there afterwards, exactly once. 20 kills in the default run, 200 with RAFTMQ_SOAK=1; the seed is printed.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class CrashTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Acknowledged_messages_survive_SIGKILL_at_random_moments()
    {
        var kills = Environment.GetEnvironmentVariable("RAFTMQ_SOAK") == "1" ? 200 : 20;
        var seed = int.TryParse(Environment.GetEnvironmentVariable("RAFTMQ_CRASH_SEED"), out var s) ? s : Environment.TickCount;
        output.WriteLine($"seed {seed} (replay: RAFTMQ_CRASH_SEED={seed} dotnet test tests/RaftMQ.Server.Tests --filter FullyQualifiedName~CrashTests)");
        var random = new Random(seed);

        // Snapshots every 50 entries, so kills also land during snapshotting and compaction.
        await using var cluster = TestCluster.Create(1, "--request-timeout-ms", "5000", "--snapshot-every", "50");
        await cluster.StartAllAsync();
        await cluster.CreateTopicAsync(0, "t");
        var acknowledged = new List<int>();
        var sent = 0;
        for (int kill = 0; kill < kills; kill++)
        {
            if (kill > 0)
            {
                cluster.Start(0);
                await cluster.WaitUntilAnsweringAsync(0);
            }
            // Publish continuously from two writers; SIGKILL after a random number of acknowledgements, while
            // requests are in flight.
            var target = acknowledged.Count + random.Next(1, 40);
            using var stop = new CancellationTokenSource();
            var gate = new Lock();
            async Task Writer()
            {
                while (!stop.IsCancellationRequested)
                {
                    int id;
                    lock (gate) id = sent++;
                    try
                    {
                        var (status, body) = await cluster.PublishAsync(0, "t", id.ToString(System.Globalization.CultureInfo.InvariantCulture));
                        if (status == HttpStatusCode.OK && body == """{"success":true}""")
                        {
                            lock (gate)
                            {
                                acknowledged.Add(id);
                                if (acknowledged.Count >= target) stop.Cancel();
                            }
                        }
                    }
                    catch (HttpRequestException)
                    {
                        return; // the node is gone: this one's outcome is unknown
                    }
                }
            }
            var writers = new[] { Writer(), Writer() };
            await Task.WhenAny(Task.WhenAll(writers), Eventually.TrueAsync(() => Task.FromResult(stop.IsCancellationRequested), TimeSpan.FromSeconds(30)));
            await cluster.Node(0).KillAsync();
            await Task.WhenAll(writers);
        }

        cluster.Start(0);
        await cluster.WaitUntilAnsweringAsync(0);
        var popped = new List<int>();
        while (true)
        {
            var (status, body) = await cluster.PopAsync(0, "t");
            if (status == HttpStatusCode.NotFound) break;
            status.ShouldBe(HttpStatusCode.OK, body);
            popped.Add(int.Parse(JsonDocument.Parse(body).RootElement.GetProperty("message").GetString()!, System.Globalization.CultureInfo.InvariantCulture));
        }
        output.WriteLine($"{kills} kills, {acknowledged.Count} acknowledged, {popped.Count} recovered");
        acknowledged.Count.ShouldBeGreaterThanOrEqualTo(kills);
        // Two writers race, so only uniqueness and completeness are checked here (order is checked elsewhere).
        popped.ShouldBeUnique();
        acknowledged.Except(popped).ShouldBeEmpty($"acknowledged but lost (seed {seed})");
    }
}

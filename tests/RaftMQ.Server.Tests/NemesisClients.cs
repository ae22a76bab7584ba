using System.Collections.Concurrent;
using System.Net;
using System.Text.Json.Nodes;
using RaftMQ.Linearizability;

namespace RaftMQ.Server.Tests;

/// <summary>
/// The clients of the nemesis tests (<see cref="NemesisTests"/>, <see cref="PartitionNemesisTests"/>), recording every
/// call in <see cref="History"/> for the queue-history checker: producers publishing with message ids through random
/// nodes (the same ids again until answered), and consumers receiving with leases through random nodes, acking,
/// nacking (1 in 20) or dropping (1 in 20) what they got, until <see cref="StopProducing"/> and then until the topic is
/// drained (<see cref="StartDraining"/>).
/// </summary>
internal sealed class NemesisClients(TestCluster cluster, int nodes, string topic, string group, long leaseMs, Func<int, Task<JsonNode?>> stats)
{
    private readonly CancellationTokenSource _producing = new();
    private int _published;
    private int _publishFailures;
    private readonly ConcurrentDictionary<string, int> _failureReasons = new();
    private long _lastDelivery = Now();
    private volatile bool _draining;
    private long _drainDeadline = long.MaxValue;

    public static long Now() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    public QueueHistory History { get; } = new(Now);

    /// <summary>Publishes acknowledged so far.</summary>
    public int Published => Volatile.Read(ref _published);

    /// <summary>Publish calls that got no answer (tried again at once).</summary>
    public int PublishFailures => Volatile.Read(ref _publishFailures);

    /// <summary>The failed publish calls by reason: the status and its <c>X-RaftMQ-Error</c> code, or "no answer".</summary>
    public string PublishFailureReasons =>
        _failureReasons.IsEmpty ? "none" : string.Join(", ", _failureReasons.OrderByDescending(r => r.Value).Select(r => $"{r.Value} {r.Key}"));

    public bool Producing => !_producing.IsCancellationRequested;

    public void StopProducing() => _producing.Cancel();

    /// <summary>From now on consumers leave nothing unsettled and stop once the topic is drained, within a minute.</summary>
    public void StartDraining()
    {
        Volatile.Write(ref _drainDeadline, Now() + 60_000);
        _draining = true;
    }

    /// <summary>Waits until <paramref name="publishes"/> more publishes are acknowledged, or at most <paramref name="atMostMs"/>.</summary>
    public async Task ProgressAsync(int publishes, int atMostMs)
    {
        var target = Published + publishes;
        await Eventually.TrueAsync(() => Task.FromResult(Published >= target), TimeSpan.FromMilliseconds(atMostMs));
    }

    private string Path(string action) => $"/v1/topics/{topic}/{action}";

    public async Task Produce(string name, Random random)
    {
        for (var n = 0; Producing; )
        {
            var ids = Enumerable.Range(0, random.Next(1, 4)).Select(_ => $"{name}-{n++}").ToArray();
            var body = $$"""{"messages": [{{string.Join(", ", ids.Select(id => $$"""{"body": "{{id}}", "id": "{{id}}"}"""))}}]}""";
            while (true) // the same ids until answered: a repeat of a stored id is answered, not stored again
            {
                var call = History.Publish(name, ids);
                var (status, text, reason) = await TryPublishAsync(random.Next(nodes), body);
                if (status == HttpStatusCode.OK)
                {
                    History.Published(call, [.. JsonNode.Parse(text)!["offsets"]!.AsArray().Select(o => o!.GetValue<ulong>())]);
                    Interlocked.Increment(ref _published);
                    break;
                }
                History.Unknown(call); // tried again at once, at another random node
                Interlocked.Increment(ref _publishFailures);
                _failureReasons.AddOrUpdate(reason, 1, (_, n) => n + 1);
            }
        }
    }

    private async Task<(HttpStatusCode Status, string Body, string Reason)> TryPublishAsync(int node, string body)
    {
        try
        {
            var (status, text, code) = await cluster.SendWithErrorCodeAsync(node, HttpMethod.Post, Path("publish"), body);
            return (status, text, code is null ? $"{(int)status}" : $"{(int)status} {code}");
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return (0, e.Message, "no answer");
        }
    }

    // Drained: no delivery for two leases, and the group says nothing is left unacked (a linearizable read).
    private async Task<bool> DrainedAsync(Random random)
    {
        if (Now() - Volatile.Read(ref _lastDelivery) < 2 * leaseMs + 1_500) return false;
        var json = await stats(random.Next(nodes));
        return json?["groups"]!.AsArray().Single(g => g!["group"]!.GetValue<string>() == group)!["unacked"]!.GetValue<long>() == 0;
    }

    public async Task Consume(string name, Random random)
    {
        while (!_draining || !await DrainedAsync(random))
        {
            if (_draining && Now() > Volatile.Read(ref _drainDeadline)) throw new TimeoutException("the topic was not drained within a minute");
            var max = random.Next(1, 4);
            var call = History.Receive(name, group, max, leaseMs);
            var (status, text) = await V1Api.TryPostAsync(cluster, random.Next(nodes), Path("receive"), $$"""{"max": {{max}}, "lease_ms": {{leaseMs}}, "wait_ms": 300}""");
            if (status != HttpStatusCode.OK)
            {
                History.Unknown(call);
                continue;
            }
            var got = JsonNode.Parse(text)!["messages"]!.AsArray().Select(m => (
                Delivery: new QueueDelivery(m!["offset"]!.GetValue<ulong>(), m["delivery_count"]!.GetValue<int>(), m["body"]!.GetValue<string>()),
                Receipt: m["receipt"]!.GetValue<string>())).ToList();
            History.Received(call, [.. got.Select(g => g.Delivery)]);
            if (got.Count == 0) continue;
            Volatile.Write(ref _lastDelivery, Now());
            var roll = _draining ? 0 : random.Next(20);
            if (roll == 19) continue; // dropped: delivered again when the lease ends
            var receipts = got.Select(g => new QueueReceipt(g.Delivery.Offset, g.Delivery.DeliveryCount)).ToList();
            var nack = roll == 18;
            var settle = nack ? History.Nack(name, group, receipts) : History.Ack(name, group, receipts);
            var list = string.Join(", ", got.Select(g => $"\"{g.Receipt}\""));
            var (ackStatus, ackText) = await V1Api.TryPostAsync(cluster, random.Next(nodes), Path(nack ? "nack" : "ack"), $$"""{"receipts": [{{list}}]}""");
            if (ackStatus != HttpStatusCode.OK)
            {
                History.Unknown(settle);
                continue;
            }
            History.Settled(settle, [.. JsonNode.Parse(ackText)!["stale"]!.AsArray().Select(r => receipts[got.FindIndex(g => g.Receipt == r!.GetValue<string>())])]);
        }
    }
}

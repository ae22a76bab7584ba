using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;

namespace RaftMQ.Server.Tests;

/// <summary>
/// Long polling on real node processes: a waiting receive is answered when a delay or a lease ends with no other
/// traffic, proposes nothing and polls nothing while idle, is not woken by another group's commands, and past the
/// bound on waiting receives one is answered at once.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class LongPollTests
{
    /// <summary>Longer than any wait here (TestCluster.Http gives up after 10 s).</summary>
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(60) };

    private static string Path(string topic, string action = "") =>
        $"/v1/topics/{Uri.EscapeDataString(topic)}{(action.Length == 0 ? "" : "/" + action)}";

    private static async Task<JsonObject> Send(TestCluster cluster, int node, HttpMethod method, string path, string? body = null, HttpStatusCode expected = HttpStatusCode.OK)
    {
        using var request = new HttpRequestMessage(method, cluster.Url(node, path));
        if (body is not null) request.Content = new StringContent(body, Encoding.UTF8, "application/json");
        using var response = await Http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        response.StatusCode.ShouldBe(expected, $"{method} {path} {body}: {text}");
        return JsonNode.Parse(text)!.AsObject();
    }

    private static JsonArray Messages(JsonObject json) => json["messages"]!.AsArray();

    /// <summary>What GET /v1/metrics says of a node: its last log index, term, ReadIndex reads served, waiting receives.</summary>
    private readonly record struct Counts(long LastIndex, long Term, long Reads, int Waiting);

    private static async Task<Counts> CountsAsync(TestCluster cluster, int node)
    {
        var m = await Send(cluster, node, HttpMethod.Get, "/v1/metrics");
        return new Counts(m["last_index"]!.GetValue<long>(), m["term"]!.GetValue<long>(), m["runtime"]!["reads"]!.GetValue<long>(),
            m["http"]!["waiting_receives"]!.GetValue<int>());
    }

    [Fact]
    public async Task A_waiting_receive_adds_nothing_while_idle_and_is_answered_when_a_delay_or_a_lease_ends()
    {
        await using var cluster = TestCluster.Create(3, "--request-timeout-ms", "8000");
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderAsync();
        const string topic = "timed";
        await Send(cluster, leader, HttpMethod.Put, Path(topic), null, HttpStatusCode.Created);

        // Idle: two seconds of waiting on an empty topic add no log entry (a new term's leader adds its own one), and
        // take a read or two, not one per period.
        var before = await CountsAsync(cluster, leader);
        var sw = Stopwatch.StartNew();
        Messages(await Send(cluster, leader, HttpMethod.Post, Path(topic, "receive"), """{"wait_ms": 2000}""")).ShouldBeEmpty();
        sw.ElapsedMilliseconds.ShouldBeGreaterThanOrEqualTo(2000);
        var after = await CountsAsync(cluster, leader);
        (after.LastIndex - before.LastIndex).ShouldBeLessThanOrEqualTo(after.Term - before.Term, "an idle waiting receive proposes nothing");
        (after.Reads - before.Reads).ShouldBeLessThanOrEqualTo(3, "an idle waiting receive does not poll");

        // A message published with a delay: the receive waiting for it sleeps until it is due and gets it then. Two
        // receives reach the log: the one that sets it aside at the cursor, and the one that delivers it.
        sw.Restart();
        await Send(cluster, leader, HttpMethod.Post, Path(topic, "publish"), """{"messages": [{"body": "later", "delay_ms": 2500}]}""");
        before = await CountsAsync(cluster, leader);
        var got = Messages(await Send(cluster, leader, HttpMethod.Post, Path(topic, "receive"), """{"wait_ms": 20000, "lease_ms": 1500}""")).Single()!;
        (got["body"]!.GetValue<string>(), got["delivery_count"]!.GetValue<int>()).ShouldBe(("later", 1));
        sw.ElapsedMilliseconds.ShouldBeGreaterThanOrEqualTo(2500, "not before its time");
        sw.ElapsedMilliseconds.ShouldBeLessThan(15000, "answered once due, well before the wait is over");
        after = await CountsAsync(cluster, leader);
        (after.LastIndex - before.LastIndex).ShouldBeLessThanOrEqualTo(2 + after.Term - before.Term);
        (after.Reads - before.Reads).ShouldBeLessThanOrEqualTo(6, "the receive slept until the message was due");

        // Its lease of 1.5 s ends unacked: a receive waiting on the leader gets it again, with no other traffic, in one receive.
        sw.Restart();
        before = after;
        var again = Messages(await Send(cluster, leader, HttpMethod.Post, Path(topic, "receive"), """{"wait_ms": 20000}""")).Single()!;
        (again["body"]!.GetValue<string>(), again["delivery_count"]!.GetValue<int>()).ShouldBe(("later", 2));
        sw.ElapsedMilliseconds.ShouldBeLessThan(15000, "answered once the lease ended, well before the wait is over");
        after = await CountsAsync(cluster, leader);
        (after.LastIndex - before.LastIndex).ShouldBeLessThanOrEqualTo(1 + after.Term - before.Term);
        (after.Reads - before.Reads).ShouldBeLessThanOrEqualTo(5, "the receive slept until the lease ended");
    }

    [Fact]
    public async Task Woken_receives_of_one_group_take_turns_so_one_message_costs_one_receive()
    {
        await using var cluster = TestCluster.Create(3, "--request-timeout-ms", "8000");
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderAsync();
        const string topic = "herd";
        await Send(cluster, leader, HttpMethod.Put, Path(topic), null, HttpStatusCode.Created);

        // Six receives of one group wait on the leader; one message is published. One of them gets it, and one receive
        // reaches the log: the five others read that nothing is left and go on waiting, until their wait is over.
        const int waiters = 6;
        var waiting = Enumerable.Range(0, waiters)
            .Select(_ => Send(cluster, leader, HttpMethod.Post, Path(topic, "receive"), """{"wait_ms": 6000}""")).ToArray();
        (await Eventually.TrueAsync(async () => (await CountsAsync(cluster, leader)).Waiting == waiters, TimeSpan.FromSeconds(10)))
            .ShouldBeTrue("every receive is waiting");
        var before = await CountsAsync(cluster, leader);
        await Send(cluster, leader, HttpMethod.Post, Path(topic, "publish"), """{"messages": [{"body": "one"}]}""");
        var answers = await Task.WhenAll(waiting);
        answers.Sum(a => Messages(a).Count).ShouldBe(1);
        var after = await CountsAsync(cluster, leader);
        (after.LastIndex - before.LastIndex).ShouldBeLessThanOrEqualTo(2 + after.Term - before.Term, "the publish and one receive");
    }

    [Fact]
    public async Task Another_groups_commands_do_not_make_a_waiting_receive_propose()
    {
        await using var cluster = TestCluster.Create(3, "--request-timeout-ms", "8000");
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderAsync();
        var follower = (leader + 1) % 3;
        const string topic = "shared";
        await Send(cluster, leader, HttpMethod.Put, Path(topic), null, HttpStatusCode.Created);
        await Send(cluster, leader, HttpMethod.Put, Path("elsewhere"), null, HttpStatusCode.Created);
        await Send(cluster, leader, HttpMethod.Put, Path(topic, "groups/audit"), """{"start": "earliest"}""", HttpStatusCode.Created);
        await Send(cluster, leader, HttpMethod.Post, Path(topic, "publish"), """{"messages": [{"body": "m"}]}""");
        var receipt = Messages(await Send(cluster, leader, HttpMethod.Post, Path(topic, "receive"), """{"lease_ms": 60000}""")).Single()!["receipt"]!.GetValue<string>();
        var audited = Messages(await Send(cluster, leader, HttpMethod.Post, Path(topic, "receive"), """{"group": "audit"}""")).Single()!["receipt"]!.GetValue<string>();
        await Send(cluster, leader, HttpMethod.Post, Path(topic, "ack"), $$"""{"group": "audit", "receipts": ["{{audited}}"]}""");

        // "audit" has nothing left: its receive waits on a follower while "default" nacks, receives and acks, and
        // another topic gets a message. Four commands reach the log, and no receive of "audit".
        var before = await CountsAsync(cluster, leader);
        var sw = Stopwatch.StartNew();
        var waiting = Send(cluster, follower, HttpMethod.Post, Path(topic, "receive"), """{"group": "audit", "wait_ms": 4000}""");
        (await Eventually.TrueAsync(async () => (await CountsAsync(cluster, follower)).Waiting == 1, TimeSpan.FromSeconds(10)))
            .ShouldBeTrue("the receive of audit is waiting");
        (await Send(cluster, leader, HttpMethod.Post, Path(topic, "nack"), $$"""{"receipts": ["{{receipt}}"]}"""))["nacked"]!.GetValue<int>().ShouldBe(1);
        var redelivered = Messages(await Send(cluster, leader, HttpMethod.Post, Path(topic, "receive"), "{}")).Single()!;
        redelivered["delivery_count"]!.GetValue<int>().ShouldBe(2);
        await Send(cluster, leader, HttpMethod.Post, Path(topic, "ack"), $$"""{"receipts": ["{{redelivered["receipt"]!.GetValue<string>()}}"]}""");
        await Send(cluster, leader, HttpMethod.Post, Path("elsewhere", "publish"), """{"messages": [{"body": "x"}]}""");
        Messages(await waiting).ShouldBeEmpty();
        sw.ElapsedMilliseconds.ShouldBeGreaterThanOrEqualTo(4000);
        var after = await CountsAsync(cluster, leader);
        (after.LastIndex - before.LastIndex).ShouldBeLessThanOrEqualTo(4 + after.Term - before.Term, "the four commands sent, and no receive of audit");
        (await CountsAsync(cluster, follower)).Waiting.ShouldBe(0);

        // The topic deleted while a receive waits: it answers 404 then, not when its 20 s are over.
        sw.Restart();
        var orphaned = Send(cluster, follower, HttpMethod.Post, Path(topic, "receive"), """{"group": "audit", "wait_ms": 20000}""", HttpStatusCode.NotFound);
        (await Eventually.TrueAsync(async () => (await CountsAsync(cluster, follower)).Waiting == 1, TimeSpan.FromSeconds(10))).ShouldBeTrue();
        await Send(cluster, leader, HttpMethod.Delete, Path(topic));
        (await orphaned)["error"]!.GetValue<string>().ShouldBe("no such topic");
        sw.ElapsedMilliseconds.ShouldBeLessThan(15000, "answered when the deletion was applied");
    }

    [Fact]
    public async Task Past_the_bound_on_waiting_receives_a_receive_is_answered_at_once()
    {
        const int bound = 1024; // ServerLimits.MaxWaitingReceives, as docs/rest-api.md states it
        await using var cluster = TestCluster.Create(1, "--max-connections-per-ip", "2048");
        await cluster.StartAllAsync();
        var node = await cluster.WaitForLeaderAsync();
        const string topic = "crowded";
        await Send(cluster, node, HttpMethod.Put, Path(topic), null, HttpStatusCode.Created);

        using var holders = new HttpClient { Timeout = TimeSpan.FromSeconds(60) };
        using var release = new CancellationTokenSource();
        var held = Enumerable.Range(0, bound).Select(async _ =>
        {
            try
            {
                using var content = new StringContent("""{"wait_ms": 20000}""", Encoding.UTF8, "application/json");
                using var response = await holders.PostAsync(cluster.Url(node, Path(topic, "receive")), content, release.Token);
            }
            catch (OperationCanceledException) when (release.IsCancellationRequested)
            {
            }
        }).ToArray();
        (await Eventually.TrueAsync(async () => (await CountsAsync(cluster, node)).Waiting == bound, TimeSpan.FromSeconds(60), TimeSpan.FromMilliseconds(100)))
            .ShouldBeTrue($"{bound} receives are waiting");

        // One more asks to wait 20 s: answered at once, as with wait_ms 0 (nothing is ready, so empty).
        var sw = Stopwatch.StartNew();
        Messages(await Send(cluster, node, HttpMethod.Post, Path(topic, "receive"), """{"wait_ms": 20000}""")).ShouldBeEmpty();
        sw.ElapsedMilliseconds.ShouldBeLessThan(10000, "not held: every waiting place is taken");
        (await CountsAsync(cluster, node)).Waiting.ShouldBe(bound);

        // The clients give up: their places come back, and a receive waits again until a message comes.
        await release.CancelAsync();
        await Task.WhenAll(held);
        (await Eventually.TrueAsync(async () => (await CountsAsync(cluster, node)).Waiting == 0, TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(100)))
            .ShouldBeTrue("the places of receives whose clients went away are given back");
        var waiting = Send(cluster, node, HttpMethod.Post, Path(topic, "receive"), """{"wait_ms": 20000}""");
        (await Eventually.TrueAsync(async () => (await CountsAsync(cluster, node)).Waiting == 1, TimeSpan.FromSeconds(10))).ShouldBeTrue();
        await Send(cluster, node, HttpMethod.Post, Path(topic, "publish"), """{"messages": [{"body": "room"}]}""");
        Messages(await waiting).Single()!["body"]!.GetValue<string>().ShouldBe("room");
    }
}

using System.Net;
using System.Net.Sockets;

namespace RaftMQ.Server.Tests;

/// <summary>
/// Request targets that are not a path. A target naming a host (absolute-form, <c>PUT http://elsewhere/message</c>)
/// must not make a node send the request, or anything, anywhere else. Sent over a bare socket: HttpClient only sends
/// origin-form targets.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class RequestTargetTests
{
    [Fact]
    public async Task Targets_that_are_not_a_path_get_400_on_every_node_and_nothing_reaches_the_host_they_name()
    {
        // The host an attacker would have the follower reach; it must see no connection at all.
        using var bait = new TcpListener(IPAddress.Loopback, 0);
        bait.Start();
        var baitAuthority = $"127.0.0.1:{((IPEndPoint)bait.LocalEndpoint).Port}";

        await using var cluster = TestCluster.Create(3, "--request-timeout-ms", "4000");
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderAsync();
        var follower = Enumerable.Range(0, 3).First(i => i != leader);
        (await cluster.CreateTopicAsync(leader, "t")).Status.ShouldBe(HttpStatusCode.Created);

        (string Method, string Target, string? Body)[] requests =
        [
            ("PUT", $"http://{baitAuthority}/message", """{"topic":"t","message":"stolen"}"""),
            ("PUT", $"http://{baitAuthority}/topic", """{"topic":"stolen"}"""),
            ("GET", $"http://{baitAuthority}/message/t", null),
            ("POST", $"http://{baitAuthority}/v1/messages", """{"topic":"t","messages":["stolen"]}"""),
            ("POST", $"http://{baitAuthority}/v1/messages/pop", """{"topic":"t"}"""),
            ("GET", $"http://{baitAuthority}/topic", null),
            ("GET", $"http://{baitAuthority}/status", null),
            // Absolute-form naming the node itself is refused too: one rule, no host comparison to get wrong.
            ("PUT", $"http://127.0.0.1:{cluster.Ports[follower].Http}/message", """{"topic":"t","message":"stolen"}"""),
            ("CONNECT", baitAuthority, null),
            ("OPTIONS", "*", null),
        ];
        // The attack itself first: a write sent to a follower, naming the bait as its host.
        var first = await RawHttp.SendAsync(cluster.Ports[follower].Http, requests[0].Method, requests[0].Target, requests[0].Body);
        await AssertNoConnectionAsync(bait);
        first.Status.ShouldBe(400, first.Body);
        first.Body.ShouldContain("request target");

        foreach (var node in new[] { follower, leader })
        {
            foreach (var (method, target, body) in requests)
            {
                var answer = await RawHttp.SendAsync(cluster.Ports[node].Http, method, target, body);
                answer.Status.ShouldBe(400, $"node {node}: {method} {target} answered {answer.Status} {answer.Body}");
                answer.Body.ShouldContain("\"success\":false", customMessage: $"node {node}: {method} {target}");
                answer.Body.ShouldContain("request target", customMessage: $"node {node}: {method} {target}");
            }
        }

        await AssertNoConnectionAsync(bait);

        // Nothing was applied, and the same requests as paths still work through the follower.
        (await cluster.TopicsAsync(follower)).Body.ShouldBe("""{"success":true,"topics":["t"]}""");
        (await cluster.PopAsync(follower, "t")).Status.ShouldBe(HttpStatusCode.NotFound);
        (await RawHttp.SendAsync(cluster.Ports[follower].Http, "PUT", "/message", """{"topic":"t","message":"kept"}""")).Status.ShouldBe(200);
        (await cluster.PopAsync(follower, "t")).Body.ShouldBe("""{"success":true,"message":"kept"}""");
    }

    /// <summary>A bounded accept is the deadline: a request sent on would connect well within it.</summary>
    private static async Task AssertNoConnectionAsync(TcpListener bait)
    {
        using var window = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        var accepted = bait.AcceptTcpClientAsync(window.Token).AsTask();
        await Should.ThrowAsync<OperationCanceledException>(accepted, "a node connected to the host named in a request target");
    }
}

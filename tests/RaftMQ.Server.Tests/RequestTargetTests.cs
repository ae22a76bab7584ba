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

    [Fact]
    public async Task Dot_segments_and_bad_escapes_in_a_path_get_400_and_reach_no_endpoint()
    {
        await using var cluster = TestCluster.Create(3, "--request-timeout-ms", "4000");
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderAsync();
        var follower = Enumerable.Range(0, 3).First(i => i != leader);
        (await cluster.CreateTopicAsync(leader, "fo")).Status.ShouldBe(HttpStatusCode.Created);
        // Each would otherwise be resolved to another path (/v1/messages, /v1/messages/pop, /message) or create a
        // topic named by the undecoded text.
        (string Method, string Target, string? Body, string Error)[] requests =
        [
            ("POST", "/v1/topics/%2e%2e/messages", """{"topic":"fo","messages":["moved"]}""", "escaped or not"),
            ("POST", "/v1/topics/fo/%2E%2E/%2e%2e/messages", """{"topic":"fo","messages":["moved"]}""", "escaped or not"),
            ("POST", "/v1/topics/fo/../../messages", """{"topic":"fo","messages":["moved"]}""", "escaped or not"),
            ("POST", "/v1/topics/%2E%2E/messages/pop", """{"topic":"fo","max":1}""", "escaped or not"),
            ("GET", "/message/fo/%2e%2e/fo", null, "escaped or not"),
            ("GET", "/message/%2e", null, "escaped or not"),
            ("PUT", "/v1/topics/%zz", "{}", "valid URL escape"),
            ("PUT", "/v1/topics/ab%2", "{}", "valid URL escape"),
            ("PUT", "/v1/topics/%C3%28", "{}", "valid URL escape"),
            ("GET", "/message/%FF", null, "valid URL escape"),
        ];
        foreach (var node in new[] { follower, leader })
        {
            foreach (var (method, target, body, error) in requests)
            {
                var answer = await RawHttp.SendAsync(cluster.Ports[node].Http, method, target, body);
                answer.Status.ShouldBe(400, $"node {node}: {method} {target} answered {answer.Status} {answer.Body}");
                answer.Body.ShouldContain("\"success\":false", customMessage: $"node {node}: {method} {target}");
                answer.Body.ShouldContain(error, customMessage: $"node {node}: {method} {target}");
            }
        }
        // Nothing was published, popped or created; a valid escape still names its topic.
        (await cluster.TopicsAsync(leader)).Body.ShouldBe("""{"success":true,"topics":["fo"]}""");
        (await RawHttp.SendAsync(cluster.Ports[follower].Http, "PUT", "/v1/topics/caf%C3%A9", "{}")).Status.ShouldBe(201);
        (await cluster.TopicsAsync(leader)).Body.ShouldBe("""{"success":true,"topics":["fo","café"]}""");
        (await cluster.PopAsync(follower, "fo")).Status.ShouldBe(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task A_path_or_method_no_endpoint_serves_gets_a_json_reason()
    {
        await using var cluster = TestCluster.Create(1);
        await cluster.StartAllAsync();
        foreach (var (method, target, status) in new[] { ("GET", "/nothing", 404), ("POST", "/status", 405), ("DELETE", "/topic", 405), ("GET", "/v1/nothing/here", 404) })
        {
            var answer = await RawHttp.SendAsync(cluster.Ports[0].Http, method, target);
            answer.Status.ShouldBe(status, $"{method} {target}: {answer.Body}");
            answer.Headers.ShouldContain("application/json", Case.Insensitive, $"{method} {target}");
            answer.Body.ShouldStartWith("{\"success\":false,\"error\":", customMessage: $"{method} {target}");
            answer.Body.ShouldContain($"{method} {target}", customMessage: $"{method} {target}");
        }
    }

    /// <summary>A bounded accept is the deadline: a request sent on would connect well within it.</summary>
    private static async Task AssertNoConnectionAsync(TcpListener bait)
    {
        using var window = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        var accepted = bait.AcceptTcpClientAsync(window.Token).AsTask();
        await Should.ThrowAsync<OperationCanceledException>(accepted, "a node connected to the host named in a request target");
    }
}

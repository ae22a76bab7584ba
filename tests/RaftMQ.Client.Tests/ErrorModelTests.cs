using System.Net;
using System.Net.Sockets;

namespace RaftMQ.Client.Tests;

/// <summary>
/// The client's error model against scripted endpoints: what is retried, what is reported as unknown, what is final.
/// </summary>
public sealed class ErrorModelTests
{
    [Theory]
    [InlineData("http://node-a/", "http://node-a:80")]
    [InlineData("http://node-a:80", "http://node-a:80")]
    [InlineData("http://10.0.0.7:8567/", "http://10.0.0.7:8567")]
    [InlineData("https://[::1]:9443", "https://[::1]:9443")]
    [InlineData("HTTP://Node-B:8567", "http://node-b:8567")]
    public void A_member_url_is_sent_with_its_port_written_out(string given, string sent) =>
        RaftMQClient.MemberUrl(new Uri(given)).ShouldBe(sent);

    [Fact]
    public async Task A_publish_whose_connection_drops_after_sending_is_reported_unknown_and_not_retried()
    {
        await using var node = new FakeNode(_ => null);
        using var client = FakeNode.Client(node.Url);
        var e = await Should.ThrowAsync<OutcomeUnknownException>(() => client.PublishAsync("t", "m"));
        e.Operation.ShouldBe("publish");
        node.Requests.ShouldBe(1);
    }

    [Fact]
    public async Task A_pop_whose_connection_drops_after_sending_is_reported_unknown_and_not_retried()
    {
        await using var node = new FakeNode(_ => null);
        using var client = FakeNode.Client(node.Url);
        (await Should.ThrowAsync<OutcomeUnknownException>(() => client.PopAsync("t"))).Operation.ShouldBe("pop");
        node.Requests.ShouldBe(1);
    }

    [Fact]
    public async Task A_node_reporting_outcome_unknown_is_surfaced_for_publish_but_retried_for_topic_creation()
    {
        var creates = 0;
        await using var node = new FakeNode(target => target switch
        {
            "PUT /message" => FakeNode.Response(503, """{"success":false,"error":"timed out"}""", "outcome-unknown"),
            // The first creation's outcome is unknown; the retry finds the topic there.
            "PUT /topic" => Interlocked.Increment(ref creates) == 1
                ? FakeNode.Response(503, """{"success":false,"error":"timed out"}""", "outcome-unknown")
                : FakeNode.Response(409, """{"success":false}"""),
            _ => FakeNode.Response(500, "{}"),
        });
        using var client = FakeNode.Client(node.Url);
        await Should.ThrowAsync<OutcomeUnknownException>(() => client.PublishAsync("t", "m"));
        node.Requests.ShouldBe(1);
        (await client.CreateTopicAsync("t")).ShouldBeFalse();
        creates.ShouldBe(2);
    }

    [Fact]
    public async Task Reads_are_retried_after_a_dropped_connection()
    {
        var calls = 0;
        await using var node = new FakeNode(_ => Interlocked.Increment(ref calls) < 3 ? null : FakeNode.Response(200, """{"success":true,"topics":["a","b"]}"""));
        using var client = FakeNode.Client(node.Url);
        (await client.ListTopicsAsync()).ShouldBe(["a", "b"]);
        calls.ShouldBe(3);
    }

    [Theory]
    [InlineData("no-leader")]
    [InlineData("not-leader")]
    [InlineData("stopped")]
    [InlineData("overloaded")]
    public async Task A_publish_refused_as_not_applied_is_retried_then_reported_unavailable(string code)
    {
        await using var node = new FakeNode(_ => FakeNode.Response(503, """{"success":false,"error":"busy"}""", code));
        using var client = FakeNode.Client(node.Url, maxRetries: 2);
        var e = await Should.ThrowAsync<ClusterUnavailableException>(() => client.PublishAsync("t", "m"));
        e.Reason.ShouldBe(code);
        node.Requests.ShouldBe(3);
    }

    [Fact]
    public async Task Final_answers_are_not_retried()
    {
        await using var node = new FakeNode(target => target switch
        {
            "PUT /message" => FakeNode.Response(404, """{"success":false}"""),
            "PUT /topic" => FakeNode.Response(507, """{"success":false,"error":"the queue is full"}"""),
            _ => FakeNode.Response(404, """{"success":false}"""),
        });
        using var client = FakeNode.Client(node.Url);
        (await Should.ThrowAsync<TopicNotFoundException>(() => client.PublishAsync("missing", "m"))).Topic.ShouldBe("missing");
        var rejected = await Should.ThrowAsync<RequestRejectedException>(() => client.CreateTopicAsync("t"));
        rejected.StatusCode.ShouldBe(HttpStatusCode.InsufficientStorage);
        rejected.ServerError.ShouldBe("the queue is full");
        (await client.PopAsync("t")).ShouldBeNull();
        node.Requests.ShouldBe(3);
    }

    [Fact]
    public async Task A_401_or_403_is_reported_as_such_at_once_even_for_publish_and_never_retried()
    {
        await using var node = new FakeNode(target => target switch
        {
            "PUT /message" => FakeNode.Response(401, """{"success":false,"error":"this endpoint needs an API key"}""", "unauthorized"),
            _ => FakeNode.Response(403, """{"success":false,"error":"the API key \"app\" lacks consume permission on topic \"t\""}""", "forbidden"),
        });
        using var client = FakeNode.Client(node.Url);
        var unauthenticated = await Should.ThrowAsync<AuthenticationFailedException>(() => client.PublishAsync("t", "m"));
        unauthenticated.Message.ShouldContain("none was given");
        unauthenticated.ServerError.ShouldBe("this endpoint needs an API key");
        (await Should.ThrowAsync<PermissionDeniedException>(() => client.PopAsync("t"))).ServerError
            .ShouldBe("the API key \"app\" lacks consume permission on topic \"t\"");
        (await Should.ThrowAsync<PermissionDeniedException>(() => client.ListTopicsAsync())).Message.ShouldContain("permission denied (403)");
        node.Requests.ShouldBe(3);
    }

    [Theory]
    [InlineData("")]
    [InlineData("has space")]
    [InlineData("line\nbreak")]
    public void An_API_key_that_cannot_be_a_bearer_token_is_refused_before_any_request(string key)
    {
        var options = new RaftMQClientOptions { Nodes = { new Uri("http://127.0.0.1:1") }, ApiKey = key };
        Should.Throw<ArgumentException>(() => new RaftMQClient(options)).ParamName.ShouldBe("ApiKey");
        Should.Throw<ArgumentException>(() => new RaftMQClient(new RaftMQClientOptions { Nodes = { new Uri("http://127.0.0.1:1") }, ApiKey = new string('k', RaftMQClientOptions.MaxApiKeyLength + 1) }));
    }

    [Fact]
    public async Task No_reachable_node_is_reported_unavailable_not_unknown_even_for_publish()
    {
        // A port that was free a moment ago: connections are refused, so nothing can have been sent.
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        using var client = FakeNode.Client(new Uri($"http://127.0.0.1:{port}"), maxRetries: 2);
        var e = await Should.ThrowAsync<ClusterUnavailableException>(() => client.PublishAsync("t", "m"));
        e.Reason.ShouldBe("unreachable");
        e.Message.ShouldContain($"127.0.0.1:{port}");
    }

    [Fact]
    public void Bad_arguments_fail_before_any_request()
    {
        Should.Throw<ArgumentException>(() => new RaftMQClient([]));
        Should.Throw<ArgumentException>(() => new RaftMQClient([new Uri("ftp://x")]));
        using var client = new RaftMQClient([new Uri("http://127.0.0.1:1")]);
        Should.Throw<ArgumentException>(() => client.PublishAsync("", "m"));
    }
}

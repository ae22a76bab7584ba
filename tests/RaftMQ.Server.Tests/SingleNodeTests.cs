using System.Net;
using System.Net.Sockets;
using System.Text;

namespace RaftMQ.Server.Tests;

/// <summary>The RRMQ behaviours on a one-node cluster, through real processes and real HTTP.</summary>
[Collection(ClusterCollection.Name)]
public sealed class SingleNodeTests : IAsyncLifetime
{
    private TestCluster _cluster = null!;

    public async Task InitializeAsync()
    {
        _cluster = TestCluster.Create(1);
        await _cluster.StartAllAsync();
    }

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    [Fact]
    public async Task Single_node_is_its_own_leader()
    {
        (await _cluster.WaitForLeaderAsync()).ShouldBe(0);
    }

    [Fact]
    public async Task Topics_list_is_empty_then_in_creation_order_and_duplicates_are_refused()
    {
        (await _cluster.TopicsAsync(0)).ShouldBe((HttpStatusCode.OK, """{"success":true,"topics":[]}"""));
        (await _cluster.CreateTopicAsync(0, "b")).ShouldBe((HttpStatusCode.Created, """{"success":true}"""));
        (await _cluster.CreateTopicAsync(0, "a")).ShouldBe((HttpStatusCode.Created, """{"success":true}"""));
        (await _cluster.CreateTopicAsync(0, "b")).ShouldBe((HttpStatusCode.Conflict, """{"success":false}"""));
        (await _cluster.TopicsAsync(0)).ShouldBe((HttpStatusCode.OK, """{"success":true,"topics":["b","a"]}"""));
    }

    [Fact]
    public async Task Messages_pop_in_FIFO_order_and_an_empty_or_missing_topic_fails()
    {
        (await _cluster.PublishAsync(0, "t", "x")).ShouldBe((HttpStatusCode.NotFound, """{"success":false}"""));
        await _cluster.CreateTopicAsync(0, "t");
        (await _cluster.PopAsync(0, "t")).ShouldBe((HttpStatusCode.NotFound, """{"success":false}"""));
        for (int i = 0; i < 5; i++)
            (await _cluster.PublishAsync(0, "t", $"m{i}")).ShouldBe((HttpStatusCode.OK, """{"success":true}"""));
        for (int i = 0; i < 5; i++)
            (await _cluster.PopAsync(0, "t")).ShouldBe((HttpStatusCode.OK, $$"""{"success":true,"message":"m{{i}}"}"""));
        (await _cluster.PopAsync(0, "t")).ShouldBe((HttpStatusCode.NotFound, """{"success":false}"""));
        (await _cluster.PopAsync(0, "nope")).ShouldBe((HttpStatusCode.NotFound, """{"success":false}"""));
    }

    [Fact]
    public async Task Unicode_and_url_hostile_topic_names_round_trip()
    {
        string[] names = ["ünïcødé ✓", "a/b/c", "q?x=1&y=2", "100% #hash", "...", "spaces  and\ttabs"];
        foreach (var name in names)
        {
            (await _cluster.CreateTopicAsync(0, name)).Status.ShouldBe(HttpStatusCode.Created, name);
            (await _cluster.PublishAsync(0, name, "hello " + name)).Status.ShouldBe(HttpStatusCode.OK, name);
        }
        var (_, body) = await _cluster.TopicsAsync(0);
        var topics = System.Text.Json.JsonDocument.Parse(body).RootElement.GetProperty("topics").EnumerateArray().Select(e => e.GetString()).ToArray();
        topics.ShouldBe(names);
        foreach (var name in names)
            (await _cluster.PopAsync(0, name)).Body.ShouldBe(AnswerJson.Of(new { success = true, message = "hello " + name }));
    }

    [Fact]
    public async Task A_message_comes_back_as_its_text_with_only_what_JSON_requires_escaped()
    {
        const string message = "{\"order\": 1, \"note\": \"say <hi> & 'bye' — ¡olé! 你好 🙂\"}\n\tend\\";
        (await _cluster.CreateTopicAsync(0, "text")).Status.ShouldBe(HttpStatusCode.Created);
        (await _cluster.PublishAsync(0, "text", message)).Status.ShouldBe(HttpStatusCode.OK);
        using var response = await _cluster.Http.GetAsync(_cluster.Url(0, "/message/text"));
        var raw = Encoding.UTF8.GetString(await response.Content.ReadAsByteArrayAsync());
        // Characters beyond U+FFFF (the emoji) are written as the JSON escapes of their UTF-16 pair.
        raw.ShouldBe("{\"success\":true,\"message\":\"{\\\"order\\\": 1, \\\"note\\\": \\\"say <hi> & 'bye' — ¡olé! 你好 \\uD83D\\uDE42\\\"}\\n\\tend\\\\\"}");
        System.Text.Json.JsonDocument.Parse(raw).RootElement.GetProperty("message").GetString().ShouldBe(message);
        response.Content.Headers.ContentType!.MediaType.ShouldBe("application/json");
        response.Headers.GetValues("X-Content-Type-Options").ShouldBe(["nosniff"]);
    }

    [Theory]
    [InlineData("PUT", "/topic", "not json")]
    [InlineData("PUT", "/topic", "{}")]
    [InlineData("PUT", "/topic", """{"topic": 5}""")]
    [InlineData("PUT", "/topic", """{"topic": null}""")]
    [InlineData("PUT", "/topic", """["topic"]""")]
    [InlineData("PUT", "/topic", """{"topic": ""}""")]
    [InlineData("PUT", "/topic", """{"topic": ".."}""")]
    [InlineData("PUT", "/message", """{"topic": "t"}""")]
    [InlineData("PUT", "/message", """{"topic": "t", "message": 1}""")]
    [InlineData("PUT", "/message", """{"topic": "t", "message": {"nested": true}}""")]
    [InlineData("PUT", "/message", "{\"topic\": \"t\", \"message\": \"unterminated")]
    public async Task Bad_input_gets_400_with_an_error_and_changes_nothing(string method, string path, string body)
    {
        var (status, text) = await _cluster.SendAsync(0, new HttpMethod(method), path, body);
        status.ShouldBe(HttpStatusCode.BadRequest);
        text.ShouldContain("\"success\":false");
        text.ShouldContain("\"error\":");
        (await _cluster.TopicsAsync(0)).Body.ShouldBe("""{"success":true,"topics":[]}""");
    }

    [Fact]
    public async Task A_10_MB_body_gets_413_and_the_node_keeps_serving()
    {
        var big = "{\"topic\":\"t\",\"message\":\"" + new string('x', 10 * 1024 * 1024) + "\"}";
        // Expect: 100-continue, as curl sends for big bodies: the node refuses before the upload starts.
        using var request = new HttpRequestMessage(HttpMethod.Put, _cluster.Url(0, "/message"))
        {
            Content = new StringContent(big, Encoding.UTF8, "application/json"),
        };
        request.Headers.ExpectContinue = true;
        using var response = await _cluster.Http.SendAsync(request);
        response.StatusCode.ShouldBe(HttpStatusCode.RequestEntityTooLarge);
        (await response.Content.ReadAsStringAsync()).ShouldContain("larger than");
        (await _cluster.CreateTopicAsync(0, "after")).Status.ShouldBe(HttpStatusCode.Created);
    }

    [Fact]
    public async Task A_message_over_the_size_limit_gets_413()
    {
        await _cluster.CreateTopicAsync(0, "t");
        var (status, text) = await _cluster.PublishAsync(0, "t", new string('y', 64 * 1024 + 1));
        status.ShouldBe(HttpStatusCode.RequestEntityTooLarge);
        text.ShouldContain("65536");
        (await _cluster.PopAsync(0, "t")).Status.ShouldBe(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Garbage_on_the_peer_port_does_not_hurt_the_node()
    {
        await _cluster.CreateTopicAsync(0, "t");
        for (int i = 0; i < 3; i++)
        {
            using var client = new TcpClient();
            try
            {
                await client.ConnectAsync(IPAddress.Loopback, _cluster.Ports[0].Peer);
                await client.GetStream().WriteAsync(Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\n\r\n" + new string('\xff', 4096)));
            }
            catch (SocketException)
            {
                // A closed or refused connection is an acceptable answer to garbage.
            }
            catch (IOException)
            {
                // Reset by the node while we were still writing: also fine.
            }
        }
        (await _cluster.PublishAsync(0, "t", "still here")).Status.ShouldBe(HttpStatusCode.OK);
        (await _cluster.PopAsync(0, "t")).Body.ShouldBe("""{"success":true,"message":"still here"}""");
        _cluster.Node(0).HasExited.ShouldBeFalse();
    }

    [Fact]
    public async Task Requests_that_are_not_HTTP_get_the_HTTP_servers_4xx_or_505_and_the_node_serves_on()
    {
        await _cluster.CreateTopicAsync(0, "t");
        var port = _cluster.Ports[0].Http;
        (string Request, int Status)[] cases =
        [
            ("GARBAGE\r\n\r\n", 400),
            ("GET /status HTTP/1.1\r\n\r\n", 400), // no Host
            ("GET /message/t%00 HTTP/1.1\r\nHost: x\r\n\r\n", 400), // NUL in the path
            ("GET /status HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400),
            ("\x16\x03\x01\x00\xa5\x01\x00\x00", 400), // a TLS ClientHello's first bytes on a plain port
            ("GET /status HTTP/9.9\r\nHost: x\r\n\r\n", 505),
            ($"GET /{new string('a', 9 * 1024)} HTTP/1.1\r\nHost: x\r\n\r\n", 414),
            ($"GET /status HTTP/1.1\r\nHost: x\r\nX-A: {new string('a', 40 * 1024)}\r\n\r\n", 431),
        ];
        foreach (var (request, status) in cases)
        {
            var answer = await RawHttp.SendBytesAsync(port, Encoding.Latin1.GetBytes(request));
            answer.Status.ShouldBe(status, request[..Math.Min(40, request.Length)]);
            answer.Headers.ShouldContain("Connection: close", Case.Insensitive);
        }
        (await _cluster.PublishAsync(0, "t", "still here")).Status.ShouldBe(HttpStatusCode.OK);
        (await _cluster.PopAsync(0, "t")).Body.ShouldBe("""{"success":true,"message":"still here"}""");
        _cluster.Node(0).HasExited.ShouldBeFalse();
    }

    [Fact]
    public async Task Every_path_answers_without_a_server_error()
    {
        foreach (var (method, path) in new[] { ("GET", "/"), ("GET", "/nothing"), ("POST", "/topic"), ("DELETE", "/message"), ("GET", "/message/"), ("GET", "/v1/status") })
        {
            var (status, _) = await _cluster.SendAsync(0, new HttpMethod(method), path);
            ((int)status).ShouldBeLessThan(500, $"{method} {path}");
        }
    }

    [Fact]
    public async Task SIGTERM_stops_the_node_within_a_second()
    {
        await _cluster.CreateTopicAsync(0, "t");
        var elapsed = await _cluster.Node(0).TerminateAsync(TimeSpan.FromSeconds(5));
        elapsed.ShouldBeLessThan(TimeSpan.FromSeconds(1));
        _cluster.Node(0).ExitCode.ShouldBe(0);
    }
}

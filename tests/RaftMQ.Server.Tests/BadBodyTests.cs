using System.Net;
using System.Text;

namespace RaftMQ.Server.Tests;

/// <summary>
/// Bodies within the documented limits that are not what an endpoint takes: every endpoint that reads a body
/// answers each with a 400 and a JSON reason — never a 500, never a dead node — and changes nothing.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class BadBodyTests : IAsyncLifetime
{
    private static readonly (string Method, string Path)[] BodyEndpoints =
        [("PUT", "/topic"), ("PUT", "/message"), ("POST", "/v1/messages"), ("POST", "/v1/messages/pop")];

    private TestCluster _cluster = null!;

    public async Task InitializeAsync()
    {
        _cluster = TestCluster.Create(1);
        await _cluster.StartAllAsync();
        await _cluster.WaitForLeaderAsync();
        (await _cluster.CreateTopicAsync(0, "t")).Status.ShouldBe(HttpStatusCode.Created);
        (await _cluster.PublishAsync(0, "t", "kept")).Status.ShouldBe(HttpStatusCode.OK);
    }

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    /// <summary>A body for <paramref name="path"/> whose every string is <paramref name="s"/>, as raw JSON text (bytes).</summary>
    private static byte[] BodyWith(string path, byte[] s) => path switch
    {
        "/topic" => Join("""{"topic":""", s, "}"),
        "/message" => Join("""{"topic":"t","message":""", s, "}"),
        "/v1/messages" => Join("""{"topic":"t","messages":["a",""", s, "]}"),
        _ => Join("""{"max":1,"topic":""", s, "}"),
    };

    private static byte[] Join(string before, byte[] middle, string after) =>
        [.. Encoding.ASCII.GetBytes(before), .. middle, .. Encoding.ASCII.GetBytes(after)];

    private static byte[] Ascii(string s) => Encoding.ASCII.GetBytes(s);

    [Fact]
    public async Task Invalid_UTF8_or_a_lone_surrogate_escape_in_any_body_gets_400_with_a_reason()
    {
        (string What, byte[] Value)[] strings =
        [
            ("a lone high surrogate escape", Ascii("\"\\ud800\"")),
            ("a lone low surrogate escape", Ascii("\"x\\udc00\"")),
            ("two high surrogate escapes", Ascii("\"\\ud800\\ud800\"")),
            ("a raw 0xFF byte", [(byte)'"', (byte)'x', 0xFF, (byte)'"']),
            ("a truncated UTF-8 sequence", [(byte)'"', 0xE2, 0x82, (byte)'"']),
            ("an overlong UTF-8 encoding of '/'", [(byte)'"', 0xC0, 0xAF, (byte)'"']),
            ("a UTF-8-encoded surrogate", [(byte)'"', 0xED, 0xA0, 0x80, (byte)'"']),
        ];
        var bodies = new List<(string Method, string Path, string What, byte[] Body)>();
        foreach (var (method, path) in BodyEndpoints)
        {
            foreach (var (what, value) in strings) bodies.Add((method, path, what + " in a value", BodyWith(path, value)));
            bodies.Add((method, path, "a lone surrogate escape in a field name", Ascii("{\"\\ud800\":\"t\",\"topic\":\"t\",\"message\":\"m\",\"messages\":[\"m\"]}")));
            bodies.Add((method, path, "a raw 0xFF byte in a field name", Join("{\"top", [0xFF], "ic\":\"t\",\"message\":\"m\",\"messages\":[\"m\"]}")));
            bodies.Add((method, path, "a raw 0xFF byte in an unknown field's value", Join("{\"topic\":\"t\",\"message\":\"m\",\"messages\":[\"m\"],\"x\":\"", [0xFF], "\"}")));
        }
        await AssertAll400Async(bodies);
    }

    [Fact]
    public async Task Any_other_malformed_body_within_the_limits_gets_400_with_a_reason()
    {
        var deep = new string('[', 100_000) + new string(']', 100_000);
        string[] anyEndpoint =
        [
            "", " ", "\r\n", "null", "true", "0", "-1e999", "\"t\"", "[]", "[{}]", "{}", "{", "}", "{\"topic\":}",
            "\uFEFF{\"topic\":\"t\"}", "{'topic':'t'}", "{\"topic\":\"t\"}{\"topic\":\"u\"}", "{\"topic\":\"t\",}", "{\"topic\":\"t\"} x",
            "{\"topic\":\"t\" /* comment */}", "{\"topic\":\"t\\x\"}", "{\"topic\":\"t\\u12\"}", "{\"topic\":\"t\tu\"}",
            deep, "{\"topic\":" + deep + "}", "{\"topic\":\"t\",\"message\":\"m\",\"messages\":[\"m\"],\"x\":" + deep + "}",
            "{\"topic\":1e999999}", "{\"topic\":99999999999999999999999999999999}", "{\"topic\":true}", "{\"topic\":{}}", "{\"topic\":[\"t\"]}",
        ];
        var bodies = new List<(string Method, string Path, string What, byte[] Body)>();
        foreach (var (method, path) in BodyEndpoints)
            foreach (var body in anyEndpoint) bodies.Add((method, path, body.Length > 60 ? body[..60] + "..." : body, Encoding.UTF8.GetBytes(body)));
        (string Method, string Path, string Body)[] specific =
        [
            ("PUT", "/message", """{"topic":"t","message":null}"""),
            ("PUT", "/message", """{"topic":"t","message":1e999}"""),
            ("PUT", "/message", """{"topic":"t","message":["m"]}"""),
            ("PUT", "/message", """{"message":"m"}"""),
            ("POST", "/v1/messages", """{"topic":"t","messages":{"0":"m"}}"""),
            ("POST", "/v1/messages", """{"topic":"t","messages":[1e999]}"""),
            ("POST", "/v1/messages", """{"topic":"t","messages":[true]}"""),
            ("POST", "/v1/messages", """{"topic":"t","messages":null}"""),
            ("POST", "/v1/messages/pop", """{"topic":"t","max":1e999}"""),
            ("POST", "/v1/messages/pop", """{"topic":"t","max":-1e999}"""),
            ("POST", "/v1/messages/pop", """{"topic":"t","max":99999999999999999999999999999999}"""),
            ("POST", "/v1/messages/pop", """{"topic":"t","max":1E1000}"""),
            ("POST", "/v1/messages/pop", """{"topic":"t","max":2147483648}"""),
            ("POST", "/v1/messages/pop", """{"topic":"t","max":-2147483649}"""),
            ("POST", "/v1/messages/pop", """{"topic":"t","max":-0.0}"""),
            ("POST", "/v1/messages/pop", """{"topic":"t","max":true}"""),
            ("POST", "/v1/messages/pop", """{"topic":"t","max":[1]}"""),
        ];
        foreach (var (method, path, body) in specific) bodies.Add((method, path, body, Encoding.UTF8.GetBytes(body)));
        await AssertAll400Async(bodies);
    }

    [Fact]
    public async Task Escapes_of_real_characters_and_surrogate_pairs_are_still_taken()
    {
        // Escaped, raw UTF-8 and a surrogate pair (U+1F600) side by side: only lone surrogates and invalid UTF-8 are refused.
        var escaped = """ \ud83d\ude00 \u00e9 é \" \\ \u0000 \/ """;
        var expected = " \U0001F600 é é \" \\ \0 / ";
        // A topic name takes them all but U+0000, which no path can carry: that one is refused.
        var topic = escaped.Replace("\\u0000", "", StringComparison.Ordinal);
        (await _cluster.SendAsync(0, HttpMethod.Put, "/topic", $$"""{"topic":"u{{topic}}"}""")).Status.ShouldBe(HttpStatusCode.Created);
        (await _cluster.SendAsync(0, HttpMethod.Put, "/message", $$"""{"topic":"u{{topic}}","message":"m{{escaped}}"}""")).Status.ShouldBe(HttpStatusCode.OK);
        (await _cluster.SendAsync(0, HttpMethod.Post, "/v1/messages", $$"""{"topic":"u{{topic}}","messages":["b{{escaped}}"]}""")).Status.ShouldBe(HttpStatusCode.OK);
        (await _cluster.SendAsync(0, HttpMethod.Put, "/topic", $$"""{"topic":"u{{escaped}}"}""")).Status.ShouldBe(HttpStatusCode.BadRequest);
        var (status, body) = await _cluster.SendAsync(0, HttpMethod.Post, "/v1/messages/pop", $$"""{"topic":"u{{topic}}","max":2}""");
        status.ShouldBe(HttpStatusCode.OK, body);
        System.Text.Json.JsonDocument.Parse(body).RootElement.GetProperty("messages").EnumerateArray().Select(m => m.GetString()).ShouldBe(["m" + expected, "b" + expected]);
    }

    /// <summary>Sends each body; collects every answer that is not a 400 with a JSON reason, so one run shows them all.</summary>
    private async Task AssertAll400Async(List<(string Method, string Path, string What, byte[] Body)> bodies)
    {
        var wrong = new List<string>();
        foreach (var (method, path, what, body) in bodies)
        {
            using var request = new HttpRequestMessage(new HttpMethod(method), _cluster.Url(0, path)) { Content = new ByteArrayContent(body) };
            request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
            using var response = await _cluster.Http.SendAsync(request);
            var text = await response.Content.ReadAsStringAsync();
            var json = response.Content.Headers.ContentType?.MediaType == "application/json";
            if (response.StatusCode != HttpStatusCode.BadRequest || !json || !text.Contains("\"success\":false", StringComparison.Ordinal) || !text.Contains("\"error\":\"", StringComparison.Ordinal))
                wrong.Add($"{method} {path} with {what}: {(int)response.StatusCode} '{text}'");
        }
        _cluster.Node(0).HasExited.ShouldBeFalse($"the node died; output:\n{_cluster.Node(0).Output}");
        wrong.ShouldBeEmpty($"{wrong.Count} of {bodies.Count} answers were not a 400 with a JSON reason:\n{string.Join('\n', wrong)}");
        (await _cluster.TopicsAsync(0)).Body.ShouldBe("""{"success":true,"topics":["t"]}""", "no bad body created a topic");
        (await _cluster.PopAsync(0, "t")).Body.ShouldBe("""{"success":true,"message":"kept"}""");
        (await _cluster.PopAsync(0, "t")).Status.ShouldBe(HttpStatusCode.NotFound, "no bad body published or popped a message");
    }
}

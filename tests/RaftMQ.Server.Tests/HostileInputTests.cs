using System.Net;
using System.Text;
using System.Text.Json.Nodes;

namespace RaftMQ.Server.Tests;

/// <summary>
/// Hostile input on a real node: seeded random requests to every queue endpoint — bodies of random bytes, truncated
/// JSON, known fields with values of every wrong type and size, unknown fields, deep nesting, odd topic names and
/// escapes — each answered with a 4xx (or 507 for a limit) and a JSON error, never a 5xx or a crash; the node then
/// still serves. The seed is printed on failure; <c>RAFTMQ_SEED=n</c> replays one.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class HostileInputTests
{
    /// <summary>Requests per run: 600 by default, 20,000 with <c>RAFTMQ_SOAK=1</c>.</summary>
    private static int Requests => Environment.GetEnvironmentVariable("RAFTMQ_SOAK") == "1" ? 20_000 : 600;

    /// <summary>The queue endpoints (membership and leadership changes are left out: valid ones change the cluster).</summary>
    private static readonly (string Method, string Path)[] Endpoints =
    [
        ("PUT", "/topic"), ("PUT", "/message"), ("GET", "/message/{t}"), ("GET", "/topic"),
        ("POST", "/v1/messages"), ("POST", "/v1/messages/pop"),
        ("PUT", "/v1/topics/{t}"), ("GET", "/v1/topics/{t}"), ("DELETE", "/v1/topics/{t}"),
        ("PUT", "/v1/topics/{t}/groups/{g}"), ("DELETE", "/v1/topics/{t}/groups/{g}"),
        ("POST", "/v1/topics/{t}/messages"), ("POST", "/v1/topics/{t}/messages/pop"),
        ("POST", "/v1/topics/{t}/publish"), ("POST", "/v1/topics/{t}/receive"), ("POST", "/v1/topics/{t}/ack"),
        ("POST", "/v1/topics/{t}/nack"), ("POST", "/v1/topics/{t}/extend"), ("POST", "/v1/topics/{t}/redrive"),
        ("GET", "/v1/topics/{t}/peek?from={n}&max={n}"), ("GET", "/v1/topics/{t}/dead-letters"),
        ("POST", "/v1/topics/{t}/dead-letters/receive"), ("POST", "/v1/topics/{t}/dead-letters/ack"),
        ("GET", "/v1/topics/{t}/dead-letters/peek?from={n}"),
    ];

    private static readonly string[] Fields =
    [
        "topic", "message", "messages", "body", "body_base64", "headers", "id", "delay_ms", "group", "max", "lease_ms",
        "wait_ms", "receipts", "error", "start", "max_deliveries", "dedup_window_ms", "max_messages", "max_bytes",
        "max_age_ms", "overflow", "expire", "payload_base64", "from",
    ];

    [Fact]
    public async Task Random_requests_to_every_endpoint_get_4xx_answers_and_the_node_keeps_serving()
    {
        var seed = Environment.GetEnvironmentVariable("RAFTMQ_SEED") is { } s ? int.Parse(s, System.Globalization.CultureInfo.InvariantCulture) : Environment.TickCount;
        var random = new Random(seed);
        await using var cluster = TestCluster.Create(1, "--request-timeout-ms", "8000");
        await cluster.StartAllAsync();
        await cluster.WaitForLeaderAsync();
        await cluster.CreateTopicAsync(0, "fz");
        await cluster.PublishAsync(0, "fz", "kept");
        var seen = new Dictionary<int, int>();
        for (int i = 0; i < Requests; i++)
        {
            var (method, template) = Endpoints[random.Next(Endpoints.Length)];
            var path = template.Replace("{t}", Topic(random), StringComparison.Ordinal).Replace("{g}", Group(random), StringComparison.Ordinal)
                .Replace("{n}", Number(random), StringComparison.Ordinal);
            var body = method is "GET" or "DELETE" && random.Next(4) != 0 ? null : Body(random);
            using var request = new HttpRequestMessage(new HttpMethod(method), cluster.Url(0, "") + path.TrimStart('/'));
            if (body is not null) request.Content = new ByteArrayContent(body) { Headers = { { "Content-Type", "application/json" } } };
            using var response = await cluster.Http.SendAsync(request);
            var text = await response.Content.ReadAsStringAsync();
            var code = (int)response.StatusCode;
            seen[code] = seen.GetValueOrDefault(code) + 1;
            var what = $"seed {seed}, request {i}: {method} {path} {(body is null ? "" : Printable(body))} -> {code} {text}";
            (code < 500 || code == 507).ShouldBeTrue(what);
            if (code >= 400 && text.Length > 0) JsonNode.Parse(text)!["success"]!.GetValue<bool>().ShouldBeFalse(what);
            cluster.IsRunning(0).ShouldBeTrue(what);
        }
        seen.Keys.Count(c => c >= 400).ShouldBeGreaterThan(1, $"seed {seed}: the requests should hit several kinds of refusal ({string.Join(", ", seen)})");

        // Still serving: health, a publish and a pop.
        (await cluster.SendAsync(0, HttpMethod.Get, "/healthz")).Status.ShouldBe(HttpStatusCode.OK);
        await cluster.CreateTopicAsync(0, "after");
        (await cluster.PublishAsync(0, "after", "fine")).Status.ShouldBe(HttpStatusCode.OK);
        (await cluster.PopAsync(0, "after")).Body.ShouldBe("""{"success":true,"message":"fine"}""");
    }

    private static string Topic(Random r) => r.Next(6) switch
    {
        0 => "fz",
        1 => "",
        2 => Uri.EscapeDataString(RandomText(r, r.Next(1, 40))),
        3 => "%FF%FE" + r.Next(),
        4 => new string('t', r.Next(250, 300)),
        _ => "t" + r.Next(5),
    };

    private static string Group(Random r) => r.Next(4) switch
    {
        0 => "default",
        1 => "g" + r.Next(3),
        2 => Uri.EscapeDataString(RandomText(r, r.Next(1, 80))),
        _ => "",
    };

    private static string Number(Random r) => r.Next(5) switch
    {
        0 => "-1",
        1 => "99999999999999999999999",
        2 => "abc",
        3 => "",
        _ => r.Next(0, 100).ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    private static byte[] Body(Random r)
    {
        switch (r.Next(8))
        {
            case 0:
                var bytes = new byte[r.Next(0, 200)];
                r.NextBytes(bytes);
                return bytes;
            case 1:
                var full = Encoding.UTF8.GetBytes(AnyJson(r, 0)?.ToJsonString() ?? "null");
                return full[..r.Next(0, full.Length + 1)];
            case 2:
                return Encoding.UTF8.GetBytes(new string('[', r.Next(50, 2000)));
            default:
                var obj = new JsonObject();
                var n = r.Next(0, 5);
                for (int i = 0; i < n; i++) obj[r.Next(10) == 0 ? RandomText(r, 8) : Fields[r.Next(Fields.Length)]] = Value(r, obj);
                return Encoding.UTF8.GetBytes(obj.ToJsonString());
        }
    }

    /// <summary>A value for a known field: right or wrong type, small or huge; waits stay short so the run does.</summary>
    private static JsonNode? Value(Random r, JsonObject owner) => r.Next(3) == 0 ? AnyJson(r, 0) : r.Next(9) switch
    {
        0 => JsonValue.Create(r.Next(-5, 60)),
        1 => JsonValue.Create(long.MaxValue),
        2 => JsonValue.Create(1e308),
        3 => JsonValue.Create(RandomText(r, r.Next(0, 30))),
        4 => new JsonArray(JsonValue.Create("r" + r.Next()), JsonValue.Create(RandomText(r, 5))),
        5 => new JsonArray(new JsonObject { ["body"] = RandomText(r, r.Next(0, 20)), ["headers"] = new JsonObject { [RandomText(r, 3)] = "v" } }),
        6 => new JsonArray(new JsonObject { ["body_base64"] = RandomText(r, 12), ["delay_ms"] = r.Next(-2, 50), ["id"] = RandomText(r, 6) }),
        7 => null,
        _ => JsonValue.Create(r.Next(2) == 0),
    };

    private static JsonNode? AnyJson(Random r, int depth) => (depth > 3 ? r.Next(4) : r.Next(6)) switch
    {
        0 => JsonValue.Create(r.Next(-1000, 1000)),
        1 => JsonValue.Create(RandomText(r, r.Next(0, 20))),
        2 => null,
        3 => JsonValue.Create(r.NextDouble() * 1e6),
        4 => new JsonArray(AnyJson(r, depth + 1), AnyJson(r, depth + 1)),
        _ => new JsonObject { [Fields[r.Next(Fields.Length)]] = AnyJson(r, depth + 1) },
    };

    /// <summary>Text with ASCII, control characters, non-Latin letters, emoji and lone surrogates.</summary>
    private static string RandomText(Random r, int length)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < length; i++)
        {
            sb.Append(r.Next(6) switch
            {
                0 => (char)r.Next(0, 32),
                1 => (char)r.Next(0x400, 0x4FF),
                2 => "\U0001F600",
                3 => (char)r.Next(0xD800, 0xDFFF),
                4 => "/%?#&\\\"'",
                _ => (char)r.Next('a', 'z' + 1),
            });
        }
        return sb.ToString();
    }

    private static string Printable(byte[] body) =>
        Convert.ToHexString(body.AsSpan(0, Math.Min(body.Length, 120))) + (body.Length > 120 ? "…" : "");
}

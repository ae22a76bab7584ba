using System.Text.Json;
using RaftMQ.Queue;

namespace RaftMQ.Server;

/// <summary>
/// The binary message model over HTTP: <c>POST /v1/topics/&lt;topic&gt;/messages</c> publishes payloads (base64 or
/// text) with headers, <c>POST /v1/topics/&lt;topic&gt;/messages/pop</c> removes messages and returns them with offset,
/// publish time and headers. The topic is one path segment, percent-escaped (<c>%2F</c> for a slash). Status codes
/// and bodies are documented in docs/rest-api.md.
/// </summary>
public static class MessageEndpoints
{
    private const string Prefix = "/v1/topics/";

    public static void Map(IEndpointRouteBuilder app, QueueNode node)
    {
        // Explicit routes, not a catch-all: an unknown path under /v1/topics answers 404 and a known one asked with
        // another method 405, as everywhere else. The route says which endpoint it is (in any case, as routes match).
        app.MapPost("/v1/topics/{topic}/messages", (HttpContext ctx) => Route(ctx, node, pop: false));
        app.MapPost("/v1/topics/{topic}/messages/pop", (HttpContext ctx) => Route(ctx, node, pop: true));
        app.MapPost("/v1/topics/{topic}/dead-letters/redrive", (HttpContext ctx) => RrmqEndpoints.WriteError(ctx, StatusCodes.Status400BadRequest,
            "redrive the topic the dead letters came from (POST /v1/topics/<topic>/redrive), not its dead letters"));
        GroupEndpoints.Map(app, node);
    }

    private static async Task Route(HttpContext ctx, QueueNode node, bool pop)
    {
        // The raw target keeps %2F and other escapes intact; the route put the topic segment right after the prefix.
        var raw = RequestTarget.Of(ctx);
        var path = raw[Prefix.Length..];
        if (RequestTarget.Unescape(path[..path.IndexOf('/', StringComparison.Ordinal)]) is not { } topic)
        {
            await RrmqEndpoints.WriteError(ctx, StatusCodes.Status400BadRequest, "the topic in the path is not a valid URL escape");
            return;
        }
        if (RrmqEndpoints.ValidateTopic(node, topic) is { } invalid)
        {
            await RrmqEndpoints.WriteError(ctx, StatusCodes.Status400BadRequest, invalid);
            return;
        }
        var body = await RequestBody.ReadAsync(ctx);
        if (body is null) return;
        if (pop) await Pop(ctx, node, topic, body);
        else await Publish(ctx, node, topic, body);
    }

    private static async Task Publish(HttpContext ctx, QueueNode node, string topic, byte[] body)
    {
        var limits = node.StateMachine.Limits;
        var (messages, status, error) = ParsePublish(body, limits);
        if (error is not null)
        {
            await RrmqEndpoints.WriteError(ctx, status, error);
            return;
        }
        await RrmqEndpoints.RunCommandAsync(ctx, node, QueueCommand.PublishMessages(topic, messages!),
            (c, result) => result.Success
                ? RrmqEndpoints.WriteJson(c, StatusCodes.Status200OK,
                    new PublishMessagesResponse(true, result.Count, result.FirstOffset ?? 0), ServerJsonContext.Default.PublishMessagesResponse)
                : V1Endpoints.WriteFailure(c, result));
    }

    private static async Task Pop(HttpContext ctx, QueueNode node, string topic, byte[] body)
    {
        var limits = node.StateMachine.Limits;
        var max = 1;
        string? error = null;
        using (var doc = JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = RequestBody.MaxDepth }))
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) error = "body must be a JSON object";
            else
            {
                foreach (var field in root.EnumerateObject())
                {
                    if (field.Name != "max") error ??= $"unknown field \"{field.Name}\" (the body takes \"max\")";
                    else if (field.Value.ValueKind != JsonValueKind.Number || !field.Value.TryGetInt32(out max) || max < 1 || max > limits.MaxBatchMessages)
                        error ??= $"\"max\" must be an integer between 1 and {limits.MaxBatchMessages}";
                }
            }
        }
        if (error is not null)
        {
            await RrmqEndpoints.WriteError(ctx, StatusCodes.Status400BadRequest, error);
            return;
        }
        await RrmqEndpoints.RunCommandAsync(ctx, node, QueueCommand.PopMessages(topic, max),
            (c, result) => result.Success ? WritePopped(c, result.Delivered!) : V1Endpoints.WriteFailure(c, result));
    }

    /// <summary>
    /// The messages of a publish body, or the status and error to answer: 400 for a malformed body, bad base64 or
    /// headers out of bounds; 413 for too many messages or a payload over <see cref="QueueLimits.MaxMessageBytes"/>.
    /// </summary>
    internal static (List<QueueMessage>? Messages, int Status, string? Error) ParsePublish(byte[] body, QueueLimits limits)
    {
        using var doc = JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = RequestBody.MaxDepth });
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object) return Bad("body must be a JSON object");
        JsonElement list = default;
        foreach (var field in root.EnumerateObject())
        {
            if (field.Name != "messages") return Bad($"unknown field \"{field.Name}\" (the body takes \"messages\")");
            list = field.Value;
        }
        if (list.ValueKind == JsonValueKind.Undefined) return Bad("missing field \"messages\"");
        if (list.ValueKind != JsonValueKind.Array) return Bad("\"messages\" must be an array of message objects");
        var count = list.GetArrayLength();
        if (count == 0) return Bad("\"messages\" must not be empty");
        if (count > limits.MaxBatchMessages)
            return (null, StatusCodes.Status413PayloadTooLarge, $"more than {limits.MaxBatchMessages} messages in one batch");
        var messages = new List<QueueMessage>(count);
        var i = 0;
        foreach (var m in list.EnumerateArray())
        {
            var (message, status, error) = ParseMessage(m, i, limits);
            if (error is not null) return (null, status, error);
            messages.Add(message!);
            i++;
        }
        return (messages, StatusCodes.Status200OK, null);
    }

    private static (QueueMessage? Message, int Status, string? Error) ParseMessage(JsonElement m, int i, QueueLimits limits)
    {
        if (m.ValueKind != JsonValueKind.Object) return BadMessage($"message {i} must be an object");
        byte[]? payload = null;
        var sources = 0;
        var headers = new List<MessageHeader>();
        foreach (var field in m.EnumerateObject())
        {
            switch (field.Name)
            {
                case "payload":
                    if (field.Value.ValueKind != JsonValueKind.String) return BadMessage($"message {i}: \"payload\" must be a string");
                    payload = System.Text.Encoding.UTF8.GetBytes(field.Value.GetString()!);
                    sources++;
                    break;
                case "payload_base64":
                    if (field.Value.ValueKind != JsonValueKind.String) return BadMessage($"message {i}: \"payload_base64\" must be a string");
                    try
                    {
                        payload = Convert.FromBase64String(field.Value.GetString()!);
                    }
                    catch (FormatException)
                    {
                        return BadMessage($"message {i}: \"payload_base64\" is not valid base64 (RFC 4648, with padding)");
                    }
                    sources++;
                    break;
                case "headers":
                    if (field.Value.ValueKind != JsonValueKind.Object)
                        return BadMessage($"message {i}: \"headers\" must be an object of string values");
                    foreach (var h in field.Value.EnumerateObject())
                    {
                        if (h.Value.ValueKind != JsonValueKind.String)
                            return BadMessage($"message {i}: the value of header \"{h.Name}\" must be a string");
                        headers.Add(new MessageHeader(h.Name, h.Value.GetString()!));
                    }
                    break;
                default:
                    return BadMessage($"message {i}: unknown field \"{field.Name}\" (a message takes \"payload\" or \"payload_base64\", and \"headers\")");
            }
        }
        if (sources != 1) return BadMessage($"message {i} must have exactly one of \"payload\" and \"payload_base64\"");
        if (MessageHeaders.Check(headers, limits) is { } problem) return BadMessage($"message {i}: {problem}");
        if (payload!.Length > limits.MaxMessageBytes)
            return (null, StatusCodes.Status413PayloadTooLarge, $"message {i} is longer than {limits.MaxMessageBytes} bytes");
        return (new QueueMessage(payload, headers), StatusCodes.Status200OK, null);
    }

    private static (List<QueueMessage>?, int, string?) Bad(string error) => (null, StatusCodes.Status400BadRequest, error);

    private static (QueueMessage?, int, string?) BadMessage(string error) => (null, StatusCodes.Status400BadRequest, error);

    /// <summary>
    /// <c>{"success": true, "messages": [{"offset", "timestamp_ms", "headers": {name: value, ...}, "payload_base64"}]}</c>,
    /// headers in the order they were published.
    /// </summary>
    private static async Task WritePopped(HttpContext ctx, IReadOnlyList<QueueMessage> messages)
    {
        if (ctx.Response.HasStarted) return;
        await using var json = RrmqEndpoints.StartJson(ctx, StatusCodes.Status200OK);
        json.WriteStartObject();
        json.WriteBoolean("success", true);
        json.WriteStartArray("messages");
        foreach (var m in messages)
        {
            json.WriteStartObject();
            json.WriteNumber("offset", m.Offset);
            json.WriteNumber("timestamp_ms", m.TimestampMs);
            json.WriteStartObject("headers");
            foreach (var h in m.Headers) json.WriteString(h.Name, h.Value);
            json.WriteEndObject();
            json.WriteBase64String("payload_base64", m.Payload.Span);
            json.WriteEndObject();
            if (json.BytesPending > 64 * 1024) await json.FlushAsync(ctx.RequestAborted);
        }
        json.WriteEndArray();
        json.WriteEndObject();
        await json.FlushAsync(ctx.RequestAborted);
    }
}

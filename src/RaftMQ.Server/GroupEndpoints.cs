using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;
using RaftMQ.Queue;

namespace RaftMQ.Server;

/// <summary>
/// At-least-once consumption over HTTP (docs/rest-api.md, "Topics, consumer groups and leases"): topic configuration
/// and stats, consumer groups, publish, receive with a lease, ack, nack, extend, peek and redrive. Each route is
/// mapped with its own template so it is listed as it is; the topic (and group) are read from the raw request target,
/// percent-escaped, so any name round-trips (<c>%2F</c> for a slash). A topic's dead-letter topic is reached under
/// <c>/v1/topics/{topic}/dead-letters</c> (its name holds U+0000, which no request target may carry).
/// </summary>
public static class GroupEndpoints
{
    private const string Prefix = "/v1/topics/";
    private const int DefaultLeaseMs = 30_000;
    private const int DefaultPeekMax = 10;
    private const int DefaultRedriveMax = 100;
    private const string DeadLettersSegment = "dead-letters";
    private const string NoDeadLetters = "no dead letters: the topic does not exist or never dead-lettered a message";

    public static void Map(IEndpointRouteBuilder app, QueueNode node)
    {
        app.MapPut("/v1/topics/{topic}", (HttpContext ctx) => Configure(ctx, node));
        app.MapGet("/v1/topics/{topic}", (HttpContext ctx) => Stats(ctx, node));
        app.MapDelete("/v1/topics/{topic}", (HttpContext ctx) => Delete(ctx, node));
        app.MapPut("/v1/topics/{topic}/groups/{group}", (HttpContext ctx) => CreateGroup(ctx, node));
        app.MapDelete("/v1/topics/{topic}/groups/{group}", (HttpContext ctx) => DeleteGroup(ctx, node));
        app.MapPost("/v1/topics/{topic}/publish", (HttpContext ctx) => Publish(ctx, node));
        app.MapPost("/v1/topics/{topic}/receive", (HttpContext ctx) => Receive(ctx, node));
        app.MapPost("/v1/topics/{topic}/ack", (HttpContext ctx) => Settle(ctx, node, QueueOp.Ack));
        app.MapPost("/v1/topics/{topic}/nack", (HttpContext ctx) => Settle(ctx, node, QueueOp.Nack));
        app.MapPost("/v1/topics/{topic}/extend", (HttpContext ctx) => Settle(ctx, node, QueueOp.Extend));
        app.MapGet("/v1/topics/{topic}/peek", (HttpContext ctx) => Peek(ctx, node));
        app.MapPost("/v1/topics/{topic}/redrive", (HttpContext ctx) => Redrive(ctx, node));
        app.MapGet("/v1/topics/{topic}/dead-letters", (HttpContext ctx) => Stats(ctx, node));
        app.MapGet("/v1/topics/{topic}/dead-letters/peek", (HttpContext ctx) => Peek(ctx, node));
        app.MapPost("/v1/topics/{topic}/dead-letters/receive", (HttpContext ctx) => Receive(ctx, node));
        app.MapPost("/v1/topics/{topic}/dead-letters/ack", (HttpContext ctx) => Settle(ctx, node, QueueOp.Ack));
        app.MapPost("/v1/topics/{topic}/dead-letters/nack", (HttpContext ctx) => Settle(ctx, node, QueueOp.Nack));
        app.MapPost("/v1/topics/{topic}/dead-letters/extend", (HttpContext ctx) => Settle(ctx, node, QueueOp.Extend));
    }

    /// <summary>The path's segments after <c>/v1/topics/</c>, unescaped; null (having answered 400) when one is not a valid escape.</summary>
    private static async Task<string[]?> Segments(HttpContext ctx)
    {
        var raw = RequestTarget.Of(ctx);
        var q = raw.IndexOf('?', StringComparison.Ordinal);
        var path = q >= 0 ? raw[..q] : raw;
        var parts = path.Length > Prefix.Length ? path[Prefix.Length..].Split('/') : [""];
        // Routing ignores a trailing slash (/v1/topics/t/groups/g/ is /v1/topics/t/groups/g), and so do the names read here.
        if (parts.Length > 1 && parts[^1].Length == 0) parts = parts[..^1];
        var segments = parts.Select(RequestTarget.Unescape).ToArray();
        if (segments.All(x => x is not null)) return segments!;
        await RrmqEndpoints.WriteError(ctx, StatusCodes.Status400BadRequest, "the topic or group in the path is not a valid URL escape");
        return null;
    }

    /// <summary>
    /// The topic of the path, checked (under <c>/dead-letters</c>: its dead-letter topic); null (having answered 400)
    /// when it is not a valid name.
    /// </summary>
    private static async Task<string?> TopicOf(HttpContext ctx, QueueNode node)
    {
        if (await Segments(ctx) is not { } segments) return null;
        var topic = segments[0];
        var error = DeadLetters.IsDeadLetterTopic(topic)
            ? "topic names may not end in U+0000 followed by \"dlq\": that suffix names dead-letter topics (reach them under /v1/topics/<topic>/dead-letters)"
            : RrmqEndpoints.ValidateTopic(node, topic);
        if (error is null) return segments.Length > 1 && string.Equals(segments[1], DeadLettersSegment, StringComparison.OrdinalIgnoreCase) ? DeadLetters.TopicFor(topic) : topic;
        await RrmqEndpoints.WriteError(ctx, StatusCodes.Status400BadRequest, error);
        return null;
    }

    private static async Task Configure(HttpContext ctx, QueueNode node)
    {
        if (await TopicOf(ctx, node) is not { } topic) return;
        var body = await RequestBody.ReadAsync(ctx, optional: true);
        if (body is null) return;
        var limits = node.StateMachine.Limits;
        var maxDeliveries = 0;
        long? dedupWindow = null;
        var retention = new TopicRetention();
        var error = body.Length == 0 ? null : Fields(body, (name, value) => name switch
        {
            "max_deliveries" => Int(value, name, 1, limits.MaxDeliveriesLimit, out maxDeliveries),
            "dedup_window_ms" => Long(value, name, 0, limits.MaxDedupWindowMs, out var window) ?? Set(out dedupWindow, (long?)window),
            // A topic's own bounds are at most the cluster's per-topic ones (as this node last applied them; the
            // state machine checks again against the bounds in force when the command applies).
            "max_messages" => Long(value, name, 0, node.StateMachine.Bounds.MaxTopicMessages, out var m) ?? Set(out retention, retention with { MaxMessages = m }),
            "max_bytes" => Long(value, name, 0, node.StateMachine.Bounds.MaxTopicBytes, out var b) ?? Set(out retention, retention with { MaxBytes = b }),
            "max_age_ms" => Long(value, name, 0, limits.MaxRetentionAgeMs, out var a) ?? Set(out retention, retention with { MaxAgeMs = a }),
            "overflow" => value.ValueKind == JsonValueKind.String && TopicRetention.TryParseOverflow(value.GetString(), out var o)
                ? Set(out retention, retention with { Overflow = o })
                : "\"overflow\" must be \"reject-publish\" or \"drop-oldest\"",
            "expire" => value.ValueKind == JsonValueKind.String && TopicRetention.TryParseExpire(value.GetString(), out var e)
                ? Set(out retention, retention with { Expire = e })
                : "\"expire\" must be \"dead-letter\" or \"drop\"",
            _ => $"unknown field \"{name}\" (the body takes \"max_deliveries\", \"dedup_window_ms\", \"max_messages\", \"max_bytes\", \"max_age_ms\", \"overflow\", \"expire\")",
        });
        if (error is not null)
        {
            await RrmqEndpoints.WriteError(ctx, StatusCodes.Status400BadRequest, error);
            return;
        }
        await RrmqEndpoints.RunCommandAsync(ctx, node, QueueCommand.ConfigureTopic(topic, maxDeliveries, dedupWindowMs: dedupWindow, retention: retention),
            (c, result) => result.Success
                ? WriteObject(c, result.Count == 1 ? StatusCodes.Status201Created : StatusCodes.Status200OK, json =>
                {
                    json.WriteBoolean("created", result.Count == 1);
                    json.WriteString("topic", topic);
                })
                : result.Status == QueueStatus.LimitReached
                    ? RrmqEndpoints.WriteError(c, StatusCodes.Status507InsufficientStorage, $"the cluster holds its maximum of {limits.MaxTopics} topics")
                    : Failure(c, result, topic, null));
    }

    private static async Task Stats(HttpContext ctx, QueueNode node)
    {
        if (await TopicOf(ctx, node) is not { } topic) return;
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        using var deadline = node.RequestDeadline(ctx.RequestAborted);
        var (ok, stats, error) = await node.ReadAsync(sm => sm.Stats(topic, now), deadline.Token);
        if (!ok)
        {
            ctx.Response.Headers[ErrorCodes.Header] = ErrorCodes.NoLeader;
            await RrmqEndpoints.WriteError(ctx, StatusCodes.Status503ServiceUnavailable, error!);
            return;
        }
        if (stats is null)
        {
            await RrmqEndpoints.WriteError(ctx, StatusCodes.Status404NotFound,
                DeadLetters.IsDeadLetterTopic(topic) ? NoDeadLetters : "no such topic");
            return;
        }
        await WriteObject(ctx, StatusCodes.Status200OK, json =>
        {
            var dead = DeadLetters.IsDeadLetterTopic(stats.Topic);
            json.WriteString("topic", dead ? DeadLetters.SourceOf(stats.Topic) : stats.Topic);
            json.WriteBoolean("dead_letters", dead);
            json.WriteNumber("head", stats.Head);
            json.WriteNumber("tail", stats.Tail);
            json.WriteNumber("messages", stats.Messages);
            json.WriteNumber("bytes", stats.Bytes);
            json.WriteNumber("max_deliveries", stats.MaxDeliveries);
            json.WriteNumber("dead_lettered", stats.DeadLettered);
            json.WriteNumber("published_total", stats.PublishedTotal);
            json.WriteNumber("dedup_window_ms", stats.DedupWindowMs);
            json.WriteNumber("dedup_ids", stats.DedupIds);
            json.WriteNumber("dedup_forgotten_early_total", stats.DedupForgottenEarlyTotal);
            json.WriteNumber("max_messages", stats.MaxMessages);
            json.WriteNumber("max_bytes", stats.MaxBytes);
            json.WriteNumber("max_age_ms", stats.MaxAgeMs);
            json.WriteString("overflow", TopicRetention.Name(stats.Overflow));
            json.WriteString("expire", TopicRetention.Name(stats.Expire));
            json.WriteNumber("overflow_dropped_total", stats.OverflowDroppedTotal);
            json.WriteNumber("expired_total", stats.ExpiredTotal);
            json.WriteStartArray("groups");
            foreach (var g in stats.Groups)
            {
                json.WriteStartObject();
                json.WriteString("group", g.Group);
                json.WriteNumber("ready", g.Ready);
                json.WriteNumber("leased", g.Leased);
                json.WriteNumber("delayed", g.Delayed);
                json.WriteNumber("unacked", g.Unacked);
                if (g.OldestAgeMs is { } age) json.WriteNumber("oldest_age_ms", age);
                else json.WriteNull("oldest_age_ms");
                json.WriteNumber("cursor", g.Cursor);
                json.WriteNumber("ack_floor", g.AckFloor);
                json.WriteNumber("delivered_total", g.DeliveredTotal);
                json.WriteNumber("acked_total", g.AckedTotal);
                json.WriteNumber("dead_lettered_total", g.DeadLetteredTotal);
                json.WriteStartObject("delivery_counts");
                for (var i = 0; i < g.DeliveryCounts!.Count; i++) json.WriteNumber(DeliveryCountHistogram.Labels[i], g.DeliveryCounts[i]);
                json.WriteEndObject();
                json.WriteEndObject();
            }
            json.WriteEndArray();
        });
    }

    private static async Task Delete(HttpContext ctx, QueueNode node)
    {
        if (await TopicOf(ctx, node) is not { } topic) return;
        await RrmqEndpoints.RunCommandAsync(ctx, node, QueueCommand.DeleteTopic(topic),
            (c, result) => result.Success ? WriteObject(c, StatusCodes.Status200OK, _ => { }) : Failure(c, result, topic, null));
    }

    /// <summary>
    /// DELETE /v1/topics/{topic}/groups/{group}: 200 when deleted (its leases end; what only it held goes), 404 for a
    /// missing topic or group, 409 for the topic's last group.
    /// </summary>
    private static async Task DeleteGroup(HttpContext ctx, QueueNode node)
    {
        if (await TopicOf(ctx, node) is not { } topic) return;
        var segments = (await Segments(ctx))!;
        var group = segments.Length == 3 ? segments[2] : "";
        if (node.StateMachine.Limits.CheckGroupName(group) is { } bad)
        {
            await RrmqEndpoints.WriteError(ctx, StatusCodes.Status400BadRequest, bad);
            return;
        }
        await RrmqEndpoints.RunCommandAsync(ctx, node, QueueCommand.DeleteGroup(topic, group),
            (c, result) => result.Status switch
            {
                QueueStatus.Ok => WriteObject(c, StatusCodes.Status200OK, json => json.WriteBoolean("deleted", true)),
                QueueStatus.LastGroup => RrmqEndpoints.WriteError(c, StatusCodes.Status409Conflict,
                    $"group \"{group}\" is the last of topic {topic}: a topic keeps at least one group (delete the topic instead)"),
                _ => Failure(c, result, topic, group),
            });
    }

    private static async Task CreateGroup(HttpContext ctx, QueueNode node)
    {
        if (await TopicOf(ctx, node) is not { } topic) return;
        var segments = (await Segments(ctx))!;
        var group = segments.Length == 3 ? segments[2] : "";
        var limits = node.StateMachine.Limits;
        if (limits.CheckGroupName(group) is { } bad)
        {
            await RrmqEndpoints.WriteError(ctx, StatusCodes.Status400BadRequest, bad);
            return;
        }
        var body = await RequestBody.ReadAsync(ctx, optional: true);
        if (body is null) return;
        var start = GroupStart.Earliest;
        var error = body.Length == 0 ? null : Fields(body, (name, value) => name switch
        {
            "start" => value.ValueKind == JsonValueKind.String && value.GetString() is "earliest" or "latest"
                ? Set(out start, value.GetString() == "latest" ? GroupStart.Latest : GroupStart.Earliest)
                : "\"start\" must be \"earliest\" or \"latest\"",
            _ => $"unknown field \"{name}\" (the body takes \"start\")",
        });
        if (error is not null)
        {
            await RrmqEndpoints.WriteError(ctx, StatusCodes.Status400BadRequest, error);
            return;
        }
        await RrmqEndpoints.RunCommandAsync(ctx, node, QueueCommand.CreateGroup(topic, group, start),
            (c, result) => result.Status switch
            {
                QueueStatus.Ok => WriteObject(c, StatusCodes.Status201Created, json => json.WriteBoolean("created", true)),
                QueueStatus.GroupExists => WriteObject(c, StatusCodes.Status200OK, json => json.WriteBoolean("created", false)),
                QueueStatus.LimitReached => RrmqEndpoints.WriteError(c, StatusCodes.Status409Conflict,
                    $"topic {topic} has its maximum of {limits.MaxGroupsPerTopic} consumer groups"),
                _ => Failure(c, result, topic, group),
            });
    }

    private static async Task Publish(HttpContext ctx, QueueNode node)
    {
        if (await TopicOf(ctx, node) is not { } topic) return;
        var body = await RequestBody.ReadAsync(ctx);
        if (body is null) return;
        var limits = node.StateMachine.Limits;
        var (messages, status, error) = ParsePublish(body, limits);
        if (error is not null)
        {
            await RrmqEndpoints.WriteError(ctx, status, error);
            return;
        }
        // Messages with an id (or a delay) travel in the extended publish; the others as a plain binary publish.
        var extended = messages!.Any(m => m.Id is not null || m.DelayMs != 0);
        var command = extended ? QueueCommand.PublishExtended(topic, messages!) : QueueCommand.PublishMessages(topic, messages!);
        await RrmqEndpoints.RunCommandAsync(ctx, node, command,
            (c, result) => result.Success
                ? WriteObject(c, StatusCodes.Status200OK, json =>
                {
                    json.WriteStartArray("offsets");
                    if (result.Offsets is { } offsets)
                    {
                        foreach (var o in offsets) json.WriteNumberValue(o);
                    }
                    else
                    {
                        for (int i = 0; i < result.Count; i++) json.WriteNumberValue(result.FirstOffset!.Value + (ulong)i);
                    }
                    json.WriteEndArray();
                    json.WriteNumber("duplicates", result.Offsets is { } all ? all.Count - result.Count : 0);
                })
                : V1Endpoints.WriteFailure(c, result));
    }

    /// <summary>
    /// <c>{"messages": [{"body" | "body_base64", "headers", "id", "delay_ms"}]}</c>: 400 for a malformed body, an
    /// id or a <c>delay_ms</c> out of bounds, or headers out of bounds; 413 for too many
    /// messages or a body over <see cref="QueueLimits.MaxMessageBytes"/>.
    /// </summary>
    internal static (List<QueueMessage>? Messages, int Status, string? Error) ParsePublish(byte[] body, QueueLimits limits)
    {
        using var doc = JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = RequestBody.MaxDepth });
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object) return (null, 400, "body must be a JSON object");
        JsonElement list = default;
        foreach (var field in root.EnumerateObject())
        {
            if (field.Name != "messages") return (null, 400, $"unknown field \"{field.Name}\" (the body takes \"messages\")");
            if (list.ValueKind != JsonValueKind.Undefined) return (null, 400, "field \"messages\" appears twice");
            list = field.Value;
        }
        if (list.ValueKind != JsonValueKind.Array) return (null, 400, "\"messages\" must be an array of message objects");
        var count = list.GetArrayLength();
        if (count == 0) return (null, 400, "\"messages\" must not be empty");
        if (count > limits.MaxBatchMessages) return (null, 413, $"more than {limits.MaxBatchMessages} messages in one batch");
        var messages = new List<QueueMessage>(count);
        var i = 0;
        foreach (var m in list.EnumerateArray())
        {
            if (m.ValueKind != JsonValueKind.Object) return (null, 400, $"message {i} must be an object");
            byte[]? payload = null;
            var sources = 0;
            var headers = new List<MessageHeader>();
            string? id = null;
            long delay = 0;
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var field in m.EnumerateObject())
            {
                // A field given twice is refused, as on every endpoint of these (not the last one taken, nor headers merged).
                if (!seen.Add(field.Name)) return (null, 400, $"message {i}: field \"{field.Name}\" appears twice");
                switch (field.Name)
                {
                    case "body":
                        if (field.Value.ValueKind != JsonValueKind.String) return (null, 400, $"message {i}: \"body\" must be a string");
                        payload = Encoding.UTF8.GetBytes(field.Value.GetString()!);
                        sources++;
                        break;
                    case "body_base64":
                        if (field.Value.ValueKind != JsonValueKind.String) return (null, 400, $"message {i}: \"body_base64\" must be a string");
                        try
                        {
                            payload = Convert.FromBase64String(field.Value.GetString()!);
                        }
                        catch (FormatException)
                        {
                            return (null, 400, $"message {i}: \"body_base64\" is not valid base64 (RFC 4648, with padding)");
                        }
                        sources++;
                        break;
                    case "headers":
                        if (field.Value.ValueKind != JsonValueKind.Object) return (null, 400, $"message {i}: \"headers\" must be an object of string values");
                        foreach (var h in field.Value.EnumerateObject())
                        {
                            if (h.Value.ValueKind != JsonValueKind.String) return (null, 400, $"message {i}: the value of header \"{h.Name}\" must be a string");
                            headers.Add(new MessageHeader(h.Name, h.Value.GetString()!));
                        }
                        break;
                    case "id":
                        if (field.Value.ValueKind != JsonValueKind.String) return (null, 400, $"message {i}: \"id\" must be a string");
                        id = field.Value.GetString()!;
                        if (id.Length == 0 || Encoding.UTF8.GetByteCount(id) > limits.MaxMessageIdBytes)
                            return (null, 400, $"message {i}: \"id\" must be 1 to {limits.MaxMessageIdBytes} bytes (UTF-8)");
                        break;
                    case "delay_ms":
                        if (field.Value.ValueKind != JsonValueKind.Number || !field.Value.TryGetInt64(out delay) || delay < 0 || delay > limits.MaxPublishDelayMs)
                            return (null, 400, $"message {i}: \"delay_ms\" must be an integer between 0 and {limits.MaxPublishDelayMs}");
                        break;
                    default:
                        return (null, 400, $"message {i}: unknown field \"{field.Name}\" (a message takes \"body\" or \"body_base64\", \"headers\", \"id\", \"delay_ms\")");
                }
            }
            if (sources != 1) return (null, 400, $"message {i} must have exactly one of \"body\" and \"body_base64\"");
            if (MessageHeaders.Check(headers, limits) is { } problem) return (null, 400, $"message {i}: {problem}");
            if (payload!.Length > limits.MaxMessageBytes) return (null, 413, $"message {i} is longer than {limits.MaxMessageBytes} bytes");
            messages.Add(new QueueMessage(payload, headers) { Id = id, DelayMs = delay });
            i++;
        }
        return (messages, 200, null);
    }

    /// <summary>
    /// Receive: <c>{"group", "max", "lease_ms", "wait_ms", "ack"}</c>. With a non-empty <c>"ack"</c> (receipts, as the ack
    /// endpoint takes them) the node proposes a <see cref="QueueOp.ReceiveAck"/>: the ack of those receipts, then the
    /// receive, in one entry; the answer adds <c>"acked"</c> and <c>"stale"</c>. With <c>wait_ms</c> the first round
    /// is that receive-ack, proposed at once whether or not anything is ready, so the acks are never held while the
    /// request waits; when it leases nothing, the later rounds are plain receives (<see cref="ReceiveWaitingAsync"/>).
    /// </summary>
    private static async Task Receive(HttpContext ctx, QueueNode node)
    {
        if (await TopicOf(ctx, node) is not { } topic) return;
        var body = await RequestBody.ReadAsync(ctx, optional: true);
        if (body is null) return;
        var limits = node.StateMachine.Limits;
        string group = "default";
        int max = 1;
        long lease = DefaultLeaseMs;
        long wait = 0;
        List<Receipt>? acks = null;
        var error = body.Length == 0 ? null : Fields(body, (name, value) => name switch
        {
            "group" => Group(value, limits, out group),
            "max" => Int(value, name, 1, limits.MaxBatchMessages, out max),
            "lease_ms" => Long(value, name, 1, limits.MaxLeaseMs, out lease),
            "wait_ms" => Long(value, name, 0, ServerLimits.MaxReceiveWaitMs, out wait),
            "ack" => Receipts(value, name, limits, allowEmpty: true, out acks),
            _ => $"unknown field \"{name}\" (the body takes \"group\", \"max\", \"lease_ms\", \"wait_ms\", \"ack\")",
        });
        if (error is not null)
        {
            await RrmqEndpoints.WriteError(ctx, StatusCodes.Status400BadRequest, error);
            return;
        }
        var command = QueueCommand.Receive(topic, group, max, lease);
        var own = acks is null ? [] : Tagged(acks);
        Task Write(HttpContext c, QueueResult result) => !result.Success ? Failure(c, result, topic, group)
            : WriteMessages(c, result.Delivered!, result.ReceiptTag ?? (result.Delivered!.Count == 0 ? 0UL : throw new InvalidOperationException("a receive's messages without their receipt tag")),
                acks is null ? null : (result.Count, Stale(acks, result.Stale ?? [])));
        var first = own.Count > 0 ? QueueCommand.ReceiveAck(topic, group, max, lease, own) : command;
        using var waiter = wait == 0 ? null : node.Waiters.TryEnter(topic, group);
        if (waiter is null)
        {
            // wait_ms 0, or every waiting place is taken: one receive (with its acks), answered at once.
            await RrmqEndpoints.RunCommandAsync(ctx, node, first, Write);
            return;
        }
        if (own.Count == 0)
        {
            await ReceiveWaitingAsync(ctx, node, waiter, command, wait, Write);
            return;
        }
        // The acks first, at once; when that leased nothing, wait with plain receives, answering the acks' outcome with
        // whatever they lease (what the receive-ack leased was nothing).
        var started = node.Time.GetTimestamp();
        CommandOutcome outcome;
        try
        {
            using var deadline = node.RequestDeadline(ctx.RequestAborted);
            outcome = await node.ExecuteAsync(first, deadline.Token);
        }
        catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested)
        {
            return; // the client is gone: nothing to answer
        }
        if (outcome is not CommandOutcome.Applied { Result: { Success: true, Delivered.Count: 0 } acked })
        {
            await RrmqEndpoints.RunCommandOutcomeAsync(ctx, outcome, Write);
            return;
        }
        var left = wait - (long)node.Time.GetElapsedTime(started).TotalMilliseconds;
        if (left <= 0)
        {
            await Write(ctx, acked);
            return;
        }
        await ReceiveWaitingAsync(ctx, node, waiter, command, left,
            (c, result) => Write(c, result.Success ? result with { Count = acked.Count, Stale = acked.Stale } : result));
    }

    /// <summary>
    /// Long polling (docs/rest-api.md, "Long polling"). Each round takes the group's signal, then reads on this node
    /// when a receive could next deliver (<see cref="QueueStateMachine.NextDeliveryAt"/>): now, a replicated time (a
    /// lease or a delay ending), or not until a command is applied. When now (the time compared is this node's clock,
    /// which stamps the receive when it leads), it proposes the receive and answers what it leased; otherwise it
    /// waits for the signal, that time, or the end of <paramref name="waitMs"/>, whichever comes first, and at the end
    /// answers an empty list without proposing. So nothing goes to the log while nothing can be delivered, and
    /// nothing polls. A receive that came back empty is proposed again without a signal in between only after
    /// <see cref="ServerLimits.ReceiveRetryMs"/>, doubling each time: that bounds the entries a clock ahead of the
    /// leader's (a follower's) can cause. A client that gives up stops it; what a receive leased for it then comes
    /// back when the lease ends. A receive that carries acks never reaches here holding them: <see cref="Receive"/>
    /// proposes its receive-ack first, at once, and only when that leased nothing does it wait here, with the plain
    /// <paramref name="command"/> (so each round proposes a receive, never the acks again).
    /// </summary>
    private static async Task ReceiveWaitingAsync(
        HttpContext ctx, QueueNode node, ReceiveWaiters.Waiter waiter, QueueCommand command, long waitMs, Func<HttpContext, QueueResult, Task> write)
    {
        var time = node.Time;
        var started = time.GetTimestamp();
        var signal = waiter.Signal();
        var empties = 0;
        var retryAt = 0L; // after an empty receive: no receive again before this (a timestamp) unless a command is applied
        var waited = false;
        while (true)
        {
            if (signal.IsCompleted)
            {
                signal = waiter.Signal(); // taken before the read: a command applied after it completes this one
                empties = 0;
                retryAt = 0;
            }
            long next;
            long left;
            bool due;
            long wall;
            // Once it has waited, a receive reads and proposes in turn with the group's other woken receives here (a
            // fresh one goes straight on, so a busy group's receives are not serialized).
            IDisposable? turn = null;
            try
            {
                if (waited) turn = await waiter.TakeTurnAsync(ctx.RequestAborted);
                using (var readDeadline = node.RequestDeadline(ctx.RequestAborted))
                {
                    var (ok, at, _) = await node.ReadAsync(sm => sm.NextDeliveryAt(waiter.Topic, waiter.Group), readDeadline.Token);
                    if (ctx.RequestAborted.IsCancellationRequested) return; // the client is gone: nothing to answer
                    next = ok ? at : long.MinValue; // a failed read: propose, and answer what that gives
                }
                wall = time.GetUtcNow().ToUnixTimeMilliseconds();
                left = waitMs - (long)time.GetElapsedTime(started).TotalMilliseconds;
                due = next <= wall;
                if (due && time.GetTimestamp() >= retryAt)
                {
                    using var deadline = node.RequestDeadline(ctx.RequestAborted);
                    var outcome = await node.ExecuteAsync(command, deadline.Token);
                    if (outcome is not CommandOutcome.Applied { Result: { Success: true, Delivered.Count: 0 } } || left <= 0)
                    {
                        turn?.Dispose();
                        turn = null;
                        await RrmqEndpoints.RunCommandOutcomeAsync(ctx, outcome, write);
                        return;
                    }
                    empties++;
                    var holdOff = Math.Min(ServerLimits.MaxReceiveWaitMs, ServerLimits.ReceiveRetryMs << Math.Min(empties - 1, 16));
                    retryAt = time.GetTimestamp() + holdOff * time.TimestampFrequency / 1000;
                    continue;
                }
            }
            catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested)
            {
                return; // the client is gone: nothing to answer
            }
            finally
            {
                turn?.Dispose();
            }
            if (left <= 0)
            {
                await write(ctx, QueueResult.Ok with { Delivered = [] });
                return;
            }
            var sleep = left;
            if (due) sleep = Math.Min(sleep, (long)Math.Ceiling(time.GetElapsedTime(time.GetTimestamp(), retryAt).TotalMilliseconds));
            // One millisecond over: the wall clock reads whole milliseconds and a timer may fire a little early.
            else if (next != long.MaxValue) sleep = Math.Min(sleep, next - wall + 1);
            waited = true;
            try
            {
                await signal.WaitAsync(TimeSpan.FromMilliseconds(Math.Max(1, sleep)), time, ctx.RequestAborted);
            }
            catch (TimeoutException)
            {
            }
            catch (OperationCanceledException)
            {
                return; // the client is gone: nothing to answer
            }
        }
    }

    /// <summary>Ack, nack or extend: <c>{"group", "receipts": [...]}</c> plus the op's own fields; answers the count done and the stale receipts.</summary>
    private static async Task Settle(HttpContext ctx, QueueNode node, QueueOp op)
    {
        if (await TopicOf(ctx, node) is not { } topic) return;
        var body = await RequestBody.ReadAsync(ctx);
        if (body is null) return;
        var limits = node.StateMachine.Limits;
        string group = "default";
        List<Receipt>? receipts = null;
        long duration = op == QueueOp.Extend ? DefaultLeaseMs : 0;
        string? reason = null;
        var accepted = op switch
        {
            QueueOp.Nack => "\"group\", \"receipts\", \"delay_ms\", \"error\"",
            QueueOp.Extend => "\"group\", \"receipts\", \"lease_ms\"",
            _ => "\"group\", \"receipts\"",
        };
        var error = Fields(body, (name, value) => (name, op) switch
        {
            ("group", _) => Group(value, limits, out group),
            ("receipts", _) => Receipts(value, "receipts", limits, allowEmpty: false, out receipts),
            ("delay_ms", QueueOp.Nack) => Long(value, name, 0, limits.MaxNackDelayMs, out duration),
            ("error", QueueOp.Nack) => value.ValueKind != JsonValueKind.String ? "\"error\" must be a string"
                : Encoding.UTF8.GetByteCount(value.GetString()!) > limits.MaxNackErrorBytes ? $"\"error\" is longer than {limits.MaxNackErrorBytes} bytes (UTF-8)"
                : Set(out reason, value.GetString()),
            ("lease_ms", QueueOp.Extend) => Long(value, name, 1, limits.MaxLeaseMs, out duration),
            _ => $"unknown field \"{name}\" (the body takes {accepted})",
        }) ?? (receipts is null ? "missing field \"receipts\"" : null);
        if (error is not null)
        {
            await RrmqEndpoints.WriteError(ctx, StatusCodes.Status400BadRequest, error);
            return;
        }
        var own = Tagged(receipts!);
        var done = op switch { QueueOp.Ack => "acked", QueueOp.Nack => "nacked", _ => "extended" };
        Task Answer(HttpContext c, int count, IEnumerable<string> stale) => WriteObject(c, StatusCodes.Status200OK, json =>
        {
            json.WriteNumber(done, count);
            json.WriteStartArray("stale");
            foreach (var r in stale) json.WriteStringValue(r);
            json.WriteEndArray();
        });
        if (own.Count == 0)
        {
            await Answer(ctx, 0, Stale(receipts!, []));
            return;
        }
        var command = op switch
        {
            QueueOp.Ack => QueueCommand.Ack(topic, group, own),
            QueueOp.Nack => QueueCommand.Nack(topic, group, own, duration, reason),
            _ => QueueCommand.Extend(topic, group, own, duration),
        };
        await RrmqEndpoints.RunCommandAsync(ctx, node, command,
            (c, result) => result.Success
                ? Answer(c, result.Count, Stale(receipts!, result.Stale!))
                : Failure(c, result, topic, group));
    }

    private static async Task Peek(HttpContext ctx, QueueNode node)
    {
        if (await TopicOf(ctx, node) is not { } topic) return;
        var limits = node.StateMachine.Limits;
        ulong? from = null;
        var max = DefaultPeekMax;
        string? error = null;
        foreach (var (name, values) in ctx.Request.Query)
        {
            var value = values.Count == 1 ? values[0] : null;
            error ??= name switch
            {
                "from" => ulong.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var f) ? Set(out from, f) : "\"from\" must be an offset (a non-negative integer), given once",
                "max" => int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var m) && m >= 1 && m <= limits.MaxBatchMessages
                    ? Set(out max, m) : $"\"max\" must be an integer between 1 and {limits.MaxBatchMessages}, given once",
                _ => $"unknown query parameter \"{name}\" (peek takes \"from\" and \"max\")",
            };
        }
        if (error is not null)
        {
            await RrmqEndpoints.WriteError(ctx, StatusCodes.Status400BadRequest, error);
            return;
        }
        using var deadline = node.RequestDeadline(ctx.RequestAborted);
        // Dead letters of a topic that never dead-lettered a message: none yet, not an unknown topic.
        var (ok, messages, readError) = await node.ReadAsync(
            sm => sm.Peek(topic, from, max) ?? (DeadLetters.IsDeadLetterTopic(topic) && sm.HasTopic(DeadLetters.SourceOf(topic)) ? [] : null),
            deadline.Token);
        if (!ok)
        {
            ctx.Response.Headers[ErrorCodes.Header] = ErrorCodes.NoLeader;
            await RrmqEndpoints.WriteError(ctx, StatusCodes.Status503ServiceUnavailable, readError!);
            return;
        }
        if (messages is null) await RrmqEndpoints.WriteError(ctx, StatusCodes.Status404NotFound, "no such topic");
        else await WriteMessages(ctx, messages, receiptTag: null);
    }

    private static async Task Redrive(HttpContext ctx, QueueNode node)
    {
        // Only /v1/topics/{topic}/redrive routes here, never a dead-letter topic: .../dead-letters/redrive is
        // refused by MessageEndpoints' catch-all.
        if (await TopicOf(ctx, node) is not { } topic) return;
        var body = await RequestBody.ReadAsync(ctx, optional: true);
        if (body is null) return;
        var limits = node.StateMachine.Limits;
        var max = DefaultRedriveMax;
        var error = body.Length == 0 ? null : Fields(body, (name, value) => name switch
        {
            "max" => Int(value, name, 1, limits.MaxBatchMessages, out max),
            _ => $"unknown field \"{name}\" (the body takes \"max\")",
        });
        if (error is not null)
        {
            await RrmqEndpoints.WriteError(ctx, StatusCodes.Status400BadRequest, error);
            return;
        }
        await RrmqEndpoints.RunCommandAsync(ctx, node, QueueCommand.Redrive(topic, max),
            (c, result) => result.Success
                ? WriteObject(c, StatusCodes.Status200OK, json => json.WriteNumber("redriven", result.Count))
                : V1Endpoints.WriteFailure(c, result));
    }

    /// <summary>A refusal of the state machine: 404 for a missing topic or group, 400 otherwise.</summary>
    private static Task Failure(HttpContext ctx, QueueResult result, string topic, string? group) => result.Status switch
    {
        QueueStatus.NoSuchTopic => RrmqEndpoints.WriteError(ctx, StatusCodes.Status404NotFound,
            DeadLetters.IsDeadLetterTopic(topic) ? NoDeadLetters : "no such topic"),
        QueueStatus.NoSuchGroup => RrmqEndpoints.WriteError(ctx, StatusCodes.Status404NotFound, DeadLetters.IsDeadLetterTopic(topic)
            ? $"no such consumer group \"{group}\": the dead letters have only the group \"default\""
            : $"no such consumer group \"{group}\" (create it with PUT /v1/topics/<topic>/groups/{group})"),
        _ => RrmqEndpoints.WriteError(ctx, StatusCodes.Status400BadRequest,
            DeadLetters.IsDeadLetterTopic(topic) ? "a dead-letter topic cannot be configured or created" : "the queue refused the command as invalid"),
    };

    /// <summary>Runs <paramref name="field"/> on each field of a JSON object body; the first error it returns, or null.</summary>
    internal static string? Fields(byte[] body, Func<string, JsonElement, string?> field)
    {
        using var doc = JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = RequestBody.MaxDepth });
        if (doc.RootElement.ValueKind != JsonValueKind.Object) return "body must be a JSON object";
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var f in doc.RootElement.EnumerateObject())
        {
            if (!seen.Add(f.Name)) return $"field \"{f.Name}\" appears twice";
            if (field(f.Name, f.Value) is { } error) return error;
        }
        return null;
    }

    internal static string? Set<T>(out T target, T value)
    {
        target = value;
        return null;
    }

    private static string? Int(JsonElement value, string name, int min, int max, out int result)
    {
        result = 0;
        return value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out result) && result >= min && result <= max
            ? null : $"\"{name}\" must be an integer between {min} and {max}";
    }

    internal static string? Long(JsonElement value, string name, long min, long max, out long result)
    {
        result = 0;
        return value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out result) && result >= min && result <= max
            ? null : max == long.MaxValue ? $"\"{name}\" must be an integer of at least {min}" : $"\"{name}\" must be an integer between {min} and {max}";
    }

    private static string? Group(JsonElement value, QueueLimits limits, out string group)
    {
        group = "";
        if (value.ValueKind != JsonValueKind.String) return "\"group\" must be a string";
        group = value.GetString()!;
        return limits.CheckGroupName(group) is { } error ? $"\"group\": {error}" : null;
    }

    /// <summary>
    /// The receipts of a settle call (field <paramref name="name"/>), or the acks of a receive, each parsed with its
    /// group tag (none for the form without one); at most <see cref="QueueLimits.MaxReceiptsPerCall"/>.
    /// </summary>
    private static string? Receipts(JsonElement value, string name, QueueLimits limits, bool allowEmpty, out List<Receipt>? receipts)
    {
        receipts = null;
        if (value.ValueKind != JsonValueKind.Array) return $"\"{name}\" must be an array of receipt strings";
        var count = value.GetArrayLength();
        if (count == 0 && !allowEmpty) return $"\"{name}\" must not be empty";
        if (count > limits.MaxReceiptsPerCall) return $"more than {limits.MaxReceiptsPerCall} receipts in one call";
        var list = new List<Receipt>(count);
        var i = 0;
        foreach (var r in value.EnumerateArray())
        {
            if (r.ValueKind != JsonValueKind.String || !Receipt.TryParse(r.GetString(), out var receipt))
                return $"{(name == "receipts" ? "receipt" : $"\"{name}\" receipt")} {i} is not a receipt: pass the \"receipt\" strings receive returned, unchanged";
            list.Add(receipt);
            i++;
        }
        receipts = list;
        return null;
    }

    /// <summary>
    /// The receipts to send: those with a tag. One of the form without a tag (from builds before receipts named their
    /// group) names no delivery: it is answered stale without being sent (<see cref="Stale"/>). The state machine
    /// compares each tag with the group's (<see cref="Receipt.TagOf"/>: topic, group, and the entry that created the
    /// group), so a receipt of another group or topic, or of a group or topic deleted and created again, is stale even
    /// when a current delivery has the same offset and count.
    /// </summary>
    private static List<Receipt> Tagged(List<Receipt> receipts) => [.. receipts.Where(r => r.Tag is not null)];

    /// <summary>
    /// The texts of the stale receipts in the order they were <paramref name="given"/>: each without a tag, and each
    /// the state machine answered stale (<paramref name="stale"/>, in the order of the receipts sent).
    /// </summary>
    private static IEnumerable<string> Stale(List<Receipt> given, IReadOnlyList<Receipt> stale)
    {
        var next = 0;
        foreach (var r in given)
        {
            if (r.Tag is null) yield return r.ToString();
            else if (next < stale.Count && stale[next] == r)
            {
                next++;
                yield return r.ToString();
            }
        }
    }

    /// <summary><c>{"success": true, ...}</c> with the fields <paramref name="write"/> writes.</summary>
    internal static async Task WriteObject(HttpContext ctx, int status, Action<Utf8JsonWriter> write)
    {
        if (ctx.Response.HasStarted) return;
        await using var json = RrmqEndpoints.StartJson(ctx, status);
        json.WriteStartObject();
        json.WriteBoolean("success", true);
        write(json);
        json.WriteEndObject();
        await json.FlushAsync(ctx.RequestAborted);
    }

    /// <summary>
    /// <c>{"success": true, "messages": [{"offset", "body", "published_at", "headers", and for a receive "receipt",
    /// "delivery_count"}]}</c>; "body" is the payload as text, or null with "body_base64" when it is not valid UTF-8.
    /// A receive that carried acks adds <c>"acked"</c> (how many) and <c>"stale"</c> (the receipts not applied).
    /// </summary>
    private static async Task WriteMessages(
        HttpContext ctx, IReadOnlyList<QueueMessage> messages, ulong? receiptTag, (int Count, IEnumerable<string> Stale)? acks = null)
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
            if (Utf8.IsValid(m.Payload.Span)) json.WriteString("body", m.Payload.Span);
            else
            {
                json.WriteNull("body");
                json.WriteBase64String("body_base64", m.Payload.Span);
            }
            if (receiptTag is { } tag)
            {
                json.WriteString("receipt", new Receipt(m.Offset, m.DeliveryCount) { Tag = tag }.ToString());
                json.WriteNumber("delivery_count", m.DeliveryCount);
            }
            json.WriteNumber("published_at", m.TimestampMs);
            json.WriteStartObject("headers");
            foreach (var h in m.Headers) json.WriteString(h.Name, h.Value);
            json.WriteEndObject();
            json.WriteEndObject();
            if (json.BytesPending > 64 * 1024) await json.FlushAsync(ctx.RequestAborted);
        }
        json.WriteEndArray();
        if (acks is { } a)
        {
            json.WriteNumber("acked", a.Count);
            json.WriteStartArray("stale");
            foreach (var r in a.Stale) json.WriteStringValue(r);
            json.WriteEndArray();
        }
        json.WriteEndObject();
        await json.FlushAsync(ctx.RequestAborted);
    }
}

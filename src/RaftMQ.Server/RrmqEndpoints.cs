using System.Text;
using System.Text.Json;
using RaftMQ.Hosting;
using RaftMQ.Queue;
using RaftMQ.Raft;

namespace RaftMQ.Server;

/// <summary>
/// The RRMQ-compatible REST API, to the letter of its specification: PUT/GET /topic, PUT /message,
/// GET /message/&lt;topic&gt;, GET /status. Status codes are documented in the README.
/// </summary>
public static class RrmqEndpoints
{
    public static void Map(IEndpointRouteBuilder app, QueueNode node)
    {
        app.MapPut("/topic", (HttpContext ctx) => PutTopic(ctx, node));
        app.MapGet("/topic", (HttpContext ctx) => GetTopics(ctx, node));
        app.MapPut("/message", (HttpContext ctx) => PutMessage(ctx, node));
        app.MapGet("/message/{**topic}", (HttpContext ctx) => GetMessage(ctx, node));
        app.MapGet("/status", (HttpContext ctx) => GetStatus(ctx, node));
        app.MapGet("/", (HttpContext ctx) => GetInfo(ctx, node));
        app.MapGet("/v1/status", (HttpContext ctx) => GetInfo(ctx, node));
    }

    private static async Task PutTopic(HttpContext ctx, QueueNode node)
    {
        var body = await RequestBody.ReadAsync(ctx);
        if (body is null) return;
        var error = ParseFields(body, ["topic"], out var fields) ?? ValidateTopic(node, fields[0]);
        if (error is not null)
        {
            await WriteError(ctx, StatusCodes.Status400BadRequest, error);
            return;
        }
        if (!await RequestGuard.AllowsTopicAsync(ctx, fields[0], ClientPermission.Admin)) return;
        await RunCommandAsync(ctx, node, QueueCommand.CreateTopic(fields[0]));
    }

    private static async Task PutMessage(HttpContext ctx, QueueNode node)
    {
        var body = await RequestBody.ReadAsync(ctx);
        if (body is null) return;
        var error = ParseFields(body, ["topic", "message"], out var fields) ?? ValidateTopic(node, fields[0]);
        if (error is not null)
        {
            await WriteError(ctx, StatusCodes.Status400BadRequest, error);
            return;
        }
        if (!await RequestGuard.AllowsTopicAsync(ctx, fields[0], ClientPermission.Publish)) return;
        if (Encoding.UTF8.GetByteCount(fields[1]) > node.StateMachine.Limits.MaxMessageBytes)
        {
            await WriteError(ctx, StatusCodes.Status413PayloadTooLarge,
                $"message is longer than {node.StateMachine.Limits.MaxMessageBytes} bytes (UTF-8)");
            return;
        }
        await RunCommandAsync(ctx, node, QueueCommand.Publish(fields[0], fields[1]));
    }

    private static async Task GetMessage(HttpContext ctx, QueueNode node)
    {
        // The raw target keeps %2F and other escapes intact, so any topic name round-trips.
        var raw = RequestTarget.Of(ctx);
        var q = raw.IndexOf('?', StringComparison.Ordinal);
        var path = q >= 0 ? raw[..q] : raw;
        const string prefix = "/message/";
        if (RequestTarget.Unescape(path.StartsWith(prefix, StringComparison.OrdinalIgnoreCase) ? path[prefix.Length..] : "") is not { } topic)
        {
            await WriteError(ctx, StatusCodes.Status400BadRequest, "the topic in the path is not a valid URL escape");
            return;
        }
        if (ValidateTopic(node, topic) is { } error)
        {
            await WriteError(ctx, StatusCodes.Status400BadRequest, error);
            return;
        }
        await RunCommandAsync(ctx, node, QueueCommand.Pop(topic));
    }

    private static async Task GetTopics(HttpContext ctx, QueueNode node)
    {
        using var deadline = node.RequestDeadline(ctx.RequestAborted);
        var (ok, topics, error) = await node.ReadAsync(sm => sm.Topics(), deadline.Token);
        if (!ok)
        {
            ctx.Response.Headers[ErrorCodes.Header] = ErrorCodes.NoLeader;
            await WriteError(ctx, StatusCodes.Status503ServiceUnavailable, error!);
            return;
        }
        await WriteJson(ctx, StatusCodes.Status200OK, new TopicsResponse(true, topics), ServerJsonContext.Default.TopicsResponse);
    }

    private static Task GetStatus(HttpContext ctx, QueueNode node)
    {
        var status = node.Runtime?.Status;
        var role = status?.Role switch
        {
            Role.Leader => "Leader",
            Role.Candidate or Role.PreCandidate => "Candidate",
            _ => "Follower",
        };
        return WriteJson(ctx, StatusCodes.Status200OK, new StatusResponse(role, status?.Term ?? 0), ServerJsonContext.Default.StatusResponse);
    }

    private static Task GetInfo(HttpContext ctx, QueueNode node)
    {
        var s = node.Runtime?.Status;
        int? leader = s is { Leader: > 0 } ? ClusterConfig.IndexOf(s.Leader) : null;
        var info = new NodeInfoResponse(
            "raftmq", node.Settings.Index, node.ClusterId, s is not null, s?.Role.ToString() ?? "Starting", s?.Term ?? 0,
            leader, s is { Leader: > 0 } ? node.UrlOf(s.Leader) : null,
            s?.CommitIndex ?? 0, s?.AppliedIndex ?? 0, s?.LastIndex ?? 0);
        return WriteJson(ctx, StatusCodes.Status200OK, info, ServerJsonContext.Default.NodeInfoResponse);
    }

    /// <summary>Runs a command through the cluster and answers; <paramref name="writeResult"/> writes an applied result (default: the RRMQ bodies).</summary>
    internal static async Task RunCommandAsync(
        HttpContext ctx, QueueNode node, QueueCommand command, Func<HttpContext, QueueResult, Task>? writeResult = null)
    {
        using var deadline = node.RequestDeadline(ctx.RequestAborted);
        var outcome = await node.ExecuteAsync(command, deadline.Token);
        await WriteOutcome(ctx, outcome, result => writeResult?.Invoke(ctx, result) ?? WriteResult(ctx, command.Op, result));
    }

    /// <summary><see cref="RunCommandAsync"/> of a command already encoded.</summary>
    internal static async Task RunEncodedAsync(HttpContext ctx, QueueNode node, byte[] command, Func<HttpContext, QueueResult, Task> writeResult)
    {
        using var deadline = node.RequestDeadline(ctx.RequestAborted);
        var outcome = await node.ExecuteAsync(command, deadline.Token);
        await WriteOutcome(ctx, outcome, result => writeResult(ctx, result));
    }

    /// <summary>Answers a command's outcome: the result as <paramref name="writeResult"/> writes it, or the 507 or 503 of a command not applied.</summary>
    internal static Task RunCommandOutcomeAsync(HttpContext ctx, CommandOutcome outcome, Func<HttpContext, QueueResult, Task> writeResult) =>
        WriteOutcome(ctx, outcome, result => writeResult(ctx, result));

    private static async Task WriteOutcome(HttpContext ctx, CommandOutcome outcome, Func<QueueResult, Task> writeResult)
    {
        switch (outcome)
        {
            case CommandOutcome.Applied a:
                await writeResult(a.Result);
                break;
            case CommandOutcome.DiskFull d:
                ctx.Response.Headers[ErrorCodes.Header] = ErrorCodes.DiskFull;
                await WriteJson(ctx, StatusCodes.Status507InsufficientStorage, DiskFullResponse.For(d.Disk), ServerJsonContext.Default.DiskFullResponse);
                break;
            case CommandOutcome.Unavailable u:
                ctx.Response.Headers[ErrorCodes.Header] = u.Code;
                await WriteError(ctx, StatusCodes.Status503ServiceUnavailable, u.Error);
                break;
        }
    }

    private static Task WriteResult(HttpContext ctx, QueueOp op, QueueResult result)
    {
        if (op == QueueOp.Pop && result.Success)
            return WriteJson(ctx, StatusCodes.Status200OK, new MessageResponse(true, result.Message!), ServerJsonContext.Default.MessageResponse);
        var code = result.Status switch
        {
            QueueStatus.Ok => op == QueueOp.CreateTopic ? StatusCodes.Status201Created : StatusCodes.Status200OK,
            QueueStatus.TopicExists => StatusCodes.Status409Conflict,
            // A topic whose group "default" was deleted has nothing to pop, as an empty one.
            QueueStatus.NoSuchTopic or QueueStatus.Empty or QueueStatus.NoSuchGroup => StatusCodes.Status404NotFound,
            QueueStatus.LimitReached => StatusCodes.Status507InsufficientStorage,
            QueueStatus.TopicFull => StatusCodes.Status409Conflict,
            _ => StatusCodes.Status400BadRequest,
        };
        return WriteJson(ctx, code, new SuccessResponse(result.Success), ServerJsonContext.Default.SuccessResponse);
    }

    /// <summary>Parses a JSON object and takes the named string fields; returns what is wrong, or null.</summary>
    private static string? ParseFields(byte[] body, string[] names, out string[] values)
    {
        values = new string[names.Length];
        string? error = null;
        try
        {
            using var doc = JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = RequestBody.MaxDepth });
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                error = "body must be a JSON object";
            }
            else
            {
                for (int i = 0; i < names.Length && error is null; i++)
                {
                    if (!doc.RootElement.TryGetProperty(names[i], out var el)) error = $"missing field \"{names[i]}\"";
                    else if (el.ValueKind != JsonValueKind.String) error = $"field \"{names[i]}\" must be a string";
                    else values[i] = el.GetString()!;
                }
            }
        }
        catch (JsonException e)
        {
            error = $"body is not valid JSON: {e.Message}";
        }
        return error;
    }

    internal static string? ValidateTopic(QueueNode node, string topic)
    {
        if (topic.Length == 0) return "topic must not be empty";
        // A URL path cannot carry these as a segment (clients normalise them away), so GET /message/<topic> could not reach them.
        if (topic is "." or "..") return "topic must not be \".\" or \"..\"";
        // No request path can carry U+0000 (%00 is refused before routing): such a topic could be created but never popped.
        if (topic.Contains('\0')) return "topic must not contain U+0000";
        if (Encoding.UTF8.GetByteCount(topic) > node.StateMachine.Limits.MaxTopicNameBytes)
            return $"topic is longer than {node.StateMachine.Limits.MaxTopicNameBytes} bytes (UTF-8)";
        return null;
    }

    internal static Task WriteError(HttpContext ctx, int status, string error) =>
        WriteJson(ctx, status, new ErrorResponse(false, error), ServerJsonContext.Default.ErrorResponse);

    /// <summary>
    /// Answers <paramref name="status"/> with <paramref name="value"/> (written as <see cref="NodeWebApplication.AnswerJson"/>
    /// says) and sends it: the response has started when this returns. The body is written into the response's pipe,
    /// so the serializer's closing synchronous flush only moves bytes into it; the pipe's own flush sends them.
    /// </summary>
    internal static async Task WriteJson<T>(HttpContext ctx, int status, T value, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type)
    {
        if (ctx.Response.HasStarted) return;
        SetJsonHeaders(ctx, status);
        using (var json = new Utf8JsonWriter(ctx.Response.BodyWriter, NodeWebApplication.AnswerJson)) JsonSerializer.Serialize(json, value, type);
        await ctx.Response.BodyWriter.FlushAsync(ctx.RequestAborted);
    }

    private static void SetJsonHeaders(HttpContext ctx, int status)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json";
    }

    /// <summary>
    /// Starts a JSON answer with <paramref name="status"/> that the caller writes and flushes itself (with
    /// <c>FlushAsync</c>, as often as it likes to bound what waits in memory): its headers, and a writer of its body
    /// (see <see cref="NodeWebApplication.AnswerJson"/>).
    /// </summary>
    internal static Utf8JsonWriter StartJson(HttpContext ctx, int status)
    {
        SetJsonHeaders(ctx, status);
        return new Utf8JsonWriter(ctx.Response.Body, NodeWebApplication.AnswerJson);
    }
}

/// <summary>Bounds of the HTTP layer.</summary>
public static class ServerLimits
{
    /// <summary>Largest request body; a 64 KiB message, escaped in JSON, fits with room to spare.</summary>
    public const int MaxRequestBodyBytes = 1 << 20;

    /// <summary>
    /// Most bytes a queue command (and its session envelope) adds to the text taken from a body: JSON only shrinks
    /// strings (escapes decode to fewer bytes), and the binary form adds at most a 5-byte length per message of a
    /// batch, the topic and a fixed header.
    /// </summary>
    public const int CommandOverheadBytes = 16 * 1024;

    /// <summary>Longest <c>wait_ms</c> a receive may ask for (long polling), in milliseconds.</summary>
    public const long MaxReceiveWaitMs = 20_000;

    /// <summary>
    /// Most receives one node holds waiting at once (long polling); a receive past it is answered at once, as with
    /// <c>wait_ms</c> 0: whatever one receive leases, perhaps nothing.
    /// </summary>
    public const int MaxWaitingReceives = 1_024;

    /// <summary>
    /// How long a waiting receive that came back empty holds off before it is proposed again when no command was
    /// applied meanwhile (its read said a lease or a delay had ended by this node's clock, but the leader's clock had
    /// not got there); doubled each time, up to the rest of the wait. It bounds the log entries a node whose clock is
    /// ahead of the leader's can add: about log2(skew / this) per waiting receive.
    /// </summary>
    public const int ReceiveRetryMs = 10;

    /// <summary>
    /// How often the leader checks whether a message is due to expire by age (its topic's <c>max_age_ms</c>) while no
    /// command moves the replicated clock: the longest an expired message outlives its age on an idle cluster.
    /// </summary>
    public const int ExpiryCheckMs = 1_000;

    /// <summary>Throws when a request body within <see cref="MaxRequestBodyBytes"/> could become a command the node refuses.</summary>
    public static void CheckAgainst(RaftMQ.Hosting.RaftHostOptions host)
    {
        ArgumentNullException.ThrowIfNull(host);
        if (MaxRequestBodyBytes + CommandOverheadBytes > host.MaxCommandBytes)
        {
            throw new ArgumentException(
                $"a request body of up to {MaxRequestBodyBytes} bytes becomes a command of up to {MaxRequestBodyBytes + CommandOverheadBytes} bytes, " +
                $"over the node's MaxCommandBytes {host.MaxCommandBytes}");
        }
    }

    /// <summary>
    /// Throws when a result the queue can give under <paramref name="limits"/> (the largest: a binary batch pop) would
    /// not fit what a leader sends back to a forwarding follower, or the queue's bounds cannot work.
    /// </summary>
    public static void CheckAgainst(QueueLimits limits, RaftMQ.Runtime.ProposalForwarding forwarding)
    {
        ArgumentNullException.ThrowIfNull(limits);
        ArgumentNullException.ThrowIfNull(forwarding);
        limits.Validate();
        var largest = QueueResultCodec.MaxPopMessagesResultBytes(limits);
        if (largest > forwarding.MaxResultBytes)
        {
            throw new ArgumentException(
                $"a batch pop's result can take {largest} bytes, over the {forwarding.MaxResultBytes} bytes a leader sends back (ProposalForwarding.MaxResultBytes)");
        }
    }
}

using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.Extensions.DependencyInjection;
using RaftMQ.Queue;

namespace RaftMQ.Server;

/// <summary>
/// RaftMQ's own API beyond the RRMQ drop-in: batch publish and batch pop, so that one request (one HTTP exchange,
/// one Raft entry, one fsync) carries many messages. Status codes are documented in docs/rest-api.md.
/// </summary>
public static class V1Endpoints
{
    public static void Map(IEndpointRouteBuilder app, QueueNode node)
    {
        app.MapPost("/v1/messages", (HttpContext ctx) => PublishBatch(ctx, node));
        app.MapPost("/v1/messages/pop", (HttpContext ctx) => PopBatch(ctx, node));
        app.MapGet("/v1/metrics", (HttpContext ctx) => Metrics(ctx, node));
    }

    /// <summary>This node's own counters (not a cluster view, and not linearizable: each value is read as it is now).</summary>
    private static Task Metrics(HttpContext ctx, QueueNode node)
    {
        var host = node.Host;
        var s = host?.Runtime.Status;
        int? leader = s is { Leader: > 0 } ? ClusterConfig.IndexOf(s.Leader) : null;
        RuntimeMetrics? runtime = null;
        TransportMetrics? transport = null;
        if (host is not null)
        {
            var r = host.Runtime.Counters;
            runtime = new RuntimeMetrics(
                r.Iterations, r.Readies, r.LogWrites, r.LogSyncs, r.EntriesPersisted, r.EntriesApplied, r.MessagesSent,
                r.MessagesHandled, host.Runtime.DroppedPeerMessages, r.Proposals, r.Reads, r.SnapshotsTaken);
            var t = host.TransportCounters;
            transport = new TransportMetrics(
                t.MessagesSent, t.MessagesReceived, t.SendQueueDrops, t.InboundDrops, t.OversizedDrops, t.UnknownPeerDrops,
                t.UnsupportedDrops, t.SpoofedDrops, t.OutboundConnects, t.InboundAccepts, t.AuthFailures, t.ProtocolErrors,
                t.ConnectionsRefused, [.. host.LinksDown().Select(ClusterConfig.IndexOf)]);
        }
        var d = node.Disk.Current;
        var http = ctx.RequestServices.GetRequiredService<HttpConnectionLimiter>();
        var metrics = new MetricsResponse(
            node.Settings.Index, host is not null, s?.Role.ToString() ?? "Starting", s?.Term ?? 0, leader,
            s?.CommitIndex ?? 0, s?.AppliedIndex ?? 0, s?.LastIndex ?? 0, s?.Quiesced ?? false, runtime, transport,
            new DiskMetrics(d.Alarm, d.FreeBytes, d.LimitBytes, d.Directory), new HttpMetrics(http.Open, http.Refused, node.Waiters.Waiting));
        return RrmqEndpoints.WriteJson(ctx, StatusCodes.Status200OK, metrics, MetricsJsonContext.Default.MetricsResponse);
    }

    private static async Task PublishBatch(HttpContext ctx, QueueNode node)
    {
        byte[]? command;
        BatchPublishBody.Parsed parsed;
        var limits = node.StateMachine.Limits;
        string? topic = null;
        using (var body = await RequestBody.ReadPooledAsync(ctx))
        {
            if (body is null) return;
            parsed = BatchPublishBody.Parse(body.Span, limits, t =>
            {
                topic = t;
                return RrmqEndpoints.ValidateTopic(node, t);
            });
            command = parsed.Command;
        }
        if (command is null)
        {
            await RrmqEndpoints.WriteError(ctx, parsed.Status, parsed.Error!);
            return;
        }
        if (!await RequestGuard.AllowsTopicAsync(ctx, topic!, ClientPermission.Publish)) return;
        await RrmqEndpoints.RunEncodedAsync(ctx, node, command,
            (c, result) => result.Success
                ? RrmqEndpoints.WriteJson(c, StatusCodes.Status200OK, new PublishBatchResponse(true, result.Count), ServerJsonContext.Default.PublishBatchResponse)
                : WriteFailure(c, result));
    }

    private static async Task PopBatch(HttpContext ctx, QueueNode node)
    {
        var body = await RequestBody.ReadAsync(ctx);
        if (body is null) return;
        var (request, error) = Parse(body, ServerJsonContext.Default.PopBatchRequest);
        var limits = node.StateMachine.Limits;
        error ??= request!.Topic is null ? "missing field \"topic\""
            : request.Max is < 1 || request.Max > limits.MaxBatchMessages ? $"\"max\" must be between 1 and {limits.MaxBatchMessages}"
            : RrmqEndpoints.ValidateTopic(node, request.Topic);
        if (error is not null)
        {
            await RrmqEndpoints.WriteError(ctx, StatusCodes.Status400BadRequest, error);
            return;
        }
        if (!await RequestGuard.AllowsTopicAsync(ctx, request!.Topic!, ClientPermission.Consume)) return;
        await RrmqEndpoints.RunCommandAsync(ctx, node, QueueCommand.PopBatch(request!.Topic!, request.Max ?? 1),
            (c, result) => result.Success
                ? RrmqEndpoints.WriteJson(c, StatusCodes.Status200OK, new PopBatchResponse(true, result.Messages!), ServerJsonContext.Default.PopBatchResponse)
                : WriteFailure(c, result));
    }

    /// <summary>Deserializes a JSON object body; on failure returns why.</summary>
    private static (T? Value, string? Error) Parse<T>(byte[] body, JsonTypeInfo<T> type)
        where T : class
    {
        try
        {
            // The generated reader allows no trailing content and refuses wrong-typed fields with a JsonException.
            var value = JsonSerializer.Deserialize(body, type);
            return value is null ? (null, "body must be a JSON object") : (value, null);
        }
        catch (JsonException e)
        {
            return (null, $"body is not a valid request: {RequestBody.Describe(e)}");
        }
    }

    /// <summary>
    /// 409 with <see cref="ErrorCodes.TopicFull"/>: the publish would take the topic past its own <c>max_messages</c> or
    /// <c>max_bytes</c> under <c>reject-publish</c> (or is larger than they allow); nothing was stored.
    /// </summary>
    internal static Task WriteTopicFull(HttpContext ctx)
    {
        ctx.Response.Headers[ErrorCodes.Header] = ErrorCodes.TopicFull;
        return RrmqEndpoints.WriteError(ctx, StatusCodes.Status409Conflict,
            "the topic is full: under overflow reject-publish the messages would take it past its max_messages or max_bytes, or "
            + "under either policy the publish alone holds more than they allow; nothing was published");
    }

    /// <summary>A command the state machine refused: why, with the status code the RRMQ endpoints use for the same outcome.</summary>
    internal static Task WriteFailure(HttpContext ctx, QueueResult result) => result.Status switch
    {
        QueueStatus.NoSuchTopic => RrmqEndpoints.WriteError(ctx, StatusCodes.Status404NotFound, "no such topic"),
        QueueStatus.TopicFull => WriteTopicFull(ctx),
        QueueStatus.NoSuchGroup => RrmqEndpoints.WriteError(ctx, StatusCodes.Status404NotFound,
            "the topic's group \"default\" was deleted: a pop receives and acks on it (create it again with PUT /v1/topics/<topic>/groups/default, or receive from another group)"),
        QueueStatus.LimitReached => RrmqEndpoints.WriteError(ctx, StatusCodes.Status507InsufficientStorage,
            "the queue is full: the messages would pass the cluster's bounds on waiting messages or bytes, in all topics or in this one (GET /v1/cluster/limits); nothing was published"),
        _ => RrmqEndpoints.WriteError(ctx, StatusCodes.Status400BadRequest, "the queue refused the command as invalid"),
    };
}

using System.Text.Json;
using RaftMQ.Queue;

namespace RaftMQ.Server;

/// <summary>
/// The queue-wide bounds (docs/rest-api.md, "Limits"): <c>GET /v1/cluster/limits</c> reads them with what the queue
/// holds; <c>PUT /v1/cluster/limits</c> changes them through the log (op <see cref="QueueOp.SetLimits"/>), so every
/// node applies the same bounds from the same entry on.
/// </summary>
public static partial class ClusterEndpoints
{
    /// <summary>The fields a <c>PUT</c> takes, as its errors list them.</summary>
    private const string LimitFields = "\"max_bytes\", \"max_messages\", \"max_topic_bytes\", \"max_topic_messages\"";

    private static void MapLimits(IEndpointRouteBuilder app, QueueNode node)
    {
        app.MapGet("/v1/cluster/limits", (HttpContext ctx) => WriteLimits(ctx, node));
        app.MapPut("/v1/cluster/limits", (HttpContext ctx) => SetLimits(ctx, node));
    }

    private static async Task SetLimits(HttpContext ctx, QueueNode node)
    {
        var body = await RequestBody.ReadAsync(ctx);
        if (body is null) return;
        var limits = node.StateMachine.Limits;
        var change = new QueueBoundsChange();
        var error = GroupEndpoints.Fields(body, (name, value) => name switch
        {
            "max_bytes" => GroupEndpoints.Long(value, name, 1, limits.MaxSettableBytes, out var v) ?? GroupEndpoints.Set(out change, change with { MaxBytes = v }),
            "max_messages" => GroupEndpoints.Long(value, name, 1, limits.MaxSettableMessages, out var v) ?? GroupEndpoints.Set(out change, change with { MaxMessages = v }),
            "max_topic_bytes" => GroupEndpoints.Long(value, name, 1, limits.MaxSettableBytes, out var v) ?? GroupEndpoints.Set(out change, change with { MaxTopicBytes = v }),
            "max_topic_messages" => GroupEndpoints.Long(value, name, 1, limits.MaxSettableMessages, out var v) ?? GroupEndpoints.Set(out change, change with { MaxTopicMessages = v }),
            _ => $"unknown field \"{name}\" (the body takes {LimitFields})",
        });
        if (error is null && change.IsEmpty) error = $"the body names no limit to change (it takes {LimitFields})";
        if (error is not null)
        {
            await RrmqEndpoints.WriteError(ctx, StatusCodes.Status400BadRequest, error);
            return;
        }
        await RrmqEndpoints.RunCommandAsync(ctx, node, QueueCommand.SetLimits(change), async (c, result) =>
        {
            if (result.Success) await WriteLimits(c, node);
            else await RrmqEndpoints.WriteError(c, StatusCodes.Status400BadRequest, "the queue refused the limits as out of range");
        });
    }

    /// <summary>
    /// <c>{"success": true, "max_bytes", "max_messages", "max_topic_bytes", "max_topic_messages", "bytes", "messages"}</c>:
    /// the bounds in force and what they count now, read at a linearizable point (after a PUT: at least its own change).
    /// </summary>
    private static async Task WriteLimits(HttpContext ctx, QueueNode node)
    {
        using var deadline = node.RequestDeadline(ctx.RequestAborted);
        var (ok, state, error) = await node.ReadAsync(sm => (sm.Bounds, sm.TotalMessageBytes, sm.TotalMessages), deadline.Token);
        if (!ok)
        {
            ctx.Response.Headers[ErrorCodes.Header] = ErrorCodes.NoLeader;
            await RrmqEndpoints.WriteError(ctx, StatusCodes.Status503ServiceUnavailable, error!);
            return;
        }
        var (bounds, bytes, messages) = state;
        await GroupEndpoints.WriteObject(ctx, StatusCodes.Status200OK, json =>
        {
            json.WriteNumber("max_bytes", bounds.MaxBytes);
            json.WriteNumber("max_messages", bounds.MaxMessages);
            json.WriteNumber("max_topic_bytes", bounds.MaxTopicBytes);
            json.WriteNumber("max_topic_messages", bounds.MaxTopicMessages);
            json.WriteNumber("bytes", bytes);
            json.WriteNumber("messages", messages);
        });
    }
}

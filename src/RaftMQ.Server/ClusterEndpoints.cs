using System.Text.Json;
using System.Text.Json.Serialization;
using RaftMQ.Raft;
using RaftMQ.Runtime;

namespace RaftMQ.Server;

/// <summary>
/// Operations on the cluster itself: <c>POST /v1/cluster/transfer-leader</c> hands leadership to another node;
/// <c>GET</c>, <c>POST /v1/cluster/members</c> and <c>DELETE /v1/cluster/members/{node}</c> list, add and remove
/// members; <c>GET</c> and <c>PUT /v1/cluster/limits</c> read and change the queue-wide bounds. Nodes are named by their number (the index in the cluster configuration for the nodes that bootstrapped
/// it), as everywhere in the API. Status codes are documented in docs/rest-api.md.
/// </summary>
public static partial class ClusterEndpoints
{
    /// <summary><c>X-RaftMQ-Error</c> of a <c>409</c> from a node that does not lead: ask the leader named in the body.</summary>
    public const string NotLeader = "not-leader";

    /// <summary><c>X-RaftMQ-Error</c> of a <c>409</c>: the target did not take over within an election timeout; the old leader leads on.</summary>
    public const string TransferAbandoned = "transfer-abandoned";

    /// <summary><c>X-RaftMQ-Error</c> of a <c>409</c>: a transfer is already under way.</summary>
    public const string TransferInProgress = "transfer-in-progress";

    public static void Map(IEndpointRouteBuilder app, QueueNode node)
    {
        app.MapPost("/v1/cluster/transfer-leader", (HttpContext ctx) => TransferLeader(ctx, node));
        MapMembers(app, node);
        MapLimits(app, node);
    }

    private static async Task TransferLeader(HttpContext ctx, QueueNode node)
    {
        int? to = null;
        // No body, or an empty one, asks for the most up-to-date node.
        var body = await RequestBody.ReadAsync(ctx, optional: true);
        if (body is null) return;
        if (body.Length > 0)
        {
            var error = ParseTarget(body, out to);
            if (error is not null)
            {
                await RrmqEndpoints.WriteError(ctx, StatusCodes.Status400BadRequest, error);
                return;
            }
        }
        var runtime = node.Runtime;
        if (runtime is null)
        {
            ctx.Response.Headers[ErrorCodes.Header] = ErrorCodes.NoLeader;
            await RrmqEndpoints.WriteError(ctx, StatusCodes.Status503ServiceUnavailable, "the node is starting: its storage is not recovered yet");
            return;
        }
        using var deadline = node.RequestDeadline(ctx.RequestAborted);
        LeadershipTransferred done;
        try
        {
            done = await runtime.TransferLeadershipAsync(to is int target ? ClusterConfig.NodeId(target) : 0, deadline.Token);
        }
        catch (LeadershipTransferException e)
        {
            await WriteRefusal(ctx, node, e, to);
            return;
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested)
        {
            ctx.Response.Headers[ErrorCodes.Header] = ErrorCodes.OutcomeUnknown;
            await RrmqEndpoints.WriteError(ctx, StatusCodes.Status503ServiceUnavailable,
                "timed out waiting for the new leader; leadership may or may not have moved (see GET /v1/status)");
            return;
        }
        catch (NodeStoppedException e)
        {
            ctx.Response.Headers[ErrorCodes.Header] = ErrorCodes.Stopped;
            await RrmqEndpoints.WriteError(ctx, StatusCodes.Status503ServiceUnavailable, e.Message);
            return;
        }
        await RrmqEndpoints.WriteJson(ctx, StatusCodes.Status200OK,
            new TransferLeaderResponse(true, ClusterConfig.IndexOf(done.Leader), done.Term), ClusterJsonContext.Default.TransferLeaderResponse);
    }

    /// <summary>Why the transfer did not happen, in the API's terms (node indexes, not Raft ids).</summary>
    private static Task WriteRefusal(HttpContext ctx, QueueNode node, LeadershipTransferException e, int? to)
    {
        var leader = e.LeaderHint == 0 ? (int?)null : ClusterConfig.IndexOf(e.LeaderHint);
        var me = node.Settings.Index;
        switch (e.Status)
        {
            case MembershipStatus.NotLeader when leader is int l:
                ctx.Response.Headers[ErrorCodes.Header] = NotLeader;
                return RrmqEndpoints.WriteJson(ctx, StatusCodes.Status409Conflict,
                    new NotLeaderResponse(false, $"node {me} is not the leader; node {l} is: ask it", l, node.UrlOf(e.LeaderHint) ?? ""),
                    ClusterJsonContext.Default.NotLeaderResponse);
            case MembershipStatus.NotLeader:
                ctx.Response.Headers[ErrorCodes.Header] = ErrorCodes.NoLeader;
                return RrmqEndpoints.WriteError(ctx, StatusCodes.Status503ServiceUnavailable,
                    $"node {me} is not the leader and knows of none (an election is under way); retry shortly");
            case MembershipStatus.Transferring when e.Abandoned:
                ctx.Response.Headers[ErrorCodes.Header] = TransferAbandoned;
                return RrmqEndpoints.WriteError(ctx, StatusCodes.Status409Conflict,
                    $"the transfer was abandoned: node {(to is int t ? t.ToString(System.Globalization.CultureInfo.InvariantCulture) : "chosen")} did not take over within an election timeout; node {me} leads on");
            case MembershipStatus.Transferring:
                ctx.Response.Headers[ErrorCodes.Header] = TransferInProgress;
                return RrmqEndpoints.WriteError(ctx, StatusCodes.Status409Conflict, "a leadership transfer is already under way; retry when it is over");
            case MembershipStatus.UnknownMember:
                return RrmqEndpoints.WriteError(ctx, StatusCodes.Status404NotFound, $"no node {to}: it is not a voting member of the cluster");
            case MembershipStatus.InvalidTarget when to is int target && target == me:
                return RrmqEndpoints.WriteError(ctx, StatusCodes.Status400BadRequest, $"node {target} already leads");
            default:
                return RrmqEndpoints.WriteError(ctx, StatusCodes.Status400BadRequest, $"cannot transfer leadership to node {to?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "(any)"}: {Translate(e.Message)}");
        }
    }

    /// <summary>The core speaks of Raft ids (index + 1); the API of indexes.</summary>
    internal static string Translate(string message)
    {
        var nodes = System.Text.RegularExpressions.Regex.Replace(message, @"node (\d+)", m =>
            ulong.TryParse(m.Groups[1].Value, out var id) && id > 0 ? "node " + ClusterConfig.IndexOf(id) : m.Value);
        // A configuration as the core prints it: "voters (1 2 3) learners (4)".
        return System.Text.RegularExpressions.Regex.Replace(nodes, @"(voters|learners) \(([\d ]*)\)", m =>
            $"{m.Groups[1].Value} ({string.Join(' ', m.Groups[2].Value.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(i => ulong.TryParse(i, out var id) && id > 0 ? ClusterConfig.IndexOf(id).ToString(System.Globalization.CultureInfo.InvariantCulture) : i))})");
    }

    /// <summary>Reads <c>{"to": index}</c> (the field optional, null meaning absent); returns what is wrong, or null.</summary>
    private static string? ParseTarget(byte[] body, out int? to)
    {
        to = null;
        try
        {
            using var doc = JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = RequestBody.MaxDepth });
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) return "body must be a JSON object, like {\"to\": 1}";
            foreach (var p in root.EnumerateObject())
                if (p.Name != "to") return $"unknown field \"{p.Name}\"; the body takes only \"to\"";
            if (!root.TryGetProperty("to", out var el) || el.ValueKind == JsonValueKind.Null) return null;
            if (el.ValueKind != JsonValueKind.Number || !el.TryGetInt32(out var index) || index < 0)
                return "field \"to\" must be a node index: an integer from 0";
            to = index;
            return null;
        }
        catch (JsonException e)
        {
            return $"body is not valid JSON: {e.Message}";
        }
    }
}

/// <summary>Body of a successful transfer: the node that leads now (an index) and its term.</summary>
public sealed record TransferLeaderResponse(
    [property: JsonPropertyName("success")] bool Success,
    [property: JsonPropertyName("leader")] int Leader,
    [property: JsonPropertyName("term")] ulong Term);

/// <summary>Body of a <c>409</c> <c>not-leader</c>: the leader to ask, by index and URL.</summary>
public sealed record NotLeaderResponse(
    [property: JsonPropertyName("success")] bool Success,
    [property: JsonPropertyName("error")] string Error,
    [property: JsonPropertyName("leader")] int Leader,
    [property: JsonPropertyName("leader_url")] string LeaderUrl);

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(TransferLeaderResponse))]
[JsonSerializable(typeof(NotLeaderResponse))]
internal sealed partial class ClusterJsonContext : JsonSerializerContext;

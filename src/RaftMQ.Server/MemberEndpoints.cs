using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using RaftMQ.Raft;
using RaftMQ.Runtime;

namespace RaftMQ.Server;

// GET/POST /v1/cluster/members and DELETE /v1/cluster/members/{node}: the members, adding one, removing one.
public static partial class ClusterEndpoints
{
    /// <summary><c>X-RaftMQ-Error</c> of a <c>409</c>: another membership change is not committed yet; retry shortly.</summary>
    public const string ChangeInProgress = "change-in-progress";

    /// <summary><c>X-RaftMQ-Error</c> of a <c>409</c>: the node (or its address) is already a member; the body names it.</summary>
    public const string AlreadyMember = "already-member";

    /// <summary><c>X-RaftMQ-Error</c> of a <c>409</c>: removing the node would leave the cluster without a voter.</summary>
    public const string LastVoter = "last-voter";

    /// <summary><c>X-RaftMQ-Error</c> of a <c>409</c>: the cluster has <see cref="ClusterConfiguration.MaxMembers"/> members already.</summary>
    public const string TooManyMembers = "too-many-members";

    private static void MapMembers(IEndpointRouteBuilder app, QueueNode node)
    {
        app.MapGet("/v1/cluster/members", (HttpContext ctx) => ListMembers(ctx, node));
        app.MapPost("/v1/cluster/members", (HttpContext ctx) => AddMember(ctx, node));
        // A RequestDelegate, as every endpoint here: no reflection over the handler (the node is trimmed).
        app.MapDelete("/v1/cluster/members/{member}", (HttpContext ctx) => RemoveMember(ctx, node, (string)ctx.Request.RouteValues["member"]!));
    }

    private static async Task ListMembers(HttpContext ctx, QueueNode node)
    {
        if (await RunningRuntime(ctx, node) is not { } runtime) return;
        using var deadline = node.RequestDeadline(ctx.RequestAborted);
        try
        {
            // The latest configuration, which the node acts on, committed or not; and whether it is.
            var read = await runtime.ReadConfigurationStateAsync(deadline.Token);
            await WriteMembers(ctx, node, StatusCodes.Status200OK, read.Configuration, read.Leader, null,
                state: (read.Committed, read.Index == 0 ? null : (ulong?)read.Index));
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested)
        {
            ctx.Response.Headers[ErrorCodes.Header] = ErrorCodes.NoLeader;
            await RrmqEndpoints.WriteError(ctx, StatusCodes.Status503ServiceUnavailable, "timed out waiting for a leader to confirm the members");
        }
        catch (NodeStoppedException e)
        {
            ctx.Response.Headers[ErrorCodes.Header] = ErrorCodes.Stopped;
            await RrmqEndpoints.WriteError(ctx, StatusCodes.Status503ServiceUnavailable, e.Message);
        }
    }

    private static async Task AddMember(HttpContext ctx, QueueNode node)
    {
        var body = await RequestBody.ReadAsync(ctx, optional: false);
        if (body is null) return;
        var error = ParseAddMember(body, out var address, out var number);
        if (error is not null)
        {
            await RrmqEndpoints.WriteError(ctx, StatusCodes.Status400BadRequest, error);
            return;
        }
        if (await RunningRuntime(ctx, node) is not { } runtime) return;
        var configuration = runtime.Configuration;
        // The same address twice is the same node: name it (a joining node that asked before takes that answer).
        foreach (var id in Members(configuration))
        {
            if (node.Members.AddressOf(id) is { } known && SameEndpoint(known, address!))
            {
                ctx.Response.Headers[ErrorCodes.Header] = AlreadyMember;
                var role = configuration.IsVoter(id) ? "voter" : "learner";
                // Name what collides: the HTTP address, or only the peer port (then the URL alone would mislead).
                var says = known.Port == address!.Port
                    ? $"{address.Url} is already node {ClusterConfig.IndexOf(id)}, a {role}"
                    : $"peer port {address.InternalPort} of {address.Ip} is already node {ClusterConfig.IndexOf(id)}'s (a {role}, at {known.Url}): give the new node another peer_port";
                await WriteMembers(ctx, node, StatusCodes.Status409Conflict, configuration, runtime.Status.Leader, says, id);
                return;
            }
        }
        ulong newId = number is int n
            ? ClusterConfig.NodeId(n)
            : Math.Max(node.Members.Addresses.Keys.DefaultIfEmpty(0UL).Max(), Members(configuration).DefaultIfEmpty(0UL).Max()) + 1;
        if (configuration.IsMember(newId))
        {
            ctx.Response.Headers[ErrorCodes.Header] = AlreadyMember;
            await WriteMembers(ctx, node, StatusCodes.Status409Conflict, configuration, runtime.Status.Leader,
                $"node {ClusterConfig.IndexOf(newId)} is already a member, at {node.UrlOf(newId) ?? "an unknown address"}", null);
            return;
        }
        var addresses = node.Members.EncodedAddresses(configuration, newId, address!);
        await Change(ctx, node, runtime, t => runtime.AddLearnerAsync(newId, addresses, t), StatusCodes.Status201Created, newId);
    }

    private static async Task RemoveMember(HttpContext ctx, QueueNode node, string member)
    {
        if (!int.TryParse(member, NumberStyles.None, CultureInfo.InvariantCulture, out var number))
        {
            await RrmqEndpoints.WriteError(ctx, StatusCodes.Status400BadRequest, $"'{member}' is not a node number (an integer from 0)");
            return;
        }
        if (await RunningRuntime(ctx, node) is not { } runtime) return;
        await Change(ctx, node, runtime, t => runtime.RemoveMemberAsync(ClusterConfig.NodeId(number), t), StatusCodes.Status200OK, null);
    }

    /// <summary>
    /// Runs a change, retrying while another change is being committed or the leader has not committed in its term yet
    /// (both last milliseconds), until the request deadline; then answers with the members or the refusal.
    /// </summary>
    private static async Task Change(
        HttpContext ctx, QueueNode node, RaftRuntime runtime, Func<CancellationToken, Task<MembershipChanged>> change, int status, ulong? subject)
    {
        using var deadline = node.RequestDeadline(ctx.RequestAborted);
        MembershipChangeException? last = null;
        try
        {
            while (true)
            {
                try
                {
                    var done = await change(deadline.Token);
                    // The change's own configuration, committed at its entry's index.
                    await WriteMembers(ctx, node, status, done.Configuration, runtime.Status.Leader, null, subject, (true, done.Index));
                    return;
                }
                catch (MembershipChangeException e) when (!e.OutcomeUnknown && e.Status is MembershipStatus.ChangeInProgress or MembershipStatus.NotCommittedInTerm)
                {
                    last = e;
                    await Task.Delay(TimeSpan.FromMilliseconds(10), deadline.Token);
                }
            }
        }
        catch (MembershipChangeException e)
        {
            await WriteChangeRefusal(ctx, node, e);
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested)
        {
            if (last is not null)
            {
                await WriteChangeRefusal(ctx, node, last);
                return;
            }
            ctx.Response.Headers[ErrorCodes.Header] = ErrorCodes.OutcomeUnknown;
            await RrmqEndpoints.WriteError(ctx, StatusCodes.Status503ServiceUnavailable,
                "timed out waiting for the change to commit; it may or may not be in force (see GET /v1/cluster/members)");
        }
        catch (NodeStoppedException e)
        {
            ctx.Response.Headers[ErrorCodes.Header] = ErrorCodes.Stopped;
            await RrmqEndpoints.WriteError(ctx, StatusCodes.Status503ServiceUnavailable, e.Message);
        }
    }

    private static Task WriteChangeRefusal(HttpContext ctx, QueueNode node, MembershipChangeException e)
    {
        var message = Translate(e.Message);
        if (e.OutcomeUnknown)
        {
            ctx.Response.Headers[ErrorCodes.Header] = ErrorCodes.OutcomeUnknown;
            return RrmqEndpoints.WriteError(ctx, StatusCodes.Status503ServiceUnavailable, message);
        }
        switch (e.Status)
        {
            case MembershipStatus.NotLeader when e.LeaderHint != 0:
                ctx.Response.Headers[ErrorCodes.Header] = NotLeader;
                return RrmqEndpoints.WriteJson(ctx, StatusCodes.Status409Conflict,
                    new NotLeaderResponse(false, $"node {node.Settings.Index} is not the leader; node {ClusterConfig.IndexOf(e.LeaderHint)} is: ask it",
                        ClusterConfig.IndexOf(e.LeaderHint), node.UrlOf(e.LeaderHint) ?? ""),
                    ClusterJsonContext.Default.NotLeaderResponse);
            case MembershipStatus.NotLeader:
                ctx.Response.Headers[ErrorCodes.Header] = ErrorCodes.NoLeader;
                return RrmqEndpoints.WriteError(ctx, StatusCodes.Status503ServiceUnavailable,
                    $"node {node.Settings.Index} is not the leader and knows of none (an election is under way); retry shortly");
            case MembershipStatus.UnknownMember:
            case MembershipStatus.InvalidId:
                return RrmqEndpoints.WriteError(ctx, StatusCodes.Status404NotFound, message);
            case MembershipStatus.InvalidAddress:
                return RrmqEndpoints.WriteError(ctx, StatusCodes.Status400BadRequest, message);
            default:
                ctx.Response.Headers[ErrorCodes.Header] = e.Status switch
                {
                    MembershipStatus.ChangeInProgress or MembershipStatus.NotCommittedInTerm => ChangeInProgress,
                    MembershipStatus.Transferring => TransferInProgress,
                    MembershipStatus.AlreadyMember => AlreadyMember,
                    MembershipStatus.LastVoter => LastVoter,
                    MembershipStatus.TooManyMembers => TooManyMembers,
                    _ => ChangeInProgress,
                };
                return RrmqEndpoints.WriteError(ctx, StatusCodes.Status409Conflict, message);
        }
    }

    private static async Task<RaftRuntime?> RunningRuntime(HttpContext ctx, QueueNode node)
    {
        if (node.Runtime is { } runtime) return runtime;
        ctx.Response.Headers[ErrorCodes.Header] = ErrorCodes.NoLeader;
        await RrmqEndpoints.WriteError(ctx, StatusCodes.Status503ServiceUnavailable, "the node is starting: its storage is not recovered yet");
        return null;
    }

    private static IEnumerable<ulong> Members(ClusterConfiguration c) => c.Voters.Concat(c.Learners);

    private static bool SameEndpoint(NodeAddress a, NodeAddress b) =>
        string.Equals(a.Ip, b.Ip, StringComparison.OrdinalIgnoreCase) && (a.Port == b.Port || a.InternalPort == b.InternalPort);

    /// <summary>
    /// Writes the members of <paramref name="configuration"/>; <paramref name="state"/>, when known, says whether it is
    /// committed and the log index of its entry (null when the entry predates the node's log: its snapshot's or the
    /// initial configuration, committed).
    /// </summary>
    private static Task WriteMembers(
        HttpContext ctx, QueueNode node, int status, ClusterConfiguration configuration, ulong leader, string? error, ulong? subject = null,
        (bool Committed, ulong? Index)? state = null)
    {
        var members = Members(configuration).Order().Select(id =>
        {
            var a = node.Members.AddressOf(id);
            return new MemberBody(ClusterConfig.IndexOf(id), configuration.IsVoter(id) ? "voter" : "learner", a?.Url ?? "", a?.InternalPort ?? 0);
        }).ToList();
        return RrmqEndpoints.WriteJson(ctx, status,
            new MembersResponse(error is null, error, subject is { } s ? ClusterConfig.IndexOf(s) : null, node.ClusterId,
                leader == 0 ? null : ClusterConfig.IndexOf(leader), leader == 0 ? null : node.UrlOf(leader), state?.Committed, state?.Index, members),
            MembersJsonContext.Default.MembersResponse);
    }

    /// <summary>
    /// Reads <c>{"url": "http://HOST:PORT", "peer_port": n, "node": n}</c> (the last two optional, null meaning absent;
    /// no other field, none twice; the URL as <see cref="NodeUrl"/> takes it, in this cluster's scheme); returns what
    /// is wrong, or null.
    /// </summary>
    private static string? ParseAddMember(byte[] body, out NodeAddress? address, out int? number)
    {
        address = null;
        number = null;
        Uri? url = null;
        int? peerPort = null, node = null;
        var example = $"like {NodeHttp.Scheme}://10.0.0.4:8567";
        var error = GroupEndpoints.Fields(body, (name, value) => name switch
        {
            "url" when value.ValueKind != JsonValueKind.String => $"field \"url\" must be a string, the new node's HTTP address {example}",
            "url" => NodeUrl.Parse(value.GetString()!, out var parsed) is { } why
                ? $"field \"url\" must be the new node's HTTP address {example}, with the port and nothing else: {why}"
                : parsed.Scheme != NodeHttp.Scheme
                    ? $"field \"url\" must be an {NodeHttp.Scheme}:// address: this cluster {(NodeHttp.Scheme == "https" ? "runs with TLS" : "runs without TLS")}, not '{value.GetString()}'"
                    : GroupEndpoints.Set(out url, parsed),
            "peer_port" => OptionalInt(value, name, 1, 65535, "a port (1-65535)", out peerPort),
            "node" => OptionalInt(value, name, 0, 1_000_000, "a node number from 0", out node),
            _ => $"unknown field \"{name}\" (the body takes \"url\", \"peer_port\" and \"node\")",
        });
        if (error is not null) return error;
        if (url is null) return $"field \"url\" (the new node's HTTP address, {example}) is required";
        var peer = peerPort ?? url.Port + ClusterConfig.DefaultInternalPortOffset;
        if (peer is < 1 or > 65535 || peer == url.Port) return $"field \"peer_port\" must be a port (1-65535) other than the HTTP port, not {peer}";
        var candidate = new NodeAddress(NodeUrl.Host(url), url.Port, peer, true);
        if (MemberAddress.Encode(candidate).Length > ClusterConfiguration.MaxAddressBytes) return "the address is too long";
        address = candidate;
        number = node;
        return null;
    }

    private static string? OptionalInt(JsonElement value, string name, int min, int max, string what, out int? result)
    {
        result = null;
        if (value.ValueKind == JsonValueKind.Null) return null;
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt32(out var n) || n < min || n > max)
            return $"field \"{name}\" must be {what}, not {value.GetRawText()}";
        result = n;
        return null;
    }
}

/// <summary>Body of <c>POST /v1/cluster/members</c>: the new node's HTTP address, its peer port (default port + 1000) and the number it asks for.</summary>
public sealed record AddMemberBody(
    [property: JsonPropertyName("url")] string? Url,
    [property: JsonPropertyName("peer_port")] int? PeerPort,
    [property: JsonPropertyName("node")] int? Node);

/// <summary>One member: its number, "voter" or "learner", its HTTP address and its peer port.</summary>
public sealed record MemberBody(
    [property: JsonPropertyName("node")] int Node,
    [property: JsonPropertyName("role")] string Role,
    [property: JsonPropertyName("url")] string Url,
    [property: JsonPropertyName("peer_port")] int PeerPort);

/// <summary>
/// The members' answer: the node a change concerned (<c>node</c>), the cluster id, the leader, whether the configuration
/// listed is committed and its entry's log index (left out where unknown), and every member; on a
/// <c>409 already-member</c> too, with <c>error</c> (and without <c>committed</c>).
/// </summary>
public sealed record MembersResponse(
    [property: JsonPropertyName("success")] bool Success,
    [property: JsonPropertyName("error")] string? Error,
    [property: JsonPropertyName("node")] int? Node,
    [property: JsonPropertyName("cluster_id")] string? ClusterId,
    [property: JsonPropertyName("leader")] int? Leader,
    [property: JsonPropertyName("leader_url")] string? LeaderUrl,
    [property: JsonPropertyName("committed")] bool? Committed,
    [property: JsonPropertyName("configuration_index")] ulong? ConfigurationIndex,
    [property: JsonPropertyName("members")] IReadOnlyList<MemberBody>? Members);

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(AddMemberBody))]
[JsonSerializable(typeof(MembersResponse))]
internal sealed partial class MembersJsonContext : JsonSerializerContext;

using System.Net;
using System.Text.Json;
using System.Text.Json.Serialization;
using RaftMQ.Queue;
using RaftMQ.Raft;

namespace RaftMQ.Server;

/// <summary>
/// The web console at <c>/ui</c>: a page of plain HTML, JavaScript and CSS embedded in the node's assembly (no CDN, no
/// build step), and <c>GET /v1/cluster/overview</c>, which it polls: every member as this node sees it — its own
/// state directly, each peer's from the peer's <c>GET /v1/metrics</c> asked with a short timeout
/// (<see cref="PeerTimeout"/>), so a node that is down shows as down within a poll or two — and the topics' counters.
/// </summary>
public static class WebConsole
{
    public const string Path = "/ui";
    public const string OverviewPath = "/v1/cluster/overview";

    /// <summary>How long the overview waits for a peer's answer before calling it down.</summary>
    public static readonly TimeSpan PeerTimeout = TimeSpan.FromMilliseconds(600);

    /// <summary>The console's files: name, embedded resource, content type.</summary>
    private static readonly Dictionary<string, (string Resource, string ContentType)> Files = new(StringComparer.Ordinal)
    {
        ["index.html"] = ("RaftMQ.Server.Console.index.html", "text/html; charset=utf-8"),
        ["console.js"] = ("RaftMQ.Server.Console.console.js", "text/javascript; charset=utf-8"),
        ["console.css"] = ("RaftMQ.Server.Console.console.css", "text/css; charset=utf-8"),
    };

    /// <summary>Registers the client the overview asks the peers with.</summary>
    public static void AddTo(WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddSingleton(_ => new PeerClient());
    }

    public static void Map(WebApplication app, QueueNode node)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.MapGet(Path, ctx => ServeFile(ctx, "index.html"));
        app.MapGet(Path + "/{file}", ctx => ServeFile(ctx, (string)ctx.Request.RouteValues["file"]!));
        app.MapGet(OverviewPath, ctx => OverviewAsync(ctx, node));
    }

    private static async Task ServeFile(HttpContext ctx, string name)
    {
        if (!Files.TryGetValue(name, out var file))
        {
            ctx.Response.StatusCode = StatusCodes.Status404NotFound;
            return;
        }
        await using var stream = typeof(WebConsole).Assembly.GetManifestResourceStream(file.Resource)
            ?? throw new InvalidOperationException($"the console file {file.Resource} is not embedded");
        ctx.Response.ContentType = file.ContentType;
        ctx.Response.Headers.CacheControl = "no-cache";
        ctx.Response.ContentLength = stream.Length;
        await stream.CopyToAsync(ctx.Response.Body, ctx.RequestAborted);
    }

    private static async Task OverviewAsync(HttpContext ctx, QueueNode node)
    {
        var peers = ctx.RequestServices.GetRequiredService<PeerClient>();
        // The members of the configuration in force, in node order (a member added at run time included).
        var myId = node.Identity.NodeId;
        var me = ClusterConfig.IndexOf(myId);
        var members = await Task.WhenAll(node.Members.Addresses.OrderBy(m => m.Key).Select(m => m.Key == myId
            ? Task.FromResult(Local(node, ClusterConfig.IndexOf(m.Key), m.Value))
            : peers.AskAsync(ClusterConfig.IndexOf(m.Key), m.Value, ctx.Request.Headers.Authorization.ToString(), ctx.RequestAborted)));
        // Lag: entries of the leader's log a member does not hold, as far as the answers tell.
        var leader = members.Where(m => m.Up && m.Role == nameof(Role.Leader)).MaxBy(m => m.Term);
        if (leader is not null)
        {
            foreach (var m in members)
            {
                if (m.Up) m.Lag = (long)leader.LastIndex - (long)Math.Min(m.LastIndex, leader.LastIndex);
            }
        }
        // A dead-letter topic is shown with its source topic's groups, not as a topic of its own.
        var topics = node.StateMachine.TopicCounters().Where(t => !DeadLetters.IsDeadLetterTopic(t.Topic))
            .Select(t => new TopicOverview(t.Topic, t.Ready, t.ReadyBytes, t.Published, t.Consumed)).ToList();
        var overview = new ClusterOverview(me, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), members, topics);
        ctx.Response.Headers.CacheControl = "no-store";
        await RrmqEndpoints.WriteJson(ctx, StatusCodes.Status200OK, overview, ConsoleJsonContext.Default.ClusterOverview);
    }

    private static MemberOverview Local(QueueNode node, int index, NodeAddress address)
    {
        var s = node.Runtime?.Status;
        return new MemberOverview(index, address.Url)
        {
            Up = true,
            Role = s?.Role is { } role ? RoleName(role) : "Starting",
            Term = s?.Term ?? 0,
            Leader = s is { Leader: > 0 } ? ClusterConfig.IndexOf(s.Leader) : null,
            CommitIndex = s?.CommitIndex ?? 0,
            AppliedIndex = s?.AppliedIndex ?? 0,
            LastIndex = s?.LastIndex ?? 0,
        };
    }

    /// <summary>A role as the RRMQ status names it (a pre-candidate is a candidate).</summary>
    private static string RoleName(Role role) => role is Role.PreCandidate ? nameof(Role.Candidate) : role.ToString();

    /// <summary>Asks peers for their <c>/v1/metrics</c>; one pooled client, bounded by <see cref="PeerTimeout"/> per request.</summary>
    internal sealed class PeerClient : IDisposable
    {
        private readonly HttpClient _http = new(new SocketsHttpHandler
        {
            ConnectTimeout = PeerTimeout,
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30),
            MaxConnectionsPerServer = 4,
            SslOptions = NodeHttp.ClientOptions() ?? new(),
        })
        {
            Timeout = PeerTimeout,
            MaxResponseContentBufferSize = 64 * 1024,
        };

        /// <summary>
        /// Asks one peer; <paramref name="authorization"/> is the console's own Authorization header, passed on so that
        /// with <c>--auth-file</c> (the same keys on every node) the peer answers the key that asked this node.
        /// </summary>
        public async Task<MemberOverview> AskAsync(int index, NodeAddress address, string authorization, CancellationToken aborted)
        {
            var url = address.Url;
            try
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, url + "/v1/metrics");
                if (authorization.Length > 0) request.Headers.TryAddWithoutValidation("Authorization", authorization);
                using var answer = await _http.SendAsync(request, aborted).ConfigureAwait(false);
                if (answer.StatusCode != HttpStatusCode.OK) return new MemberOverview(index, url) { Error = $"HTTP {(int)answer.StatusCode}" };
                using var json = JsonDocument.Parse(await answer.Content.ReadAsByteArrayAsync(aborted).ConfigureAwait(false));
                var m = json.RootElement;
                return new MemberOverview(index, url)
                {
                    Up = true,
                    Role = m.GetProperty("role").GetString(),
                    Term = m.GetProperty("term").GetUInt64(),
                    Leader = m.GetProperty("leader").ValueKind == JsonValueKind.Number ? m.GetProperty("leader").GetInt32() : null,
                    CommitIndex = m.GetProperty("commit_index").GetUInt64(),
                    AppliedIndex = m.GetProperty("applied_index").GetUInt64(),
                    LastIndex = m.GetProperty("last_index").GetUInt64(),
                };
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
            {
                return new MemberOverview(index, url) { Error = e is TaskCanceledException ? $"no answer within {PeerTimeout.TotalMilliseconds} ms" : e.Message };
            }
        }

        public void Dispose() => _http.Dispose();
    }
}

/// <summary>The answer of <c>GET /v1/cluster/overview</c>.</summary>
public sealed record ClusterOverview(int Node, long TimeMs, IReadOnlyList<MemberOverview> Members, IReadOnlyList<TopicOverview> Topics);

/// <summary>One member as the serving node sees it; <see cref="Up"/> false with <see cref="Error"/> when it did not answer.</summary>
public sealed record MemberOverview(int Node, string Url)
{
    public bool Up { get; init; }

    public string? Role { get; init; }

    public ulong Term { get; init; }

    public int? Leader { get; init; }

    public ulong CommitIndex { get; init; }

    public ulong AppliedIndex { get; init; }

    public ulong LastIndex { get; init; }

    /// <summary>Entries of the leader's log this member does not hold (null when no leader answered).</summary>
    public long? Lag { get; set; }

    public string? Error { get; init; }
}

/// <summary>One topic's counters on the serving node.</summary>
public sealed record TopicOverview(string Topic, long Ready, long ReadyBytes, long Published, long Consumed);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(ClusterOverview))]
internal sealed partial class ConsoleJsonContext : JsonSerializerContext;

namespace RaftMQ.Server;

/// <summary>What a request needs from the client's key.</summary>
public enum AccessNeed
{
    /// <summary>Nothing: health, status and the console's static files.</summary>
    Open,

    /// <summary>Any valid key: node-wide reads (metrics, members, the overview, the OpenAPI document, the topic list).</summary>
    Authenticated,

    /// <summary>The permission on the topic named in the path.</summary>
    Topic,

    /// <summary>The permission on the topic named in the body: the endpoint checks it once it has read the body.</summary>
    BodyTopic,

    /// <summary>The permission on every topic (a grant on <c>*</c>): cluster membership and leadership.</summary>
    Cluster,
}

/// <summary>
/// What one request needs: <see cref="Need"/>, the <see cref="Permission"/> (with <see cref="AnyOf"/>: any one of
/// its flags), the <see cref="TopicName"/> of the path, and whether it is an RRMQ endpoint (open unless
/// <c>--auth-rrmq</c>). The topic is unescaped as the endpoints unescape it; should that ever fail, it is null, which
/// asks for the permission on every topic.
/// </summary>
public readonly record struct AccessRule(AccessNeed Need, ClientPermission Permission = ClientPermission.None, string? TopicName = null, bool Rrmq = false, bool AnyOf = false);

/// <summary>
/// Maps every endpoint (method and path) to the permission it needs, before routing, from the raw request target the
/// endpoints themselves read the topic from. Literal parts compare case-insensitively and a trailing slash is
/// ignored, as routing does. Anything not listed here needs admin on every topic, so a path this table does not
/// know can never reach an endpoint with less. The table is docs/rest-api.md's "Permissions".
/// </summary>
public static class AccessPolicy
{
    private const StringComparison Ci = StringComparison.OrdinalIgnoreCase;
    private static readonly AccessRule Strictest = new(AccessNeed.Cluster, ClientPermission.Admin);
    private static readonly AccessRule Open = new(AccessNeed.Open);
    private static readonly AccessRule Authenticated = new(AccessNeed.Authenticated);

    /// <summary>The rule of a request; <paramref name="rawTarget"/> is the target as sent (escapes intact, query allowed).</summary>
    public static AccessRule Classify(string method, string rawTarget)
    {
        ArgumentNullException.ThrowIfNull(method);
        ArgumentNullException.ThrowIfNull(rawTarget);
        var q = rawTarget.IndexOf('?', StringComparison.Ordinal);
        var path = q >= 0 ? rawTarget[..q] : rawTarget;
        var get = HttpMethods.IsGet(method) || HttpMethods.IsHead(method);
        var post = HttpMethods.IsPost(method);
        var put = HttpMethods.IsPut(method);
        var delete = HttpMethods.IsDelete(method);

        // RRMQ: the catch-all GET /message/<topic> takes the whole rest of the path as the topic, as its endpoint does.
        if (get && path.StartsWith("/message/", Ci))
        {
            var topic = RequestTarget.Unescape(path["/message/".Length..]);
            return new AccessRule(AccessNeed.Topic, ClientPermission.Consume, topic, Rrmq: true);
        }
        var p = path.Length > 1 && path.EndsWith('/') ? path[..^1] : path;
        if (get && (Is(p, "/healthz") || Is(p, "/readyz") || Is(p, "/status") || Is(p, "/") || Is(p, "/v1/status"))) return Open;
        if (get && (Is(p, "/ui") || Is(p, "/ui/index.html") || Is(p, "/ui/console.js") || Is(p, "/ui/console.css"))) return Open;
        if (Is(p, "/topic"))
        {
            if (put) return new AccessRule(AccessNeed.BodyTopic, ClientPermission.Admin, Rrmq: true);
            if (get) return Authenticated with { Rrmq = true };
            return Strictest;
        }
        if (Is(p, "/message") && put) return new AccessRule(AccessNeed.BodyTopic, ClientPermission.Publish, Rrmq: true);
        if (get && (Is(p, "/metrics") || Is(p, "/v1/metrics") || Is(p, "/v1/cluster/overview") || Is(p, "/v1/cluster/members") || Is(p, "/v1/cluster/limits")
            || (p.StartsWith("/openapi/", Ci) && p.IndexOf('/', "/openapi/".Length) < 0)))
            return Authenticated;
        if (post && Is(p, "/v1/messages")) return new AccessRule(AccessNeed.BodyTopic, ClientPermission.Publish);
        if (post && Is(p, "/v1/messages/pop")) return new AccessRule(AccessNeed.BodyTopic, ClientPermission.Consume);
        if (post && (Is(p, "/v1/cluster/members") || Is(p, "/v1/cluster/transfer-leader"))) return Strictest;
        if (delete && p.StartsWith("/v1/cluster/members/", Ci)) return Strictest;
        if (p.StartsWith("/v1/topics/", Ci)) return TopicRule(method, p["/v1/topics/".Length..]);
        return Strictest;
    }

    /// <summary>Whether a request changes state (or consumes): what a page from another origin must not be able to send.</summary>
    public static bool IsStateChanging(string method, string rawTarget)
    {
        ArgumentNullException.ThrowIfNull(method);
        ArgumentNullException.ThrowIfNull(rawTarget);
        if (HttpMethods.IsGet(method) || HttpMethods.IsHead(method)) return rawTarget.StartsWith("/message/", Ci);
        return !HttpMethods.IsOptions(method);
    }

    /// <summary>The rule of <c>/v1/topics/&lt;topic&gt;[/action...]</c> (the topic one escaped segment).</summary>
    private static AccessRule TopicRule(string method, string rest)
    {
        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        // A malformed escape names no topic (RequestTarget.Check refuses the request before routing anyway).
        if (RequestTarget.Unescape(slash < 0 ? rest : rest[..slash]) is not { } topic) return Strictest;
        var action = slash < 0 ? "" : rest[(slash + 1)..];
        var get = HttpMethods.IsGet(method) || HttpMethods.IsHead(method);
        var post = HttpMethods.IsPost(method);
        AccessRule Need(ClientPermission p, bool anyOf = false) => new(AccessNeed.Topic, p, topic, AnyOf: anyOf);
        const ClientPermission any = ClientPermission.Publish | ClientPermission.Consume | ClientPermission.Admin;
        if (action.Length == 0)
        {
            if (get) return Need(any, anyOf: true);
            if (HttpMethods.IsPut(method) || HttpMethods.IsDelete(method)) return Need(ClientPermission.Admin);
            return Strictest;
        }
        if ((HttpMethods.IsPut(method) || HttpMethods.IsDelete(method)) && action.StartsWith("groups/", Ci) && action.IndexOf('/', "groups/".Length) < 0)
            return Need(ClientPermission.Admin);
        var dead = action.StartsWith("dead-letters", Ci) && (action.Length == "dead-letters".Length || action["dead-letters".Length] == '/');
        var verb = dead ? action["dead-letters".Length..].TrimStart('/') : action;
        if (get)
        {
            if (dead && verb.Length == 0) return Need(any, anyOf: true);
            if (Is(verb, "peek")) return Need(ClientPermission.Consume);
            return Strictest;
        }
        if (!post) return Strictest;
        if (!dead && (Is(verb, "messages") || Is(verb, "publish"))) return Need(ClientPermission.Publish);
        if (!dead && Is(verb, "redrive")) return Need(ClientPermission.Admin);
        if ((!dead && Is(verb, "messages/pop")) || Is(verb, "receive") || Is(verb, "ack") || Is(verb, "nack") || Is(verb, "extend"))
            return Need(ClientPermission.Consume);
        return Strictest;
    }

    private static bool Is(string path, string literal) => string.Equals(path, literal, Ci);

}

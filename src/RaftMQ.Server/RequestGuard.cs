using Microsoft.Extensions.Primitives;

namespace RaftMQ.Server;

/// <summary>
/// Who may send what, checked before routing, in this order (docs/security.md, "Client authentication" and
/// "Browsers"): the Host header against <c>--allowed-hosts</c>; a state-changing request's <c>Origin</c> against the
/// request's own host and <c>--allowed-origins</c>; then, with <c>--auth-file</c>, the bearer key against the
/// permission <see cref="AccessPolicy"/> says the endpoint needs. A refusal costs a few header look-ups and, with a
/// key, one SHA-256; nothing of the endpoint runs.
/// </summary>
public sealed class RequestGuard
{
    /// <summary>Where a key that authenticated a body-topic request is left for its endpoint (<see cref="AllowsTopicAsync"/>).</summary>
    private static readonly object KeyItem = new();

    private readonly ApiKeyStore? _keys;
    private readonly bool _authRrmq;
    private readonly HashSet<string>? _origins;
    private readonly HashSet<string>? _hosts;

    /// <param name="keys">The API keys, or null when clients are not authenticated.</param>
    /// <param name="authRrmq">Whether the RRMQ endpoints need a key too (<c>--auth-rrmq</c>).</param>
    /// <param name="allowedOrigins">Origins (<c>scheme://host[:port]</c>) besides the request's own that may send state-changing requests; null: any origin.</param>
    /// <param name="allowedHosts">Host names the node answers to; null: any.</param>
    public RequestGuard(ApiKeyStore? keys, bool authRrmq, IEnumerable<string>? allowedOrigins, IEnumerable<string>? allowedHosts)
    {
        _keys = keys;
        _authRrmq = authRrmq;
        _origins = allowedOrigins?.Select(o => NormalizeOrigin(o) ?? throw new ArgumentException($"'{o}' is not an origin like https://host[:port]", nameof(allowedOrigins)))
            .ToHashSet(StringComparer.Ordinal);
        _hosts = allowedHosts?.Select(NormalizeHost).ToHashSet(StringComparer.OrdinalIgnoreCase);
    }

    /// <summary>The middleware.</summary>
    public Task InvokeAsync(HttpContext ctx, RequestDelegate next)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        ArgumentNullException.ThrowIfNull(next);
        var request = ctx.Request;
        var target = RequestTarget.Of(ctx);
        if (_hosts is not null && !IsHealth(target) && !_hosts.Contains(NormalizeHost(request.Host.Host ?? "")))
        {
            return Refuse(ctx, StatusCodes.Status403Forbidden, ErrorCodes.HostNotAllowed,
                $"this node does not answer to the host name '{request.Host.Host}' (--allowed-hosts)");
        }
        if (_origins is not null && AccessPolicy.IsStateChanging(request.Method, target) && CrossSiteReason(request) is { } why)
            return Refuse(ctx, StatusCodes.Status403Forbidden, ErrorCodes.OriginNotAllowed, why);
        if (_origins is { Count: > 0 } && request.Headers.Origin.Count == 1 && NormalizeOrigin(request.Headers.Origin.ToString()) is { } listed
            && _origins.Contains(listed))
        {
            // A page of a listed origin may read the answers too (CORS); its preflight is answered here, without a key
            // (browsers send none with it): the request itself is checked like any other.
            var headers = ctx.Response.Headers;
            headers.AccessControlAllowOrigin = request.Headers.Origin.ToString();
            headers.Vary = "Origin";
            if (HttpMethods.IsOptions(request.Method) && request.Headers.AccessControlRequestMethod.Count > 0)
            {
                headers.AccessControlAllowMethods = "GET, HEAD, PUT, POST, DELETE";
                headers.AccessControlAllowHeaders = "Authorization, Content-Type";
                headers.AccessControlMaxAge = "600";
                ctx.Response.StatusCode = StatusCodes.Status204NoContent;
                return Task.CompletedTask;
            }
        }
        if (_keys is null) return next(ctx);

        var rule = AccessPolicy.Classify(request.Method, target);
        if (rule.Need == AccessNeed.Open || (rule.Rrmq && !_authRrmq)) return next(ctx);
        var key = Authenticate(request.Headers.Authorization, out var presented);
        if (key is null)
        {
            ctx.Response.Headers.WWWAuthenticate = presented
                ? "Bearer realm=\"raftmq\", error=\"invalid_token\", error_description=\"unknown API key\""
                : "Bearer realm=\"raftmq\"";
            return Refuse(ctx, StatusCodes.Status401Unauthorized, ErrorCodes.Unauthorized, presented
                ? "the API key is not valid (Authorization: Bearer KEY, with a key of the node's --auth-file)"
                : "this endpoint needs an API key: send Authorization: Bearer KEY");
        }
        switch (rule.Need)
        {
            case AccessNeed.Authenticated:
                return next(ctx);
            case AccessNeed.BodyTopic:
                ctx.Items[KeyItem] = key;
                return next(ctx);
            case AccessNeed.Topic when key.Allows(rule.Permission, rule.TopicName, rule.AnyOf):
                return next(ctx);
            case AccessNeed.Cluster when key.Allows(rule.Permission, null):
                return next(ctx);
            default:
                return Forbid(ctx, key, rule.Permission, rule.Need == AccessNeed.Cluster ? null : rule.TopicName, rule.AnyOf);
        }
    }

    /// <summary>
    /// For an endpoint that names its topic in the body: whether the key the guard authenticated (if any) holds
    /// <paramref name="permission"/> on <paramref name="topic"/>; when not, answers 403 and returns false.
    /// </summary>
    public static async Task<bool> AllowsTopicAsync(HttpContext ctx, string topic, ClientPermission permission)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        if (ctx.Items.TryGetValue(KeyItem, out var item) && item is ApiKey key && !key.Allows(permission, topic))
        {
            await Forbid(ctx, key, permission, topic, anyOf: false);
            return false;
        }
        return true;
    }

    private ApiKey? Authenticate(StringValues header, out bool presented)
    {
        presented = header.Count > 0;
        if (header.Count != 1 || header[0] is not { } value || value.Length > ApiKeySet.MaxKeyLength + 16) return null;
        var v = value.AsSpan().Trim();
        const string scheme = "Bearer ";
        if (!v.StartsWith(scheme, StringComparison.OrdinalIgnoreCase)) return null;
        return _keys!.Current.Authenticate(v[scheme.Length..].Trim());
    }

    private static Task Forbid(HttpContext ctx, ApiKey key, ClientPermission permission, string? topic, bool anyOf)
    {
        var what = anyOf ? "any permission" : Describe(permission);
        var where = topic is null ? "on every topic (a grant on \"*\"), which cluster-wide operations need" : $"on topic \"{topic}\"";
        return Refuse(ctx, StatusCodes.Status403Forbidden, ErrorCodes.Forbidden, $"the API key \"{key.Name}\" lacks {what} {where}");
    }

    private static string Describe(ClientPermission p) =>
        string.Join(" and ", new[] { ClientPermission.Publish, ClientPermission.Consume, ClientPermission.Admin }
            .Where(f => p.HasFlag(f)).Select(f => f.ToString().ToLowerInvariant())) + " permission";

    private static Task Refuse(HttpContext ctx, int status, string code, string error)
    {
        ctx.Response.Headers[ErrorCodes.Header] = code;
        return RrmqEndpoints.WriteError(ctx, status, error);
    }

    /// <summary>Why a state-changing request looks like a browser's from another site, or null when it does not.</summary>
    private string? CrossSiteReason(HttpRequest request)
    {
        var origin = request.Headers.Origin;
        if (origin.Count > 0)
        {
            var text = origin.ToString();
            if (SameOrigin(text, request.Host) || (NormalizeOrigin(text) is { } normal && _origins!.Contains(normal))) return null;
            return $"requests that change state are refused from the origin '{text}': only the node's own pages and the origins of --allowed-origins may send them";
        }
        // A browser that sends no Origin (a navigation, a link prefetch) still says where the request comes from.
        var site = request.Headers["Sec-Fetch-Site"].ToString();
        if (site is "cross-site" or "same-site")
            return $"requests that change state are refused from another site (Sec-Fetch-Site: {site})";
        if (request.Headers["Sec-Purpose"].ToString().Contains("prefetch", StringComparison.OrdinalIgnoreCase)
            || request.Headers["Purpose"].ToString().Contains("prefetch", StringComparison.OrdinalIgnoreCase))
            return "a prefetch must not consume a message";
        return null;
    }

    /// <summary>Whether <paramref name="origin"/> names the host and port the request was sent to (the node's own pages).</summary>
    private static bool SameOrigin(string origin, HostString host)
    {
        if (!Uri.TryCreate(origin, UriKind.Absolute, out var o) || (o.Scheme != Uri.UriSchemeHttp && o.Scheme != Uri.UriSchemeHttps) || !host.HasValue)
            return false;
        return string.Equals(NormalizeHost(o.Host), NormalizeHost(host.Host), StringComparison.OrdinalIgnoreCase)
            && (host.Port ?? (o.Scheme == Uri.UriSchemeHttps ? 443 : 80)) == o.Port;
    }

    /// <summary><c>scheme://host:port</c> in lower case, or null when <paramref name="origin"/> is not an http(s) origin.</summary>
    public static string? NormalizeOrigin(string origin)
    {
        ArgumentNullException.ThrowIfNull(origin);
        if (!Uri.TryCreate(origin, UriKind.Absolute, out var o) || (o.Scheme != Uri.UriSchemeHttp && o.Scheme != Uri.UriSchemeHttps)
            || o.AbsolutePath != "/" || o.Query.Length > 0 || o.Fragment.Length > 0 || o.UserInfo.Length > 0 || origin.EndsWith('/'))
            return null;
        return $"{o.Scheme}://{NormalizeHost(o.Host)}:{o.Port}".ToLowerInvariant();
    }

    private static string NormalizeHost(string host) => host.TrimStart('[').TrimEnd(']').TrimEnd('.');

    private static bool IsHealth(string target) =>
        target.StartsWith(RaftMQ.Hosting.NodeHealth.LivePath, StringComparison.OrdinalIgnoreCase)
        || target.StartsWith(RaftMQ.Hosting.NodeHealth.ReadyPath, StringComparison.OrdinalIgnoreCase);
}

/// <summary>
/// The API keys of <c>--auth-file</c>, reloaded without a restart: the file is looked at every
/// <see cref="PollInterval"/> and read again when its modification time or size changed. A file that cannot be read
/// or parsed leaves the last good keys in force and is logged once per change; it is read again at each look until
/// it parses.
/// </summary>
public sealed class ApiKeyStore
{
    /// <summary>How often the file is looked at.</summary>
    public static readonly TimeSpan PollInterval = TimeSpan.FromSeconds(1);

    private readonly string _path;
    private volatile ApiKeySet _current;
    private (DateTime Modified, long Length) _loadedStamp;
    private string? _lastError;

    private ApiKeyStore(string path, ApiKeySet keys, (DateTime, long) stamp, ILogger logger)
    {
        _path = path;
        _current = keys;
        _loadedStamp = stamp;
        Logger = logger;
    }

    /// <summary>Where reloads and broken files are logged (set once the node's loggers exist).</summary>
    public ILogger Logger { get; set; }

    /// <summary>The keys in force.</summary>
    public ApiKeySet Current => _current;

    /// <summary>Loads the file at start-up; throws <see cref="ApiKeyFileException"/> when it cannot be used.</summary>
    public static ApiKeyStore Open(string path, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(logger);
        var keys = ApiKeySet.Load(path);
        try
        {
            return new ApiKeyStore(path, keys, Stamp(path), logger);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ApiKeyFileException($"auth file {path}: cannot read it: {e.Message}");
        }
    }

    /// <summary>Looks at the file every <see cref="PollInterval"/> until <paramref name="stopping"/>.</summary>
    public async Task WatchAsync(CancellationToken stopping)
    {
        using var timer = new PeriodicTimer(PollInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(stopping).ConfigureAwait(false)) Check();
        }
        catch (OperationCanceledException)
        {
            // The node is stopping.
        }
    }

    /// <summary>Reloads the file if it changed since the keys in force were read (or a failed read is pending).</summary>
    public void Check()
    {
        (DateTime, long) stamp;
        try
        {
            stamp = Stamp(_path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Failed($"auth file {_path}: cannot read it: {e.Message}");
            return;
        }
        if (stamp == _loadedStamp && _lastError is null) return;
        try
        {
            var keys = ApiKeySet.Load(_path);
            _current = keys;
            _loadedStamp = stamp;
            _lastError = null;
            Logger.LogInformation("Reloaded the auth file {Path}: {Count} API keys", _path, keys.Keys.Count);
        }
        catch (ApiKeyFileException e)
        {
            Failed(e.Message);
        }
    }

    private void Failed(string error)
    {
        if (error == _lastError) return;
        _lastError = error;
        Logger.LogError("{Error}; the {Count} API keys read before stay in force until the file is fixed", error, _current.Keys.Count);
    }

    private static (DateTime, long) Stamp(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists) throw new FileNotFoundException("the file does not exist", path);
        return (info.LastWriteTimeUtc, info.Length);
    }
}

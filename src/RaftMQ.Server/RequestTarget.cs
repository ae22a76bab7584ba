using Microsoft.AspNetCore.Http.Features;

namespace RaftMQ.Server;

/// <summary>
/// The request target as the client sent it. Only origin-form (a path, RFC 9112 §3.2.1) is served: a follower
/// forwards a write to the leader with this target, so a target that names a host (absolute-form
/// <c>http://elsewhere/message</c>, authority-form <c>elsewhere:80</c>) must never get that far.
/// </summary>
public static class RequestTarget
{
    /// <summary>The raw target, escapes intact (<c>%2F</c> stays <c>%2F</c>), so a forwarded request names the same topic.</summary>
    public static string Of(HttpContext ctx) =>
        ctx.Features.Get<IHttpRequestFeature>()?.RawTarget ?? ctx.Request.Path.Value ?? "";

    public static bool IsOriginForm(string target) => target.StartsWith('/');

    /// <summary>Middleware that answers 400 to any target that is not a path, before routing; runs on every node.</summary>
    public static Task RefuseUnlessOriginForm(HttpContext ctx, RequestDelegate next) =>
        IsOriginForm(Of(ctx))
            ? next(ctx)
            : RrmqEndpoints.WriteError(ctx, StatusCodes.Status400BadRequest,
                "the request target must be a path starting with '/' (origin-form); absolute-form, authority-form and '*' targets are refused");

    /// <summary>
    /// The URI of <paramref name="pathAndQuery"/> on the node at <paramref name="nodeBase"/>: the node's scheme and
    /// authority, then the path. Never a URI elsewhere, whatever the path holds.
    /// </summary>
    public static Uri OnNode(Uri nodeBase, string pathAndQuery)
    {
        ArgumentNullException.ThrowIfNull(nodeBase);
        if (!IsOriginForm(pathAndQuery)) throw new ArgumentException($"not a path: '{pathAndQuery}'", nameof(pathAndQuery));
        var uri = new Uri(nodeBase.GetLeftPart(UriPartial.Authority) + pathAndQuery, UriKind.Absolute);
        // '/' first means the string above cannot hold another authority; checked anyway, as an invariant.
        if (uri.Scheme != nodeBase.Scheme || uri.Authority != nodeBase.Authority)
            throw new InvalidOperationException($"'{pathAndQuery}' would leave {nodeBase.Authority} for {uri.Authority}");
        return uri;
    }
}

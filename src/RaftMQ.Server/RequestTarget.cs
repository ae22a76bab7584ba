using Microsoft.AspNetCore.Http.Features;

namespace RaftMQ.Server;

/// <summary>
/// The request target as the client sent it. Only origin-form (a path, RFC 9112 §3.2.1) is served: a target that
/// names a host (absolute-form <c>http://elsewhere/message</c>, authority-form <c>elsewhere:80</c>) is refused before
/// routing, so no request can make a node talk to a host the request names.
/// </summary>
public static class RequestTarget
{
    /// <summary>The raw target, escapes intact (<c>%2F</c> stays <c>%2F</c>), so any topic name round-trips.</summary>
    public static string Of(HttpContext ctx) =>
        ctx.Features.Get<IHttpRequestFeature>()?.RawTarget ?? ctx.Request.Path.Value ?? "";

    public static bool IsOriginForm(string target) => target.StartsWith('/');

    /// <summary>Middleware that answers 400 to any target that is not a path, before routing; runs on every node.</summary>
    public static Task RefuseUnlessOriginForm(HttpContext ctx, RequestDelegate next) =>
        IsOriginForm(Of(ctx))
            ? next(ctx)
            : RrmqEndpoints.WriteError(ctx, StatusCodes.Status400BadRequest,
                "the request target must be a path starting with '/' (origin-form); absolute-form, authority-form and '*' targets are refused");
}

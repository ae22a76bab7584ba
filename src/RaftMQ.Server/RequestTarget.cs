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

    /// <summary>
    /// Middleware, before routing, on every node: answers 400 to a target that is not a path, to a path segment that
    /// is not a valid escape (a <c>%</c> not followed by two hex digits, or bytes that are not UTF-8), and to a
    /// <c>.</c> or <c>..</c> segment, escaped or not. The server would otherwise resolve <c>/v1/topics/%2e%2e/messages</c>
    /// to <c>/v1/messages</c>, another endpoint than the one the client named.
    /// </summary>
    public static Task Check(HttpContext ctx, RequestDelegate next) =>
        Problem(Of(ctx)) is { } error ? RrmqEndpoints.WriteError(ctx, StatusCodes.Status400BadRequest, error) : next(ctx);

    /// <summary>What is wrong with <paramref name="target"/> (see <see cref="Check"/>), or null.</summary>
    public static string? Problem(string target)
    {
        if (!IsOriginForm(target))
            return "the request target must be a path starting with '/' (origin-form); absolute-form, authority-form and '*' targets are refused";
        var q = target.IndexOf('?', StringComparison.Ordinal);
        var path = q >= 0 ? target[..q] : target;
        foreach (var segment in path[1..].Split('/'))
        {
            var text = Unescape(segment);
            if (text is null) return "a path segment is not a valid URL escape ('%' must start two hex digits, and the bytes must be UTF-8)";
            if (text is "." or "..") return "a path segment is \".\" or \"..\" (escaped or not): topic and group names may not be either";
        }
        return null;
    }

    private static readonly System.Text.UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>
    /// One path segment, percent-decoded strictly: null when a <c>%</c> is not followed by two hex digits or the
    /// decoded bytes are not UTF-8 (<see cref="Uri.UnescapeDataString(string)"/> would keep such text as it is).
    /// </summary>
    public static string? Unescape(string segment)
    {
        if (!segment.Contains('%', StringComparison.Ordinal)) return segment;
        var bytes = new byte[System.Text.Encoding.UTF8.GetByteCount(segment)];
        var n = 0;
        for (var i = 0; i < segment.Length; i++)
        {
            var c = segment[i];
            if (c == '%')
            {
                if (i + 2 >= segment.Length || !char.IsAsciiHexDigit(segment[i + 1]) || !char.IsAsciiHexDigit(segment[i + 2])) return null;
                bytes[n++] = byte.Parse(segment.AsSpan(i + 1, 2), System.Globalization.NumberStyles.AllowHexSpecifier, System.Globalization.CultureInfo.InvariantCulture);
                i += 2;
            }
            else
            {
                n += System.Text.Encoding.UTF8.GetBytes(segment.AsSpan(i, char.IsHighSurrogate(c) && i + 1 < segment.Length ? 2 : 1), bytes.AsSpan(n));
                if (char.IsHighSurrogate(c) && i + 1 < segment.Length) i++;
            }
        }
        try
        {
            return StrictUtf8.GetString(bytes, 0, n);
        }
        catch (ArgumentException)
        {
            return null; // DecoderFallbackException: not UTF-8
        }
    }

    /// <summary>
    /// Middleware, after routing: a request that no endpoint answered (404, no such path; 405, a path served for
    /// other methods) gets a JSON reason like every other error, instead of an empty body.
    /// </summary>
    public static async Task AnswerUnrouted(HttpContext ctx, RequestDelegate next)
    {
        await next(ctx);
        if (ctx.Response.HasStarted) return;
        var request = $"{ctx.Request.Method} {ctx.Request.Path}";
        if (ctx.Response.StatusCode == StatusCodes.Status404NotFound)
            await RrmqEndpoints.WriteError(ctx, StatusCodes.Status404NotFound, $"no such endpoint: {request} (docs/rest-api.md lists them)");
        else if (ctx.Response.StatusCode == StatusCodes.Status405MethodNotAllowed)
            await RrmqEndpoints.WriteError(ctx, StatusCodes.Status405MethodNotAllowed, $"method not allowed: {request} (docs/rest-api.md lists the methods of each path)");
    }
}

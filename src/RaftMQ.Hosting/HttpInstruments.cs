using System.Diagnostics;
using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace RaftMQ.Hosting;

/// <summary>
/// Every HTTP request a node answers, counted by route template (not by path: one series per endpoint, whatever the
/// topic names), method and status code, on the meter <see cref="MeterName"/>. Added to the app's pipeline with
/// <see cref="Middleware"/>, before routing: the endpoint routing chose is read once the request is done.
/// </summary>
public sealed class HttpInstruments : IDisposable
{
    /// <summary>The meter the HTTP instruments are on.</summary>
    public const string MeterName = "RaftMQ.Http";

    /// <summary>The route label of a request that matched no endpoint (a 404 or 405 from routing).</summary>
    public const string UnmatchedRoute = "unmatched";

    private readonly Meter _meter = new(MeterName);
    private readonly Counter<long> _requests;

    /// <summary>The meter these instruments are on (one per instance).</summary>
    public Meter Meter => _meter;
    private readonly Histogram<double> _duration;

    public HttpInstruments()
    {
        _requests = _meter.CreateCounter<long>("raftmq.http.requests", "{request}", "HTTP requests answered, by route template, method and status code");
        _duration = _meter.CreateHistogram("raftmq.http.request.duration", "s", "Time from a request's start to its handler's end, by route template",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] });
    }

    /// <summary>The middleware: runs the rest of the pipeline, then counts the request.</summary>
    public async Task Middleware(HttpContext context, RequestDelegate next)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(next);
        var start = Stopwatch.GetTimestamp();
        try
        {
            await next(context).ConfigureAwait(false);
        }
        finally
        {
            var route = (context.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText ?? UnmatchedRoute;
            var tags = new TagList
            {
                { "route", route },
                { "method", KnownMethod(context.Request.Method) },
                { "status", context.Response.StatusCode },
            };
            _requests.Add(1, tags);
            _duration.Record(Stopwatch.GetElapsedTime(start).TotalSeconds, new KeyValuePair<string, object?>("route", route));
        }
    }

    public void Dispose() => _meter.Dispose();

    /// <summary>The method as a label: one of HTTP's own, else "other" (a client's invented methods add no series).</summary>
    private static string KnownMethod(string method) =>
        HttpMethods.IsGet(method) ? HttpMethods.Get
        : HttpMethods.IsPut(method) ? HttpMethods.Put
        : HttpMethods.IsPost(method) ? HttpMethods.Post
        : HttpMethods.IsDelete(method) ? HttpMethods.Delete
        : HttpMethods.IsHead(method) ? HttpMethods.Head
        : HttpMethods.IsPatch(method) ? HttpMethods.Patch
        : HttpMethods.IsOptions(method) ? HttpMethods.Options
        : "other";
}

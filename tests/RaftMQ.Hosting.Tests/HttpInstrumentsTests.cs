using System.Diagnostics.Metrics;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace RaftMQ.Hosting.Tests;

/// <summary>HTTP requests counted by route template, method and status through the middleware, over real Kestrel.</summary>
public sealed class HttpInstrumentsTests
{
    [Fact]
    public async Task Requests_are_counted_by_route_template_method_and_status_never_by_path()
    {
        using var instruments = new HttpInstruments();
        var seen = new List<(long Value, Dictionary<string, object?> Tags)>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            // Only this instance's meter: other tests' apps may count requests at the same time.
            if (instrument.Meter == instruments.Meter && instrument.Name == "raftmq.http.requests") l.EnableMeasurementEvents(instrument);
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            lock (seen) seen.Add((value, tags.ToArray().ToDictionary(t => t.Key, t => t.Value)));
        });
        listener.Start();

        await using var app = NodeWebApplication.CreateBuilder(new IPEndPoint(IPAddress.Loopback, 0), LogLevel.Warning, 1024).Build();
        app.Use(instruments.Middleware);
        app.UseRouting();
        app.MapGet("/message/{**topic}", (HttpContext ctx) => { ctx.Response.StatusCode = 404; return Task.CompletedTask; });
        await app.StartAsync();
        var url = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        using var http = new HttpClient { BaseAddress = new Uri(url) };
        (await http.GetAsync("/message/a")).StatusCode.ShouldBe(HttpStatusCode.NotFound);
        (await http.GetAsync("/message/b/c")).StatusCode.ShouldBe(HttpStatusCode.NotFound);
        (await http.GetAsync("/nowhere")).StatusCode.ShouldBe(HttpStatusCode.NotFound);
        (await http.SendAsync(new HttpRequestMessage(new HttpMethod("BREW"), "/message/a"))).StatusCode.ShouldBe(HttpStatusCode.MethodNotAllowed);
        await app.StopAsync();

        lock (seen)
        {
            seen.Count.ShouldBe(4);
            seen.Count(s => (string?)s.Tags["route"] == "/message/{**topic}" && (string?)s.Tags["method"] == "GET" && (int?)s.Tags["status"] == 404).ShouldBe(2);
            seen.Count(s => (string?)s.Tags["route"] == HttpInstruments.UnmatchedRoute && (string?)s.Tags["method"] == "GET").ShouldBe(1);
            seen.Count(s => (string?)s.Tags["method"] == "other" && (int?)s.Tags["status"] == 405).ShouldBe(1, "an invented method adds no series of its own");
        }
    }
}

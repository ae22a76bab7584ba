using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;
using RaftMQ.Runtime.Hosting;

namespace RaftMQ.Runtime.Tests;

public sealed class NodeWebApplicationTests
{
    private static WebApplication BuildApp() =>
        NodeWebApplication.CreateBuilder(new IPEndPoint(IPAddress.Loopback, 0), LogLevel.Warning, 1024).Build();

    [Fact]
    public async Task WarmUp_runs_the_matching_handler_once_in_process()
    {
        await using var app = BuildApp();
        var calls = new List<string>();
        void Map(IEndpointRouteBuilder e)
        {
            e.MapGet("/status", (HttpContext ctx) => { calls.Add("GET /status"); return ctx.Response.WriteAsync("ok"); });
            e.MapPut("/status", (HttpContext ctx) => { calls.Add("PUT /status"); return Task.CompletedTask; });
            e.MapGet("/other", (HttpContext ctx) => { calls.Add("GET /other"); return Task.CompletedTask; });
        }

        await NodeWebApplication.WarmUpAsync(app, Map, "GET", "/status");

        calls.ShouldBe(["GET /status"]);
    }

    [Fact]
    public async Task WarmUp_swallows_a_failing_handler()
    {
        await using var app = BuildApp();
        var ran = false;

        await NodeWebApplication.WarmUpAsync(
            app, e => e.MapGet("/status", (HttpContext _) => { ran = true; throw new InvalidOperationException("boom"); }), "GET", "/status");

        ran.ShouldBeTrue();
    }
}

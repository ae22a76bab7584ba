using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;

namespace RaftMQ.Hosting.Tests;

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

public sealed class NodeLogFormatterTests
{
    private static string Format(LogLevel level, string category, int eventId, string message, Exception? exception)
    {
        var writer = new StringWriter();
        var entry = new Microsoft.Extensions.Logging.Abstractions.LogEntry<string>(level, category, new EventId(eventId), message, exception, (s, _) => s);
        new NodeLogFormatter().Write(entry, null, writer);
        return writer.ToString();
    }

    [Fact]
    public void Writes_one_line_per_event_in_the_simple_console_layout()
    {
        var line = Format(LogLevel.Information, "RaftMQ.Node", 4, "Node 1 started", null);

        line.ShouldMatch(@"^\d\d:\d\d:\d\d\.\d\d\d info: RaftMQ\.Node\[4\] Node 1 started" + Environment.NewLine + "$");
    }

    [Fact]
    public void Keeps_a_multi_line_message_and_its_exception_on_the_same_line()
    {
        Exception error;
        try
        {
            throw new IOException("disk gone");
        }
        catch (IOException e)
        {
            error = e;
        }

        var line = Format(LogLevel.Critical, "RaftMQ.Node", 0, "could not start:" + Environment.NewLine + "details", error);

        line.ShouldContain(" crit: RaftMQ.Node[0] could not start: details System.IO.IOException: disk gone");
        line.IndexOf(Environment.NewLine, StringComparison.Ordinal).ShouldBe(line.Length - Environment.NewLine.Length);
    }

    [Fact]
    public void Logger_factory_keeps_framework_messages_to_warnings()
    {
        using var loggers = NodeWebApplication.CreateLoggerFactory(LogLevel.Debug);

        loggers.CreateLogger("Microsoft.AspNetCore.Hosting").IsEnabled(LogLevel.Information).ShouldBeFalse();
        loggers.CreateLogger("Microsoft.AspNetCore.Hosting").IsEnabled(LogLevel.Warning).ShouldBeTrue();
        loggers.CreateLogger("RaftMQ.Node").IsEnabled(LogLevel.Debug).ShouldBeTrue();
        loggers.CreateLogger("RaftMQ.Node").IsEnabled(LogLevel.Trace).ShouldBeFalse();
    }
}

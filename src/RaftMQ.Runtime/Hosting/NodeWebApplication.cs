using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace RaftMQ.Runtime.Hosting;

/// <summary>
/// The ASP.NET Core host a node's HTTP API runs in, set up the way a Raft node needs it: quick to start, quiet,
/// one log line per event, prompt shutdown, and no file watching.
/// </summary>
public static class NodeWebApplication
{
    /// <summary>
    /// A builder listening on <paramref name="listen"/> with a request-body bound, single-line console logs at
    /// <paramref name="logLevel"/> (framework messages from Warning), and a 1 s shutdown grace (a harness sends
    /// SIGTERM and waits only a few seconds).
    /// </summary>
    public static WebApplicationBuilder CreateBuilder(IPEndPoint listen, LogLevel logLevel, long maxRequestBodyBytes)
    {
        ArgumentNullException.ThrowIfNull(listen);
        // Rooted at the binary's directory, with no configuration files: data directories usually live under the
        // working directory, and the host's file watchers would otherwise wake on every write to every node's log.
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        builder.Configuration.Sources.Clear();
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "HH:mm:ss.fff ";
            o.ColorBehavior = LoggerColorBehavior.Disabled;
        });
        builder.Logging.SetMinimumLevel(logLevel);
        builder.Logging.AddFilter("Microsoft", LogLevel.Warning);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(1));
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = maxRequestBodyBytes;
            k.Limits.MaxRequestHeadersTotalSize = 32 * 1024;
            k.Listen(listen);
        });
        return builder;
    }
}

using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace RaftMQ.Hosting;

/// <summary>
/// The ASP.NET Core host a node's HTTP API runs in, set up the way a Raft node needs it: quick to start, quiet,
/// one log line per event, prompt shutdown, and no file watching.
/// </summary>
public static class NodeWebApplication
{
    /// <summary>
    /// How a node writes the JSON of its answers: only what JSON requires is escaped (quotation marks, backslashes,
    /// control characters; characters beyond U+FFFF as the escapes of their UTF-16 pair), all other text is written
    /// as UTF-8 as it is, so that a message published as <c>say "hi" — ¡olé!</c> comes back as that text rather
    /// than with <c>\u0022</c> and <c>\u00E9</c> escapes six bytes each. The characters HTML gives a meaning to are not
    /// escaped either: the node's answers carry <c>X-Content-Type-Options: nosniff</c>, so no browser reads one as a page.
    /// </summary>
    public static readonly System.Text.Json.JsonWriterOptions AnswerJson = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>
    /// Has the socket engine run socket completions on its own thread instead of queueing each to the thread pool
    /// (<c>DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1</c>, unless the environment sets it already). A peer message
    /// read then goes straight on into the node's loop when the loop is idle (<c>RaftRuntime</c>), with no thread
    /// wake-up in between; HTTP requests still reach their handlers on the pool (Kestrel dispatches them). Must run
    /// first in the process, before any socket exists: the engine reads the setting once.
    /// </summary>
    public static void RunSocketCompletionsInline()
    {
        const string Name = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";
        if (Environment.GetEnvironmentVariable(Name) is null) Environment.SetEnvironmentVariable(Name, "1");
    }

    /// <summary>
    /// A builder listening on <paramref name="listen"/> with a request-body bound, single-line console logs at
    /// <paramref name="logLevel"/> (framework messages from Warning), and a 1 s shutdown grace (a harness sends
    /// SIGTERM and waits only a few seconds). With <paramref name="loggers"/> (from <see cref="CreateLoggerFactory"/>)
    /// the app logs through that factory instead, which the caller owns and disposes. Connections are bounded by
    /// <paramref name="connections"/> (the defaults when null), through the app's <see cref="HttpConnectionLimiter"/> service.
    /// With <paramref name="https"/> (a certificate with its private key) the port serves HTTPS only: a plain HTTP request
    /// gets a plain <c>400</c> (<c>X-RaftMQ-Error: tls-required</c>) and is closed (<see cref="PlainHttpRefusal"/>), without a
    /// log line per attempt.
    /// </summary>
    public static WebApplicationBuilder CreateBuilder(
        IPEndPoint listen, LogLevel logLevel, long maxRequestBodyBytes, ILoggerFactory? loggers = null, HttpConnectionLimits? connections = null,
        X509Certificate2? https = null)
    {
        ArgumentNullException.ThrowIfNull(listen);
        connections ??= new HttpConnectionLimits();
        connections.Validate();
        // Rooted at the binary's directory, with no configuration files: data directories usually live under the
        // working directory, and the host's file watchers would otherwise wake on every write to every node's log.
        // The empty builder adds only what is asked for below: a node must answer HTTP within 300 ms of launch.
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        builder.WebHost.UseKestrelCore();
        if (https is not null) builder.WebHost.UseKestrelHttpsConfiguration();
        builder.Services.AddRoutingCore();
        builder.Logging.ClearProviders();
        if (loggers is null) builder.Services.AddSingleton(_ => CreateLoggerFactory(logLevel)); // the container disposes it
        else builder.Services.AddSingleton(loggers);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(1));
        builder.Services.AddSingleton(sp => new HttpConnectionLimiter(connections, sp.GetRequiredService<ILoggerFactory>().CreateLogger("RaftMQ.Http")));
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = maxRequestBodyBytes;
            k.Limits.MaxRequestHeadersTotalSize = 32 * 1024;
            // The connection count is enforced by HttpConnectionLimiter, per address as well as in total, and its
            // refusals are logged at a bounded rate; Kestrel's own limit would log a warning per refused connection.
            k.Limits.MaxConcurrentConnections = null;
            // The API has no upgrade (WebSocket) endpoints.
            k.Limits.MaxConcurrentUpgradedConnections = 0;
            k.Limits.KeepAliveTimeout = connections.IdleTimeout;
            k.Limits.RequestHeadersTimeout = connections.RequestHeadersTimeout;
            // A request body or a response slower than 240 bytes/s after a 5 s grace is cut off (Kestrel's defaults).
            k.Limits.MinRequestBodyDataRate = new MinDataRate(240, TimeSpan.FromSeconds(5));
            k.Limits.MinResponseDataRate = new MinDataRate(240, TimeSpan.FromSeconds(5));
            k.Listen(listen, o =>
            {
                o.Use(next =>
                {
                    // Resolved when Kestrel binds, once the app's services (and so its logging) exist; one per app, for metrics.
                    var limiter = o.ApplicationServices.GetRequiredService<HttpConnectionLimiter>();
                    return connection => limiter.OnConnectionAsync(connection, next);
                });
                // After the connection bound: a refused connection costs no TLS handshake.
                if (https is not null)
                {
                    o.Use(next => connection => PlainHttpRefusal.OnConnectionAsync(connection, next));
                    o.UseHttps(new HttpsConnectionAdapterOptions
                    {
                        ServerCertificate = https,
                        SslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
                        HandshakeTimeout = TimeSpan.FromSeconds(5),
                    });
                }
            });
        });
        return builder;
    }

    /// <summary>
    /// The node's console logging (<see cref="NodeLogFormatter"/> lines on stdout; <paramref name="logLevel"/> and up,
    /// framework messages from Warning) on its own, for a caller that starts logging things (e.g. the Raft host)
    /// before the web host is built; pass it to <see cref="CreateBuilder"/> so both log alike. The caller disposes
    /// it, which flushes the console. <paramref name="format"/> <see cref="LogFormat.Json"/> writes one JSON object per
    /// line instead (<see cref="NodeJsonLogFormatter"/>).
    /// </summary>
    public static ILoggerFactory CreateLoggerFactory(LogLevel logLevel, LogFormat format = LogFormat.Text)
    {
        var filters = new LoggerFilterOptions { MinLevel = logLevel };
        filters.Rules.Add(new LoggerFilterRule(null, "Microsoft", LogLevel.Warning, null));
        // A failed start (a port in use) is reported in one line by the program that started the host; the host's own
        // error line would repeat it with a stack trace.
        filters.Rules.Add(new LoggerFilterRule(null, "Microsoft.Extensions.Hosting.Internal.Host", LogLevel.Critical, null));
        var factory = new LoggerFactory([], filters);
        // Added (not passed to the constructor) so that disposing the factory disposes it, flushing its queue.
        ConsoleFormatter formatter = format == LogFormat.Json ? new NodeJsonLogFormatter() : new NodeLogFormatter();
        factory.AddProvider(new ConsoleLoggerProvider(new NodeLogFormatter.FixedOptions(formatter.Name), [formatter]));
        return factory;
    }

    /// <summary>
    /// Runs one <paramref name="method"/> <paramref name="path"/> request in-process through a private copy of the
    /// app's routing and of the endpoints <paramref name="mapEndpoints"/> maps, answering into nothing. Run it while
    /// the app starts listening: the routing tables, the handler and its JSON code are then loaded and compiled
    /// before the first real request, which otherwise pays for all of it (about 70 ms, docs/benchmarks.md). The
    /// handler really runs, so the request must be a read. A failure is logged, never thrown: it only costs speed.
    /// </summary>
    public static async Task WarmUpAsync(WebApplication app, Action<IEndpointRouteBuilder> mapEndpoints, string method, string path)
    {
        ArgumentNullException.ThrowIfNull(app);
        ArgumentNullException.ThrowIfNull(mapEndpoints);
        try
        {
            // New() leaves out the app's own endpoints: the copy routes only what mapEndpoints maps on it.
            var branch = ((IApplicationBuilder)app).New();
            branch.UseRouting();
            branch.UseEndpoints(mapEndpoints);
            var pipeline = branch.Build();
            var context = new DefaultHttpContext { RequestServices = app.Services };
            context.Request.Method = method;
            context.Request.Path = path;
            context.Response.Body = Stream.Null;
            await pipeline(context).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            app.Logger.LogWarning(e, "Warming up {Method} {Path} failed: {Message}", method, path, e.Message);
        }
    }
}

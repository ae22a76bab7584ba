using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using RaftMQ.Queue;
using RaftMQ.Transport;

namespace RaftMQ.Server;

/// <summary>
/// <c>GET /metrics</c>: the layers' <see cref="System.Diagnostics.Metrics"/> instruments (runtime, transport, queue,
/// HTTP; docs/operations.md lists them) in the Prometheus text format, through OpenTelemetry's Prometheus exporter.
/// The exporter's meter provider is built off the first answer's path (<see cref="StartCollecting"/>, on another
/// core), so a scrape that comes while it is still being built waits for it.
/// </summary>
public static class PrometheusEndpoint
{
    public const string Path = "/metrics";

    /// <summary>The meters a node exports.</summary>
    public static readonly IReadOnlyList<string> Meters =
        [RuntimeInstruments.MeterName, TransportInstruments.MeterName, QueueInstruments.MeterName, HttpInstruments.MeterName];

    /// <summary>Builds the meter provider (it starts listening to the instruments at once); the caller disposes it.</summary>
    public static MeterProvider StartCollecting(int nodeIndex) =>
        Sdk.CreateMeterProviderBuilder()
            .ConfigureResource(r => r.AddService("raftmq-node", serviceInstanceId: nodeIndex.ToString(System.Globalization.CultureInfo.InvariantCulture)))
            .AddMeter([.. Meters])
            // A scrape sees the values of that moment, not a cached copy (the exporter caches for 300 ms by default).
            .AddPrometheusExporter(o => o.ScrapeResponseCacheDurationMilliseconds = 0)
            .Build();

    /// <summary>Maps <see cref="Path"/> to the exporter of the provider <paramref name="provider"/> completes with.</summary>
    public static void Map(IEndpointRouteBuilder app, Task<MeterProvider> provider)
    {
        ArgumentNullException.ThrowIfNull(app);
        ArgumentNullException.ThrowIfNull(provider);
        var exporter = new Lazy<Task<RequestDelegate>>(async () =>
        {
            var branch = app.CreateApplicationBuilder();
            branch.UseOpenTelemetryPrometheusScrapingEndpoint(await provider.ConfigureAwait(false), _ => true, null, null, null);
            return branch.Build();
        });
        app.MapGet(Path, async ctx => await (await exporter.Value)(ctx));
    }
}

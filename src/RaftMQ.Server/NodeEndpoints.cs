using OpenTelemetry.Metrics;

namespace RaftMQ.Server;

/// <summary>
/// Every HTTP endpoint a node serves, registered and mapped in one place: the node's Program and the test that checks
/// the OpenAPI document against the mapped routes use the same lists.
/// </summary>
public static class NodeEndpoints
{
    /// <summary>The services the endpoints need (health checks, the OpenAPI document, the console's peer client).</summary>
    public static void AddServices(WebApplicationBuilder builder, QueueNode node)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(node);
        NodeHealth.AddTo(builder, () => node.Runtime);
        ApiDocument.AddTo(builder);
        WebConsole.AddTo(builder);
    }

    /// <summary>Maps every endpoint; <paramref name="metrics"/> completes with the Prometheus exporter's provider.</summary>
    public static void Map(WebApplication app, QueueNode node, Task<MeterProvider> metrics)
    {
        RrmqEndpoints.Map(app, node);
        V1Endpoints.Map(app, node);
        MessageEndpoints.Map(app, node);
        ClusterEndpoints.Map(app, node);
        NodeHealth.Map(app);
        PrometheusEndpoint.Map(app, metrics);
        ApiDocument.Map(app);
        WebConsole.Map(app, node);
    }
}

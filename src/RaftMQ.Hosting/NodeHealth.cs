using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using RaftMQ.Runtime;

namespace RaftMQ.Hosting;

/// <summary>
/// Health endpoints for monitors and orchestrators, through ASP.NET Core health checks:
/// <c>GET /healthz</c> (liveness: the process serves HTTP; always 200 while it does) and <c>GET /readyz</c>
/// (readiness: the node runs, knows a leader and has applied everything up to the commit index it knows; else 503).
/// Both answer <c>{"status": "Healthy" | "Unhealthy", "reason": str}</c> and never reach the leader.
/// </summary>
public static class NodeHealth
{
    public const string LivePath = "/healthz";
    public const string ReadyPath = "/readyz";
    private const string ReadyTag = "ready";

    /// <summary>Registers the readiness check of the node whose runtime <paramref name="runtime"/> returns (null while it starts).</summary>
    public static void AddTo(WebApplicationBuilder builder, Func<RaftRuntime?> runtime)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(runtime);
        builder.Services.AddHealthChecks().AddCheck("raft", new ReadinessCheck(runtime), tags: [ReadyTag]);
    }

    /// <summary>Maps <see cref="LivePath"/> and <see cref="ReadyPath"/> (after <see cref="AddTo"/>).</summary>
    public static void Map(WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.MapHealthChecks(LivePath, new HealthCheckOptions { Predicate = _ => false, ResponseWriter = WriteAsync });
        app.MapHealthChecks(ReadyPath, new HealthCheckOptions { Predicate = c => c.Tags.Contains(ReadyTag), ResponseWriter = WriteAsync });
    }

    /// <summary>Why a node with status <paramref name="status"/> is not ready, or null when it is.</summary>
    public static string? NotReadyReason(RaftStatus? status) => status switch
    {
        null => "the node is starting",
        { Leader: 0 } => "no leader is known",
        { AppliedIndex: var applied, CommitIndex: var commit } when applied < commit => $"applying: {applied} of {commit} committed entries",
        _ => null,
    };

    private static Task WriteAsync(HttpContext context, HealthReport report)
    {
        context.Response.ContentType = "application/json";
        var reason = report.Entries.Values.Select(e => e.Description).FirstOrDefault(d => d is not null) ?? (report.Entries.Count == 0 ? "serving" : "ready");
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, NodeWebApplication.AnswerJson))
        {
            json.WriteStartObject();
            json.WriteString("status", report.Status.ToString());
            json.WriteString("reason", reason);
            json.WriteEndObject();
        }
        return context.Response.Body.WriteAsync(buffer.ToArray()).AsTask();
    }

    private sealed class ReadinessCheck(Func<RaftRuntime?> runtime) : IHealthCheck
    {
        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
            Task.FromResult(NotReadyReason(runtime()?.Status) is { } reason
                ? new HealthCheckResult(HealthStatus.Unhealthy, reason)
                : HealthCheckResult.Healthy("ready"));
    }
}

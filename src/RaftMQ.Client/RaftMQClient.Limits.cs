using System.Net;

namespace RaftMQ.Client;

/// <summary>
/// The cluster's queue-wide bounds and what they count now (<see cref="RaftMQClient.GetLimitsAsync"/>): at most
/// <paramref name="MaxBytes"/> bytes and <paramref name="MaxMessages"/> messages waiting in all topics, and
/// <paramref name="MaxTopicBytes"/> and <paramref name="MaxTopicMessages"/> in one topic. A message's bytes are its
/// payload, headers and 28 bytes of overhead. <paramref name="Bytes"/> and <paramref name="Messages"/> are what the
/// queue holds against them.
/// </summary>
public sealed record ClusterLimits(long MaxBytes, long MaxMessages, long MaxTopicBytes, long MaxTopicMessages, long Bytes, long Messages);

public sealed partial class RaftMQClient
{
    /// <summary>The queue-wide bounds in force and what they count (<c>GET /v1/cluster/limits</c>), read at a linearizable point.</summary>
    /// <exception cref="ClusterUnavailableException">No leader could be reached in time.</exception>
    public Task<ClusterLimits> GetLimitsAsync(CancellationToken cancellationToken = default) =>
        RunAsync("read the limits", Safety.Read, node => new HttpRequestMessage(HttpMethod.Get, new Uri(node, "/v1/cluster/limits")),
            (status, result) => status == HttpStatusCode.OK ? Limits(result) : throw Rejected(status, result), cancellationToken);

    /// <summary>
    /// Changes the queue-wide bounds (<c>PUT /v1/cluster/limits</c>): each value given, the others kept. Replicated
    /// through the log, so every node applies it from the same point on; lowering a bound below what the queue holds
    /// removes nothing (publishes are refused until consumption brings it below). Retried safely.
    /// </summary>
    /// <returns>The bounds in force after the change.</returns>
    /// <exception cref="RequestRejectedException">A value out of range (400, naming the field), or none given.</exception>
    public Task<ClusterLimits> SetLimitsAsync(
        long? maxBytes = null, long? maxMessages = null, long? maxTopicBytes = null, long? maxTopicMessages = null, CancellationToken cancellationToken = default)
    {
        var body = Json(w =>
        {
            if (maxBytes is { } b) w.WriteNumber("max_bytes", b);
            if (maxMessages is { } m) w.WriteNumber("max_messages", m);
            if (maxTopicBytes is { } tb) w.WriteNumber("max_topic_bytes", tb);
            if (maxTopicMessages is { } tm) w.WriteNumber("max_topic_messages", tm);
        });
        return RunAsync("change the limits", Safety.Idempotent, node => JsonRequest(HttpMethod.Put, node, "/v1/cluster/limits", body),
            (status, result) => status == HttpStatusCode.OK ? Limits(result) : throw Rejected(status, result), cancellationToken);
    }

    private static ClusterLimits Limits(ResultBody? result) => Parse(result, "limits", r => new ClusterLimits(
        Get(r, "max_bytes").GetInt64(), Get(r, "max_messages").GetInt64(), Get(r, "max_topic_bytes").GetInt64(),
        Get(r, "max_topic_messages").GetInt64(), Get(r, "bytes").GetInt64(), r.Messages!.Value.GetInt64()));
}

using System.Text.Json.Serialization;

namespace RaftMQ.Server;

// The RRMQ bodies, field for field: clients compare whole bodies, so nothing may be added to these.
public sealed record SuccessResponse([property: JsonPropertyName("success")] bool Success);

public sealed record TopicsResponse(
    [property: JsonPropertyName("success")] bool Success,
    [property: JsonPropertyName("topics")] IReadOnlyList<string> Topics);

public sealed record MessageResponse(
    [property: JsonPropertyName("success")] bool Success,
    [property: JsonPropertyName("message")] string Message);

public sealed record StatusResponse(
    [property: JsonPropertyName("role")] string Role,
    [property: JsonPropertyName("term")] ulong Term);

/// <summary>Body of a 4xx/5xx that is not part of the RRMQ table: still "success": false, plus why.</summary>
public sealed record ErrorResponse(
    [property: JsonPropertyName("success")] bool Success,
    [property: JsonPropertyName("error")] string Error);

/// <summary>
/// Body of a <c>507</c> with <c>X-RaftMQ-Error: disk-full</c>: the leader's free space and its limit, in bytes. The
/// RRMQ clients see <c>"success": false</c> as for any failure; the rest says why.
/// </summary>
public sealed record DiskFullResponse(
    [property: JsonPropertyName("success")] bool Success,
    [property: JsonPropertyName("error")] string Error,
    [property: JsonPropertyName("free_bytes")] long FreeBytes,
    [property: JsonPropertyName("limit_bytes")] long LimitBytes)
{
    public static DiskFullResponse For(DiskState disk) => new(
        false,
        disk.Node is { } node
            ? $"disk full: node {node} has {disk.FreeBytes / (1024 * 1024)} MB free ({disk.FreeBytes} bytes), below its --disk-free-limit-mb of "
                + $"{disk.LimitBytes / (1024 * 1024)} MB; the cluster refuses publishes and topic creation while any node's disk alarm is on, "
                + "until consumers drain the queue or space is freed there; nothing was applied"
            : $"disk full: the leader has {disk.FreeBytes / (1024 * 1024)} MB free ({disk.FreeBytes} bytes), below its --disk-free-limit-mb of "
        + $"{disk.LimitBytes / (1024 * 1024)} MB; publishes and topic creation are refused until consumers drain the queue or space is freed; nothing was applied",
        disk.FreeBytes,
        disk.LimitBytes);
}

/// <summary>RaftMQ's own node description (GET / and GET /v1/status).</summary>
public sealed record NodeInfoResponse(
    [property: JsonPropertyName("service")] string Service,
    [property: JsonPropertyName("node")] int Node,
    [property: JsonPropertyName("cluster_id")] string ClusterId,
    [property: JsonPropertyName("ready")] bool Ready,
    [property: JsonPropertyName("role")] string Role,
    [property: JsonPropertyName("term")] ulong Term,
    [property: JsonPropertyName("leader")] int? Leader,
    [property: JsonPropertyName("leader_url")] string? LeaderUrl,
    [property: JsonPropertyName("commit_index")] ulong CommitIndex,
    [property: JsonPropertyName("applied_index")] ulong AppliedIndex,
    [property: JsonPropertyName("last_index")] ulong LastIndex);

/// <summary>Body of <c>POST /v1/messages</c>; fields are nullable so a missing one is told apart from a wrong one.</summary>
public sealed record PublishBatchRequest(
    [property: JsonPropertyName("topic")] string? Topic,
    [property: JsonPropertyName("messages")] IReadOnlyList<string?>? Messages);

public sealed record PublishBatchResponse(
    [property: JsonPropertyName("success")] bool Success,
    [property: JsonPropertyName("published")] int Published);

/// <summary>Body of <c>POST /v1/messages/pop</c>; <c>max</c> defaults to 1.</summary>
public sealed record PopBatchRequest(
    [property: JsonPropertyName("topic")] string? Topic,
    [property: JsonPropertyName("max")] int? Max);

public sealed record PopBatchResponse(
    [property: JsonPropertyName("success")] bool Success,
    [property: JsonPropertyName("messages")] IReadOnlyList<string> Messages);

/// <summary>Answer of <c>POST /v1/topics/&lt;topic&gt;/messages</c>: how many were published, and the offset of the first (the rest follow one by one).</summary>
public sealed record PublishMessagesResponse(
    [property: JsonPropertyName("success")] bool Success,
    [property: JsonPropertyName("published")] int Published,
    [property: JsonPropertyName("first_offset")] ulong FirstOffset);

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(PublishMessagesResponse))]
[JsonSerializable(typeof(SuccessResponse))]
[JsonSerializable(typeof(TopicsResponse))]
[JsonSerializable(typeof(MessageResponse))]
[JsonSerializable(typeof(StatusResponse))]
[JsonSerializable(typeof(ErrorResponse))]
[JsonSerializable(typeof(DiskFullResponse))]
[JsonSerializable(typeof(NodeInfoResponse))]
[JsonSerializable(typeof(PublishBatchRequest))]
[JsonSerializable(typeof(PublishBatchResponse))]
[JsonSerializable(typeof(PopBatchRequest))]
[JsonSerializable(typeof(PopBatchResponse))]
internal sealed partial class ServerJsonContext : JsonSerializerContext;

/// <summary>GET /v1/metrics: this node's counters since it started; the two sections are null until the node runs.</summary>
public sealed record MetricsResponse(
    int Node, bool Ready, string Role, ulong Term, int? Leader, ulong CommitIndex, ulong AppliedIndex, ulong LastIndex, bool Quiesced,
    RuntimeMetrics? Runtime, TransportMetrics? Transport, DiskMetrics Disk, HttpMetrics Http);

/// <summary>
/// The HTTP connections (see <c>HttpConnectionLimiter</c>): open now, and closed at accept since start; and the
/// receives waiting now (long polling, at most <c>ServerLimits.MaxWaitingReceives</c>).
/// </summary>
public sealed record HttpMetrics(int OpenConnections, long ConnectionsRefused, int WaitingReceives);

/// <summary>The disk alarm (see <c>DiskAlarm</c>): the file system of the data directory, read at most every 250 ms.</summary>
public sealed record DiskMetrics(bool Alarm, long FreeBytes, long LimitBytes, string DataDirectory);

/// <summary>The node's loop (see <c>RuntimeCounters</c>).</summary>
public sealed record RuntimeMetrics(
    long LoopIterations, long Readies, long LogWrites, long LogSyncs, long EntriesPersisted, long EntriesApplied,
    long MessagesSent, long MessagesHandled, long PeerMessagesDropped, long Proposals, long Reads, long SnapshotsTaken);

/// <summary>The peer transport (see <c>TransportCounters</c>).</summary>
public sealed record TransportMetrics(
    long MessagesSent, long MessagesReceived, long SendQueueDrops, long InboundDrops, long OversizedDrops, long UnknownPeerDrops,
    long UnsupportedDrops, long SpoofedDrops, long OutboundConnects, long InboundAccepts, long AuthFailures, long ProtocolErrors,
    long ConnectionsRefused, IReadOnlyList<int> LinksDown);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(MetricsResponse))]
internal sealed partial class MetricsJsonContext : JsonSerializerContext;

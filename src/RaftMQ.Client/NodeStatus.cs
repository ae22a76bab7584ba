using System.Text.Json.Serialization;

namespace RaftMQ.Client;

/// <summary>One node's view of the cluster, as <c>GET /v1/status</c> reports it.</summary>
/// <param name="Url">The URL the client asked.</param>
/// <param name="Node">The node's index in the cluster configuration (0-based).</param>
/// <param name="ClusterId">Identifier of the cluster the node belongs to.</param>
/// <param name="Ready">Whether the node has finished starting.</param>
/// <param name="Role">Leader, Follower, Candidate, PreCandidate or Starting.</param>
/// <param name="Term">The node's current Raft term.</param>
/// <param name="Leader">Index of the leader the node knows of, if any.</param>
/// <param name="LeaderUrl">URL of that leader, if any.</param>
/// <param name="CommitIndex">Highest log index the node knows to be committed.</param>
/// <param name="AppliedIndex">Highest log index the node has applied to its queue.</param>
/// <param name="LastIndex">Index of the last entry in the node's log.</param>
public sealed record NodeStatus(
    Uri Url, int Node, string ClusterId, bool Ready, string Role, ulong Term, int? Leader, Uri? LeaderUrl,
    ulong CommitIndex, ulong AppliedIndex, ulong LastIndex)
{
    /// <summary>Whether the node says it is the leader.</summary>
    public bool IsLeader => Role == "Leader";
}

/// <summary>The result of asking one node for its status: either <see cref="Status"/> or <see cref="Error"/>.</summary>
/// <param name="Url">The URL asked.</param>
/// <param name="Status">The answer, or null if the node did not answer.</param>
/// <param name="Error">Why the node did not answer, or null.</param>
public sealed record NodeProbe(Uri Url, NodeStatus? Status, string? Error);

/// <summary>The RRMQ status of one node (<c>GET /status</c>).</summary>
/// <param name="Role">Leader, Follower or Candidate.</param>
/// <param name="Term">The node's current Raft term.</param>
public sealed record RoleStatus(string Role, ulong Term);

/// <summary>The outcome of <see cref="RaftMQClient.TransferLeaderAsync"/>: node <paramref name="Leader"/> (an index) leads in <paramref name="Term"/>.</summary>
public sealed record LeadershipTransfer(int Leader, ulong Term);

internal sealed record NodeInfoBody(
    [property: JsonPropertyName("node")] int Node,
    [property: JsonPropertyName("cluster_id")] string? ClusterId,
    [property: JsonPropertyName("ready")] bool Ready,
    [property: JsonPropertyName("role")] string? Role,
    [property: JsonPropertyName("term")] ulong Term,
    [property: JsonPropertyName("leader")] int? Leader,
    [property: JsonPropertyName("leader_url")] string? LeaderUrl,
    [property: JsonPropertyName("commit_index")] ulong CommitIndex,
    [property: JsonPropertyName("applied_index")] ulong AppliedIndex,
    [property: JsonPropertyName("last_index")] ulong LastIndex);

internal sealed record RoleBody(
    [property: JsonPropertyName("role")] string? Role,
    [property: JsonPropertyName("term")] ulong Term);

internal sealed record TopicBody([property: JsonPropertyName("topic")] string Topic);

internal sealed record MessageBody(
    [property: JsonPropertyName("topic")] string Topic,
    [property: JsonPropertyName("message")] string Message);

internal sealed record PublishBatchBody(
    [property: JsonPropertyName("topic")] string Topic,
    [property: JsonPropertyName("messages")] IReadOnlyList<string> Messages);

internal sealed record PopBatchBody(
    [property: JsonPropertyName("topic")] string Topic,
    [property: JsonPropertyName("max")] int Max);

internal sealed record PopMessagesBody([property: JsonPropertyName("max")] int Max);

/// <summary>One member of a cluster: its number, <c>"voter"</c> or <c>"learner"</c>, its HTTP address and its peer port.</summary>
public sealed record ClusterMember(int Node, string Role, Uri? Url, int PeerPort)
{
    /// <summary>Whether it votes (a learner only receives the log until it is promoted).</summary>
    public bool IsVoter => Role == "voter";
}

/// <summary>
/// The members of a cluster (<c>GET /v1/cluster/members</c>, and the answer to a change): the node a change concerned,
/// the cluster's id, the leader, and every member by number. The members are the latest configuration the answering
/// node knows, which it acts on: <see cref="Committed"/> says whether it is committed (null from a node that does not
/// say), <see cref="ConfigurationIndex"/> the log index of its entry (null when none of the node's log holds it: the
/// first configuration, or one behind the node's snapshot, both committed).
/// </summary>
public sealed record ClusterMembers(int? Node, string ClusterId, int? Leader, IReadOnlyList<ClusterMember> Members)
{
    /// <summary>Whether the configuration listed is committed; null when the node did not say.</summary>
    public bool? Committed { get; init; }

    /// <summary>The log index of the configuration's entry; null when no entry of the node's log holds it.</summary>
    public ulong? ConfigurationIndex { get; init; }
}

internal sealed record TransferLeaderBody([property: JsonPropertyName("to")] int? To);

internal sealed record ResultBody(
    [property: JsonPropertyName("success")] bool Success,
    [property: JsonPropertyName("topics")] List<string>? Topics,
    [property: JsonPropertyName("message")] string? Message,
    [property: JsonPropertyName("error")] string? Error,
    [property: JsonPropertyName("published")] int? Published = null,
    [property: JsonPropertyName("messages")] System.Text.Json.JsonElement? Messages = null,
    [property: JsonPropertyName("first_offset")] ulong? FirstOffset = null,
    [property: JsonPropertyName("leader")] int? Leader = null,
    [property: JsonPropertyName("leader_url")] string? LeaderUrl = null,
    [property: JsonPropertyName("term")] ulong? Term = null,
    [property: JsonPropertyName("node")] int? Node = null,
    [property: JsonPropertyName("cluster_id")] string? ClusterId = null,
    [property: JsonPropertyName("members")] List<MemberEntry>? Members = null,
    [property: JsonPropertyName("committed")] bool? Committed = null,
    [property: JsonPropertyName("configuration_index")] ulong? ConfigurationIndex = null)
{
    /// <summary>The answer's other fields (those of the consumer-group endpoints), by name.</summary>
    [JsonExtensionData]
    public Dictionary<string, System.Text.Json.JsonElement>? Extra { get; set; }
}

internal sealed record MemberEntry(
    [property: JsonPropertyName("node")] int Node,
    [property: JsonPropertyName("role")] string? Role,
    [property: JsonPropertyName("url")] string? Url,
    [property: JsonPropertyName("peer_port")] int PeerPort);

internal sealed record AddMemberRequest(
    [property: JsonPropertyName("url")] string Url,
    [property: JsonPropertyName("peer_port")] int? PeerPort,
    [property: JsonPropertyName("node")] int? Node);

[JsonSerializable(typeof(NodeInfoBody))]
[JsonSerializable(typeof(RoleBody))]
[JsonSerializable(typeof(TopicBody))]
[JsonSerializable(typeof(MessageBody))]
[JsonSerializable(typeof(PublishBatchBody))]
[JsonSerializable(typeof(PopBatchBody))]
[JsonSerializable(typeof(ResultBody))]
[JsonSerializable(typeof(PopMessagesBody))]
[JsonSerializable(typeof(TransferLeaderBody))]
[JsonSerializable(typeof(AddMemberRequest))]
internal sealed partial class ClientJson : JsonSerializerContext;

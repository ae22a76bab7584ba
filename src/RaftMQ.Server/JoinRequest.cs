using System.Net;
using System.Text.Json;

namespace RaftMQ.Server;

/// <summary>
/// A new node's request to join a running cluster (<c>raftmq-node --join URL</c>): <c>POST /v1/cluster/members</c> to
/// the member named, following a <c>409 not-leader</c> to the leader and waiting out elections and a change in
/// progress, until the cluster has added this node as a learner. The answer names the node, the cluster and the
/// members with their addresses: the identity the node stores before it starts.
/// </summary>
public static class JoinRequest
{
    /// <summary>How long a joining node keeps asking before it gives up.</summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    /// <summary>
    /// The environment variable a joining node reads an API key from, for a cluster whose nodes require one
    /// (<c>--auth-file</c>): adding a member needs a key with <c>admin</c> on every topic. The same variable the CLI reads.
    /// </summary>
    public const string ApiKeyVariable = "RAFTMQ_API_KEY";

    /// <summary>
    /// Asks the cluster at <paramref name="member"/> to add this node, with <paramref name="apiKey"/> as its bearer key
    /// when given; throws <see cref="ConfigException"/> with what went wrong.
    /// </summary>
    public static async Task<NodeIdentity> JoinAsync(
        Uri member, NodeAddress me, int? nodeNumber, Action<string> log, string? apiKey = null, CancellationToken cancellationToken = default)
    {
        using var http = new HttpClient(new SocketsHttpHandler { SslOptions = NodeHttp.ClientOptions() ?? new() }) { Timeout = TimeSpan.FromSeconds(10) };
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(Timeout);
        var body = JsonSerializer.SerializeToUtf8Bytes(
            new AddMemberBody(me.Url, me.InternalPort, nodeNumber), MembersJsonContext.Default.AddMemberBody);
        var target = member;
        var lastProblem = "no answer yet";
        while (true)
        {
            try
            {
                using var content = new ByteArrayContent(body);
                content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
                using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(target, "/v1/cluster/members")) { Content = content };
                if (!string.IsNullOrWhiteSpace(apiKey)) request.Headers.Authorization = new("Bearer", apiKey.Trim());
                using var response = await http.SendAsync(request, deadline.Token).ConfigureAwait(false);
                var text = await response.Content.ReadAsStringAsync(deadline.Token).ConfigureAwait(false);
                var answer = Parse(text);
                var code = response.Headers.TryGetValues(ErrorCodes.Header, out var codes) ? codes.FirstOrDefault() : null;
                if (response.StatusCode == HttpStatusCode.Created
                    || (response.StatusCode == HttpStatusCode.Conflict && code == ClusterEndpoints.AlreadyMember && answer?.Node is not null
                        && answer.Members?.Any(m => m.Node == answer.Node && SameAddress(m, me)) == true))
                {
                    return Identity(answer!, me);
                }
                if (response.StatusCode == HttpStatusCode.Conflict && code == ClusterEndpoints.NotLeader
                    && answer?.LeaderUrl is { } leaderUrl && Uri.TryCreate(leaderUrl, UriKind.Absolute, out var leader))
                {
                    target = leader;
                    continue;
                }
                lastProblem = $"{(int)response.StatusCode} {code}: {answer?.Error ?? text}";
                var retry = response.StatusCode == HttpStatusCode.ServiceUnavailable
                    || (response.StatusCode == HttpStatusCode.Conflict && code is ClusterEndpoints.ChangeInProgress or ClusterEndpoints.TransferInProgress or ClusterEndpoints.NotLeader);
                if (response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden)
                {
                    throw new ConfigException($"the cluster at {target} refused to add this node: {lastProblem}; its nodes require an API key: " +
                        $"start this node with ${ApiKeyVariable} set to a key with admin on every topic");
                }
                if (!retry) throw new ConfigException($"the cluster at {target} refused to add this node: {lastProblem}");
            }
            catch (HttpRequestException e)
            {
                lastProblem = $"cannot reach {target}: {e.Message}";
                target = member;
            }
            catch (OperationCanceledException) when (deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                throw new ConfigException($"could not join the cluster at {member} within {Timeout.TotalSeconds:0} s: {lastProblem}");
            }
            log($"joining the cluster at {target}: {lastProblem}; retrying");
            try
            {
                await Task.Delay(TimeSpan.FromMilliseconds(250), deadline.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                throw new ConfigException($"could not join the cluster at {member} within {Timeout.TotalSeconds:0} s: {lastProblem}");
            }
        }
    }

    private static bool SameAddress(MemberBody m, NodeAddress me) =>
        Uri.TryCreate(m.Url, UriKind.Absolute, out var url) && url.Port == me.Port && string.Equals(NodeUrl.Host(url), me.Ip, StringComparison.OrdinalIgnoreCase) && m.PeerPort == me.InternalPort;

    private static MembersResponse? Parse(string text)
    {
        try
        {
            return JsonSerializer.Deserialize(text, MembersJsonContext.Default.MembersResponse);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static NodeIdentity Identity(MembersResponse answer, NodeAddress me)
    {
        if (answer.Node is not int node || answer.ClusterId is not { Length: > 0 } clusterId || answer.Members is null)
            throw new ConfigException("the cluster's answer to the join lacks the node number, the cluster id or the members");
        var members = new Dictionary<ulong, NodeAddress>();
        foreach (var m in answer.Members)
        {
            if (!Uri.TryCreate(m.Url, UriKind.Absolute, out var url)) continue;
            members[ClusterConfig.NodeId(m.Node)] = new NodeAddress(NodeUrl.Host(url), url.Port, m.PeerPort, true);
        }
        members[ClusterConfig.NodeId(node)] = me;
        return new NodeIdentity(clusterId, ClusterConfig.NodeId(node), Joined: true, members);
    }
}

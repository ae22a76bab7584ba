using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Polly;
using Polly.Retry;

namespace RaftMQ.Client;

/// <summary>
/// A client for a RaftMQ cluster. It is given the URLs of some nodes, finds the leader among them (and learns the
/// leader's URL if it was not given), sends every request to the leader, and follows it through elections.
/// Thread-safe: share one instance; it holds one pooled <see cref="HttpClient"/>.
/// </summary>
/// <remarks>
/// Error model: failures that are known not to have changed anything (no node reachable, no leader, a node
/// shutting down, a read that timed out) are retried with back-off until <see cref="RaftMQClientOptions.OperationTimeout"/>
/// and then reported as <see cref="ClusterUnavailableException"/>. A publish or pop whose request may have reached
/// the leader but whose answer was lost is never retried: it fails with <see cref="OutcomeUnknownException"/>.
/// Topic creation is retried even then, because a second attempt is harmless (it finds the topic existing).
/// </remarks>
public sealed partial class RaftMQClient : IDisposable
{
    /// <summary>The response header in which a node explains a 503.</summary>
    public const string ErrorHeader = "X-RaftMQ-Error";

    /// <summary>
    /// Largest request body a node accepts. A batch over it is refused by the client: a node refuses such a body
    /// before reading it and closes the connection, which the client could not tell apart from a lost answer.
    /// </summary>
    public const int MaxRequestBytes = 1 << 20;

    /// <summary>
    /// Largest response body the client reads. The largest a node sends is a batch pop: at most 1 MiB of messages
    /// (the queue's MaxPopBatchBytes), which JSON escaping can grow to 6 MiB (\uXXXX for a one-byte character).
    /// </summary>
    public const int MaxResponseBytes = 8 << 20;

    private readonly RaftMQClientOptions _options;
    private readonly HttpClient _http;
    private readonly ResiliencePipeline _retry;
    private readonly Lock _gate = new();
    private readonly List<Uri> _nodes;
    private Uri? _leader;
    private long _leaderFoundAt;
    private Task<Discovery>? _discovery;

    /// <summary>Creates a client for the cluster that the given nodes belong to, with default options.</summary>
    /// <param name="nodes">Base URLs of one or more nodes, e.g. <c>http://127.0.0.1:8567</c>.</param>
    public RaftMQClient(IEnumerable<Uri> nodes)
        : this(WithNodes(nodes))
    {
    }

    /// <summary>Creates a client with the given options (which must list at least one node).</summary>
    public RaftMQClient(RaftMQClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        _nodes = [.. options.Nodes.DistinctBy(Key)];
        var handler = new SocketsHttpHandler
        {
            ConnectTimeout = options.ConnectTimeout,
            MaxConnectionsPerServer = options.MaxConnectionsPerNode,
            PooledConnectionLifetime = TimeSpan.FromMinutes(2),
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30),
            AutomaticDecompression = DecompressionMethods.None,
            UseProxy = false,
        };
        if (options.CaCertificate is { } ca)
        {
            // The cluster's CA as the only trusted root, for this client's connections alone; host names are still checked.
            var policy = new System.Security.Cryptography.X509Certificates.X509ChainPolicy
            {
                TrustMode = System.Security.Cryptography.X509Certificates.X509ChainTrustMode.CustomRootTrust,
                RevocationMode = System.Security.Cryptography.X509Certificates.X509RevocationMode.NoCheck,
            };
            policy.CustomTrustStore.Add(ca);
            handler.SslOptions = new System.Net.Security.SslClientAuthenticationOptions { CertificateChainPolicy = policy };
        }
        // Timeouts are per attempt and per operation, enforced with cancellation, so the client's own is off.
        _http = new HttpClient(handler, disposeHandler: true)
        {
            Timeout = Timeout.InfiniteTimeSpan,
            MaxResponseContentBufferSize = MaxResponseBytes,
        };
        if (options.ApiKey is { } key) _http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", key);
        var builder = new ResiliencePipelineBuilder();
        if (options.MaxRetries > 0)
        {
            builder.AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = new PredicateBuilder().Handle<RetryableException>(),
                MaxRetryAttempts = options.MaxRetries,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = options.RetryDelay,
                MaxDelay = options.MaxRetryDelay,
            });
        }
        _retry = builder.Build();
    }

    /// <summary>The nodes the client knows: those it was given, then those it learned from the cluster.</summary>
    public IReadOnlyList<Uri> Nodes
    {
        get
        {
            lock (_gate) return [.. _nodes];
        }
    }

    /// <summary>The leader the client last found, or null if it does not know one.</summary>
    public Uri? Leader
    {
        get
        {
            lock (_gate) return _leader;
        }
    }

    /// <summary>Creates a topic. Safe to call again: an existing topic is not an error.</summary>
    /// <returns>True if the topic was created, false if it existed already (possibly created by an earlier attempt of
    /// this same call whose answer was lost).</returns>
    /// <exception cref="ClusterUnavailableException">No leader could be reached in time; nothing was created.</exception>
    /// <exception cref="RequestRejectedException">The name is invalid (400 or 413) or the topic limit is reached (507).</exception>
    public Task<bool> CreateTopicAsync(string topic, CancellationToken cancellationToken = default)
    {
        CheckTopic(topic);
        var body = JsonSerializer.SerializeToUtf8Bytes(new TopicBody(topic), ClientJson.Default.TopicBody);
        return RunAsync(
            "create topic", Safety.Idempotent, node => JsonRequest(HttpMethod.Put, node, "/topic", body),
            (status, result) => status switch
            {
                HttpStatusCode.Created => true,
                HttpStatusCode.Conflict => false,
                _ => throw Rejected(status, result),
            },
            cancellationToken);
    }

    /// <summary>Lists the topics in creation order. A linearizable read: it sees every write acknowledged before it.</summary>
    /// <exception cref="ClusterUnavailableException">No leader could be reached in time.</exception>
    public Task<IReadOnlyList<string>> ListTopicsAsync(CancellationToken cancellationToken = default) =>
        RunAsync<IReadOnlyList<string>>(
            "list topics", Safety.Read, node => new HttpRequestMessage(HttpMethod.Get, new Uri(node, "/topic")),
            (status, result) => status == HttpStatusCode.OK && result?.Topics is { } topics ? topics : throw Rejected(status, result),
            cancellationToken);

    /// <summary>Appends a message to a topic. Returns once the message is committed (replicated to a majority).</summary>
    /// <exception cref="TopicNotFoundException">The topic does not exist; nothing was published.</exception>
    /// <exception cref="OutcomeUnknownException">The request may have been applied but its answer was lost; it is not retried.</exception>
    /// <exception cref="ClusterUnavailableException">No leader could be reached in time; nothing was published.</exception>
    /// <exception cref="RequestRejectedException">The message is too large (413) or the queue is full (507).</exception>
    public Task PublishAsync(string topic, string message, CancellationToken cancellationToken = default)
    {
        CheckTopic(topic);
        ArgumentNullException.ThrowIfNull(message);
        var body = JsonSerializer.SerializeToUtf8Bytes(new MessageBody(topic, message), ClientJson.Default.MessageBody);
        return RunAsync(
            "publish", Safety.Unsafe, node => JsonRequest(HttpMethod.Put, node, "/message", body),
            (status, result) => status switch
            {
                HttpStatusCode.OK => true,
                HttpStatusCode.NotFound => throw new TopicNotFoundException(topic),
                _ => throw Rejected(status, result),
            },
            cancellationToken);
    }

    /// <summary>Removes and returns the oldest message of a topic.</summary>
    /// <returns>The message, or null if the topic is empty or does not exist (the REST API answers both with 404).</returns>
    /// <exception cref="OutcomeUnknownException">A message may have been popped but its answer was lost; it is not retried.</exception>
    /// <exception cref="ClusterUnavailableException">No leader could be reached in time; nothing was popped.</exception>
    public Task<string?> PopAsync(string topic, CancellationToken cancellationToken = default)
    {
        CheckTopic(topic);
        var path = "/message/" + Uri.EscapeDataString(topic);
        return RunAsync(
            "pop", Safety.Unsafe,
            // An empty body on purpose: SocketsHttpHandler silently re-sends a body-less request whose connection
            // dropped before the answer (GET is idempotent in HTTP), and a repeated pop would lose a message.
            node => new HttpRequestMessage(HttpMethod.Get, new Uri(node, path)) { Content = new ByteArrayContent([]) },
            (status, result) => status switch
            {
                HttpStatusCode.OK when result?.Message is { } m => m,
                HttpStatusCode.NotFound => null,
                _ => throw Rejected(status, result),
            },
            cancellationToken);
    }

    /// <summary>
    /// Appends messages to a topic in one request, atomically: once it returns, all are committed, in order, after
    /// every message published before; if it throws, none was published (except after <see cref="OutcomeUnknownException"/>,
    /// when all or none may have been). The cluster takes at most 1,000 messages per batch, and the JSON body must be
    /// within <see cref="MaxRequestBytes"/> (1 MiB; checked before sending).
    /// </summary>
    /// <exception cref="TopicNotFoundException">The topic does not exist; nothing was published.</exception>
    /// <exception cref="OutcomeUnknownException">The request may have been applied but its answer was lost; it is not retried.</exception>
    /// <exception cref="ClusterUnavailableException">No leader could be reached in time; nothing was published.</exception>
    /// <exception cref="RequestRejectedException">A message or the batch is too large (413), or the queue is full (507); nothing was published.</exception>
    public Task PublishBatchAsync(string topic, IReadOnlyList<string> messages, CancellationToken cancellationToken = default)
    {
        CheckTopic(topic);
        ArgumentNullException.ThrowIfNull(messages);
        if (messages.Count == 0) throw new ArgumentException("a batch needs at least one message", nameof(messages));
        for (int i = 0; i < messages.Count; i++)
            if (messages[i] is null) throw new ArgumentException($"message {i} is null", nameof(messages));
        var body = JsonSerializer.SerializeToUtf8Bytes(new PublishBatchBody(topic, messages), ClientJson.Default.PublishBatchBody);
        if (body.Length > MaxRequestBytes)
            throw new ArgumentException($"the batch is {body.Length} bytes as JSON, over the {MaxRequestBytes}-byte request limit; split it", nameof(messages));
        return RunAsync(
            "publish", Safety.Unsafe, node => JsonRequest(HttpMethod.Post, node, "/v1/messages", body),
            (status, result) => status switch
            {
                HttpStatusCode.OK => true,
                HttpStatusCode.NotFound => throw new TopicNotFoundException(topic),
                _ => throw Rejected(status, result),
            },
            cancellationToken);
    }

    /// <summary>
    /// Removes and returns up to <paramref name="max"/> of the oldest messages of a topic, in order, in one request.
    /// The cluster returns fewer when fewer wait, or when more would pass 1 MiB (but always one if any waits).
    /// </summary>
    /// <param name="topic">The topic.</param>
    /// <param name="max">Most messages to pop, at least 1; the cluster allows at most 1,000 (else it answers 400).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The messages popped, oldest first; empty if the topic is empty.</returns>
    /// <exception cref="TopicNotFoundException">The topic does not exist.</exception>
    /// <exception cref="OutcomeUnknownException">Messages may have been popped but the answer was lost; it is not retried.</exception>
    /// <exception cref="ClusterUnavailableException">No leader could be reached in time; nothing was popped.</exception>
    /// <exception cref="RequestRejectedException">The request is invalid (400), e.g. <paramref name="max"/> over the cluster's bound.</exception>
    public Task<IReadOnlyList<string>> PopBatchAsync(string topic, int max, CancellationToken cancellationToken = default)
    {
        CheckTopic(topic);
        ArgumentOutOfRangeException.ThrowIfLessThan(max, 1);
        var body = JsonSerializer.SerializeToUtf8Bytes(new PopBatchBody(topic, max), ClientJson.Default.PopBatchBody);
        return RunAsync<IReadOnlyList<string>>(
            "pop", Safety.Unsafe, node => JsonRequest(HttpMethod.Post, node, "/v1/messages/pop", body),
            (status, result) => status switch
            {
                HttpStatusCode.OK when result?.Messages is { ValueKind: JsonValueKind.Array } messages
                    && messages.EnumerateArray().All(m => m.ValueKind == JsonValueKind.String) =>
                    messages.EnumerateArray().Select(m => m.GetString()!).ToList(),
                HttpStatusCode.NotFound => throw new TopicNotFoundException(topic),
                _ => throw Rejected(status, result),
            },
            cancellationToken);
    }

    /// <summary>
    /// Appends binary messages with their headers to a topic in one request (<c>POST /v1/topics/&lt;topic&gt;/messages</c>),
    /// atomically as <see cref="PublishBatchAsync"/>. The leader stamps them with its publish time.
    /// </summary>
    /// <returns>How many were published and the offset of the first (the others follow one by one).</returns>
    /// <exception cref="TopicNotFoundException">The topic does not exist; nothing was published.</exception>
    /// <exception cref="OutcomeUnknownException">The request may have been applied but its answer was lost; it is not retried.</exception>
    /// <exception cref="ClusterUnavailableException">No leader could be reached in time; nothing was published.</exception>
    /// <exception cref="RequestRejectedException">
    /// Headers out of bounds (400: at most 16, names of 1 to 64 HTTP token characters, values up to 1 KiB, 4 KiB
    /// together), a payload or the batch too large (413), or the queue full (507); nothing was published.
    /// </exception>
    public Task<PublishResult> PublishMessagesAsync(string topic, IReadOnlyList<OutgoingMessage> messages, CancellationToken cancellationToken = default)
    {
        CheckTopic(topic);
        ArgumentNullException.ThrowIfNull(messages);
        if (messages.Count == 0) throw new ArgumentException("a batch needs at least one message", nameof(messages));
        var body = MessageJson.PublishBody(messages);
        if (body.Length > MaxRequestBytes)
            throw new ArgumentException($"the batch is {body.Length} bytes as JSON, over the {MaxRequestBytes}-byte request limit; split it", nameof(messages));
        var path = $"/v1/topics/{Uri.EscapeDataString(topic)}/messages";
        return RunAsync(
            "publish", Safety.Unsafe, node => JsonRequest(HttpMethod.Post, node, path, body),
            (status, result) => status switch
            {
                HttpStatusCode.OK when result is { Published: { } n, FirstOffset: { } first } => new PublishResult(n, first),
                HttpStatusCode.NotFound => throw new TopicNotFoundException(topic),
                _ => throw Rejected(status, result),
            },
            cancellationToken);
    }

    /// <summary>
    /// Removes and returns up to <paramref name="max"/> of the oldest messages of a topic with their offsets, publish
    /// times and headers (<c>POST /v1/topics/&lt;topic&gt;/messages/pop</c>). The cluster returns fewer when fewer wait,
    /// or when more would pass 1 MiB of payloads and headers (but always one if any waits).
    /// </summary>
    /// <returns>The messages popped, oldest first; empty if the topic is empty.</returns>
    /// <exception cref="TopicNotFoundException">The topic does not exist.</exception>
    /// <exception cref="OutcomeUnknownException">Messages may have been popped but the answer was lost; it is not retried.</exception>
    /// <exception cref="ClusterUnavailableException">No leader could be reached in time; nothing was popped.</exception>
    /// <exception cref="RequestRejectedException">The request is invalid (400), e.g. <paramref name="max"/> over the cluster's bound.</exception>
    public Task<IReadOnlyList<ReceivedMessage>> PopMessagesAsync(string topic, int max, CancellationToken cancellationToken = default)
    {
        CheckTopic(topic);
        ArgumentOutOfRangeException.ThrowIfLessThan(max, 1);
        var body = JsonSerializer.SerializeToUtf8Bytes(new PopMessagesBody(max), ClientJson.Default.PopMessagesBody);
        var path = $"/v1/topics/{Uri.EscapeDataString(topic)}/messages/pop";
        return RunAsync(
            "pop", Safety.Unsafe, node => JsonRequest(HttpMethod.Post, node, path, body),
            (status, result) => status switch
            {
                HttpStatusCode.OK when result?.Messages is { } messages => MessageJson.Popped(messages),
                HttpStatusCode.NotFound => throw new TopicNotFoundException(topic),
                _ => throw Rejected(status, result),
            },
            cancellationToken);
    }

    /// <summary>
    /// Hands leadership to node <paramref name="to"/> (its index in the cluster configuration), or with null to the
    /// node whose log is the most up to date (<c>POST /v1/cluster/transfer-leader</c>), and returns once the new
    /// leader is elected. The request goes to the leader; a node that does not lead names it, and the client asks it.
    /// </summary>
    /// <returns>The node that leads now, and its term.</returns>
    /// <exception cref="RequestRejectedException">
    /// No such node (404); the target already leads or cannot lead (400); another transfer is under way, or the target
    /// did not take over within an election timeout, so the old leader leads on (409).
    /// </exception>
    /// <exception cref="OutcomeUnknownException">The answer was lost; leadership may or may not have moved.</exception>
    /// <exception cref="ClusterUnavailableException">No leader could be reached in time; leadership did not move.</exception>
    public Task<LeadershipTransfer> TransferLeaderAsync(int? to = null, CancellationToken cancellationToken = default)
    {
        if (to < 0) throw new ArgumentOutOfRangeException(nameof(to), to, "a node index is at least 0");
        var body = JsonSerializer.SerializeToUtf8Bytes(new TransferLeaderBody(to), ClientJson.Default.TransferLeaderBody);
        return RunAsync(
            "transfer leadership", Safety.Unsafe, node => JsonRequest(HttpMethod.Post, node, "/v1/cluster/transfer-leader", body),
            (status, result) =>
            {
                if (status == HttpStatusCode.OK && result is { Leader: int leader, Term: ulong term }) return new LeadershipTransfer(leader, term);
                if (status == HttpStatusCode.Conflict && result?.LeaderUrl is { } u && Uri.TryCreate(u, UriKind.Absolute, out var leaderUrl))
                {
                    // A node that does not lead: ask the one it names.
                    Learn(leaderUrl);
                    lock (_gate)
                    {
                        _leader = leaderUrl;
                        _leaderFoundAt = Stopwatch.GetTimestamp();
                    }
                    throw new RetryableException("not-leader", $"the node asked does not lead; node {result.Leader} at {leaderUrl} does", null);
                }
                throw Rejected(status, result);
            },
            cancellationToken);
    }

    /// <summary>The cluster's members as the leader confirms them (<c>GET /v1/cluster/members</c>).</summary>
    /// <exception cref="ClusterUnavailableException">No node answered within the operation timeout.</exception>
    public Task<ClusterMembers> GetMembersAsync(CancellationToken cancellationToken = default) =>
        RunAsync("list the members", Safety.Read, node => new HttpRequestMessage(HttpMethod.Get, new Uri(node, "/v1/cluster/members")),
            (status, result) => status == HttpStatusCode.OK ? Members(result) : throw FollowOrReject(status, result), cancellationToken);

    /// <summary>
    /// Adds the node serving HTTP at <paramref name="url"/> (its peers' port <paramref name="peerPort"/>, by default
    /// the HTTP port + 1000) as a learner, numbered <paramref name="node"/> or one above the highest member; the
    /// leader promotes it to voter once it has caught up. The node itself is started with <c>raftmq-node --join</c>.
    /// </summary>
    /// <exception cref="RequestRejectedException">Refused: already a member (409), a change in progress (409), bad address (400).</exception>
    public Task<ClusterMembers> AddMemberAsync(Uri url, int? peerPort = null, int? node = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(url);
        var body = JsonSerializer.SerializeToUtf8Bytes(
            new AddMemberRequest(MemberUrl(url), peerPort, node), ClientJson.Default.AddMemberRequest);
        return RunAsync("add a member", Safety.Unsafe, n => JsonRequest(HttpMethod.Post, n, "/v1/cluster/members", body),
            (status, result) => status == HttpStatusCode.Created ? Members(result) : throw FollowOrReject(status, result), cancellationToken);
    }

    /// <summary>
    /// Removes member <paramref name="node"/> (the leader included: it hands over and steps down); completes once the
    /// change is committed. Stop the removed node afterwards.
    /// </summary>
    /// <exception cref="RequestRejectedException">Refused: no such member (404), the last voter or a change in progress (409).</exception>
    public Task<ClusterMembers> RemoveMemberAsync(int node, CancellationToken cancellationToken = default)
    {
        if (node < 0) throw new ArgumentOutOfRangeException(nameof(node), node, "a node number is at least 0");
        return RunAsync("remove a member", Safety.Unsafe,
            n => new HttpRequestMessage(HttpMethod.Delete, new Uri(n, "/v1/cluster/members/" + node.ToString(System.Globalization.CultureInfo.InvariantCulture))),
            (status, result) => status == HttpStatusCode.OK ? Members(result) : throw FollowOrReject(status, result), cancellationToken);
    }

    private static ClusterMembers Members(ResultBody? result) =>
        result?.Members is { } members
            ? new ClusterMembers(result.Node, result.ClusterId ?? "", result.Leader, [.. members.Select(m => new ClusterMember(
                m.Node, m.Role ?? "unknown", Uri.TryCreate(m.Url, UriKind.Absolute, out var u) ? u : null, m.PeerPort))])
            {
                Committed = result.Committed,
                ConfigurationIndex = result.ConfigurationIndex,
            }
            : throw new RequestRejectedException(HttpStatusCode.OK, "the node's answer lists no members");

    /// <summary>A <c>409</c> naming the leader: learn it and retry there (certainly not applied); anything else is the answer.</summary>
    private Exception FollowOrReject(HttpStatusCode status, ResultBody? result)
    {
        if (status == HttpStatusCode.Conflict && result is { Members: null, LeaderUrl: { } u } && Uri.TryCreate(u, UriKind.Absolute, out var leaderUrl))
        {
            Learn(leaderUrl);
            lock (_gate)
            {
                _leader = leaderUrl;
                _leaderFoundAt = Stopwatch.GetTimestamp();
            }
            return new RetryableException("not-leader", $"the node asked does not lead; node {result.Leader} at {leaderUrl} does", null);
        }
        return Rejected(status, result);
    }

    /// <summary>Asks one node for its view of the cluster (<c>GET /v1/status</c>). Not retried.</summary>
    /// <exception cref="HttpRequestException">The node did not answer or answered something else than a status.</exception>
    public async Task<NodeStatus> GetNodeStatusAsync(Uri node, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(node);
        var info = await GetJsonAsync(node, "/v1/status", ClientJson.Default.NodeInfoBody, cancellationToken).ConfigureAwait(false);
        Uri? leaderUrl = info.LeaderUrl is { } u && Uri.TryCreate(u, UriKind.Absolute, out var parsed) ? parsed : null;
        return new NodeStatus(
            node, info.Node, info.ClusterId ?? "", info.Ready, info.Role ?? "Unknown", info.Term, info.Leader, leaderUrl,
            info.CommitIndex, info.AppliedIndex, info.LastIndex);
    }

    /// <summary>Asks one node for its RRMQ status (<c>GET /status</c>): role and term. Not retried.</summary>
    /// <exception cref="HttpRequestException">The node did not answer or answered something else than a status.</exception>
    public async Task<RoleStatus> GetRoleAsync(Uri node, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(node);
        var body = await GetJsonAsync(node, "/status", ClientJson.Default.RoleBody, cancellationToken).ConfigureAwait(false);
        return new RoleStatus(body.Role ?? "Unknown", body.Term);
    }

    /// <summary>
    /// Asks every known node for its status at once. Never throws for an unreachable node: its entry carries the
    /// error instead. Nodes named as leader but not known yet are learned.
    /// </summary>
    public async Task<IReadOnlyList<NodeProbe>> GetClusterStatusAsync(CancellationToken cancellationToken = default)
    {
        var probes = await Task.WhenAll(Nodes.Select(n => ProbeAsync(n, cancellationToken))).ConfigureAwait(false);
        foreach (var p in probes)
            if (p.Status?.LeaderUrl is { } l) Learn(l);
        return probes;
    }

    /// <summary>Finds the current leader, asking the cluster if the client does not know one.</summary>
    /// <exception cref="ClusterUnavailableException">No leader was found within the operation timeout.</exception>
    public Task<Uri> FindLeaderAsync(CancellationToken cancellationToken = default) =>
        RunWithRetriesAsync("find the leader", LeaderAsync, cancellationToken);

    /// <summary>Releases the HTTP connections.</summary>
    public void Dispose() => _http.Dispose();

    private enum Safety
    {
        /// <summary>Changes nothing: retried after any failure.</summary>
        Read,

        /// <summary>A repeat is harmless (topic creation): retried after any failure.</summary>
        Idempotent,

        /// <summary>A repeat would change the queue again (publish, pop): retried only when known not applied.</summary>
        Unsafe,
    }

    /// <summary>Runs a request with retries; <paramref name="serverWait"/> is how long the server may hold it on purpose (long polling), added to each timeout.</summary>
    private Task<T> RunAsync<T>(
        string operation, Safety safety, Func<Uri, HttpRequestMessage> request, Func<HttpStatusCode, ResultBody?, T> interpret,
        CancellationToken cancellationToken, TimeSpan serverWait = default) =>
        RunWithRetriesAsync(
            operation,
            async token =>
            {
                var leader = await LeaderAsync(token).ConfigureAwait(false);
                return await AttemptAsync(operation, safety, leader, request, interpret, token, cancellationToken, serverWait).ConfigureAwait(false);
            },
            cancellationToken, serverWait);

    private async Task<T> RunWithRetriesAsync<T>(string operation, Func<CancellationToken, Task<T>> attempt, CancellationToken cancellationToken, TimeSpan serverWait = default)
    {
        using var overall = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        overall.CancelAfter(_options.OperationTimeout + serverWait);
        RetryableException? last = null;
        try
        {
            return await _retry.ExecuteAsync(
                async token =>
                {
                    try
                    {
                        return await attempt(token).ConfigureAwait(false);
                    }
                    catch (RetryableException e)
                    {
                        last = e;
                        throw;
                    }
                },
                overall.Token).ConfigureAwait(false);
        }
        catch (RetryableException e) when (!overall.IsCancellationRequested)
        {
            throw new ClusterUnavailableException(e.Reason, $"{operation} failed after {_options.MaxRetries + 1} attempts: {e.Message}", e.InnerException);
        }
        catch (Exception e) when (e is RetryableException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            var why = last is null ? "" : $"; last error: {last.Message}";
            throw new ClusterUnavailableException(
                last?.Reason ?? "unreachable", $"{operation} did not complete within {_options.OperationTimeout.TotalSeconds:0.#} s{why}", e);
        }
    }

    /// <summary>One HTTP exchange with <paramref name="node"/>; classifies every failure as retryable or not.</summary>
    private async Task<T> AttemptAsync<T>(
        string operation, Safety safety, Uri node, Func<Uri, HttpRequestMessage> request, Func<HttpStatusCode, ResultBody?, T> interpret,
        CancellationToken token, CancellationToken callerToken, TimeSpan serverWait = default)
    {
        using var attempt = CancellationTokenSource.CreateLinkedTokenSource(token);
        attempt.CancelAfter(_options.AttemptTimeout + serverWait);
        HttpStatusCode status;
        string? code;
        ResultBody? result;
        try
        {
            using var message = request(node);
            using var response = await _http.SendAsync(message, HttpCompletionOption.ResponseContentRead, attempt.Token).ConfigureAwait(false);
            status = response.StatusCode;
            code = response.Headers.TryGetValues(ErrorHeader, out var values) ? values.FirstOrDefault() : null;
            result = await ReadResultAsync(response, attempt.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (callerToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception e) when (NotSent(e, attempt.Token))
        {
            Forget(node);
            throw new RetryableException("unreachable", $"cannot connect to {MemberUrl(node)}: {Why(e)}", e);
        }
        catch (Exception e) when (e is HttpRequestException or IOException or OperationCanceledException)
        {
            // The request may have reached the leader, which may have applied it.
            Forget(node);
            var what = e is OperationCanceledException
                ? token.IsCancellationRequested
                    ? $"the operation timed out while waiting for {MemberUrl(node)}"
                    : $"no answer from {MemberUrl(node)} within {_options.AttemptTimeout.TotalSeconds:0.#} s"
                : $"lost the connection to {MemberUrl(node)} ({Why(e)})";
            if (safety == Safety.Unsafe)
                throw new OutcomeUnknownException(operation, $"{operation}: {what} after sending the request; it may or may not have been applied", e);
            if (token.IsCancellationRequested) throw;
            throw new RetryableException("unreachable", what, e);
        }

        if (status == HttpStatusCode.ServiceUnavailable)
        {
            // The node's own classification (docs/rest-api.md): these four were never applied.
            if (code is "not-leader" or "no-leader" or "stopped" or "overloaded")
            {
                if (code != "overloaded") Forget(node);
                throw new RetryableException(code, $"{MemberUrl(node)} answered 503 {code}: {result?.Error}", null);
            }
            Forget(node);
            if (safety == Safety.Unsafe)
                throw new OutcomeUnknownException(operation, $"{operation}: {MemberUrl(node)} answered 503 {code}: {result?.Error ?? "the command may or may not have been applied"}");
            throw new RetryableException(code ?? "unavailable", $"{MemberUrl(node)} answered 503 {code}: {result?.Error}", null);
        }
        if ((int)status >= 500 && status != HttpStatusCode.InsufficientStorage)
        {
            if (safety == Safety.Unsafe)
                throw new OutcomeUnknownException(operation, $"{operation}: {MemberUrl(node)} answered {(int)status}; the command may or may not have been applied");
            throw new RetryableException("unavailable", $"{MemberUrl(node)} answered {(int)status}", null);
        }
        // Credentials: never retried, whatever the operation (the same key gets the same answer).
        if (status == HttpStatusCode.Unauthorized) throw new AuthenticationFailedException(operation, _options.ApiKey is not null, result?.Error);
        if (status == HttpStatusCode.Forbidden) throw new PermissionDeniedException(operation, result?.Error);
        return interpret(status, result);
    }

    /// <summary>
    /// True when the request certainly never left the client: the connection could not be opened, or the handler's
    /// connect timeout (its only internal cancellation) fired while neither timeout of ours had.
    /// </summary>
    private static bool NotSent(Exception e, CancellationToken attemptToken) => e switch
    {
        HttpRequestException h => h.HttpRequestError is HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError
            or HttpRequestError.SecureConnectionError or HttpRequestError.ProxyTunnelError,
        OperationCanceledException => !attemptToken.IsCancellationRequested,
        _ => false,
    };

    private async Task<Uri> LeaderAsync(CancellationToken token)
    {
        Task<Discovery> discovery;
        lock (_gate)
        {
            if (_leader is { } known)
            {
                // A stale leader is still used (a deposed one forwards); the refresh runs in the background.
                if (Stopwatch.GetElapsedTime(_leaderFoundAt) >= _options.LeaderRefreshInterval) _discovery ??= Task.Run(DiscoverAsync);
                return known;
            }
            discovery = _discovery ??= Task.Run(DiscoverAsync);
        }
        var d = await discovery.WaitAsync(token).ConfigureAwait(false);
        // Every node answered that it speaks HTTPS only: the URLs are wrong, and no retry will change that.
        if (d.Leader is null && d.Reason == TlsRequired) throw new ClusterUnavailableException(d.Reason, d.Message);
        return d.Leader ?? throw new RetryableException(d.Reason, d.Message, null);
    }

    /// <summary>Asks every known node at once; the leader is the node that says so in the highest term, or the one it names.</summary>
    private async Task<Discovery> DiscoverAsync()
    {
        Discovery found;
        try
        {
            var probes = await GetClusterStatusAsync(CancellationToken.None).ConfigureAwait(false);
            var answered = probes.Where(p => p.Status is not null).Select(p => p.Status!).ToList();
            if (answered.Count == 0 && probes.Count > 0 && probes.All(p => p.Error?.EndsWith(TlsRequiredMessage, StringComparison.Ordinal) == true))
            {
                found = new Discovery(null, TlsRequired, string.Join("; ", probes.Select(p => p.Error)));
            }
            else if (answered.Count == 0)
            {
                found = new Discovery(null, "unreachable", "no node answered: " + string.Join("; ", probes.Select(p => $"{MemberUrl(p.Url)} {p.Error}")));
            }
            else
            {
                var maxTerm = answered.Max(s => s.Term);
                var leader = answered.FirstOrDefault(s => s.IsLeader && s.Term == maxTerm)?.Url
                    ?? answered.FirstOrDefault(s => s.Term == maxTerm && s.LeaderUrl is not null)?.LeaderUrl;
                found = leader is null
                    ? new Discovery(null, "no-leader", $"no leader elected yet ({answered.Count} of {probes.Count} nodes answered)")
                    : new Discovery(leader, "", "");
            }
        }
        catch (Exception e) when (e is HttpRequestException or IOException or OperationCanceledException)
        {
            found = new Discovery(null, "unreachable", e.Message);
        }
        lock (_gate)
        {
            if (found.Leader is not null)
            {
                _leader = found.Leader;
                _leaderFoundAt = Stopwatch.GetTimestamp();
            }
            _discovery = null;
        }
        return found;
    }

    /// <summary>
    /// What went wrong, for a message: a failed TLS handshake says why (an untrusted CA, a name mismatch), which the
    /// handler's own message ("The SSL connection could not be established") leaves to its inner exception.
    /// </summary>
    private static string Why(Exception e)
    {
        if (e is HttpRequestException { HttpRequestError: HttpRequestError.SecureConnectionError, InnerException: { } inner })
        {
            while (inner.InnerException is { } deeper) inner = deeper;
            var hint = inner.Message.Contains("UntrustedRoot", StringComparison.Ordinal) || inner.Message.Contains("PartialChain", StringComparison.Ordinal)
                ? " (give the cluster's CA certificate: RaftMQClientOptions.CaCertificate, raftmq --ca FILE or $RAFTMQ_CA)"
                : "";
            return $"TLS handshake failed: {inner.Message}{hint}";
        }

        return e.Message;
    }

    private async Task<NodeProbe> ProbeAsync(Uri node, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.StatusTimeout);
        try
        {
            return new NodeProbe(node, await GetNodeStatusAsync(node, timeout.Token).ConfigureAwait(false), null);
        }
        catch (HttpRequestException e)
        {
            return new NodeProbe(node, null, Why(e));
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new NodeProbe(node, null, $"no answer within {_options.StatusTimeout.TotalSeconds:0.#} s");
        }
    }

    private async Task<T> GetJsonAsync<T>(Uri node, string path, JsonTypeInfo<T> type, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.AttemptTimeout);
        try
        {
            using var response = await _http.GetAsync(new Uri(node, path), timeout.Token).ConfigureAwait(false);
            if (response.Headers.TryGetValues("X-RaftMQ-Error", out var codes) && codes.Contains(TlsRequired))
                throw new HttpRequestException($"{node} {TlsRequiredMessage}", null, response.StatusCode);
            if (!response.IsSuccessStatusCode) throw new HttpRequestException($"{MemberUrl(node)} answered {(int)response.StatusCode}", null, response.StatusCode);
            var bytes = await response.Content.ReadAsByteArrayAsync(timeout.Token).ConfigureAwait(false);
            return JsonSerializer.Deserialize(bytes, type) ?? throw new HttpRequestException($"{MemberUrl(node)} answered an empty status");
        }
        catch (JsonException e)
        {
            throw new HttpRequestException($"{node} did not answer a RaftMQ status: {e.Message}", e);
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new HttpRequestException($"no answer from {node} within {_options.AttemptTimeout.TotalSeconds:0.#} s", e);
        }
    }

    private static async Task<ResultBody?> ReadResultAsync(HttpResponseMessage response, CancellationToken token)
    {
        var bytes = await response.Content.ReadAsByteArrayAsync(token).ConfigureAwait(false);
        if (bytes.Length == 0) return null;
        try
        {
            return JsonSerializer.Deserialize(bytes, ClientJson.Default.ResultBody);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static HttpRequestMessage JsonRequest(HttpMethod method, Uri node, string path, byte[] body)
    {
        var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        return new HttpRequestMessage(method, new Uri(node, path)) { Content = content };
    }

    /// <summary>
    /// The rejection, with the node's explanation; a 507 of the RRMQ endpoints carries none (their body is
    /// <c>{"success": false}</c>), so the client says what it means.
    /// </summary>
    private static RequestRejectedException Rejected(HttpStatusCode status, ResultBody? result) => new(status, result?.Error
        ?? (status == HttpStatusCode.InsufficientStorage
            ? "the queue is full: it holds the cluster's maximum of waiting messages or bytes (GET /v1/cluster/limits), or of topics"
            : null));

    private static void CheckTopic(string topic)
    {
        ArgumentNullException.ThrowIfNull(topic);
        if (topic.Length == 0) throw new ArgumentException("topic must not be empty", nameof(topic));
    }

    private void Forget(Uri node)
    {
        lock (_gate)
        {
            if (_leader == node) _leader = null;
        }
    }

    private void Learn(Uri node)
    {
        lock (_gate)
        {
            if (_nodes.Count < _options.MaxKnownNodes && !_nodes.Any(n => Key(n) == Key(node))) _nodes.Add(node);
        }
    }

    /// <summary>
    /// A node's URL as the nodes write theirs, and as the cluster takes a member's: <c>SCHEME://HOST:PORT</c>, the port
    /// always written (80 and 443 too), no trailing slash or path. <see cref="Uri.ToString"/> drops a scheme's default
    /// port.
    /// </summary>
    public static string MemberUrl(Uri url)
    {
        ArgumentNullException.ThrowIfNull(url);
        return $"{url.Scheme}://{url.Host}:{url.Port.ToString(System.Globalization.CultureInfo.InvariantCulture)}";
    }

    private static string Key(Uri node) => node.GetLeftPart(UriPartial.Authority).ToLowerInvariant();

    private static RaftMQClientOptions WithNodes(IEnumerable<Uri> nodes)
    {
        ArgumentNullException.ThrowIfNull(nodes);
        var options = new RaftMQClientOptions();
        foreach (var n in nodes) options.Nodes.Add(n);
        return options;
    }

    private sealed record Discovery(Uri? Leader, string Reason, string Message);

    private const string TlsRequired = "tls-required";
    private const string TlsRequiredMessage = "speaks HTTPS only (the node runs with TLS): use https:// in its URL";

    /// <summary>A failure known to have changed nothing; the retry pipeline tries again.</summary>
    private sealed class RetryableException(string reason, string message, Exception? inner) : Exception(message, inner)
    {
        public string Reason { get; } = reason;
    }
}

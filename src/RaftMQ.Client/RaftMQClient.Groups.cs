using System.Net;
using System.Text.Json;

namespace RaftMQ.Client;

/// <summary>Where a new consumer group starts reading.</summary>
public enum GroupStartPosition
{
    /// <summary>At the topic's oldest retained message.</summary>
    Earliest,

    /// <summary>At the next message published.</summary>
    Latest,
}

/// <summary>
/// One delivery of a message to a consumer group (<see cref="RaftMQClient.ReceiveAsync(string, string, int, TimeSpan?, bool, CancellationToken)"/>): ack it with its
/// <paramref name="Receipt"/> before the lease ends, or it is delivered again. <paramref name="DeliveryCount"/> is 1 on
/// the first delivery; <paramref name="PublishedAtMs"/> the leader's publish time (Unix ms; 0 for a string message).
/// </summary>
public sealed record Delivery(
    ulong Offset, string Receipt, int DeliveryCount, long PublishedAtMs, IReadOnlyList<KeyValuePair<string, string>> Headers, byte[] Body)
{
    /// <summary>The body as UTF-8 text (invalid sequences become U+FFFD).</summary>
    public string Text => System.Text.Encoding.UTF8.GetString(Body);
}

/// <summary>
/// What an ack, nack or extend did: how many receipts it applied to, and the receipts it refused as stale (their
/// message was delivered again since, or is already acked or dead-lettered).
/// </summary>
public sealed record SettleResult(int Applied, IReadOnlyList<string> Stale);

/// <summary>
/// What a receive that carried acks did (<see cref="RaftMQClient.ReceiveAndAckAsync"/>): the new deliveries, and the
/// outcome of the acks, applied first in the same log entry (<see cref="SettleResult.Applied"/> acked; the stale
/// receipts were not applied: their message was delivered again since, or is already acked or dead-lettered).
/// </summary>
public sealed record ReceiveAckResult(IReadOnlyList<Delivery> Deliveries, SettleResult Acks);

/// <summary>A topic's settings and counts (<see cref="RaftMQClient.GetTopicStatsAsync"/>); field meanings in docs/rest-api.md.</summary>
public sealed record TopicStatistics(
    string Topic, bool DeadLetters, ulong Head, ulong Tail, long Messages, long Bytes, int MaxDeliveries, long DeadLettered,
    long PublishedTotal, IReadOnlyList<GroupStatistics> Groups)
{
    /// <summary>Most messages retained (0: unlimited).</summary>
    public long MaxMessages { get; init; }

    /// <summary>Most bytes retained (0: unlimited).</summary>
    public long MaxBytes { get; init; }

    /// <summary>Age in ms at which a message expires (0: never).</summary>
    public long MaxAgeMs { get; init; }

    /// <summary><c>reject-publish</c> or <c>drop-oldest</c>.</summary>
    public string Overflow { get; init; } = "reject-publish";

    /// <summary><c>dead-letter</c> or <c>drop</c>: what becomes of an expired message.</summary>
    public string Expire { get; init; } = "dead-letter";

    /// <summary>Messages removed so far to make room under <c>drop-oldest</c>.</summary>
    public long OverflowDroppedTotal { get; init; }

    /// <summary>Messages removed so far by age (dead-lettered or dropped).</summary>
    public long ExpiredTotal { get; init; }
}

/// <summary>What a publish to a topic at its <see cref="TopicSettings.MaxMessages"/> or <see cref="TopicSettings.MaxBytes"/> does.</summary>
public enum TopicOverflow
{
    /// <summary>The publish is refused whole (409, <c>topic-full</c>).</summary>
    RejectPublish,

    /// <summary>The oldest retained messages are removed for every group to make room (counted in the stats).</summary>
    DropOldest,
}

/// <summary>What becomes of a message older than <see cref="TopicSettings.MaxAge"/>.</summary>
public enum TopicExpiry
{
    /// <summary>Moved to the topic's dead letters with the header <c>raftmq-reason: expired</c>.</summary>
    DeadLetter,

    /// <summary>Removed, counted in the topic's <c>expired_total</c>.</summary>
    Drop,
}

/// <summary>
/// Settings for <see cref="RaftMQClient.ConfigureTopicAsync(string, TopicSettings, CancellationToken)"/>: each null
/// leaves the setting as it is (for a new topic: its default). Zero for <see cref="MaxMessages"/>,
/// <see cref="MaxBytes"/> or <see cref="MaxAge"/> means unlimited. Field meanings and bounds in docs/rest-api.md.
/// </summary>
public sealed record TopicSettings
{
    /// <summary>Deliveries after which a message is dead-lettered (default 20).</summary>
    public int? MaxDeliveries { get; init; }

    /// <summary>How long message ids are remembered, whole milliseconds (default 1 hour; zero: none).</summary>
    public TimeSpan? DedupWindow { get; init; }

    /// <summary>Most messages retained: not yet acked by every group (default 0, unlimited).</summary>
    public long? MaxMessages { get; init; }

    /// <summary>Most bytes retained, each message counting payload, headers and 28 bytes (default 0, unlimited).</summary>
    public long? MaxBytes { get; init; }

    /// <summary>Age, whole milliseconds, at which a message expires (default zero: never).</summary>
    public TimeSpan? MaxAge { get; init; }

    /// <summary>What a publish past the bounds does (default <see cref="TopicOverflow.RejectPublish"/>).</summary>
    public TopicOverflow? Overflow { get; init; }

    /// <summary>What becomes of an expired message (default <see cref="TopicExpiry.DeadLetter"/>).</summary>
    public TopicExpiry? Expire { get; init; }
}

/// <summary>
/// What an idempotent publish did (<see cref="RaftMQClient.PublishIdempotentAsync"/>): each message's offset, in order
/// (for a duplicate, where its id was stored first), and how many were duplicates and so not stored again.
/// </summary>
public sealed record IdempotentPublishResult(IReadOnlyList<ulong> Offsets, int Duplicates);

/// <summary>One consumer group of <see cref="TopicStatistics"/>.</summary>
public sealed record GroupStatistics(
    string Group, long Ready, int Leased, int Delayed, long Unacked, long? OldestAgeMs, ulong Cursor, ulong AckFloor,
    long DeliveredTotal, long AckedTotal, long DeadLetteredTotal)
{
    /// <summary>
    /// The unacked messages by their deliveries so far, in the server's buckets and order ("0" never delivered, "1",
    /// "2", "3", "4", "5-9", "10-19", "20-49", "50-99", "100+"; docs/rest-api.md, "delivery_counts"); empty from a
    /// server that does not report them.
    /// </summary>
    public IReadOnlyList<KeyValuePair<string, long>> DeliveryCounts { get; init; } = [];
}

/// <summary>At-least-once consumption: topics, consumer groups, leases (docs/client.md, "Consumer groups").</summary>
public sealed partial class RaftMQClient
{
    private static string TopicPath(string topic, string action = "") =>
        $"/v1/topics/{Uri.EscapeDataString(topic)}{(action.Length == 0 ? "" : "/" + action)}";

    /// <summary>
    /// Creates a topic, or changes its settings when it exists (<c>PUT /v1/topics/{topic}</c>); retried safely.
    /// <paramref name="maxDeliveries"/>: deliveries after which a message is dead-lettered (null: 20 for a new topic,
    /// unchanged for an existing one).
    /// </summary>
    /// <returns>True when the topic was created, false when it existed.</returns>
    /// <exception cref="RequestRejectedException">A bad setting (400) or the topic limit reached (507).</exception>
    public Task<bool> ConfigureTopicAsync(string topic, int? maxDeliveries = null, CancellationToken cancellationToken = default) =>
        ConfigureTopicAsync(topic, maxDeliveries, dedupWindow: null, cancellationToken);

    /// <summary>
    /// As <see cref="ConfigureTopicAsync(string, int?, CancellationToken)"/>, also setting how long the topic remembers
    /// message ids (<paramref name="dedupWindow"/>, whole milliseconds up to 7 days; zero remembers none; null: 1 hour
    /// for a new topic, unchanged for an existing one).
    /// </summary>
    public Task<bool> ConfigureTopicAsync(string topic, int? maxDeliveries, TimeSpan? dedupWindow, CancellationToken cancellationToken = default) =>
        ConfigureTopicAsync(topic, new TopicSettings { MaxDeliveries = maxDeliveries, DedupWindow = dedupWindow }, cancellationToken);

    /// <summary>
    /// Creates a topic, or changes its settings when it exists (<c>PUT /v1/topics/{topic}</c>): delivery limit, id
    /// window and retention (<see cref="TopicSettings"/>; a null setting is left as it is). Retried safely.
    /// </summary>
    /// <returns>True when the topic was created, false when it existed.</returns>
    /// <exception cref="RequestRejectedException">A bad setting (400, naming the field) or the topic limit reached (507).</exception>
    public Task<bool> ConfigureTopicAsync(string topic, TopicSettings settings, CancellationToken cancellationToken = default)
    {
        CheckTopic(topic);
        ArgumentNullException.ThrowIfNull(settings);
        var body = Json(w =>
        {
            if (settings.MaxDeliveries is { } n) w.WriteNumber("max_deliveries", n);
            if (settings.DedupWindow is { } window) w.WriteNumber("dedup_window_ms", (long)window.TotalMilliseconds);
            if (settings.MaxMessages is { } messages) w.WriteNumber("max_messages", messages);
            if (settings.MaxBytes is { } bytes) w.WriteNumber("max_bytes", bytes);
            if (settings.MaxAge is { } age) w.WriteNumber("max_age_ms", (long)age.TotalMilliseconds);
            if (settings.Overflow is { } overflow) w.WriteString("overflow", overflow == TopicOverflow.DropOldest ? "drop-oldest" : "reject-publish");
            if (settings.Expire is { } expire) w.WriteString("expire", expire == TopicExpiry.Drop ? "drop" : "dead-letter");
        });
        return RunAsync(
            "configure topic", Safety.Idempotent, node => JsonRequest(HttpMethod.Put, node, TopicPath(topic), body),
            (status, result) => status switch
            {
                HttpStatusCode.Created => true,
                HttpStatusCode.OK => false,
                _ => throw Rejected(status, result),
            },
            cancellationToken);
    }

    /// <summary>A topic's settings, counts and groups (<c>GET /v1/topics/{topic}</c>); <paramref name="deadLetters"/> for its dead-letter topic.</summary>
    /// <exception cref="TopicNotFoundException">The topic does not exist (or, with <paramref name="deadLetters"/>, never dead-lettered).</exception>
    public Task<TopicStatistics> GetTopicStatsAsync(string topic, bool deadLetters = false, CancellationToken cancellationToken = default)
    {
        CheckTopic(topic);
        var path = TopicPath(topic, deadLetters ? "dead-letters" : "");
        return RunAsync(
            "topic stats", Safety.Read, node => new HttpRequestMessage(HttpMethod.Get, new Uri(node, path)),
            (status, result) => status switch
            {
                HttpStatusCode.OK => Parse(result, "topic stats", r => new TopicStatistics(
                    Get(r, "topic").GetString()!, Get(r, "dead_letters").GetBoolean(), Get(r, "head").GetUInt64(), Get(r, "tail").GetUInt64(),
                    r.Messages!.Value.GetInt64(), Get(r, "bytes").GetInt64(), Get(r, "max_deliveries").GetInt32(),
                    Get(r, "dead_lettered").GetInt64(), Get(r, "published_total").GetInt64(),
                    [.. Get(r, "groups").EnumerateArray().Select(g => new GroupStatistics(
                        g.GetProperty("group").GetString()!, g.GetProperty("ready").GetInt64(), g.GetProperty("leased").GetInt32(),
                        g.GetProperty("delayed").GetInt32(), g.GetProperty("unacked").GetInt64(),
                        g.GetProperty("oldest_age_ms").ValueKind == JsonValueKind.Null ? null : g.GetProperty("oldest_age_ms").GetInt64(),
                        g.GetProperty("cursor").GetUInt64(), g.GetProperty("ack_floor").GetUInt64(), g.GetProperty("delivered_total").GetInt64(),
                        g.GetProperty("acked_total").GetInt64(), g.GetProperty("dead_lettered_total").GetInt64())
                    {
                        DeliveryCounts = g.TryGetProperty("delivery_counts", out var counts) && counts.ValueKind == JsonValueKind.Object
                            ? [.. counts.EnumerateObject().Select(c => KeyValuePair.Create(c.Name, c.Value.GetInt64()))]
                            : [],
                    })])
                {
                    // Absent from servers built before retention: their topics had none.
                    MaxMessages = Optional(r, "max_messages")?.GetInt64() ?? 0, MaxBytes = Optional(r, "max_bytes")?.GetInt64() ?? 0,
                    MaxAgeMs = Optional(r, "max_age_ms")?.GetInt64() ?? 0,
                    Overflow = Optional(r, "overflow")?.GetString() ?? "reject-publish", Expire = Optional(r, "expire")?.GetString() ?? "dead-letter",
                    OverflowDroppedTotal = Optional(r, "overflow_dropped_total")?.GetInt64() ?? 0,
                    ExpiredTotal = Optional(r, "expired_total")?.GetInt64() ?? 0,
                }),
                HttpStatusCode.NotFound => throw new TopicNotFoundException(topic),
                _ => throw Rejected(status, result),
            },
            cancellationToken);
    }

    /// <summary>
    /// Deletes a consumer group (<c>DELETE /v1/topics/{topic}/groups/{group}</c>): its leases end, and messages only it
    /// still held go. Retried safely: a repeat finds the group gone.
    /// </summary>
    /// <returns>True when deleted, false when the topic has no such group.</returns>
    /// <exception cref="TopicNotFoundException">The topic does not exist.</exception>
    /// <exception cref="RequestRejectedException">409: it is the topic's last group (delete the topic instead).</exception>
    public Task<bool> DeleteGroupAsync(string topic, string group, CancellationToken cancellationToken = default)
    {
        CheckTopic(topic);
        ArgumentException.ThrowIfNullOrEmpty(group);
        return RunAsync(
            "delete group", Safety.Idempotent,
            node => new HttpRequestMessage(HttpMethod.Delete, new Uri(node, TopicPath(topic, "groups/" + Uri.EscapeDataString(group)))),
            (status, result) => status switch
            {
                HttpStatusCode.OK => true,
                HttpStatusCode.NotFound when result?.Error?.StartsWith("no such consumer group", StringComparison.Ordinal) == true => false,
                HttpStatusCode.NotFound => throw new TopicNotFoundException(topic),
                _ => throw Rejected(status, result),
            },
            cancellationToken);
    }

    /// <summary>Deletes a topic with its groups and dead letters (<c>DELETE /v1/topics/{topic}</c>); not retried once sent.</summary>
    /// <exception cref="TopicNotFoundException">The topic does not exist.</exception>
    public Task DeleteTopicAsync(string topic, CancellationToken cancellationToken = default)
    {
        CheckTopic(topic);
        return RunAsync(
            "delete topic", Safety.Unsafe, node => new HttpRequestMessage(HttpMethod.Delete, new Uri(node, TopicPath(topic))),
            (status, result) => status switch
            {
                HttpStatusCode.OK => true,
                HttpStatusCode.NotFound => throw new TopicNotFoundException(topic),
                _ => throw Rejected(status, result),
            },
            cancellationToken);
    }

    /// <summary>Creates a consumer group (<c>PUT /v1/topics/{topic}/groups/{group}</c>); retried safely.</summary>
    /// <returns>True when created, false when it existed (its start unchanged).</returns>
    public Task<bool> CreateGroupAsync(string topic, string group, GroupStartPosition start = GroupStartPosition.Earliest, CancellationToken cancellationToken = default)
    {
        CheckTopic(topic);
        ArgumentException.ThrowIfNullOrEmpty(group);
        var body = Json(w => w.WriteString("start", start == GroupStartPosition.Latest ? "latest" : "earliest"));
        return RunAsync(
            "create group", Safety.Idempotent, node => JsonRequest(HttpMethod.Put, node, TopicPath(topic, "groups/" + Uri.EscapeDataString(group)), body),
            (status, result) => status switch
            {
                HttpStatusCode.Created => true,
                HttpStatusCode.OK => false,
                HttpStatusCode.NotFound => throw new TopicNotFoundException(topic),
                _ => throw Rejected(status, result),
            },
            cancellationToken);
    }

    /// <summary>
    /// Publishes messages that each carry an <see cref="OutgoingMessage.Id"/> (<c>POST /v1/topics/{topic}/publish</c>):
    /// a message whose id the topic remembers (stored within its dedup window) is not stored again. So this call is
    /// retried after a lost answer like a read, and never ends in an unknown outcome: the retry finds the ids the lost
    /// attempt stored and answers their offsets.
    /// </summary>
    /// <exception cref="ArgumentException">A message without an id, or the batch over the request limit.</exception>
    /// <exception cref="TopicNotFoundException">The topic does not exist; nothing was published.</exception>
    /// <exception cref="RequestRejectedException">A bad id, delay or headers (400), too large (413), or the queue full (507); nothing was published.</exception>
    public Task<IdempotentPublishResult> PublishIdempotentAsync(string topic, IReadOnlyList<OutgoingMessage> messages, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(messages);
        for (int i = 0; i < messages.Count; i++)
        {
            if (messages[i] is { } m && string.IsNullOrEmpty(m.Id)) throw new ArgumentException($"message {i} has no id", nameof(messages));
        }
        return PublishToTopicAsync(topic, messages, cancellationToken);
    }

    /// <summary>
    /// Publishes messages with their headers and, optionally, ids (<see cref="OutgoingMessage.Id"/>) and delays
    /// (<see cref="OutgoingMessage.Delay"/>) (<c>POST /v1/topics/{topic}/publish</c>), all or none. Retried after a lost
    /// answer only when every message has an id (see <see cref="PublishIdempotentAsync"/>); otherwise a lost answer is
    /// an <see cref="OutcomeUnknownException"/>.
    /// </summary>
    /// <returns>Each message's offset, in order, and how many were duplicates of remembered ids.</returns>
    /// <exception cref="TopicNotFoundException">The topic does not exist; nothing was published.</exception>
    /// <exception cref="RequestRejectedException">A bad id, delay or headers (400), too large (413), or the queue full (507); nothing was published.</exception>
    public Task<IdempotentPublishResult> PublishToTopicAsync(string topic, IReadOnlyList<OutgoingMessage> messages, CancellationToken cancellationToken = default)
    {
        CheckTopic(topic);
        ArgumentNullException.ThrowIfNull(messages);
        if (messages.Count == 0) throw new ArgumentException("a batch needs at least one message", nameof(messages));
        var allIds = true;
        var body = Json(w =>
        {
            w.WriteStartArray("messages");
            for (int i = 0; i < messages.Count; i++)
            {
                var m = messages[i] ?? throw new ArgumentException($"message {i} is null", nameof(messages));
                w.WriteStartObject();
                w.WriteBase64String("body_base64", m.Payload.Span);
                if (string.IsNullOrEmpty(m.Id)) allIds = false;
                else w.WriteString("id", m.Id);
                if (m.Delay is { } delay && delay > TimeSpan.Zero) w.WriteNumber("delay_ms", (long)delay.TotalMilliseconds);
                if (m.Headers is { Count: > 0 } headers)
                {
                    w.WriteStartObject("headers");
                    foreach (var (name, value) in headers) w.WriteString(name, value);
                    w.WriteEndObject();
                }
                w.WriteEndObject();
            }
            w.WriteEndArray();
        });
        if (body.Length > MaxRequestBytes)
            throw new ArgumentException($"the batch is {body.Length} bytes as JSON, over the {MaxRequestBytes}-byte request limit; split it", nameof(messages));
        return RunAsync(
            "publish", allIds ? Safety.Idempotent : Safety.Unsafe, node => JsonRequest(HttpMethod.Post, node, TopicPath(topic, "publish"), body),
            (status, result) => status switch
            {
                HttpStatusCode.OK => Parse(result, "publish", r => new IdempotentPublishResult(
                    [.. Get(r, "offsets").EnumerateArray().Select(o => o.GetUInt64())], Get(r, "duplicates").GetInt32())),
                HttpStatusCode.NotFound => throw new TopicNotFoundException(topic),
                _ => throw Rejected(status, result),
            },
            cancellationToken);
    }

    /// <summary>
    /// Leases up to <paramref name="max"/> messages to this consumer of <paramref name="group"/> for
    /// <paramref name="lease"/> (default 30 s) (<c>POST /v1/topics/{topic}/receive</c>). Retried after a lost answer:
    /// messages leased by an attempt whose answer was lost come back once their lease ends.
    /// </summary>
    /// <returns>The deliveries, redeliveries first; empty when nothing is ready.</returns>
    /// <exception cref="TopicNotFoundException">The topic does not exist.</exception>
    /// <exception cref="RequestRejectedException">No such group (404) or a bad argument (400).</exception>
    public Task<IReadOnlyList<Delivery>> ReceiveAsync(
        string topic, string group = "default", int max = 1, TimeSpan? lease = null, bool deadLetters = false, CancellationToken cancellationToken = default) =>
        ReceiveAsync(topic, group, max, lease, wait: TimeSpan.Zero, deadLetters, cancellationToken);

    /// <summary>
    /// As <see cref="ReceiveAsync(string, string, int, TimeSpan?, bool, CancellationToken)"/>, but when nothing is ready
    /// the server holds the request up to <paramref name="wait"/> (long polling, at most 20 s) and answers as soon as
    /// messages are; empty when none came in time. Each attempt's timeout is extended by the wait.
    /// </summary>
    public async Task<IReadOnlyList<Delivery>> ReceiveAsync(
        string topic, string group, int max, TimeSpan? lease, TimeSpan wait, bool deadLetters = false, CancellationToken cancellationToken = default) =>
        (await ReceiveCoreAsync(topic, group, max, lease, wait, ack: null, deadLetters, cancellationToken).ConfigureAwait(false)).Deliveries;

    /// <summary>
    /// Acks <paramref name="ack"/> (the receipts of this consumer's previous batch) and leases up to <paramref name="max"/>
    /// messages, in one request and one log entry (<c>POST /v1/topics/{topic}/receive</c> with <c>"ack"</c>). The acks
    /// are applied first, with the same fencing as <see cref="AckAsync"/>, and at once even when the server holds the
    /// request up to <paramref name="wait"/> (long polling) for messages. Retried after a lost answer like
    /// <see cref="AckAsync"/> and <see cref="ReceiveAsync(string, string, int, TimeSpan?, bool, CancellationToken)"/>: a
    /// receipt the lost attempt acked is then reported stale, and what it leased comes back when its lease ends.
    /// <paramref name="ack"/> holds at most 1,000 receipts (the server's bound); empty makes this a plain receive.
    /// </summary>
    /// <exception cref="TopicNotFoundException">The topic does not exist.</exception>
    /// <exception cref="RequestRejectedException">No such group (404) or a bad argument or receipt (400); nothing was acked.</exception>
    public Task<ReceiveAckResult> ReceiveAndAckAsync(
        string topic, IReadOnlyList<string> ack, string group = "default", int max = 1, TimeSpan? lease = null, TimeSpan wait = default,
        bool deadLetters = false, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(ack);
        return ReceiveCoreAsync(topic, group, max, lease, wait, ack, deadLetters, cancellationToken);
    }

    private Task<ReceiveAckResult> ReceiveCoreAsync(
        string topic, string group, int max, TimeSpan? lease, TimeSpan wait, IReadOnlyList<string>? ack, bool deadLetters, CancellationToken cancellationToken)
    {
        CheckTopic(topic);
        ArgumentOutOfRangeException.ThrowIfLessThan(max, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(wait, TimeSpan.Zero);
        var body = Json(w =>
        {
            w.WriteString("group", group);
            w.WriteNumber("max", max);
            w.WriteNumber("lease_ms", (long)(lease ?? TimeSpan.FromSeconds(30)).TotalMilliseconds);
            if (wait > TimeSpan.Zero) w.WriteNumber("wait_ms", (long)wait.TotalMilliseconds);
            if (ack is not null)
            {
                w.WriteStartArray("ack");
                foreach (var r in ack) w.WriteStringValue(r);
                w.WriteEndArray();
            }
        });
        var path = TopicPath(topic, deadLetters ? "dead-letters/receive" : "receive");
        return RunAsync(
            "receive", Safety.Idempotent, node => JsonRequest(HttpMethod.Post, node, path, body),
            (status, result) => status switch
            {
                HttpStatusCode.OK => Parse(result, "receive", r => new ReceiveAckResult(
                    [.. r.Messages!.Value.EnumerateArray().Select(m => new Delivery(
                        m.GetProperty("offset").GetUInt64(), m.GetProperty("receipt").GetString()!, m.GetProperty("delivery_count").GetInt32(),
                        m.GetProperty("published_at").GetInt64(), Headers(m), Body(m)))],
                    ack is null ? new SettleResult(0, []) : new SettleResult(Get(r, "acked").GetInt32(), [.. Get(r, "stale").EnumerateArray().Select(s => s.GetString()!)]))),
                HttpStatusCode.NotFound when result?.Error == "no such topic" => throw new TopicNotFoundException(topic),
                _ => throw Rejected(status, result),
            },
            cancellationToken, wait);
    }

    /// <summary>
    /// Acks deliveries by their receipts (<c>POST /v1/topics/{topic}/ack</c>). Retried after a lost answer: a receipt the
    /// lost attempt acked is then reported stale.
    /// </summary>
    public Task<SettleResult> AckAsync(string topic, IReadOnlyList<string> receipts, string group = "default", bool deadLetters = false, CancellationToken cancellationToken = default) =>
        SettleAsync(topic, deadLetters ? "dead-letters/ack" : "ack", "acked", group, receipts, _ => { }, cancellationToken);

    /// <summary>
    /// Gives deliveries back (<c>POST /v1/topics/{topic}/nack</c>): delivered again after <paramref name="delay"/>, or
    /// dead-lettered with <paramref name="error"/> once they had max_deliveries deliveries.
    /// </summary>
    public Task<SettleResult> NackAsync(
        string topic, IReadOnlyList<string> receipts, string group = "default", TimeSpan? delay = null, string? error = null, bool deadLetters = false,
        CancellationToken cancellationToken = default) =>
        SettleAsync(topic, deadLetters ? "dead-letters/nack" : "nack", "nacked", group, receipts, w =>
        {
            w.WriteNumber("delay_ms", (long)(delay ?? TimeSpan.Zero).TotalMilliseconds);
            if (error is not null) w.WriteString("error", error);
        }, cancellationToken);

    /// <summary>Extends the leases of deliveries to <paramref name="lease"/> from now (<c>POST /v1/topics/{topic}/extend</c>).</summary>
    public Task<SettleResult> ExtendAsync(
        string topic, IReadOnlyList<string> receipts, TimeSpan lease, string group = "default", bool deadLetters = false, CancellationToken cancellationToken = default) =>
        SettleAsync(topic, deadLetters ? "dead-letters/extend" : "extend", "extended", group, receipts,
            w => w.WriteNumber("lease_ms", (long)lease.TotalMilliseconds), cancellationToken);

    /// <summary>
    /// Reads up to <paramref name="max"/> messages from offset <paramref name="from"/> (default: the oldest retained)
    /// without consuming them (<c>GET /v1/topics/{topic}/peek</c>); <paramref name="deadLetters"/> reads the dead letters.
    /// </summary>
    public Task<IReadOnlyList<ReceivedMessage>> PeekAsync(string topic, ulong? from = null, int max = 10, bool deadLetters = false, CancellationToken cancellationToken = default)
    {
        CheckTopic(topic);
        ArgumentOutOfRangeException.ThrowIfLessThan(max, 1);
        var path = TopicPath(topic, deadLetters ? "dead-letters/peek" : "peek") + $"?max={max}" + (from is { } f ? $"&from={f}" : "");
        return RunAsync(
            "peek", Safety.Read, node => new HttpRequestMessage(HttpMethod.Get, new Uri(node, path)),
            (status, result) => status switch
            {
                HttpStatusCode.OK => Parse(result, "peek", r => (IReadOnlyList<ReceivedMessage>)[.. r.Messages!.Value.EnumerateArray().Select(m =>
                    new ReceivedMessage(m.GetProperty("offset").GetUInt64(), m.GetProperty("published_at").GetInt64(), Headers(m), Body(m)))]),
                HttpStatusCode.NotFound => throw new TopicNotFoundException(topic),
                _ => throw Rejected(status, result),
            },
            cancellationToken);
    }

    /// <summary>Moves up to <paramref name="max"/> dead letters back to the topic's tail (<c>POST /v1/topics/{topic}/redrive</c>); not retried once sent.</summary>
    /// <returns>How many were moved.</returns>
    public Task<int> RedriveAsync(string topic, int max = 100, CancellationToken cancellationToken = default)
    {
        CheckTopic(topic);
        var body = Json(w => w.WriteNumber("max", max));
        return RunAsync(
            "redrive", Safety.Unsafe, node => JsonRequest(HttpMethod.Post, node, TopicPath(topic, "redrive"), body),
            (status, result) => status switch
            {
                HttpStatusCode.OK => Parse(result, "redrive", r => Get(r, "redriven").GetInt32()),
                HttpStatusCode.NotFound => throw new TopicNotFoundException(topic),
                _ => throw Rejected(status, result),
            },
            cancellationToken);
    }

    private Task<SettleResult> SettleAsync(
        string topic, string action, string field, string group, IReadOnlyList<string> receipts, Action<Utf8JsonWriter> more, CancellationToken cancellationToken)
    {
        CheckTopic(topic);
        ArgumentNullException.ThrowIfNull(receipts);
        if (receipts.Count == 0) throw new ArgumentException("at least one receipt", nameof(receipts));
        var body = Json(w =>
        {
            w.WriteString("group", group);
            w.WriteStartArray("receipts");
            foreach (var r in receipts) w.WriteStringValue(r);
            w.WriteEndArray();
            more(w);
        });
        return RunAsync(
            action, Safety.Idempotent, node => JsonRequest(HttpMethod.Post, node, TopicPath(topic, action), body),
            (status, result) => status switch
            {
                HttpStatusCode.OK => Parse(result, action, r => new SettleResult(
                    Get(r, field).GetInt32(), [.. Get(r, "stale").EnumerateArray().Select(s => s.GetString()!)])),
                HttpStatusCode.NotFound when result?.Error == "no such topic" => throw new TopicNotFoundException(topic),
                _ => throw Rejected(status, result),
            },
            cancellationToken);
    }

    private static byte[] Json(Action<Utf8JsonWriter> write)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            write(w);
            w.WriteEndObject();
        }
        return buffer.ToArray();
    }

    private static JsonElement? Optional(ResultBody r, string name) =>
        r.Extra is not null && r.Extra.TryGetValue(name, out var value) ? value : null;

    private static JsonElement Get(ResultBody r, string name) =>
        r.Extra is not null && r.Extra.TryGetValue(name, out var value) ? value : throw new KeyNotFoundException($"no \"{name}\" in the answer");

    private static T Parse<T>(ResultBody? result, string operation, Func<ResultBody, T> read)
    {
        try
        {
            return read(result ?? throw new InvalidOperationException("an empty answer"));
        }
        catch (Exception e) when (e is InvalidOperationException or KeyNotFoundException or FormatException)
        {
            throw new HttpRequestException($"the node's {operation} answer is not what the API documents: {e.Message}", e);
        }
    }

    private static List<KeyValuePair<string, string>> Headers(JsonElement m) =>
        [.. m.GetProperty("headers").EnumerateObject().Select(h => new KeyValuePair<string, string>(h.Name, h.Value.GetString()!))];

    private static byte[] Body(JsonElement m) =>
        m.GetProperty("body").ValueKind == JsonValueKind.String
            ? System.Text.Encoding.UTF8.GetBytes(m.GetProperty("body").GetString()!)
            : m.GetProperty("body_base64").GetBytesFromBase64();
}

namespace RaftMQ.Linearizability;

/// <summary>What a client asked of a topic with consumer groups.</summary>
public enum QueueCallKind
{
    /// <summary>A publish of messages with ids (an idempotent publish: a retry carries the same ids).</summary>
    Publish,

    /// <summary>A receive in a group: leases up to some messages for <see cref="QueueCall.LeaseMs"/>.</summary>
    Receive,

    /// <summary>An ack of receipts in a group.</summary>
    Ack,

    /// <summary>A nack of receipts in a group (delivered again, or dead-lettered at the group's last delivery).</summary>
    Nack,

    /// <summary>A dead letter read from the topic's dead-letter queue: the group and original offset it names.</summary>
    DeadLetter,
}

/// <summary>How a call ended, as its client saw it.</summary>
public enum QueueCallOutcome
{
    /// <summary>No answer yet.</summary>
    Pending,

    /// <summary>Answered: applied, with the result recorded on the call.</summary>
    Ok,

    /// <summary>Answered: certainly not applied (no leader, refused, connection refused).</summary>
    NotApplied,

    /// <summary>The client stopped waiting or the answer was lost: it may or may not have been applied.</summary>
    Unknown,
}

/// <summary>One delivery a receive answered with: the message's offset, its delivery count and the id it carries.</summary>
public readonly record struct QueueDelivery(ulong Offset, int DeliveryCount, string MessageId);

/// <summary>A receipt: names one delivery of the message at <paramref name="Offset"/> in a group.</summary>
public readonly record struct QueueReceipt(ulong Offset, int Delivery)
{
    public override string ToString() => $"({Offset}, #{Delivery})";
}

/// <summary>
/// One call of a queue client: its invocation and answer times (on one clock for the whole history, in ms), and what
/// the answer said. Fields not used by a kind stay empty.
/// </summary>
public sealed class QueueCall
{
    internal QueueCall(long id, QueueCallKind kind, string client, string? group, long invokedAt)
    {
        Id = id;
        Kind = kind;
        Client = client;
        Group = group;
        InvokedAt = invokedAt;
    }

    public long Id { get; }

    public QueueCallKind Kind { get; }

    /// <summary>The producer or consumer that made the call.</summary>
    public string Client { get; }

    /// <summary>The consumer group (receive, ack, nack, dead letter); null for a publish.</summary>
    public string? Group { get; }

    public long InvokedAt { get; }

    /// <summary>When the answer came (or the client gave up); -1 while pending.</summary>
    public long AnsweredAt { get; internal set; } = -1;

    public QueueCallOutcome Outcome { get; internal set; } = QueueCallOutcome.Pending;

    /// <summary>A publish's message ids, in order.</summary>
    public IReadOnlyList<string> MessageIds { get; internal init; } = [];

    /// <summary>A successful publish's offsets, one per id (for a duplicate: where the id was stored before).</summary>
    public IReadOnlyList<ulong> Offsets { get; internal set; } = [];

    /// <summary>A receive's lease, in ms.</summary>
    public long LeaseMs { get; internal init; }

    /// <summary>The most messages a receive asked for.</summary>
    public int Max { get; internal init; }

    /// <summary>What a successful receive delivered, in the order of its answer.</summary>
    public IReadOnlyList<QueueDelivery> Deliveries { get; internal set; } = [];

    /// <summary>The receipts an ack or nack sent.</summary>
    public IReadOnlyList<QueueReceipt> Receipts { get; internal init; } = [];

    /// <summary>The receipts a successful ack or nack reported stale (refused, untouched).</summary>
    public IReadOnlyList<QueueReceipt> Stale { get; internal set; } = [];

    /// <summary>A dead letter's original offset and the id its message carries.</summary>
    public QueueDelivery DeadLettered { get; internal init; }

    /// <summary>The receipts a successful ack or nack applied: those sent and not reported stale.</summary>
    public IEnumerable<QueueReceipt> Applied => Outcome == QueueCallOutcome.Ok ? Receipts.Where(r => !Stale.Contains(r)) : [];

    public override string ToString()
    {
        var what = Kind switch
        {
            QueueCallKind.Publish => $"publish [{string.Join(", ", MessageIds)}]" + (Outcome == QueueCallOutcome.Ok ? $" -> offsets [{string.Join(", ", Offsets)}]" : ""),
            QueueCallKind.Receive => $"receive in {Group} (max {Max}, lease {LeaseMs} ms)" +
                (Outcome == QueueCallOutcome.Ok ? $" -> [{string.Join(", ", Deliveries.Select(d => $"{d.MessageId}@{d.Offset}#{d.DeliveryCount}"))}]" : ""),
            QueueCallKind.Ack or QueueCallKind.Nack => $"{Kind.ToString().ToLowerInvariant()} in {Group} [{string.Join(", ", Receipts)}]" +
                (Outcome == QueueCallOutcome.Ok ? $" -> stale [{string.Join(", ", Stale)}]" : ""),
            _ => $"dead letter of {Group}: {DeadLettered.MessageId}@{DeadLettered.Offset}",
        };
        return $"#{Id} {Client} {what} [{InvokedAt}..{(AnsweredAt < 0 ? "?" : AnsweredAt.ToString(System.Globalization.CultureInfo.InvariantCulture))}] {Outcome}";
    }
}

/// <summary>
/// The record of what queue clients asked and were answered, for <see cref="QueueHistoryChecker"/>. Thread-safe:
/// real clients record from several tasks; the simulator records from its one thread on virtual time.
/// </summary>
public sealed class QueueHistory
{
    private readonly List<QueueCall> _calls = [];
    private readonly Func<long> _now;
    private readonly Lock _lock = new();

    /// <param name="now">The clock every call is stamped with, in ms (virtual time in the simulator, Unix ms for real processes).</param>
    public QueueHistory(Func<long> now)
    {
        ArgumentNullException.ThrowIfNull(now);
        _now = now;
    }

    /// <summary>A snapshot of the calls, in invocation order.</summary>
    public IReadOnlyList<QueueCall> Calls
    {
        get
        {
            lock (_lock) return [.. _calls];
        }
    }

    /// <summary>
    /// A copy of <paramref name="calls"/> (times and answers as recorded) in which each successful receive answered
    /// what <paramref name="deliveries"/> says instead: for checking the checker on a real run's history with a bug put in.
    /// </summary>
    public static IReadOnlyList<QueueCall> Rewrite(IEnumerable<QueueCall> calls, Func<QueueCall, IReadOnlyList<QueueDelivery>> deliveries)
    {
        ArgumentNullException.ThrowIfNull(calls);
        ArgumentNullException.ThrowIfNull(deliveries);
        return [.. calls.Select(c => new QueueCall(c.Id, c.Kind, c.Client, c.Group, c.InvokedAt)
        {
            MessageIds = c.MessageIds,
            LeaseMs = c.LeaseMs,
            Max = c.Max,
            Receipts = c.Receipts,
            DeadLettered = c.DeadLettered,
            AnsweredAt = c.AnsweredAt,
            Outcome = c.Outcome,
            Offsets = c.Offsets,
            Stale = c.Stale,
            Deliveries = c.Kind == QueueCallKind.Receive && c.Outcome == QueueCallOutcome.Ok ? [.. deliveries(c)] : c.Deliveries,
        })];
    }

    public QueueCall Publish(string client, IReadOnlyList<string> messageIds) =>
        Add(id => new QueueCall(id, QueueCallKind.Publish, client, null, _now()) { MessageIds = [.. messageIds] });

    public QueueCall Receive(string client, string group, int max, long leaseMs) =>
        Add(id => new QueueCall(id, QueueCallKind.Receive, client, group, _now()) { Max = max, LeaseMs = leaseMs });

    public QueueCall Ack(string client, string group, IReadOnlyList<QueueReceipt> receipts) =>
        Add(id => new QueueCall(id, QueueCallKind.Ack, client, group, _now()) { Receipts = [.. receipts] });

    public QueueCall Nack(string client, string group, IReadOnlyList<QueueReceipt> receipts) =>
        Add(id => new QueueCall(id, QueueCallKind.Nack, client, group, _now()) { Receipts = [.. receipts] });

    /// <summary>Records a dead letter read back: <paramref name="group"/> dead-lettered the message at <paramref name="offset"/>.</summary>
    public QueueCall DeadLetter(string client, string group, ulong offset, string messageId)
    {
        var call = Add(id => new QueueCall(id, QueueCallKind.DeadLetter, client, group, _now()) { DeadLettered = new QueueDelivery(offset, 0, messageId) });
        Finish(call, QueueCallOutcome.Ok, null);
        return call;
    }

    /// <summary>A publish was applied; <paramref name="offsets"/> has one offset per message id.</summary>
    public void Published(QueueCall call, IReadOnlyList<ulong> offsets)
    {
        if (offsets.Count != call.MessageIds.Count) throw new ArgumentException($"{offsets.Count} offsets for {call.MessageIds.Count} messages");
        Finish(call, QueueCallOutcome.Ok, () => call.Offsets = [.. offsets]);
    }

    public void Received(QueueCall call, IReadOnlyList<QueueDelivery> deliveries) =>
        Finish(call, QueueCallOutcome.Ok, () => call.Deliveries = [.. deliveries]);

    /// <summary>An ack or nack was applied; <paramref name="stale"/> are the receipts it refused.</summary>
    public void Settled(QueueCall call, IReadOnlyList<QueueReceipt> stale) =>
        Finish(call, QueueCallOutcome.Ok, () => call.Stale = [.. stale]);

    public void NotApplied(QueueCall call) => Finish(call, QueueCallOutcome.NotApplied, null);

    public void Unknown(QueueCall call) => Finish(call, QueueCallOutcome.Unknown, null);

    private QueueCall Add(Func<long, QueueCall> make)
    {
        lock (_lock)
        {
            var call = make(_calls.Count + 1);
            _calls.Add(call);
            return call;
        }
    }

    private void Finish(QueueCall call, QueueCallOutcome outcome, Action? set)
    {
        lock (_lock)
        {
            if (call.Outcome != QueueCallOutcome.Pending) throw new InvalidOperationException($"call {call} was answered already");
            set?.Invoke();
            call.AnsweredAt = _now();
            call.Outcome = outcome;
        }
    }
}

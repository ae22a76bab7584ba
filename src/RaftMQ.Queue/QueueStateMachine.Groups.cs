using System.Buffers;
using System.Text;
using RaftMQ.Queue.Groups;
using RaftMQ.Queue.Store;

namespace RaftMQ.Queue;

/// <summary>
/// The delivery model (docs/queue-store.md, "Consumer groups"): per topic, groups with cursors, leases, messages to
/// deliver again, finished ranges above an ack floor; dead letters; the pops as an atomic receive and ack on the
/// group <c>default</c>. Every time it uses is the leader's, from the commands (<see cref="Tick"/>).
/// </summary>
public sealed partial class QueueStateMachine
{
    private delegate bool RecordSink(ulong offset, ReadOnlySpan<byte> record);

    /// <summary>A message a group may be given next: from its pending set (a redelivery) or at its cursor.</summary>
    private readonly record struct Candidate(ulong Offset, long Position, int Count, string? Error, bool Redelivery);

    /// <summary>The replicated clock: the latest leader time applied (Unix ms); it never goes back.</summary>
    public long Clock => _store.Clock;

    /// <summary>Advances the replicated clock to a stamped command's time and returns it; unstamped commands leave it.</summary>
    private long Tick(QueueCommand c)
    {
        if (QueueCommand.IsStamped(c.Op) && c.TimestampMs > _store.Clock) _store.Clock = c.TimestampMs;
        return _store.Clock;
    }

    /// <summary>A topic restored from a snapshot of a format without groups: <c>default</c> at its head, the default settings.</summary>
    private void InitialState(TopicLog log) =>
        log.State = new TopicState(DeadLetters.IsDeadLetterTopic(log.Name) ? 0 : _limits.DefaultMaxDeliveries, log.Head, log.LogicalHead, created: 0)
        {
            DedupWindowMs = _limits.DefaultDedupWindowMs,
        };

    private int UserTopicCount()
    {
        var n = 0;
        foreach (var t in _store.Topics)
        {
            if (!DeadLetters.IsDeadLetterTopic(t.Name)) n++;
        }
        return n;
    }

    private TopicLog NewTopic(string name, int maxDeliveries)
    {
        var log = _store.CreateTopic(name);
        log.State = new TopicState(maxDeliveries, log.Head, log.LogicalHead, _applying) { DedupWindowMs = _limits.DefaultDedupWindowMs };
        return log;
    }

    private static QueueMessage ToMessage(string topic, ulong offset, ReadOnlySpan<byte> record, int deliveryCount = 0)
    {
        // Written by this store from a decoded command, and checked by CRC on the way back: always well formed.
        if (!MessageHeaders.TryRead(MessageRecord.Headers(record), out var headers))
            throw new InvalidDataException($"the headers of message {offset} in topic {topic} do not decode");
        return new QueueMessage(MessageRecord.Payload(record).ToArray(), headers)
        {
            Offset = offset, TimestampMs = MessageRecord.Timestamp(record), DeliveryCount = deliveryCount,
        };
    }

    /// <summary>
    /// Atomic receive and ack on <c>default</c>, up to <paramref name="limit"/> messages, for as long as
    /// <paramref name="sink"/> takes them (it returns false to leave a message where it is).
    /// </summary>
    private void PopDefault(TopicLog log, int limit, RecordSink sink)
    {
        var state = log.State!;
        var group = state.Default!;
        var now = _store.Clock;
        ExpireOld(log, now);
        group.ExpireLeases(now);
        for (var taken = 0; taken < limit && NextCandidate(log, state, group, now, out var c); taken++)
        {
            var record = log.ReadRecordAt(c.Offset, c.Position, out var size);
            if (!sink(c.Offset, record)) break;
            Take(group, c, size);
            group.Finish(c.Offset);
            group.AckedTotal++;
        }
        AdvanceHead(log);
    }

    /// <summary>
    /// The next message for <paramref name="group"/>: the lowest pending offset deliverable now (dead-lettering on
    /// the way those that reached the delivery limit), else the cursor's, else none.
    /// </summary>
    private bool NextCandidate(TopicLog log, TopicState state, ConsumerGroup group, long now, out Candidate candidate)
    {
        while (group.FirstReady(now, out var offset, out var pending))
        {
            if (!state.Exhausted(pending.Count))
            {
                candidate = new Candidate(offset, pending.Position, pending.Count, pending.Error, true);
                return true;
            }
            group.RemovePending(offset);
            DeadLetter(log, group, offset, pending.Position, pending.Count, pending.Error, now);
        }
        state.Delays.Prune(now, log.Head);
        while (group.Cursor < log.Tail)
        {
            // A message published with a delay not over yet: set aside in the group's pending set until it is due,
            // and the cursor goes on (within the group's in-flight bound).
            if (state.Delays.Count > 0 && state.Delays.TryGetDue(group.Cursor, out var due) && due > now)
            {
                if (group.InFlight >= _limits.MaxInFlightPerGroup) break;
                log.ReadRecordAt(group.Cursor, group.CursorPosition, out var size);
                group.SetPending(group.Cursor, new Pending(group.CursorPosition, 0, due, null));
                group.AdvanceCursor(size);
                continue;
            }
            candidate = new Candidate(group.Cursor, group.CursorPosition, 0, null, false);
            return true;
        }
        candidate = default;
        return false;
    }

    private static void Take(ConsumerGroup group, Candidate c, int recordSize)
    {
        if (c.Redelivery) group.RemovePending(c.Offset);
        else group.AdvanceCursor(recordSize);
        group.DeliveredTotal++;
    }

    /// <summary>
    /// Moves <paramref name="offset"/> (already neither leased nor pending) to the dead-letter topic with its story in
    /// headers, and finishes it for <paramref name="group"/>. Not bound by the byte limits: the message is held
    /// already, and refusing would lose it.
    /// </summary>
    private void DeadLetter(TopicLog log, ConsumerGroup group, ulong offset, long position, int deliveries, string? error, long now)
    {
        var record = log.ReadRecordAt(offset, position, out _);
        var message = ToMessage(log.Name, offset, record);
        var name = DeadLetters.TopicFor(log.Name);
        var dead = _store.Find(name) ?? NewTopic(name, 0);
        var headers = DeadLetters.Headers(message.Headers, deliveries, offset, message.TimestampMs, group.Name, error);
        var encoded = new byte[MessageHeaders.EncodedBytes(headers)];
        MessageHeaders.Write(encoded, headers);
        dead.Append(encoded, message.Payload.Span, now);
        dead.State!.PublishedTotal++;
        group.Finish(offset);
        group.DeadLetteredTotal++;
        _deadLettered = true;
    }

    /// <summary>
    /// Moves the topic's head up to its lowest group floor, deleting what every group has finished; and lets the store
    /// compact segments held only by an unfinished message below what every group finished above it.
    /// </summary>
    private static void AdvanceHead(TopicLog log)
    {
        var lowest = log.State!.Lowest();
        if (lowest.Floor > log.Head) log.AdvanceHeadTo(lowest.Floor, lowest.FloorPosition);
        log.MaybeCompact();
    }

    private QueueResult ConfigureTopic(string topic, int maxDeliveries, bool createIfMissing, long? dedupWindowMs, TopicRetention? retention, long now)
    {
        _ageLimitedTopics = -1;
        if (maxDeliveries < 0 || maxDeliveries > _limits.MaxDeliveriesLimit) return new QueueResult(QueueStatus.Invalid);
        if (dedupWindowMs is < 0 || dedupWindowMs > _limits.MaxDedupWindowMs) return new QueueResult(QueueStatus.Invalid);
        if (retention is not null && _limits.CheckRetention(retention, Bounds) is not null) return new QueueResult(QueueStatus.Invalid);
        if (_store.Find(topic) is { } log)
        {
            if (maxDeliveries == 0 && dedupWindowMs is null && (retention is null || retention.IsEmpty))
            {
                // Changes nothing, but expires what is due on the topic now (what the leader proposes it for when no
                // other command moves the clock).
                ExpireOld(log, now);
                return QueueResult.Ok;
            }
            // A dead-letter topic keeps its messages whatever happens to them: it never dead-letters, and it has no
            // retention of its own (its messages leave by redrive, or with the topic).
            if (DeadLetters.IsDeadLetterTopic(topic)) return new QueueResult(QueueStatus.Invalid);
            if (maxDeliveries != 0) log.State!.MaxDeliveries = maxDeliveries;
            if (dedupWindowMs is { } window) log.State!.DedupWindowMs = window;
            SetRetention(log.State!, retention);
            EnforceRetention(log, now);
            return QueueResult.Ok;
        }
        if (!createIfMissing) return new QueueResult(QueueStatus.NoSuchTopic);
        if (DeadLetters.IsDeadLetterTopic(topic)) return new QueueResult(QueueStatus.Invalid);
        if (UserTopicCount() >= _limits.MaxTopics) return new QueueResult(QueueStatus.LimitReached);
        var created = NewTopic(topic, maxDeliveries == 0 ? _limits.DefaultMaxDeliveries : maxDeliveries);
        if (dedupWindowMs is { } w) created.State!.DedupWindowMs = w;
        SetRetention(created.State!, retention);
        return QueueResult.Ok with { Count = 1 };
    }

    private QueueResult DeleteTopic(string topic)
    {
        _ageLimitedTopics = -1;
        if (_store.Find(topic) is not { } log) return new QueueResult(QueueStatus.NoSuchTopic);
        _dedupIds -= log.State!.Dedup.Count;
        _store.RemoveTopic(log);
        if (!DeadLetters.IsDeadLetterTopic(topic) && _store.Find(DeadLetters.TopicFor(topic)) is { } dead) _store.RemoveTopic(dead);
        return QueueResult.Ok;
    }

    private QueueResult CreateGroup(string topic, string? group, GroupStart start)
    {
        if (_store.Find(topic) is not { } log) return new QueueResult(QueueStatus.NoSuchTopic);
        if (_limits.CheckGroupName(group) is not null) return new QueueResult(QueueStatus.Invalid);
        var state = log.State!;
        if (state.Find(group!) is not null) return new QueueResult(QueueStatus.GroupExists);
        if (state.Groups.Count >= _limits.MaxGroupsPerTopic) return new QueueResult(QueueStatus.LimitReached);
        var created = start == GroupStart.Latest ? new ConsumerGroup(group!, log.Tail, log.LogicalTail) : GroupAtHead(log, group!);
        created.Created = _applying;
        state.Add(created);
        return QueueResult.Ok;
    }

    /// <summary>
    /// Deletes a group: its leases and pending deliveries end (their receipts answer as unknown group), and the head
    /// moves up to the lowest floor of the groups left, deleting what only it held. The topic's last group stays
    /// (<see cref="QueueStatus.LastGroup"/>): with none, nothing would hold what is published. <c>default</c> can go
    /// too; the string and binary pops (an atomic receive and ack on it) then answer <see cref="QueueStatus.NoSuchGroup"/>
    /// until a group of that name is created again.
    /// </summary>
    private QueueResult DeleteGroup(string topic, string? group)
    {
        if (DeadLetters.IsDeadLetterTopic(topic)) return new QueueResult(QueueStatus.Invalid);
        if (_store.Find(topic) is not { } log) return new QueueResult(QueueStatus.NoSuchTopic);
        if (_limits.CheckGroupName(group) is not null) return new QueueResult(QueueStatus.Invalid);
        var state = log.State!;
        if (state.Find(group!) is null) return new QueueResult(QueueStatus.NoSuchGroup);
        if (state.Groups.Count == 1) return new QueueResult(QueueStatus.LastGroup);
        state.Remove(group!);
        AdvanceHead(log);
        return QueueResult.Ok;
    }

    /// <summary>
    /// A new group at the earliest retained message: below the lowest cursor it owes what some group still holds
    /// (leased or pending there; due when its publish delay ends), and skips what every group has finished, which the
    /// store may no longer keep (docs/queue-store.md, "Compaction").
    /// </summary>
    private static ConsumerGroup GroupAtHead(TopicLog log, string name)
    {
        var state = log.State!;
        var lowest = state.Groups[0];
        foreach (var g in state.Groups)
        {
            if (g.Cursor < lowest.Cursor) lowest = g;
        }
        var waiting = new SortedDictionary<ulong, Pending>();
        foreach (var g in state.Groups)
        {
            foreach (var (offset, lease) in g.Leased)
            {
                if (offset < lowest.Cursor) waiting.TryAdd(offset, new Pending(lease.Position, 0, Due(state, offset), null));
            }
            foreach (var (offset, pending) in g.PendingEntries)
            {
                if (offset < lowest.Cursor) waiting.TryAdd(offset, new Pending(pending.Position, 0, Due(state, offset), null));
            }
        }
        return ConsumerGroup.StartingAtHead(name, log.Head, log.LogicalHead, lowest.Cursor, lowest.CursorPosition,
            waiting.Select(e => (e.Key, e.Value)), state.FinishedByAll(log.Head, lowest.Cursor));

        static long Due(TopicState state, ulong offset) => state.Delays.TryGetDue(offset, out var due) ? due : 0;
    }

    /// <summary>The topic and group a group command names, or why not.</summary>
    private QueueResult? FindGroup(string topic, string? group, out TopicLog log, out ConsumerGroup consumers)
    {
        log = null!;
        consumers = null!;
        if (_store.Find(topic) is not { } found) return new QueueResult(QueueStatus.NoSuchTopic);
        if (group is null || found.State!.Find(group) is not { } g) return new QueueResult(QueueStatus.NoSuchGroup);
        log = found;
        consumers = g;
        return null;
    }

    /// <summary>
    /// Leases up to <paramref name="max"/> messages for <paramref name="leaseMs"/>: deliverable pending ones first
    /// (lowest offset first), then from the cursor while the group has fewer than
    /// <see cref="QueueLimits.MaxInFlightPerGroup"/> in flight; within <see cref="QueueLimits.MaxPopBatchBytes"/> as a pop.
    /// </summary>
    private QueueResult Receive(string topic, string? group, int max, long leaseMs, long now)
    {
        if (FindGroup(topic, group, out var log, out var consumers) is { } missing) return missing;
        if (max < 1 || max > _limits.MaxBatchMessages || leaseMs < 1 || leaseMs > _limits.MaxLeaseMs) return new QueueResult(QueueStatus.Invalid);
        var state = log.State!;
        ExpireOld(log, now);
        consumers.ExpireLeases(now);
        var delivered = new List<QueueMessage>();
        long size = 0;
        while (delivered.Count < max && NextCandidate(log, state, consumers, now, out var c))
        {
            if (!c.Redelivery && consumers.InFlight >= _limits.MaxInFlightPerGroup) break;
            var record = log.ReadRecordAt(c.Offset, c.Position, out var recordSize);
            var bytes = MessageRecord.Headers(record).Length + MessageRecord.Payload(record).Length;
            if (delivered.Count > 0 && size + bytes > _limits.MaxPopBatchBytes) break;
            delivered.Add(ToMessage(topic, c.Offset, record, c.Count + 1));
            size += bytes;
            Take(consumers, c, recordSize);
            consumers.AddLease(c.Offset, new Lease(c.Position, c.Count + 1, now + leaseMs, c.Error));
        }
        AdvanceHead(log);
        return QueueResult.Ok with { Delivered = delivered, ReceiptTag = Receipt.TagOf(topic, consumers.Name, consumers.Created) };
    }

    /// <summary>
    /// The delivery <paramref name="receipt"/> names, if it was given by this group (its tag is <paramref name="tag"/>,
    /// or it has none) and is still the message's latest delivery and not finished: leased, or its lease ended and it
    /// was not delivered again yet.
    /// </summary>
    private static bool Current(ConsumerGroup group, ulong tag, Receipt receipt, out long position, out string? error, out bool leased)
    {
        if (receipt.Tag is { } given && given != tag)
        {
            (position, error, leased) = (0, null, false);
            return false;
        }
        if (group.TryGetLease(receipt.Offset, out var lease) && lease.Count == receipt.Delivery)
        {
            (position, error, leased) = (lease.Position, lease.Error, true);
            return true;
        }
        if (group.TryGetPending(receipt.Offset, out var pending) && pending.Count == receipt.Delivery)
        {
            (position, error, leased) = (pending.Position, pending.Error, false);
            return true;
        }
        (position, error, leased) = (0, null, false);
        return false;
    }

    private static void Release(ConsumerGroup group, ulong offset, bool leased)
    {
        if (leased) group.RemoveLease(offset);
        else group.RemovePending(offset);
    }

    private QueueResult? CheckReceipts(IReadOnlyList<Receipt>? receipts) =>
        receipts is null || receipts.Count == 0 || receipts.Count > _limits.MaxReceiptsPerCall ? new QueueResult(QueueStatus.Invalid) : null;

    /// <summary>Finishes the current deliveries among <paramref name="receipts"/>; the others are answered as stale.</summary>
    private QueueResult Ack(string topic, string? group, IReadOnlyList<Receipt>? receipts, long now)
    {
        if (FindGroup(topic, group, out var log, out var consumers) is { } missing) return missing;
        if (CheckReceipts(receipts) is { } invalid) return invalid;
        consumers.ExpireLeases(now);
        var stale = new List<Receipt>();
        var acked = 0;
        var tag = Receipt.TagOf(topic, consumers.Name, consumers.Created);
        foreach (var r in receipts!)
        {
            if (!Current(consumers, tag, r, out _, out _, out var leased))
            {
                stale.Add(r);
                continue;
            }
            Release(consumers, r.Offset, leased);
            consumers.Finish(r.Offset);
            consumers.AckedTotal++;
            acked++;
        }
        AdvanceHead(log);
        return QueueResult.Ok with { Count = acked, Stale = stale };
    }

    /// <summary>
    /// An <see cref="Ack"/> of <paramref name="receipts"/> then a <see cref="Receive"/>, both at <paramref name="now"/>:
    /// every argument is checked first, so a bad one changes nothing; then the ack (stale receipts reported, never
    /// applied) and the receive. Answered with the receive's <see cref="QueueResult.Delivered"/>, the ack's
    /// <see cref="QueueResult.Count"/> and <see cref="QueueResult.Stale"/>.
    /// </summary>
    private QueueResult ReceiveAck(string topic, string? group, int max, long leaseMs, IReadOnlyList<Receipt>? receipts, long now)
    {
        if (FindGroup(topic, group, out _, out _) is { } missing) return missing;
        if (CheckReceipts(receipts) is { } invalid) return invalid;
        if (max < 1 || max > _limits.MaxBatchMessages || leaseMs < 1 || leaseMs > _limits.MaxLeaseMs) return new QueueResult(QueueStatus.Invalid);
        var acked = Ack(topic, group, receipts, now);
        var received = Receive(topic, group, max, leaseMs, now);
        return received with { Count = acked.Count, Stale = acked.Stale };
    }

    /// <summary>
    /// Gives the current deliveries among <paramref name="receipts"/> back: each is delivered again no sooner than
    /// <paramref name="delayMs"/> from now, or dead-lettered when it has had max_deliveries deliveries.
    /// </summary>
    private QueueResult Nack(string topic, string? group, IReadOnlyList<Receipt>? receipts, long delayMs, string? error, long now)
    {
        if (FindGroup(topic, group, out var log, out var consumers) is { } missing) return missing;
        if (CheckReceipts(receipts) is { } invalid) return invalid;
        if (delayMs < 0 || delayMs > _limits.MaxNackDelayMs || (error is not null && Encoding.UTF8.GetByteCount(error) > _limits.MaxNackErrorBytes))
            return new QueueResult(QueueStatus.Invalid);
        var state = log.State!;
        consumers.ExpireLeases(now);
        var stale = new List<Receipt>();
        var nacked = 0;
        var tag = Receipt.TagOf(topic, consumers.Name, consumers.Created);
        foreach (var r in receipts!)
        {
            if (!Current(consumers, tag, r, out var position, out var previous, out var leased))
            {
                stale.Add(r);
                continue;
            }
            Release(consumers, r.Offset, leased);
            var last = error ?? previous;
            if (state.Exhausted(r.Delivery)) DeadLetter(log, consumers, r.Offset, position, r.Delivery, last, now);
            else consumers.SetPending(r.Offset, new Pending(position, r.Delivery, now + delayMs, last));
            nacked++;
        }
        AdvanceHead(log);
        return QueueResult.Ok with { Count = nacked, Stale = stale };
    }

    /// <summary>Leases the current deliveries among <paramref name="receipts"/> for <paramref name="leaseMs"/> from now (also one whose lease just ended, if not delivered again).</summary>
    private QueueResult Extend(string topic, string? group, IReadOnlyList<Receipt>? receipts, long leaseMs, long now)
    {
        if (FindGroup(topic, group, out _, out var consumers) is { } missing) return missing;
        if (CheckReceipts(receipts) is { } invalid) return invalid;
        if (leaseMs < 1 || leaseMs > _limits.MaxLeaseMs) return new QueueResult(QueueStatus.Invalid);
        consumers.ExpireLeases(now);
        var stale = new List<Receipt>();
        var extended = 0;
        var tag = Receipt.TagOf(topic, consumers.Name, consumers.Created);
        foreach (var r in receipts!)
        {
            if (!Current(consumers, tag, r, out var position, out var error, out var leased))
            {
                stale.Add(r);
                continue;
            }
            Release(consumers, r.Offset, leased);
            consumers.AddLease(r.Offset, new Lease(position, r.Delivery, now + leaseMs, error));
            extended++;
        }
        return QueueResult.Ok with { Count = extended, Stale = stale };
    }

    /// <summary>
    /// Moves up to <paramref name="max"/> of the oldest dead letters back to the topic's tail (their added headers
    /// removed, published now); stops at the topic's bounds (LimitReached, or TopicFull for its own retention bounds, when none fit).
    /// </summary>
    private QueueResult Redrive(string topic, int max, long now)
    {
        if (_store.Find(topic) is not { } log) return new QueueResult(QueueStatus.NoSuchTopic);
        if (DeadLetters.IsDeadLetterTopic(topic) || max < 1 || max > _limits.MaxBatchMessages) return new QueueResult(QueueStatus.Invalid);
        if (_store.Find(DeadLetters.TopicFor(topic)) is not { } dead) return QueueResult.Ok with { Count = 0 };
        var state = dead.State!;
        var consumers = state.Default!; // a dead-letter topic's only group
        consumers.ExpireLeases(now);
        var moved = 0;
        QueueStatus? full = null;
        var buffer = ArrayPool<byte>.Shared.Rent(_limits.MaxHeaderBytes + DeadLetters.MaxAddedHeaderBytes(_limits));
        try
        {
            while (moved < max && NextCandidate(dead, state, consumers, now, out var c))
            {
                var record = dead.ReadRecordAt(c.Offset, c.Position, out var recordSize);
                var message = ToMessage(dead.Name, c.Offset, record);
                var headers = message.Headers.Where(h => !DeadLetters.IsReservedHeader(h.Name)).ToList();
                var headerBytes = MessageHeaders.EncodedBytes(headers);
                if (Admit(log, QueueLimits.MessageOverheadBytes + headerBytes + message.Payload.Length, 1, out var plan) is { } refused)
                {
                    full = refused;
                    break;
                }
                Drop(log, plan);
                log.Append(buffer.AsSpan(0, MessageHeaders.Write(buffer, headers)), message.Payload.Span, now);
                log.State!.PublishedTotal++;
                Take(consumers, c, recordSize);
                consumers.Finish(c.Offset);
                consumers.AckedTotal++;
                moved++;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        AdvanceHead(dead);
        return full is { } status && moved == 0 ? new QueueResult(status) : QueueResult.Ok with { Count = moved };
    }

    /// <summary>
    /// A topic's settings and each group's counts at <paramref name="now"/> (the later of it and <see cref="Clock"/>);
    /// null when the topic does not exist. A read: call on the runtime's loop (ReadAsync). O(groups + in flight).
    /// </summary>
    public TopicStats? Stats(string topic, long now)
    {
        if (_store.Find(topic) is not { } log) return null;
        now = Math.Max(now, _store.Clock);
        var state = log.State!;
        var groups = new List<GroupStats>(state.Groups.Count);
        var notDue = NotDue(state, now);
        for (int i = 0; i < state.Groups.Count; i++)
        {
            var g = state.Groups[i];
            groups.Add(CountGroup(log, g, now, OldestPublished(log, g), notDue[i]) with { DeliveryCounts = g.DeliveryCounts(log.Tail) });
        }
        var deadName = DeadLetters.IsDeadLetterTopic(topic) ? null : DeadLetters.TopicFor(topic);
        return new TopicStats(topic, log.Head, log.Tail, log.Count, log.Bytes, state.MaxDeliveries, deadName,
            DeadLettersWaiting(log), state.PublishedTotal, groups)
        {
            DedupWindowMs = state.DedupWindowMs, DedupIds = state.Dedup.Count, DedupForgottenEarlyTotal = state.Dedup.ForgottenEarlyTotal,
            MaxMessages = state.MaxMessages, MaxBytes = state.MaxBytes, MaxAgeMs = state.MaxAgeMs, Overflow = state.Overflow,
            Expire = state.Expire, OverflowDroppedTotal = state.OverflowDroppedTotal, ExpiredTotal = state.ExpiredTotal,
        };
    }

    /// <summary>
    /// The earliest replicated time (Unix ms, compared with the stamp of a receive) at which a receive of
    /// <paramref name="group"/> might deliver something with no other command applied first: the earliest end of a
    /// lease or of a pending message's delay (one already past <see cref="Clock"/> counts as now). <see cref="long.MinValue"/>
    /// when a receive might deliver now whatever its time: a message waits past the cursor within the in-flight bound
    /// (perhaps one still delayed, which that receive sets aside with its due time), or the topic or group does not
    /// exist (the receive answers that). <see cref="long.MaxValue"/> when nothing will until a command changes the
    /// group (see <see cref="Deliverable"/>). A read (call on the loop); O(log in flight).
    /// </summary>
    public long NextDeliveryAt(string topic, string group)
    {
        if (_store.Find(topic) is not { } log || log.State!.Find(group) is not { } g) return long.MinValue;
        if (g.Cursor < log.Tail && g.InFlight < _limits.MaxInFlightPerGroup) return long.MinValue;
        var next = Math.Min(g.EarliestLeaseDeadline, g.EarliestPendingAt);
        return next <= _store.Clock ? long.MinValue : next;
    }

    /// <summary>Whether <paramref name="topic"/> exists. A read (call on the loop).</summary>
    public bool HasTopic(string topic) => _store.Find(topic) is not null;

    /// <summary>
    /// Up to <paramref name="max"/> messages from offset <paramref name="from"/> (the head when null or below it), without
    /// consuming anything, within <see cref="QueueLimits.MaxPopBatchBytes"/>; null when the topic does not exist. A
    /// read (call on the loop); starting at an offset other than the head reads the records before it in its segment.
    /// Messages every group has finished are not shown (the store may no longer keep them).
    /// </summary>
    public IReadOnlyList<QueueMessage>? Peek(string topic, ulong? from, int max)
    {
        if (_store.Find(topic) is not { } log) return null;
        var offset = Math.Max(from ?? log.Head, log.Head);
        var result = new List<QueueMessage>();
        if (offset >= log.Tail || max < 1) return result;
        long size = 0;
        var (start, position) = log.StartAtOrBefore(offset, 0);
        foreach (var (at, atPosition, _) in log.Retained(start, position))
        {
            if (at < offset) continue;
            if (result.Count >= Math.Min(max, _limits.MaxBatchMessages)) break;
            var record = log.ReadRecordAt(at, atPosition, out _);
            var bytes = MessageRecord.Headers(record).Length + MessageRecord.Payload(record).Length;
            if (result.Count > 0 && size + bytes > _limits.MaxPopBatchBytes) break;
            result.Add(ToMessage(topic, at, record));
            size += bytes;
        }
        return result;
    }
}

/// <summary>A topic as <see cref="QueueStateMachine.Stats"/> sees it.</summary>
/// <param name="Topic">The topic's name.</param>
/// <param name="MaxDeliveries">Deliveries after which a message is dead-lettered; 0 for a dead-letter topic (never).</param>
/// <param name="PublishedTotal">Messages published to it since it was created.</param>
/// <param name="Groups">Its consumer groups, <c>default</c> first, then in creation order.</param>
/// <param name="Head">The oldest retained offset (the lowest ack floor of the groups).</param>
/// <param name="Tail">The offset the next message gets.</param>
/// <param name="Messages">Messages retained (tail − head).</param>
/// <param name="Bytes">Bytes the retained messages count against the limits.</param>
/// <param name="DeadLetterTopic">The name of the topic's dead-letter topic; null for a dead-letter topic itself.</param>
/// <param name="DeadLettered">Messages waiting in the dead-letter topic.</param>
public sealed record TopicStats(
    string Topic, ulong Head, ulong Tail, long Messages, long Bytes, int MaxDeliveries, string? DeadLetterTopic, long DeadLettered,
    long PublishedTotal, IReadOnlyList<GroupStats> Groups)
{
    /// <summary>How long a published message id is remembered, in ms (0: ids are not remembered).</summary>
    public long DedupWindowMs { get; init; }

    /// <summary>Message ids the topic remembers now (some may have expired and not been forgotten yet: that happens at its next extended publish).</summary>
    public int DedupIds { get; init; }

    /// <summary>Ids forgotten before their window passed, to stay within <see cref="QueueLimits.MaxDedupIdsPerTopic"/> or <see cref="QueueLimits.MaxDedupIds"/>.</summary>
    public long DedupForgottenEarlyTotal { get; init; }

    /// <summary>Most messages retained (0: unlimited).</summary>
    public long MaxMessages { get; init; }

    /// <summary>Most bytes retained (0: unlimited).</summary>
    public long MaxBytes { get; init; }

    /// <summary>Age at which a message expires, in ms (0: never).</summary>
    public long MaxAgeMs { get; init; }

    /// <summary>What a publish past <see cref="MaxMessages"/> or <see cref="MaxBytes"/> does.</summary>
    public OverflowPolicy Overflow { get; init; }

    /// <summary>What becomes of an expired message.</summary>
    public ExpiryAction Expire { get; init; }

    /// <summary>Messages removed so far to make room under <see cref="OverflowPolicy.DropOldest"/>.</summary>
    public long OverflowDroppedTotal { get; init; }

    /// <summary>Messages removed so far by age (dead-lettered or dropped).</summary>
    public long ExpiredTotal { get; init; }
}

/// <summary>One consumer group of <see cref="TopicStats"/>.</summary>
/// <param name="Group">The group's name.</param>
/// <param name="DeliveredTotal">Deliveries so far (a redelivery counts again).</param>
/// <param name="AckedTotal">Messages acked so far (a pop counts as one).</param>
/// <param name="DeadLetteredTotal">Messages it dead-lettered so far.</param>
/// <param name="FinishedRanges">Ranges of acked offsets held above the ack floor: with the in-flight messages, what the group's state costs in memory.</param>
/// <param name="Cursor">The next offset never delivered to the group.</param>
/// <param name="AckFloor">Every offset below is acked or dead-lettered for the group.</param>
/// <param name="Ready">Deliverable now: never delivered, or given back (nack, expired lease) and due.</param>
/// <param name="Leased">Leased to a consumer, the lease not ended.</param>
/// <param name="Delayed">Nacked with a delay not yet over.</param>
/// <param name="Unacked">Neither acked nor dead-lettered (from the floor to the tail).</param>
/// <param name="OldestAgeMs">Age of the oldest unacked message by its publish time; null when none, or it has no publish time (a string message).</param>
public sealed record GroupStats(
    string Group, ulong Cursor, ulong AckFloor, long Ready, int Leased, int Delayed, long Unacked, long? OldestAgeMs,
    long DeliveredTotal, long AckedTotal, long DeadLetteredTotal, int FinishedRanges)
{
    /// <summary>Publish time (Unix ms, the leader's clock) of the oldest unacked message; null when <see cref="OldestAgeMs"/> is.</summary>
    public long? OldestPublishedMs { get; init; }

    /// <summary>
    /// The unacked messages by their deliveries so far, one count per bucket of <see cref="DeliveryCountHistogram"/>
    /// (summing to <see cref="Unacked"/>); filled by <see cref="QueueStateMachine.Stats"/>, null in the metrics' counters.
    /// </summary>
    public IReadOnlyList<long>? DeliveryCounts { get; init; }
}

/// <summary>
/// The buckets of a group's delivery-count histogram (<see cref="GroupStats.DeliveryCounts"/>): 0 (never delivered),
/// 1, 2, 3, 4, 5–9, 10–19, 20–49, 50–99 and 100 or more (up to <see cref="QueueLimits.MaxDeliveriesLimit"/>).
/// Fixed, so that every answer has the same keys whatever a topic's <c>max_deliveries</c>.
/// </summary>
public static class DeliveryCountHistogram
{
    private static readonly int[] LowerBounds = [0, 1, 2, 3, 4, 5, 10, 20, 50, 100];

    /// <summary>The buckets' names, as the REST API and the CLI show them: "0", "1", …, "5-9", …, "100+".</summary>
    public static IReadOnlyList<string> Labels { get; } = [.. LowerBounds.Select((low, i) =>
        i == LowerBounds.Length - 1 ? $"{low}+" : LowerBounds[i + 1] - low == 1 ? $"{low}" : $"{low}-{LowerBounds[i + 1] - 1}")];

    /// <summary>How many buckets there are.</summary>
    public static int Buckets => LowerBounds.Length;

    /// <summary>The bucket of a message delivered <paramref name="deliveries"/> times.</summary>
    public static int BucketOf(int deliveries)
    {
        var i = LowerBounds.Length - 1;
        while (i > 0 && deliveries < LowerBounds[i]) i--;
        return i;
    }
}

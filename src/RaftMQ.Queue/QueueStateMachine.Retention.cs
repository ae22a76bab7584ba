using RaftMQ.Queue.Groups;
using RaftMQ.Queue.Store;

namespace RaftMQ.Queue;

/// <summary>
/// Retention (docs/queue-store.md, "Retention"): per topic, <c>max_messages</c> and <c>max_bytes</c> of retained
/// messages (not yet finished by every group) with an overflow policy, and <c>max_age_ms</c> with an expiry action.
/// Removing a message for retention moves every group's floor (and cursor) past it, so the head and the segments
/// follow as they do for acks. Ages are measured on the replicated clock only.
/// </summary>
public sealed partial class QueueStateMachine
{
    /// <summary>How far the head must move before a publish is appended (the offset and position to keep from); null for nowhere.</summary>
    private readonly record struct DropPlan(ulong Offset, long Position);

    /// <summary>
    /// Whether <paramref name="count"/> more messages of <paramref name="bytes"/> (records) may be appended to
    /// <paramref name="log"/>: within the topic's own bounds (making room by the plan under drop-oldest) and, counting
    /// what the plan frees, within the queue's four bounds. Changes nothing: the caller carries out the plan with
    /// <see cref="Drop"/> only once the whole command is known to succeed.
    /// </summary>
    private QueueStatus? Admit(TopicLog log, long bytes, int count, out DropPlan? plan)
    {
        plan = null;
        var state = log.State!;
        if (state.MaxMessages > 0 || state.MaxBytes > 0)
        {
            // Larger than the topic may ever hold: no amount of dropping makes it fit.
            if ((state.MaxMessages > 0 && count > state.MaxMessages) || (state.MaxBytes > 0 && bytes > state.MaxBytes)) return QueueStatus.TopicFull;
            var overCount = state.MaxMessages > 0 ? log.Count + count - state.MaxMessages : 0;
            var overBytes = state.MaxBytes > 0 ? log.Bytes + bytes - state.MaxBytes : 0;
            if (overCount > 0 || overBytes > 0)
            {
                if (state.Overflow == OverflowPolicy.RejectPublish) return QueueStatus.TopicFull;
                var (offset, position) = log.FirstAtOrAbove(log.Head + (ulong)Math.Max(0, overCount), log.LogicalHead + Math.Max(0, overBytes));
                plan = new DropPlan(offset, position);
            }
        }
        var freedCount = plan is { } p ? (long)(p.Offset - log.Head) : 0;
        var freedBytes = plan is { } q ? q.Position - log.LogicalHead : 0;
        return Fits(log, bytes - freedBytes, count - freedCount) ? null : QueueStatus.LimitReached;
    }

    /// <summary>Carries out a plan of <see cref="Admit"/>: the oldest retained messages are gone for every group, counted as dropped.</summary>
    private static void Drop(TopicLog log, DropPlan? plan)
    {
        if (plan is not { } p || p.Offset <= log.Head) return;
        var state = log.State!;
        // What every group had finished already is not counted: nobody loses it.
        state.OverflowDroppedTotal += (long)(p.Offset - log.Head) - state.FinishedByAllCount(log.Head, p.Offset);
        state.DropBelow(p.Offset, p.Position);
        AdvanceHead(log);
    }

    /// <summary>Applies a ConfigureTopic's retention settings to <paramref name="state"/>.</summary>
    private static void SetRetention(TopicState state, TopicRetention? retention)
    {
        if (retention is null) return;
        if (retention.MaxMessages is { } messages) state.MaxMessages = messages;
        if (retention.MaxBytes is { } bytes) state.MaxBytes = bytes;
        if (retention.MaxAgeMs is { } age) state.MaxAgeMs = age;
        if (retention.Overflow is { } overflow) state.Overflow = overflow;
        if (retention.Expire is { } expire) state.Expire = expire;
    }

    /// <summary>
    /// After a topic's settings changed: under drop-oldest, what is over the new bounds is dropped at once; under
    /// reject-publish it stays and publishes are refused until consumers bring the topic under them. Expired
    /// messages go at once either way.
    /// </summary>
    private void EnforceRetention(TopicLog log, long now)
    {
        ExpireOld(log, now);
        var state = log.State!;
        if (state.Overflow != OverflowPolicy.DropOldest) return;
        var overCount = state.MaxMessages > 0 ? log.Count - state.MaxMessages : 0;
        var overBytes = state.MaxBytes > 0 ? log.Bytes - state.MaxBytes : 0;
        if (overCount <= 0 && overBytes <= 0) return;
        var (offset, position) = log.FirstAtOrAbove(log.Head + (ulong)Math.Max(0, overCount), log.LogicalHead + Math.Max(0, overBytes));
        Drop(log, new DropPlan(offset, position));
        _retentionTouched.Add(log.Name);
    }

    /// <summary>
    /// Topics with a <c>max_age_ms</c>, counted again (O(topics)) only after a command that can change it: a
    /// configure, a topic deleted, a restore. Not state: a function of it, recomputed when in doubt.
    /// </summary>
    private int _ageLimitedTopics = -1;

    /// <summary>
    /// At each step of the replicated clock: every topic with a <c>max_age_ms</c> loses its expired messages, in
    /// creation order (dead-letter topics created on the way come after and have no retention). O(1) while no topic
    /// has an age limit (the common case: this runs for nearly every command); else O(topics) checks, each reading no
    /// file while its head stays (the head's publish time is cached).
    /// </summary>
    private void ExpireAll(long now)
    {
        if (_ageLimitedTopics < 0) _ageLimitedTopics = _store.Topics.Count(t => t.State!.MaxAgeMs > 0);
        if (_ageLimitedTopics == 0) return;
        var topics = _store.Topics;
        var count = topics.Count;
        for (int i = 0; i < count; i++)
        {
            if (topics[i].State!.MaxAgeMs > 0) ExpireOld(topics[i], now);
        }
    }

    /// <summary>
    /// Removes the messages at the head of <paramref name="log"/> whose publish time is <c>max_age_ms</c> or more
    /// before <paramref name="now"/>, oldest first, stopping at the first that is not (so a message stamped earlier
    /// than one before it, by a leader whose clock is behind, goes with the later one) and at a message without a
    /// publish time (one of the string ops, timestamp 0: it never expires); messages every group has finished are
    /// passed over (not counted, not dead-lettered). Each is dead-lettered (with
    /// <c>raftmq-reason: expired</c>) or dropped as the topic says; either way it is gone for every group, its
    /// leases and pending deliveries ended, so their receipts are stale.
    /// </summary>
    private void ExpireOld(TopicLog log, long now)
    {
        var state = log.State!;
        if (state.MaxAgeMs <= 0 || log.Head == log.Tail) return;
        if (!Expired(state, HeadTime(log), now)) return;
        var offset = log.Tail;
        var position = log.LogicalTail;
        long expired = 0;
        TopicLog? dead = null;
        // Messages every group has finished are skipped: nobody will read them again, and the store may not keep them.
        foreach (var (at, atPosition, _) in log.Retained(log.Head, log.LogicalHead))
        {
            var record = log.ReadRecordAt(at, atPosition, out _);
            var timestamp = MessageRecord.Timestamp(record);
            if (!Expired(state, timestamp, now))
            {
                offset = at;
                position = atPosition;
                break;
            }
            expired++;
            if (state.Expire == ExpiryAction.DeadLetter)
            {
                var message = ToMessage(log.Name, at, record);
                var headers = DeadLetters.ExpiredHeaders(message.Headers, at, timestamp);
                var encoded = new byte[MessageHeaders.EncodedBytes(headers)];
                MessageHeaders.Write(encoded, headers);
                var name = DeadLetters.TopicFor(log.Name);
                dead ??= _store.Find(name) ?? NewTopic(name, 0);
                dead.Append(encoded, message.Payload.Span, now);
                dead.State!.PublishedTotal++;
            }
        }
        if (expired == 0) return;
        state.ExpiredTotal += expired;
        state.DropBelow(offset, position);
        AdvanceHead(log);
        _retentionTouched.Add(log.Name);
        if (dead is not null) _retentionTouched.Add(dead.Name);
    }

    /// <summary>The publish time of the head's record (the topic must have messages), cached while the head stays.</summary>
    private static long HeadTime(TopicLog log)
    {
        var state = log.State!;
        if (state.HeadTimeOffset != log.Head)
        {
            state.HeadTime = MessageRecord.Timestamp(log.ReadRecordAt(log.Head, log.LogicalHead, out _));
            state.HeadTimeOffset = log.Head;
        }
        return state.HeadTime;
    }

    /// <summary>
    /// Whether any topic has a <c>max_age_ms</c>: safe to call from any thread (it reads the list published for
    /// readers and one field per topic, which may be a command late). The leader's expiry check skips its read while
    /// this is false, so a cluster without age limits does nothing for them.
    /// </summary>
    public bool AnyAgeLimit() => _store.TopicsForReaders.Any(t => t.State is { MaxAgeMs: > 0 });

    /// <summary>
    /// When the next message expires by age (Unix ms; the earliest head publish time plus its topic's
    /// <c>max_age_ms</c>) and in which topic; null when no topic has a message that will. A read (call on the loop):
    /// O(topics), a file read only for a head not seen before. The leader's server uses it to propose a command that
    /// moves the replicated clock when nothing else does, so messages expire on an idle cluster too.
    /// </summary>
    public (string Topic, long DueMs)? NextExpiry()
    {
        (string Topic, long DueMs)? next = null;
        foreach (var log in _store.Topics)
        {
            var state = log.State!;
            if (state.MaxAgeMs <= 0 || log.Head == log.Tail) continue;
            var time = HeadTime(log);
            if (time <= 0) continue; // no publish time: never expires
            var due = time + state.MaxAgeMs;
            if (next is null || due < next.Value.DueMs) next = (log.Name, due);
        }
        return next;
    }

    private static bool Expired(TopicState state, long timestamp, long now) => timestamp > 0 && now - timestamp >= state.MaxAgeMs;
}

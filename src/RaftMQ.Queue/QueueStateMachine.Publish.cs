using System.Buffers;
using System.Text;
using RaftMQ.Queue.Groups;
using RaftMQ.Queue.Store;

namespace RaftMQ.Queue;

/// <summary>
/// Idempotent publishing (docs/queue-store.md, "Idempotent publishing"): each topic remembers the ids of the messages
/// published to it for its dedup window, by the replicated clock, within <see cref="QueueLimits.MaxDedupIdsPerTopic"/>
/// and, across topics, <see cref="QueueLimits.MaxDedupIds"/>.
/// </summary>
public sealed partial class QueueStateMachine
{
    /// <summary>Ids remembered across all topics.</summary>
    private int _dedupIds;

    /// <summary>Message ids remembered across all topics (bounded by <see cref="QueueLimits.MaxDedupIds"/>).</summary>
    public int DedupIds => _dedupIds;

    /// <summary>
    /// Binary messages, each optionally with an id: the ones whose id the topic remembers (or an earlier message of
    /// the batch carries) are duplicates, answered with the offset the id was stored at; the others are appended with
    /// the command's time as <see cref="PublishMessages"/> does (all of them, or none when they break a bound), and
    /// their ids remembered. Expired ids are forgotten first.
    /// </summary>
    private QueueResult PublishExtended(string topic, IReadOnlyList<QueueMessage>? messages, long now)
    {
        if (_store.Find(topic) is not { } log) return new QueueResult(QueueStatus.NoSuchTopic);
        if (DeadLetters.IsDeadLetterTopic(topic)) return new QueueResult(QueueStatus.Invalid);
        if (messages is null || messages.Count == 0 || messages.Count > _limits.MaxBatchMessages) return new QueueResult(QueueStatus.Invalid);
        foreach (var m in messages)
        {
            if (m.Payload.Length > _limits.MaxMessageBytes || MessageHeaders.Check(m.Headers, _limits) is not null) return new QueueResult(QueueStatus.Invalid);
            if (m.Id is not null && (m.Id.Length == 0 || Encoding.UTF8.GetByteCount(m.Id) > _limits.MaxMessageIdBytes)) return new QueueResult(QueueStatus.Invalid);
            if (m.DelayMs < 0 || m.DelayMs > _limits.MaxPublishDelayMs) return new QueueResult(QueueStatus.Invalid);
        }
        var state = log.State!;
        ExpireOld(log, now);
        _dedupIds -= state.Dedup.Expire(now, state.DedupWindowMs);
        state.Delays.Prune(now, log.Head);
        var offsets = new ulong[messages.Count];
        var stored = new bool[messages.Count];
        Dictionary<string, ulong>? batch = null;
        var next = log.Tail;
        long bytes = 0;
        var count = 0;
        var delayed = 0;
        var largestHeaders = 0;
        for (int i = 0; i < messages.Count; i++)
        {
            var m = messages[i];
            if (m.Id is not null)
            {
                if (state.Dedup.TryGet(m.Id, out offsets[i])) continue;
                batch ??= new Dictionary<string, ulong>(StringComparer.Ordinal);
                if (batch.TryGetValue(m.Id, out offsets[i])) continue;
                batch.Add(m.Id, next);
            }
            offsets[i] = next++;
            stored[i] = true;
            count++;
            if (m.DelayMs > 0) delayed++;
            var headerBytes = MessageHeaders.EncodedBytes(m.Headers);
            bytes += QueueLimits.MessageOverheadBytes + headerBytes + m.Payload.Length;
            largestHeaders = Math.Max(largestHeaders, headerBytes);
        }
        DropPlan? plan = null;
        if (count > 0 && Admit(log, bytes, count, out plan) is { } refused) return new QueueResult(refused);
        if (state.Delays.Count + delayed > _limits.MaxDelayedPerTopic) return new QueueResult(QueueStatus.LimitReached);
        Drop(log, plan);
        var buffer = ArrayPool<byte>.Shared.Rent(largestHeaders);
        List<(ulong, long)>? delays = delayed > 0 ? new(delayed) : null;
        try
        {
            for (int i = 0; i < messages.Count; i++)
            {
                if (!stored[i]) continue;
                var m = messages[i];
                log.Append(buffer.AsSpan(0, MessageHeaders.Write(buffer, m.Headers)), m.Payload.Span, now);
                if (m.Id is not null) Remember(state, m.Id, offsets[i], now);
                if (m.DelayMs > 0) delays!.Add((offsets[i], now + m.DelayMs));
            }
            if (delays is not null) state.Delays.Add(delays);
            state.PublishedTotal += count;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        return QueueResult.Ok with { Count = count, Offsets = offsets };
    }

    /// <summary>
    /// Remembers <paramref name="id"/>, forgetting the topic's oldest id early when the topic or the node holds its
    /// maximum; a topic that remembers none while the node holds its maximum does not remember it.
    /// </summary>
    private void Remember(TopicState state, string id, ulong offset, long now)
    {
        if (state.DedupWindowMs == 0) return;
        if (state.Dedup.Count >= _limits.MaxDedupIdsPerTopic || _dedupIds >= _limits.MaxDedupIds)
        {
            if (!state.Dedup.ForgetOldest())
            {
                state.Dedup.ForgottenEarlyTotal++;
                return;
            }
            _dedupIds--;
        }
        state.Dedup.Add(id, offset, now);
        _dedupIds++;
    }

    /// <summary>After a restore: the default window for topics restored from a format without one, and the node-wide id count.</summary>
    private void AfterRestore()
    {
        _dedupIds = 0;
        foreach (var t in _store.Topics)
        {
            if (t.State!.DedupWindowMs < 0) t.State.DedupWindowMs = _limits.DefaultDedupWindowMs;
            _dedupIds += t.State.Dedup.Count;
        }
    }
}

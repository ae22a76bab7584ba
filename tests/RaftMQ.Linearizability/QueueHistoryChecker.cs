namespace RaftMQ.Linearizability;

/// <summary>What <see cref="QueueHistoryChecker.Check"/> found: the violations (empty when the history is correct) and counts.</summary>
public sealed record QueueCheckResult(IReadOnlyList<string> Violations, int AckedPublishes, int Deliveries, int Redeliveries, int Acked)
{
    public bool Ok => Violations.Count == 0;

    /// <summary>The violations, one per line (at most 20).</summary>
    public string Describe() =>
        Ok ? "ok" : $"{Violations.Count} violations:{Environment.NewLine}  " + string.Join(Environment.NewLine + "  ", Violations.Take(20));
}

/// <summary>
/// Checks a history of at-least-once queue clients (<see cref="QueueHistory"/>) on one topic with consumer groups.
/// Every rule only uses what clients saw (invocation and answer times on one clock, and the answers), so a correct
/// queue can never fail it, whatever the faults: an answer that was lost or not waited for is unknown and weakens
/// what may be concluded, never strengthens it. Times come from one clock; a lease measured by the leader's clock
/// from its stamp <c>s</c> in the receive's log entry ends at <c>s + lease</c> or later, and <c>s</c> is at or after
/// the receive was invoked, so a lease surely lasts until <c>invoked + lease</c>; a receive applied is applied by its
/// answer, so its replicated "now" is at most its answer time. The rules:
/// <list type="number">
/// <item><b>No duplicate storage</b> (within the dedup window, which outlasts the runs checked): every answer to a
/// publish of an id names the same offset; no offset holds two ids, whether publish answers or deliveries say so;
/// every delivered id was published.</item>
/// <item><b>Nothing lost</b> (only once the run drained: faults healed, consumers received until nothing was left):
/// every id whose publish was answered Ok was delivered in every group at least once, or read back from the dead
/// letters as dead-lettered by that group.</item>
/// <item><b>No message acked twice</b> in a group: at most one ack answered Ok applied a receipt of an offset.</item>
/// <item><b>Stale receipts are stale</b>: an ack or nack that applied receipt (o, k) was not invoked after a delivery
/// of o with a higher count was answered; and no delivery of o with a higher count is invoked after an ack of (o, k)
/// was answered applied (an acked message is never delivered again).</item>
/// <item><b>One lease at a time</b>: a delivery (o, k2) answered before the lease of an earlier delivery (o, k1 &lt; k2)
/// surely ended (its receive's invocation plus lease) must have had a nack of (o, k1) invoked before it — otherwise
/// the message was leased twice at once (to two consumers, or to one twice).</item>
/// <item><b>Delivery counts go up by one per delivery</b>: per (group, offset) no count is delivered twice, counts
/// follow real time (a delivery answered before another was invoked has the lower count), and the counts skipped
/// (deliveries no client saw) are accounted for by the group's receives whose answer no client saw: per offset no more
/// than there are such receives (a receive delivers a message at most once), in all no more than they asked for.</item>
/// <item><b>Order</b>: a group's first deliveries (count 1) follow offset order — within one answer strictly
/// increasing, and across receives every first delivery of a receive answered before another was invoked has a lower
/// offset than the other's. <b>Out of order within redeliveries</b> means, here: within one receive's answer, a
/// redelivery (count &gt; 1) after a first delivery, or redeliveries not in increasing offset order — a receive hands
/// out the messages due again lowest offset first, before any new message. Across receives there is no order among
/// redeliveries to check: a message whose lease ended later is due later, whatever its offset.</item>
/// </list>
/// </summary>
public static class QueueHistoryChecker
{
    /// <summary>
    /// Checks <paramref name="history"/> for the consumer groups <paramref name="groups"/>. With
    /// <paramref name="drained"/> the run ended with the faults healed and every group drained, so nothing may be missing.
    /// </summary>
    public static QueueCheckResult Check(IReadOnlyList<QueueCall> history, IReadOnlyCollection<string> groups, bool drained)
    {
        ArgumentNullException.ThrowIfNull(history);
        ArgumentNullException.ThrowIfNull(groups);
        var violations = new List<string>();
        var publishes = history.Where(c => c.Kind == QueueCallKind.Publish).ToList();
        var receives = history.Where(c => c.Kind == QueueCallKind.Receive && c.Outcome == QueueCallOutcome.Ok).ToList();
        var deliveries = receives.SelectMany(r => r.Deliveries.Select(d => (Call: r, Delivery: d))).ToList();
        var settles = history.Where(c => c.Kind is QueueCallKind.Ack or QueueCallKind.Nack && c.Outcome == QueueCallOutcome.Ok).ToList();
        var deadLetters = history.Where(c => c.Kind == QueueCallKind.DeadLetter).ToList();

        // 1. Storage: one offset per id, one id per offset, nothing delivered that was never published.
        var offsetOfId = new Dictionary<string, (ulong Offset, QueueCall By)>(StringComparer.Ordinal);
        var idAtOffset = new Dictionary<ulong, (string Id, string Source)>();
        void Bind(string id, ulong offset, string source)
        {
            if (offsetOfId.TryGetValue(id, out var known) && known.Offset != offset)
                violations.Add($"duplicate storage: id {id} is at offset {known.Offset} ({known.By}) and at offset {offset} ({source})");
            if (idAtOffset.TryGetValue(offset, out var held) && !string.Equals(held.Id, id, StringComparison.Ordinal))
                violations.Add($"offset {offset} holds {held.Id} ({held.Source}) and {id} ({source})");
            else if (!idAtOffset.ContainsKey(offset)) idAtOffset[offset] = (id, source);
        }
        foreach (var p in publishes.Where(p => p.Outcome == QueueCallOutcome.Ok))
        {
            for (int i = 0; i < p.MessageIds.Count; i++)
            {
                Bind(p.MessageIds[i], p.Offsets[i], p.ToString());
                offsetOfId.TryAdd(p.MessageIds[i], (p.Offsets[i], p));
            }
        }
        var publishedIds = publishes.SelectMany(p => p.MessageIds).ToHashSet(StringComparer.Ordinal);
        foreach (var (call, d) in deliveries)
        {
            if (!publishedIds.Contains(d.MessageId)) violations.Add($"delivered {d.MessageId}, which no client published: {call}");
            Bind(d.MessageId, d.Offset, call.ToString());
        }
        foreach (var dl in deadLetters) Bind(dl.DeadLettered.MessageId, dl.DeadLettered.Offset, dl.ToString());

        // 2. Nothing lost, once drained.
        if (drained)
        {
            foreach (var group in groups)
            {
                var seen = deliveries.Where(x => x.Call.Group == group).Select(x => x.Delivery.Offset)
                    .Concat(deadLetters.Where(d => d.Group == group).Select(d => d.DeadLettered.Offset)).ToHashSet();
                foreach (var (id, (offset, by)) in offsetOfId)
                {
                    if (!seen.Contains(offset))
                        violations.Add($"lost: {id} (offset {offset}, acknowledged by {by}) was never delivered in group {group} nor dead-lettered by it");
                }
            }
        }

        foreach (var group in groups.Concat(history.Select(c => c.Group).OfType<string>()).Distinct(StringComparer.Ordinal))
            CheckGroup(group, history, deliveries.Where(x => x.Call.Group == group).ToList(), settles.Where(s => s.Group == group).ToList(), violations);

        return new QueueCheckResult(
            violations, offsetOfId.Count, deliveries.Count, deliveries.Count(x => x.Delivery.DeliveryCount > 1),
            settles.Where(s => s.Kind == QueueCallKind.Ack).Sum(s => s.Applied.Count()));
    }

    /// <summary>Rules 3 to 7 for one group.</summary>
    private static void CheckGroup(
        string group, IReadOnlyList<QueueCall> history, List<(QueueCall Call, QueueDelivery Delivery)> deliveries, List<QueueCall> settles,
        List<string> violations)
    {
        var byOffset = deliveries.GroupBy(x => x.Delivery.Offset).ToDictionary(g => g.Key, g => g.OrderBy(x => x.Delivery.DeliveryCount).ToList());
        var acks = settles.Where(s => s.Kind == QueueCallKind.Ack).ToList();
        var nacks = settles.Where(s => s.Kind == QueueCallKind.Nack).ToList();

        // 3. Acked at most once.
        foreach (var twice in acks.SelectMany(a => a.Applied.Select(r => (Ack: a, Receipt: r))).GroupBy(x => x.Receipt.Offset).Where(g => g.Count() > 1))
            violations.Add($"acked twice in {group}: offset {twice.Key} by {string.Join(" and ", twice.Select(x => x.Ack))}");

        // 4. Stale receipts refused; nothing delivered again after an ack.
        foreach (var settle in settles)
        {
            foreach (var r in settle.Applied)
            {
                if (!byOffset.TryGetValue(r.Offset, out var ds)) continue;
                foreach (var later in ds.Where(x => x.Delivery.DeliveryCount > r.Delivery && x.Call.AnsweredAt < settle.InvokedAt))
                    violations.Add($"stale receipt applied in {group}: {settle} applied {r} after {later.Call} had delivered it again");
                if (settle.Kind != QueueCallKind.Ack) continue;
                foreach (var later in ds.Where(x => x.Delivery.DeliveryCount > r.Delivery && x.Call.InvokedAt > settle.AnsweredAt))
                    violations.Add($"delivered again after its ack in {group}: {later.Call} after {settle}");
            }
        }

        // 5 and 6. One lease at a time; counts unique, in real-time order.
        var unseen = history.Where(c => c.Kind == QueueCallKind.Receive && c.Group == group && c.Outcome is QueueCallOutcome.Unknown or QueueCallOutcome.Pending).ToList();
        long skipped = 0;
        foreach (var (offset, ds) in byOffset)
        {
            var last = 0;
            long skippedHere = 0;
            foreach (var (call, d) in ds)
            {
                if (d.DeliveryCount < 1) violations.Add($"delivery count {d.DeliveryCount} in {group}: {call}");
                if (d.DeliveryCount == last) violations.Add($"offset {offset} delivered twice with count {last} in {group}: {string.Join(" and ", ds.Where(x => x.Delivery.DeliveryCount == last).Select(x => x.Call))}");
                else skippedHere += Math.Max(0, d.DeliveryCount - last - 1);
                last = d.DeliveryCount;
            }
            if (skippedHere > unseen.Count)
                violations.Add($"offset {offset} in {group} skips {skippedHere} delivery counts no client saw, but only {unseen.Count} receives went unanswered");
            skipped += skippedHere;
            for (int i = 0; i < ds.Count; i++)
            {
                for (int j = i + 1; j < ds.Count; j++)
                {
                    var (first, d1) = ds[i];
                    var (second, d2) = ds[j];
                    if (d2.DeliveryCount == d1.DeliveryCount) continue;
                    if (first.InvokedAt > second.AnsweredAt)
                        violations.Add($"delivery counts against real time in {group}: offset {offset} #{d2.DeliveryCount} by {second} before #{d1.DeliveryCount} by {first}");
                    var receipt = new QueueReceipt(offset, d1.DeliveryCount);
                    var leaseEndsNoSoonerThan = first.InvokedAt + first.LeaseMs;
                    var nacked = history.Any(c => c.Kind == QueueCallKind.Nack && c.Group == group && c.InvokedAt <= second.AnsweredAt && c.Receipts.Contains(receipt));
                    if (second.AnsweredAt < leaseEndsNoSoonerThan && !nacked)
                    {
                        violations.Add($"leased twice at once in {group}: offset {offset} #{d1.DeliveryCount} by {first} (lease until at least {leaseEndsNoSoonerThan}) " +
                            $"and #{d2.DeliveryCount} by {second}");
                    }
                }
            }
        }
        var unseenCapacity = unseen.Sum(c => (long)c.Max);
        if (skipped > unseenCapacity)
            violations.Add($"delivery counts in {group} skip {skipped} deliveries no client saw, but the receives that went unanswered asked for only {unseenCapacity}");

        // 7. Order: within one answer redeliveries first, each part in increasing offsets; first deliveries across receives.
        var receives = deliveries.Select(x => x.Call).Distinct().ToList();
        foreach (var r in receives)
        {
            var firstSeen = false;
            QueueDelivery? previous = null;
            foreach (var d in r.Deliveries)
            {
                var isFirst = d.DeliveryCount == 1;
                if (!isFirst && firstSeen) violations.Add($"redelivery after a first delivery in one answer in {group}: {r}");
                if (previous is { } p && (p.DeliveryCount == 1) == isFirst && p.Offset >= d.Offset)
                    violations.Add($"{(isFirst ? "first deliveries" : "redeliveries")} out of offset order in one answer in {group}: {r}");
                firstSeen |= isFirst;
                previous = d;
            }
        }
        var firsts = receives.Where(r => r.Deliveries.Any(d => d.DeliveryCount == 1))
            .Select(r => (Call: r, Min: r.Deliveries.Where(d => d.DeliveryCount == 1).Min(d => d.Offset), Max: r.Deliveries.Where(d => d.DeliveryCount == 1).Max(d => d.Offset)))
            .OrderBy(x => x.Call.AnsweredAt).ToList();
        foreach (var a in firsts)
        {
            foreach (var b in firsts)
            {
                if (a.Call.AnsweredAt < b.Call.InvokedAt && a.Max >= b.Min)
                    violations.Add($"first deliveries out of order in {group}: {b.Call} came after {a.Call}");
            }
        }
    }
}

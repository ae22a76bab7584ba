namespace RaftMQ.Linearizability;

/// <summary>
/// The write of one position of a grow-only log (a topic's offset): done at some instant in [<see cref="InvokedAt"/>,
/// <see cref="AnsweredAt"/>] (<see cref="long.MaxValue"/> when no answer said it was done).
/// </summary>
public sealed record CounterWrite(long Position, long InvokedAt, long AnsweredAt, string What);

/// <summary>A read of the log's end (a topic's tail: the next position to be written), invoked and answered at the times given.</summary>
public sealed record CounterRead(long InvokedAt, long AnsweredAt, long Value, string What);

/// <summary>
/// Checks that reads of the end of a grow-only log are linearizable with the writes of its positions. Positions are
/// written in order, so a read that saw <c>t</c> takes effect after every write of a position below <c>t</c>, before
/// every write of a position at or above it, and after every read that saw less: the order of all the operations
/// is fixed up to reads that saw the same value. What remains is whether each can be given an instant in its own
/// interval in that order; choosing each as early as its interval and the operations before it allow is optimal
/// (nothing later is constrained by more than the latest instant so far), so one pass decides. Writes missing from
/// the list (a position no client knew) only remove constraints: the check never fails a correct history.
/// </summary>
public static class CounterReadChecker
{
    /// <summary>"ok", or the violations (at most 20), one per line.</summary>
    public static string Check(IReadOnlyList<CounterWrite> writes, IReadOnlyList<CounterRead> reads)
    {
        ArgumentNullException.ThrowIfNull(writes);
        ArgumentNullException.ThrowIfNull(reads);
        // Rank: a read of t is 2t (after the write of t - 1, rank 2t - 1; before the write of t, rank 2t + 1).
        var items = writes.Select(w => (Rank: 2 * w.Position + 1, w.InvokedAt, w.AnsweredAt, What: $"the write of position {w.Position} by {w.What}"))
            .Concat(reads.Select(r => (Rank: 2 * r.Value, r.InvokedAt, r.AnsweredAt, What: $"the read of {r.Value} by {r.What} [{r.InvokedAt}..{r.AnsweredAt}]")))
            .OrderBy(x => x.Rank)
            .ToList();

        // The plain contradictions first, one line per operation at fault: an operation that must come before
        // another which was answered before it began (a stale read; or a read that saw a write not yet begun, which
        // shows as that write). The operation of higher rank answered first is named.
        var violations = new List<string>();
        var firstAnswered = new int[items.Count + 1]; // index of the earliest-answered item from i on, of a higher rank
        firstAnswered[items.Count] = -1;
        var best = -1;
        for (int i = items.Count - 1, groupEnd = items.Count; i >= 0; i--)
        {
            if (i + 1 < items.Count && items[i + 1].Rank != items[i].Rank)
            {
                for (int j = i + 1; j < groupEnd; j++)
                    if (best < 0 || items[j].AnsweredAt < items[best].AnsweredAt) best = j;
                groupEnd = i + 1;
            }
            firstAnswered[i] = best;
        }
        for (int i = 0; i < items.Count; i++)
        {
            var b = firstAnswered[i];
            if (b >= 0 && items[b].AnsweredAt < items[i].InvokedAt)
                violations.Add($"{items[i].What} must take effect before {items[b].What}, which was answered at {items[b].AnsweredAt}, before it began");
        }
        if (violations.Count == 0 && Sweep(items) is { } failure) violations.Add(failure);
        return violations.Count == 0 ? "ok" : $"{violations.Count} non-linearizable operations:{Environment.NewLine}  " + string.Join(Environment.NewLine + "  ", violations.Take(20));
    }

    /// <summary>The one pass: null if every operation can take effect within its interval in rank order, else the first that cannot.</summary>
    private static string? Sweep(List<(long Rank, long InvokedAt, long AnsweredAt, string What)> items)
    {
        var earliest = long.MinValue; // no operation from here on can take effect before this
        var forcedBy = "";
        for (int i = 0; i < items.Count;)
        {
            var rank = items[i].Rank;
            var latest = earliest;
            var latestBy = forcedBy;
            for (; i < items.Count && items[i].Rank == rank; i++)
            {
                var item = items[i];
                var at = Math.Max(earliest, item.InvokedAt);
                if (at > item.AnsweredAt)
                    return $"{item.What} was answered at {item.AnsweredAt}, but must take effect after {forcedBy}, which cannot be before {earliest}";
                if (at > latest)
                {
                    latest = at;
                    latestBy = item.What;
                }
            }
            earliest = latest;
            forcedBy = latestBy;
        }
        return null;
    }
}

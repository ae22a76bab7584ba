namespace RaftMQ.Transport;

/// <summary>
/// Lets one kind of log line through at most once per interval, and counts the ones held back, so that a flood of
/// refused connections costs a few log lines rather than one per connection. The first event logs at once; events in
/// the rest of the interval are only counted, and the next line that gets through carries that count. Counters (not
/// this) hold the exact totals. Safe to use from any thread.
/// </summary>
public sealed class RateLimitedLog
{
    /// <summary>The interval the node's connection layers use: at most one line per kind every 10 s.</summary>
    public static readonly TimeSpan DefaultInterval = TimeSpan.FromSeconds(10);

    private readonly TimeSpan interval;
    private readonly TimeProvider time;
    private readonly Lock gate = new();
    private long nextLineAt;
    private long suppressed;
    private bool logged;

    public RateLimitedLog(TimeSpan interval, TimeProvider? timeProvider = null)
    {
        if (interval <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(interval), interval, "must be positive");
        this.interval = interval;
        time = timeProvider ?? TimeProvider.System;
    }

    /// <summary>
    /// Records one event. True when its line should be written now; <paramref name="suppressedSince"/> is then the
    /// number of events held back since the previous line. False when the line is held back (and counted).
    /// </summary>
    public bool TryLog(out long suppressedSince)
    {
        var now = time.GetTimestamp();
        lock (gate)
        {
            if (logged && now < nextLineAt)
            {
                suppressed++;
                suppressedSince = 0;
                return false;
            }

            logged = true;
            nextLineAt = now + (long)(interval.TotalSeconds * time.TimestampFrequency);
            suppressedSince = suppressed;
            suppressed = 0;
            return true;
        }
    }

    /// <summary>The end of a rate-limited line: empty, or how many like it were held back since the previous one.</summary>
    public static string Since(long suppressed) =>
        suppressed == 0 ? string.Empty : $" ({suppressed} more since the previous line, not logged)";
}

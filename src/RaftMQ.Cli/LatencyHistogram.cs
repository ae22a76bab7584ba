using System.Numerics;

namespace RaftMQ.Cli;

/// <summary>
/// Latencies in microseconds, in a fixed array of buckets: exact below 128 µs, then 64 buckets per power of two
/// (at most 1.6% error), up to 2^36 µs. Memory stays the same however long a benchmark runs.
/// </summary>
public sealed class LatencyHistogram
{
    private const int Linear = 128;
    private const int PerOctave = 64;
    private const int MaxLog2 = 36;
    private readonly long[] _counts = new long[Linear + (MaxLog2 - 6) * PerOctave];

    public long Count { get; private set; }

    public long MaxMicros { get; private set; }

    public double SumMicros { get; private set; }

    public void Record(TimeSpan latency) => Record(latency, 1);

    /// <summary>Records <paramref name="times"/> samples of the same latency (each message of a batch).</summary>
    public void Record(TimeSpan latency, long times)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(times);
        var us = Math.Clamp((long)(latency.Ticks / (double)TimeSpan.TicksPerMicrosecond), 0, (1L << MaxLog2) - 1);
        _counts[Index(us)] += times;
        Count += times;
        SumMicros += (double)us * times;
        if (times > 0 && us > MaxMicros) MaxMicros = us;
    }

    public void Add(LatencyHistogram other)
    {
        for (int i = 0; i < _counts.Length; i++) _counts[i] += other._counts[i];
        Count += other.Count;
        SumMicros += other.SumMicros;
        MaxMicros = Math.Max(MaxMicros, other.MaxMicros);
    }

    /// <summary>The latency at quantile <paramref name="q"/> (0..1), in microseconds: the middle of its bucket.</summary>
    public double Percentile(double q)
    {
        if (Count == 0) return 0;
        var rank = Math.Max(1, (long)Math.Ceiling(q * Count));
        long seen = 0;
        for (int i = 0; i < _counts.Length; i++)
        {
            seen += _counts[i];
            if (seen >= rank) return Math.Min(Middle(i), MaxMicros);
        }
        return MaxMicros;
    }

    internal static int Index(long us)
    {
        if (us < Linear) return (int)us;
        var log2 = BitOperations.Log2((ulong)us);
        var shift = log2 - 6;
        return Linear + (log2 - 7) * PerOctave + (int)((us >> shift) - PerOctave);
    }

    private static double Middle(int index)
    {
        if (index < Linear) return index;
        var octave = (index - Linear) / PerOctave;
        var sub = (index - Linear) % PerOctave;
        var shift = octave + 1;
        var low = (long)(PerOctave + sub) << shift;
        return low + (1L << shift) / 2.0;
    }
}

using System.Diagnostics;
using RaftMQ.Raft;

namespace RaftMQ.Storage.Benchmarks;

/// <summary>
/// The WAL and the raw baseline measured alternately, operation by operation, so that the noise of a shared
/// machine hits both alike; reports the median of each and their ratio.
/// </summary>
internal static class PairedBench
{
    public static int Run(string[] args)
    {
        var rounds = args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 400;
        Console.WriteLine("| case | WAL median | raw median | WAL/raw time | WAL throughput vs raw |");
        Console.WriteLine("|---|---:|---:|---:|---:|");
        foreach (var entryBytes in new[] { 100, 1024 })
        {
            foreach (var batchEntries in new[] { 64, 256 })
            {
                var rawBytes = WalFormat.BatchRecordBytes + batchEntries * (WalFormat.EntryRecordOverhead + entryBytes);
                Measure($"batch {batchEntries} x {entryBytes} B ({rawBytes} B per fsync)", rounds, entryBytes, batchEntries, rawBytes);
            }
        }
        Measure("1 x 100 B vs raw 4 KiB", rounds, 100, 1, 4096);
        return 0;
    }

    private static void Measure(string name, int rounds, int entryBytes, int batchEntries, int rawBytes)
    {
        using var files = new TempFiles();
        using var log = DurableLogStorage.Open(files.Sub("wal"));
        using var raw = new RawAppender(files.Sub("raw"));
        var data = new byte[entryBytes];
        Random.Shared.NextBytes(data);
        var page = new byte[rawBytes];
        Random.Shared.NextBytes(page);
        var batch = new Entry[batchEntries];
        var wal = new double[rounds];
        var baseline = new double[rounds];
        for (var r = -20; r < rounds; r++) // 20 rounds of warm-up
        {
            var first = log.LastIndex + 1;
            for (var i = 0; i < batch.Length; i++) batch[i] = new Entry(first + (ulong)i, 1, EntryType.Command, data);
            var t0 = Stopwatch.GetTimestamp();
            log.Save(null, batch, sync: true);
            var t1 = Stopwatch.GetTimestamp();
            raw.Append(page);
            var t2 = Stopwatch.GetTimestamp();
            if (r < 0) continue;
            wal[r] = Stopwatch.GetElapsedTime(t0, t1).TotalMicroseconds;
            baseline[r] = Stopwatch.GetElapsedTime(t1, t2).TotalMicroseconds;
        }
        var w = Median(wal);
        var b = Median(baseline);
        Console.WriteLine($"| {name} | {w:F0} µs | {b:F0} µs | {w / b:F2} | {b / w * 100:F0}% |");
    }

    private static double Median(double[] values)
    {
        var sorted = values.Order().ToArray();
        return sorted[sorted.Length / 2];
    }
}

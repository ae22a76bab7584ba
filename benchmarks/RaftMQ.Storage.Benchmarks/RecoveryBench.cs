using System.Diagnostics;
using RaftMQ.Raft;

namespace RaftMQ.Storage.Benchmarks;

/// <summary>
/// Writes a large log (batches of 256 entries, one fsync each), reopens it timing recovery, and reads every entry
/// back from disk, reporting the process's peak resident memory at each stage.
/// </summary>
internal static class RecoveryBench
{
    public static int Run(string[] args)
    {
        var gib = args.Length > 1 ? double.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 1.0;
        var entryBytes = args.Length > 2 ? int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 1024;
        using var files = new TempFiles();
        var dir = files.Sub("wal");
        var target = (long)(gib * 1024 * 1024 * 1024);
        var data = new byte[entryBytes];
        Random.Shared.NextBytes(data);
        var batch = new Entry[256];
        var clock = Stopwatch.StartNew();
        ulong last;
        using (var log = DurableLogStorage.Open(dir))
        {
            long written = 0;
            while (written < target)
            {
                var first = log.LastIndex + 1;
                for (var i = 0; i < batch.Length; i++) batch[i] = new Entry(first + (ulong)i, 1, EntryType.Command, data);
                log.Save(new HardState(1, 1, log.LastIndex), batch, sync: true);
                written += batch.Length * (long)(entryBytes + WalFormat.EntryRecordOverhead);
            }
            last = log.LastIndex;
            Console.WriteLine($"write: {last} entries of {entryBytes} B, {written / (1024.0 * 1024):F0} MiB in {log.SegmentCount} segments, " +
                              $"{clock.Elapsed.TotalSeconds:F1} s ({written / clock.Elapsed.TotalSeconds / (1024 * 1024):F0} MiB/s); peak RSS {PeakRssMiB():F0} MiB");
        }
        GC.Collect();
        clock.Restart();
        using (var log = DurableLogStorage.Open(dir))
        {
            var recovery = clock.Elapsed;
            Console.WriteLine($"recovery: {recovery.TotalSeconds:F2} s for {log.Recovery.BytesScanned / (1024.0 * 1024):F0} MiB " +
                              $"({log.Recovery.BytesScanned / recovery.TotalSeconds / (1024 * 1024):F0} MiB/s), last index {log.LastIndex}; peak RSS {PeakRssMiB():F0} MiB");
            if (log.LastIndex != last) throw new InvalidOperationException($"recovered {log.LastIndex}, wrote {last}");
            clock.Restart();
            var chunk = new List<Entry>();
            long read = 0;
            for (var next = log.FirstIndex; next <= log.LastIndex;)
            {
                chunk.Clear();
                log.ReadEntries(next, log.LastIndex + 1, 1024 * 1024, chunk);
                foreach (var e in chunk) read += e.Data.Length;
                next += (ulong)chunk.Count;
            }
            Console.WriteLine($"read-through: {read / (1024.0 * 1024):F0} MiB of entry data in {clock.Elapsed.TotalSeconds:F1} s; peak RSS {PeakRssMiB():F0} MiB");
        }
        return 0;
    }

    /// <summary>VmHWM from /proc/self/status (peak resident set), or the runtime's figure elsewhere.</summary>
    public static double PeakRssMiB()
    {
        if (File.Exists("/proc/self/status"))
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
            {
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                    return long.Parse(line[6..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture) / 1024.0;
            }
        }
        using var p = Process.GetCurrentProcess();
        return p.PeakWorkingSet64 / (1024.0 * 1024);
    }
}

using RaftMQ.Raft;
using Shouldly;
using Xunit;
using Xunit.Abstractions;

namespace RaftMQ.Storage.Tests;

/// <summary>A test that runs only with RAFTMQ_SOAK=1 (it is long or needs a lot of disk).</summary>
public sealed class SoakFactAttribute : FactAttribute
{
    public SoakFactAttribute()
    {
        if (Environment.GetEnvironmentVariable("RAFTMQ_SOAK") != "1") Skip = "long run: set RAFTMQ_SOAK=1";
    }
}

public sealed class SoakTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [SoakFact]
    public void A_one_GiB_log_is_written_recovered_and_read_in_bounded_memory()
    {
        const int entryBytes = 1024;
        const long target = 1L << 30;
        var data = new byte[entryBytes];
        new Random(1).NextBytes(data);
        var batch = new Entry[256];
        ulong last;
        using (var log = DurableLogStorage.Open(_dir.Path))
        {
            long written = 0;
            while (written < target)
            {
                var first = log.LastIndex + 1;
                for (var i = 0; i < batch.Length; i++) batch[i] = new Entry(first + (ulong)i, 1, EntryType.Command, data);
                log.Save(new HardState(1, 1, log.LastIndex), batch, sync: true);
                written += batch.Length * (long)(entryBytes + 26);
            }
            last = log.LastIndex;
        }
        using (var log = DurableLogStorage.Open(_dir.Path))
        {
            output.WriteLine(log.Recovery.ToString());
            log.LastIndex.ShouldBe(last);
            var chunk = new List<Entry>();
            for (var next = log.FirstIndex; next <= log.LastIndex;)
            {
                chunk.Clear();
                log.ReadEntries(next, log.LastIndex + 1, 1 << 20, chunk);
                foreach (var e in chunk)
                {
                    e.Index.ShouldBe(next);
                    e.Data.Length.ShouldBe(entryBytes);
                    next++;
                }
            }
        }
        var peak = PeakRssMiB();
        output.WriteLine($"peak RSS {peak:F0} MiB for a 1 GiB log of {last} entries");
        // The log is 1 GiB; the process (test host included) must stay far below it.
        peak.ShouldBeLessThan(400);
    }

    private static double PeakRssMiB()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal)) return long.Parse(line[6..].Trim().Split(' ')[0]) / 1024.0;
        }
        using var p = System.Diagnostics.Process.GetCurrentProcess();
        return p.PeakWorkingSet64 / (1024.0 * 1024);
    }
}

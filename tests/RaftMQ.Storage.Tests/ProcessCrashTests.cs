using System.Diagnostics;
using System.Threading.Channels;
using RaftMQ.Raft;
using RaftMQ.Storage.CrashWriter;
using Shouldly;
using Xunit;
using Xunit.Abstractions;

namespace RaftMQ.Storage.Tests;

/// <summary>
/// Kills a real writer process with SIGKILL at random moments and checks that every batch it acknowledged (printed
/// after its fsync) is in the log, intact, when the directory is reopened.
/// </summary>
public sealed class ProcessCrashTests(ITestOutputHelper output) : IDisposable
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static string WriterPath()
    {
        // tests/RaftMQ.Storage.Tests/bin/<Configuration>/<tfm>/ -> tests/RaftMQ.Storage.CrashWriter/bin/<Configuration>/<tfm>/
        var here = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var tfm = here.Name;
        var configuration = here.Parent!.Name;
        var tests = here.Parent.Parent!.Parent!.Parent!.FullName;
        var path = Path.Combine(tests, "RaftMQ.Storage.CrashWriter", "bin", configuration, tfm, "RaftMQ.Storage.CrashWriter.dll");
        File.Exists(path).ShouldBeTrue($"crash writer not built at {path}");
        return path;
    }

    [Fact]
    public async Task Every_acknowledged_batch_survives_SIGKILL()
    {
        var kills = Environment.GetEnvironmentVariable("RAFTMQ_SOAK") == "1" ? 200 : 20;
        var seed = int.TryParse(Environment.GetEnvironmentVariable("RAFTMQ_CRASH_SEED"), out var s) ? s : Environment.TickCount;
        output.WriteLine($"seed {seed}");
        var random = new Random(seed);
        var writer = WriterPath();
        var directory = Path.Combine(_dir.Path, "wal");
        var cuts = 0;
        for (var kill = 0; kill < kills; kill++)
        {
            var waitFor = random.Next(1, 40);
            var lastAck = await RunAndKill(writer, directory, seed + kill, waitFor);
            using var log = DurableLogStorage.Open(directory, CrashPayload.Options);
            var where = $"seed {seed}, kill {kill}";
            if (log.Recovery.TailTruncated)
            {
                cuts++;
                output.WriteLine($"{where}: {log.Recovery}");
            }
            Verify(log, lastAck, where);
        }
        output.WriteLine($"{kills} kills, {cuts} recoveries cut a torn tail");
    }

    private static void Verify(DurableLogStorage log, (ulong First, ulong Last, ulong Term)? lastAck, string where)
    {
        // Every entry is intact: its bytes follow from its index and term.
        var all = Logs.ReadAll(log);
        ulong previousTerm = 0;
        foreach (var e in all)
        {
            e.Data.ToArray().ShouldBe(CrashPayload.For(e.Index, e.Term), $"{where}: entry {e.Index}");
            e.Term.ShouldBeGreaterThanOrEqualTo(previousTerm, $"{where}: terms go back at {e.Index}");
            previousTerm = e.Term;
        }
        if (lastAck is not { } ack) return;
        // The last acknowledged batch is all there, unless the writer's next batch (a new term, which it may
        // have written before the kill) replaced part of it, possibly with a shorter suffix.
        var replaced = log.LastIndex >= log.FirstIndex && log.Term(log.LastIndex) > ack.Term;
        if (!replaced)
            log.LastIndex.ShouldBeGreaterThanOrEqualTo(ack.Last, $"{where}: acknowledged {ack.First}..{ack.Last} but the log ends at {log.LastIndex}");
        for (var i = Math.Max(ack.First, log.FirstIndex); i <= Math.Min(ack.Last, log.LastIndex); i++)
        {
            var t = log.Term(i);
            if (t != ack.Term) t.ShouldBeGreaterThan(ack.Term, $"{where}: entry {i} has term {t}, acknowledged with {ack.Term}");
        }
    }

    // Starts the writer, waits (with a deadline) for `acks` acknowledgements, kills it, and returns the last
    // acknowledgement it printed before dying.
    private static async Task<(ulong First, ulong Last, ulong Term)?> RunAndKill(string writer, string directory, int seed, int acks)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(writer);
        start.ArgumentList.Add(directory);
        start.ArgumentList.Add(seed.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var lines = Channel.CreateUnbounded<string>();
        var errors = new System.Text.StringBuilder();
        using var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) lines.Writer.TryComplete();
            else lines.Writer.TryWrite(e.Data);
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (errors) errors.AppendLine(e.Data);
            }
        };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        (ulong, ulong, ulong)? last = null;
        using var deadline = new CancellationTokenSource(Deadline);
        try
        {
            var seen = 0;
            while (seen < acks)
            {
                string line;
                try
                {
                    line = await lines.Reader.ReadAsync(deadline.Token);
                }
                catch (ChannelClosedException)
                {
                    throw new InvalidOperationException($"writer exited early: {errors}");
                }
                if (Parse(line) is { } ack)
                {
                    last = ack;
                    seen++;
                }
            }
        }
        finally
        {
            process.Kill();
            await process.WaitForExitAsync(deadline.Token);
        }
        // Lines printed between the last one read and the kill count too.
        await foreach (var line in lines.Reader.ReadAllAsync(deadline.Token))
        {
            if (Parse(line) is { } ack) last = ack;
        }
        return last;
    }

    private static (ulong, ulong, ulong)? Parse(string line)
    {
        var parts = line.Split(' ');
        if (parts.Length != 4 || parts[0] != "ack") return null;
        return (ulong.Parse(parts[1]), ulong.Parse(parts[2]), ulong.Parse(parts[3]));
    }
}

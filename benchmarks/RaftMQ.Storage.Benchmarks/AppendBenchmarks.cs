using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;
using RaftMQ.Raft;

namespace RaftMQ.Storage.Benchmarks;

/// <summary>
/// Group commit: one <see cref="DurableLogStorage.Save"/> of a batch with one fsync, against the raw cost of writing
/// the same bytes to an appended file with one fsync. The ratio is what the log's format and bookkeeping cost.
/// </summary>
[SimpleJob(RunStrategy.Throughput, launchCount: 1, warmupCount: 3, iterationCount: 12)]
[MedianColumn]
public class BatchAppendBenchmarks
{
    private TempFiles _files = null!;
    private DurableLogStorage _log = null!;
    private RawAppender _raw = null!;
    private Entry[] _batch = [];
    private byte[] _rawBytes = [];

    [Params(100, 1024)]
    public int EntryBytes { get; set; }

    [Params(64, 256)]
    public int BatchEntries { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _files = new TempFiles();
        _log = DurableLogStorage.Open(_files.Sub("wal"));
        _raw = new RawAppender(_files.Sub("raw"));
        _batch = new Entry[BatchEntries];
        var data = new byte[EntryBytes];
        Random.Shared.NextBytes(data);
        for (var i = 0; i < _batch.Length; i++) _batch[i] = new Entry(0, 1, EntryType.Command, data);
        // Exactly the bytes one batch occupies in the log: batch header plus framed entries.
        _rawBytes = new byte[WalFormat.BatchRecordBytes + BatchEntries * (WalFormat.EntryRecordOverhead + EntryBytes)];
        Random.Shared.NextBytes(_rawBytes);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _log.Dispose();
        _raw.Dispose();
        _files.Dispose();
    }

    [Benchmark(Baseline = true, Description = "raw write+fsync")]
    public void Raw() => _raw.Append(_rawBytes);

    [Benchmark(Description = "WAL Save(batch, sync)")]
    public void Wal()
    {
        var first = _log.LastIndex + 1;
        for (var i = 0; i < _batch.Length; i++) _batch[i] = _batch[i] with { Index = first + (ulong)i };
        _log.Save(null, _batch, sync: true);
    }
}

/// <summary>The latency of acknowledging one entry: one small Save with fsync, against a raw 4 KiB write + fsync.</summary>
[SimpleJob(RunStrategy.Throughput, launchCount: 1, warmupCount: 3, iterationCount: 12)]
[MedianColumn]
public class SingleAppendBenchmarks
{
    private TempFiles _files = null!;
    private DurableLogStorage _log = null!;
    private RawAppender _raw = null!;
    private readonly byte[] _data = new byte[100];
    private readonly byte[] _page = new byte[4096];

    [GlobalSetup]
    public void Setup()
    {
        _files = new TempFiles();
        _log = DurableLogStorage.Open(_files.Sub("wal"));
        _raw = new RawAppender(_files.Sub("raw"));
        Random.Shared.NextBytes(_data);
        Random.Shared.NextBytes(_page);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _log.Dispose();
        _raw.Dispose();
        _files.Dispose();
    }

    [Benchmark(Baseline = true, Description = "raw 4 KiB write+fsync")]
    public void Raw() => _raw.Append(_page);

    [Benchmark(Description = "WAL Save(1 x 100 B, sync)")]
    public void Wal() => _log.Save(null, [new Entry(_log.LastIndex + 1, 1, EntryType.Command, _data)], sync: true);
}

/// <summary>A plain FileStream appending and fsyncing, starting a new file every 64 MiB as the log does.</summary>
internal sealed class RawAppender(string directory) : IDisposable
{
    private FileStream? _file;
    private int _files;

    public void Append(byte[] bytes)
    {
        if (_file is null || _file.Length + bytes.Length > 64L * 1024 * 1024)
        {
            _file?.Dispose();
            _file = new FileStream(Path.Combine(directory, $"raw-{_files++}.bin"), FileMode.CreateNew, FileAccess.Write, FileShare.Read, 1, FileOptions.None);
        }
        _file.Write(bytes);
        _file.Flush(flushToDisk: true);
    }

    public void Dispose() => _file?.Dispose();
}

/// <summary>A scratch directory next to the working directory (on the disk being measured), removed afterwards.</summary>
internal sealed class TempFiles : IDisposable
{
    public string Root { get; } = Path.Combine(Environment.GetEnvironmentVariable("RAFTMQ_BENCH_DIR") ?? Path.GetTempPath(), "raftmq-bench-" + Guid.NewGuid().ToString("N"));

    public string Sub(string name)
    {
        var path = Path.Combine(Root, name);
        Directory.CreateDirectory(path);
        return path;
    }

    public void Dispose() => Directory.Delete(Root, recursive: true);
}

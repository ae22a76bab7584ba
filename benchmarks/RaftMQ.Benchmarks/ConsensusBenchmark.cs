using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;

namespace RaftMQ.Benchmarks;

/// <summary>
/// A 3-node cluster in memory committing batches of 100-byte commands. Each operation is one committed entry, so the
/// reported time is per entry; the whole cluster runs on one thread, so the throughput is per core.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(EntriesPerSecondConfig))]
public class ConsensusBenchmark
{
    private const int EntriesPerInvocation = 16_384;

    private readonly ReadOnlyMemory<byte> _command = new byte[100];
    private InMemoryCluster _cluster = null!;

    [Params(1, 16, 64, 256)]
    public int BatchSize { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _cluster = new InMemoryCluster(3);
        _cluster.ElectFirstNode();
    }

    [Benchmark(OperationsPerInvoke = EntriesPerInvocation)]
    public ulong CommitBatches()
    {
        var target = _cluster.Leader.CommitIndex + EntriesPerInvocation;
        for (int done = 0; done < EntriesPerInvocation; done += BatchSize)
            _cluster.ProposeAndCommit(_command, BatchSize);
        if (_cluster.Leader.CommitIndex != target)
            throw new InvalidOperationException($"commit index {_cluster.Leader.CommitIndex}, expected {target}");
        _cluster.Compact();
        return _cluster.Leader.CommitIndex;
    }
}

/// <summary>Adds the median and the operations (here: committed entries) per second to the summary.</summary>
public sealed class EntriesPerSecondConfig : ManualConfig
{
    public EntriesPerSecondConfig()
    {
        AddColumn(StatisticColumn.Median, StatisticColumn.OperationsPerSecond);
    }
}

using System.Text;
using RaftMQ.Raft;
using RaftMQ.Storage;

namespace RaftMQ.Runtime.Tests;

/// <summary>The runtime's own snapshots record the cluster configuration, so a node whose log was compacted past a change recovers it.</summary>
public sealed class SnapshotConfigurationTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "raftmq-snapconf-tests", Guid.NewGuid().ToString("N")[..12]);

    private static NodeDriver Open(string directory, SnapshotHost host, AppendMachine machine) =>
        new(new RaftOptions { Id = 1, Voters = [1], ElectionTicks = 5, RandomSeed = 3 },
            new NodeDriverOptions { SnapshotEveryEntries = 10, SnapshotRetainEntries = 3, SnapshotRetainBytes = 1 << 20 },
            NodeStorage.Open(directory), machine, host, readContextSeed: 99);

    [Fact]
    public void A_restarted_node_with_a_compacted_log_recovers_a_changed_configuration()
    {
        var host = new SnapshotHost();
        var machine = new AppendMachine();
        var driver = Open(_directory, host, machine);
        for (int i = 0; i < 50 && driver.Raft.Role != Role.Leader; i++)
        {
            driver.Tick();
            driver.ProcessReady();
        }
        driver.Raft.Role.ShouldBe(Role.Leader);
        // Commit the no-op of the term, then change the configuration: node 2 joins as a learner.
        driver.ProcessReady();
        driver.Raft.AddLearner(2).Status.ShouldBe(MembershipStatus.Accepted);
        driver.ProcessReady();
        var changeIndex = driver.Raft.ConfigurationIndex;
        changeIndex.ShouldBeGreaterThan(0UL);
        driver.Raft.CommitIndex.ShouldBeGreaterThanOrEqualTo(changeIndex);
        // Enough commands for several snapshots; each is written at once and the log compacted behind it.
        for (int i = 0; i < 40; i++)
        {
            driver.Propose(Encoding.UTF8.GetBytes("c" + i), new TaskCompletionSource<object?>());
            driver.ProcessReady();
            while (host.Written.TryDequeue(out var job))
            {
                job.Error.ShouldBeNull();
                job.Metadata.Configuration.ShouldNotBeNull().IsLearner(2).ShouldBeTrue();
                driver.CompleteSnapshot(job);
                driver.ProcessReady();
            }
        }
        driver.Storage.Log.FirstIndex.ShouldBeGreaterThan(changeIndex); // the change's entry is compacted away
        var expected = driver.Raft.Configuration;
        driver.Dispose();
        driver.Storage.Dispose();

        // The options still say {1}: only the snapshot can tell that node 2 is a learner.
        var restarted = Open(_directory, new SnapshotHost(), new AppendMachine());
        try
        {
            restarted.Raft.Configuration.ShouldBe(expected);
            restarted.Raft.Configuration.IsLearner(2).ShouldBeTrue();
        }
        finally
        {
            restarted.Dispose();
            restarted.Storage.Dispose();
        }
    }

    public void Dispose()
    {
        if (Directory.Exists(_directory)) Directory.Delete(_directory, recursive: true);
    }

    /// <summary>Writes each snapshot on the caller's thread and queues the job for the test to hand back.</summary>
    private sealed class SnapshotHost : INodeHost
    {
        public Queue<SnapshotJob> Written { get; } = new();

        public TimeProvider Time => TimeProvider.System;

        public void Send(RaftMessage message)
        {
        }

        public void WriteSnapshotInBackground(SnapshotJob job)
        {
            job.Write();
            Written.Enqueue(job);
        }
    }
}

using RaftMQ.Raft;
using RaftMQ.Storage;

namespace RaftMQ.Runtime.Tests;

/// <summary>
/// The driver lets its host publish its views of the node (<see cref="INodeHost.BeforeCompletingChanges"/>) before it
/// completes a membership change: a caller whose change completed finds it in what the host published. Continuations
/// run synchronously here, so the check sees exactly what the host had published at the moment of completion.
/// </summary>
public sealed class CompletionOrderTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "raftmq-completion-tests", Guid.NewGuid().ToString("N")[..12]);

    [Fact]
    public void A_completed_membership_change_is_in_the_configuration_the_host_published()
    {
        var host = new PublishingHost();
        var driver = new NodeDriver(new RaftOptions { Id = 1, Voters = [1], ElectionTicks = 5, RandomSeed = 3 }, new NodeDriverOptions(),
            NodeStorage.Open(_directory), new AppendMachine(), host, readContextSeed: 5);
        host.Driver = driver;
        try
        {
            for (var i = 0; i < 50 && driver.Raft.Role != Role.Leader; i++)
            {
                driver.Tick();
                driver.ProcessReady();
            }
            driver.Raft.Role.ShouldBe(Role.Leader);
            driver.ProcessReady(); // the term's no-op commits

            ClusterConfiguration? seenAtCompletion = null;
            var completion = new TaskCompletionSource<MembershipChanged>(); // continuations run inline, on this thread
            var observed = completion.Task.ContinueWith(_ => seenAtCompletion = host.PublishedCommitted, TaskContinuationOptions.ExecuteSynchronously);
            driver.AddLearner(2, null, completion).Status.ShouldBe(MembershipStatus.Accepted);
            driver.ProcessReady();

            completion.Task.IsCompletedSuccessfully.ShouldBeTrue();
            observed.IsCompleted.ShouldBeTrue();
            seenAtCompletion.ShouldNotBeNull().IsLearner(2).ShouldBeTrue();
        }
        finally
        {
            driver.Dispose();
            driver.Storage.Dispose();
        }
    }

    public void Dispose()
    {
        if (Directory.Exists(_directory)) Directory.Delete(_directory, recursive: true);
    }

    /// <summary>Publishes the committed configuration the way a runtime does, when the driver says to.</summary>
    private sealed class PublishingHost : INodeHost
    {
        public NodeDriver? Driver { get; set; }

        public ClusterConfiguration? PublishedCommitted { get; private set; }

        public TimeProvider Time => TimeProvider.System;

        public void Send(RaftMessage message)
        {
        }

        public void WriteSnapshotInBackground(SnapshotJob job) => throw new InvalidOperationException("no snapshots in this test");

        public void BeforeCompletingChanges()
        {
            var raft = Driver!.Raft;
            PublishedCommitted = raft.ConfigurationAt(raft.CommitIndex);
        }
    }
}

using RaftMQ.Raft;

namespace RaftMQ.Runtime.Tests;

/// <summary>A host that keeps the log fsync it is given for the test to finish (or not), and the messages sent.</summary>
internal sealed class HoldingHost : INodeHost
{
    private readonly List<RaftMessage> _sent = [];

    /// <summary>The fsync the driver handed over and the test has not finished yet.</summary>
    public LogSyncJob? Sync { get; set; }

    public TimeProvider Time => TimeProvider.System;

    public void Send(RaftMessage message) => _sent.Add(message);

    public List<RaftMessage> TakeSent()
    {
        var sent = _sent.ToList();
        _sent.Clear();
        return sent;
    }

    public void WriteSnapshotInBackground(SnapshotJob job) => throw new InvalidOperationException("no snapshots of the node's own in these tests");

    public bool TrySyncLogInBackground(LogSyncJob job)
    {
        Sync.ShouldBeNull("one fsync at a time");
        Sync = job;
        return true;
    }

    /// <summary>Handles the driver's Readies and finishes every fsync at once, until none is left.</summary>
    public void Drain(NodeDriver driver)
    {
        driver.ProcessReady();
        while (Sync is { } sync)
        {
            Sync = null;
            sync.Run();
            driver.CompleteLogSync(sync);
            driver.ProcessReady();
        }
    }
}

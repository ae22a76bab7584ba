using RaftMQ.Raft;

namespace RaftMQ.Runtime.Tests;

/// <summary>A host that records what the driver sends, reads the system clock and writes snapshots on the caller's thread.</summary>
internal sealed class SendRecordingHost(List<RaftMessage> sent) : INodeHost
{
    public TimeProvider Time => TimeProvider.System;

    public void Send(RaftMessage message) => sent.Add(message);

    public void WriteSnapshotInBackground(SnapshotJob job) => job.Write();
}

using System.Diagnostics.Metrics;
using RaftMQ.Raft;

namespace RaftMQ.Runtime;

/// <summary>
/// A node's Raft state and loop activity as <see cref="System.Diagnostics.Metrics"/> instruments on the meter
/// <see cref="MeterName"/>. Gauges and counters are read from <see cref="RaftRuntime.Status"/> and
/// <see cref="RaftRuntime.Counters"/> when a listener collects; the histograms are recorded by the loop (log writes)
/// and the snapshot writer. Created and disposed by the runtime.
/// </summary>
public sealed class RuntimeInstruments : IDisposable
{
    /// <summary>The meter every runtime instrument is on.</summary>
    public const string MeterName = "RaftMQ.Runtime";

    /// <summary>Bucket bounds (seconds) of the latency histograms: 50 µs to 10 s, for fsyncs on fast and slow disks alike.</summary>
    public static readonly IReadOnlyList<double> LatencyBuckets =
        [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    /// <summary>Bucket bounds (bytes) of the snapshot size histogram: 4 KiB to 16 GiB, by powers of 4.</summary>
    public static readonly IReadOnlyList<double> SizeBuckets = [.. Enumerable.Range(0, 12).Select(i => 4096.0 * Math.Pow(4, i))];

    private readonly Meter _meter = new(MeterName);
    private readonly Histogram<double> _logWrite;
    private readonly Histogram<double> _logSync;
    private readonly Histogram<double> _snapshotDuration;
    private readonly Histogram<long> _snapshotSize;

    public RuntimeInstruments(RaftRuntime runtime)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        var r = runtime;
        _meter.CreateObservableGauge("raftmq.raft.role", () => RoleMeasurements(r.Status.Role), null, "1 for this node's current role (leader, follower, candidate), 0 for the others");
        _meter.CreateObservableGauge("raftmq.raft.term", () => (long)r.Status.Term, null, "The current Raft term");
        _meter.CreateObservableGauge("raftmq.raft.leader", () => (long)r.Status.Leader, null, "The id of the leader this node knows (0: none)");
        _meter.CreateObservableGauge("raftmq.raft.commit_index", () => (long)r.Status.CommitIndex, null, "The highest log index known to be committed");
        _meter.CreateObservableGauge("raftmq.raft.applied_index", () => (long)r.Status.AppliedIndex, null, "The highest log index applied to the state machine");
        _meter.CreateObservableGauge("raftmq.raft.quiesced", () => r.Status.Quiesced ? 1 : 0, null, "1 while this node runs at the quiet pace (idle heartbeats), else 0");
        _meter.CreateObservableGauge("raftmq.raft.last_index", () => (long)r.Status.LastIndex, null, "The index of the last entry in this node's log");
        _meter.CreateObservableGauge("raftmq.raft.follower.lag", () => LagMeasurements(r), "{entry}", "On the leader, per follower: entries of the leader's log the follower is not known to hold");
        _meter.CreateObservableCounter("raftmq.raft.leader_changes", () => r.LeaderChanges, "{change}", "Times this node saw the leader change (a new leader, or none)");
        _meter.CreateObservableCounter("raftmq.raft.proposals", () => r.Counters.Proposals, "{command}", "Commands proposed on this node (as the leader)");
        _meter.CreateObservableCounter("raftmq.raft.reads", () => r.Counters.Reads, "{read}", "Linearizable reads asked of this node");
        _meter.CreateObservableCounter("raftmq.raft.forwards", () => r.Counters.ForwardsSent, "{command}", "Commands this node forwarded to the leader");
        _meter.CreateObservableCounter("raftmq.raft.entries.persisted", () => r.Counters.EntriesPersisted, "{entry}", "Log entries written to this node's log");
        _meter.CreateObservableCounter("raftmq.raft.entries.applied", () => r.Counters.EntriesApplied, "{entry}", "Committed entries applied to the state machine");
        _meter.CreateObservableCounter("raftmq.raft.messages.sent", () => r.Counters.MessagesSent, "{message}", "Consensus messages handed to the transport");
        _meter.CreateObservableCounter("raftmq.raft.messages.handled", () => r.Counters.MessagesHandled, "{message}", "Messages from peers the loop handled");
        _meter.CreateObservableCounter("raftmq.raft.messages.dropped", () => r.DroppedPeerMessages, "{message}", "Peer messages dropped because the node's inbox was full");
        _meter.CreateObservableCounter("raftmq.raft.snapshots", () => r.Counters.SnapshotsTaken, "{snapshot}", "Snapshots this node took of its state machine");
        _meter.CreateObservableCounter("raftmq.log.writes", () => r.Counters.LogWrites, "{write}", "Writes to the log (entries and/or term and vote)");
        _meter.CreateObservableCounter("raftmq.log.syncs", () => r.Counters.LogSyncs, "{fsync}", "Log writes that were fsynced");
        _logWrite = _meter.CreateHistogram("raftmq.log.append.duration", "s", "Time to write one batch to the log, its fsync included when it has one",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyBuckets });
        _logSync = _meter.CreateHistogram("raftmq.log.fsync.duration", "s", "Time to write and fsync one batch to the log (the writes that were fsynced)",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyBuckets });
        _snapshotDuration = _meter.CreateHistogram("raftmq.snapshot.duration", "s", "Time to write, fsync and commit one snapshot file",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyBuckets });
        _snapshotSize = _meter.CreateHistogram("raftmq.snapshot.size", "By", "Size of each snapshot file written",
            advice: new InstrumentAdvice<long> { HistogramBucketBoundaries = [.. SizeBuckets.Select(b => (long)b)] });
    }

    internal void LogWritten(TimeSpan duration, bool synced)
    {
        _logWrite.Record(duration.TotalSeconds);
        if (synced) _logSync.Record(duration.TotalSeconds);
    }

    internal void SnapshotWritten(SnapshotJob job)
    {
        if (job.Error is not null) return;
        _snapshotDuration.Record(job.Duration.TotalSeconds);
        _snapshotSize.Record(job.Bytes);
    }

    public void Dispose() => _meter.Dispose();

    private static Measurement<int>[] RoleMeasurements(Role role) =>
    [
        new(role == Role.Leader ? 1 : 0, new KeyValuePair<string, object?>("role", "leader")),
        new(role == Role.Follower ? 1 : 0, new KeyValuePair<string, object?>("role", "follower")),
        new(role is Role.Candidate or Role.PreCandidate ? 1 : 0, new KeyValuePair<string, object?>("role", "candidate")),
    ];

    private static IEnumerable<Measurement<long>> LagMeasurements(RaftRuntime runtime)
    {
        var status = runtime.Status;
        if (status.Role != Role.Leader) return [];
        return runtime.Replication.Select(p => new Measurement<long>(
            (long)(status.LastIndex - Math.Min(p.MatchIndex, status.LastIndex)),
            new KeyValuePair<string, object?>("peer", p.Peer.ToString(System.Globalization.CultureInfo.InvariantCulture))));
    }
}

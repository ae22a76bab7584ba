namespace RaftMQ.Runtime;

/// <summary>
/// What a node's loop has done since it started, for metrics and diagnosis. The loop is the only writer; readers on
/// other threads see each value atomically (not all of them as of one instant).
/// </summary>
public sealed class RuntimeCounters
{
    private long _iterations;
    private long _readies;
    private long _saves;
    private long _syncs;
    private long _entriesPersisted;
    private long _entriesApplied;
    private long _messagesSent;
    private long _messagesHandled;
    private long _proposals;
    private long _reads;
    private long _snapshotsTaken;
    private long _forwardsSent;
    private long _forwardsRefused;
    private long _forwardAnswersIgnored;
    private long _forwardDuplicatesIgnored;

    /// <summary>Passes of the loop: each takes a batch of inputs, then handles every Ready they produced.</summary>
    public long Iterations => Volatile.Read(ref _iterations);

    /// <summary>Readies handled (each at most one write to the log).</summary>
    public long Readies => Volatile.Read(ref _readies);

    /// <summary>Writes to the log (entries and/or hard state).</summary>
    public long LogWrites => Volatile.Read(ref _saves);

    /// <summary>Writes that were fsynced: entries or a term/vote change (group commit: one per Ready at most).</summary>
    public long LogSyncs => Volatile.Read(ref _syncs);

    /// <summary>Log entries written to this node's log.</summary>
    public long EntriesPersisted => Volatile.Read(ref _entriesPersisted);

    /// <summary>Committed entries applied to the state machine.</summary>
    public long EntriesApplied => Volatile.Read(ref _entriesApplied);

    /// <summary>Messages of the consensus core handed to the transport (snapshot chunks are not counted).</summary>
    public long MessagesSent => Volatile.Read(ref _messagesSent);

    /// <summary>Messages from peers that the loop handled (snapshot chunks included).</summary>
    public long MessagesHandled => Volatile.Read(ref _messagesHandled);

    /// <summary>Commands proposed on this node (accepted or not).</summary>
    public long Proposals => Volatile.Read(ref _proposals);

    /// <summary>Linearizable reads asked of this node.</summary>
    public long Reads => Volatile.Read(ref _reads);

    /// <summary>Snapshots this node took of its state machine.</summary>
    public long SnapshotsTaken => Volatile.Read(ref _snapshotsTaken);

    /// <summary>Commands this node forwarded to the leader.</summary>
    public long ForwardsSent => Volatile.Read(ref _forwardsSent);

    /// <summary>Forwarded commands this node, as the leader, refused by the application's admission check.</summary>
    public long ForwardsRefused => Volatile.Read(ref _forwardsRefused);

    /// <summary>Answers to forwards ignored: unknown request id (late, or of an earlier run) or not from the node asked.</summary>
    public long ForwardAnswersIgnored => Volatile.Read(ref _forwardAnswersIgnored);

    /// <summary>Copies of a forward request this node had already taken, ignored (a command is taken at most once).</summary>
    public long ForwardDuplicatesIgnored => Volatile.Read(ref _forwardDuplicatesIgnored);

    internal void Iteration() => Volatile.Write(ref _iterations, _iterations + 1);

    internal void Ready() => Volatile.Write(ref _readies, _readies + 1);

    /// <summary>Where the loop records how long each log write took; null records nothing.</summary>
    internal RuntimeInstruments? Instruments { get; set; }

    internal void Saved(int entries, bool sync, TimeSpan took)
    {
        Volatile.Write(ref _saves, _saves + 1);
        if (sync) Volatile.Write(ref _syncs, _syncs + 1);
        Volatile.Write(ref _entriesPersisted, _entriesPersisted + entries);
        Instruments?.LogWritten(took, sync);
    }

    /// <summary>Time spent writing (and syncing) the log, in ticks of the host's <see cref="TimeProvider"/>.</summary>
    public long SaveTimestampTicks => Volatile.Read(ref _saveTicks);

    /// <summary>Time spent applying committed entries to the state machine, in ticks of the host's <see cref="TimeProvider"/>.</summary>
    public long ApplyTimestampTicks => Volatile.Read(ref _applyTicks);

    /// <summary>Time the loop spent on snapshots: capturing the state machine and compacting the log behind a written snapshot.</summary>
    public long SnapshotTimestampTicks => Volatile.Read(ref _snapshotTicks);

    private long _saveTicks;
    private long _applyTicks;
    private long _snapshotTicks;

    internal void SnapshotTook(long ticks) => Volatile.Write(ref _snapshotTicks, _snapshotTicks + ticks);

    internal void SaveTook(long ticks) => Volatile.Write(ref _saveTicks, _saveTicks + ticks);

    internal void ApplyTook(long ticks) => Volatile.Write(ref _applyTicks, _applyTicks + ticks);

    internal void Applied(int entries) => Volatile.Write(ref _entriesApplied, _entriesApplied + entries);

    internal void Sent(int messages) => Volatile.Write(ref _messagesSent, _messagesSent + messages);

    internal void Handled() => Volatile.Write(ref _messagesHandled, _messagesHandled + 1);

    internal void Proposed() => Volatile.Write(ref _proposals, _proposals + 1);

    internal void Read() => Volatile.Write(ref _reads, _reads + 1);

    internal void SnapshotTaken() => Volatile.Write(ref _snapshotsTaken, _snapshotsTaken + 1);

    internal void Forwarded() => Volatile.Write(ref _forwardsSent, _forwardsSent + 1);

    internal void ForwardRefused() => Volatile.Write(ref _forwardsRefused, _forwardsRefused + 1);

    internal void ForwardAnswerIgnored() => Volatile.Write(ref _forwardAnswersIgnored, _forwardAnswersIgnored + 1);

    internal void ForwardDuplicateIgnored() => Volatile.Write(ref _forwardDuplicatesIgnored, _forwardDuplicatesIgnored + 1);
}

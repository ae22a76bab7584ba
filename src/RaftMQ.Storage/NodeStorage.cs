using RaftMQ.Raft;

namespace RaftMQ.Storage;

/// <summary>
/// Everything one node keeps on disk: the log (<c>wal/</c>) and its snapshots (<c>snapshots/</c>) under one data
/// directory, opened and reconciled together. This is what the node runtime holds:
/// <code>
/// using var storage = NodeStorage.Open(dataDir, options);
/// logger.LogInformation("{Recovery}", storage.Recovery);
/// var node = new RaftNode(raftOptions, storage.Log);
/// // per Ready: storage.Save(ready.HardState, ready.Entries, ready.MustSync);
/// </code>
/// Not thread-safe: owned by the node's loop.
/// </summary>
public sealed class NodeStorage : IDisposable
{
    private NodeStorage(DurableLogStorage log, SnapshotStore snapshots)
    {
        Log = log;
        Snapshots = snapshots;
    }

    /// <summary>
    /// Opens (or creates) a node's storage. If a crash came between saving a snapshot and adopting it in the log,
    /// the adoption is finished here.
    /// </summary>
    /// <exception cref="StorageCorruptedException">Damage that needs an operator; the message says what to do.</exception>
    public static NodeStorage Open(string directory, StorageOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        options ??= new StorageOptions();
        var log = DurableLogStorage.Open(Path.Combine(directory, "wal"), options);
        try
        {
            var snapshots = SnapshotStore.Open(Path.Combine(directory, "snapshots"), options);
            var latest = snapshots.Latest;
            if (latest is { } s && s.Index > log.Snapshot.Index) log.InstallSnapshot(s);
            if (log.Snapshot.Index > 0 && (latest is null || latest.Value.Index < log.Snapshot.Index))
            {
                throw new StorageCorruptedException(
                    $"the log in {log.Directory} was compacted through index {log.Snapshot.Index}, but the newest snapshot in {snapshots.Directory} " +
                    $"is {(latest is null ? "missing" : $"at {latest.Value.Index}")}: the state machine cannot be rebuilt. " +
                    "Restore the snapshot files from a backup, or remove the data directory so the node rejoins empty.", snapshots.Directory);
            }
            // The segments keep only the snapshot's index and term; its file keeps the cluster configuration.
            if (log.Snapshot.Index > 0) log.AdoptSnapshotConfiguration(log.Snapshot with { Configuration = snapshots.ReadConfiguration(log.Snapshot) });
            return new NodeStorage(log, snapshots);
        }
        catch
        {
            log.Dispose();
            throw;
        }
    }

    /// <summary>The durable log; pass it to <see cref="RaftNode"/> as its <see cref="ILogStorage"/>.</summary>
    public DurableLogStorage Log { get; }

    /// <summary>The snapshot files.</summary>
    public SnapshotStore Snapshots { get; }

    /// <summary>What the log's recovery found; log it at start-up.</summary>
    public StorageRecoveryReport Recovery => Log.Recovery;

    /// <summary>Persists one Ready; see <see cref="DurableLogStorage.Save"/>.</summary>
    public void Save(HardState? hardState, IReadOnlyList<Entry> entries, bool sync) => Log.Save(hardState, entries, sync);

    /// <summary>Writes one Ready and leaves its fsync to the result; see <see cref="DurableLogStorage.SaveUnsynced"/>.</summary>
    public DurableLogStorage.LogSync SaveUnsynced(HardState? hardState, IReadOnlyList<Entry> entries) => Log.SaveUnsynced(hardState, entries);

    /// <summary>Takes back a finished fsync; see <see cref="DurableLogStorage.CompleteSync"/>.</summary>
    public void CompleteSync(DurableLogStorage.LogSync sync) => Log.CompleteSync(sync);

    /// <summary>Starts a snapshot of the local state machine; commit it, then call <see cref="Compact"/>.</summary>
    public SnapshotWriter CreateSnapshot(SnapshotMetadata metadata) => Snapshots.Create(metadata);

    /// <summary>Drops log entries covered by a committed snapshot; see <see cref="DurableLogStorage.Compact"/>.</summary>
    public void Compact(SnapshotMetadata snapshot) => Log.Compact(snapshot);

    /// <summary>Compacts and leaves the fsync and the file deletions to the result; see <see cref="DurableLogStorage.CompactUnsynced"/>.</summary>
    public DurableLogStorage.LogSync CompactUnsynced(SnapshotMetadata snapshot) => Log.CompactUnsynced(snapshot);

    /// <summary>
    /// Stores a snapshot received from the leader, then adopts it in the log (§7): the log's suffix after it is
    /// kept when it matches, otherwise the whole log is discarded. Returns false for a snapshot not newer than the
    /// log's, which is then not stored.
    /// </summary>
    public bool InstallSnapshot(SnapshotMetadata metadata, Stream data)
    {
        if (metadata.Index <= Log.Snapshot.Index) return false;
        Snapshots.Save(metadata, data);
        return Log.InstallSnapshot(metadata);
    }

    /// <summary>Opens the newest snapshot (checksum verified), or null; see <see cref="SnapshotStore.OpenLatest"/>.</summary>
    public SnapshotStream? OpenLatestSnapshot() => Snapshots.OpenLatest();

    /// <summary>Closes the log; see <see cref="DurableLogStorage.Dispose"/>.</summary>
    public void Dispose() => Log.Dispose();
}

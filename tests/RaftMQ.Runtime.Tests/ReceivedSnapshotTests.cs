using RaftMQ.Raft;
using RaftMQ.Storage;

namespace RaftMQ.Runtime.Tests;

/// <summary>
/// A snapshot a follower receives goes into its store only if its core adopts it: the store's newest snapshot is what
/// the node restores (and restarts from), so a refused one left there would stand in for a later, older one.
/// </summary>
public sealed class ReceivedSnapshotTests : IDisposable
{
    private static readonly ClusterConfiguration Members = new([1, 2, 3]);

    private readonly string _directory = Path.Combine(Path.GetTempPath(), "raftmq-received-snapshot-tests", Guid.NewGuid().ToString("N")[..12]);
    private readonly HoldingHost _host = new();
    private readonly AppendMachine _machine = new();
    private readonly NodeDriver _driver;

    /// <summary>Node 2 of three, a follower that has heard from nobody yet.</summary>
    public ReceivedSnapshotTests()
    {
        _driver = new NodeDriver(new RaftOptions { Id = 2, Voters = [1, 2, 3], ElectionTicks = 5, RandomSeed = 3 },
            new NodeDriverOptions(), NodeStorage.Open(_directory), _machine, _host, readContextSeed: 5);
        _driver.ProcessReady();
    }

    [Fact]
    public void A_snapshot_whose_leaders_term_ended_while_it_waited_for_an_fsync_is_not_stored_and_an_older_one_installs()
    {
        // Leader 1 of term 1 sends entries: their fsync is held, so a snapshot completed meanwhile waits for it.
        _driver.Step(new AppendEntries(1, 2, 1, 0, 0,
            [new Entry(1, 1, EntryType.Command, "a"u8.ToArray()), new Entry(2, 1, EntryType.Command, "b"u8.ToArray())], 0));
        _driver.ProcessReady();
        var sync = _host.Sync.ShouldNotBeNull();
        var newer = new SnapshotMetadata(25, 1) { Configuration = Members };
        _driver.Step(Chunk(from: 1, term: 1, newer, ["x", "y", "z"]));
        _driver.ProcessReady();

        // Before the fsync ends, node 3 leads term 2: the waiting snapshot's leader is no longer the leader.
        _driver.Step(new Heartbeat(3, 2, 2, 0, 0));
        _driver.ProcessReady();
        _host.Sync = null;
        sync.Run();
        _driver.CompleteLogSync(sync);
        _driver.ProcessReady();
        _driver.Raft.Term.ShouldBe(2ul);
        _driver.Raft.CommitIndex.ShouldBe(0ul); // the core refused it (a message of term 1)
        _driver.Storage.Snapshots.Latest.ShouldBeNull(); // and its file is not in the store

        // The new leader's snapshot is older than the refused one; the core adopts it and the node installs it.
        var older = new SnapshotMetadata(23, 1) { Configuration = Members };
        _driver.Step(Chunk(from: 3, term: 2, older, ["x", "y"]));
        _host.Drain(_driver);

        _driver.Storage.Snapshots.Latest.ShouldBe(older);
        _driver.AppliedIndex.ShouldBe(23ul);
        _machine.Items.ShouldBe(["x", "y"]);
        _host.TakeSent().OfType<AppendEntriesResponse>().ShouldContain(r => r.To == 3 && !r.Reject && r.Index == 23);
    }

    [Fact]
    public void A_snapshot_the_commit_index_already_passed_is_not_stored()
    {
        _driver.Step(new AppendEntries(1, 2, 1, 0, 0,
            [new Entry(1, 1, EntryType.Command, "a"u8.ToArray()), new Entry(2, 1, EntryType.Command, "b"u8.ToArray())], 2));
        _host.Drain(_driver);
        _driver.AppliedIndex.ShouldBe(2ul);

        _driver.Step(Chunk(from: 1, term: 1, new SnapshotMetadata(1, 1) { Configuration = Members }, ["a"]));
        _host.Drain(_driver);

        _driver.Storage.Snapshots.Latest.ShouldBeNull();
        _machine.Items.ShouldBe(["a", "b"]);
    }

    /// <summary>The whole snapshot of an <see cref="AppendMachine"/> holding <paramref name="items"/>, in one chunk.</summary>
    private static SnapshotChunk Chunk(ulong from, ulong term, SnapshotMetadata snapshot, string[] items)
    {
        var machine = new AppendMachine();
        foreach (var item in items) machine.Apply(0, System.Text.Encoding.UTF8.GetBytes(item));
        using var bytes = new MemoryStream();
        using (var captured = machine.CaptureSnapshot()) captured.WriteTo(bytes);
        return new SnapshotChunk(from, 2, term, snapshot, 0, bytes.ToArray(), Done: true);
    }

    public void Dispose()
    {
        _driver.Dispose();
        _driver.Storage.Dispose();
        if (Directory.Exists(_directory)) Directory.Delete(_directory, recursive: true);
    }
}

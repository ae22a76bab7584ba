using RaftMQ.Simulation.Tests.Support;

namespace RaftMQ.Simulation.Tests;

/// <summary>Log compaction and InstallSnapshot (§7) in the simulated cluster, and disks that keep only what was synced.</summary>
public sealed class SnapshotAndDiskTests
{
    private const int TransferTimeoutMs = 300;

    private SimCluster Cluster(int nodes, Action<SimOptions>? configure = null, [System.Runtime.CompilerServices.CallerMemberName] string test = "") =>
        Sim.Cluster(GetType(), nodes, 42, o =>
        {
            o.Link = LinkConfig.Reliable with { MinDelayMs = 1, MaxDelayMs = 1 };
            o.SnapshotTransferTimeoutMs = TransferTimeoutMs;
            configure?.Invoke(o);
        }, test);

    private static SimNode ElectedLeader(SimCluster sim)
    {
        sim.Await(() => sim.Leader is { } l && l.CommitIndex >= 1 && sim.Nodes.All(n => n.Raft?.Leader == l.Id), 5_000, "a settled leader");
        return sim.Leader!;
    }

    private static void ProposeAndCommit(SimCluster sim, SimNode leader, int count, long firstValue)
    {
        var proposals = Enumerable.Range(0, count).Select(i => sim.Propose(Sim.Cmd(firstValue + i), leader.Id)).ToList();
        sim.Await(() => proposals.All(p => p.IsAcknowledged), 2_000, $"{count} proposals acknowledged");
        // Snapshots are written in the background; let the ones due be written.
        sim.Await(() => sim.Nodes.All(n => n.Driver is not { SnapshotInProgress: true }), 1_000, "snapshot writes finished");
    }

    private static void AwaitConverged(SimCluster sim)
    {
        sim.Await(() => sim.Leader is { Raft: { } l } && l.CommitIndex == l.LastIndex
            && sim.Nodes.All(n => n.IsUp && n.AppliedThisRun == l.LastIndex), 5_000, "every node applied the leader's whole log");
        sim.Await(() => sim.Nodes.All(n => n.Driver is not { SnapshotInProgress: true }), 1_000, "snapshot writes finished");
        sim.CheckAcknowledgedAppliedExactlyOnce();
    }

    [Fact]
    public void PartitionedFollower_WhileTheLeaderCompacts_GetsTheSnapshotAfterHealing()
    {
        var sim = Cluster(3, o => o.SnapshotEveryEntries = 5);
        var leader = ElectedLeader(sim);
        var follower = sim.Nodes.First(n => n.Id != leader.Id);
        var behind = follower.Storage.LastIndex;

        sim.Isolate(follower.Id);
        ProposeAndCommit(sim, leader, 23, 1);
        leader.Storage.FirstIndex.ShouldBeGreaterThan(behind + 1, "the leader compacted away what the follower lacks");
        follower.Storage.LastIndex.ShouldBe(behind);

        sim.Reconnect(follower.Id);
        AwaitConverged(sim);
        follower.SnapshotsInstalled.ShouldBe(1);
        follower.LatestSnapshot.ShouldNotBeNull().Index.ShouldBeGreaterThan(behind);
        follower.Storage.Snapshot.ShouldBe(follower.LatestSnapshot!.Value, "the log starts after the installed snapshot");
        follower.Applied.Select(e => e.Index).ShouldBe(leader.Applied.Select(e => e.Index));
        sim.Checker.AppliedBy(follower.Id).Count.ShouldBe((int)leader.Raft!.LastIndex);

        // Replication goes on from the log after the snapshot.
        ProposeAndCommit(sim, leader, 3, 100);
        AwaitConverged(sim);
        follower.SnapshotsInstalled.ShouldBe(1);
    }

    [Fact]
    public void DroppedSnapshot_IsSentAgain_AfterTheLeaderReportsTheFailedTransfer()
    {
        var sim = Cluster(3, o => o.SnapshotEveryEntries = 4);
        var leader = ElectedLeader(sim);
        var follower = sim.Nodes.First(n => n.Id != leader.Id);
        sim.Isolate(follower.Id);
        ProposeAndCommit(sim, leader, 12, 1);

        // Each transfer starts with an empty probe chunk; dropping the first probe loses the first transfer.
        var sentAt = new List<long>();
        sim.Intercept<SnapshotChunk>(InterceptPoint.BeforeSend, _ =>
        {
            sentAt.Add(sim.Now);
            return sentAt.Count == 1 ? InterceptDecision.Drop : InterceptDecision.Pass;
        }, to: follower.Id, where: c => c.Offset == 0 && c.Data.IsEmpty);
        sim.Reconnect(follower.Id);
        sim.Await(() => sentAt.Count == 1, 1_000, "the first snapshot is sent (and lost)");
        leader.Raft!.DescribeProgress(follower.Id)!.ShouldStartWith("Snapshot", Case.Sensitive, "nothing else goes out while a snapshot is on its way");

        sim.RunFor(TransferTimeoutMs - 20);
        sentAt.Count.ShouldBe(1, "the leader waits for the transfer to time out");
        leader.Raft!.DescribeProgress(follower.Id)!.ShouldStartWith("Snapshot");

        AwaitConverged(sim);
        sentAt.Count.ShouldBe(2, "one retry after the failure report");
        (sentAt[1] - sentAt[0]).ShouldBeGreaterThan(TransferTimeoutMs);
        follower.SnapshotsInstalled.ShouldBe(1);
    }

    [Fact]
    public void CrashWhilePersisting_KeepsAPrefixOfTheEntries_AndTheClusterStaysCorrect()
    {
        var sim = Cluster(3);
        var leader = ElectedLeader(sim);
        var follower = sim.Nodes.First(n => n.Id != leader.Id);
        sim.Block(leader.Id, follower.Id);
        ProposeAndCommit(sim, leader, 5, 1);
        var before = follower.Storage.LastIndex;
        var hardStateBefore = follower.Storage.HardState;
        var answered = sim.Intercept<AppendEntriesResponse>(InterceptPoint.BeforeSend, _ => InterceptDecision.Pass,
            from: follower.Id, where: r => !r.Reject && r.Index > before);
        // The next write to the follower's disk tears after 100 bytes and the node stops (fail-stop).
        follower.Disk.FailWriteAfter = 1;
        follower.Disk.TornWriteBytes = 100;
        sim.Unblock(leader.Id, follower.Id);
        sim.Await(() => !follower.IsUp, 1_000, "the follower crashes while persisting the entries it missed");

        follower.DiskFaults.ShouldBe(1);
        answered.Matched.ShouldBe(0, "nothing that depends on the lost writes was sent");
        var disk = sim.DiskLog(follower.Id);
        disk.LastIndex.ShouldBeInRange(before, before + 5, "at most a prefix of the batch survives");
        (disk.HardState.Term, disk.HardState.Vote).ShouldBe((hardStateBefore.Term, hardStateBefore.Vote));
        disk.HardState.Commit.ShouldBeLessThanOrEqualTo(disk.LastIndex);

        sim.Restart(follower.Id);
        AwaitConverged(sim);
        ProposeAndCommit(sim, leader, 2, 10);
        AwaitConverged(sim);
    }

    [Fact]
    public void Restart_FromSnapshotAndTheLogAfterIt()
    {
        var sim = Cluster(3, o =>
        {
            o.SnapshotEveryEntries = 4;
            o.SnapshotRetainEntries = 2;
            o.Disk = new DiskConfig { LoseUnsyncedOnCrash = true };
        });
        var leader = ElectedLeader(sim);
        ProposeAndCommit(sim, leader, 10, 1);
        AwaitConverged(sim);
        var node = sim.Nodes.First(n => n.Id != leader.Id);
        var snapshot = node.LatestSnapshot.ShouldNotBeNull();
        snapshot.Index.ShouldBeGreaterThanOrEqualTo(8UL, "a snapshot at least every 4 of 11 applied entries");
        node.Storage.Snapshot.Index.ShouldBe(snapshot.Index - 2, "two entries kept before the snapshot");

        sim.Crash(node.Id);
        sim.Restart(node.Id);
        // Opening the storage adopts the newest snapshot in the log (NodeStorage.Open), so the log starts after it.
        node.Raft!.FirstIndex.ShouldBe(snapshot.Index + 1);
        // The checker fails the run if the restarted node applied anything but the entries after the snapshot.
        node.AppliedThisRun.ShouldBeGreaterThanOrEqualTo(snapshot.Index);
        AwaitConverged(sim);
        ProposeAndCommit(sim, leader, 3, 100);
        AwaitConverged(sim);
    }

    [Fact]
    public void Restart_FromASnapshotPastTheSyncedCommitIndex()
    {
        // No compaction (a long retained tail), so nothing syncs the commit index the follower learned last.
        var sim = Cluster(3, o =>
        {
            o.SnapshotEveryEntries = 4;
            o.SnapshotRetainEntries = 1_000;
        });
        var leader = ElectedLeader(sim);
        ProposeAndCommit(sim, leader, 7, 1);
        AwaitConverged(sim);
        var node = sim.Nodes.First(n => n.Id != leader.Id);
        node.LatestSnapshot.ShouldNotBeNull().Index.ShouldBe(8UL);
        node.Disk.HasUnsyncedWrites.ShouldBeTrue();

        sim.Crash(node.Id, CrashMode.DropUnsynced);
        sim.DiskLog(node.Id).HardState.Commit.ShouldBeLessThan(8UL, "the commit index that led to the snapshot was not synced");
        sim.Restart(node.Id);
        node.Raft!.CommitIndex.ShouldBeGreaterThanOrEqualTo(8UL, "applied entries are committed");
        AwaitConverged(sim);
    }

    // A committed entry is on a majority's disks: the leader applies it, answers its proposal and may snapshot it
    // while its own fsync of it is stalled. If it then loses power, it comes back from that snapshot, past its log.
    [Fact]
    public void A_leader_whose_disk_stalls_applies_what_its_followers_hold_and_restarts_from_a_snapshot_past_its_log()
    {
        var sim = Cluster(3, o =>
        {
            o.Disk = new DiskConfig { LoseUnsyncedOnCrash = true };
            o.SnapshotEveryEntries = 1;
            o.SnapshotRetainEntries = 1_000;
        });
        var leader = ElectedLeader(sim);
        ProposeAndCommit(sim, leader, 2, 1);
        AwaitConverged(sim);
        var durable = sim.DiskLog(leader.Id).LastIndex;

        sim.StallLogSyncs(leader.Id, 2_000);
        var stalledUntil = sim.Now + 2_000;
        var proposal = sim.Propose(Sim.Cmd(10), leader.Id);
        sim.Await(() => proposal.IsAcknowledged, 500, "the proposal acknowledged while the leader's own fsync is stalled");
        // Written (its compaction of the log waits for the fsync).
        sim.Await(() => leader.LatestSnapshot is { } s && s.Index >= proposal.Result.Index, 500, "a snapshot of the applied entry");
        sim.Now.ShouldBeLessThan(stalledUntil);
        leader.Driver!.LogSyncInProgress.ShouldBeTrue();

        sim.Crash(leader.Id, CrashMode.DropUnsynced);
        using (var wal = sim.DiskWal(leader.Id))
        {
            wal.LastIndex.ShouldBeLessThan(proposal.Result.Index, "the entry never reached the leader's own log on disk");
            wal.LastIndex.ShouldBeGreaterThanOrEqualTo(durable);
        }
        using (var log = sim.DiskLog(leader.Id))
        {
            log.Snapshot.Index.ShouldBe(proposal.Result.Index, "a restart starts the log from the snapshot");
            log.LastIndex.ShouldBe(proposal.Result.Index);
        }
        sim.Restart(leader.Id);
        leader.Raft!.AppliedIndex.ShouldBeGreaterThanOrEqualTo(proposal.Result.Index, "restored from the snapshot");
        AwaitConverged(sim);
        ProposeAndCommit(sim, sim.Leader!, 2, 20);
        AwaitConverged(sim);
    }

    [Fact]
    public void PowerLoss_LosesOnlyUnsyncedCommitIndexes()
    {
        var sim = Cluster(3, o => o.Disk = new DiskConfig { LoseUnsyncedOnCrash = true });
        var leader = ElectedLeader(sim);
        ProposeAndCommit(sim, leader, 5, 1);
        AwaitConverged(sim);
        var node = sim.Nodes.First(n => n.Id != leader.Id);
        var log = node.Storage.LastIndex;
        var hard = node.Storage.HardState;
        node.Disk.HasUnsyncedWrites.ShouldBeTrue("the follower learned the last commit index from a heartbeat");

        sim.Crash(node.Id, CrashMode.DropUnsynced);
        var disk = sim.DiskLog(node.Id);
        disk.LastIndex.ShouldBe(log, "entries are synced before they are acknowledged");
        (disk.HardState.Term, disk.HardState.Vote).ShouldBe((hard.Term, hard.Vote));
        disk.HardState.Commit.ShouldBeLessThan(hard.Commit);

        sim.Restart(node.Id);
        AwaitConverged(sim);
    }

    [Fact]
    public void FailedFsync_StopsTheNode_WhichComesBackFromWhatWasSynced()
    {
        var sim = Cluster(3, o => o.Disk = new DiskConfig { SyncFailureProbability = 1, RestartAfterFaultMs = 200 });
        sim.Await(() => sim.Nodes.Any(n => n.DiskFaults > 0), 2_000, "a failed fsync");
        var stopped = sim.Nodes.First(n => n.DiskFaults > 0);
        stopped.IsUp.ShouldBeFalse("an fsync failure stops the node at once");
        sim.Leader.ShouldBeNull("every sync fails, so no vote is ever durable and no leader can be elected");

        sim.Disk = DiskConfig.Reliable;
        sim.Await(() => stopped.IsUp, 200, "the node restarts from its disk");
        ElectedLeader(sim);
        ProposeAndCommit(sim, sim.Leader!, 3, 1);
        AwaitConverged(sim);
    }

    [Fact]
    public void TheLogKeptBehindASnapshot_IsBoundedInBytes_NotOnlyInEntries()
    {
        var sim = Cluster(3, o =>
        {
            o.SnapshotEveryEntries = 10;
            o.SnapshotRetainEntries = 1_000;
            o.SnapshotRetainBytes = 4 * 1024;
        });
        var leader = ElectedLeader(sim);
        var proposals = Enumerable.Range(0, 30).Select(i => sim.Propose(Sim.Cmd(i).Concat(new byte[1024]).ToArray(), leader.Id)).ToList();
        sim.Await(() => proposals.All(p => p.IsAcknowledged), 2_000, "30 proposals of 1 KiB acknowledged");
        AwaitConverged(sim);
        foreach (var node in sim.Nodes)
        {
            var snapshot = node.LatestSnapshot.ShouldNotBeNull();
            var retained = snapshot.Index - node.Storage.Snapshot.Index;
            retained.ShouldBeLessThanOrEqualTo(8UL, $"n{node.Id} keeps about 4 KiB of 1 KiB entries behind its snapshot at {snapshot.Index}, not 1,000 entries");
        }
    }

    [Fact]
    public void Snapshots_AreOffByDefault()
    {
        var sim = Cluster(3);
        var leader = ElectedLeader(sim);
        ProposeAndCommit(sim, leader, 20, 1);
        sim.Nodes.ShouldAllBe(n => n.LatestSnapshot == null && n.Storage.FirstIndex == 1);
    }
}

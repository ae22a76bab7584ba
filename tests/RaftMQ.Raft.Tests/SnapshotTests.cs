namespace RaftMQ.Raft.Tests;

/// <summary>Log compaction and InstallSnapshot: Raft paper §7, Figure 13.</summary>
public sealed class SnapshotTests
{
    private static readonly ulong[] Three = [1, 2, 3];

    // A leader whose log 1..10 (term 1) is compacted up to 5; elected in term 2 with its no-op at 11.
    private static TestNode CompactedLeader()
    {
        var storage = TestNode.StorageWith(term: 1, commit: 10, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1);
        storage.Compact(new SnapshotMetadata(5, 1));
        var leader = new TestNode(1, Three, storage, o => o.Applied = 10);
        leader.Elect();
        return leader;
    }

    // §7: "the leader must occasionally send snapshots to followers that lag behind" — when the entries a follower
    // needs are discarded, it sends InstallSnapshot and nothing else until the follower answers.
    [Fact]
    public void Leader_SendsTheSnapshot_WhenTheFollowerNeedsCompactedEntries()
    {
        var leader = CompactedLeader();
        // Follower 2 has only entries 1..2: it rejects the probe at 10 and hints 2.
        var sent = leader.Step(new AppendEntriesResponse(2, 1, 2, true, 10, 2, 1));
        var snap = sent.To<InstallSnapshot>(2).ShouldHaveSingleItem();
        snap.Snapshot.ShouldBe(new SnapshotMetadata(5, 1));
        leader.Node.DescribeProgress(2)!.ShouldStartWith("Snapshot");

        // While the snapshot is on its way, new entries do not go to that follower.
        leader.Propose();
        leader.Flush().To<AppendEntries>(2).ShouldBeEmpty();

        // The follower installed it: replication resumes right after the snapshot.
        var resumed = leader.Step(new AppendEntriesResponse(2, 1, 2, false, 5, 0, 0)).To<AppendEntries>(2).ShouldHaveSingleItem();
        resumed.PrevLogIndex.ShouldBe(5UL);
        resumed.Entries.Select(e => e.Index).ShouldBe([6UL, 7, 8, 9, 10, 11, 12]);
        leader.Node.DescribeProgress(2)!.ShouldStartWith("Replicate");
    }

    // A failed transfer is retried: the leader probes again after the follower's next heartbeat response.
    [Fact]
    public void Leader_RetriesTheSnapshot_AfterAFailedTransfer()
    {
        var leader = CompactedLeader();
        leader.Step(new AppendEntriesResponse(2, 1, 2, true, 10, 2, 1)).To<InstallSnapshot>(2).ShouldHaveSingleItem();
        leader.Node.ReportSnapshot(2, succeeded: false);
        leader.Flush();
        leader.Node.DescribeProgress(2)!.ShouldStartWith("Probe");
        var sent = leader.Step(new HeartbeatResponse(2, 1, 2, 0));
        sent.To<InstallSnapshot>(2).ShouldHaveSingleItem().Snapshot.Index.ShouldBe(5UL);
    }

    // A follower whose log lags behind the change that added this leader drops the leader's heartbeats, so a failed
    // transfer is never retried by its heartbeat response: after a silent election timeout the leader re-sends the
    // probe, which here (the log compacted past what the follower needs) is the snapshot. Found by the membership
    // fuzzer: such a follower stayed empty for good.
    [Fact]
    public void Leader_RetriesTheSnapshot_ToAFollowerThatDropsItsHeartbeats()
    {
        var leader = CompactedLeader();
        leader.Step(new AppendEntriesResponse(2, 1, 2, true, 10, 2, 1)).To<InstallSnapshot>(2).ShouldHaveSingleItem();
        leader.Node.ReportSnapshot(2, succeeded: false);
        leader.Flush();
        var retried = new List<InstallSnapshot>();
        for (var i = 0; i < 3 * TestNode.ElectionTicks && retried.Count == 0; i++)
        {
            foreach (var m in leader.Tick())
            {
                if (m is InstallSnapshot { To: 2 } snap) retried.Add(snap);
                // Follower 3 answers its heartbeats (so the leader keeps its quorum); follower 2 answers nothing.
                if (m is Heartbeat { To: 3 } hb) leader.Step(TestNode.AckOf(hb));
            }
        }
        retried.ShouldHaveSingleItem().Snapshot.Index.ShouldBe(5UL);
        leader.Node.Role.ShouldBe(Role.Leader);
    }

    // Figure 13, receiver rule 6-8: a snapshot past the follower's log replaces the whole log; the state machine is
    // reset from it and the commit index moves to its last included index.
    [Fact]
    public void Follower_ReplacesItsLog_WithASnapshotPastIt()
    {
        var follower = new TestNode(2, Three, TestNode.StorageWith(term: 1, commit: 1, 1, 1, 1));
        var sent = follower.Step(new InstallSnapshot(1, 2, 2, new SnapshotMetadata(8, 2)));

        var ready = follower.Readies.ShouldHaveSingleItem();
        ready.Snapshot.ShouldBe(new SnapshotMetadata(8, 2));
        ready.MustSync.ShouldBeTrue();
        ready.CommittedEntries.ShouldBeEmpty();
        var answer = sent.ShouldHaveSingleItem().ShouldBeOfType<AppendEntriesResponse>();
        (answer.Reject, answer.Index).ShouldBe((false, 8UL));
        follower.Node.CommitIndex.ShouldBe(8UL);
        follower.Node.AppliedIndex.ShouldBe(8UL);
        (follower.Node.FirstIndex, follower.Node.LastIndex, follower.Node.LastTerm).ShouldBe((9UL, 8UL, 2UL));
        (follower.Storage.Snapshot, follower.Storage.LastIndex).ShouldBe((new SnapshotMetadata(8, 2), 8UL));

        // Entries after the snapshot are appended and applied from index 9.
        follower.Step(new AppendEntries(1, 2, 2, 8, 2, TestNode.Entries(9, 2, 2), 10));
        follower.Applied.Select(e => e.Index).ShouldBe([9UL, 10]);
    }

    // Figure 13, receiver rule 6: "If existing log entry has same index and term as snapshot's last included entry,
    // retain log entries following it."
    [Fact]
    public void Follower_KeepsItsLog_WhenItAlreadyHoldsTheSnapshotsLastEntry()
    {
        var follower = new TestNode(2, Three, TestNode.StorageWith(term: 1, commit: 1, 1, 1, 1, 1));
        var sent = follower.Step(new InstallSnapshot(1, 2, 1, new SnapshotMetadata(3, 1)));
        follower.Readies.ShouldAllBe(r => r.Snapshot == null);
        follower.Node.LastIndex.ShouldBe(4UL);
        follower.Node.CommitIndex.ShouldBe(3UL);
        follower.Applied.Select(e => e.Index).ShouldBe([1UL, 2, 3]);
        sent.ShouldHaveSingleItem().ShouldBeOfType<AppendEntriesResponse>().Index.ShouldBe(3UL);
    }

    // A stale snapshot (covering only what is already committed) changes nothing.
    [Fact]
    public void Follower_IgnoresASnapshotAtOrBelowItsCommitIndex()
    {
        var follower = new TestNode(2, Three, TestNode.StorageWith(term: 2, commit: 3, 1, 1, 2));
        var sent = follower.Step(new InstallSnapshot(1, 2, 2, new SnapshotMetadata(2, 1)));
        follower.Readies.ShouldAllBe(r => r.Snapshot == null);
        follower.Node.LastIndex.ShouldBe(3UL);
        sent.ShouldHaveSingleItem().ShouldBeOfType<AppendEntriesResponse>().Index.ShouldBe(3UL);
    }

    // A snapshot from a stale leader is rejected by the term rule (§5.1).
    [Fact]
    public void Follower_IgnoresASnapshotFromAnOlderTerm()
    {
        var follower = new TestNode(2, Three, TestNode.StorageWith(term: 3, commit: 0, 1));
        follower.Step(new InstallSnapshot(1, 2, 2, new SnapshotMetadata(9, 2)));
        follower.Readies.ShouldAllBe(r => r.Snapshot == null);
        follower.Node.LastIndex.ShouldBe(1UL);
    }

    // A node restarts from snapshot + remaining log: it applies only the entries after the snapshot.
    [Fact]
    public void Restart_FromACompactedLog_AppliesOnlyTheEntriesAfterTheSnapshot()
    {
        var storage = TestNode.StorageWith(term: 1, commit: 6, 1, 1, 1, 1, 1, 1);
        storage.Compact(new SnapshotMetadata(4, 1));
        var node = new TestNode(1, [1], storage, o => o.Applied = 4);
        node.Flush();
        node.Node.FirstIndex.ShouldBe(5UL);
        node.Applied.Where(e => e.Type == EntryType.Command).Select(e => e.Index).ShouldBe([5UL, 6]);
    }

    // A commit index moved by a Ready without MustSync is written but not synced, so a crash can lose it while the
    // (synced) snapshot taken after applying those entries survives: the restart must not fail, and the entries the
    // snapshot holds are committed.
    [Fact]
    public void Restart_FromASnapshotPastThePersistedCommitIndex_CommitsUpToTheSnapshot()
    {
        var storage = TestNode.StorageWith(term: 1, commit: 2, 1, 1, 1, 1, 1, 1);
        var node = new TestNode(2, Three, storage, o => o.Applied = 5);
        node.Node.CommitIndex.ShouldBe(5UL);
        node.Node.AppliedIndex.ShouldBe(5UL);
        node.Flush();
        node.Applied.ShouldBeEmpty();
        node.Storage.HardState.Commit.ShouldBe(5UL);

        // It goes on from there: the leader's commit of 6 is applied, nothing before it again.
        node.Step(new Heartbeat(1, 2, 1, 6, 0));
        node.Applied.Select(e => e.Index).ShouldBe([6UL]);
    }

    // A state machine ahead of the whole log cannot be reconciled by the core: the runtime must install its snapshot
    // in the log first.
    [Fact]
    public void Restart_WithAppliedPastTheLog_Throws()
    {
        var storage = TestNode.StorageWith(term: 1, commit: 2, 1, 1, 1);
        Should.Throw<InvalidOperationException>(() => new TestNode(2, Three, storage, o => o.Applied = 5))
            .Message.ShouldContain("past the last stored index 3");
    }
}

namespace RaftMQ.Raft.Tests;

/// <summary>
/// The leader's side of replication and its bounds: quorum sizes (§5.2, §5.3), heartbeats (§5.2), probing and the
/// in-flight window, snapshot hand-off (§7) and the limits on proposals and reads.
/// </summary>
public sealed class LeaderRulesTests
{
    private static readonly ulong[] Three = [1, 2, 3];
    private static readonly ulong[] Four = [1, 2, 3, 4];
    private static readonly ulong[] Five = [1, 2, 3, 4, 5];

    private static AppendEntriesResponse Ack(ulong from, ulong term, ulong index) => new(from, 1, term, false, index, 0, 0);

    // §5.3: an entry is committed once "replicated it on a majority of the servers" — in a cluster of four that is
    // three, the leader included; two is only half.
    [Fact]
    public void Commit_InAnEvenCluster_NeedsMoreThanHalf()
    {
        var leader = new TestNode(1, Four);
        leader.Elect();
        var term = leader.Node.Term;

        leader.Step(Ack(2, term, 1));
        leader.Node.CommitIndex.ShouldBe(0UL);
        leader.Step(Ack(3, term, 1));
        leader.Node.CommitIndex.ShouldBe(1UL);
    }

    // §5.3 in a cluster of five: the highest index held by three servers commits, not the highest held by two.
    [Fact]
    public void Commit_IsTheHighestIndexAMajorityHolds()
    {
        var leader = new TestNode(1, Five);
        leader.Elect();
        var term = leader.Node.Term;
        foreach (var peer in new ulong[] { 2, 3, 4, 5 }) leader.Step(Ack(peer, term, 1));
        for (int i = 0; i < 3; i++) leader.Propose();
        leader.Flush();
        leader.Node.LastIndex.ShouldBe(4UL);

        leader.Step(Ack(2, term, 4));
        leader.Node.CommitIndex.ShouldBe(1UL);
        leader.Step(Ack(3, term, 2));
        leader.Node.CommitIndex.ShouldBe(2UL); // 1 and 2 hold 4, 3 holds 2: three servers hold 2
        leader.Step(Ack(4, term, 3));
        leader.Node.CommitIndex.ShouldBe(3UL);
    }

    // §5.3: the quorum is counted by value, not by position: acknowledgements from the highest ids count like any.
    [Fact]
    public void Commit_CountsAnyMajority_WhicheverFollowersAnswer()
    {
        var leader = new TestNode(1, Five);
        leader.Elect();
        var term = leader.Node.Term;

        leader.Step(Ack(5, term, 1));
        leader.Node.CommitIndex.ShouldBe(0UL);
        leader.Step(Ack(4, term, 1));
        leader.Node.CommitIndex.ShouldBe(1UL);
    }

    [Fact]
    public void Read_IsConfirmedByAnyMajority_WhicheverFollowersAnswer()
    {
        var leader = new TestNode(1, Five);
        leader.ElectAndCommitNoOp();
        leader.Node.ReadIndex(8).IsAccepted.ShouldBeTrue();
        var heartbeats = leader.Flush().OfType<Heartbeat>().Where(h => h.ReadRound > 0).ToList();

        leader.Step(TestNode.AckOf(heartbeats.Single(h => h.To == 5)));
        leader.ReadStates.ShouldBeEmpty();
        leader.Step(TestNode.AckOf(heartbeats.Single(h => h.To == 4)));
        leader.ReadStates.ShouldBe([new ReadState(8, 1)]);
    }

    // §5.3: "the leader ... includes [the highest committed index] in future AppendEntries RPCs ... so that the other
    // servers eventually find out": with the next append, or at the latest with the next heartbeat; no message goes
    // for the commit alone to a follower that did not ask for it.
    [Fact]
    public void NewCommitIndex_GoesOutWithTheNextAppend_OrTheNextHeartbeat()
    {
        var leader = new TestNode(1, Three);
        leader.ElectAndCommitNoOp();
        leader.Propose();
        var appends = leader.Flush().OfType<AppendEntries>().ToList();

        var sent = leader.Step(TestNode.AckOf(appends.Single(a => a.To == 2)));
        leader.Node.CommitIndex.ShouldBe(2UL);
        sent.ShouldBeEmpty(); // nothing new to replicate: no append for the commit alone

        leader.Propose(); // entry 3 carries commit 2 to both
        leader.Flush().OfType<AppendEntries>().ShouldAllBe(a => a.LeaderCommit == 2UL && a.Entries.Count == 1);

        var quiet = new TestNode(1, Three);
        quiet.ElectAndCommitNoOp();
        quiet.Propose();
        var first = quiet.Flush().OfType<AppendEntries>().ToList();
        quiet.Step(TestNode.AckOf(first.Single(a => a.To == 2)));
        quiet.Step(TestNode.AckOf(first.Single(a => a.To == 3)));
        quiet.Node.CommitIndex.ShouldBe(2UL);
        var heartbeats = quiet.Tick(quiet.Options.HeartbeatTicks).OfType<Heartbeat>().ToList();
        heartbeats.Select(h => h.To).Order().ShouldBe([2UL, 3UL]);
        heartbeats.ShouldAllBe(h => h.Commit == 2UL); // both hold entry 2: they learn it is committed
    }

    // A follower holding requests that wait for it to apply (long polls) says so in its append answers, and gets each
    // new commit index at once — whether its answer came before the commit or after it — while the others do not;
    // once its answers stop asking, it learns commits like the others.
    [Fact]
    public void NewCommitIndex_GoesOutAtOnce_ToAFollowerThatAsksForIt()
    {
        var leader = new TestNode(1, Three);
        leader.ElectAndCommitNoOp();
        leader.Propose();
        var appends = leader.Flush().OfType<AppendEntries>().ToList();

        // 3 asks, and its answer commits entry 2: 3 gets the commit alone at once, 2 does not.
        var sent = leader.Step(TestNode.AckOf(appends.Single(a => a.To == 3)) with { WantsCommit = true });
        leader.Node.CommitIndex.ShouldBe(2UL);
        var commit = sent.ShouldHaveSingleItem().ShouldBeOfType<AppendEntries>();
        commit.To.ShouldBe(3UL);
        commit.LeaderCommit.ShouldBe(2UL);
        commit.Entries.ShouldBeEmpty();
        leader.Step(TestNode.AckOf(commit) with { WantsCommit = true }).ShouldBeEmpty(); // it already has commit 2
        leader.Step(TestNode.AckOf(appends.Single(a => a.To == 2))).ShouldBeEmpty();

        // 3's answer comes after the commit it did not take part in: it gets the commit then.
        leader.Propose();
        appends = leader.Flush().OfType<AppendEntries>().ToList();
        leader.Step(TestNode.AckOf(appends.Single(a => a.To == 2))).ShouldBeEmpty();
        leader.Node.CommitIndex.ShouldBe(3UL);
        sent = leader.Step(TestNode.AckOf(appends.Single(a => a.To == 3)) with { WantsCommit = true });
        sent.ShouldHaveSingleItem().ShouldBeOfType<AppendEntries>().LeaderCommit.ShouldBe(3UL);

        // 3 no longer asks: its next commit waits for an append or a heartbeat like 2's.
        leader.Propose();
        appends = leader.Flush().OfType<AppendEntries>().ToList();
        leader.Step(TestNode.AckOf(appends.Single(a => a.To == 3))).ShouldBeEmpty();
        leader.Step(TestNode.AckOf(appends.Single(a => a.To == 2))).ShouldBeEmpty();
        leader.Node.CommitIndex.ShouldBe(4UL);
    }

    // The follower's side: its append answers carry what its host set.
    [Fact]
    public void A_follower_asks_for_commits_at_once_only_while_its_host_waits_to_apply()
    {
        var follower = new TestNode(2, Three);
        var append = new AppendEntries(1, 2, 1, 0, 0, [new Entry(1, 1, EntryType.NoOp, ReadOnlyMemory<byte>.Empty)], 0);
        follower.Step(append).To<AppendEntriesResponse>(1).ShouldHaveSingleItem().WantsCommit.ShouldBeFalse();

        follower.Node.WaitingToApply = true;
        var answer = follower.Step(append with { PrevLogIndex = 1, PrevLogTerm = 1, Entries = [], LeaderCommit = 1 })
            .To<AppendEntriesResponse>(1).ShouldHaveSingleItem();
        answer.WantsCommit.ShouldBeTrue();
        answer.Reject.ShouldBeFalse();
        follower.Node.CommitIndex.ShouldBe(1UL);
    }

    // Thesis §6.4: leadership for a read is confirmed by a majority, the leader included: in five, two followers.
    [Fact]
    public void Read_InACusterOfFive_NeedsTwoFollowerAcknowledgements()
    {
        var leader = new TestNode(1, Five);
        leader.ElectAndCommitNoOp();
        leader.Node.ReadIndex(4).IsAccepted.ShouldBeTrue();
        var heartbeats = leader.Flush().OfType<Heartbeat>().Where(h => h.ReadRound > 0).ToList();
        heartbeats.Count.ShouldBe(4);

        leader.Step(TestNode.AckOf(heartbeats.Single(h => h.To == 2)));
        leader.ReadStates.ShouldBeEmpty();
        leader.Step(TestNode.AckOf(heartbeats.Single(h => h.To == 3)));
        leader.ReadStates.ShouldBe([new ReadState(4, 1)]);
    }

    // §5.2: "leaders send periodic heartbeats" — every HeartbeatTicks, to every follower.
    [Fact]
    public void Heartbeats_GoOutEveryHeartbeatTicks()
    {
        var leader = new TestNode(1, Three, configure: o => o.HeartbeatTicks = 3);
        leader.ElectAndCommitNoOp();

        var perTick = Enumerable.Range(0, 6).Select(_ => leader.Tick().OfType<Heartbeat>().Count()).ToList();

        perTick.ShouldBe([0, 0, 2, 0, 0, 2]);
    }

    // A heartbeat carries min(matchIndex, commitIndex): the follower may commit only what it is known to hold.
    [Fact]
    public void Heartbeat_CarriesACommitIndexTheFollowerHolds()
    {
        var leader = new TestNode(1, Three);
        var noOp = leader.Elect().To<AppendEntries>(2).Single();
        leader.Step(TestNode.AckOf(noOp));                       // 2 holds 1, which commits
        leader.Node.CommitIndex.ShouldBe(1UL);

        var heartbeats = leader.Tick().OfType<Heartbeat>().ToList();
        heartbeats.Single(h => h.To == 2).Commit.ShouldBe(1UL);
        heartbeats.Single(h => h.To == 3).Commit.ShouldBe(0UL); // 3 has acknowledged nothing
    }

    // The follower side of the same rule: commit only up to the last entry it holds.
    [Fact]
    public void Follower_CommitsFromAHeartbeat_OnlyUpToItsLastEntry()
    {
        var follower = new TestNode(2, Three, TestNode.StorageWith(term: 1, commit: 0, 1, 1));
        var answer = follower.Step(new Heartbeat(1, 2, 1, 5, 7)).ShouldHaveSingleItem().ShouldBeOfType<HeartbeatResponse>();
        follower.Node.CommitIndex.ShouldBe(2UL);
        (answer.To, answer.Term, answer.ReadRound).ShouldBe((1UL, 1UL, 7UL));
    }

    // A heartbeat answer from a follower that holds everything asks for nothing; from one that is behind, it restarts
    // the probe that may have been lost.
    [Fact]
    public void HeartbeatResponse_SendsAnAppendOnlyToAFollowerThatIsBehind()
    {
        var leader = new TestNode(1, Three);
        var noOps = leader.Elect().OfType<AppendEntries>().ToList();
        leader.Step(TestNode.AckOf(noOps.Single(a => a.To == 2)));

        leader.Step(new HeartbeatResponse(2, 1, 1, 0)).To<AppendEntries>(2).ShouldBeEmpty();

        // 3's probe was lost: its heartbeat answer sends the probe again.
        var retry = leader.Step(new HeartbeatResponse(3, 1, 1, 0)).To<AppendEntries>(3).ShouldHaveSingleItem();
        (retry.PrevLogIndex, retry.Entries.Count).ShouldBe((0UL, 1));
    }

    // With a full window the leader sends nothing more; a heartbeat answer proves the follower alive, so one slot is
    // freed in case the window holds only appends that were lost.
    [Fact]
    public void HeartbeatResponse_WithAFullWindow_FreesOneSlot()
    {
        var leader = new TestNode(1, Three, configure: o => o.MaxInflightAppends = 2);
        leader.ElectAndCommitNoOp();
        for (int i = 0; i < 3; i++)
        {
            leader.Propose();
            leader.Flush();
        }
        leader.Node.DescribeProgress(2).ShouldBe("Replicate match=1 next=4 inflight=2");

        var resent = leader.Step(new HeartbeatResponse(2, 1, 1, 0)).To<AppendEntries>(2).ShouldHaveSingleItem();
        resent.Entries.Select(e => e.Index).ShouldBe([4UL]);
        leader.Node.DescribeProgress(2).ShouldBe("Replicate match=1 next=5 inflight=2");

        // The window stays consistent after the freed slot: acknowledging everything empties it.
        leader.Step(TestNode.AckOf(resent));
        leader.Node.DescribeProgress(2).ShouldBe("Replicate match=4 next=5 inflight=0");

        // With room in the window a heartbeat answer frees nothing (the empty append it causes takes no slot).
        var other = new TestNode(1, Three, configure: o => o.MaxInflightAppends = 3);
        other.ElectAndCommitNoOp();
        other.Propose();
        other.Flush();
        other.Step(new HeartbeatResponse(2, 1, 1, 0)).To<AppendEntries>(2).ShouldHaveSingleItem().Entries.ShouldBeEmpty();
        other.Node.DescribeProgress(2).ShouldBe("Replicate match=1 next=3 inflight=1");
    }

    // Pipelined appends can be lost: a follower in replicate mode that rejects a later one (it never got the earlier)
    // is probed again right after its match, with everything from there.
    [Fact]
    public void Rejection_InReplicateMode_ReturnsToProbingAfterTheMatch()
    {
        var leader = new TestNode(1, Three);
        leader.ElectAndCommitNoOp();
        leader.Propose();
        leader.Propose();
        leader.Flush().To<AppendEntries>(2).ShouldHaveSingleItem().PrevLogIndex.ShouldBe(1UL); // lost on the way
        leader.Propose();
        leader.Flush().To<AppendEntries>(2).ShouldHaveSingleItem().PrevLogIndex.ShouldBe(3UL);

        var probe = leader.Step(new AppendEntriesResponse(2, 1, 1, true, 3, 1, 1)).To<AppendEntries>(2).ShouldHaveSingleItem();

        (probe.PrevLogIndex, probe.Entries.Count).ShouldBe((1UL, 3));
        leader.Node.DescribeProgress(2).ShouldBe("Probe match=1 next=2 inflight=0");
    }

    // §5.3: without a term in the hint (an empty or shorter follower log) the leader goes straight to the index hinted.
    [Fact]
    public void Rejection_WithoutAHintTerm_ProbesRightAfterTheHintIndex()
    {
        var leader = new TestNode(1, Three, TestNode.StorageWith(term: 1, commit: 0, 1, 1, 1, 1));
        var probe = leader.Elect().To<AppendEntries>(2).Single();
        probe.PrevLogIndex.ShouldBe(4UL);

        var retry = leader.Step(new AppendEntriesResponse(2, 1, 2, true, 4, 2, 0)).To<AppendEntries>(2).ShouldHaveSingleItem();
        (retry.PrevLogIndex, retry.PrevLogTerm).ShouldBe((2UL, 1UL));

        // A rejection of an append that is no longer the outstanding probe is stale and ignored.
        leader.Step(new AppendEntriesResponse(2, 1, 2, true, 4, 0, 0)).To<AppendEntries>(2).ShouldBeEmpty();
        leader.Node.DescribeProgress(2).ShouldBe("Probe match=0 next=3 inflight=0");
    }

    // §7: while a snapshot is on its way, an acknowledgement below the snapshot's index (an old append's answer) does
    // not resume replication: the follower cannot use entries after the snapshot before installing it.
    [Fact]
    public void SnapshotState_IsKept_UntilTheFollowerReachesTheSnapshot()
    {
        var leader = CompactedLeader();
        leader.Step(new AppendEntriesResponse(2, 1, 2, true, 10, 2, 1)).To<InstallSnapshot>(2).ShouldHaveSingleItem();

        leader.Step(new AppendEntriesResponse(2, 1, 2, false, 3, 0, 0)).Where(m => m.To == 2).ShouldBeEmpty();
        leader.Node.DescribeProgress(2)!.ShouldStartWith("Snapshot match=3");

        // Nor do new proposals send anything to it, not even the snapshot again: one transfer at a time.
        leader.Propose();
        leader.Flush().Where(m => m.To == 2).ShouldBeEmpty();
    }

    // §7: a follower streaming in replicate mode that falls behind the leader's compaction (its next entries are gone)
    // is switched to the snapshot, with nothing left counted in flight.
    [Fact]
    public void FollowerBehindTheLeadersCompaction_GetsTheSnapshot()
    {
        var leader = new TestNode(1, Three, configure: o => o.MaxInflightAppends = 2);
        leader.ElectAndCommitNoOp();
        for (int i = 0; i < 3; i++)
        {
            leader.Propose();
            foreach (var ae in leader.Flush().To<AppendEntries>(2)) leader.Step(TestNode.AckOf(ae)); // 3 never answers
        }
        leader.Node.CommitIndex.ShouldBe(4UL);
        leader.Node.DescribeProgress(3).ShouldBe("Replicate match=1 next=4 inflight=2"); // entry 4 was never sent to 3
        leader.Storage.Compact(new SnapshotMetadata(4, 1));

        var sent = leader.Step(new HeartbeatResponse(3, 1, 1, 0)); // frees a slot: the next send needs entry 3, compacted
        sent.To<InstallSnapshot>(3).ShouldHaveSingleItem().Snapshot.ShouldBe(new SnapshotMetadata(4, 1));
        leader.Node.DescribeProgress(3).ShouldBe("Snapshot match=1 next=4 inflight=0");
    }

    // §7 with the runtime reporting the transfer: on success the leader probes right after the snapshot, but only
    // once the follower has answered (its answer or a heartbeat response), so nothing races the installation.
    [Fact]
    public void ReportSnapshot_Succeeded_ProbesAfterTheSnapshot_OnceTheFollowerAnswers()
    {
        var leader = CompactedLeader();
        leader.Step(new AppendEntriesResponse(2, 1, 2, true, 10, 2, 1));

        leader.Node.ReportSnapshot(2, succeeded: true);
        leader.Flush().To<AppendEntries>(2).ShouldBeEmpty();
        leader.Node.DescribeProgress(2).ShouldBe("Probe match=0 next=6 inflight=0");
        leader.Propose();
        leader.Flush().To<AppendEntries>(2).ShouldBeEmpty(); // still waiting for the follower

        var probe = leader.Step(new HeartbeatResponse(2, 1, 2, 0)).To<AppendEntries>(2).ShouldHaveSingleItem();
        (probe.PrevLogIndex, probe.PrevLogTerm).ShouldBe((5UL, 1UL));
    }

    [Fact]
    public void ReportSnapshot_IsIgnored_ForAFollowerNotReceivingOne_OrOnANonLeader()
    {
        var leader = CompactedLeader();
        leader.Node.ReportSnapshot(2, succeeded: false);
        leader.Node.ReportSnapshot(9, succeeded: false);
        leader.Node.DescribeProgress(2).ShouldBe("Probe match=0 next=11 inflight=0");
        leader.Flush().ShouldBeEmpty();

        var follower = new TestNode(2, Three);
        follower.Node.ReportSnapshot(1, succeeded: true);
        follower.Flush().ShouldBeEmpty();
    }

    // MaxBytesPerAppend bounds one AppendEntries; the rest follows as the window allows.
    [Fact]
    public void Appends_AreBoundedByMaxBytesPerAppend()
    {
        var leader = new TestNode(1, Three, configure: o => o.MaxBytesPerAppend = 250);
        leader.ElectAndCommitNoOp();
        for (int i = 0; i < 5; i++) leader.Propose(100); // 124 bytes each with overhead

        var first = leader.Flush().To<AppendEntries>(2).ShouldHaveSingleItem();
        (first.PrevLogIndex, first.Entries.Count).ShouldBe((1UL, 2)); // 248 bytes; a third would pass 250

        // (The ack also commits 3, which goes out in an empty append: only the ones carrying entries are counted.)
        var rest = leader.Step(TestNode.AckOf(first)).To<AppendEntries>(2).Where(a => a.Entries.Count > 0);
        rest.Select(a => (a.PrevLogIndex, a.Entries.Count)).ShouldBe([(3UL, 2), (5UL, 1)]);
    }

    // Pipelining: an acknowledgement that commits nothing still refills the follower's window with what is left.
    [Fact]
    public void Acknowledgement_RefillsTheWindow_WithoutACommit()
    {
        var leader = new TestNode(1, Five, configure: o => o.MaxBytesPerAppend = 250);
        leader.ElectAndCommitNoOp();
        for (int i = 0; i < 5; i++) leader.Propose(100);
        var first = leader.Flush().To<AppendEntries>(2).ShouldHaveSingleItem();

        var rest = leader.Step(TestNode.AckOf(first)).To<AppendEntries>(2); // 1 and 2 of 5 hold entry 3: no commit

        leader.Node.CommitIndex.ShouldBe(1UL);
        rest.Select(a => (a.PrevLogIndex, a.Entries.Count)).ShouldBe([(3UL, 2), (5UL, 1)]);
    }

    // MaxEntryBytes: the largest command accepted, exactly.
    [Fact]
    public void Propose_LargerThanMaxEntryBytes_IsTooLarge()
    {
        var leader = new TestNode(1, Three, configure: o => o.MaxEntryBytes = 100);
        leader.ElectAndCommitNoOp();

        leader.Propose(101).ShouldBe(new ProposeResult(ProposeStatus.TooLarge, 0, 0, 1));
        var accepted = leader.Propose(100);
        accepted.ShouldBe(new ProposeResult(ProposeStatus.Accepted, 2, 1, 1));
        accepted.IsAccepted.ShouldBeTrue();
        leader.Node.LastIndex.ShouldBe(2UL);
    }

    // MaxUncommittedBytes counts the leader's own uncommitted entries; committing and applying them frees the budget
    // exactly, so a leader that keeps committing never reports Overloaded.
    [Fact]
    public void UncommittedBudget_IsFreedByApplyingTheLeadersEntries()
    {
        var leader = new TestNode(1, Three, configure: o => o.MaxUncommittedBytes = 300);
        leader.ElectAndCommitNoOp(); // the no-op (24 bytes) is committed and applied: the budget is whole again

        for (int round = 0; round < 5; round++)
        {
            leader.Propose(100).IsAccepted.ShouldBeTrue();
            leader.Propose(100).IsAccepted.ShouldBeTrue(); // 248 of 300
            leader.Propose(100).Status.ShouldBe(ProposeStatus.Overloaded);
            var append = leader.Flush().To<AppendEntries>(2).ShouldHaveSingleItem();
            leader.Step(TestNode.AckOf(append));
        }
    }

    // Thesis §6.4: reads waiting for the new leader's no-op count against MaxPendingReads like confirmed-pending ones.
    [Fact]
    public void ReadsWaitingForTheNoOp_CountAgainstMaxPendingReads()
    {
        var leader = new TestNode(1, Three, configure: o => o.MaxPendingReads = 1);
        leader.Elect();
        leader.Node.ReadIndex(1).IsAccepted.ShouldBeTrue();
        leader.Node.ReadIndex(2).ShouldBe(new ProposeResult(ProposeStatus.Overloaded, 0, 0, 1));
    }

    // A follower forwards reads to the leader, at most MaxPendingReads at a time, and names the leader when it refuses.
    [Fact]
    public void Follower_ForwardsAtMostMaxPendingReads()
    {
        var follower = new TestNode(2, Three, configure: o => o.MaxPendingReads = 2);
        follower.Step(new Heartbeat(1, 2, 3, 0, 0));

        follower.Node.ReadIndex(10).ShouldBe(new ProposeResult(ProposeStatus.Accepted, 0, 3, 1));
        follower.Node.ReadIndex(11).IsAccepted.ShouldBeTrue();
        follower.Node.ReadIndex(12).ShouldBe(new ProposeResult(ProposeStatus.Overloaded, 0, 0, 1));
        var requests = follower.Flush().OfType<ReadIndexRequest>().ToList();
        requests.Select(r => (r.To, r.Term, r.Context)).ShouldBe([(1UL, 3UL, 10UL), (1UL, 3UL, 11UL)]);
    }

    // A leader that is asked by a follower answers with the read index, once leadership is confirmed.
    [Fact]
    public void Leader_AnswersAForwardedRead_AfterConfirmation()
    {
        var leader = new TestNode(1, Three);
        leader.ElectAndCommitNoOp();
        var heartbeat = leader.Step(new ReadIndexRequest(2, 1, 1, 77)).To<Heartbeat>(3).Single(h => h.ReadRound > 0);
        var answer = leader.Step(TestNode.AckOf(heartbeat)).OfType<ReadIndexResponse>().ShouldHaveSingleItem();
        (answer.To, answer.Term, answer.Context, answer.Index).ShouldBe((2UL, 1UL, 77UL, 1UL));
        leader.ReadStates.ShouldBeEmpty();
    }

    // A leader whose log 1..10 (term 1) is compacted up to 5; elected in term 2 with its no-op at 11.
    private static TestNode CompactedLeader()
    {
        var storage = TestNode.StorageWith(term: 1, commit: 10, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1);
        storage.Compact(new SnapshotMetadata(5, 1));
        var leader = new TestNode(1, Three, storage, o => o.Applied = 10);
        leader.Elect();
        return leader;
    }
}

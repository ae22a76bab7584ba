namespace RaftMQ.Raft.Tests;

/// <summary>Log replication and commitment: Raft paper §5.3, §5.4.2, §8; leader flow control and batching.</summary>
public sealed class ReplicationTests
{
    private static readonly ulong[] Three = [1, 2, 3];

    private static ulong[] Terms(TestNode node) =>
        [.. Enumerable.Range(1, (int)node.Storage.LastIndex).Select(i => node.Storage.Term((ulong)i))];

    // §5.3: "If a follower does not find an entry in its log with the same index and term [as prevLogIndex,
    // prevLogTerm], then it refuses the new entries."
    [Fact]
    public void AppendEntries_ConsistencyCheck_RefusesWithoutAMatchingPreviousEntry()
    {
        var node = new TestNode(1, Three, TestNode.StorageWith(term: 1, commit: 0, 1, 1));

        var missing = node.Step(new AppendEntries(2, 1, 2, 3, 1, TestNode.Entries(4, 2), 0))
            .ShouldHaveSingleItem().ShouldBeOfType<AppendEntriesResponse>();
        missing.Reject.ShouldBeTrue();
        missing.Index.ShouldBe(3UL);
        (missing.HintIndex, missing.HintTerm).ShouldBe((2UL, 1UL));

        var wrongTerm = node.Step(new AppendEntries(2, 1, 2, 2, 2, TestNode.Entries(3, 2), 0))
            .ShouldHaveSingleItem().ShouldBeOfType<AppendEntriesResponse>();
        wrongTerm.Reject.ShouldBeTrue();
        wrongTerm.Index.ShouldBe(2UL);
        node.Node.LastIndex.ShouldBe(2UL);

        var ok = node.Step(new AppendEntries(2, 1, 2, 2, 1, TestNode.Entries(3, 2), 0))
            .ShouldHaveSingleItem().ShouldBeOfType<AppendEntriesResponse>();
        ok.Reject.ShouldBeFalse();
        ok.Index.ShouldBe(3UL);
        Terms(node).ShouldBe([1UL, 1UL, 2UL]);
    }

    // Figure 2, AppendEntries rule 3: "If an existing entry conflicts with a new one (same index but different
    // terms), delete the existing entry and all that follow it" — and nothing before it.
    [Fact]
    public void AppendEntries_TruncatesOnlyFromTheFirstConflict()
    {
        var node = new TestNode(1, Three, TestNode.StorageWith(term: 1, commit: 1, 1, 1, 1, 1));

        var ack = node.Step(new AppendEntries(2, 1, 2, 1, 1, [.. TestNode.Entries(2, 1), .. TestNode.Entries(3, 2)], 1))
            .ShouldHaveSingleItem().ShouldBeOfType<AppendEntriesResponse>();

        ack.Reject.ShouldBeFalse();
        ack.Index.ShouldBe(3UL);
        Terms(node).ShouldBe([1UL, 1UL, 2UL]);
        // Entry 2 already matched: only the conflicting suffix was rewritten.
        node.Readies.SelectMany(r => r.Entries).Select(e => e.Index).ShouldBe([3UL]);
    }

    // §5.3 / Figure 2 rule 3 applies only to conflicts: a delayed AppendEntries holding a prefix of what the
    // follower already has must not truncate the entries after it.
    [Fact]
    public void AppendEntries_StaleOrReordered_DoesNotTruncate()
    {
        var node = new TestNode(1, Three);
        node.Step(new AppendEntries(2, 1, 2, 0, 0, TestNode.Entries(1, 2, 2, 2), 0));
        node.Node.LastIndex.ShouldBe(3UL);
        var readies = node.Readies.Count;

        var ack = node.Step(new AppendEntries(2, 1, 2, 0, 0, TestNode.Entries(1, 2), 0))
            .ShouldHaveSingleItem().ShouldBeOfType<AppendEntriesResponse>();

        ack.Reject.ShouldBeFalse();
        ack.Index.ShouldBe(1UL);
        node.Node.LastIndex.ShouldBe(3UL);
        Terms(node).ShouldBe([2UL, 2UL, 2UL]);
        node.Readies.Skip(readies).ShouldAllBe(r => r.Entries.Count == 0);
    }

    // Figure 2, AppendEntries rule 5: "If leaderCommit > commitIndex, set commitIndex = min(leaderCommit, index
    // of last new entry)" — the follower's entries after it are not yet known to match the leader.
    [Fact]
    public void FollowerCommit_IsMinOfLeaderCommitAndLastNewEntry()
    {
        var node = new TestNode(1, Three, TestNode.StorageWith(term: 1, commit: 0, 1, 1, 1, 1));

        node.Step(new AppendEntries(2, 1, 1, 1, 1, TestNode.Entries(2, 1), 4));
        node.Node.CommitIndex.ShouldBe(2UL);
        node.Applied.Select(e => e.Index).ShouldBe([1UL, 2UL]);

        node.Step(new AppendEntries(2, 1, 1, 4, 1, [], 3));
        node.Node.CommitIndex.ShouldBe(3UL);
        node.Applied.Select(e => e.Index).ShouldBe([1UL, 2UL, 3UL]);
        node.Storage.HardState.Commit.ShouldBe(3UL);
    }

    // §5.3 (end): "the follower can include the term of the conflicting entry and the first index it stores for
    // that term. With this information, the leader can decrement nextIndex to bypass all of the conflicting
    // entries in that term". Here a follower holds a long suffix of an old term: one round trip skips it all.
    [Fact]
    public void RejectionHint_LetsTheLeaderSkipAWholeDivergentTerm()
    {
        var leader = new TestNode(1, Three, TestNode.StorageWith(term: 3, commit: 1, [1, .. Enumerable.Repeat(3UL, 9)]));
        var follower = new TestNode(2, Three, TestNode.StorageWith(term: 2, commit: 1, [1, .. Enumerable.Repeat(2UL, 19)]));
        var probe = leader.Elect().To<AppendEntries>(2).ShouldHaveSingleItem();
        leader.Node.Term.ShouldBe(4UL);
        (probe.PrevLogIndex, probe.PrevLogTerm).ShouldBe((10UL, 3UL));

        var reject = follower.Step(probe).ShouldHaveSingleItem().ShouldBeOfType<AppendEntriesResponse>();
        reject.Reject.ShouldBeTrue();
        (reject.HintIndex, reject.HintTerm).ShouldBe((10UL, 2UL));

        var retry = leader.Step(reject).To<AppendEntries>(2).ShouldHaveSingleItem();
        (retry.PrevLogIndex, retry.PrevLogTerm).ShouldBe((1UL, 1UL));
        retry.Entries.Count.ShouldBe(10);

        var ack = follower.Step(retry).ShouldHaveSingleItem().ShouldBeOfType<AppendEntriesResponse>();
        ack.Reject.ShouldBeFalse();
        ack.Index.ShouldBe(11UL);
        Terms(follower).ShouldBe(Terms(leader));
    }

    // §5.4.2 (Figure 8): "Raft never commits log entries from previous terms by counting replicas. Only log
    // entries from the leader's current term are committed by counting replicas."
    [Fact]
    public void Leader_CommitsOnlyEntriesOfItsCurrentTermByCountingReplicas()
    {
        var leader = new TestNode(1, Three, TestNode.StorageWith(term: 2, commit: 1, 1, 2));
        leader.Elect();
        leader.Node.Term.ShouldBe(3UL);

        // A majority (1 and 2) now holds entry 2 of term 2: not enough to commit it.
        leader.Step(new AppendEntriesResponse(2, 1, 3, false, 2, 0, 0));
        leader.Node.CommitIndex.ShouldBe(1UL);

        // Once the current term's no-op is on a majority, it commits, and entry 2 with it.
        leader.Step(new AppendEntriesResponse(2, 1, 3, false, 3, 0, 0));
        leader.Node.CommitIndex.ShouldBe(3UL);
        leader.Applied.Select(e => (e.Index, e.Term)).ShouldBe([(1UL, 1UL), (2UL, 2UL), (3UL, 3UL)]);
    }

    // §5.4.2 and §8: "each leader commit a blank no-op entry into the log at the start of its term".
    [Fact]
    public void NewLeader_AppendsANoOpOfItsTerm()
    {
        var leader = new TestNode(1, Three, TestNode.StorageWith(term: 2, commit: 1, 1, 2));

        var sent = leader.Elect();

        leader.Node.LastIndex.ShouldBe(3UL);
        leader.Node.TryGetEntry(3, out var noOp).ShouldBeTrue();
        noOp.Type.ShouldBe(EntryType.NoOp);
        noOp.Term.ShouldBe(3UL);
        leader.Storage.LastIndex.ShouldBe(3UL);
        var appends = sent.OfType<AppendEntries>().ToList();
        appends.Select(a => a.To).Order().ShouldBe([2UL, 3UL]);
        appends.ShouldAllBe(a => a.PrevLogIndex == 2 && a.PrevLogTerm == 2 && a.Entries.Count == 1 && a.Entries[0].Index == 3);
    }

    // §5.3: "the leader maintains a nextIndex for each follower ... initializes all nextIndex values to the index
    // just after the last one in its log"; matchIndex follows the acknowledgements.
    [Fact]
    public void Leader_TracksNextIndexAndMatchIndex()
    {
        var leader = new TestNode(1, Three);
        var noOp = leader.Elect().To<AppendEntries>(2).Single();
        leader.Node.DescribeProgress(2).ShouldBe("Probe match=0 next=1 inflight=0");

        leader.Step(TestNode.AckOf(noOp));
        leader.Node.DescribeProgress(2).ShouldBe("Replicate match=1 next=2 inflight=0");

        leader.Propose();
        var append = leader.Flush().To<AppendEntries>(2).ShouldHaveSingleItem();
        leader.Node.DescribeProgress(2).ShouldBe("Replicate match=1 next=3 inflight=1");

        leader.Step(TestNode.AckOf(append));
        leader.Node.DescribeProgress(2).ShouldBe("Replicate match=2 next=3 inflight=0");

        // An old acknowledgement changes nothing.
        leader.Step(TestNode.AckOf(noOp));
        leader.Node.DescribeProgress(2).ShouldBe("Replicate match=2 next=3 inflight=0");
    }

    // Probe mode sends one AppendEntries at a time until the follower's position is known; then the leader
    // streams (replicate mode).
    [Fact]
    public void Leader_ProbesOneAppendAtATime_ThenStreams()
    {
        var leader = new TestNode(1, Three);
        var probe = leader.Elect().To<AppendEntries>(2).Single();

        leader.Propose();
        leader.Flush().To<AppendEntries>(2).ShouldBeEmpty();
        leader.Propose();
        leader.Flush().To<AppendEntries>(2).ShouldBeEmpty();

        var catchUp = leader.Step(TestNode.AckOf(probe)).To<AppendEntries>(2);
        catchUp.SelectMany(a => a.Entries).Select(e => e.Index).ShouldBe([2UL, 3UL]);

        leader.Propose();
        var sent = leader.Flush();
        sent.To<AppendEntries>(2).ShouldHaveSingleItem().Entries.ShouldHaveSingleItem().Index.ShouldBe(4UL);
        sent.To<AppendEntries>(3).ShouldBeEmpty(); // 3 is still probing
    }

    // The pipelining window: at most MaxInflightAppends unacknowledged AppendEntries per follower.
    [Fact]
    public void Leader_StopsAtTheInflightWindow_AndResumesOnAcks()
    {
        var leader = new TestNode(1, Three, configure: o => o.MaxInflightAppends = 2);
        leader.ElectAndCommitNoOp();

        var appends = new List<AppendEntries>();
        for (int i = 0; i < 3; i++)
        {
            leader.Propose();
            appends.AddRange(leader.Flush().To<AppendEntries>(2).Where(a => a.Entries.Count > 0));
        }
        appends.Count.ShouldBe(2);
        leader.Node.DescribeProgress(2).ShouldBe("Replicate match=1 next=4 inflight=2");

        var resumed = leader.Step(TestNode.AckOf(appends[0])).To<AppendEntries>(2);
        resumed.SelectMany(a => a.Entries).Select(e => e.Index).ShouldBe([4UL]);
    }

    // Batching: proposals made before one Ready share one AppendEntries per follower and one persistence.
    [Fact]
    public void ProposalsBeforeOneReady_GoOutInOneAppendEntriesPerFollower()
    {
        var leader = new TestNode(1, Three);
        leader.ElectAndCommitNoOp();

        for (int i = 0; i < 50; i++) leader.Propose().IsAccepted.ShouldBeTrue();
        var ready = leader.Node.GetReady();

        ready.Entries.Count.ShouldBe(50);
        var appends = ready.Messages.OfType<AppendEntries>().ToList();
        appends.Select(a => a.To).Order().ShouldBe([2UL, 3UL]);
        appends.ShouldAllBe(a => a.Entries.Count == 50 && a.PrevLogIndex == 1);
    }

    // §5.1 / §8: "If a client contacts a follower, the follower redirects it to the leader."
    [Fact]
    public void Propose_OnANonLeader_ReturnsNotLeaderWithTheLeaderHint()
    {
        var node = new TestNode(1, Three);
        node.Propose().ShouldBe(new ProposeResult(ProposeStatus.NotLeader, 0, 0, 0));

        node.Step(new Heartbeat(3, 1, 1, 0, 0));

        node.Propose().ShouldBe(new ProposeResult(ProposeStatus.NotLeader, 0, 0, 3));
        node.Node.LastIndex.ShouldBe(0UL);
    }

    [Fact]
    public void Propose_OverMaxUncommittedBytes_IsOverloaded()
    {
        var leader = new TestNode(1, Three, configure: o => o.MaxUncommittedBytes = 300);
        var noOp = leader.Elect().To<AppendEntries>(2).Single();

        leader.Propose().IsAccepted.ShouldBeTrue(); // 24 (no-op) + 124
        leader.Propose().IsAccepted.ShouldBeTrue(); // 272
        leader.Propose().Status.ShouldBe(ProposeStatus.Overloaded);
        leader.Node.LastIndex.ShouldBe(3UL);

        // Committing and applying frees the budget.
        leader.Flush();
        leader.Step(TestNode.AckOf(noOp));
        leader.Step(new AppendEntriesResponse(2, 1, leader.Node.Term, false, 3, 0, 0));
        leader.Node.AppliedIndex.ShouldBe(3UL);
        // One command larger than the whole bound still goes through when nothing else is uncommitted.
        leader.Propose(1000).IsAccepted.ShouldBeTrue();
        leader.Propose().Status.ShouldBe(ProposeStatus.Overloaded);
    }
}

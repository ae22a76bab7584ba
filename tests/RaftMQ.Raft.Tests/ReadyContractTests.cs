namespace RaftMQ.Raft.Tests;

/// <summary>
/// The contract between the core and its runtime: what a <see cref="Ready"/> holds, when it must be synced (Figure 2:
/// persistent state is on stable storage before the node answers), that each Ready is advanced before the next, and
/// what may happen while one is outstanding.
/// </summary>
public sealed class ReadyContractTests
{
    private static readonly ulong[] Three = [1, 2, 3];

    // Figure 2: term and vote must be durable before a message that depends on them goes out; the commit index need
    // not be (a lost commit index is learned again from the leader).
    [Fact]
    public void MustSync_IsSetForTermVoteAndEntries_ButNotForTheCommitIndexAlone()
    {
        var node = new TestNode(1, Three, TestNode.StorageWith(term: 2, commit: 0, 1, 2));

        node.Step(new Heartbeat(2, 1, 2, 1, 0));
        var commitOnly = node.Readies.ShouldHaveSingleItem();
        commitOnly.HardState.ShouldBe(new HardState(2, 0, 1));
        commitOnly.Entries.ShouldBeEmpty();
        commitOnly.MustSync.ShouldBeFalse();

        // A vote in the same term changes only the vote: still synced before the answer.
        var voter = new TestNode(1, Three, TestNode.StorageWith(term: 2, commit: 0));
        voter.Step(new RequestVote(3, 1, 2, 0, 0, false)).ShouldHaveSingleItem().ShouldBeOfType<RequestVoteResponse>().Granted.ShouldBeTrue();
        var vote = voter.Readies.ShouldHaveSingleItem();
        vote.HardState.ShouldBe(new HardState(2, 3, 0));
        vote.MustSync.ShouldBeTrue();

        // New entries alone (no hard state change) are synced too.
        var follower = new TestNode(1, Three, TestNode.StorageWith(term: 2, commit: 0));
        follower.Step(new Heartbeat(2, 1, 2, 0, 0));
        follower.Step(new AppendEntries(2, 1, 2, 0, 0, TestNode.Entries(1, 2), 0));
        var append = follower.Readies[^1];
        append.HardState.ShouldBeNull();
        append.Entries.ShouldHaveSingleItem();
        append.MustSync.ShouldBeTrue();
    }

    // A Ready reports soft and hard state only when they changed since the last one.
    [Fact]
    public void Ready_CarriesSoftAndHardStateOnlyWhenChanged()
    {
        var node = new TestNode(1, Three);
        node.Node.HasReady().ShouldBeFalse();

        node.Step(new Heartbeat(2, 1, 3, 0, 0));
        var first = node.Readies.ShouldHaveSingleItem();
        first.SoftState.ShouldBe(new SoftState(2, Role.Follower, 3));
        first.HardState.ShouldBe(new HardState(3, 0, 0));

        node.Step(new Heartbeat(2, 1, 3, 0, 0));
        var second = node.Readies[1];
        second.SoftState.ShouldBeNull();
        second.HardState.ShouldBeNull();
        second.Messages.ShouldHaveSingleItem().ShouldBeOfType<HeartbeatResponse>();
        node.Node.SoftState.ShouldBe(new SoftState(2, Role.Follower, 3));
        node.Node.HardState.ShouldBe(new HardState(3, 0, 0));
    }

    // A role change alone (same term, no message, no hard state) is still something to report.
    [Fact]
    public void HasReady_IsTrue_ForASoftStateChangeAlone()
    {
        var node = new TestNode(1, Three);
        node.ElectAndCommitNoOp();
        node.Tick(2 * TestNode.ElectionTicks); // no follower answers: the leader steps down (thesis §6.2) in the same term
        node.Node.Role.ShouldBe(Role.Follower);
        var last = node.Readies[^1];
        last.SoftState.ShouldBe(new SoftState(0, Role.Follower, 1));
        last.HardState.ShouldBeNull();
        last.Messages.ShouldBeEmpty();
    }

    // MaxBytesPerApplyBatch bounds one Ready's committed entries; the rest come in the following Readies, with nothing
    // else to report, until every committed entry is applied.
    [Fact]
    public void CommittedEntries_BeyondOneApplyBatch_ComeInTheNextReadies()
    {
        var follower = new TestNode(2, Three, configure: o => o.MaxBytesPerApplyBatch = 1);
        follower.Step(new AppendEntries(1, 2, 1, 0, 0, TestNode.Entries(1, 1, 1, 1), 3));

        follower.Applied.Select(e => e.Index).ShouldBe([1UL, 2UL, 3UL]);
        follower.Readies.Select(r => r.CommittedEntries.Count).ShouldBe([1, 1, 1]);
        follower.Node.AppliedIndex.ShouldBe(3UL);
    }

    [Fact]
    public void Inputs_WhileAReadyIsOutstanding_AreTaken_AndWhatTheyProduceWaitsForTheNextReady()
    {
        var node = new TestNode(1, Three, TestNode.StorageWith(term: 2, commit: 0));
        node.Node.Step(new AppendEntries(2, 1, 2, 0, 0, TestNode.Entries(1, 2), 0));
        var ready = node.Node.GetReady(); // its entry is being made durable (off the loop, in a runtime)
        ready.Entries.Select(e => e.Index).ShouldBe([1UL]);
        ready.Messages.ShouldHaveSingleItem().ShouldBeOfType<AppendEntriesResponse>().Index.ShouldBe(1UL);

        node.Node.HasReady().ShouldBeFalse(); // nothing more is handed out until this one is advanced
        Should.Throw<InvalidOperationException>(() => node.Node.GetReady());
        // A snapshot would replace the log the outstanding Ready's Advance relies on: it waits for the runtime.
        Should.Throw<InvalidOperationException>(() => node.Node.Step(new InstallSnapshot(2, 1, 2, new SnapshotMetadata(5, 2))));

        node.Node.Step(new Heartbeat(2, 1, 2, 1, 4));
        node.Node.Step(new AppendEntries(2, 1, 2, 1, 2, TestNode.Entries(2, 2), 1));
        node.Node.Tick();
        node.Node.Propose(new byte[1]).Status.ShouldBe(ProposeStatus.NotLeader);
        node.Node.ReadIndex(7).Status.ShouldBe(ProposeStatus.Accepted);
        // The heartbeat's answer and the forwarded read promise nothing about the log: they go before the write ends.
        // The second append's answer claims entry 2 is durable: it waits.
        var early = node.Node.TakeMessagesBeforeDurable();
        early.OfType<HeartbeatResponse>().ShouldHaveSingleItem().ReadRound.ShouldBe(4UL);
        early.OfType<ReadIndexRequest>().ShouldHaveSingleItem().Context.ShouldBe(7UL);
        early.Count.ShouldBe(2);
        node.Node.TakeMessagesBeforeDurable().ShouldBeEmpty(); // taken once

        node.Storage.Append(ready.Entries);
        node.Node.Advance(ready);
        var next = node.Node.GetReady();
        next.Entries.Select(e => e.Index).ShouldBe([2UL]); // only what came meanwhile
        next.CommittedEntries.Select(e => e.Index).ShouldBe([1UL]);
        next.Messages.ShouldHaveSingleItem().ShouldBeOfType<AppendEntriesResponse>().Index.ShouldBe(2UL);
        node.Storage.Append(next.Entries);
        node.Node.Advance(next);
        node.Node.LastIndex.ShouldBe(2UL);
    }

    // Figure 2: a node answers nothing in a term, and grants no vote, before that term and vote are durable.
    [Fact]
    public void A_term_or_vote_not_yet_durable_holds_every_message_back()
    {
        var node = new TestNode(1, Three, TestNode.StorageWith(term: 2, commit: 0));
        node.Node.Step(new Heartbeat(2, 1, 3, 0, 0)); // a leader of term 3
        var ready = node.Node.GetReady();
        ready.HardState!.Value.Term.ShouldBe(3UL);
        node.Node.Step(new Heartbeat(2, 1, 3, 0, 0));
        node.Node.TakeMessagesBeforeDurable().ShouldBeEmpty();
        node.Storage.SetHardState(ready.HardState!.Value);
        node.Node.Advance(ready);
        node.Node.GetReady().Messages.Count.ShouldBe(1); // the held answer, now that term 3 is durable

        var voter = new TestNode(1, Three, TestNode.StorageWith(term: 2, commit: 0));
        voter.Node.Step(new RequestVote(3, 1, 2, 0, 0, false));
        var vote = voter.Node.GetReady();
        vote.HardState.ShouldBe(new HardState(2, 3, 0));
        voter.Node.Step(new Heartbeat(3, 1, 2, 0, 0));
        voter.Node.TakeMessagesBeforeDurable().ShouldBeEmpty(); // vote not durable yet
    }

    // Thesis §10.2.1: a leader sends its entries while it writes them, and counts itself only once they are durable.
    [Fact]
    public void A_leader_sends_appends_during_its_own_write_and_counts_itself_only_after_it()
    {
        var leader = new TestNode(1, Three);
        leader.ElectAndCommitNoOp();
        leader.Node.CommitIndex.ShouldBe(1UL);
        leader.Propose();
        var ready = leader.Node.GetReady();
        ready.Entries.Select(e => e.Index).ShouldBe([2UL]);
        var first = ready.Messages.OfType<AppendEntries>().ToList();
        first.Count.ShouldBe(2);

        leader.Propose(); // entry 3, while entry 2 is written
        var early = leader.Node.TakeMessagesBeforeDurable().OfType<AppendEntries>().ToList();
        early.Count.ShouldBe(2);
        early.ShouldAllBe(ae => ae.Entries.Count == 1 && ae.Entries[0].Index == 3UL);

        // Follower 2 holds 2 and 3; with the leader's own write outstanding that is one durable copy of three.
        leader.Node.Step(new AppendEntriesResponse(2, 1, leader.Node.Term, false, 3, 0, 0));
        leader.Node.CommitIndex.ShouldBe(1UL);

        leader.Storage.Append(ready.Entries);
        leader.Node.Advance(ready); // entry 2 durable here: leader and follower 2 hold it
        leader.Node.CommitIndex.ShouldBe(2UL);
        var next = leader.Node.GetReady();
        next.Entries.Select(e => e.Index).ShouldBe([3UL]);
        next.CommittedEntries.Select(e => e.Index).ShouldBe([2UL]);
        leader.Storage.Append(next.Entries);
        leader.Node.Advance(next);
        leader.Node.CommitIndex.ShouldBe(3UL);
    }

    // A committed entry is durable on a majority and final: the leader applies what its followers acknowledged while
    // its own write of it is still out, but nothing past what that write covers.
    [Fact]
    public void Entries_committed_by_the_followers_are_handed_out_during_the_leaders_own_write_up_to_what_it_covers()
    {
        var leader = new TestNode(1, Three);
        leader.ElectAndCommitNoOp();
        leader.Node.TakeCommittedBeforeDurable(long.MaxValue).ShouldBeEmpty(); // no Ready outstanding
        leader.Propose();
        leader.Propose();
        var ready = leader.Node.GetReady(); // entries 2 and 3, being written
        ready.Entries.Select(e => e.Index).ShouldBe([2UL, 3UL]);
        leader.Node.TakeCommittedBeforeDurable(long.MaxValue).ShouldBeEmpty(); // nothing committed yet
        leader.Propose(); // entry 4, not in the outstanding Ready

        // Both followers hold 2..4: committed without the leader's own copy, which is not durable yet.
        leader.Node.Step(new AppendEntriesResponse(2, 1, leader.Node.Term, false, 4, 0, 0));
        leader.Node.Step(new AppendEntriesResponse(3, 1, leader.Node.Term, false, 4, 0, 0));
        leader.Node.CommitIndex.ShouldBe(4UL);

        var early = leader.Node.TakeCommittedBeforeDurable(1); // bounded by bytes, at least one entry
        early.Select(e => e.Index).ShouldBe([2UL]);
        leader.Node.AppliedIndex.ShouldBe(2UL);
        // Entry 4 is committed but not in the write that is out: it waits, so that everything applied is in the
        // written log (and, once that write is durable, in the durable log).
        leader.Node.TakeCommittedBeforeDurable(long.MaxValue).Select(e => e.Index).ShouldBe([3UL]);
        leader.Node.TakeCommittedBeforeDurable(long.MaxValue).ShouldBeEmpty();
        leader.Node.AppliedIndex.ShouldBe(3UL);

        leader.PersistAndAdvance(ready);
        var next = leader.Node.GetReady();
        next.Entries.Select(e => e.Index).ShouldBe([4UL]);
        next.CommittedEntries.Select(e => e.Index).ShouldBe([4UL]); // 2 and 3 are not handed out twice
        leader.PersistAndAdvance(next);
        leader.Node.AppliedIndex.ShouldBe(4UL);
    }

    // The outstanding Ready's own committed entries come first: what is taken meanwhile starts after them.
    [Fact]
    public void Entries_taken_during_a_write_follow_the_outstanding_Readys_own_committed_entries()
    {
        var follower = new TestNode(2, Three, TestNode.StorageWith(term: 2, commit: 0));
        follower.Node.Step(new AppendEntries(1, 2, 2, 0, 0, TestNode.Entries(1, 2, 2, 2), 1));
        var ready = follower.Node.GetReady();
        ready.Entries.Select(e => e.Index).ShouldBe([1UL, 2UL, 3UL]);
        ready.CommittedEntries.Select(e => e.Index).ShouldBe([1UL]);

        follower.Node.Step(new Heartbeat(1, 2, 2, 3, 0)); // the leader's commit reaches 3
        follower.Node.TakeCommittedBeforeDurable(long.MaxValue).Select(e => e.Index).ShouldBe([2UL, 3UL]);
        follower.Node.AppliedIndex.ShouldBe(3UL);

        follower.PersistAndAdvance(ready); // its committed entry 1 is behind the applied index: no step back
        follower.Node.AppliedIndex.ShouldBe(3UL);
        follower.Node.HasReady().ShouldBeTrue(); // the new commit index, to persist
        follower.Node.GetReady().CommittedEntries.ShouldBeEmpty();
    }

    // A new leader's append may replace entries the outstanding Ready is writing (§5.3: a conflict and all after it).
    // The replacements are in no write yet: even once committed, they wait for the Ready that writes them. Found by
    // the simulator: a follower whose fsync was slow applied the new leader's entry at an index its disk still held
    // the old one at, snapshotted it, and stopped when compacting the log behind that snapshot.
    [Fact]
    public void Entries_that_replaced_part_of_the_outstanding_write_are_not_handed_out_before_they_are_written()
    {
        var follower = new TestNode(2, Three, TestNode.StorageWith(term: 2, commit: 0));
        follower.Node.Step(new AppendEntries(1, 2, 2, 0, 0, TestNode.Entries(1, 2, 2, 2), 1));
        var ready = follower.Node.GetReady(); // 1..3 of term 2, being written; 1 committed
        ready.Entries.Select(e => e.Index).ShouldBe([1UL, 2UL, 3UL]);

        // Leader 3 of term 3 holds 1 and then its own entry 2: 2 and 3 of term 2 are gone from the log.
        var replacement = new Entry(2, 3, EntryType.Command, new byte[] { 9 });
        follower.Node.Step(new AppendEntries(3, 2, 3, 1, 2, [replacement], 1));
        follower.Node.Step(new AppendEntries(3, 2, 3, 2, 3, [], 2)); // entry 2 of term 3 commits
        follower.Node.CommitIndex.ShouldBe(2UL);
        follower.Node.TakeCommittedBeforeDurable(long.MaxValue).ShouldBeEmpty(); // written: 2 of term 2, not 2 of term 3
        follower.Node.AppliedIndex.ShouldBe(0UL);

        follower.PersistAndAdvance(ready);
        var next = follower.Node.GetReady();
        next.Entries.Select(e => (e.Index, e.Term)).ShouldBe([(2UL, 3UL)]); // 1 is written and durable: not again
        next.CommittedEntries.Select(e => (e.Index, e.Term)).ShouldBe([(2UL, 3UL)]); // 1 came with the first Ready
        follower.PersistAndAdvance(next);
        follower.Node.AppliedIndex.ShouldBe(2UL);
    }

    [Fact]
    public void Advance_WithAnotherReady_IsRefused()
    {
        var node = new TestNode(1, Three);
        node.Node.Step(new Heartbeat(2, 1, 3, 0, 0));
        var ready = node.Node.GetReady();
        node.Node.Advance(ready);
        node.Node.Step(new Heartbeat(2, 1, 3, 0, 0));
        var next = node.Node.GetReady();

        Should.Throw<InvalidOperationException>(() => node.Node.Advance(ready));
        Should.Throw<ArgumentNullException>(() => node.Node.Advance(null!));
        node.Node.Advance(next);
        Should.Throw<InvalidOperationException>(() => node.Node.Advance(next)); // not twice either
    }

    [Fact]
    public void Step_WithNull_IsRefused() =>
        Should.Throw<ArgumentNullException>(() => new TestNode(1, Three).Node.Step(null!));

    // The log as seen through the node: entries by index, and nothing outside [FirstIndex, LastIndex].
    [Fact]
    public void TryGetEntry_ReturnsTheEntry_OnlyWithinTheLog()
    {
        var storage = TestNode.StorageWith(1, 4, 1, 1, 1, 1);
        storage.Compact(new SnapshotMetadata(2, 1));
        var node = new TestNode(1, Three, storage, o => o.Applied = 2);

        node.Node.TryGetEntry(2, out _).ShouldBeFalse(); // compacted
        node.Node.TryGetEntry(5, out _).ShouldBeFalse(); // past the end
        node.Node.TryGetEntry(3, out var third).ShouldBeTrue();
        third.ShouldBe(storage.ReadOne(3));
        node.Node.TryGetEntry(4, out var fourth).ShouldBeTrue();
        fourth.Index.ShouldBe(4UL);
        (node.Node.FirstIndex, node.Node.LastIndex, node.Node.LastTerm).ShouldBe((3UL, 4UL, 1UL));
    }

    // Progress is the leader's view; other roles have none to describe.
    [Fact]
    public void DescribeProgress_IsOnlyAvailableOnTheLeader_ForAMember()
    {
        var node = new TestNode(1, Three);
        node.Node.DescribeProgress(2).ShouldBeNull();
        node.Elect();
        node.Node.DescribeProgress(2).ShouldBe("Probe match=0 next=1 inflight=0");
        node.Node.DescribeProgress(9).ShouldBeNull();
    }
}

internal static class ReadyTestExtensions
{
    public static Entry ReadOne(this MemoryLogStorage storage, ulong index)
    {
        var list = new List<Entry>();
        storage.ReadEntries(index, index + 1, long.MaxValue, list);
        return list[0];
    }
}

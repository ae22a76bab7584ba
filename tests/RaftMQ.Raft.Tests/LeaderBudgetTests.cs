namespace RaftMQ.Raft.Tests;

/// <summary>
/// The leader's bounds at their exact edges: MaxUncommittedBytes (which counts the no-op and is freed as the leader's
/// own entries are applied) and MaxPendingReads (whose slots are freed as reads are released).
/// </summary>
public sealed class LeaderBudgetTests
{
    private static readonly ulong[] Three = [1, 2, 3];

    // Entry sizes: Propose(100) is 124 bytes with the overhead, Propose(101) 125, the no-op 24.

    [Fact]
    public void UncommittedBudget_AcceptsAnExactFit()
    {
        var leader = new TestNode(1, Three, configure: o => o.MaxUncommittedBytes = 248);
        leader.ElectAndCommitNoOp();

        leader.Propose(100).IsAccepted.ShouldBeTrue();
        leader.Propose(100).IsAccepted.ShouldBeTrue(); // 248 of 248
        leader.Propose(0).Status.ShouldBe(ProposeStatus.Overloaded);
    }

    // §5.4.2/§8: the new leader's no-op is uncommitted too, and counts against the budget until applied.
    [Fact]
    public void UncommittedBudget_CountsTheNewLeadersNoOp()
    {
        var leader = new TestNode(1, Three, configure: o => o.MaxUncommittedBytes = 147);
        leader.Elect();
        leader.Propose(100).Status.ShouldBe(ProposeStatus.Overloaded); // 24 + 124 = 148 > 147

        var exact = new TestNode(1, Three, configure: o => o.MaxUncommittedBytes = 148);
        exact.Elect();
        exact.Propose(100).IsAccepted.ShouldBeTrue();
    }

    // Applying some of the leader's entries frees their bytes only: what is still uncommitted keeps counting.
    [Fact]
    public void UncommittedBudget_AfterAPartialApply_StillCountsTheRest()
    {
        var leader = new TestNode(1, Three, configure: o => o.MaxUncommittedBytes = 248);
        leader.ElectAndCommitNoOp();
        leader.Propose(100);
        var first = leader.Flush().To<AppendEntries>(2).ShouldHaveSingleItem();
        leader.Propose(100);
        leader.Flush();

        leader.Step(TestNode.AckOf(first)); // entry 2 commits and is applied; entry 3 (124 bytes) is still uncommitted
        leader.Applied.Select(e => e.Index).ShouldBe([1UL, 2UL]);

        leader.Propose(101).Status.ShouldBe(ProposeStatus.Overloaded); // 124 + 125 > 248
        leader.Propose(100).IsAccepted.ShouldBeTrue();                 // 124 + 124 = 248
    }

    // Thesis §6.4: reads that waited for the no-op are started when it commits and then free their slots like any
    // other read once released.
    [Fact]
    public void ReadsThatWaitedForTheNoOp_FreeTheirSlotsWhenReleased()
    {
        var leader = new TestNode(1, Three, configure: o => o.MaxPendingReads = 1);
        var noOp = leader.Elect().To<AppendEntries>(2).Single();
        leader.Node.ReadIndex(1).IsAccepted.ShouldBeTrue();

        var heartbeat = leader.Step(TestNode.AckOf(noOp)).To<Heartbeat>(2).Single(h => h.ReadRound > 0);
        leader.Step(TestNode.AckOf(heartbeat));
        leader.ReadStates.ShouldBe([new ReadState(1, 1)]);

        leader.Node.ReadIndex(2).IsAccepted.ShouldBeTrue();
        leader.Node.ReadIndex(3).Status.ShouldBe(ProposeStatus.Overloaded);
    }

    // A cluster of one confirms its own leadership (it is the whole quorum): each read is served at once and holds
    // no slot, so MaxPendingReads never refuses a sequence of reads.
    [Fact]
    public void SingleNode_ServesEveryRead_WithoutHoldingASlot()
    {
        var node = new TestNode(1, [1], configure: o => o.MaxPendingReads = 1);
        node.Flush();
        for (ulong context = 1; context <= 5; context++)
        {
            node.Node.ReadIndex(context).IsAccepted.ShouldBeTrue();
            node.Flush().ShouldBeEmpty();
        }
        node.ReadStates.Select(r => r.Context).ShouldBe([1UL, 2, 3, 4, 5]);
    }
}

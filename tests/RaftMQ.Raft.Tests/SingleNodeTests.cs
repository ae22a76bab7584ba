namespace RaftMQ.Raft.Tests;

/// <summary>A cluster of one: its own vote is a majority (§5.2), and commitment needs only its own disk.</summary>
public sealed class SingleNodeTests
{
    private static readonly ulong[] One = [1];

    [Fact]
    public void SingleNode_LeadsAtOnce_AndCommitsOncePersisted()
    {
        var node = new TestNode(1, One);

        node.Node.Role.ShouldBe(Role.Leader);
        node.Node.Term.ShouldBe(1UL);

        // The no-op is handed out to persist first; only after Advance is it committed.
        var first = node.Node.GetReady();
        first.Entries.ShouldHaveSingleItem().Type.ShouldBe(EntryType.NoOp);
        first.CommittedEntries.ShouldBeEmpty();
        first.HardState.ShouldBe(new HardState(1, 1, 0));
        first.MustSync.ShouldBeTrue();
        node.Storage.Append(first.Entries);
        node.Storage.SetHardState(first.HardState!.Value);
        node.Node.Advance(first);
        node.Flush();
        node.Applied.ShouldHaveSingleItem().Index.ShouldBe(1UL);

        node.Propose().ShouldBe(new ProposeResult(ProposeStatus.Accepted, 2, 1, 1));
        node.Flush();

        var persisted = node.Readies.FindIndex(r => r.Entries.Any(e => e.Index == 2));
        var applied = node.Readies.FindIndex(r => r.CommittedEntries.Any(e => e.Index == 2));
        applied.ShouldBeGreaterThan(persisted);
        node.Node.CommitIndex.ShouldBe(2UL);
        node.Storage.HardState.Commit.ShouldBe(2UL);
    }

    [Fact]
    public void SingleNode_RestartedFromItsStorage_LeadsAtOnceInTheNextTerm()
    {
        var node = new TestNode(1, One);
        node.Propose();
        node.Propose();
        node.Flush();
        node.Node.CommitIndex.ShouldBe(3UL);

        var restarted = new TestNode(1, One, node.Storage.Clone());

        restarted.Node.Role.ShouldBe(Role.Leader);
        restarted.Node.Term.ShouldBe(2UL);
        restarted.Node.CommitIndex.ShouldBe(3UL);
        restarted.Propose().IsAccepted.ShouldBeTrue();
        restarted.Flush();
        // Entries committed before the restart are delivered again (nothing was marked applied), then the new ones.
        restarted.Applied.Select(e => (e.Index, e.Term)).ShouldBe([(1UL, 1UL), (2UL, 1UL), (3UL, 1UL), (4UL, 2UL), (5UL, 2UL)]);
    }

    [Fact]
    public void SingleNode_ReadIndex_IsReleasedWithoutMessages()
    {
        var node = new TestNode(1, One);
        node.Flush();

        node.Node.ReadIndex(4).IsAccepted.ShouldBeTrue();

        node.Flush().ShouldBeEmpty();
        node.ReadStates.ShouldBe([new ReadState(4, 1)]);
    }
}

namespace RaftMQ.Raft.Tests;

/// <summary>The follower's answers at the edges of §5.3 and §7: appends and snapshots behind its commit index.</summary>
public sealed class FollowerRulesTests
{
    private static readonly ulong[] Three = [1, 2, 3];

    // §5.4 (Leader Completeness): everything up to the follower's commit index matches the leader, so an append that
    // starts before it (delayed or duplicated) is answered with the commit index as the match, and changes nothing.
    [Fact]
    public void AppendEntries_StartingBelowTheCommitIndex_IsAnsweredWithTheCommitIndex()
    {
        var follower = new TestNode(2, Three, TestNode.StorageWith(term: 2, commit: 3, 1, 1, 2, 2));
        var answer = follower.Step(new AppendEntries(1, 2, 2, 1, 1, TestNode.Entries(2, 3), 3))
            .ShouldHaveSingleItem().ShouldBeOfType<AppendEntriesResponse>();

        (answer.To, answer.Term, answer.Reject, answer.Index).ShouldBe((1UL, 2UL, false, 3UL));
        follower.Node.LastIndex.ShouldBe(4UL);
        follower.Storage.Term(2).ShouldBe(1UL);

        // At the commit index itself the append is checked and taken as usual.
        var taken = follower.Step(new AppendEntries(1, 2, 2, 3, 2, TestNode.Entries(4, 2, 2), 3))
            .ShouldHaveSingleItem().ShouldBeOfType<AppendEntriesResponse>();
        (taken.Reject, taken.Index).ShouldBe((false, 5UL));
    }

    // §7: a snapshot the follower's commit index already covers is acknowledged (not rejected) at the commit index,
    // so the leader moves the follower on instead of sending the snapshot again.
    [Fact]
    public void Snapshot_AtTheCommitIndex_IsAcknowledgedAtTheCommitIndex()
    {
        var follower = new TestNode(2, Three, TestNode.StorageWith(term: 2, commit: 3, 1, 1, 2));
        var answer = follower.Step(new InstallSnapshot(1, 2, 2, new SnapshotMetadata(3, 2)))
            .ShouldHaveSingleItem().ShouldBeOfType<AppendEntriesResponse>();
        (answer.To, answer.Term, answer.Reject, answer.Index).ShouldBe((1UL, 2UL, false, 3UL));
        follower.Readies.ShouldAllBe(r => r.Snapshot == null);

        // One past the commit index is installed.
        var installed = follower.Step(new InstallSnapshot(1, 2, 2, new SnapshotMetadata(4, 2)))
            .ShouldHaveSingleItem().ShouldBeOfType<AppendEntriesResponse>();
        (installed.Reject, installed.Index).ShouldBe((false, 4UL));
        follower.Node.CommitIndex.ShouldBe(4UL);
    }
}

namespace RaftMQ.Raft.Tests;

/// <summary>
/// Which messages a node acts on, and how a term in a message changes it: Raft paper §5.1, thesis §4.2.3 and §9.6.
/// Complements <see cref="ElectionTests"/> with the edges of each rule.
/// </summary>
public sealed class TermAndMessageRulesTests
{
    private static readonly ulong[] Three = [1, 2, 3];

    // A message that is not for this node, claims to come from it, or comes from outside the configuration is dropped
    // before its term is looked at: a stray or misrouted message must not move the term.
    [Fact]
    public void Messages_NotAddressedToThisNode_FromItself_OrFromANonMember_AreDropped()
    {
        var node = new TestNode(1, Three);

        node.Step(new Heartbeat(2, 3, 5, 0, 0)).ShouldBeEmpty();  // addressed to 3
        node.Step(new Heartbeat(1, 1, 5, 0, 0)).ShouldBeEmpty();  // from itself
        node.Step(new Heartbeat(9, 1, 5, 0, 0)).ShouldBeEmpty();  // 9 is not a voter
        node.Step(new RequestVote(9, 1, 5, 9, 9, false)).ShouldBeEmpty();

        node.Node.Term.ShouldBe(0UL);
        node.Node.Leader.ShouldBe(0UL);
        node.Node.Vote.ShouldBe(0UL);

        // The same heartbeat from a member, to this node, is taken.
        node.Step(new Heartbeat(2, 1, 5, 0, 0)).ShouldHaveSingleItem().ShouldBeOfType<HeartbeatResponse>();
        node.Node.Term.ShouldBe(5UL);
    }

    // Snapshot bytes are the runtime's business: the core ignores chunks and their answers, whatever their term.
    [Fact]
    public void SnapshotChunks_AreIgnoredByTheCore()
    {
        var node = new TestNode(1, Three);
        var meta = new SnapshotMetadata(5, 1);

        node.Step(new SnapshotChunk(2, 1, 7, meta, 0, new byte[] { 1 }, false)).ShouldBeEmpty();
        node.Step(new SnapshotChunkResponse(2, 1, 7, meta, 1, false)).ShouldBeEmpty();

        node.Node.Term.ShouldBe(0UL);
        node.Node.Leader.ShouldBe(0UL);
        node.Readies.ShouldBeEmpty();
    }

    // §5.1 with thesis §9.6/§6.2: a stale leader must learn the newer term, or (with pre-vote keeping the others from
    // campaigning) it could lead a minority forever. Either feature alone calls for the answer.
    [Theory]
    [InlineData(true, true)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    public void StaleLeaderMessages_AreAnsweredWithTheCurrentTerm_WhenPreVoteOrCheckQuorumIsOn(bool preVote, bool checkQuorum)
    {
        var node = new TestNode(1, Three, TestNode.StorageWith(term: 3, commit: 0, 1), o =>
        {
            o.PreVote = preVote;
            o.CheckQuorum = checkQuorum;
        });

        foreach (RaftMessage stale in new RaftMessage[]
                 {
                     new AppendEntries(2, 1, 2, 1, 1, [], 0),
                     new Heartbeat(2, 1, 2, 0, 0),
                     new InstallSnapshot(2, 1, 2, new SnapshotMetadata(9, 2)),
                 })
        {
            var answer = node.Step(stale).ShouldHaveSingleItem().ShouldBeOfType<AppendEntriesResponse>();
            (answer.To, answer.Term, answer.Reject).ShouldBe((2UL, 3UL, false));
        }
        node.Node.Term.ShouldBe(3UL);
        node.Node.LastIndex.ShouldBe(1UL);
    }

    // Plain Raft (§5.1): without either feature a stale message is simply ignored.
    [Fact]
    public void StaleMessages_AreIgnored_WithoutPreVoteAndCheckQuorum()
    {
        var node = new TestNode(1, Three, TestNode.StorageWith(term: 3, commit: 0, 1), o =>
        {
            o.PreVote = false;
            o.CheckQuorum = false;
        });

        node.Step(new AppendEntries(2, 1, 2, 1, 1, [], 0)).ShouldBeEmpty();
        node.Step(new Heartbeat(2, 1, 2, 0, 0)).ShouldBeEmpty();
        node.Node.Term.ShouldBe(3UL);
        node.Node.Leader.ShouldBe(0UL);
    }

    // Thesis §9.6: a pre-vote request from a stale term is refused with our term, so the pre-candidate learns it is
    // behind; other stale messages of the vote exchange are dropped without an answer.
    [Fact]
    public void StalePreVoteRequest_IsRefusedWithTheCurrentTerm()
    {
        var node = new TestNode(1, Three, TestNode.StorageWith(term: 3, commit: 0, 1));

        var answer = node.Step(new RequestVote(2, 1, 2, 5, 2, true)).ShouldHaveSingleItem().ShouldBeOfType<RequestVoteResponse>();
        (answer.To, answer.Term, answer.Granted, answer.PreVote).ShouldBe((2UL, 3UL, false, true));

        node.Step(new RequestVoteResponse(2, 1, 2, true, false)).ShouldBeEmpty();
        node.Step(new HeartbeatResponse(2, 1, 2, 0)).ShouldBeEmpty();
        node.Node.Term.ShouldBe(3UL);
    }

    // Thesis §9.6: a granted pre-vote answer carries the term the pre-candidate would campaign in, which must not be
    // adopted; a refusal carries the voter's real, higher term, which must be.
    [Fact]
    public void PreVoteAnswers_OnlyARefusalWithAHigherTermMovesTheTerm()
    {
        var node = new TestNode(1, [1, 2, 3, 4, 5], TestNode.StorageWith(term: 4, commit: 0));
        node.Tick(2 * TestNode.ElectionTicks);
        node.Node.Role.ShouldBe(Role.PreCandidate);

        node.Step(new RequestVoteResponse(2, 1, 5, true, true));
        (node.Node.Role, node.Node.Term).ShouldBe((Role.PreCandidate, 4UL));

        node.Step(new RequestVoteResponse(3, 1, 7, false, true));
        (node.Node.Role, node.Node.Term, node.Node.Vote).ShouldBe((Role.Follower, 7UL, 0UL));
    }

    // Thesis §4.2.3: the lease lasts one minimum election timeout after hearing from the leader — not longer.
    [Fact]
    public void Lease_EndsExactlyOneElectionTimeoutAfterTheLeaderWasHeard()
    {
        var node = new TestNode(1, Three, configure: o => o.ElectionTicks = 20); // the node does not campaign within 20 ticks
        node.Step(new Heartbeat(2, 1, 2, 0, 0));

        node.Tick(19);
        node.Step(new RequestVote(3, 1, 3, 0, 0, false)).ShouldBeEmpty();
        node.Node.Term.ShouldBe(2UL);

        node.Tick();
        (node.Node.Role, node.Node.Leader).ShouldBe((Role.Follower, 2UL)); // still following: only the lease ended
        node.Step(new RequestVote(3, 1, 3, 0, 0, false)).OfType<RequestVoteResponse>().ShouldHaveSingleItem().Granted.ShouldBeTrue();
        node.Node.Term.ShouldBe(3UL);
    }

    // The lease is part of check-quorum (thesis §4.2.3 pairs them): without it a vote request is heard at once.
    [Fact]
    public void Lease_DoesNotApply_WithoutCheckQuorum()
    {
        var node = new TestNode(1, Three, configure: o => o.CheckQuorum = false);
        node.Step(new Heartbeat(2, 1, 2, 0, 0));

        node.Step(new RequestVote(3, 1, 3, 0, 0, false)).OfType<RequestVoteResponse>().ShouldHaveSingleItem().Granted.ShouldBeTrue();
        node.Node.Term.ShouldBe(3UL);
    }

    // §5.2: a follower that keeps hearing from its leader never starts an election.
    [Fact]
    public void Follower_HearingTheLeaderWithinEachTimeout_NeverCampaigns()
    {
        var node = new TestNode(1, Three);
        for (int round = 0; round < 10; round++)
        {
            node.Step(new Heartbeat(2, 1, 2, 0, 0));
            node.Tick(TestNode.ElectionTicks - 1).OfType<RequestVote>().ShouldBeEmpty();
        }
        node.Step(new AppendEntries(2, 1, 2, 0, 0, [], 0));
        node.Tick(TestNode.ElectionTicks - 1).OfType<RequestVote>().ShouldBeEmpty();
        node.Step(new InstallSnapshot(2, 1, 2, new SnapshotMetadata(3, 2)));
        node.Tick(TestNode.ElectionTicks - 1).OfType<RequestVote>().ShouldBeEmpty();
        (node.Node.Role, node.Node.Leader).ShouldBe((Role.Follower, 2UL));
    }
}

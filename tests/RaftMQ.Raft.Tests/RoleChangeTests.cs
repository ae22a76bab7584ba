namespace RaftMQ.Raft.Tests;

/// <summary>
/// What a node forgets when its role or term changes: a term's reads, its vote tally and timers (§5.2, thesis §6.4,
/// §9.6), and how election timeouts differ between nodes.
/// </summary>
public sealed class RoleChangeTests
{
    private static readonly ulong[] Three = [1, 2, 3];
    private static readonly ulong[] Five = [1, 2, 3, 4, 5];

    // Thesis §6.4: a read is confirmed by the leadership of the term it was accepted in. A leader that steps down
    // drops its pending reads (callers retry); re-elected later, it must not serve them on the new term's heartbeats,
    // since entries committed in between by another leader may be newer than their read index.
    [Fact]
    public void PendingReads_AreDroppedWhenTheLeaderStepsDown()
    {
        var leader = new TestNode(1, Three);
        leader.ElectAndCommitNoOp();
        leader.Node.ReadIndex(1).IsAccepted.ShouldBeTrue();   // waiting for a heartbeat round
        leader.Flush();
        leader.Node.ReadIndex(2).IsAccepted.ShouldBeTrue();   // not even sent yet
        leader.Node.Step(new AppendEntriesResponse(2, 1, 5, false, 0, 0, 0)); // a higher term: step down at once
        leader.Flush();
        leader.Node.Role.ShouldBe(Role.Follower);

        // Elected again in a later term; its first Ready holds the no-op appends and no read round.
        var first = leader.Elect();
        first.OfType<Heartbeat>().ShouldBeEmpty();
        foreach (var ae in first.OfType<AppendEntries>()) leader.Step(TestNode.AckOf(ae));
        leader.Node.ReadIndex(3).IsAccepted.ShouldBeTrue();
        foreach (var hb in leader.Flush().OfType<Heartbeat>()) leader.Step(TestNode.AckOf(hb));

        leader.ReadStates.Select(r => r.Context).ShouldBe([3UL]);
    }

    // Reads waiting for the no-op are dropped with the term too.
    [Fact]
    public void ReadsWaitingForTheNoOp_AreDroppedWhenTheLeaderStepsDown()
    {
        var leader = new TestNode(1, Three);
        leader.Elect();
        leader.Node.ReadIndex(1).IsAccepted.ShouldBeTrue();
        leader.Step(new AppendEntriesResponse(2, 1, 5, false, 0, 0, 0));

        var sent = new List<RaftMessage>();
        foreach (var ae in leader.Elect().OfType<AppendEntries>()) sent.AddRange(leader.Step(TestNode.AckOf(ae)));
        leader.Node.CommitIndex.ShouldBe(2UL); // the new term's no-op committed: no read of this term waits
        sent.OfType<Heartbeat>().ShouldAllBe(h => h.ReadRound == 0); // nothing to confirm
        foreach (var hb in sent.OfType<Heartbeat>()) leader.Step(TestNode.AckOf(hb));
        leader.ReadStates.ShouldBeEmpty();
    }

    // A follower's forwarded reads belong to the leader of their term: a new term frees their slots.
    [Fact]
    public void ForwardedReads_AreForgottenInANewTerm()
    {
        var follower = new TestNode(2, Three, configure: o => o.MaxPendingReads = 1);
        follower.Step(new Heartbeat(1, 2, 3, 0, 0));
        follower.Node.ReadIndex(1).IsAccepted.ShouldBeTrue();
        follower.Node.ReadIndex(2).Status.ShouldBe(ProposeStatus.Overloaded);
        follower.Flush();

        follower.Step(new Heartbeat(3, 2, 4, 0, 0));
        follower.Node.ReadIndex(2).ShouldBe(new ProposeResult(ProposeStatus.Accepted, 0, 4, 3));
    }

    // Thesis §6.2: the leader's quorum check runs one election timeout after it took office, whatever time it spent
    // as a candidate.
    [Fact]
    public void NewLeader_ChecksItsQuorumOneElectionTimeoutAfterWinning()
    {
        var node = new TestNode(1, Three, configure: o => o.PreVote = false);
        while (node.Node.Role != Role.Candidate) node.Tick();
        node.Tick(5); // five ticks as candidate (below the timeout of at least 10)
        node.Node.Role.ShouldBe(Role.Candidate);
        node.Step(new RequestVoteResponse(2, 1, node.Node.Term, true, false));
        node.Node.Role.ShouldBe(Role.Leader);

        node.Tick(TestNode.ElectionTicks - 1);
        node.Node.Role.ShouldBe(Role.Leader);
        node.Tick();
        node.Node.Role.ShouldBe(Role.Follower); // nobody answered in the whole timeout
    }

    // Thesis §9.6: each pre-vote round counts only its own answers; a grant from an earlier round (which may be stale
    // by now) does not help reach the majority.
    [Fact]
    public void APreVoteRound_CountsOnlyItsOwnAnswers()
    {
        var node = new TestNode(1, Five, TestNode.StorageWith(term: 2, commit: 0));
        node.Tick(2 * TestNode.ElectionTicks);
        node.Node.Role.ShouldBe(Role.PreCandidate);
        node.Step(new RequestVoteResponse(2, 1, 3, true, true)); // 2 of 5

        // No majority before the timeout: a new round starts.
        var rerun = new List<RaftMessage>();
        for (int i = 0; i < 2 * TestNode.ElectionTicks && rerun.Count == 0; i++) rerun = node.Tick().OfType<RequestVote>().ToList<RaftMessage>();
        rerun.Count.ShouldBe(4);

        node.Step(new RequestVoteResponse(3, 1, 3, true, true)); // 2 of 5 in this round
        node.Node.Role.ShouldBe(Role.PreCandidate);
        node.Step(new RequestVoteResponse(4, 1, 3, true, true)); // 3 of 5
        node.Node.Role.ShouldBe(Role.Candidate);
    }

    // §5.2: "Raft uses randomized election timeouts to ensure that split votes are rare". Nodes configured with the
    // same seed must still draw different timeouts, or they would time out together election after election.
    [Fact]
    public void NodesWithTheSameSeed_DrawDifferentElectionTimeouts()
    {
        var timeouts = new List<int>();
        foreach (ulong id in Five)
        {
            var node = new TestNode(id, Five, configure: o => o.PreVote = false);
            int ticks = 0;
            while (node.Node.Role == Role.Follower)
            {
                node.Tick();
                ticks++;
            }
            timeouts.Add(ticks);
        }
        timeouts.Distinct().Count().ShouldBeGreaterThan(1);
    }
}

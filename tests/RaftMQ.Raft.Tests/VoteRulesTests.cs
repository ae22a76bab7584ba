namespace RaftMQ.Raft.Tests;

/// <summary>
/// The edges of the voting rules: §5.2 (one vote per term, the election timer), §5.4.1 and thesis §9.6 (pre-vote).
/// </summary>
public sealed class VoteRulesTests
{
    private static readonly ulong[] Three = [1, 2, 3];
    private static readonly ulong[] Five = [1, 2, 3, 4, 5];

    private static TestNode Voter(Action<RaftOptions>? configure = null) =>
        new(1, Three, TestNode.StorageWith(term: 2, commit: 0), configure);

    private static int TicksUntilCampaign(TestNode node)
    {
        for (int ticks = 1; ticks <= 4 * TestNode.ElectionTicks; ticks++)
        {
            node.Tick();
            if (node.Node.Role != Role.Follower) return ticks;
        }
        throw new InvalidOperationException("the node never campaigned");
    }

    // §5.2: a follower that knows the leader of the current term has no vote to give in it, even if it never voted.
    [Fact]
    public void Follower_WithALeaderInTheTerm_RefusesVotesInThatTerm()
    {
        var node = Voter();
        node.Step(new Heartbeat(2, 1, 2, 0, 0));

        var answer = node.Step(new RequestVote(3, 1, 2, 5, 2, false)).ShouldHaveSingleItem().ShouldBeOfType<RequestVoteResponse>();

        (answer.Granted, answer.Term, answer.PreVote).ShouldBe((false, 2UL, false));
        node.Node.Vote.ShouldBe(0UL);
    }

    // §5.2: "If election timeout elapses without ... granting vote to candidate: convert to candidate" — granting a
    // vote restarts the election timer, so the voter gives the candidate a full timeout to win.
    [Fact]
    public void GrantingAVote_RestartsTheElectionTimer()
    {
        var undisturbed = TicksUntilCampaign(Voter());

        var voter = Voter();
        voter.Tick(5);
        voter.Step(new RequestVote(2, 1, 2, 0, 0, false)).ShouldHaveSingleItem().ShouldBeOfType<RequestVoteResponse>().Granted.ShouldBeTrue();

        TicksUntilCampaign(voter).ShouldBe(undisturbed);
    }

    // Thesis §9.6: a pre-vote binds nothing — no vote is recorded and the timer keeps running.
    [Fact]
    public void GrantingAPreVote_RecordsNothing_AndLeavesTheTimerRunning()
    {
        var undisturbed = TicksUntilCampaign(Voter());

        var voter = Voter();
        voter.Tick(5);
        var answer = voter.Step(new RequestVote(2, 1, 3, 0, 0, true)).ShouldHaveSingleItem().ShouldBeOfType<RequestVoteResponse>();
        (answer.Granted, answer.Term, answer.PreVote).ShouldBe((true, 3UL, true));
        (voter.Node.Term, voter.Node.Vote).ShouldBe((2UL, 0UL));

        TicksUntilCampaign(voter).ShouldBe(undisturbed - 5);
    }

    // Thesis §9.6: a pre-vote for a later term is granted even by a node that voted in its current term (its vote
    // binds only that term); one for the current term is judged like a vote.
    [Fact]
    public void PreVote_ForALaterTerm_IsGrantedDespiteAVoteInTheCurrentTerm()
    {
        var voter = Voter();
        voter.Step(new RequestVote(2, 1, 2, 0, 0, false)).ShouldHaveSingleItem().ShouldBeOfType<RequestVoteResponse>().Granted.ShouldBeTrue();

        voter.Step(new RequestVote(3, 1, 3, 0, 0, true)).ShouldHaveSingleItem().ShouldBeOfType<RequestVoteResponse>().Granted.ShouldBeTrue();
        voter.Step(new RequestVote(3, 1, 2, 0, 0, true)).ShouldHaveSingleItem().ShouldBeOfType<RequestVoteResponse>().Granted.ShouldBeFalse();
        voter.Node.Vote.ShouldBe(2UL);
    }

    // §5.4.1 holds for pre-votes too: a pre-candidate with a stale log is refused.
    [Fact]
    public void PreVote_ForACandidateWithAStaleLog_IsRefused()
    {
        var voter = new TestNode(1, Three, TestNode.StorageWith(term: 2, commit: 0, 1, 2));
        var answer = voter.Step(new RequestVote(2, 1, 3, 5, 1, true)).ShouldHaveSingleItem().ShouldBeOfType<RequestVoteResponse>();
        (answer.Granted, answer.Term, answer.PreVote).ShouldBe((false, 2UL, true));
    }

    // §5.2: a candidate that loses goes back to follower in the same term and keeps its vote for itself, so it cannot
    // vote for another candidate of that term.
    [Fact]
    public void LosingCandidate_KeepsItsVoteForTheTerm()
    {
        var candidate = new TestNode(1, Three, TestNode.StorageWith(term: 2, commit: 0), o => o.PreVote = false);
        candidate.Tick(2 * TestNode.ElectionTicks);
        candidate.Node.Role.ShouldBe(Role.Candidate);
        var term = candidate.Node.Term;

        candidate.Step(new RequestVoteResponse(2, 1, term, false, false));
        candidate.Step(new RequestVoteResponse(3, 1, term, false, false));

        (candidate.Node.Role, candidate.Node.Term, candidate.Node.Vote).ShouldBe((Role.Follower, term, 1UL));
        candidate.Step(new RequestVote(2, 1, term, 9, 9, false)).ShouldHaveSingleItem().ShouldBeOfType<RequestVoteResponse>().Granted.ShouldBeFalse();
    }

    // Thesis §9.6: a pre-candidate refused by a majority gives up without having changed its term.
    [Fact]
    public void PreCandidate_RefusedByAMajority_ReturnsToFollowerInItsTerm()
    {
        var node = new TestNode(1, Three, TestNode.StorageWith(term: 2, commit: 0));
        node.Tick(2 * TestNode.ElectionTicks);
        node.Node.Role.ShouldBe(Role.PreCandidate);

        // Voters in the same term refuse with that term (2); one refusal is not yet a majority of three.
        node.Step(new RequestVoteResponse(2, 1, 2, false, true));
        node.Node.Role.ShouldBe(Role.PreCandidate);
        node.Step(new RequestVoteResponse(3, 1, 2, false, true));

        (node.Node.Role, node.Node.Term, node.Node.Vote, node.Node.Leader).ShouldBe((Role.Follower, 2UL, 0UL, 0UL));
    }

    // Answers to the other phase (a real vote while pre-voting, or a pre-vote while campaigning) are leftovers of an
    // earlier campaign and are not counted.
    [Fact]
    public void VoteAnswers_OfTheOtherPhase_AreNotCounted()
    {
        var preCandidate = new TestNode(1, Five, TestNode.StorageWith(term: 2, commit: 0));
        preCandidate.Tick(2 * TestNode.ElectionTicks);
        preCandidate.Node.Role.ShouldBe(Role.PreCandidate);
        foreach (ulong peer in new ulong[] { 2, 3, 4 }) preCandidate.Step(new RequestVoteResponse(peer, 1, 2, true, false));
        preCandidate.Node.Role.ShouldBe(Role.PreCandidate);

        var candidate = new TestNode(1, Five, TestNode.StorageWith(term: 2, commit: 0), o => o.PreVote = false);
        candidate.Tick(2 * TestNode.ElectionTicks);
        candidate.Node.Role.ShouldBe(Role.Candidate);
        foreach (ulong peer in new ulong[] { 2, 3, 4 }) candidate.Step(new RequestVoteResponse(peer, 1, 3, true, true));
        candidate.Node.Role.ShouldBe(Role.Candidate);
    }

    // §5.2: a candidate that hears from the leader of its term (by heartbeat or snapshot too) becomes its follower.
    [Fact]
    public void Candidate_HearingAHeartbeatOrSnapshotOfItsTerm_FollowsThatLeader()
    {
        var viaHeartbeat = new TestNode(1, Three, TestNode.StorageWith(term: 2, commit: 0, 2), o => o.PreVote = false);
        viaHeartbeat.Tick(2 * TestNode.ElectionTicks);
        var term = viaHeartbeat.Node.Term;
        var answer = viaHeartbeat.Step(new Heartbeat(3, 1, term, 1, 0)).ShouldHaveSingleItem().ShouldBeOfType<HeartbeatResponse>();
        answer.To.ShouldBe(3UL);
        (viaHeartbeat.Node.Role, viaHeartbeat.Node.Leader, viaHeartbeat.Node.CommitIndex).ShouldBe((Role.Follower, 3UL, 1UL));

        var viaSnapshot = new TestNode(1, Three, TestNode.StorageWith(term: 2, commit: 0, 2), o => o.PreVote = false);
        viaSnapshot.Tick(2 * TestNode.ElectionTicks);
        viaSnapshot.Step(new InstallSnapshot(3, 1, term, new SnapshotMetadata(6, 3)));
        (viaSnapshot.Node.Role, viaSnapshot.Node.Leader, viaSnapshot.Node.CommitIndex).ShouldBe((Role.Follower, 3UL, 6UL));
        viaSnapshot.Readies.Select(r => r.Snapshot).ShouldContain(new SnapshotMetadata(6, 3));
    }
}

namespace RaftMQ.Raft.Tests;

/// <summary>Leadership transfer (thesis §3.10): TimeoutNow, proposals refused meanwhile, abandoned after a timeout.</summary>
public sealed class LeadershipTransferTests
{
    private static readonly ulong[] Three = [1, 2, 3];

    private static TestCluster ThreeWithLeader1()
    {
        var c = new TestCluster(Three);
        c.Elect(1);
        c.Deliver();
        return c;
    }

    [Fact]
    public void Transfer_ToANamedVoter_MakesItLeaderInTheNextTerm()
    {
        var c = ThreeWithLeader1();
        var term = c.Node(1).Term;
        c.Propose(1).IsAccepted.ShouldBeTrue();

        var r = c.Change(1, n => n.TransferLeadership(3));

        r.IsAccepted.ShouldBeTrue(r.Message);
        c.Node(3).Role.ShouldBe(Role.Leader);
        c.Node(3).Term.ShouldBe(term + 1);
        c.Node(1).Role.ShouldBe(Role.Follower);
        c.Node(1).Leader.ShouldBe(3UL);
        c.Node(1).LeadTransferee.ShouldBe(0UL);
    }

    [Fact]
    public void Transfer_BringsALaggingTarget_UpToDateFirst_AndProposalsAreRefusedMeanwhile()
    {
        var c = ThreeWithLeader1();
        c.Isolate(3);
        for (byte i = 0; i < 3; i++) c.Propose(1, i).IsAccepted.ShouldBeTrue();
        var leader = c.Node(1);

        var r = leader.TransferLeadership(3);

        r.IsAccepted.ShouldBeTrue();
        leader.LeadTransferee.ShouldBe(3UL);
        var refused = leader.Propose(new byte[] { 1 });
        refused.Status.ShouldBe(ProposeStatus.Transferring);
        leader.AddLearner(4).Status.ShouldBe(MembershipStatus.Transferring);
        leader.TransferLeadership(2).Status.ShouldBe(MembershipStatus.Transferring);
        // TimeoutNow goes out only once the target holds the whole log.
        c[1].Flush().ShouldNotContain(m => m is TimeoutNow);

        c.Heal(3);
        c.Tick();

        c.Node(3).Role.ShouldBe(Role.Leader);
        c.Node(3).LastIndex.ShouldBeGreaterThanOrEqualTo(leader.CommitIndex);
    }

    [Fact]
    public void Transfer_WithNoTarget_PicksTheMostUpToDateVoter()
    {
        var c = ThreeWithLeader1();
        c.Isolate(2);
        for (byte i = 0; i < 3; i++) c.Propose(1, i);
        c.Heal(2); // node 2 is behind until the next heartbeat; node 3 is up to date

        var r = c.Change(1, n => n.TransferLeadership());

        r.IsAccepted.ShouldBeTrue(r.Message);
        c.Node(3).Role.ShouldBe(Role.Leader);
    }

    [Fact]
    public void Transfer_IsAbandonedAfterAnElectionTimeout()
    {
        var c = ThreeWithLeader1();
        c.Isolate(3);
        var leader = c.Node(1);
        leader.TransferLeadership(3).IsAccepted.ShouldBeTrue();
        leader.Propose(new byte[] { 1 }).Status.ShouldBe(ProposeStatus.Transferring);

        c.Tick(TestNode.ElectionTicks);

        leader.Role.ShouldBe(Role.Leader);
        leader.LeadTransferee.ShouldBe(0UL);
        leader.Propose(new byte[] { 1 }).IsAccepted.ShouldBeTrue();
    }

    [Fact]
    public void Transfer_IsRefused_ForBadTargets_AndOnAFollower()
    {
        var c = ThreeWithLeader1();
        var leader = c.Node(1);

        leader.TransferLeadership(1).Status.ShouldBe(MembershipStatus.InvalidTarget);
        leader.TransferLeadership(9).Status.ShouldBe(MembershipStatus.UnknownMember);
        var onFollower = c.Node(2).TransferLeadership(3);
        onFollower.Status.ShouldBe(MembershipStatus.NotLeader);
        onFollower.LeaderHint.ShouldBe(1UL);

        var single = new TestCluster([1]);
        single.Node(1).TransferLeadership().Status.ShouldBe(MembershipStatus.InvalidTarget);
    }

    [Fact]
    public void AVoterHearingFromTheLeader_StillVotesInATransferElection()
    {
        // The leader lease (thesis §4.2.3) ignores vote requests while a leader is heard from, except a transfer's.
        var follower = new TestNode(2, Three);
        follower.Step(new Heartbeat(1, 2, 1, 0, 0));

        follower.Step(new RequestVote(3, 2, 2, 0, 0, false)).ShouldBeEmpty();
        var answer = follower.Step(new RequestVote(3, 2, 2, 0, 0, false, LeadershipTransfer: true));

        answer.ShouldHaveSingleItem().ShouldBeOfType<RequestVoteResponse>().Granted.ShouldBeTrue();
    }

    [Fact]
    public void TimeoutNow_MakesAVoterCampaignAtOnce_WithoutAPreVote()
    {
        var follower = new TestNode(2, Three);
        follower.Step(new Heartbeat(1, 2, 1, 0, 0));

        var sent = follower.Step(new TimeoutNow(1, 2, 1));

        follower.Node.Role.ShouldBe(Role.Candidate);
        follower.Node.Term.ShouldBe(2UL);
        sent.OfType<RequestVote>().ShouldAllBe(rv => !rv.PreVote && rv.LeadershipTransfer);
        sent.OfType<RequestVote>().Count().ShouldBe(2);
    }
}

using RaftMQ.Raft.Quorum;

namespace RaftMQ.Raft.Tests;

/// <summary>The leader's and candidate's bookkeeping of their peers, counted by the configuration's majorities.</summary>
public sealed class ProgressTrackerTests
{
    private static ProgressTracker Tracker(params ulong[] voters) => new(1, new JointConfig(voters), maxInflight: 4);

    [Fact]
    public void Constructor_RequiresThisNodeToBeAVoter()
    {
        Should.Throw<ArgumentException>(() => new ProgressTracker(4, new JointConfig([1, 2, 3]), 4));
    }

    [Fact]
    public void Voters_AreTheConfigurationsIds()
    {
        var tracker = Tracker(3, 1, 2);

        tracker.Voters.ShouldBe([1UL, 2UL, 3UL]);
        tracker.IsVoter(2).ShouldBeTrue();
        tracker.IsVoter(4).ShouldBeFalse();
    }

    [Fact]
    public void SelfIsQuorum_OnlyInAClusterOfOne()
    {
        Tracker(1).SelfIsQuorum.ShouldBeTrue();
        Tracker(1, 2).SelfIsQuorum.ShouldBeFalse();
        Tracker(1, 2, 3).SelfIsQuorum.ShouldBeFalse();
    }

    [Fact]
    public void ResetProgress_ProbesEveryVoterFromNext()
    {
        var tracker = Tracker(1, 2, 3);
        tracker.TryGetProgress(2, out _).ShouldBeFalse(); // not leading yet

        tracker.ResetProgress(next: 8);

        foreach (var id in tracker.Voters) tracker[id].ToString().ShouldBe("Probe match=0 next=8 inflight=0");
        tracker.TryGetProgress(4, out _).ShouldBeFalse();
        tracker.ClearProgress();
        tracker.TryGetProgress(2, out _).ShouldBeFalse();
    }

    [Fact]
    public void Committed_FollowsTheMajorityOfMatchIndexes()
    {
        var tracker = Tracker(1, 2, 3, 4);
        tracker.ResetProgress(next: 1);
        tracker[1].MaybeUpdate(5);
        tracker[2].MaybeUpdate(5);
        tracker.Committed().ShouldBe(0UL); // 2 of 4 is not a majority

        tracker[3].MaybeUpdate(3);
        tracker.Committed().ShouldBe(3UL);

        tracker[4].MaybeUpdate(9);
        tracker.Committed().ShouldBe(5UL);
    }

    [Fact]
    public void QuorumActive_CountsTheLeader_AndForgetsFollowersOnReset()
    {
        var tracker = Tracker(1, 2, 3);
        tracker.ResetProgress(next: 1);
        tracker.QuorumActive().ShouldBeFalse();

        tracker[3].RecentActive = true;
        tracker.QuorumActive().ShouldBeTrue();

        tracker.ResetRecentActive();
        tracker[3].RecentActive.ShouldBeFalse();
        tracker.QuorumActive().ShouldBeFalse();
    }

    [Fact]
    public void Votes_FirstAnswerCounts_AndResetForgetsThem()
    {
        var tracker = Tracker(1, 2, 3);
        tracker.RecordVote(1, true);
        tracker.TallyVotes().ShouldBe(VoteResult.Pending);

        tracker.RecordVote(2, false);
        tracker.RecordVote(2, true); // a duplicate answer does not change the vote
        tracker.TallyVotes().ShouldBe(VoteResult.Pending);

        tracker.RecordVote(3, false);
        tracker.TallyVotes().ShouldBe(VoteResult.Lost);

        tracker.ResetVotes();
        tracker.RecordVote(1, true);
        tracker.RecordVote(3, true);
        tracker.TallyVotes().ShouldBe(VoteResult.Won);
    }

    [Fact]
    public void ReadRounds_AreConfirmedByAQuorumIncludingTheLeader()
    {
        var tracker = Tracker(1, 2, 3, 4, 5);
        tracker.ResetProgress(next: 1);
        var round = tracker.StartReadRound();
        round.ShouldBe(1UL);
        tracker.ConfirmedReadRound().ShouldBe(0UL);

        tracker.RecordReadRoundAck(2, round).ShouldBeTrue();
        tracker.RecordReadRoundAck(2, round).ShouldBeFalse(); // old news
        tracker.ConfirmedReadRound().ShouldBe(0UL); // leader and 2: two of five

        tracker.RecordReadRoundAck(4, round).ShouldBeTrue();
        tracker.ConfirmedReadRound().ShouldBe(1UL);

        // A later round needs its own quorum; the earlier confirmation stands.
        var next = tracker.StartReadRound();
        tracker.RecordReadRoundAck(3, next).ShouldBeTrue();
        tracker.ConfirmedReadRound().ShouldBe(1UL);
        tracker.RecordReadRoundAck(5, next).ShouldBeTrue();
        tracker.ConfirmedReadRound().ShouldBe(2UL);
    }

    [Fact]
    public void ReadRound_KeepsGrowingAcrossLeaderships()
    {
        var tracker = Tracker(1, 2, 3);
        tracker.ResetProgress(next: 1);
        tracker.StartReadRound();
        tracker.ClearProgress();

        tracker.ResetProgress(next: 5);
        tracker.StartReadRound().ShouldBe(2UL);
        tracker[2].ReadRoundAck.ShouldBe(0UL);
    }
}

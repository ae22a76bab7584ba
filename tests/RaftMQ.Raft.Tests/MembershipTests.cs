namespace RaftMQ.Raft.Tests;

/// <summary>Single-server membership changes through the log (thesis §4.1–§4.4) and learners.</summary>
public sealed class MembershipTests
{
    private static readonly ulong[] Three = [1, 2, 3];

    private static TestCluster ThreeWithLeader1(ulong[]? joiners = null)
    {
        var c = new TestCluster(Three, joiners);
        c.Elect(1);
        c.Deliver();
        return c;
    }

    private static void ShouldHaveConfiguration(RaftNode node, ulong[] voters, ulong[]? learners = null)
    {
        node.Voters.ShouldBe(voters);
        node.Learners.ShouldBe(learners ?? []);
    }

    [Fact]
    public void Learner_CatchesUp_IsPromoted_AndThenCountsInAFourVoterQuorum()
    {
        var c = ThreeWithLeader1(joiners: [4]);
        for (byte i = 0; i < 5; i++) c.Propose(1, i).IsAccepted.ShouldBeTrue();

        var add = c.Change(1, n => n.AddLearner(4));

        add.IsAccepted.ShouldBeTrue(add.Message);
        var leader = c.Node(1);
        leader.CommitIndex.ShouldBeGreaterThanOrEqualTo(add.Index);
        foreach (var id in new ulong[] { 1, 2, 3, 4 }) ShouldHaveConfiguration(c.Node(id), Three, [4]);
        c.Node(4).LastIndex.ShouldBe(leader.LastIndex); // caught up
        c[4].Applied.Select(e => e.Index).ShouldBe(c[1].Applied.Select(e => e.Index));

        var promote = c.Change(1, n => n.PromoteLearner(4));

        promote.IsAccepted.ShouldBeTrue(promote.Message);
        leader.CommitIndex.ShouldBeGreaterThanOrEqualTo(promote.Index);
        foreach (var id in new ulong[] { 1, 2, 3, 4 }) ShouldHaveConfiguration(c.Node(id), [1, 2, 3, 4]);

        // Four voters: a quorum is three. The leader and one follower are not enough...
        c.Isolate(3);
        c.Isolate(4);
        var p = c.Propose(1);
        leader.CommitIndex.ShouldBeLessThan(p.Index);
        // ... the leader and two followers are, and the new voter is one of them.
        c.Heal(4);
        c.Tick();
        leader.CommitIndex.ShouldBeGreaterThanOrEqualTo(p.Index);
    }

    [Fact]
    public void PromoteLearner_IsRefused_UntilTheLearnerHasCaughtUp()
    {
        var c = new TestCluster(Three, joiners: [4], configure: o => o.MaxPromotionLagEntries = 2);
        c.Elect(1);
        c.Isolate(4);
        c.Change(1, n => n.AddLearner(4)).IsAccepted.ShouldBeTrue();
        for (byte i = 0; i < 5; i++) c.Propose(1, i);

        var refused = c.Change(1, n => n.PromoteLearner(4));

        refused.Status.ShouldBe(MembershipStatus.NotCaughtUp);
        refused.Message.ShouldContain("learner 4 holds the log up to index 0");
        c.Heal(4);
        c.Tick(2);
        c.Change(1, n => n.PromoteLearner(4)).IsAccepted.ShouldBeTrue();
    }

    [Fact]
    public void Learner_NeverCampaigns_AndIsNeverAskedToVote()
    {
        var c = ThreeWithLeader1(joiners: [4]);
        c.Change(1, n => n.AddLearner(4)).IsAccepted.ShouldBeTrue();
        c.Isolate(1); // no leader any more: the voters campaign, the learner must not

        var learner = c[4];
        var sent = new List<RaftMessage>();
        for (var i = 0; i < 10 * TestNode.ElectionTicks; i++)
        {
            learner.Node.Tick();
            sent.AddRange(learner.Flush());
        }
        sent.ShouldBeEmpty();
        learner.Node.Role.ShouldBe(Role.Follower);
        learner.Node.Term.ShouldBe(c.Node(1).Term);

        var candidate = c[2];
        var requests = candidate.Tick(3 * TestNode.ElectionTicks).OfType<RequestVote>().ToList();
        requests.ShouldNotBeEmpty();
        requests.ShouldAllBe(rv => rv.To == 1 || rv.To == 3);
    }

    [Fact]
    public void ALearnersGrantedVote_DoesNotCount()
    {
        // Node 1's log holds a configuration with voters 1, 2, 3 and learner 4.
        var storage = new MemoryLogStorage();
        storage.Append([new Entry(1, 1, EntryType.Configuration, new ClusterConfiguration(Three, [4]).Encode())]);
        storage.SetHardState(new HardState(1, 0, 1));
        var node = new TestNode(1, Three, storage, o => o.PreVote = false);
        node.Node.Learners.ShouldBe([4UL]);
        var requests = node.Tick(3 * TestNode.ElectionTicks).OfType<RequestVote>().ToList();
        node.Node.Role.ShouldBe(Role.Candidate);
        requests.Select(r => r.To).Distinct().Order().ShouldBe([2UL, 3UL]);

        node.Step(new RequestVoteResponse(4, 1, node.Node.Term, true, false));

        node.Node.Role.ShouldBe(Role.Candidate);
        node.Step(new RequestVoteResponse(2, 1, node.Node.Term, true, false));
        node.Node.Role.ShouldBe(Role.Leader);
    }

    [Fact]
    public void RemovingAFollower_TakesItOutOfEveryQuorum()
    {
        var c = ThreeWithLeader1();

        var r = c.Change(1, n => n.RemoveMember(3));

        r.IsAccepted.ShouldBeTrue(r.Message);
        c.Node(1).CommitIndex.ShouldBeGreaterThanOrEqualTo(r.Index);
        ShouldHaveConfiguration(c.Node(1), [1, 2]);
        ShouldHaveConfiguration(c.Node(2), [1, 2]);
        // The leader sends node 3 nothing more, and node 3's answers no longer count: without node 2 nothing commits.
        c.Isolate(2);
        var sent = c[1].Tick(3);
        sent.ShouldNotContain(m => m.To == 3);
        var p = c.Node(1).Propose(new byte[] { 1 });
        c[1].Flush().ShouldNotContain(m => m.To == 3);
        c[1].Step(new AppendEntriesResponse(3, 1, c.Node(1).Term, false, p.Index, 0, 0));
        c.Node(1).CommitIndex.ShouldBeLessThan(p.Index);
        c.Heal(2);
        c.Tick();
        c.Node(1).CommitIndex.ShouldBeGreaterThanOrEqualTo(p.Index);
    }

    [Fact]
    public void RemovedNode_NeverCampaigns()
    {
        var c = ThreeWithLeader1();
        c.Change(1, n => n.RemoveMember(3)).IsAccepted.ShouldBeTrue();
        c.Tick(); // node 3 learns the commit
        c.Node(3).Voters.ShouldBe([1UL, 2UL]);
        c.Isolate(3);

        var sent = c[3].Tick(10 * TestNode.ElectionTicks);

        sent.ShouldBeEmpty();
        c.Node(3).Role.ShouldBe(Role.Follower);
    }

    [Fact]
    public void A_new_leader_keeps_a_member_that_an_uncommitted_change_removes_informed_until_the_change_commits()
    {
        // Neither pre-vote nor check-quorum: nothing else keeps a removed member that hears nothing from campaigning.
        var c = new TestCluster([1, 2, 3, 4, 5], configure: o =>
        {
            o.PreVote = false;
            o.CheckQuorum = false;
        });
        c.Elect(1);
        c.Deliver();
        c.Isolate(4);
        c.Isolate(5);
        var removal = c.Change(1, n => n.RemoveMember(2));
        removal.IsAccepted.ShouldBeTrue(removal.Message);
        c.Node(3).ConfigurationIndex.ShouldBe(removal.Index);
        c.Node(2).ConfigurationIndex.ShouldBe(removal.Index);
        c.Node(3).CommitIndex.ShouldBeLessThan(removal.Index); // 1 and 3 are two of the new four voters

        // Leader 1 is lost; node 3 wins (4 and 5 grant it, then are cut off again) with the change still uncommitted.
        c.Isolate(1);
        var first = c[3].Elect();
        var term = c.Node(3).Term;
        first.OfType<AppendEntries>().Select(m => m.To).ShouldContain(2UL);
        c.Send(first);
        c.Tick(10 * TestNode.ElectionTicks);

        // Node 2 still counts itself a voter (its removal is not known committed) but hears the leader: it stays quiet.
        c.Node(2).Role.ShouldBe(Role.Follower);
        c.Node(2).Term.ShouldBe(term);
        c.Node(2).Leader.ShouldBe(3UL);
        c.Node(3).Role.ShouldBe(Role.Leader);
        c.Node(3).Term.ShouldBe(term);

        // Once the change commits, node 2 learns it (4 and 5 campaigned while cut off, so the leader may have changed
        // meanwhile), the leader stops sending to it, and node 2 never campaigns.
        c.Heal(4);
        c.Heal(5);
        c.Tick(4 * TestNode.ElectionTicks);
        var leader = c.Leader.ShouldNotBeNull();
        leader.Node.CommitIndex.ShouldBeGreaterThanOrEqualTo(removal.Index);
        c.Node(2).CommitIndex.ShouldBeGreaterThanOrEqualTo(removal.Index);
        leader.Tick(2 * TestNode.ElectionTicks).Where(m => m.To == 2).ShouldBeEmpty();
        c.Isolate(2);
        c[2].Tick(10 * TestNode.ElectionTicks).ShouldBeEmpty();
    }

    [Fact]
    public void A_follower_holding_the_leaders_removal_of_itself_answers_its_heartbeats_after_it_stopped_following_it()
    {
        var c = ThreeWithLeader1();
        c.Isolate(2);
        var removal = c.Change(1, n => n.RemoveMember(1));
        removal.IsAccepted.ShouldBeTrue(removal.Message);
        ShouldHaveConfiguration(c.Node(3), [2, 3]); // node 3 holds the change; without node 2 it cannot commit
        c.Node(1).CommitIndex.ShouldBeLessThan(removal.Index);

        // Node 3, cut off for an election timeout, asks for pre-votes in vain and no longer knows a leader.
        c.Isolate(3);
        for (var i = 0; i < 4 * TestNode.ElectionTicks && c.Node(3).Role != Role.PreCandidate; i++) c[3].Tick();
        c.Node(3).Role.ShouldBe(Role.PreCandidate);
        c.Node(3).Leader.ShouldBe(0UL);

        // Node 1 is not in node 3's configuration, but leads node 3's term: its heartbeat is answered and followed,
        // so node 1 learns what node 3 lacks (here nothing) and can finish the change.
        var answer = c[3].Step(new Heartbeat(1, 3, c.Node(3).Term, c.Node(1).CommitIndex, 0));
        answer.OfType<HeartbeatResponse>().ShouldHaveSingleItem().To.ShouldBe(1UL);
        c.Node(3).Role.ShouldBe(Role.Follower);
        c.Node(3).Leader.ShouldBe(1UL);

        // A heartbeat of a later term from outside the configuration still moves nothing.
        var term = c.Node(3).Term;
        c[3].Step(new Heartbeat(1, 3, term + 1, 0, 0)).ShouldBeEmpty();
        c.Node(3).Term.ShouldBe(term);

        c.HealAll();
        c.Tick(4 * TestNode.ElectionTicks);
        var leader = c.Leader.ShouldNotBeNull();
        leader.Node.Id.ShouldBeOneOf(2UL, 3UL);
        leader.Node.CommitIndex.ShouldBeGreaterThanOrEqualTo(removal.Index);
        c.Node(1).Role.ShouldBe(Role.Follower);
    }

    [Fact]
    public void RemovingTheLeader_ItLeadsUntilTheChangeCommits_ThenHandsOverAndNeverCampaigns()
    {
        var c = ThreeWithLeader1();
        var term = c.Node(1).Term;
        c.Isolate(2);
        c.Isolate(3);

        var r = c.Change(1, n => n.RemoveMember(1));

        r.IsAccepted.ShouldBeTrue(r.Message);
        ShouldHaveConfiguration(c.Node(1), [2, 3]);
        c.Node(1).Role.ShouldBe(Role.Leader); // not committed yet: still leading, no longer counting itself
        c.Heal(2);
        c.Heal(3);
        c.Tick();

        c.Node(1).Role.ShouldBe(Role.Follower);
        var leader = c.Leader.ShouldNotBeNull();
        leader.Node.Id.ShouldBeOneOf(2UL, 3UL);
        leader.Node.Term.ShouldBe(term + 1); // took over at once (TimeoutNow), no election timeout wasted
        c.Tick(10 * TestNode.ElectionTicks);
        c.Node(1).Role.ShouldBe(Role.Follower);
        c.Leader!.Node.Id.ShouldBe(leader.Node.Id);
        var p = c.Propose(leader.Node.Id);
        p.IsAccepted.ShouldBeTrue();
        c.Tick();
        leader.Node.CommitIndex.ShouldBeGreaterThanOrEqualTo(p.Index);
    }

    [Fact]
    public void ALeaderThatRemovedItself_AndLostLeadershipBeforeTheChangeCommitted_FinishesTheChange()
    {
        var c = ThreeWithLeader1();
        c.Change(1, n => n.RemoveMember(2)).IsAccepted.ShouldBeTrue();
        c.Tick();
        c.Change(1, n => n.TransferLeadership(3)).IsAccepted.ShouldBeTrue();
        c.Node(3).Role.ShouldBe(Role.Leader);
        c.Tick();
        ShouldHaveConfiguration(c.Node(3), [1, 3]);

        // Leader 3 removes itself while the only other voter is cut off, then steps down (check-quorum). Only node 3
        // holds the change, and node 1, the one voter left, lacks it.
        c.Isolate(1);
        c.Change(3, n => n.RemoveMember(3)).IsAccepted.ShouldBeTrue();
        c.Tick(2 * TestNode.ElectionTicks);
        c.Node(3).Role.ShouldNotBe(Role.Leader);
        ShouldHaveConfiguration(c.Node(3), [1]);
        ShouldHaveConfiguration(c.Node(1), [1, 3]);

        // Node 1 cannot win without node 3, whose log is more up to date; node 3 campaigns to finish the change.
        c.Heal(1);
        c.Tick(10 * TestNode.ElectionTicks);

        var leader = c.Leader.ShouldNotBeNull();
        leader.Node.Id.ShouldBe(1UL);
        ShouldHaveConfiguration(c.Node(1), [1]);
        c.Node(1).CommitIndex.ShouldBeGreaterThanOrEqualTo(c.Node(1).ConfigurationIndex);
        c.Node(3).Role.ShouldBe(Role.Follower);
    }

    [Fact]
    public void Changes_AreRefused_WithAClearReason()
    {
        var c = ThreeWithLeader1();
        var leader = c.Node(1);

        var onFollower = c.Node(2).AddLearner(4);
        onFollower.Status.ShouldBe(MembershipStatus.NotLeader);
        onFollower.LeaderHint.ShouldBe(1UL);
        onFollower.Message.ShouldContain("node 1 is");

        leader.AddLearner(0).Status.ShouldBe(MembershipStatus.InvalidId);
        leader.AddLearner(2).Status.ShouldBe(MembershipStatus.AlreadyMember);
        leader.AddVoter(3).Status.ShouldBe(MembershipStatus.AlreadyMember);
        leader.RemoveMember(9).Status.ShouldBe(MembershipStatus.UnknownMember);
        leader.PromoteLearner(9).Status.ShouldBe(MembershipStatus.UnknownMember);
        leader.PromoteLearner(2).Status.ShouldBe(MembershipStatus.NotLearner);

        // One change in flight.
        c.Isolate(2);
        c.Isolate(3);
        leader.AddLearner(4).IsAccepted.ShouldBeTrue();
        var inFlight = leader.RemoveMember(3);
        inFlight.Status.ShouldBe(MembershipStatus.ChangeInProgress);
        inFlight.Message.ShouldContain("not committed yet");
        c.HealAll();
        c.Tick();
        leader.RemoveMember(3).IsAccepted.ShouldBeTrue();
    }

    [Fact]
    public void RemovingTheLastVoter_IsRefused()
    {
        var c = new TestCluster([1]);
        c.Node(1).Role.ShouldBe(Role.Leader);
        c.Deliver();

        var r = c.Node(1).RemoveMember(1);

        r.Status.ShouldBe(MembershipStatus.LastVoter);
        r.Message.ShouldContain("last voter");
    }

    [Fact]
    public void ANewLeader_RefusesAChange_UntilAnEntryOfItsTermCommits()
    {
        var c = new TestCluster(Three);
        c.Isolate(2);
        c.Isolate(3);
        var candidate = c[1];
        // Grant the votes by hand, then hold back the no-op's acknowledgements.
        candidate.Elect();
        candidate.Node.Role.ShouldBe(Role.Leader);

        var r = candidate.Node.AddLearner(4);

        r.Status.ShouldBe(MembershipStatus.NotCommittedInTerm);
        r.Message.ShouldContain("has not committed an entry of its term");
    }

    [Fact]
    public void AConfigurationFromAnUncommittedEntry_IsRevertedWhenTheEntryIsTruncated()
    {
        var node = new TestNode(2, Three);
        var withLearner = new ClusterConfiguration(Three, [4]);
        // Leader 1 of term 1 sends a no-op and a configuration entry, committing only the no-op.
        node.Step(new AppendEntries(1, 2, 1, 0, 0,
            [new Entry(1, 1, EntryType.NoOp, default), new Entry(2, 1, EntryType.Configuration, withLearner.Encode())], 1));
        node.Node.Learners.ShouldBe([4UL]); // used as soon as appended (thesis §4.1)
        node.Node.ConfigurationIndex.ShouldBe(2UL);

        // Leader 3 of term 2 overwrites index 2.
        node.Step(new AppendEntries(3, 2, 2, 1, 1, [new Entry(2, 2, EntryType.NoOp, default)], 1));

        node.Node.Learners.ShouldBeEmpty();
        node.Node.Voters.ShouldBe(Three);
        node.Node.ConfigurationIndex.ShouldBe(0UL);
    }

    [Fact]
    public void AMalformedConfigurationEntry_IsNotAppended()
    {
        var node = new TestNode(2, Three);

        var sent = node.Step(new AppendEntries(1, 2, 1, 0, 0, [new Entry(1, 1, EntryType.Configuration, new byte[] { 9, 9 })], 0));

        sent.ShouldBeEmpty();
        node.Node.LastIndex.ShouldBe(0UL);
    }

    [Fact]
    public void TheConfiguration_SurvivesARestart_FromTheLog_AndFromASnapshotAfterCompaction()
    {
        var c = ThreeWithLeader1(joiners: [4]);
        c.Change(1, n => n.AddLearner(4)).IsAccepted.ShouldBeTrue();
        c.Change(1, n => n.RemoveMember(3)).IsAccepted.ShouldBeTrue();
        c.Tick();
        var expected = new ClusterConfiguration([1, 2], [4]);

        // From the configuration entries in the log.
        c.Restart(2, Three).Node.Configuration.ShouldBe(expected);

        // From the snapshot's metadata once the log is compacted past them.
        var leader = c.Node(1);
        var applied = leader.AppliedIndex;
        var snapshot = new SnapshotMetadata(applied, leader.Term) { Configuration = leader.ConfigurationAt(applied) };
        c[1].Storage.Compact(snapshot);
        c[1].Storage.FirstIndex.ShouldBeGreaterThan(leader.ConfigurationIndex);
        var restarted = c.Restart(1, Three);
        restarted.Node.Configuration.ShouldBe(expected);
        restarted.Node.ConfigurationIndex.ShouldBe(0UL);
    }

    [Fact]
    public void ANodeInstallingASnapshot_AdoptsItsConfiguration()
    {
        var c = ThreeWithLeader1(joiners: [4]);
        c.Change(1, n => n.RemoveMember(3)).IsAccepted.ShouldBeTrue();
        for (byte i = 0; i < 3; i++) c.Propose(1, i);
        var leader = c.Node(1);
        // The leader's log is compacted up to its applied index; its storage records no configuration, so the
        // leader supplies the one in force at the snapshot's index.
        c[1].Storage.Compact(new SnapshotMetadata(leader.AppliedIndex, leader.Term));

        c.Change(1, n => n.AddLearner(4)).IsAccepted.ShouldBeTrue();

        var learner = c[4];
        learner.Readies.ShouldContain(r => r.Snapshot != null);
        learner.Storage.Snapshot.Configuration.ShouldBe(new ClusterConfiguration([1, 2]));
        learner.Node.Configuration.ShouldBe(new ClusterConfiguration([1, 2], [4]));
        learner.Node.LastIndex.ShouldBe(leader.LastIndex);
        // And after a restart of the learner over what it stored.
        c.Restart(4, []).Node.Configuration.ShouldBe(new ClusterConfiguration([1, 2], [4]));
    }

    [Fact]
    public void AddVoter_AddsANewNodeDirectly_OrPromotesALearner()
    {
        var c = ThreeWithLeader1(joiners: [4, 5]);

        c.Change(1, n => n.AddVoter(4)).IsAccepted.ShouldBeTrue();
        c.Node(1).Voters.ShouldBe([1UL, 2UL, 3UL, 4UL]);
        c.Change(1, n => n.AddLearner(5)).IsAccepted.ShouldBeTrue();
        c.Change(1, n => n.AddVoter(5)).IsAccepted.ShouldBeTrue();

        ShouldHaveConfiguration(c.Node(5), [1, 2, 3, 4, 5]);
    }
}

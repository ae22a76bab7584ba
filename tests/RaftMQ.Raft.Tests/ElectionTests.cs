namespace RaftMQ.Raft.Tests;

/// <summary>Terms, elections and votes: Raft paper §5.1, §5.2, §5.4.1; thesis §4.2.3, §6.2, §9.6.</summary>
public sealed class ElectionTests
{
    private static readonly ulong[] Three = [1, 2, 3];
    private static readonly ulong[] Five = [1, 2, 3, 4, 5];

    private static void NoPreVote(RaftOptions o) => o.PreVote = false;

    // §5.1: "If a server receives a request with a stale term number ... if its current term is smaller than the
    // other server's, it updates its current term"; a leader or candidate that learns of a higher term reverts to follower.
    [Fact]
    public void HigherTermMessage_UpdatesTermAndRevertsToFollower()
    {
        var leader = new TestNode(1, Three);
        leader.ElectAndCommitNoOp();
        leader.Node.Term.ShouldBe(1UL);

        leader.Step(new AppendEntriesResponse(2, 1, 5, false, 0, 0, 0));

        leader.Node.Role.ShouldBe(Role.Follower);
        leader.Node.Term.ShouldBe(5UL);
        leader.Node.Vote.ShouldBe(0UL);
        leader.Node.Leader.ShouldBe(0UL);
        var ready = leader.Readies[^1];
        ready.HardState!.Value.Term.ShouldBe(5UL);
        ready.MustSync.ShouldBeTrue();

        var follower = new TestNode(3, Three);
        follower.Step(new Heartbeat(2, 3, 7, 0, 0));
        follower.Node.Term.ShouldBe(7UL);
        follower.Node.Role.ShouldBe(Role.Follower);
        follower.Node.Leader.ShouldBe(2UL);
    }

    // §5.1: "If a server receives a request with a stale term number, it rejects the request."
    [Fact]
    public void StaleTermMessages_AreRejectedOrIgnored()
    {
        var node = new TestNode(1, Three, TestNode.StorageWith(term: 3, commit: 0, 1, 3));

        var sent = node.Step(new AppendEntries(2, 1, 2, 2, 3, TestNode.Entries(3, 2), 2));
        var answer = sent.ShouldHaveSingleItem().ShouldBeOfType<AppendEntriesResponse>();
        answer.Term.ShouldBe(3UL); // tells the stale leader our term so it steps down
        node.Node.LastIndex.ShouldBe(2UL);
        node.Node.CommitIndex.ShouldBe(0UL);
        node.Node.Leader.ShouldBe(0UL);

        node.Step(new Heartbeat(2, 1, 2, 2, 0)).ShouldHaveSingleItem().Term.ShouldBe(3UL);
        node.Node.CommitIndex.ShouldBe(0UL);

        node.Step(new RequestVote(2, 1, 2, 9, 9, false)).ShouldBeEmpty();
        node.Node.Vote.ShouldBe(0UL);
        node.Node.Term.ShouldBe(3UL);

        // A candidate does not count a vote granted in an earlier term.
        var candidate = new TestNode(1, Three, TestNode.StorageWith(term: 4, commit: 0), NoPreVote);
        candidate.Tick(2 * TestNode.ElectionTicks);
        candidate.Node.Role.ShouldBe(Role.Candidate);
        var term = candidate.Node.Term;
        candidate.Step(new RequestVoteResponse(2, 1, term - 1, true, false));
        candidate.Node.Role.ShouldBe(Role.Candidate);
    }

    // §5.2: a follower that hears nothing for an election timeout increments its term, votes for itself and
    // issues RequestVote to every other server.
    [Fact]
    public void ElectionTimeout_FollowerBecomesCandidate()
    {
        var node = new TestNode(1, Three, TestNode.StorageWith(term: 2, commit: 1, 1, 2), NoPreVote);

        var sent = node.Tick(2 * TestNode.ElectionTicks);

        node.Node.Role.ShouldBe(Role.Candidate);
        node.Node.Term.ShouldBe(3UL);
        node.Node.Vote.ShouldBe(1UL);
        var requests = sent.OfType<RequestVote>().ToList();
        requests.Select(r => r.To).Order().ShouldBe([2UL, 3UL]);
        requests.ShouldAllBe(r => r.Term == 3 && r.LastLogIndex == 2 && r.LastLogTerm == 2 && !r.PreVote);
        var campaign = node.Readies.Single(r => r.Messages.OfType<RequestVote>().Any());
        campaign.HardState.ShouldBe(new HardState(3, 1, 1));
        campaign.MustSync.ShouldBeTrue();
    }

    // §5.2: "election timeouts are chosen randomly from a fixed interval" — here [T, 2T).
    [Fact]
    public void ElectionTimeout_IsRandomizedWithinTTo2T()
    {
        var timeouts = new HashSet<int>();
        for (ulong seed = 1; seed <= 100; seed++)
        {
            var node = new TestNode(1, Three, configure: o =>
            {
                o.PreVote = false;
                o.RandomSeed = seed;
            });
            int ticks = 0;
            while (node.Node.Role == Role.Follower)
            {
                ticks++;
                node.Tick();
                ticks.ShouldBeLessThan(2 * TestNode.ElectionTicks + 1);
            }
            ticks.ShouldBeInRange(TestNode.ElectionTicks, 2 * TestNode.ElectionTicks - 1);
            timeouts.Add(ticks);
        }
        timeouts.Count.ShouldBeGreaterThan(5);
    }

    // §5.2: "Each server will vote for at most one candidate in a given term, on a first-come-first-served basis."
    [Fact]
    public void OneVotePerTerm_FirstComeFirstServed()
    {
        var node = new TestNode(1, Three, TestNode.StorageWith(term: 1, commit: 0));

        node.Step(new RequestVote(2, 1, 2, 0, 0, false)).ShouldHaveSingleItem()
            .ShouldBeOfType<RequestVoteResponse>().Granted.ShouldBeTrue();
        node.Step(new RequestVote(3, 1, 2, 0, 0, false)).ShouldHaveSingleItem()
            .ShouldBeOfType<RequestVoteResponse>().Granted.ShouldBeFalse();
        // A repeated request (its answer may have been lost) is granted again.
        node.Step(new RequestVote(2, 1, 2, 0, 0, false)).ShouldHaveSingleItem()
            .ShouldBeOfType<RequestVoteResponse>().Granted.ShouldBeTrue();
        node.Node.Vote.ShouldBe(2UL);
        node.Storage.HardState.Vote.ShouldBe(2UL);
    }

    // Figure 2 ("Persistent state ... updated on stable storage before responding to RPCs"), §5.2.
    [Fact]
    public void Vote_IsPersistedBeforeTheResponseIsSent()
    {
        var node = new TestNode(1, Three, TestNode.StorageWith(term: 1, commit: 0));
        node.Node.Step(new RequestVote(2, 1, 2, 0, 0, false));

        var ready = node.Node.GetReady();

        ready.Messages.ShouldHaveSingleItem().ShouldBeOfType<RequestVoteResponse>().Granted.ShouldBeTrue();
        ready.HardState.ShouldBe(new HardState(2, 2, 0));
        ready.MustSync.ShouldBeTrue();
    }

    // §5.2: "A candidate wins an election if it receives votes from a majority of the servers in the full cluster."
    [Fact]
    public void Candidate_WinsWithVotesFromAMajority()
    {
        var node = new TestNode(1, Five, configure: NoPreVote);
        node.Tick(2 * TestNode.ElectionTicks);
        var term = node.Node.Term;

        node.Step(new RequestVoteResponse(2, 1, term, true, false));
        node.Step(new RequestVoteResponse(3, 1, term, false, false));
        node.Node.Role.ShouldBe(Role.Candidate); // 2 of 5
        node.Step(new RequestVoteResponse(3, 1, term, true, false)); // a second answer from 3 does not count
        node.Node.Role.ShouldBe(Role.Candidate);
        var sent = node.Step(new RequestVoteResponse(4, 1, term, true, false));

        node.Node.Role.ShouldBe(Role.Leader);
        node.Node.Leader.ShouldBe(1UL);
        sent.OfType<AppendEntries>().Select(m => m.To).Order().ShouldBe([2UL, 3UL, 4UL, 5UL]);
    }

    // §5.2: a candidate that cannot win (a majority rejected it) stops campaigning.
    [Fact]
    public void Candidate_RejectedByAMajority_ReturnsToFollower()
    {
        var node = new TestNode(1, Three, configure: NoPreVote);
        node.Tick(2 * TestNode.ElectionTicks);
        var term = node.Node.Term;

        node.Step(new RequestVoteResponse(2, 1, term, false, false));
        node.Node.Role.ShouldBe(Role.Candidate);
        node.Step(new RequestVoteResponse(3, 1, term, false, false));

        node.Node.Role.ShouldBe(Role.Follower);
        node.Node.Term.ShouldBe(term);
    }

    // §5.2: "If the leader's term is at least as large as the candidate's current term, then the candidate
    // recognizes the leader as legitimate and returns to follower state."
    [Fact]
    public void Candidate_ReceivingAppendEntriesOfItsTerm_BecomesFollower()
    {
        var node = new TestNode(1, Three, configure: NoPreVote);
        node.Tick(2 * TestNode.ElectionTicks);
        node.Node.Role.ShouldBe(Role.Candidate);
        var term = node.Node.Term;

        var sent = node.Step(new AppendEntries(3, 1, term, 0, 0, TestNode.Entries(1, term), 0));

        node.Node.Role.ShouldBe(Role.Follower);
        node.Node.Term.ShouldBe(term);
        node.Node.Leader.ShouldBe(3UL);
        var ack = sent.ShouldHaveSingleItem().ShouldBeOfType<AppendEntriesResponse>();
        ack.Reject.ShouldBeFalse();
        ack.Index.ShouldBe(1UL);
    }

    // §5.2: "If many followers become candidates at the same time ... each candidate will time out and start a
    // new election by incrementing its term."
    [Fact]
    public void Candidate_ElectionTimeout_StartsANewElection()
    {
        var node = new TestNode(1, Three, configure: NoPreVote);
        node.Tick(2 * TestNode.ElectionTicks);
        node.Node.Role.ShouldBe(Role.Candidate);
        var term = node.Node.Term;

        var sent = node.Tick(2 * TestNode.ElectionTicks);

        node.Node.Role.ShouldBe(Role.Candidate);
        node.Node.Term.ShouldBe(term + 1);
        sent.OfType<RequestVote>().ShouldContain(r => r.Term == term + 1 && r.To == 2);
    }

    // §5.4.1: "If the logs have last entries with different terms, then the log with the later term is more
    // up-to-date. If the logs end with the same term, then whichever log is longer is more up-to-date."
    [Theory]
    [InlineData(1UL, 3UL, true)]  // later last term, shorter log
    [InlineData(5UL, 1UL, false)] // earlier last term, longer log
    [InlineData(1UL, 2UL, false)] // same last term, shorter log
    [InlineData(2UL, 2UL, true)]  // same log
    [InlineData(3UL, 2UL, true)]  // same last term, longer log
    public void Vote_IsGrantedOnlyToACandidateWithAnUpToDateLog(ulong lastIndex, ulong lastTerm, bool granted)
    {
        var voter = new TestNode(1, Three, TestNode.StorageWith(term: 2, commit: 1, 1, 2));

        var answer = voter.Step(new RequestVote(2, 1, 3, lastIndex, lastTerm, false))
            .ShouldHaveSingleItem().ShouldBeOfType<RequestVoteResponse>();

        answer.Granted.ShouldBe(granted);
        voter.Node.Term.ShouldBe(3UL); // the term is adopted whatever the answer (§5.1)
        voter.Node.Vote.ShouldBe(granted ? 2UL : 0UL);
    }

    // Thesis §9.6: a pre-candidate asks whether it could win before incrementing its term; neither it nor its
    // voters change term or vote, so a node that cannot win disturbs nobody.
    [Fact]
    public void PreVote_DoesNotChangeTerms()
    {
        var node = new TestNode(1, Three, TestNode.StorageWith(term: 4, commit: 0));
        var voter = new TestNode(2, Three, TestNode.StorageWith(term: 4, commit: 0));

        var sent = node.Tick(2 * TestNode.ElectionTicks);

        node.Node.Role.ShouldBe(Role.PreCandidate);
        node.Node.Term.ShouldBe(4UL);
        node.Node.Vote.ShouldBe(0UL);
        node.Readies.ShouldAllBe(r => r.HardState == null);
        var request = sent.To<RequestVote>(2).ShouldHaveSingleItem();
        request.PreVote.ShouldBeTrue();
        request.Term.ShouldBe(5UL);

        var answer = voter.Step(request).ShouldHaveSingleItem().ShouldBeOfType<RequestVoteResponse>();
        answer.Granted.ShouldBeTrue();
        answer.PreVote.ShouldBeTrue();
        voter.Node.Term.ShouldBe(4UL);
        voter.Node.Vote.ShouldBe(0UL);
        voter.Readies.ShouldAllBe(r => r.HardState == null);

        // With a majority of pre-votes it runs the real election.
        var votes = node.Step(answer);
        node.Node.Role.ShouldBe(Role.Candidate);
        node.Node.Term.ShouldBe(5UL);
        votes.OfType<RequestVote>().ShouldAllBe(r => !r.PreVote && r.Term == 5);
    }

    // Thesis §4.2.3 (used with §9.6): a server that heard from a current leader within the minimum election
    // timeout ignores (pre-)vote requests, so a node coming back from a partition cannot depose a healthy leader.
    [Fact]
    public void NodeInLease_IgnoresVoteRequests()
    {
        var node = new TestNode(1, Three);
        node.Step(new Heartbeat(2, 1, 2, 0, 0));
        node.Node.Leader.ShouldBe(2UL);

        node.Step(new RequestVote(3, 1, 3, 5, 2, true)).ShouldBeEmpty();
        node.Step(new RequestVote(3, 1, 3, 5, 2, false)).ShouldBeEmpty();
        node.Node.Term.ShouldBe(2UL);
        node.Node.Vote.ShouldBe(0UL);

        // Once an election timeout passes without the leader, the request is heard.
        node.Tick(TestNode.ElectionTicks);
        var answer = node.Step(new RequestVote(3, 1, 3, 5, 2, false)).OfType<RequestVoteResponse>().ShouldHaveSingleItem();
        answer.Granted.ShouldBeTrue();
        node.Node.Term.ShouldBe(3UL);
    }

    // Thesis §6.2: "a leader steps down if an election timeout elapses without a successful round of heartbeats
    // to a majority of its cluster".
    [Fact]
    public void CheckQuorum_LeaderWithoutAQuorumStepsDown()
    {
        var node = new TestNode(1, Three);
        node.ElectAndCommitNoOp(); // both followers answered: active in the first round
        var term = node.Node.Term;
        node.Tick(TestNode.ElectionTicks);
        node.Node.Role.ShouldBe(Role.Leader);

        // Nothing heard for a whole round.
        node.Tick(TestNode.ElectionTicks - 1);
        node.Node.Role.ShouldBe(Role.Leader);
        node.Tick();

        node.Node.Role.ShouldBe(Role.Follower);
        node.Node.Term.ShouldBe(term);
        node.Node.Leader.ShouldBe(0UL);
    }

    [Fact]
    public void CheckQuorum_LeaderHearingFromAQuorumStays()
    {
        var node = new TestNode(1, Three);
        node.ElectAndCommitNoOp();

        for (int i = 0; i < 3 * TestNode.ElectionTicks; i++)
        {
            foreach (var hb in node.Tick().To<Heartbeat>(2)) node.Step(TestNode.AckOf(hb));
        }

        node.Node.Role.ShouldBe(Role.Leader);
    }

    // A message whose term or index no real cluster reaches (RaftLimits) is dropped: adopting term 2^64-1 would leave
    // the node unable to campaign (term + 1 overflows), so the cluster would stay leaderless.
    [Fact]
    public void TermOrIndexBeyondTheBound_IsIgnored_AndTheNodeStillElects()
    {
        var node = new TestNode(1, Three);

        node.Step(new Heartbeat(2, 1, ulong.MaxValue, 0, 0)).ShouldBeEmpty();
        node.Step(new AppendEntries(2, 1, ulong.MaxValue, 0, 0, TestNode.Entries(1, 1), 1)).ShouldBeEmpty();
        node.Step(new RequestVote(2, 1, RaftLimits.MaxTerm + 1, 0, 0, false)).ShouldBeEmpty();
        node.Step(new AppendEntries(2, 1, 1, ulong.MaxValue, 1, [], ulong.MaxValue)).ShouldBeEmpty();
        node.Node.Term.ShouldBe(0UL);
        node.Node.Leader.ShouldBe(0UL);
        node.Node.LastIndex.ShouldBe(0UL);

        node.ElectAndCommitNoOp();
        node.Node.Role.ShouldBe(Role.Leader);
        node.Node.Term.ShouldBe(1UL);
    }

    // The bound itself is a legal term: a node adopts it like any other.
    [Fact]
    public void TermAtTheBound_IsAdopted()
    {
        var node = new TestNode(1, Three);
        node.Step(new Heartbeat(2, 1, RaftLimits.MaxTerm, 0, 0));
        node.Node.Term.ShouldBe(RaftLimits.MaxTerm);
        node.Node.Leader.ShouldBe(2UL);
    }
}

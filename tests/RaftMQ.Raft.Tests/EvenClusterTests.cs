namespace RaftMQ.Raft.Tests;

/// <summary>
/// A cluster of four: a majority is three, not two. The node asks its <see cref="ProgressTracker"/> for every count
/// (commit, read confirmation, elections, check-quorum); these check the answers reach the node.
/// </summary>
public sealed class EvenClusterTests
{
    private static readonly ulong[] Four = [1, 2, 3, 4];

    [Fact]
    public void Leader_CommitsOnlyOnceThreeOfFourHoldTheEntry()
    {
        var leader = new TestNode(1, Four);
        var appends = leader.Elect().OfType<AppendEntries>().OrderBy(a => a.To).ToList();

        leader.Step(TestNode.AckOf(appends[0]));
        leader.Node.CommitIndex.ShouldBe(0UL); // leader and 2: half is not a majority

        leader.Step(TestNode.AckOf(appends[1]));
        leader.Node.CommitIndex.ShouldBe(1UL);
    }

    [Fact]
    public void Read_NeedsThreeOfFourToConfirmTheRound()
    {
        var leader = new TestNode(1, Four);
        leader.ElectAndCommitNoOp();
        leader.Node.ReadIndex(5).IsAccepted.ShouldBeTrue();
        var heartbeats = leader.Flush().OfType<Heartbeat>().OrderBy(h => h.To).ToList();
        heartbeats.Count.ShouldBe(3);

        leader.Step(TestNode.AckOf(heartbeats[0]));
        leader.ReadStates.ShouldBeEmpty();

        leader.Step(TestNode.AckOf(heartbeats[2]));
        leader.ReadStates.ShouldBe([new ReadState(5, 1)]);
    }

    [Fact]
    public void Candidate_NeedsThreeGrantsToWin()
    {
        var node = Candidate();
        var term = node.Node.Term;

        node.Step(new RequestVoteResponse(2, 1, term, true, false));
        node.Node.Role.ShouldBe(Role.Candidate); // two of four
        node.Step(new RequestVoteResponse(3, 1, term, true, false));
        node.Node.Role.ShouldBe(Role.Leader);
    }

    [Fact]
    public void Candidate_GivesUpOnlyOnThreeRejections()
    {
        var node = Candidate();
        var term = node.Node.Term;

        node.Step(new RequestVoteResponse(2, 1, term, true, false));
        node.Step(new RequestVoteResponse(3, 1, term, false, false));
        node.Step(new RequestVoteResponse(4, 1, term, false, false));
        // Two grants, two rejections: it cannot win, but it gives up only on a quorum of rejections (or a timeout).
        // etcd's raft would call this election lost at once; the core has always waited.
        node.Node.Role.ShouldBe(Role.Candidate);

        var other = Candidate();
        other.Step(new RequestVoteResponse(2, 1, term, false, false));
        other.Step(new RequestVoteResponse(3, 1, term, false, false));
        other.Node.Role.ShouldBe(Role.Candidate);
        other.Step(new RequestVoteResponse(4, 1, term, false, false));
        other.Node.Role.ShouldBe(Role.Follower);
    }

    /// <summary>Node 1 of four, campaigning (no pre-vote) and waiting for answers.</summary>
    private static TestNode Candidate()
    {
        var node = new TestNode(1, Four, configure: o => o.PreVote = false);
        var sent = new List<RaftMessage>();
        for (int i = 0; i < 2 * TestNode.ElectionTicks && node.Node.Role == Role.Follower; i++) sent = node.Tick();
        node.Node.Role.ShouldBe(Role.Candidate);
        sent.OfType<RequestVote>().Select(r => r.To).Order().ShouldBe([2UL, 3UL, 4UL]);
        return node;
    }

    // Thesis §6.2: the leader counts itself; with four voters it must hear from two followers per election timeout.
    [Fact]
    public void CheckQuorum_LeaderStepsDownHearingFromOnlyOneOfThreeFollowers()
    {
        var leader = new TestNode(1, Four);
        leader.ElectAndCommitNoOp();

        // Every follower answered the no-op, so the first check passes; the second finds only node 2.
        for (int i = 0; i < 2 * TestNode.ElectionTicks; i++)
        {
            leader.Step(new HeartbeatResponse(2, 1, leader.Node.Term, 0));
            leader.Tick();
        }

        leader.Node.Role.ShouldBe(Role.Follower);
    }

    [Fact]
    public void CheckQuorum_LeaderStaysHearingFromTwoOfThreeFollowers()
    {
        var leader = new TestNode(1, Four);
        leader.ElectAndCommitNoOp();

        for (int i = 0; i < 3 * TestNode.ElectionTicks; i++)
        {
            leader.Step(new HeartbeatResponse(2, 1, leader.Node.Term, 0));
            leader.Step(new HeartbeatResponse(4, 1, leader.Node.Term, 0));
            leader.Tick();
        }

        leader.Node.Role.ShouldBe(Role.Leader);
    }
}

namespace RaftMQ.Raft.Tests;

/// <summary>Linearizable reads without log writes: thesis §6.4.</summary>
public sealed class ReadIndexTests
{
    private static readonly ulong[] Three = [1, 2, 3];

    // Thesis §6.4 steps 1–3: record the commit index as the read index, then confirm leadership with a round of
    // heartbeats acknowledged by a majority; only then may the read be served.
    [Fact]
    public void Read_IsReleasedOnlyAfterAQuorumAcknowledgesAHeartbeatRound()
    {
        var leader = new TestNode(1, Three);
        leader.ElectAndCommitNoOp();
        leader.Node.CommitIndex.ShouldBe(1UL);

        leader.Node.ReadIndex(7).IsAccepted.ShouldBeTrue();
        var heartbeats = leader.Flush().OfType<Heartbeat>().ToList();
        heartbeats.Select(h => h.To).Order().ShouldBe([2UL, 3UL]);
        var round = heartbeats[0].ReadRound;
        round.ShouldBeGreaterThan(0UL);
        leader.ReadStates.ShouldBeEmpty();

        // The commit index moves on before the confirmation arrives; the read keeps the index it was given.
        leader.Propose();
        var append = leader.Flush().To<AppendEntries>(2).Single();
        leader.Step(TestNode.AckOf(append));
        leader.Node.CommitIndex.ShouldBe(2UL);

        // An acknowledgement of an earlier round proves nothing about this read.
        leader.Step(new HeartbeatResponse(2, 1, leader.Node.Term, round - 1));
        leader.ReadStates.ShouldBeEmpty();

        leader.Step(TestNode.AckOf(heartbeats.Single(h => h.To == 2)));
        leader.ReadStates.ShouldBe([new ReadState(7, 1)]);
    }

    // Thesis §6.4 step 1: "If the leader has not yet marked an entry from its current term committed, it waits
    // until it has done so" — until then it does not know the full commit index.
    [Fact]
    public void NewLeader_DefersReadsUntilItsNoOpCommits()
    {
        var leader = new TestNode(1, Three);
        var noOp = leader.Elect().To<AppendEntries>(2).Single();

        leader.Node.ReadIndex(9).IsAccepted.ShouldBeTrue();
        leader.Flush().OfType<Heartbeat>().ShouldBeEmpty();

        var heartbeat = leader.Step(TestNode.AckOf(noOp)).To<Heartbeat>(2).ShouldHaveSingleItem();
        heartbeat.ReadRound.ShouldBeGreaterThan(0UL);
        leader.ReadStates.ShouldBeEmpty();

        leader.Step(TestNode.AckOf(heartbeat));
        leader.ReadStates.ShouldBe([new ReadState(9, 1)]);
    }

    // Thesis §6.4: "followers could also help offload the processing of read-only queries": the follower asks the
    // leader for a read index and serves the read once it has applied up to it.
    [Fact]
    public void Follower_ForwardsTheReadToTheLeader_AndGetsTheLeadersIndex()
    {
        var leader = new TestNode(1, Three);
        var follower = new TestNode(2, Three);
        foreach (var ae in leader.Elect().To<AppendEntries>(2))
            foreach (var answer in follower.Step(ae)) leader.Step(answer);
        leader.Node.CommitIndex.ShouldBe(1UL);
        follower.Node.Leader.ShouldBe(1UL);

        follower.Node.ReadIndex(5).ShouldBe(new ProposeResult(ProposeStatus.Accepted, 0, 1, 1));
        var request = follower.Flush().OfType<ReadIndexRequest>().ShouldHaveSingleItem();
        request.To.ShouldBe(1UL);

        var heartbeat = leader.Step(request).To<Heartbeat>(2).Single(h => h.ReadRound > 0);
        var heartbeatAck = follower.Step(heartbeat).OfType<HeartbeatResponse>().ShouldHaveSingleItem();
        var response = leader.Step(heartbeatAck).OfType<ReadIndexResponse>().ShouldHaveSingleItem();
        leader.ReadStates.ShouldBeEmpty(); // the read is the follower's

        response.To.ShouldBe(2UL);
        follower.Step(response);
        follower.ReadStates.ShouldBe([new ReadState(5, 1)]);
    }

    // A follower restarted: its new run must not take the leader's late answer to a read of the old run (same
    // context, same term) as the answer to a read it never forwarded.
    [Fact]
    public void Follower_IgnoresAnAnswerToAReadItDidNotForward()
    {
        var leader = new TestNode(1, Three);
        var follower = new TestNode(2, Three);
        foreach (var ae in leader.Elect().To<AppendEntries>(2))
            foreach (var answer in follower.Step(ae)) leader.Step(answer);

        follower.Node.ReadIndex(1).IsAccepted.ShouldBeTrue();
        var request = follower.Flush().OfType<ReadIndexRequest>().ShouldHaveSingleItem();
        var heartbeat = leader.Step(request).To<Heartbeat>(2).Single(h => h.ReadRound > 0);
        var response = leader.Step(follower.Step(heartbeat).OfType<HeartbeatResponse>().Single()).OfType<ReadIndexResponse>().Single();

        // The follower restarts from its disk and learns the leader again; the old answer arrives late.
        var restarted = new TestNode(2, Three, follower.Storage);
        foreach (var ae in leader.Flush().To<AppendEntries>(2)) restarted.Step(ae);
        restarted.Step(new Heartbeat(1, 2, leader.Node.Term, leader.Node.CommitIndex, 0));
        restarted.Node.Leader.ShouldBe(1UL);
        restarted.Step(response);
        restarted.ReadStates.ShouldBeEmpty();

        // An answer from a node that is not the leader does not count either, nor a second answer to one read.
        follower.Step(response with { From = 3 });
        follower.ReadStates.ShouldBeEmpty();
        follower.Step(response);
        follower.Step(response);
        follower.ReadStates.ShouldBe([new ReadState(1, response.Index)]);
    }

    [Fact]
    public void Read_OverMaxPendingReads_IsOverloaded()
    {
        var leader = new TestNode(1, Three, configure: o => o.MaxPendingReads = 2);
        leader.ElectAndCommitNoOp();

        leader.Node.ReadIndex(1).IsAccepted.ShouldBeTrue();
        leader.Node.ReadIndex(2).IsAccepted.ShouldBeTrue();
        leader.Node.ReadIndex(3).Status.ShouldBe(ProposeStatus.Overloaded);

        // Released reads free their slots.
        var heartbeat = leader.Flush().To<Heartbeat>(2).Single();
        leader.Step(TestNode.AckOf(heartbeat));
        leader.ReadStates.Select(r => r.Context).ShouldBe([1UL, 2UL]);
        leader.Node.ReadIndex(3).IsAccepted.ShouldBeTrue();
    }

    [Fact]
    public void Read_OnANodeWithoutLeader_ReturnsNotLeader()
    {
        var node = new TestNode(1, Three);
        node.Node.ReadIndex(1).Status.ShouldBe(ProposeStatus.NotLeader);
        node.Flush().ShouldBeEmpty();
    }
}

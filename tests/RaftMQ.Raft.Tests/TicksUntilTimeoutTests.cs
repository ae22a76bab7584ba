namespace RaftMQ.Raft.Tests;

/// <summary>
/// <see cref="RaftNode.TicksUntilTimeout"/>: the ticks before the next one that does something, so a host can sleep
/// until then instead of waking every tick. Every tick before it must be a no-op, and that tick must not be.
/// </summary>
public sealed class TicksUntilTimeoutTests
{
    private static readonly ulong[] Three = [1, 2, 3];

    [Fact]
    public void A_follower_campaigns_exactly_at_the_tick_it_announced_and_not_before()
    {
        for (ulong seed = 1; seed <= 50; seed++)
        {
            var node = new TestNode(1, Three, configure: o => o.RandomSeed = seed);
            node.Tick(3);
            var until = node.Node.TicksUntilTimeout;
            until.ShouldBeInRange(1, 2 * TestNode.ElectionTicks);

            node.Tick(until - 1).ShouldBeEmpty();
            node.Node.Role.ShouldBe(Role.Follower);
            node.Node.TicksUntilTimeout.ShouldBe(1);

            node.Tick().ShouldNotBeEmpty(); // its (pre-)vote requests
            node.Node.Role.ShouldNotBe(Role.Follower);
        }
    }

    [Fact]
    public void A_heartbeat_received_puts_the_follower_s_timeout_a_whole_election_timeout_away_again()
    {
        var node = new TestNode(3, Three, configure: o => o.RandomSeed = 7);
        node.Step(new Heartbeat(2, 3, 1, 0, 0));
        var full = node.Node.TicksUntilTimeout;
        full.ShouldBeGreaterThanOrEqualTo(TestNode.ElectionTicks);

        node.Tick(full - 2);
        node.Node.TicksUntilTimeout.ShouldBe(2);
        node.Step(new Heartbeat(2, 3, 1, 0, 0));
        node.Node.TicksUntilTimeout.ShouldBe(full);
    }

    [Fact]
    public void A_leader_sends_its_heartbeats_exactly_at_the_tick_it_announced()
    {
        var leader = new TestNode(1, Three, configure: o => o.HeartbeatTicks = 3);
        leader.ElectAndCommitNoOp();
        for (var round = 0; round < 3; round++)
        {
            var until = leader.Node.TicksUntilTimeout;
            until.ShouldBeLessThanOrEqualTo(leader.Options.HeartbeatTicks);

            if (until > 1) leader.Tick(until - 1).OfType<Heartbeat>().ShouldBeEmpty();
            leader.Tick().OfType<Heartbeat>().Select(h => h.To).Order().ShouldBe([2UL, 3UL]);
            // Followers answer, so the quorum check at the election timeout keeps it leading.
            leader.Step(new HeartbeatResponse(2, 1, leader.Node.Term, 0));
        }
        leader.Node.Role.ShouldBe(Role.Leader);
    }

    [Fact]
    public void A_leader_wakes_for_its_quorum_check_even_when_heartbeats_are_rarer()
    {
        var leader = new TestNode(1, Three, configure: o =>
        {
            o.HeartbeatTicks = TestNode.ElectionTicks - 1;
            o.CheckQuorum = true;
        });
        leader.ElectAndCommitNoOp();
        var ticks = 0;
        // Nobody answers: the leader must step down at an election timeout, and the announced ticks reach it.
        while (leader.Node.Role == Role.Leader)
        {
            var until = leader.Node.TicksUntilTimeout;
            if (until > 1) leader.Tick(until - 1);
            leader.Node.Role.ShouldBe(Role.Leader);
            leader.Tick();
            ticks += until;
            ticks.ShouldBeLessThanOrEqualTo(3 * TestNode.ElectionTicks);
        }
        leader.Node.Role.ShouldBe(Role.Follower);
    }
}

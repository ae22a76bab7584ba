namespace RaftMQ.Raft.Tests;

/// <summary>
/// Quiescence (<see cref="RaftOptions.QuiescedHeartbeatTicks"/>): a cluster with nothing to replicate heartbeats at a
/// slower pace, its followers wait a timeout scaled alike, and anything that needs the normal pace restores it.
/// </summary>
public sealed class QuiescenceTests
{
    private static readonly ulong[] Three = [1, 2, 3];
    private const int QuietHeartbeat = 10; // ticks; HeartbeatTicks is 1 and ElectionTicks 10, so the quiet timeout is 100

    private static TestCluster QuietCluster(int seed = 1, int quietHeartbeat = QuietHeartbeat) =>
        new(Three, seed: seed, configure: o => o.QuiescedHeartbeatTicks = quietHeartbeat);

    /// <summary>Ticks every node, counting the heartbeats each sends, and delivers after each tick.</summary>
    private static Dictionary<ulong, int> TickCounting(TestCluster cluster, int ticks)
    {
        var heartbeats = cluster.Nodes.Keys.ToDictionary(id => id, _ => 0);
        for (var t = 0; t < ticks; t++)
        {
            foreach (var (id, n) in cluster.Nodes)
            {
                var sent = n.Tick();
                heartbeats[id] += sent.OfType<Heartbeat>().Count();
                cluster.Send(sent);
            }
            cluster.Deliver();
        }
        return heartbeats;
    }

    private static TestCluster ElectedAndQuiet(int seed = 1)
    {
        var cluster = QuietCluster(seed);
        cluster.Elect(1);
        cluster.Propose(1).Status.ShouldBe(ProposeStatus.Accepted);
        cluster.Tick(3 * TestNode.ElectionTicks);
        foreach (var n in cluster.Nodes.Values) n.Node.Quiesced.ShouldBeTrue($"node {n.Node.Id} after three idle election timeouts");
        return cluster;
    }

    [Fact]
    public void An_idle_cluster_quiets_after_two_election_timeouts_and_heartbeats_at_the_quiet_pace()
    {
        var cluster = QuietCluster();
        cluster.Elect(1);
        cluster.Propose(1);
        // Not before two election timeouts without an append.
        cluster.Tick(2 * TestNode.ElectionTicks - 2);
        cluster[1].Node.Quiesced.ShouldBeFalse();

        cluster.Tick(TestNode.ElectionTicks);
        cluster[1].Node.Quiesced.ShouldBeTrue();
        cluster[2].Node.Quiesced.ShouldBeTrue();
        cluster[3].Node.Quiesced.ShouldBeTrue();
        cluster[2].Node.ElectionTicksInEffect.ShouldBe(100);

        // 100 ticks at the quiet pace: one heartbeat per follower every 10 ticks instead of every tick.
        var sent = TickCounting(cluster, 100);
        sent[1].ShouldBeInRange(18, 22);
        cluster[1].Node.Role.ShouldBe(Role.Leader); // the quorum check runs at the quiet period too
        cluster[1].Node.Quiesced.ShouldBeTrue();
    }

    [Fact]
    public void Quiescing_is_off_by_default()
    {
        var cluster = new TestCluster(Three);
        cluster.Elect(1);
        cluster.Propose(1);
        var sent = TickCounting(cluster, 100);
        sent[1].ShouldBe(200);
        cluster.Nodes.Values.ShouldAllBe(n => !n.Node.Quiesced);
    }

    [Fact]
    public void A_proposal_wakes_the_leader_at_once_and_its_append_wakes_the_followers()
    {
        var cluster = ElectedAndQuiet();
        var r = cluster.Propose(1, 42);
        r.Status.ShouldBe(ProposeStatus.Accepted);
        cluster.Nodes.Values.ShouldAllBe(n => !n.Node.Quiesced);
        cluster.Tick(2);
        cluster.Nodes.Values.ShouldAllBe(n => n.Applied.Any(e => e.Index == r.Index));

        // Back at the normal pace until the next idle period ends.
        TickCounting(cluster, 10)[1].ShouldBe(20);
        cluster.Tick(2 * TestNode.ElectionTicks);
        cluster.Nodes.Values.ShouldAllBe(n => n.Node.Quiesced);
    }

    [Fact]
    public void Quiet_followers_wait_the_quiet_timeout_for_a_leader_cut_off_silently_then_elect_another()
    {
        var cluster = ElectedAndQuiet();
        cluster.Isolate(1);
        // Far past the normal timeout (at most 2 x 10 ticks), nobody campaigns.
        cluster.Tick(3 * TestNode.ElectionTicks);
        cluster[2].Node.Role.ShouldBe(Role.Follower);
        cluster[3].Node.Role.ShouldBe(Role.Follower);
        cluster[2].Node.Term.ShouldBe(cluster[1].Node.Term);

        // Within twice the quiet timeout, one of them leads.
        for (var t = 0; t < 200 && cluster.Leader?.Node.Id is not (2 or 3); t++) cluster.Tick();
        cluster.Leader!.Node.Id.ShouldBeOneOf(2UL, 3UL);
        cluster.Leader.Node.Quiesced.ShouldBeFalse();
    }

    [Fact]
    public void A_quiet_follower_cut_off_campaigns_after_the_quiet_timeout_then_retries_at_the_normal_one()
    {
        var cluster = ElectedAndQuiet();
        cluster.Isolate(3);
        var node = cluster[3];
        var ticks = 0;
        while (node.Node.Role == Role.Follower && ticks < 300)
        {
            cluster.Tick();
            ticks++;
        }
        node.Node.Role.ShouldBe(Role.PreCandidate);
        ticks.ShouldBeGreaterThan(80, "not before the quiet timeout (100 ticks, less the ticks since the last heartbeat)");
        node.Node.Quiesced.ShouldBeFalse();
        node.Node.TicksUntilTimeout.ShouldBeLessThanOrEqualTo(2 * TestNode.ElectionTicks);
    }

    [Fact]
    public void A_follower_told_its_link_to_the_leader_is_down_goes_back_to_the_normal_timeout()
    {
        var cluster = ElectedAndQuiet();
        cluster.Isolate(1);
        cluster[2].Node.ReportUnreachable(1);
        cluster[3].Node.ReportUnreachable(1);
        cluster[2].Node.Quiesced.ShouldBeFalse();
        cluster[2].Node.ElectionTicksInEffect.ShouldBe(TestNode.ElectionTicks);

        // A new leader within the normal timeout, as for a busy cluster (randomized in [10, 20) ticks, plus the vote).
        for (var t = 0; t < 2 * TestNode.ElectionTicks + 2 && cluster.Leader?.Node.Id is not (2 or 3); t++) cluster.Tick();
        cluster.Leader!.Node.Id.ShouldBeOneOf(2UL, 3UL);
    }

    [Fact]
    public void A_link_down_reported_for_anyone_but_the_leader_changes_nothing_on_a_follower()
    {
        var cluster = ElectedAndQuiet();
        cluster[2].Node.ReportUnreachable(3);
        cluster[2].Node.Quiesced.ShouldBeTrue();
    }

    [Fact]
    public void A_quiet_follower_whose_link_blipped_while_the_leader_lives_does_not_unseat_it()
    {
        var cluster = ElectedAndQuiet();
        var term = cluster[1].Node.Term;
        // Node 2's link to the leader drops and comes back; the leader and node 3 never noticed.
        cluster[2].Node.ReportUnreachable(1);
        TickCounting(cluster, 2 * QuietHeartbeat * 10);
        cluster[1].Node.Role.ShouldBe(Role.Leader);
        cluster[1].Node.Term.ShouldBe(term);
        cluster[2].Node.Quiesced.ShouldBeTrue(); // the next quiet heartbeat put it back at the quiet pace
    }

    [Fact]
    public void A_link_down_reported_to_a_quiet_leader_wakes_it_and_its_next_heartbeat_wakes_the_followers()
    {
        var cluster = ElectedAndQuiet();
        cluster[1].Node.ReportUnreachable(3);
        cluster[1].Node.Quiesced.ShouldBeFalse();
        cluster.Tick(2);
        cluster[2].Node.Quiesced.ShouldBeFalse();
        cluster[3].Node.Quiesced.ShouldBeFalse();
        cluster[1].Node.Role.ShouldBe(Role.Leader);
    }

    [Fact]
    public void A_follower_gone_silent_wakes_the_quiet_leader_at_its_next_quiet_quorum_check_and_keeps_it_awake()
    {
        var cluster = ElectedAndQuiet();
        cluster.Isolate(3);
        // The quorum check after the first whole quiet period (100 ticks) without an answer from it.
        cluster.Tick(201);
        cluster[1].Node.Role.ShouldBe(Role.Leader);
        cluster[1].Node.Quiesced.ShouldBeFalse();
        cluster[2].Node.Quiesced.ShouldBeFalse();
        // It does not quiet again while node 3 stays silent.
        cluster.Tick(5 * TestNode.ElectionTicks);
        cluster[1].Node.Quiesced.ShouldBeFalse();
        cluster[1].Node.Role.ShouldBe(Role.Leader);

        cluster.Heal(3);
        cluster.Tick(4 * TestNode.ElectionTicks);
        cluster.Nodes.Values.ShouldAllBe(n => n.Node.Quiesced);
    }

    [Fact]
    public void A_quiet_leader_cut_off_from_its_quorum_steps_down_after_the_quiet_check_quorum_period()
    {
        var cluster = ElectedAndQuiet();
        cluster.Isolate(2);
        cluster.Isolate(3);
        cluster.Tick(TestNode.ElectionTicks * 3);
        cluster[1].Node.Role.ShouldBe(Role.Leader); // the normal period is no longer what it waits
        cluster.Tick(2 * 100);
        cluster[1].Node.Role.ShouldNotBe(Role.Leader);
    }

    [Fact]
    public void Quiet_followers_ignore_a_disruptive_candidate_while_within_the_quiet_timeout()
    {
        var cluster = ElectedAndQuiet();
        var follower = cluster[2];
        var term = follower.Node.Term;
        follower.Tick(3 * TestNode.ElectionTicks); // past the normal window, within the quiet one
        follower.Step(new RequestVote(3, 2, term + 1, 100, term, PreVote: true)).ShouldBeEmpty();
        follower.Step(new RequestVote(3, 2, term + 1, 100, term, PreVote: false)).ShouldBeEmpty();
        follower.Node.Term.ShouldBe(term);
    }

    [Fact]
    public void A_leadership_transfer_wakes_the_leader_and_completes()
    {
        var cluster = ElectedAndQuiet();
        cluster.Change(1, n => n.TransferLeadership(2)).Status.ShouldBe(MembershipStatus.Accepted);
        cluster.Tick(3);
        cluster.Leader!.Node.Id.ShouldBe(2UL);
    }

    [Fact]
    public void A_quiet_cluster_stays_safe_and_live_under_random_loss_and_isolation()
    {
        for (var seed = 1; seed <= 20; seed++)
        {
            var cluster = QuietCluster(seed);
            var random = new Random(seed);
            cluster.Elect(1);
            for (var step = 0; step < 400; step++)
            {
                switch (random.Next(10))
                {
                    case 0 when cluster.Leader is { } l:
                        cluster.Propose(l.Node.Id);
                        break;
                    case 1:
                        var id = (ulong)random.Next(1, 4);
                        if (random.Next(2) == 0) cluster.Isolate(id);
                        else cluster.Heal(id);
                        break;
                    case 2:
                        var reporter = (ulong)random.Next(1, 4);
                        cluster[reporter].Node.ReportUnreachable((ulong)random.Next(1, 4));
                        break;
                }
                cluster.LossRate = random.Next(4) == 0 ? 0.2 : 0;
                cluster.Tick(random.Next(1, 30));
            }
            // Healed, the cluster settles on one leader, which commits, then quiets.
            cluster.HealAll();
            cluster.LossRate = 0;
            cluster.Tick(400);
            var leader = cluster.Leader.ShouldNotBeNull();
            var r = cluster.Propose(leader.Node.Id, 9);
            r.Status.ShouldBe(ProposeStatus.Accepted);
            cluster.Tick(3 * TestNode.ElectionTicks);
            cluster.Nodes.Values.ShouldAllBe(n => n.Applied.Any(e => e.Index == r.Index));
            cluster.Nodes.Values.ShouldAllBe(n => n.Node.Quiesced);
            // Every node applied the same entries (two leaders in one term would have thrown on the way).
            var reference = cluster[1].Applied.Select(e => (e.Index, e.Term)).ToList();
            foreach (var n in cluster.Nodes.Values) n.Applied.Select(e => (e.Index, e.Term)).ShouldBe(reference);
        }
    }
}

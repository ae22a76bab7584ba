using System.Text;
using static RaftMQ.Queue.Tests.QueueTestSteps;

namespace RaftMQ.Queue.Tests;

/// <summary>
/// The per-group counts the loop publishes for metrics (<see cref="QueueStateMachine.GroupCounters"/>): the stats of
/// every group as of one moment, rebuilt only once the refresh interval passed.
/// </summary>
[Collection(QueueMemoryCollection.Name)]
public sealed class GroupCountersTests : IDisposable
{
    private readonly TestQueues _queues = new();

    public void Dispose() => _queues.Dispose();

    private static DateTimeOffset At(long unixMs) => DateTimeOffset.FromUnixTimeMilliseconds(unixMs);

    /// <summary>Topic t: three messages published at 1,000, max_deliveries 1, groups default and audit.</summary>
    private QueueStateMachine WithTwoGroups(QueueLimits? limits = null)
    {
        var sm = _queues.Create(limits);
        Apply(sm, QueueCommand.ConfigureTopic("t", 1)).Count.ShouldBe(1);
        Apply(sm, QueueCommand.CreateGroup("t", "audit", GroupStart.Earliest)).Success.ShouldBeTrue();
        Apply(sm, QueueCommand.PublishMessages("t", [.. Enumerable.Range(0, 3).Select(i => new QueueMessage(Encoding.UTF8.GetBytes($"m{i}")))], 1_000)).Success.ShouldBeTrue();
        return sm;
    }

    [Fact]
    public void The_published_counts_are_the_stats_of_every_group_at_that_moment_and_dead_letter_topics_have_none()
    {
        var sm = WithTwoGroups();
        var leased = Apply(sm, QueueCommand.Receive("t", "default", 2, 30_000, 2_000)).Delivered!;
        Apply(sm, QueueCommand.Ack("t", "default", [ReceiptOf(leased[0])], 2_001)).Count.ShouldBe(1);
        var audit = Apply(sm, QueueCommand.Receive("t", "audit", 1, 30_000, 2_002)).Delivered!.Single();
        Apply(sm, QueueCommand.Nack("t", "audit", [ReceiptOf(audit)], 0, "bad", 2_003)).Count.ShouldBe(1); // max_deliveries 1: dead-lettered

        sm.GroupCounters().ShouldBeSameAs(GroupCountersView.Empty, "nothing is published before the loop asks");
        sm.PublishReaderView(At(5_000));

        var view = sm.GroupCounters();
        view.TakenAtMs.ShouldBe(5_000);
        var stats = sm.Stats("t", 5_000)!;
        var topic = view.Topics.ShouldHaveSingleItem("the dead-letter topic has no entry of its own");
        topic.Topic.ShouldBe("t");
        topic.DeadLettered.ShouldBe(1);
        topic.DeadLettered.ShouldBe(stats.DeadLettered);
        topic.Groups.ShouldBe(stats.Groups.Select(g => g with { DeliveryCounts = null }), "the same counts (the histogram is the stats' only)");
        var (d, a) = (topic.Groups[0], topic.Groups[1]);
        (d.Group, d.Ready, d.Leased, d.Delayed, d.Unacked, d.DeliveredTotal, d.AckedTotal, d.DeadLetteredTotal).ShouldBe(("default", 1L, 1, 0, 2L, 2L, 1L, 0L));
        (a.Group, a.Ready, a.Leased, a.Delayed, a.Unacked, a.DeliveredTotal, a.AckedTotal, a.DeadLetteredTotal).ShouldBe(("audit", 2L, 0, 0, 2L, 1L, 0L, 1L));
        (d.OldestPublishedMs, d.OldestAgeMs).ShouldBe((1_000L, 4_000L));
    }

    [Fact]
    public void It_is_rebuilt_once_the_refresh_interval_passed_and_counts_by_the_later_of_the_nodes_clock_and_the_replicated_one()
    {
        var sm = WithTwoGroups(QueueLimits.Default with { GroupCountersRefreshMs = 1_000 });
        var leased = Apply(sm, QueueCommand.Receive("t", "default", 1, 3_000, 2_000)).Delivered!.Single(); // lease until 5,000
        sm.PublishReaderView(At(2_000));
        var first = sm.GroupCounters();
        first.Topics[0].Groups[0].Leased.ShouldBe(1);

        Apply(sm, QueueCommand.Ack("t", "default", [ReceiptOf(leased)], 2_100)).Count.ShouldBe(1);
        sm.PublishReaderView(At(2_999));
        sm.GroupCounters().ShouldBeSameAs(first, "within the interval the last count stays");

        sm.PublishReaderView(At(3_000));
        var second = sm.GroupCounters();
        second.ShouldNotBeSameAs(first);
        (second.Topics[0].Groups[0].AckedTotal, second.Topics[0].Groups[0].Leased, second.Topics[0].Groups[0].Unacked).ShouldBe((1L, 0, 2L));

        // A lease ends by the node's clock with no command applied: the next count has it ready again.
        Apply(sm, QueueCommand.Receive("t", "default", 1, 3_000, 3_100)).Delivered!.Single().Offset.ShouldBe(1UL); // until 6,100
        sm.PublishReaderView(At(4_000));
        sm.GroupCounters().Topics[0].Groups[0].Leased.ShouldBe(1);
        sm.PublishReaderView(At(6_100));
        var expired = sm.GroupCounters().Topics[0].Groups[0];
        (expired.Leased, expired.Ready).ShouldBe((0, 2L));

        // A node clock behind the replicated one counts at the replicated time, and a clock that went back rebuilds at once.
        Apply(sm, QueueCommand.Receive("t", "audit", 1, 1_000, 9_000)).Delivered!.ShouldHaveSingleItem();
        sm.PublishReaderView(At(5_000));
        var behind = sm.GroupCounters();
        behind.TakenAtMs.ShouldBe(9_000);
        behind.Topics[0].Groups[1].Leased.ShouldBe(1);
    }

    [Fact]
    public void An_idle_queue_is_not_counted_again_until_a_command_is_applied_or_a_lease_can_end()
    {
        var sm = _queues.Create(QueueLimits.Default with { GroupCountersRefreshMs = 1_000 });
        foreach (var name in new[] { "a", "b", "c" }) Apply(sm, QueueCommand.ConfigureTopic(name, 5)).Count.ShouldBe(1);
        sm.PublishReaderView(At(1_000));
        var idle = sm.GroupCounters();
        idle.Topics.Count.ShouldBe(3);
        sm.PublishReaderView(At(2_000));
        sm.PublishReaderView(At(60_000));
        sm.GroupCounters().ShouldBeSameAs(idle, "empty topics: nothing changed, nothing to count again");

        // A publish (a command applied) makes the next count a new one. A waiting message changes no count with time:
        // its age is as of the count's time (the metrics take the age from its publish time when scraped).
        Apply(sm, QueueCommand.PublishMessages("b", [new QueueMessage(Encoding.UTF8.GetBytes("m"))], 61_000)).Success.ShouldBeTrue();
        sm.PublishReaderView(At(62_000));
        var published = sm.GroupCounters();
        published.ShouldNotBeSameAs(idle);
        var waiting = published.Topics[1].Groups[0];
        (waiting.Ready, waiting.OldestPublishedMs, waiting.OldestAgeMs, published.TakenAtMs).ShouldBe((1L, 61_000L, 1_000L, 62_000L));
        sm.PublishReaderView(At(70_000));
        sm.GroupCounters().ShouldBeSameAs(published);

        // Leased: the lease ends by the clock alone, so the counts are taken again each interval until it is settled.
        var leased = Apply(sm, QueueCommand.Receive("b", "default", 1, 5_000, 71_000)).Delivered!.Single(); // until 76,000
        sm.PublishReaderView(At(71_000));
        sm.GroupCounters().Topics[1].Groups[0].Leased.ShouldBe(1);
        sm.PublishReaderView(At(76_000));
        var ended = sm.GroupCounters().Topics[1].Groups[0];
        (ended.Leased, ended.Ready).ShouldBe((0, 1L));

        // Acked: nothing left that moves with time, so the count after the ack stays.
        Apply(sm, QueueCommand.Ack("b", "default", [ReceiptOf(leased)], 75_000)).Count.ShouldBe(1);
        sm.PublishReaderView(At(77_000));
        var consumed = sm.GroupCounters();
        (consumed.Topics[1].Groups[0].Ready, consumed.Topics[1].Groups[0].Unacked).ShouldBe((0L, 0L));
        sm.PublishReaderView(At(90_000));
        sm.GroupCounters().ShouldBeSameAs(consumed);
    }

    [Fact]
    public void A_deleted_topic_leaves_the_next_count_and_one_created_again_with_the_same_name_starts_from_zero()
    {
        var sm = WithTwoGroups(QueueLimits.Default with { GroupCountersRefreshMs = 1 });
        Apply(sm, QueueCommand.Receive("t", "default", 1, 30_000, 2_000)).Delivered!.ShouldHaveSingleItem();
        sm.PublishReaderView(At(2_000));
        sm.GroupCounters().Topics[0].Groups[0].OldestPublishedMs.ShouldBe(1_000);

        Apply(sm, QueueCommand.DeleteTopic("t")).Success.ShouldBeTrue();
        sm.PublishReaderView(At(2_001));
        sm.GroupCounters().Topics.ShouldBeEmpty();

        Apply(sm, QueueCommand.ConfigureTopic("t", 1)).Count.ShouldBe(1);
        Apply(sm, QueueCommand.PublishMessages("t", [new QueueMessage(Encoding.UTF8.GetBytes("again"))], 7_000)).Success.ShouldBeTrue();
        sm.PublishReaderView(At(7_500));
        var group = sm.GroupCounters().Topics.ShouldHaveSingleItem().Groups.ShouldHaveSingleItem();
        (group.Group, group.Ready, group.DeliveredTotal, group.OldestPublishedMs, group.OldestAgeMs).ShouldBe(("default", 1L, 0L, 7_000L, 500L));
    }
    [Fact]
    public void A_build_counts_again_only_the_topics_commands_touched_and_those_that_move_with_time()
    {
        var sm = _queues.Create(QueueLimits.Default with { GroupCountersRefreshMs = 1 });
        foreach (var name in new[] { "idle", "busy", "leased", "aging", "dead" }) Apply(sm, QueueCommand.ConfigureTopic(name, 1)).Count.ShouldBe(1);
        Apply(sm, QueueCommand.ConfigureTopic("aging", 1, retention: new TopicRetention(MaxAgeMs: 10_000))).Success.ShouldBeTrue();
        foreach (var name in new[] { "idle", "busy", "leased", "aging", "dead" })
            Apply(sm, QueueCommand.PublishMessages(name, [new QueueMessage(Encoding.UTF8.GetBytes("m")), new QueueMessage(Encoding.UTF8.GetBytes("n"))], 1_000)).Success.ShouldBeTrue();
        Apply(sm, QueueCommand.Receive("leased", "default", 1, 100_000, 1_000)).Delivered!.ShouldHaveSingleItem(); // until 101,000
        var dying = Apply(sm, QueueCommand.Receive("dead", "default", 1, 100_000, 1_000)).Delivered!.Single();
        Apply(sm, QueueCommand.Nack("dead", "default", [ReceiptOf(dying)], 0, "bad", 1_000)).Count.ShouldBe(1); // max_deliveries 1
        sm.PublishReaderView(At(2_000));
        var first = Topics(sm);
        first["dead"].DeadLettered.ShouldBe(1);

        // Nothing applied: only the topic with a lease is counted again.
        sm.PublishReaderView(At(3_000));
        var second = Topics(sm);
        second["idle"].ShouldBeSameAs(first["idle"]);
        second["busy"].ShouldBeSameAs(first["busy"]);
        second["dead"].ShouldBeSameAs(first["dead"]);
        second["leased"].ShouldNotBeSameAs(first["leased"], "its lease can end by the clock alone");

        // A receive on busy, stamped 20,000: the clock step expires aging's messages (max_age 10 s) in the same command.
        Apply(sm, QueueCommand.Receive("busy", "default", 1, 100_000, 20_000)).Delivered!.ShouldHaveSingleItem();
        // A receive and an ack on dead's dead-letter topic change dead's dead_lettered.
        var dead = DeadLetters.TopicFor("dead");
        var letter = Apply(sm, QueueCommand.Receive(dead, "default", 1, 100_000, 20_000)).Delivered!.Single();
        Apply(sm, QueueCommand.Ack(dead, "default", [ReceiptOf(letter)], 20_000)).Count.ShouldBe(1);
        sm.PublishReaderView(At(21_000));
        var third = Topics(sm);
        third["idle"].ShouldBeSameAs(first["idle"], "no command touched it");
        (third["busy"].Groups[0].Leased, third["busy"].Groups[0].Ready).ShouldBe((1, 1L));
        (third["aging"].Expired, third["aging"].Groups[0].Ready).ShouldBe((2L, 0L));
        third["dead"].DeadLettered.ShouldBe(0);
        foreach (var (name, counted) in third)
        {
            var stats = sm.Stats(name, 21_000)!;
            counted.Groups.Select(g => g with { DeliveryCounts = null, OldestAgeMs = null })
                .ShouldBe(stats.Groups.Select(g => g with { DeliveryCounts = null, OldestAgeMs = null }), $"{name}: the stats' counts");
            (counted.DeadLettered, counted.Expired).ShouldBe((stats.DeadLettered, stats.ExpiredTotal), name);
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Leases_and_nack_delays_are_counted_by_the_clock_when_no_command_has_expired_them(int seed)
    {
        // Leases of different lengths, nacks with and without a delay, then counts at times before, between and past
        // their ends with no command between: a lease that ended counts as ready (it leaves only when a command
        // expires it), and a nacked message counts as delayed until its delay passes.
        var random = new Random(seed);
        var sm = _queues.Create();
        Apply(sm, QueueCommand.ConfigureTopic("t", 0)).Count.ShouldBe(1);
        Apply(sm, QueueCommand.PublishMessages("t", [.. Enumerable.Range(0, 200).Select(i => new QueueMessage(Encoding.UTF8.GetBytes($"m{i}")))], 1_000)).Success.ShouldBeTrue();
        var leaseEnds = new List<long>();
        var nackEnds = new List<long>();
        for (int i = 0; i < 20; i++)
        {
            var leaseMs = 1_000L * random.Next(1, 10);
            var got = Apply(sm, QueueCommand.Receive("t", "default", random.Next(1, 10), leaseMs, 2_000)).Delivered!;
            foreach (var m in got)
            {
                if (random.Next(3) == 0)
                {
                    var delayMs = 1_000L * random.Next(0, 10); // 0: ready again at once
                    Apply(sm, QueueCommand.Nack("t", "default", [ReceiptOf(m)], delayMs, null, 2_000)).Count.ShouldBe(1);
                    nackEnds.Add(2_000 + delayMs);
                }
                else leaseEnds.Add(2_000 + leaseMs);
            }
        }
        foreach (var now in new long[] { 2_000, 2_999, 3_000, 5_500, 8_000, 11_000, 6_500, 2_000 })
        {
            var g = sm.Stats("t", now)!.Groups.Single();
            var live = leaseEnds.Count(end => end > now);
            var delayed = nackEnds.Count(end => end > now);
            (g.Leased, g.Delayed, g.Ready).ShouldBe((live, delayed, 200L - live - delayed), $"at {now}");
        }
    }

    private static Dictionary<string, TopicGroupCounters> Topics(QueueStateMachine sm) => sm.GroupCounters().Topics.ToDictionary(t => t.Topic);
}

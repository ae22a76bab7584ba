using System.Text;
using RaftMQ.StateMachine;
using static RaftMQ.Queue.Tests.QueueTestSteps;

namespace RaftMQ.Queue.Tests;

/// <summary>Delayed delivery: a message published with delay_ms reaches no group, nor a pop, before its time by the commands' clock.</summary>
[Collection(QueueMemoryCollection.Name)]
public sealed class DelayedDeliveryTests : IDisposable
{
    private readonly TestQueues _queues = new();

    public void Dispose() => _queues.Dispose();

    private static QueueMessage Msg(string text, long delayMs = 0) => new(Encoding.UTF8.GetBytes(text)) { DelayMs = delayMs };

    private static string[] Receive(QueueStateMachine sm, string group, long now, int max = 10) =>
        [.. Apply(sm, QueueCommand.Receive("t", group, max, 60_000, now)).Delivered!.Select(m => $"{Encoding.UTF8.GetString(m.Payload.Span)}#{m.DeliveryCount}")];

    private QueueStateMachine WithTopic(QueueLimits? limits = null)
    {
        var sm = _queues.Create(limits);
        Apply(sm, QueueCommand.ConfigureTopic("t", 0)).Count.ShouldBe(1);
        Apply(sm, QueueCommand.CreateGroup("t", "other", GroupStart.Earliest)).ShouldBe(QueueResult.Ok);
        return sm;
    }

    [Fact]
    public void A_delayed_message_reaches_no_group_before_its_time_and_does_not_hold_back_the_others()
    {
        var sm = WithTopic();
        Apply(sm, QueueCommand.PublishExtended("t", [Msg("later", 5_000), Msg("now")], 1_000)).ShouldBe(QueueResult.Ok with { Count = 2, Offsets = [0UL, 1UL] });
        var stats = sm.Stats("t", 1_000)!.Groups;
        stats.Select(g => (g.Ready, g.Delayed)).ShouldBe([(1L, 1), (1L, 1)]);

        Receive(sm, "default", 2_000).ShouldBe(["now#1"]);
        Receive(sm, "default", 5_999).ShouldBeEmpty();
        sm.Stats("t", 5_999)!.Groups[0].ShouldSatisfyAllConditions(g => g.Delayed.ShouldBe(1), g => g.Ready.ShouldBe(0L), g => g.Leased.ShouldBe(1));
        Receive(sm, "default", 6_000).ShouldBe(["later#1"]); // due: the first delivery
        // The other group and the pops follow the same clock.
        Apply(sm, QueueCommand.PopMessages("t", 10)).Delivered!.ShouldBeEmpty();
        Receive(sm, "other", 6_001).ShouldBe(["later#1", "now#1"]);
    }

    [Fact]
    public void The_counts_follow_the_clock_past_due_times_no_command_has_reached_yet()
    {
        // The stats (and the metrics' counters, the same code) count a delayed message as ready once due, although it
        // leaves the topic's table only at the next publish or receive: here no command runs after 1,500.
        var sm = WithTopic();
        Apply(sm, QueueCommand.PublishExtended("t", [Msg("m0", 1_000), Msg("m1"), Msg("m2", 3_000), Msg("m3", 5_000), Msg("m4")], 1_000)).Count.ShouldBe(5);
        Receive(sm, "default", 1_500, max: 1).ShouldBe(["m1#1"]); // default's cursor passed m0 (set aside until 2,000)

        (long Ready, int Delayed)[] At(long now) => [.. sm.Stats("t", now)!.Groups.Select(g => (g.Ready, g.Delayed))];
        At(1_500).ShouldBe([(1L, 3), (2L, 3)]);   // default: m4 ready, m0 m2 m3 delayed (m1 leased); other: m1 m4 ready
        At(2_500).ShouldBe([(2L, 2), (3L, 2)]);   // m0 due
        At(4_000).ShouldBe([(3L, 1), (4L, 1)]);   // m2 due (at its time exactly)
        At(5_999).ShouldBe([(3L, 1), (4L, 1)]);
        At(6_000).ShouldBe([(4L, 0), (5L, 0)]);   // m3 due
        sm.Stats("t", 6_000)!.Groups[0].Leased.ShouldBe(1);
    }

    [Fact]
    public void The_counts_stay_right_when_publishes_receives_and_a_clock_going_back_come_between_them()
    {
        // A count remembers which delays it found due; what happens between counts must keep that right.
        var sm = WithTopic();
        Apply(sm, QueueCommand.PublishExtended("t", [Msg("a", 1_000), Msg("b", 3_000), Msg("c", 5_000)], 1_000));
        (long Ready, int Delayed) Default(long now) => sm.Stats("t", now)!.Groups[0] is var g ? (g.Ready, g.Delayed) : default;
        Default(4_500).ShouldBe((2L, 1));            // a, b due; c not
        // The leader's clock (1,500) behind this count's (4,500): d is due at 2,500, already past for the count.
        Apply(sm, QueueCommand.PublishExtended("t", [Msg("d", 1_000)], 1_500));
        Default(4_500).ShouldBe((3L, 1));
        Default(3_000).ShouldBe((2L, 2));            // an earlier time: a and d due, b and c not
        Receive(sm, "other", 2_100).ShouldBe(["a#1"]); // prunes a (due at 2,000)
        Default(4_500).ShouldBe((3L, 1));
        Default(6_000).ShouldBe((4L, 0));
        Default(5_999).ShouldBe((3L, 1));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Each_group_counts_as_delayed_exactly_its_undelivered_messages_not_due_yet(int seed)
    {
        // Groups whose cursors stand at different places (two at the same), counted at times before, between and
        // after the due times with no command between: a group's delayed messages are those it has not received
        // whose time has not come, whether its cursor passed them (set aside) or not.
        var random = new Random(seed);
        var sm = WithTopic();
        long[] delays = [.. Enumerable.Range(0, 60).Select(_ => random.Next(11) * 500L)];
        Apply(sm, QueueCommand.PublishExtended("t", [.. delays.Select((d, i) => Msg($"m{i}", d))], 1_000)).Count.ShouldBe(60);
        int[] takes = [1, 3, 3, 10, 25, 60];
        var received = new Dictionary<string, HashSet<int>> { ["default"] = [], ["other"] = [] };
        for (int g = 0; g < takes.Length; g++)
        {
            Apply(sm, QueueCommand.CreateGroup("t", $"g{g}", GroupStart.Earliest)).ShouldBe(QueueResult.Ok);
            received[$"g{g}"] = [.. Receive(sm, $"g{g}", 1_000, takes[g]).Select(m => int.Parse(m[1..m.IndexOf('#')]))];
        }
        foreach (var now in new long[] { 1_000, 1_499, 1_500, 2_600, 4_000, 5_999, 6_000, 3_000, 7_000 })
        {
            foreach (var g in sm.Stats("t", now)!.Groups)
            {
                var waiting = Enumerable.Range(0, 60).Where(i => !received[g.Group].Contains(i)).ToList();
                var delayed = waiting.Count(i => 1_000 + delays[i] > now);
                (g.Ready, g.Delayed, g.Leased).ShouldBe((waiting.Count - delayed, delayed, received[g.Group].Count), $"group {g.Group} at {now}");
            }
        }
    }

    [Fact]
    public void Pops_wait_for_the_delay_too()
    {
        var sm = _queues.Create();
        Apply(sm, QueueCommand.ConfigureTopic("t", 0));
        Apply(sm, QueueCommand.PublishExtended("t", [Msg("a", 1_000), Msg("b")], 10_000));
        Apply(sm, QueueCommand.PopMessages("t", 10)).Delivered!.Select(m => m.Offset).ShouldBe([1UL]);
        Apply(sm, QueueCommand.Pop("t") with { TimestampMs = 10_999 }).Status.ShouldBe(QueueStatus.Empty);
        // A pop carries the leader's time: on a cluster that only pops, the pop itself finds the message due.
        Apply(sm, QueueCommand.Pop("t") with { TimestampMs = 11_000 }).ShouldBe(new QueueResult(QueueStatus.Ok, "a"));
        Apply(sm, QueueCommand.PublishExtended("t", [Msg("c", 1_000)], 11_000));
        Apply(sm, QueueCommand.PopBatch("t", 10) with { TimestampMs = 11_999 }).Messages!.ShouldBeEmpty();
        Apply(sm, QueueCommand.PopBatch("t", 10) with { TimestampMs = 12_000 }).Messages!.ShouldBe(["c"]);
        sm.Depth("t").ShouldBe(0);
    }

    [Fact]
    public void A_pop_of_an_earlier_build_carries_no_time_and_moves_no_clock()
    {
        var sm = _queues.Create();
        Apply(sm, QueueCommand.ConfigureTopic("t", 0));
        Apply(sm, QueueCommand.PublishExtended("t", [Msg("a", 1_000)], 10_000));
        // The bytes an earlier build wrote for a pop of "t": no timestamp.
        QueueCommand.TryDecode([3, 1, 0, (byte)'t', 0, 0, 0, 0], out var old).ShouldBeTrue();
        old.TimestampMs.ShouldBe(0);
        for (var i = 0; i < 3; i++) Apply(sm, old).Status.ShouldBe(QueueStatus.Empty);
        Apply(sm, QueueCommand.Pop("t") with { TimestampMs = 11_000 }).ShouldBe(new QueueResult(QueueStatus.Ok, "a"));
    }

    [Fact]
    public void A_pop_takes_a_message_whose_lease_ended_with_no_other_command_between()
    {
        var sm = _queues.Create();
        Apply(sm, QueueCommand.ConfigureTopic("t", 0));
        Apply(sm, QueueCommand.PublishExtended("t", [Msg("a")], 1_000));
        Receive(sm, "default", 1_000).ShouldBe(["a#1"]); // leased until 61,000; the consumer goes away
        Apply(sm, QueueCommand.Pop("t") with { TimestampMs = 60_999 }).Status.ShouldBe(QueueStatus.Empty);
        Apply(sm, QueueCommand.PopMessages("t", 10) with { TimestampMs = 61_000 }).Delivered!.Select(m => m.Offset).ShouldBe([0UL]);
        sm.Depth("t").ShouldBe(0);
    }

    [Fact]
    public void Delays_survive_a_snapshot()
    {
        var sm = WithTopic();
        Apply(sm, QueueCommand.PublishExtended("t", [Msg("a", 10_000), Msg("b", 20_000)], 1_000));
        Receive(sm, "default", 1_500).ShouldBeEmpty(); // default has set both aside; other has not reached them
        using var buffer = new MemoryStream();
        sm.WriteSnapshot(buffer);
        buffer.Position = 0;
        var restored = _queues.Create();
        restored.RestoreSnapshot(buffer);
        foreach (var q in new[] { sm, restored })
        {
            Receive(q, "other", 10_999).ShouldBeEmpty();
            Receive(q, "default", 11_000).ShouldBe(["a#1"]);
            Receive(q, "other", 11_000).ShouldBe(["a#1"]);
            Receive(q, "other", 21_000).ShouldBe(["b#1"]);
            Receive(q, "default", 21_000).ShouldBe(["b#1"]);
        }
    }

    [Fact]
    public void A_snapshot_holds_the_delays_at_capture_however_they_move_before_it_is_written()
    {
        // The capture does not copy the delayed messages (the loop would stall on a large table); it is written later.
        // Between the two, some fall due, more are published and a group goes.
        void Before(QueueStateMachine m)
        {
            Apply(m, QueueCommand.PublishExtended("t", [.. Enumerable.Range(0, 300).Select(i => Msg($"d{i}", 10_000 + i * 100))], 1_000)).Count.ShouldBe(300);
            Apply(m, QueueCommand.PublishExtended("t", [Msg("now")], 1_000)).Count.ShouldBe(1);
        }
        var sm = WithTopic();
        Before(sm);
        using var snapshot = sm.CaptureSnapshot();

        Receive(sm, "default", 21_000, max: 1_000).Length.ShouldBe(102); // "now" and d0..d100 (due at 11,000 + 100 i) are due: pruned
        Apply(sm, QueueCommand.PublishExtended("t", [.. Enumerable.Range(0, 50).Select(i => Msg($"e{i}", 60_000))], 21_000)).Count.ShouldBe(50);
        Apply(sm, QueueCommand.DeleteGroup("t", "other")).ShouldBe(QueueResult.Ok);
        using var written = new MemoryStream();
        snapshot.WriteTo(written);

        // The same bytes as a node that only ever applied the commands before the capture.
        var twin = WithTopic();
        Before(twin);
        using var expected = new MemoryStream();
        twin.WriteSnapshot(expected);
        written.ToArray().ShouldBe(expected.ToArray());

        written.Position = 0;
        var restored = _queues.Create();
        restored.RestoreSnapshot(written);
        Receive(restored, "default", 11_000, max: 1_000).ShouldBe(["d0#1", "now#1"]); // offset order
        Receive(restored, "default", 40_899, max: 1_000).Length.ShouldBe(298);
        Receive(restored, "default", 40_900, max: 1_000).ShouldBe(["d299#1"]);
    }

    [Fact]
    public void Delays_out_of_bounds_are_refused()
    {
        var sm = WithTopic(QueueLimits.Default with { MaxDelayedPerTopic = 1 });
        Apply(sm, QueueCommand.PublishExtended("t", [Msg("a", sm.Limits.MaxPublishDelayMs + 1)], 1_000)).Status.ShouldBe(QueueStatus.Invalid);
        Apply(sm, QueueCommand.PublishExtended("t", [Msg("a", -1)], 1_000)).Status.ShouldBe(QueueStatus.Invalid);
        Apply(sm, QueueCommand.PublishExtended("t", [Msg("a", 1_000), Msg("b", 1_000)], 1_000)).Status.ShouldBe(QueueStatus.LimitReached);
        sm.Depth("t").ShouldBe(0);
        Apply(sm, QueueCommand.PublishExtended("t", [Msg("a", 1_000)], 1_000)).Count.ShouldBe(1);
        Apply(sm, QueueCommand.PublishExtended("t", [Msg("b", 1_000)], 1_500)).Status.ShouldBe(QueueStatus.LimitReached);
        // Once the first is due it no longer counts.
        Apply(sm, QueueCommand.PublishExtended("t", [Msg("b", 1_000)], 2_000)).Count.ShouldBe(1);
    }
}

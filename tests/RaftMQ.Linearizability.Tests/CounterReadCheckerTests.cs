using RaftMQ.Linearizability;

namespace RaftMQ.Linearizability.Tests;

public sealed class CounterReadCheckerTests
{
    private static CounterWrite W(long position, long invoked, long answered) => new(position, invoked, answered, $"w{position}");

    private static CounterRead R(long value, long invoked, long answered) => new(invoked, answered, value, $"r{value}@{invoked}");

    [Fact]
    public void Reads_that_follow_the_writes_are_linearizable()
    {
        CounterReadChecker.Check([W(0, 0, 10), W(1, 20, 30)], [R(0, -5, 1), R(1, 11, 19), R(2, 31, 40), R(1, 5, 25)]).ShouldBe("ok");
    }

    [Fact]
    public void A_read_that_misses_a_write_answered_before_it_began_is_stale()
    {
        var result = CounterReadChecker.Check([W(0, 0, 10), W(1, 20, 30)], [R(1, 31, 40)]);
        result.ShouldStartWith("1 non-linearizable operations");
        result.ShouldContain("r1@31");
    }

    [Fact]
    public void A_read_that_sees_a_write_not_yet_invoked_is_from_the_future()
    {
        CounterReadChecker.Check([W(0, 0, 10), W(1, 20, 30)], [R(2, 12, 18)]).ShouldNotBe("ok");
    }

    [Fact]
    public void Reads_go_back_in_time_is_not_linearizable_even_with_the_writes_unknown()
    {
        // The second read began after the first answered, yet saw less; no write is known at all.
        CounterReadChecker.Check([], [R(5, 0, 10), R(4, 20, 30)]).ShouldNotBe("ok");
        CounterReadChecker.Check([], [R(5, 0, 25), R(4, 20, 30)]).ShouldBe("ok");
    }

    [Fact]
    public void A_write_never_answered_may_take_effect_any_time_after_it_was_invoked()
    {
        CounterReadChecker.Check([W(0, 0, long.MaxValue)], [R(0, 100, 110), R(1, 200, 210)]).ShouldBe("ok");
        CounterReadChecker.Check([W(0, 150, long.MaxValue)], [R(1, 100, 110)]).ShouldNotBe("ok");
    }

    /// <summary>
    /// On random small complete histories (every write known), the one-pass check agrees with the general
    /// linearizability search over a counter model, on correct histories and on ones with a read's value changed.
    /// </summary>
    [Fact]
    public void Agrees_with_the_general_checker_on_random_histories()
    {
        var random = new Random(20261129);
        int linearizable = 0, not = 0;
        for (int run = 0; run < 3_000; run++)
        {
            var ops = new List<(bool IsWrite, long Value, long Invoked, long Answered)>();
            long tail = 0;
            var count = random.Next(1, 9);
            for (int k = 0; k < count; k++)
            {
                var point = k * 10;
                var invoked = point - random.Next(0, 16);
                var answered = point + random.Next(0, 16);
                if (random.Next(2) == 0) ops.Add((true, tail++, invoked, answered));
                else ops.Add((false, tail, invoked, answered));
            }
            if (random.Next(2) == 0 && ops.Any(o => !o.IsWrite))
            {
                var i = ops.FindIndex(o => !o.IsWrite);
                // Within the positions written: a value past them all needs a write the list lacks, which the
                // check takes for one no client knew of.
                ops[i] = ops[i] with { Value = Math.Clamp(ops[i].Value + (random.Next(2) == 0 ? -1 : 1), 0, tail) };
            }
            var writes = ops.Where(o => o.IsWrite).Select(o => W(o.Value, o.Invoked, o.Answered)).ToList();
            var reads = ops.Where(o => !o.IsWrite).Select(o => R(o.Value, o.Invoked, o.Answered)).ToList();
            var history = ops.Select((o, i) => new Operation<(bool, long), long>(i, (o.IsWrite, o.Value), o.Value, o.Invoked, o.Answered)).ToList();
            var expected = LinearizabilityChecker.Check(new CounterModel(), history).IsLinearizable;
            (CounterReadChecker.Check(writes, reads) == "ok").ShouldBe(expected, string.Join("; ", ops));
            if (expected) linearizable++;
            else not++;
        }
        linearizable.ShouldBeGreaterThan(500);
        not.ShouldBeGreaterThan(200);
    }

    /// <summary>A log's end: a write of position p needs the end at p and moves it to p + 1; a read returns the end.</summary>
    private sealed class CounterModel : IModel<long, (bool IsWrite, long Value), long>
    {
        public long Initial => 0;

        public bool Step(long state, (bool IsWrite, long Value) input, long output, out long next)
        {
            next = input.IsWrite ? state + 1 : state;
            return input.IsWrite ? state == input.Value : output == state;
        }
    }
}

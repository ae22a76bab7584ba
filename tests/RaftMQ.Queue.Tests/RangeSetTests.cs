using RaftMQ.Queue.Groups;

namespace RaftMQ.Queue.Tests;

/// <summary>
/// <see cref="RangeSet"/> against a model, a <see cref="SortedSet{T}"/> of the offsets, under a group's use of it: offsets
/// finished above a floor (one at a time, joining the ranges either side), the floor moving over the run finished at it
/// (<see cref="RangeSet.TakeRunFrom"/>) or jumping (<see cref="RangeSet.RemoveBelow"/>), lookups. Its count, ranges
/// and range count must be the model's, maximal runs; captures taken at random points must hold, at the end, the runs
/// the model had then; a set restored range by range (<see cref="RangeSet.AddRange"/>) from a capture must equal the
/// set captured. <c>RAFTMQ_SOAK=1</c> runs 20 times as many operations.
/// </summary>
public sealed class RangeSetTests
{
    private static readonly bool Soak = Environment.GetEnvironmentVariable("RAFTMQ_SOAK") == "1";

    /// <summary>Operations per trial: 10,000 by default, 200,000 with <c>RAFTMQ_SOAK=1</c>.</summary>
    private static int Ops => Soak ? 200_000 : 10_000;

    [Theory]
    [InlineData(1, 300)]
    [InlineData(2, 300)]
    [InlineData(3, 5_000)]
    [InlineData(4, 5_000)]
    public void Offsets_finished_above_a_moving_floor_give_the_models_set(int seed, int window)
    {
        var random = new Random(seed);
        var check = new RangeCheck(random);
        for (var op = 0; op < Ops; op++)
        {
            var r = random.Next(100);
            if (r < 70) check.Add(check.Floor + (ulong)random.Next(window));
            else if (r < 82) check.TakeRun();
            else if (r < 84) check.RemoveBelow(check.Floor + (ulong)random.Next(window / 2));
            else if (r < 90) check.Remove(random.Next(2) == 0 ? check.Min() : check.Floor + (ulong)random.Next(window));
            else if (r < 99) check.Contains(check.Floor - 3 + (ulong)random.Next(window + 3)); // below the floor too
            else check.Capture();
        }
        check.Finish();
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Thousands_of_ranges_joined_and_taken_give_the_models_set(int seed)
    {
        // Even offsets make a range each, until an odd one joins two; the floor moves rarely: thousands of ranges, so
        // the map under the set splits and empties nodes.
        var random = new Random(seed);
        var check = new RangeCheck(random);
        for (var op = 0; op < Ops; op++)
        {
            var r = random.Next(100);
            var offset = check.Floor + (ulong)random.Next(20_000);
            if (r < 75) check.Add(random.Next(8) == 0 ? offset | 1 : offset & ~1UL);
            else if (r < 77) check.TakeRun();
            else if (r < 78) check.RemoveBelow(check.Floor + (ulong)random.Next(200));
            else if (r < 80) check.Remove(random.Next(2) == 0 ? check.Min() : offset);
            else if (r < 99) check.Contains(offset);
            else check.Capture();
        }
        check.RangeCount.ShouldBeGreaterThan(2 * 64, "enough ranges for a tree of inner nodes");
        check.Finish();
    }

    [Fact]
    public void AddRange_takes_sorted_disjoint_ranges_that_do_not_touch_and_refuses_others()
    {
        var set = new RangeSet();
        set.AddRange(10, 20);
        set.AddRange(21, 22);
        Should.Throw<InvalidDataException>(() => set.AddRange(30, 30)); // empty
        Should.Throw<InvalidDataException>(() => set.AddRange(31, 30)); // reversed
        Should.Throw<InvalidDataException>(() => set.AddRange(22, 25)); // touching the last
        Should.Throw<InvalidDataException>(() => set.AddRange(21, 25)); // overlapping
        Should.Throw<InvalidDataException>(() => set.AddRange(0, 5)); // below
        set.Ranges.ToArray().ShouldBe([(10UL, 20UL), (21UL, 22UL)]);
        (set.Count, set.RangeCount).ShouldBe((11L, 2));
        set.Contains(20).ShouldBeFalse();
        set.Contains(21).ShouldBeTrue();

        // Restored, it behaves as one built offset by offset: 20 joins both neighbours.
        set.Add(20).ShouldBeTrue();
        set.Add(20).ShouldBeFalse();
        set.Ranges.ToArray().ShouldBe([(10UL, 22UL)]);
        set.TakeRunFrom(9).ShouldBe(9UL); // no range starts at the floor
        set.TakeRunFrom(10).ShouldBe(22UL);
        (set.Count, set.RangeCount).ShouldBe((0L, 0));
        set.AddRange(ulong.MaxValue - 2, ulong.MaxValue);
        set.Count.ShouldBe(2L);
        set.Contains(ulong.MaxValue - 1).ShouldBeTrue();
        set.Contains(ulong.MaxValue).ShouldBeFalse();
    }

    /// <summary>A <see cref="RangeSet"/> and its model, changed alike and compared; the captures with the runs the model had then.</summary>
    private sealed class RangeCheck(Random random)
    {
        private readonly RangeSet _set = new();
        private readonly SortedSet<ulong> _model = [];
        private readonly List<(OffsetMap<ulong>.Frozen Frozen, (ulong Start, ulong End)[] Then)> _captures = [];
        private int _steps;

        /// <summary>The group's floor: no offset below it is in the set.</summary>
        public ulong Floor { get; private set; } = 1_000;

        public int RangeCount => _set.RangeCount;

        public void Add(ulong offset)
        {
            Same(_set.Add(offset), _model.Add(offset), "Add", offset);
            Done();
        }

        /// <summary>
        /// The floor moves over the run finished at it, if any: the group's ack at its floor. At the floor, just above
        /// it when the floor is not finished, or at the lowest offset finished (the floor then first jumps there).
        /// </summary>
        public void TakeRun()
        {
            var at = random.Next(3) switch
            {
                0 => Floor,
                1 when !_model.Contains(Floor) => Floor + 1,
                _ => _model.Count > 0 ? _model.Min : Floor,
            };
            var end = at;
            if (_model.Count > 0 && _model.Min == at)
                while (_model.Remove(end)) end++;
            Same(_set.TakeRunFrom(at), end, "TakeRunFrom", at);
            Floor = Math.Max(Floor, end);
            Done();
        }

        public void RemoveBelow(ulong offset)
        {
            _set.RemoveBelow(offset);
            _model.RemoveWhere(o => o < offset);
            Floor = Math.Max(Floor, offset);
            Done();
        }

        /// <summary>Removes one offset (a group's ready set: a pending message delivered), splitting its range when inside it.</summary>
        public void Remove(ulong offset)
        {
            Same(_set.Remove(offset), _model.Remove(offset), "Remove", offset);
            Done();
        }

        /// <summary>The lowest offset, as the set and the model say; the floor when both are empty.</summary>
        public ulong Min()
        {
            var has = _set.TryGetMin(out var min);
            Same(has, _model.Count > 0, "TryGetMin", 0);
            if (has) Same(min, _model.Min, "TryGetMin", 0);
            return has ? min : Floor;
        }

        public void Contains(ulong offset)
        {
            Same(_set.Contains(offset), _model.Contains(offset), "Contains", offset);
            Done();
        }

        /// <summary>A capture, but for 19 in 20 skipped with <c>RAFTMQ_SOAK=1</c> (the captures' memory in the longer runs).</summary>
        public void Capture()
        {
            if (Soak && random.Next(20) != 0) return;
            _captures.Add((_set.Capture(), Runs()));
            Done();
        }

        private void Done()
        {
            Same(_set.Count, (long)_model.Count, "Count", 0);
            if (++_steps % 500 == 0) CheckRanges();
        }

        /// <summary>The ranges are the model's maximal runs.</summary>
        private void CheckRanges()
        {
            var runs = Runs();
            var ranges = _set.Ranges.ToArray();
            if (!ranges.AsSpan().SequenceEqual(runs)) ranges.ShouldBe(runs, "the ranges");
            _set.RangeCount.ShouldBe(runs.Length);
        }

        /// <summary>The model's offsets as maximal runs [start, end), lowest first.</summary>
        private (ulong Start, ulong End)[] Runs()
        {
            var runs = new List<(ulong Start, ulong End)>();
            foreach (var o in _model)
            {
                if (runs.Count > 0 && runs[^1].End == o) runs[^1] = (runs[^1].Start, o + 1);
                else runs.Add((o, o + 1));
            }
            return [.. runs];
        }

        public void Finish()
        {
            CheckRanges();
            _captures.Count.ShouldBeGreaterThan(0);
            foreach (var (frozen, then) in _captures)
            {
                frozen.Count.ShouldBe(then.Length);
                var ranges = frozen.Select(r => (r.Key, r.Value)).ToArray();
                if (!ranges.AsSpan().SequenceEqual(then)) ranges.ShouldBe(then, "a capture, since it was taken");
                // What a snapshot's restore does with it: the same set.
                var restored = new RangeSet();
                foreach (var (start, end) in frozen) restored.AddRange(start, end);
                restored.Ranges.ToArray().AsSpan().SequenceEqual(then).ShouldBeTrue("a set restored from a capture");
                restored.Count.ShouldBe(then.Sum(r => (long)(r.End - r.Start)));
                restored.RangeCount.ShouldBe(then.Length);
            }
        }

        private static void Same<T>(T actual, T expected, string op, ulong offset)
        {
            if (!EqualityComparer<T>.Default.Equals(actual, expected)) actual.ShouldBe(expected, $"{op} at {offset}");
        }
    }
}

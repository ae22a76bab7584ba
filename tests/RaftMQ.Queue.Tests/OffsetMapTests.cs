using System.Collections.Concurrent;
using System.Reflection;
using RaftMQ.Queue.Groups;

namespace RaftMQ.Queue.Tests;

/// <summary>
/// <see cref="OffsetMap{TValue}"/> against a model, a <see cref="SortedDictionary{TKey, TValue}"/>, under random
/// additions, replacements, removals and lookups (exact, floor, ceiling, first, last), in the key patterns that take
/// each of its fast paths: random keys in a small and a large range, the queue's (deliveries at the cursor, acks at
/// the floor), removals in offset order, drains to empty and reuse. Captures taken at random points must enumerate, at
/// the end and after many more changes, exactly what the model held when they were taken. The tree itself is walked
/// (its private root, by reflection) for the B+tree's invariants, and each trial must have grown it at least three
/// levels deep and emptied nodes out of it. A few thousand entries per trial; <c>RAFTMQ_SOAK=1</c> runs 20 times as many
/// operations.
/// </summary>
public sealed class OffsetMapTests
{
    private static readonly bool Soak = Environment.GetEnvironmentVariable("RAFTMQ_SOAK") == "1";

    /// <summary>Operations per trial: 20,000 by default, 400,000 with <c>RAFTMQ_SOAK=1</c>.</summary>
    private static int Ops => Soak ? 400_000 : 20_000;

    /// <summary>
    /// One capture asked for in this many is taken: 1 by default, 20 with <c>RAFTMQ_SOAK=1</c>, so that what the
    /// captures and their expected entries hold stays within memory in the longer runs.
    /// </summary>
    private static int CaptureOdds => Soak ? 20 : 1;

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Random_keys_in_a_small_range_give_the_models_answers(int seed)
    {
        var random = new Random(seed);
        var check = new MapCheck(random);
        // 300 keys: most operations find their key, replace values and take the map near empty and back.
        for (var op = 0; op < Ops; op++) check.Step((ulong)random.Next(300), put: 45, remove: 40);
        check.Finish();
        check.MaxDepth.ShouldBeGreaterThanOrEqualTo(2);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Random_keys_in_a_large_range_give_the_models_answers(int seed)
    {
        var random = new Random(seed);
        var check = new MapCheck(random);
        for (var op = 0; op < Ops; op++)
        {
            // New keys are added; a random key would almost never be found, so most removals take a key the map holds.
            var key = (ulong)random.NextInt64(1L << 40);
            check.Step(key, put: 55, remove: 30, removeKey: random.Next(6) == 0 ? key : check.RandomKey());
        }
        check.Finish();
        check.MaxDepth.ShouldBeGreaterThanOrEqualTo(3, "a few thousand random keys make the tree three levels deep");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Deliveries_at_the_cursor_and_acks_at_the_floor_give_the_models_answers(int seed)
    {
        var random = new Random(seed);
        var check = new MapCheck(random);
        var cursor = 1UL << 32;
        for (var op = 0; op < Ops; op++)
        {
            var r = random.Next(100);
            if (r < 58)
            {
                // A delivery at the cursor, past the highest key; now and then offsets another group took leave gaps.
                check.Put(cursor);
                cursor += random.Next(8) == 0 ? (ulong)random.Next(2, 5) : 1;
            }
            else if (check.Count == 0) check.Look(cursor);
            else if (r < 88)
            {
                // An ack at the floor or just above, mostly found first (the receipt's lease is looked up).
                var key = check.KeyAt(Math.Min(random.Next(3), check.Count - 1));
                if (random.Next(4) != 0) check.Get(key);
                check.Remove(key);
            }
            else if (r < 92)
            {
                var key = check.RandomKey(); // an ack out of order
                check.Get(key);
                check.Remove(key);
            }
            else if (r < 94) check.Put(check.RandomKey()); // a lease extended: the value replaced
            else if (r < 99) check.Look(random.Next(2) == 0 ? check.KeyAt(0) - 2 + (ulong)random.Next(72) : cursor - (ulong)random.Next(0, 70));
            else check.Capture();
        }
        check.Finish();
        check.MaxDepth.ShouldBeGreaterThanOrEqualTo(3);
        check.SawShiftedLeaf.ShouldBeTrue("acks at the floor leave leaves whose entries start past index 0");
        // The floor has passed many leaves' worth of offsets: the leaves that held them were emptied and left the tree
        // (the shape check finds no empty node).
        (check.KeyAt(0) - (1UL << 32)).ShouldBeGreaterThan(20UL * OffsetMap<string>.MaxEntries);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Removals_in_offset_order_give_the_models_answers_and_empty_the_tree(int seed)
    {
        var random = new Random(seed);
        var check = new MapCheck(random);
        var n = Ops / 4;
        for (var round = 0; round < 2; round++)
        {
            // Keys with gaps, added ascending (full leaves) in round 0, in random order (leaves split in half) in round 1.
            var keys = new List<ulong>();
            for (ulong key = 10, i = 0; i < (ulong)n; i++, key += (ulong)random.Next(1, 4)) keys.Add(key);
            var order = round == 0 ? keys : keys.OrderBy(_ => random.Next()).ToList();
            foreach (var key in order)
            {
                check.Put(key);
                if (random.Next(500) == 0) check.Capture();
            }
            check.MaxDepth.ShouldBeGreaterThanOrEqualTo(3);
            check.Capture();
            // Every offset from the lowest to the highest, gaps included, ascending in round 0 and descending in
            // round 1: mostly looked up first, now and then a key added back at the floor or past the top.
            var (low, high) = (keys[0], keys[^1]);
            for (var i = 0UL; i <= high - low; i++)
            {
                var key = round == 0 ? low + i : high - i;
                if (random.Next(3) != 0) check.Get(key);
                check.Remove(key);
                if (random.Next(200) == 0) check.Capture();
                if (random.Next(300) == 0)
                {
                    var back = round == 0 ? key : key + 1; // removed just before: removed again in turn
                    check.Put(back);
                    check.Remove(back);
                }
                if (random.Next(50) == 0) check.Look(key);
            }
            check.Count.ShouldBe(0);
            check.CheckAll();
            check.Depth.ShouldBe(1, "an emptied tree is a leaf again");
            check.Collapsed.ShouldBeTrue();
            check.SawEmptiedLeaves.ShouldBeTrue();
        }
        check.Finish();
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void A_map_drained_to_empty_is_empty_and_serves_again(int seed)
    {
        var random = new Random(seed);
        var check = new MapCheck(random);
        var deepest = 0;
        for (var round = 0; round < 6; round++)
        {
            var size = round switch { 0 => Ops / 4, 3 => 0, _ => random.Next(1, Ops / 8) }; // a round with nothing in it too
            var next = (ulong)random.Next(3) * 1_000_000;
            for (var i = 0; i < size; i++)
            {
                // Ascending, descending or random: each leaves differently shaped leaves.
                var key = (round % 3) switch
                {
                    0 => next++,
                    1 => next + (ulong)(size - i),
                    _ => (ulong)random.NextInt64(long.MaxValue),
                };
                check.Put(key);
                if (random.Next(1_000) == 0) check.Capture();
            }
            check.CheckAll();
            deepest = Math.Max(deepest, check.Depth);
            check.Capture();
            while (check.Count > 0)
            {
                var key = random.Next(2) == 0 ? check.RandomKey() : check.KeyAt(random.Next(2) == 0 ? 0 : check.Count - 1);
                if (random.Next(2) == 0) check.Get(key);
                check.Remove(key);
                if (random.Next(1_000) == 0) check.Capture();
            }
            check.CheckEmpty();
            check.Capture(); // of the empty map
        }
        check.Finish();
        deepest.ShouldBeGreaterThanOrEqualTo(3);
        check.Collapsed.ShouldBeTrue();
    }

    [Fact]
    public void The_dictionary_surface_answers_as_a_dictionary()
    {
        var map = new OffsetMap<string>();
        map.ContainsKey(0).ShouldBeFalse();
        Should.Throw<KeyNotFoundException>(() => map[7]);
        map.Keys.ShouldBeEmpty();
        map.TryGetFirst(out _, out _).ShouldBeFalse();
        map.TryGetLast(out _, out _).ShouldBeFalse();
        map.Remove(7, out var none).ShouldBeFalse();
        none.ShouldBeNull();

        // The extreme keys: 0 for first and ceiling, the maximum for last and floor.
        map.Add(ulong.MaxValue, "max");
        map.Add(0, "zero");
        map.Add(7, "seven");
        map.Set(7, "SEVEN");
        Should.Throw<ArgumentException>(() => map.Add(0, "again"));
        map[0].ShouldBe("zero");
        map[7].ShouldBe("SEVEN");
        map.Count.ShouldBe(3);
        map.Keys.ShouldBe([0UL, 7UL, ulong.MaxValue]);
        map.Values.ShouldBe(["zero", "SEVEN", "max"]);
        IReadOnlyDictionary<ulong, string> dictionary = map;
        dictionary.ToArray().ShouldBe([new(0, "zero"), new(7, "SEVEN"), new(ulong.MaxValue, "max")]);
        map.TryGetFirst(out var first, out var firstValue).ShouldBeTrue();
        first.ShouldBe(0UL);
        firstValue.ShouldBe("zero");
        map.TryGetLast(out var last, out var lastValue).ShouldBeTrue();
        last.ShouldBe(ulong.MaxValue);
        lastValue.ShouldBe("max");
        map.TryGetFloor(ulong.MaxValue - 1, out var floor, out _).ShouldBeTrue();
        floor.ShouldBe(7UL);
        map.TryGetCeiling(8, out var ceiling, out _).ShouldBeTrue();
        ceiling.ShouldBe(ulong.MaxValue);
        map.TryGetCeiling(0, out ceiling, out _).ShouldBeTrue();
        ceiling.ShouldBe(0UL);

        var captured = map.Capture();
        map.Remove(7, out var removed).ShouldBeTrue();
        removed.ShouldBe("SEVEN");
        map.Remove(7).ShouldBeFalse();
        map.Remove(ulong.MaxValue).ShouldBeTrue();
        map.TryGetLast(out last, out _).ShouldBeTrue();
        last.ShouldBe(0UL);
        map.Remove(0).ShouldBeTrue();
        map.Count.ShouldBe(0);
        map.ShouldBeEmpty();
        captured.Count.ShouldBe(3);
        captured.Select(e => e.Key).ShouldBe([0UL, 7UL, ulong.MaxValue]);

        // Two captures with no change between them, then a change: both keep what was there.
        map.Add(1, "one");
        var (a, b) = (map.Capture(), map.Capture());
        map.Set(1, "ONE");
        map.Add(2, "two");
        a.ToArray().ShouldBe([new(1, "one")]);
        b.ToArray().ShouldBe([new(1, "one")]);
        map.ToArray().ShouldBe([new(1, "ONE"), new(2, "two")]);
    }

    [Fact]
    public async Task Captures_read_on_another_thread_while_the_map_goes_on_changing_keep_what_they_held()
    {
        var random = new Random(11);
        var map = new OffsetMap<string>();
        var model = new SortedDictionary<ulong, string>();
        using var captures = new BlockingCollection<(OffsetMap<string>.Frozen Frozen, KeyValuePair<ulong, string>[] Then)>();
        var reader = Task.Run(() =>
        {
            var wrong = new List<string>();
            foreach (var (frozen, then) in captures.GetConsumingEnumerable())
            {
                // Read twice: a change on the other thread in between would show as well as one before.
                for (var pass = 0; pass < 2; pass++)
                {
                    var entries = frozen.ToArray();
                    if (frozen.Count != then.Length || !Equal(entries, then)) wrong.Add($"a capture of {then.Length} entries read {entries.Length}");
                }
            }
            return wrong;
        });
        try
        {
            var cursor = 0UL;
            for (var op = 0; op < Ops; op++)
            {
                if (random.Next(100) < 58 || model.Count == 0)
                {
                    map.Add(cursor, $"v{op}");
                    model.Add(cursor++, $"v{op}");
                }
                else
                {
                    var key = model.Keys.First() + (ulong)random.Next(3);
                    map.TryGetValue(key, out _);
                    map.Remove(key).ShouldBe(model.Remove(key));
                }
                if (random.Next(200 * CaptureOdds) == 0) captures.Add((map.Capture(), model.ToArray()));
            }
        }
        finally
        {
            captures.CompleteAdding();
        }
        (await reader).ShouldBeEmpty();
        SameEntries(map, model, "the map");
    }

    /// <summary>
    /// Shouldly's message for two different sequences of entries, without its cost, nor that of
    /// <see cref="KeyValuePair{TKey, TValue}"/>'s reflective equality, for two equal ones.
    /// </summary>
    private static void SameEntries(IEnumerable<KeyValuePair<ulong, string>> actual, IEnumerable<KeyValuePair<ulong, string>> expected, string what)
    {
        var (a, e) = (actual.ToArray(), expected.ToArray());
        if (!Equal(a, e)) a.ShouldBe(e, what);
    }

    private static bool Equal(KeyValuePair<ulong, string>[] a, KeyValuePair<ulong, string>[] b)
    {
        if (a.Length != b.Length) return false;
        for (var i = 0; i < a.Length; i++)
            if (a[i].Key != b[i].Key || !string.Equals(a[i].Value, b[i].Value, StringComparison.Ordinal)) return false;
        return true;
    }

    /// <summary>
    /// An <see cref="OffsetMap{TValue}"/> and its model, changed alike and compared after each operation; the captures
    /// taken with what the model held then; what the tree's shape has shown so far.
    /// </summary>
    private sealed class MapCheck(Random random)
    {
        private readonly OffsetMap<string> _map = new();
        private readonly SortedDictionary<ulong, string> _model = [];
        private readonly List<ulong> _keys = []; // the model's keys, sorted: for floor, ceiling and a key at random
        private readonly List<(OffsetMap<string>.Frozen Frozen, KeyValuePair<ulong, string>[] Then)> _captures = [];
        private int _writes;
        private int _steps;
        private int _leaves;

        public int Count => _model.Count;

        /// <summary>The tree's depth at the last <see cref="CheckAll"/>, and the most any showed.</summary>
        public int Depth { get; private set; } = 1;

        public int MaxDepth { get; private set; } = 1;

        /// <summary>Whether the tree was ever less deep than at the check before (its root gave way to a child).</summary>
        public bool Collapsed { get; private set; }

        /// <summary>Whether a check ever found fewer leaves than the one before (emptied leaves left their parents).</summary>
        public bool SawEmptiedLeaves { get; private set; }

        /// <summary>Whether a check ever found a leaf whose entries start past index 0.</summary>
        public bool SawShiftedLeaf { get; private set; }

        public ulong KeyAt(int i) => _keys[i];

        public ulong RandomKey() => _keys.Count == 0 ? (ulong)random.Next() : _keys[random.Next(_keys.Count)];

        /// <summary>
        /// One operation at random: put% an add or replace of <paramref name="key"/>, remove% a removal of
        /// <paramref name="removeKey"/> (by default the same), else a lookup of either, now and then a capture.
        /// </summary>
        public void Step(ulong key, int put, int remove, ulong? removeKey = null)
        {
            var r = random.Next(100);
            if (r < put) Put(key);
            else if (r < put + remove)
            {
                var k = removeKey ?? key;
                if (random.Next(2) == 0) Get(k); // then the removal finds the leaf of the lookup
                Remove(k);
            }
            else if (r < 99) Look(random.Next(2) == 0 ? key : removeKey ?? key);
            else Capture();
        }

        /// <summary>Adds <paramref name="key"/> or replaces its value, through <c>Add</c> or <c>Set</c>.</summary>
        public void Put(ulong key)
        {
            var value = $"v{++_writes}";
            if (_model.TryGetValue(key, out var old))
            {
                if (random.Next(8) == 0)
                {
                    Should.Throw<ArgumentException>(() => _map.Add(key, value));
                    Same(_map[key], old, "a refused Add changed the value: this[]", key);
                }
                _map.Set(key, value);
            }
            else
            {
                if (random.Next(2) == 0) _map.Add(key, value);
                else _map.Set(key, value);
                _keys.Insert(~_keys.BinarySearch(key), key);
            }
            _model[key] = value;
            Done();
        }

        public void Remove(ulong key)
        {
            var had = _model.Remove(key, out var expected);
            if (random.Next(2) == 0) Same(_map.Remove(key), had, "Remove", key);
            else
            {
                Same(_map.Remove(key, out var value), had, "Remove with the value", key);
                Same(value, expected, "the value taken by Remove", key);
            }
            if (had) _keys.RemoveAt(_keys.BinarySearch(key));
            Done();
        }

        public void Get(ulong key)
        {
            var had = _model.TryGetValue(key, out var expected);
            Same(_map.TryGetValue(key, out var value), had, "TryGetValue", key);
            Same(value, expected, "the value of TryGetValue", key);
            if (random.Next(8) == 0)
            {
                Same(_map.ContainsKey(key), had, "ContainsKey", key);
                if (had) Same(_map[key], expected, "this[]", key);
                else Should.Throw<KeyNotFoundException>(() => _map[key]);
            }
            Done();
        }

        /// <summary>A lookup at random around <paramref name="key"/>: exact, floor, ceiling, or first and last.</summary>
        public void Look(ulong key)
        {
            switch (random.Next(4))
            {
                case 0:
                    Get(key);
                    return;
                case 1:
                    {
                        var i = _keys.BinarySearch(key);
                        i = i >= 0 ? i : ~i - 1; // the highest at or below
                        ShouldFind(_map.TryGetFloor(key, out var found, out var value), found, value, i, "TryGetFloor", key);
                        break;
                    }
                case 2:
                    {
                        var i = _keys.BinarySearch(key);
                        i = i >= 0 ? i : ~i; // the lowest at or above
                        ShouldFind(_map.TryGetCeiling(key, out var found, out var value), found, value, i, "TryGetCeiling", key);
                        break;
                    }
                default:
                    ShouldFind(_map.TryGetFirst(out var first, out var firstValue), first, firstValue, 0, "TryGetFirst", 0);
                    ShouldFind(_map.TryGetLast(out var last, out var lastValue), last, lastValue, _keys.Count - 1, "TryGetLast", ulong.MaxValue);
                    break;
            }
            Done();
        }

        /// <summary>A floor, ceiling, first or last at <paramref name="at"/> should find the model's key at index <paramref name="i"/>, if any.</summary>
        private void ShouldFind(bool found, ulong key, string? value, int i, string op, ulong at)
        {
            var expected = i >= 0 && i < _keys.Count;
            Same(found, expected, op, at);
            if (!expected) return;
            Same(key, _keys[i], op, at);
            Same(value, _model[key], $"the value of {op}", at);
        }

        /// <summary>Shouldly's message when <paramref name="actual"/> is not <paramref name="expected"/>, without its cost when it is.</summary>
        private static void Same<T>(T actual, T expected, string op, ulong key)
        {
            if (!EqualityComparer<T>.Default.Equals(actual, expected)) actual.ShouldBe(expected, $"{op} at {key}");
        }

        public void Capture()
        {
            if (random.Next(CaptureOdds) != 0) return;
            _captures.Add((_map.Capture(), _model.ToArray()));
            Done();
        }

        private void Done()
        {
            Same(_map.Count, _model.Count, "Count after an operation", 0);
            if (++_steps % 1_000 == 0) CheckAll();
        }

        /// <summary>The whole map against the model, and the tree's invariants.</summary>
        public void CheckAll()
        {
            SameEntries(_map, _model, "the map");
            var shape = TreeShape.Of(_map, _map.Count);
            Collapsed |= shape.Depth < Depth;
            SawEmptiedLeaves |= shape.Leaves < _leaves;
            SawShiftedLeaf |= shape.Shifted;
            (Depth, _leaves) = (shape.Depth, shape.Leaves);
            MaxDepth = Math.Max(MaxDepth, Depth);
        }

        /// <summary>An empty map: every lookup fails, and its root is a leaf again.</summary>
        public void CheckEmpty()
        {
            _model.ShouldBeEmpty();
            _map.Count.ShouldBe(0);
            _map.ShouldBeEmpty();
            _map.TryGetFirst(out _, out _).ShouldBeFalse();
            _map.TryGetLast(out _, out _).ShouldBeFalse();
            _map.TryGetFloor(ulong.MaxValue, out _, out _).ShouldBeFalse();
            _map.TryGetCeiling(0, out _, out _).ShouldBeFalse();
            _map.Remove(RandomKey()).ShouldBeFalse();
            CheckAll();
            Depth.ShouldBe(1);
        }

        /// <summary>The map and every capture, each against what the model held then.</summary>
        public void Finish()
        {
            CheckAll();
            _captures.Count.ShouldBeGreaterThan(0);
            foreach (var (frozen, then) in _captures)
            {
                frozen.Count.ShouldBe(then.Length);
                SameEntries(frozen, then, "a capture, since it was taken");
                TreeShape.Of(frozen, then.Length);
            }
        }
    }
}

/// <summary>
/// The B+tree's invariants, read from an <see cref="OffsetMap{TValue}"/>'s or a capture's private root by
/// reflection: no node empty (but the root of an empty map) or over full, all leaves at one depth, each leaf's
/// entries within its arrays, keys ascending across the leaves and within the bounds the inner nodes' keys set.
/// </summary>
internal static class TreeShape
{
    public static (int Depth, int Leaves, bool Shifted) Of<T>(OffsetMap<T> map, int count) =>
        Of<T>(Root<T>(typeof(OffsetMap<T>), map), count);

    public static (int Depth, int Leaves, bool Shifted) Of<T>(OffsetMap<T>.Frozen frozen, int count) =>
        Of<T>(Root<T>(typeof(OffsetMap<T>.Frozen), frozen), count);

    private static OffsetMap<T>.Node Root<T>(Type type, object instance) =>
        (OffsetMap<T>.Node)(type.GetField("_root", BindingFlags.NonPublic | BindingFlags.Instance)
            ?? throw new InvalidOperationException($"{type} has no field _root")).GetValue(instance)!;

    private static (int Depth, int Leaves, bool Shifted) Of<T>(OffsetMap<T>.Node root, int count)
    {
        var (entries, leaves, depthOfLeaves, shifted) = (0, 0, 0, false);
        ulong? previous = null;

        void Walk(OffsetMap<T>.Node node, int depth, ulong low, ulong? high)
        {
            Require(node.Count <= OffsetMap<T>.MaxEntries, $"a node of {node.Count} entries");
            Require(node.Count > 0 || (node == root && node is OffsetMap<T>.Leaf), "an empty node in the tree");
            if (node is OffsetMap<T>.Leaf leaf)
            {
                if (depthOfLeaves == 0) depthOfLeaves = depth;
                Require(depth == depthOfLeaves, $"leaves at depths {depthOfLeaves} and {depth}");
                Require(leaf.Start >= 0 && leaf.Start + leaf.Count <= OffsetMap<T>.MaxEntries, $"a leaf's entries at [{leaf.Start}, {leaf.Start + leaf.Count})");
                shifted |= leaf.Start > 0;
                leaves++;
                entries += leaf.Count;
                for (var i = 0; i < leaf.Count; i++)
                {
                    var key = leaf.Keys[leaf.Start + i];
                    Require(previous is not { } p || key > p, $"key {key} after {previous}");
                    Require(key >= low && (high is not { } h || key < h), $"key {key} in a child for [{low}, {high})");
                    previous = key;
                }
                return;
            }
            var inner = (OffsetMap<T>.Inner)node;
            for (var c = 0; c < inner.Count; c++)
            {
                var key = inner.Keys[c];
                Require(c == 0 || (key > (c == 1 ? low : inner.Keys[c - 1]) && (high is not { } h || key < h)), $"inner key {key} (child {c}) in a node for [{low}, {high})");
                Walk(inner.Children[c], depth + 1, c == 0 ? low : key, c + 1 < inner.Count ? inner.Keys[c + 1] : high);
            }
        }

        Walk(root, 1, 0, null);
        entries.ShouldBe(count, "entries in the leaves");
        return (depthOfLeaves, leaves, shifted);
    }

    private static void Require(bool holds, string what)
    {
        if (!holds) throw new ShouldAssertException($"the tree: {what}");
    }
}

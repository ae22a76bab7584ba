using System.Collections;
using System.Diagnostics.CodeAnalysis;

namespace RaftMQ.Queue.Groups;

/// <summary>
/// A sorted map from offsets to values whose contents a snapshot captures in O(1) (<see cref="Capture"/>) and reads
/// later from another thread while the map goes on changing. A B+tree: leaves of up to <see cref="MaxEntries"/>
/// sorted keys with their values, inner nodes of up to as many children with the lowest key each may hold; all leaves
/// at one depth, none empty (but the root of an empty map). Lookups, additions and removals are O(log n).
/// </summary>
/// <remarks>
/// Every node records the owner it was made for. The map changes in place the nodes of its current owner; a capture
/// takes the root and gives the map a new owner, so that from then on a change first copies (for the new owner) each
/// node on its path that an earlier owner made. The nodes a capture holds are therefore never written again. Between
/// two captures a node is copied at most once: a change costs O(log n) as in a mutable tree, plus a copy of its path
/// the first time after a capture. A node emptied by a removal leaves its parent, and a leaf left with
/// <see cref="MinEntries"/> or fewer joins a neighbouring leaf that has room (inner nodes are not joined); the tree is
/// no deeper than the most entries it ever held required.
/// </remarks>
internal sealed class OffsetMap<TValue> : IReadOnlyDictionary<ulong, TValue>
{
    /// <summary>Most entries of a leaf, children of an inner node.</summary>
    internal const int MaxEntries = 64;

    /// <summary>
    /// A leaf left with this many entries or fewer by a removal joins a neighbour that has room for them: so that
    /// the entries a removal leaves scattered (a lease held while those around it were acked) share leaves, and a
    /// map holds O(entries) memory, not a 64-entry leaf per scattered entry.
    /// </summary>
    internal const int MinEntries = MaxEntries / 4;

    private object _owner = new();
    private Node _root;
    private Leaf? _hot; // the leaf of the last lookup or removal (see Hot)
    private Leaf? _tail; // the leaf with the highest keys, when known (see Set)
    private Leaf? _inserted; // the leaf the last Insert went to, and whether by the last child at every level
    private bool _insertedRightmost;

    public OffsetMap() => _root = new Leaf(_owner);

    public int Count { get; private set; }

    public TValue this[ulong key] => TryGetValue(key, out var value) ? value : throw new KeyNotFoundException($"offset {key} is not in the map");

    public IEnumerable<ulong> Keys => this.Select(e => e.Key);

    public IEnumerable<TValue> Values => this.Select(e => e.Value);

    public bool ContainsKey(ulong key) => TryGetValue(key, out _);

    public bool TryGetValue(ulong key, [MaybeNullWhen(false)] out TValue value)
    {
        var leaf = Hot(key);
        if (leaf is null)
        {
            var node = _root;
            while (node is Inner inner) node = inner.Children[inner.ChildIndex(key)];
            _hot = leaf = (Leaf)node;
        }
        var i = leaf.Search(key);
        if (i < 0)
        {
            value = default;
            return false;
        }
        value = leaf.Values[leaf.Start + i];
        return true;
    }

    /// <summary>Adds <paramref name="key"/>, which must not be in the map.</summary>
    public void Add(ulong key, TValue value)
    {
        if (!Set(key, value, replace: false)) throw new ArgumentException($"offset {key} is already in the map", nameof(key));
    }

    /// <summary>Adds <paramref name="key"/> or replaces its value.</summary>
    public void Set(ulong key, TValue value) => Set(key, value, replace: true);

    /// <summary>Adds <paramref name="key"/>, or replaces its value when <paramref name="replace"/>; false when it was there.</summary>
    private bool Set(ulong key, TValue value, bool replace)
    {
        // Past the highest key (a delivery at the cursor), with room in its leaf: no other node changes.
        if (_tail is { } tail && tail.Owner == _owner && tail.Count is > 0 and < MaxEntries && key > tail.Keys[tail.Start + tail.Count - 1])
        {
            tail.InsertAt(tail.Count, key, value);
            Count++;
            return true;
        }
        var root = Writable(_root);
        var added = true;
        _insertedRightmost = true;
        var split = Insert(root, key, value, replace, ref added, out var splitKey);
        // A split may make another leaf the last: known again from the next insert down the last children.
        _tail = _insertedRightmost ? _inserted : null;
        if (split is { } right)
        {
            var top = new Inner(_owner);
            top.Children[0] = root;
            top.Keys[1] = splitKey;
            top.Children[1] = right;
            top.Count = 2;
            root = top;
        }
        _root = root;
        if (added) Count++;
        return added;
    }

    public bool Remove(ulong key) => Remove(key, out _);

    /// <summary>
    /// Removes <paramref name="key"/>; false when it was not there (the nodes on its path may then have been copied
    /// all the same: the contents are unchanged).
    /// </summary>
    public bool Remove(ulong key, [MaybeNullWhen(false)] out TValue value)
    {
        if (Hot(key) is { Count: > MinEntries + 1 } hot)
        {
            // Within the leaf's keys, so in it if anywhere, and it keeps more than MinEntries: no other node changes.
            var at = hot.Search(key);
            if (at < 0)
            {
                value = default;
                return false;
            }
            value = hot.Values[hot.Start + at];
            hot.RemoveAt(at);
            Count--;
            return true;
        }
        var root = Writable(_root);
        _root = root;
        if (!Remove(root, key, out value)) return false;
        // A root with one child gives way to it; a root left without children to an empty leaf.
        while (root is Inner { Count: <= 1 } inner) root = inner.Count == 1 ? inner.Children[0] : new Leaf(_owner);
        _root = root;
        Count--;
        return true;
    }

    /// <summary>The entry with the lowest key.</summary>
    public bool TryGetFirst(out ulong key, [MaybeNullWhen(false)] out TValue value) => TryGetCeiling(0, out key, out value);

    /// <summary>The entry with the highest key.</summary>
    public bool TryGetLast(out ulong key, [MaybeNullWhen(false)] out TValue value) => TryGetFloor(ulong.MaxValue, out key, out value);

    /// <summary>The entry with the highest key at or below <paramref name="at"/>.</summary>
    public bool TryGetFloor(ulong at, out ulong key, [MaybeNullWhen(false)] out TValue value) => Floor(_root, at, out key, out value);

    /// <summary>The entry with the lowest key at or above <paramref name="at"/>.</summary>
    public bool TryGetCeiling(ulong at, out ulong key, [MaybeNullWhen(false)] out TValue value) => Ceiling(_root, at, out key, out value);

    /// <summary>
    /// The entries as they are now, which never change after: for a reader on any thread while this map goes on
    /// changing. O(1); the map's next changes copy the nodes they touch once each.
    /// </summary>
    public Frozen Capture()
    {
        var frozen = new Frozen(_root, Count);
        _owner = new object();
        return frozen;
    }

    /// <summary>The entries, lowest key first. The map must not change while they are enumerated.</summary>
    public Enumerator GetEnumerator() => new(_root);

    IEnumerator<KeyValuePair<ulong, TValue>> IEnumerable<KeyValuePair<ulong, TValue>>.GetEnumerator() => GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>
    /// The leaf of the last lookup or removal when <paramref name="key"/> lies within its keys and it is still in the
    /// tree and this owner's (not shared with a capture); else null. Acks come in offset order, so they mostly find
    /// the leaf of the one before. A leaf of this owner leaves the tree only emptied, and leaves hold disjoint ranges
    /// of keys, so a key within its lowest and highest is in it or not in the map.
    /// </summary>
    private Leaf? Hot(ulong key)
    {
        var leaf = _hot;
        return leaf is not null && leaf.Owner == _owner && leaf.Count > 0
            && key >= leaf.Keys[leaf.Start] && key <= leaf.Keys[leaf.Start + leaf.Count - 1] ? leaf : null;
    }

    /// <summary><paramref name="node"/> if this owner made it, else a copy of it for this owner (its children still shared).</summary>
    private Node Writable(Node node) => node.Owner == _owner ? node : node.CopyFor(_owner);

    /// <summary>
    /// Inserts into <paramref name="node"/> (writable). When the node was full, it splits: returns its new right
    /// sibling, whose lowest key is <paramref name="splitKey"/>.
    /// </summary>
    private Node? Insert(Node node, ulong key, TValue value, bool replace, ref bool added, out ulong splitKey)
    {
        splitKey = 0;
        if (node is Leaf leaf)
        {
            _inserted = leaf;
            var i = leaf.Search(key);
            if (i >= 0)
            {
                added = false;
                if (replace) leaf.Values[leaf.Start + i] = value;
                return null;
            }
            i = ~i;
            if (leaf.Count < MaxEntries)
            {
                leaf.InsertAt(i, key, value);
                return null;
            }
            _insertedRightmost = false; // a split
            var right = new Leaf(_owner);
            if (i == leaf.Count)
            {
                // Appending past the end (offsets mostly grow): the full node stays full, the new one starts with the key.
                right.InsertAt(0, key, value);
            }
            else
            {
                leaf.MoveUpperHalfTo(right);
                if (i <= leaf.Count) leaf.InsertAt(i, key, value);
                else right.InsertAt(i - leaf.Count, key, value);
            }
            splitKey = right.Keys[right.Start];
            return right;
        }
        var inner = (Inner)node;
        var c = inner.ChildIndex(key);
        if (c != inner.Count - 1) _insertedRightmost = false;
        var child = inner.WritableChild(c, _owner);
        if (Insert(child, key, value, replace, ref added, out var childSplitKey) is not { } split) return null;
        if (inner.Count < MaxEntries)
        {
            inner.InsertAt(c + 1, childSplitKey, split);
            return null;
        }
        var sibling = new Inner(_owner);
        if (c + 1 == inner.Count) sibling.InsertAt(0, childSplitKey, split);
        else
        {
            inner.MoveUpperHalfTo(sibling);
            if (c + 1 <= inner.Count) inner.InsertAt(c + 1, childSplitKey, split);
            else sibling.InsertAt(c + 1 - inner.Count, childSplitKey, split);
        }
        splitKey = sibling.Keys[0];
        return sibling;
    }

    /// <summary>
    /// Removes <paramref name="key"/> from <paramref name="node"/> (writable), if there; a child emptied leaves it,
    /// and a leaf left with <see cref="MinEntries"/> or fewer joins a neighbouring leaf with room for them.
    /// </summary>
    private bool Remove(Node node, ulong key, [MaybeNullWhen(false)] out TValue value)
    {
        if (node is Leaf leaf)
        {
            var i = leaf.Search(key);
            if (i < 0)
            {
                value = default;
                return false;
            }
            value = leaf.Values[leaf.Start + i];
            leaf.RemoveAt(i);
            return true;
        }
        var inner = (Inner)node;
        var c = inner.ChildIndex(key);
        var child = inner.WritableChild(c, _owner);
        if (!Remove(child, key, out value)) return false;
        if (child.Count == 0) inner.RemoveAt(c);
        else if (child is Leaf { Count: <= MinEntries } sparse) JoinNeighbour(inner, c, sparse);
        return true;
    }

    /// <summary>
    /// Moves the entries of <paramref name="inner"/>'s leaf at <paramref name="c"/> and those of the leaf before or
    /// after it into the lower of the two, when they fit in one, and drops the higher from <paramref name="inner"/>.
    /// </summary>
    private void JoinNeighbour(Inner inner, int c, Leaf sparse)
    {
        int low;
        if (c > 0 && inner.Children[c - 1] is Leaf before && before.Count + sparse.Count <= MaxEntries) low = c - 1;
        else if (c + 1 < inner.Count && inner.Children[c + 1] is Leaf after && after.Count + sparse.Count <= MaxEntries) low = c;
        else return;
        var into = (Leaf)inner.WritableChild(low, _owner);
        var from = (Leaf)inner.Children[low + 1];
        into.Append(from);
        inner.RemoveAt(low + 1);
        // A leaf of this owner that left the tree must not serve the shortcuts (Hot, the tail); an earlier owner's
        // may be a capture's, and is not touched.
        if (from.Owner == _owner) from.Count = 0;
    }

    private static bool Floor(Node node, ulong at, out ulong key, [MaybeNullWhen(false)] out TValue value)
    {
        if (node is Leaf leaf)
        {
            var i = leaf.Search(at);
            if (i < 0) i = ~i - 1;
            return leaf.EntryAt(i, out key, out value);
        }
        var inner = (Inner)node;
        var c = inner.ChildIndex(at);
        if (Floor(inner.Children[c], at, out key, out value)) return true;
        // Every key of the child before is below the separator, which is at or below at.
        return c > 0 && Floor(inner.Children[c - 1], ulong.MaxValue, out key, out value);
    }

    private static bool Ceiling(Node node, ulong at, out ulong key, [MaybeNullWhen(false)] out TValue value)
    {
        if (node is Leaf leaf)
        {
            var i = leaf.Search(at);
            if (i < 0) i = ~i;
            return leaf.EntryAt(i, out key, out value);
        }
        var inner = (Inner)node;
        var c = inner.ChildIndex(at);
        if (Ceiling(inner.Children[c], at, out key, out value)) return true;
        // Every key of the child after is at or above its separator, which is above at.
        return c + 1 < inner.Count && Ceiling(inner.Children[c + 1], 0, out key, out value);
    }

    /// <summary>A map's entries as captured: never changed again, so any thread may read them.</summary>
    public sealed class Frozen : IEnumerable<KeyValuePair<ulong, TValue>>
    {
        private readonly Node _root;

        internal Frozen(Node root, int count) => (_root, Count) = (root, count);

        public int Count { get; }

        /// <summary>The entries, lowest key first.</summary>
        public Enumerator GetEnumerator() => new(_root);

        IEnumerator<KeyValuePair<ulong, TValue>> IEnumerable<KeyValuePair<ulong, TValue>>.GetEnumerator() => GetEnumerator();

        IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
    }

    /// <summary>Walks the leaves from the lowest key: the path of inner nodes from the root, each with the child being walked.</summary>
    public struct Enumerator : IEnumerator<KeyValuePair<ulong, TValue>>
    {
        private readonly (Inner Node, int Child)[] _path;
        private Leaf? _leaf;
        private int _index;

        internal Enumerator(Node root)
        {
            var depth = 0;
            for (var n = root; n is Inner i; n = i.Children[0]) depth++;
            _path = depth == 0 ? [] : new (Inner, int)[depth];
            var node = root;
            for (var level = 0; level < depth; level++)
            {
                var inner = (Inner)node;
                _path[level] = (inner, 0);
                node = inner.Children[0];
            }
            _leaf = (Leaf)node;
            _index = -1;
        }

        public readonly KeyValuePair<ulong, TValue> Current => new(_leaf!.Keys[_leaf.Start + _index], _leaf.Values[_leaf.Start + _index]);

        readonly object IEnumerator.Current => Current;

        public bool MoveNext()
        {
            if (_leaf is null) return false;
            if (++_index < _leaf.Count) return true;
            // The next leaf: up to the lowest inner node with a child after the one walked, then down its leftmost path.
            for (var level = _path.Length - 1; level >= 0; level--)
            {
                var (inner, child) = _path[level];
                if (child + 1 >= inner.Count) continue;
                _path[level] = (inner, child + 1);
                var node = inner.Children[child + 1];
                for (var below = level + 1; below < _path.Length; below++)
                {
                    var next = (Inner)node;
                    _path[below] = (next, 0);
                    node = next.Children[0];
                }
                (_leaf, _index) = ((Leaf)node, 0);
                return true;
            }
            _leaf = null;
            return false;
        }

        public readonly void Reset() => throw new NotSupportedException();

        public readonly void Dispose()
        {
        }
    }

    internal abstract class Node(object owner)
    {
        public readonly object Owner = owner;

        /// <summary>
        /// The keys: a leaf's entries (from <see cref="Leaf.Start"/>), or the lowest key each child of an inner node
        /// may hold (the first unused).
        /// </summary>
        public readonly ulong[] Keys = new ulong[MaxEntries];

        public int Count;

        public abstract Node CopyFor(object owner);
    }

    /// <summary>
    /// A leaf: its entries lie in [<see cref="Start"/>, <see cref="Start"/> + <see cref="Node.Count"/>) of its arrays,
    /// so that taking the lowest entry (an ack at the floor) or adding past the highest (a delivery at the cursor) moves
    /// no other; an entry in between moves those on its shorter side.
    /// </summary>
    internal sealed class Leaf(object owner) : Node(owner)
    {
        public readonly TValue[] Values = new TValue[MaxEntries];

        public int Start;

        public override Node CopyFor(object owner)
        {
            var copy = new Leaf(owner) { Count = Count, Start = Start };
            Array.Copy(Keys, Start, copy.Keys, Start, Count);
            Array.Copy(Values, Start, copy.Values, Start, Count);
            return copy;
        }

        /// <summary>The index (from <see cref="Start"/>) of <paramref name="key"/>, or the bitwise complement of where it would go.</summary>
        public int Search(ulong key) => Keys.AsSpan(Start, Count).BinarySearch(key);

        /// <summary>Inserts at index <paramref name="i"/> (from <see cref="Start"/>); the leaf is not full.</summary>
        public void InsertAt(int i, ulong key, TValue value)
        {
            if (Start + Count < MaxEntries && (Start == 0 || i >= Count / 2))
            {
                Array.Copy(Keys, Start + i, Keys, Start + i + 1, Count - i);
                Array.Copy(Values, Start + i, Values, Start + i + 1, Count - i);
            }
            else
            {
                // No room after the entries, or fewer to move before: those before move down one.
                Array.Copy(Keys, Start, Keys, Start - 1, i);
                Array.Copy(Values, Start, Values, Start - 1, i);
                Start--;
            }
            Keys[Start + i] = key;
            Values[Start + i] = value;
            Count++;
        }

        /// <summary>Removes index <paramref name="i"/> (from <see cref="Start"/>).</summary>
        public void RemoveAt(int i)
        {
            if (i < Count / 2)
            {
                Array.Copy(Keys, Start, Keys, Start + 1, i);
                Array.Copy(Values, Start, Values, Start + 1, i);
                Values[Start] = default!; // let go of what the value refers to
                Start++;
            }
            else
            {
                Array.Copy(Keys, Start + i + 1, Keys, Start + i, Count - i - 1);
                Array.Copy(Values, Start + i + 1, Values, Start + i, Count - i - 1);
                Values[Start + Count - 1] = default!;
            }
            Count--;
            if (Count == 0) Start = 0;
        }

        /// <summary>Adds <paramref name="higher"/>'s entries, all above this leaf's, after its own (they fit); <paramref name="higher"/> is only read.</summary>
        public void Append(Leaf higher)
        {
            if (Start + Count + higher.Count > MaxEntries)
            {
                Array.Copy(Keys, Start, Keys, 0, Count);
                Array.Copy(Values, Start, Values, 0, Count);
                Array.Clear(Values, Count, Start);
                Start = 0;
            }
            Array.Copy(higher.Keys, higher.Start, Keys, Start + Count, higher.Count);
            Array.Copy(higher.Values, higher.Start, Values, Start + Count, higher.Count);
            Count += higher.Count;
        }

        public void MoveUpperHalfTo(Leaf right)
        {
            var half = Count / 2;
            right.Count = Count - half;
            Array.Copy(Keys, Start + half, right.Keys, 0, right.Count);
            Array.Copy(Values, Start + half, right.Values, 0, right.Count);
            Array.Clear(Values, Start + half, right.Count);
            Count = half;
        }

        public bool EntryAt(int i, out ulong key, [MaybeNullWhen(false)] out TValue value)
        {
            if (i < 0 || i >= Count)
            {
                (key, value) = (0, default);
                return false;
            }
            (key, value) = (Keys[Start + i], Values[Start + i]);
            return true;
        }
    }

    internal sealed class Inner(object owner) : Node(owner)
    {
        public readonly Node[] Children = new Node[MaxEntries];

        public override Node CopyFor(object owner)
        {
            var copy = new Inner(owner) { Count = Count };
            Array.Copy(Keys, copy.Keys, Count);
            Array.Copy(Children, copy.Children, Count);
            return copy;
        }

        /// <summary>The child whose keys may include <paramref name="key"/>: the last whose lowest key is at or below it (the first for a lower key).</summary>
        public int ChildIndex(ulong key)
        {
            int lo = 1, hi = Count - 1, found = 0;
            while (lo <= hi)
            {
                var mid = (lo + hi) >>> 1;
                if (Keys[mid] <= key)
                {
                    found = mid;
                    lo = mid + 1;
                }
                else hi = mid - 1;
            }
            return found;
        }

        /// <summary>Child <paramref name="c"/>, copied for <paramref name="owner"/> first unless it made it.</summary>
        public Node WritableChild(int c, object owner)
        {
            var child = Children[c];
            if (child.Owner == owner) return child;
            return Children[c] = child.CopyFor(owner);
        }

        public void InsertAt(int i, ulong key, Node child)
        {
            Array.Copy(Keys, i, Keys, i + 1, Count - i);
            Array.Copy(Children, i, Children, i + 1, Count - i);
            Keys[i] = key;
            Children[i] = child;
            Count++;
        }

        public void RemoveAt(int i)
        {
            Count--;
            Array.Copy(Keys, i + 1, Keys, i, Count - i);
            Array.Copy(Children, i + 1, Children, i, Count - i);
            Children[Count] = null!;
        }

        public void MoveUpperHalfTo(Inner right)
        {
            var half = Count / 2;
            right.Count = Count - half;
            Array.Copy(Keys, half, right.Keys, 0, right.Count);
            Array.Copy(Children, half, right.Children, 0, right.Count);
            Array.Clear(Children, half, right.Count);
            Count = half;
        }
    }
}

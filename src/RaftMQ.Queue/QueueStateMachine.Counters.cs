using RaftMQ.Queue.Groups;
using RaftMQ.Queue.Store;
using RaftMQ.StateMachine;

namespace RaftMQ.Queue;

/// <summary>
/// The per-group counters readers on other threads see (metrics): the node's loop builds them with the code that
/// answers <see cref="Stats"/> and publishes them as one immutable object (<see cref="IReaderView"/>), at most every
/// <see cref="QueueLimits.GroupCountersRefreshMs"/>; a reader takes the last one published and never touches the
/// state the loop changes.
/// </summary>
public sealed partial class QueueStateMachine : IReaderView
{
    private GroupCountersView _groupCounters = GroupCountersView.Empty;
    private long _groupCountersAtMs = long.MinValue;

    // Loop thread only: each topic's counts as the last build took them, keyed by the topic object (a topic deleted
    // and created again, or a restored snapshot, has new ones). A build counts again only the topics a command
    // touched since (CountAgain) and those whose counts move with time alone (a lease or a delay that ends); the
    // others' counts are still those of now, so a busy node with many topics counts the few it is busy with.
    private readonly Dictionary<TopicLog, CountedTopic> _counted = [];
    private long _builds;

    // Loop thread only: whether the last build could be out of date. A command applied or a snapshot restored since
    // makes it so; and so does time alone while some group has something whose count moves with the clock (a lease
    // or a delay that ends). Otherwise the last build is still the count of now (an oldest message's age is as of
    // the build's TakenAtMs; the metrics compute it from OldestPublishedMs when scraped), and an idle node holding
    // many topics, empty or not, does not rebuild (and allocate) them all every interval.
    private bool _countersStale = true;
    private bool _countersMoveWithTime;

    /// <summary>One topic's counts in the last build, and what its next count needs.</summary>
    private sealed class CountedTopic
    {
        public required TopicGroupCounters Counters;
        /// <summary>Some group has a lease or the topic a delay: its counts change with the clock alone.</summary>
        public bool MovesWithTime;
        /// <summary>A command changed the topic (or its dead-letter topic) since it was counted.</summary>
        public bool Touched;
        /// <summary>The build that last found the topic (an entry no build found is of a deleted topic).</summary>
        public long Build;
        /// <summary>Per group, in the order counted: its ack floor, and the publish time of the message there, as read
        /// then (Read: a message was there; a group at the tail has none yet and its first publish must be read), so
        /// that a count reads a record only for the groups whose floor moved.</summary>
        public (ConsumerGroup Group, ulong Floor, long Published, bool Read)[] Oldest = [];
    }

    /// <summary>
    /// A command changed <paramref name="topic"/> (or, for a dead-letter topic, its source topic's
    /// <c>dead_lettered</c>): the next build counts it again. O(1).
    /// </summary>
    private void CountAgain(string topic)
    {
        _countersStale = true;
        var counted = DeadLetters.IsDeadLetterTopic(topic) ? DeadLetters.SourceOf(topic) : topic;
        if (_store.Find(counted) is { } log && _counted.TryGetValue(log, out var entry)) entry.Touched = true;
    }

    /// <summary>Every topic is counted again at the next build (a snapshot replaced them all).</summary>
    private void CountAllAgain()
    {
        _countersStale = true;
        _counted.Clear();
    }

    /// <summary>
    /// The per-group counters as the loop last published them, readable from any thread: consistent with each other
    /// as of <see cref="GroupCountersView.TakenAtMs"/>, at most about <see cref="QueueLimits.GroupCountersRefreshMs"/>
    /// out of date while the loop runs (an older build is kept only while nothing it counts has changed).
    /// </summary>
    public GroupCountersView GroupCounters() => Volatile.Read(ref _groupCounters);

    /// <summary>
    /// Rebuilds <see cref="GroupCounters"/> when <see cref="QueueLimits.GroupCountersRefreshMs"/> passed since the last
    /// build (by this node's clock) and the last build may be out of date: a command was applied since, or some count
    /// moves with time (a lease, a delayed message). Otherwise the last one stays published, with its
    /// <see cref="GroupCountersView.TakenAtMs"/>: its counts are those of now too. On the loop. O(topics) to gather
    /// them, plus, as a <see cref="Stats"/> would, O(groups + in flight + delayed) of each topic counted again (one a
    /// command touched since, or whose counts move with time), with one record read per group whose ack floor moved.
    /// </summary>
    public void PublishReaderView(DateTimeOffset now)
    {
        var nowMs = now.ToUnixTimeMilliseconds();
        // Due when the interval passed, or the clock went back (a refresh then, not a wait as long as the jump).
        var elapsed = nowMs - _groupCountersAtMs;
        if (_groupCountersAtMs != long.MinValue && elapsed >= 0 && elapsed < _limits.GroupCountersRefreshMs) return;
        if (_groupCountersAtMs != long.MinValue && !_countersStale && !_countersMoveWithTime) return; // still the count of now
        _groupCountersAtMs = nowMs;
        _countersStale = false;
        var build = ++_builds;
        var moveWithTime = false;
        var at = Math.Max(nowMs, _store.Clock);
        var topics = new List<TopicGroupCounters>(_counted.Count + 1);
        foreach (var log in _store.Topics)
        {
            // A dead-letter topic is counted as its source topic's dead_lettered, not as a topic with groups.
            if (DeadLetters.IsDeadLetterTopic(log.Name)) continue;
            if (!_counted.TryGetValue(log, out var counted)) _counted[log] = counted = Count(log, null, at);
            else if (counted.Touched || counted.MovesWithTime) Count(log, counted, at);
            counted.Build = build;
            moveWithTime |= counted.MovesWithTime;
            topics.Add(counted.Counters);
        }
        if (_counted.Count > topics.Count)
        {
            foreach (var deleted in _counted.Where(c => c.Value.Build != build).Select(c => c.Key).ToList()) _counted.Remove(deleted);
        }
        _countersMoveWithTime = moveWithTime;
        Volatile.Write(ref _groupCounters, new GroupCountersView(at, topics));
    }

    /// <summary>Counts <paramref name="log"/>'s groups at <paramref name="at"/> into <paramref name="into"/> (null: a new entry).</summary>
    private CountedTopic Count(TopicLog log, CountedTopic? into, long at)
    {
        var state = log.State!;
        var before = into?.Oldest ?? [];
        var oldest = new (ConsumerGroup Group, ulong Floor, long Published, bool Read)[state.Groups.Count];
        var groups = new List<GroupStats>(state.Groups.Count);
        var moveWithTime = state.Delays.Count > 0;
        var notDue = NotDue(state, at);
        var i = 0;
        foreach (var g in state.Groups)
        {
            // Groups keep their order, so the one at the same place is nearly always this one.
            var read = i < before.Length && before[i].Group == g ? before[i] : Array.Find(before, r => r.Group == g);
            var published = read.Group is not null && read.Floor == g.Floor && read.Read ? read.Published : OldestPublished(log, g);
            groups.Add(CountGroup(log, g, at, published, notDue[i]));
            oldest[i++] = (g, g.Floor, published, g.Floor < log.Tail);
            moveWithTime |= g.InFlight > 0; // a lease that ends, a nack's delay that passes
        }
        var counters = new TopicGroupCounters(log.Name, DeadLettersWaiting(log), groups, state.ExpiredTotal, state.OverflowDroppedTotal);
        into ??= new CountedTopic { Counters = counters };
        (into.Counters, into.MovesWithTime, into.Touched, into.Oldest) = (counters, moveWithTime, false, oldest);
        return into;
    }

    /// <summary>Publish time (Unix ms) of the group's oldest unacked message, the one at its ack floor; 0 when none or it has none (a string message).</summary>
    private static long OldestPublished(TopicLog log, ConsumerGroup g) =>
        g.Floor < log.Tail ? MessageRecord.Timestamp(log.ReadRecordAt(g.Floor, g.FloorPosition, out _)) : 0;

    /// <summary>
    /// Per group of <paramref name="state"/>, in order, the messages from its cursor on published with a delay not
    /// over at <paramref name="now"/> (<see cref="DelayedMessages.NotDueFrom"/>: all groups at once).
    /// </summary>
    private static int[] NotDue(TopicState state, long now)
    {
        var cursors = new ulong[state.Groups.Count];
        for (int i = 0; i < cursors.Length; i++) cursors[i] = state.Groups[i].Cursor;
        return state.Delays.NotDueFrom(cursors, now);
    }

    /// <summary>
    /// One group's counts at <paramref name="now"/> (Unix ms, not before <see cref="Clock"/>), its oldest unacked
    /// message published at <paramref name="oldestPublished"/> (0: none, or no publish time), with
    /// <paramref name="notDue"/> messages from its cursor on still delayed (<see cref="NotDue"/>). What both the
    /// stats and the metrics report. O(in flight).
    /// </summary>
    private static GroupStats CountGroup(TopicLog log, ConsumerGroup g, long now, long oldestPublished, int notDue)
    {
        var live = g.LiveLeases(now);
        var delayed = g.Delayed(now);
        var ready = (long)(log.Tail - g.Cursor) + g.InFlight - live - delayed - notDue;
        delayed += notDue;
        long? oldest = oldestPublished > 0 ? oldestPublished : null;
        return new GroupStats(g.Name, g.Cursor, g.Floor, ready, live, delayed, g.Unfinished(log.Tail), oldest is { } p ? Math.Max(0, now - p) : null,
            g.DeliveredTotal, g.AckedTotal, g.DeadLetteredTotal, g.Finished.RangeCount)
        {
            OldestPublishedMs = oldest,
        };
    }

    /// <summary>Messages waiting in <paramref name="log"/>'s dead-letter topic (0 when it has none, or is one).</summary>
    private long DeadLettersWaiting(TopicLog log) =>
        !DeadLetters.IsDeadLetterTopic(log.Name) && _store.Find(DeadLetters.TopicFor(log.Name)) is { } dead
            ? dead.State!.Default!.Unfinished(dead.Tail)
            : 0;
}

/// <summary>What <see cref="QueueStateMachine.GroupCounters"/> returns: every topic's groups, as of one moment.</summary>
/// <param name="TakenAtMs">The time the counts are for (Unix ms: the node's clock when built, or the replicated clock if later).
/// A topic no command touched since an earlier build keeps that build's counts, which are those of this time too,
/// except each group's <see cref="GroupStats.OldestAgeMs"/>, which is as of that earlier build: take an age from
/// <see cref="GroupStats.OldestPublishedMs"/>, as the metrics do.</param>
/// <param name="Topics">The topics in creation order, dead-letter topics left out (see <see cref="TopicGroupCounters.DeadLettered"/>).</param>
public sealed record GroupCountersView(long TakenAtMs, IReadOnlyList<TopicGroupCounters> Topics)
{
    /// <summary>Before the loop first published any.</summary>
    public static readonly GroupCountersView Empty = new(0, []);
}

/// <summary>One topic of <see cref="GroupCountersView"/>.</summary>
/// <param name="Topic">The topic's name.</param>
/// <param name="DeadLettered">Messages waiting in its dead-letter topic (the stats' <c>dead_lettered</c>).</param>
/// <param name="Groups">Its groups, <c>default</c> first, counted as <see cref="QueueStateMachine.Stats"/> counts them.</param>
/// <param name="Expired">Messages retention removed for their age (the stats' <c>expired_total</c>).</param>
/// <param name="OverflowDropped">Messages drop-oldest removed to make room (the stats' <c>overflow_dropped_total</c>).</param>
public sealed record TopicGroupCounters(string Topic, long DeadLettered, IReadOnlyList<GroupStats> Groups, long Expired = 0, long OverflowDropped = 0);

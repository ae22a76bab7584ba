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

    // Loop thread only: each group's floor and the publish time of the message there, as the last refresh read it,
    // so that a refresh reads a record only for the groups whose floor moved. Keyed by the group object: a topic
    // deleted and created again, or a restored snapshot, has new ones.
    // Read: whether a message was there to read (a group at the tail has none yet; its first publish must be read).
    private Dictionary<ConsumerGroup, (ulong Floor, long Published, bool Read)> _oldestRead = [];

    // Loop thread only: whether the last build could be out of date. A command applied or a snapshot restored since
    // makes it so; and so does time alone while some group has something whose count moves with the clock (a lease
    // or a delay that ends). Otherwise the last build is still the count of now (an oldest message's age is as of
    // the build's TakenAtMs; the metrics compute it from OldestPublishedMs when scraped), and an idle node holding
    // many topics, empty or not, does not rebuild (and allocate) them all every interval.
    private bool _countersStale = true;
    private bool _countersMoveWithTime;

    /// <summary>
    /// The per-group counters as the loop last published them, readable from any thread: consistent with each other
    /// as of <see cref="GroupCountersView.TakenAtMs"/>, at most about <see cref="QueueLimits.GroupCountersRefreshMs"/>
    /// out of date while the loop runs (an older build is kept only while nothing it counts has changed).
    /// </summary>
    public GroupCountersView GroupCounters() => Volatile.Read(ref _groupCounters);

    /// <summary>
    /// Rebuilds <see cref="GroupCounters"/> when <see cref="QueueLimits.GroupCountersRefreshMs"/> passed since the last
    /// build (by this node's clock) and the last build may be out of date: a command was applied since, or some count
    /// moves with time (a lease, a delayed message). Otherwise the last one stays published,
    /// with its <see cref="GroupCountersView.TakenAtMs"/>: its counts are those of now too. On the loop. O(topics + groups + in flight + delayed), as a <see cref="Stats"/>
    /// of every topic, with one record read per group whose ack floor moved since the last build.
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
        var moveWithTime = false;
        var at = Math.Max(nowMs, _store.Clock);
        var oldestRead = new Dictionary<ConsumerGroup, (ulong Floor, long Published, bool Read)>(_oldestRead.Count);
        var topics = new List<TopicGroupCounters>();
        foreach (var log in _store.Topics)
        {
            // A dead-letter topic is counted as its source topic's dead_lettered, not as a topic with groups.
            if (DeadLetters.IsDeadLetterTopic(log.Name)) continue;
            var groups = new List<GroupStats>(log.State!.Groups.Count);
            moveWithTime |= log.State.Delays.Count > 0;
            foreach (var g in log.State.Groups)
            {
                var published = _oldestRead.TryGetValue(g, out var read) && read.Floor == g.Floor && read.Read ? read.Published : OldestPublished(log, g);
                oldestRead[g] = (g.Floor, published, g.Floor < log.Tail);
                groups.Add(CountGroup(log, g, at, published));
                moveWithTime |= g.InFlight > 0; // a lease that ends, a nack's delay that passes
            }
            topics.Add(new TopicGroupCounters(log.Name, DeadLettersWaiting(log), groups, log.State.ExpiredTotal, log.State.OverflowDroppedTotal));
        }
        _oldestRead = oldestRead;
        _countersMoveWithTime = moveWithTime;
        Volatile.Write(ref _groupCounters, new GroupCountersView(at, topics));
    }

    /// <summary>Publish time (Unix ms) of the group's oldest unacked message, the one at its ack floor; 0 when none or it has none (a string message).</summary>
    private static long OldestPublished(TopicLog log, ConsumerGroup g) =>
        g.Floor < log.Tail ? MessageRecord.Timestamp(log.ReadRecordAt(g.Floor, g.FloorPosition, out _)) : 0;

    /// <summary>
    /// One group's counts at <paramref name="now"/> (Unix ms, not before <see cref="Clock"/>), its oldest unacked
    /// message published at <paramref name="oldestPublished"/> (0: none, or no publish time). What both the stats and
    /// the metrics report. O(in flight + the topic's delayed messages).
    /// </summary>
    private static GroupStats CountGroup(TopicLog log, ConsumerGroup g, long now, long oldestPublished)
    {
        var state = log.State!;
        var live = g.LiveLeases(now);
        var delayed = g.Delayed(now);
        var notDue = state.Delays.NotDueFrom(g.Cursor, now);
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
/// <param name="TakenAtMs">The time the counts are for (Unix ms: the node's clock when built, or the replicated clock if later).</param>
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

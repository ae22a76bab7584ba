using RaftMQ.Raft;

namespace RaftMQ.Simulation;

/// <summary>
/// Checks Raft's safety properties (§5.2–§5.4, Figure 3) on everything a simulated cluster does. Each check is
/// incremental — it looks only at what the last step changed — so it can run after every step:
/// <list type="bullet">
/// <item>Election safety: at most one leader per term, over the whole run.</item>
/// <item>Log matching: every persisted entry is recorded by (index, term) together with the term of the entry
/// before it. If an (index, term) pair always comes with the same content and the same previous term, then by
/// induction any two logs holding it are identical up to it.</item>
/// <item>Leader completeness: a new leader holds the last entry known committed in an earlier term (or its own),
/// hence (log matching) all of them — a leader elected late for an old term need not hold entries committed since;
/// when its log is compacted past that entry, the entry its log starts after must be the committed one there.</item>
/// <item>State machine safety: no two nodes apply different entries at one index. A snapshot a node installs or
/// restarts from counts as applying every entry it holds, so it too must equal what every other node applied.</item>
/// <item>A running node's commit index never decreases; a node's applied sequence never changes, also across
/// restarts; persisted terms never decrease and a persisted vote never changes within a term.</item>
/// </list>
/// </summary>
public sealed partial class InvariantChecker
{
    private readonly Action<string, string> _fail;
    private readonly Dictionary<ulong, ulong> _leaderOfTerm = [];
    private readonly Dictionary<(ulong Index, ulong Term), (ulong PrevTerm, Entry Entry)> _logEntries = [];
    private readonly List<Entry> _committed = [];

    // For each committed entry, a term at least the one it was committed in: the term of the node that applied it
    // first, since a node learns a commit index only from a leader of its term or an earlier one.
    private readonly List<ulong> _committedBy = [];
    private readonly List<Entry>[] _applied;
    private readonly ulong[] _appliedThisRun;
    private readonly ulong[] _commit;
    private readonly Dictionary<(ulong Node, ulong Term), ulong> _votes = [];

    /// <summary>Creates a checker for nodes 1..<paramref name="nodes"/>.</summary>
    /// <param name="nodes">Number of nodes.</param>
    /// <param name="fail">Called with (invariant, description) on a violation; it must throw.</param>
    public InvariantChecker(int nodes, Action<string, string> fail)
    {
        ArgumentNullException.ThrowIfNull(fail);
        _fail = fail;
        _applied = new List<Entry>[nodes + 1];
        for (int i = 0; i <= nodes; i++) _applied[i] = [];
        _appliedThisRun = new ulong[nodes + 1];
        _commit = new ulong[nodes + 1];
    }

    /// <summary>The leader of every term that had one.</summary>
    public IReadOnlyDictionary<ulong, ulong> LeaderOfTerm => _leaderOfTerm;

    /// <summary>The longest prefix any node applied: the entries known committed.</summary>
    public IReadOnlyList<Entry> Committed => _committed;

    /// <summary>Everything <paramref name="node"/> ever applied, index 1 first.</summary>
    public IReadOnlyList<Entry> AppliedBy(ulong node) => _applied[node];

    /// <summary>What the current run of <paramref name="node"/> has applied.</summary>
    public ulong AppliedThisRun(ulong node) => _appliedThisRun[node];

    /// <summary><paramref name="node"/> persisted <paramref name="entries"/> right after an entry of term <paramref name="prevTerm"/>.</summary>
    public void OnPersistedEntries(ulong node, IReadOnlyList<Entry> entries, ulong prevTerm)
    {
        for (int i = 0; i < entries.Count; i++)
        {
            var e = entries[i];
            if (i > 0 && e.Index != entries[i - 1].Index + 1)
                Fail("log", $"n{node} persisted a batch with a gap: {Describe(entries[i - 1])} then {Describe(e)}");
            if (e.Term < prevTerm)
                Fail("log", $"n{node} persisted {Describe(e)} after an entry of the later term {prevTerm}");
            if (_logEntries.TryGetValue((e.Index, e.Term), out var seen))
            {
                if (seen.PrevTerm != prevTerm || !SameEntry(seen.Entry, e))
                {
                    Fail("log matching", $"n{node} persisted {Describe(e)} after term {prevTerm}, but the same (index, term) " +
                        $"was seen before as {Describe(seen.Entry)} after term {seen.PrevTerm}");
                }
            }
            else
            {
                _logEntries.Add((e.Index, e.Term), (prevTerm, e));
            }
            prevTerm = e.Term;
        }
        NoteConfigurations(node, entries);
    }

    /// <summary><paramref name="node"/> persisted <paramref name="next"/> over <paramref name="previous"/>.</summary>
    public void OnPersistedHardState(ulong node, HardState previous, HardState next)
    {
        if (next.Term < previous.Term)
            Fail("term", $"n{node} persisted term {next.Term} over term {previous.Term}");
        if (next.Term == previous.Term && previous.Vote != 0 && next.Vote != previous.Vote)
            Fail("one vote per term", $"n{node} changed its vote in term {next.Term} from n{previous.Vote} to n{next.Vote} (§5.2)");
        if (next.Commit < previous.Commit)
            Fail("commit", $"n{node} persisted commit {next.Commit} over commit {previous.Commit}");
    }

    /// <summary><paramref name="node"/>, in term <paramref name="term"/>, applied <paramref name="entry"/> to its state machine.</summary>
    public void OnApplied(ulong node, Entry entry, ulong term = 0)
    {
        var index = entry.Index;
        if (index != _appliedThisRun[node] + 1)
            Fail("apply order", $"n{node} applied {Describe(entry)} after index {_appliedThisRun[node]}");
        Record(node, entry, "re-applied", term);
        _appliedThisRun[node] = index;
    }

    /// <summary>
    /// <paramref name="node"/> replaced its state machine by a snapshot of <paramref name="state"/> (index 1 first)
    /// ending at <paramref name="snapshot"/>: one from the leader, which may only move it forward (§7), or the newest
    /// on its disk when it restarts (<paramref name="restart"/>).
    /// <paramref name="term"/> is the node's term.
    /// </summary>
    public void OnSnapshotRestored(ulong node, SnapshotMetadata snapshot, IReadOnlyList<Entry> state, bool restart, ulong term = 0)
    {
        if ((ulong)state.Count != snapshot.Index || (state.Count > 0 && state[^1].Term != snapshot.Term))
            Fail("snapshot", $"n{node}'s snapshot {snapshot.Index}/t{snapshot.Term} holds {state.Count} entries ending in term {(state.Count > 0 ? state[^1].Term : 0)}");
        // At a restart the newest snapshot may be one received from the leader and stored just before the crash,
        // past what the node applied: it holds committed entries only, which the checks below compare.
        if (!restart && snapshot.Index <= _appliedThisRun[node])
            Fail("snapshot", $"n{node} installed a snapshot at {snapshot.Index}, not past its applied index {_appliedThisRun[node]}");
        for (int i = 0; i < state.Count; i++)
        {
            if (state[i].Index != (ulong)i + 1) Fail("snapshot", $"n{node}'s snapshot holds {Describe(state[i])} at position {i + 1}");
            Record(node, state[i], "holds in a snapshot", term);
        }
        _appliedThisRun[node] = snapshot.Index;
    }

    /// <summary>
    /// <paramref name="node"/> took a snapshot at <paramref name="snapshot"/> of its state machine, whose log holds
    /// term <paramref name="logTerm"/> (null when compacted away) at that index.
    /// </summary>
    public void OnSnapshotTaken(ulong node, SnapshotMetadata snapshot, ulong? logTerm)
    {
        if (snapshot.Index > _appliedThisRun[node])
            Fail("snapshot", $"n{node} took a snapshot at {snapshot.Index} past its applied index {_appliedThisRun[node]}");
        if (snapshot.Index > 0 && _applied[node][(int)snapshot.Index - 1].Term != snapshot.Term)
            Fail("snapshot", $"n{node} took a snapshot at {snapshot.Index}/t{snapshot.Term} but applied {Describe(_applied[node][(int)snapshot.Index - 1])}");
        if (logTerm is { } t && t != snapshot.Term)
            Fail("snapshot", $"n{node} took a snapshot at {snapshot.Index}/t{snapshot.Term} but its log has term {t} there");
    }

    // Adds an entry to the node's applied history and to the committed sequence, or checks it against them.
    private void Record(ulong node, in Entry entry, string verb, ulong term)
    {
        var index = entry.Index;
        var history = _applied[node];
        if (index <= (ulong)history.Count)
        {
            var before = history[(int)index - 1];
            if (!SameEntry(before, entry))
                Fail("applied sequence", $"n{node} {verb} {Describe(entry)} where it had applied {Describe(before)}");
        }
        else
        {
            history.Add(entry);
        }

        // Contiguous application (and snapshots from index 1) means no node can apply index > Count + 1.
        if (index <= (ulong)_committed.Count)
        {
            var other = _committed[(int)index - 1];
            if (!SameEntry(other, entry))
                Fail("state machine safety", $"n{node} {verb} {Describe(entry)} but {Describe(other)} was applied at that index before (§5.4.3)");
        }
        else
        {
            _committed.Add(entry);
            _committedBy.Add(term);
        }
    }

    /// <summary>Observes that <paramref name="node"/> is leader in <paramref name="term"/>; <paramref name="termAt"/> reads its log (null past the end).</summary>
    public void OnLeader(ulong node, ulong term, Func<ulong, ulong?> termAt) => OnLeader(node, term, default, termAt);

    /// <summary>
    /// Observes that <paramref name="node"/> is leader in <paramref name="term"/>; its log starts after
    /// <paramref name="compactedTo"/> and <paramref name="termAt"/> reads the rest (null past the end).
    /// <paramref name="logConfiguration"/>, when given, is the latest configuration in the node's whole log, the
    /// entries its fsync has not covered yet included: a node campaigns on what it appended (§4.1), so its election is
    /// judged by that, not by what it persisted (null: the persisted record).
    /// </summary>
    public void OnLeader(ulong node, ulong term, SnapshotMetadata compactedTo, Func<ulong, ulong?> termAt, ClusterConfiguration? logConfiguration = null)
    {
        if (_leaderOfTerm.TryGetValue(term, out var leader))
        {
            if (leader != node) Fail("election safety", $"n{node} and n{leader} were both leaders of term {term} (§5.2)");
            return;
        }
        _leaderOfTerm.Add(term, node);
        CheckElectionQuorum(node, term, logConfiguration);
        // The last entry committed in a term up to this one; usually the last one of all.
        var k = _committed.Count - 1;
        while (k >= 0 && _committedBy[k] > term) k--;
        if (k < 0) return;
        var last = _committed[k];
        if (last.Index <= compactedTo.Index)
        {
            // The log no longer holds the entry; by log matching it suffices that the log starts after a committed one.
            var at = compactedTo.Index <= (ulong)_committed.Count ? _committed[(int)compactedTo.Index - 1] : (Entry?)null;
            if (at?.Term != compactedTo.Term)
            {
                Fail("leader completeness", $"n{node} became leader of term {term} with a log compacted to " +
                    $"{compactedTo.Index}/t{compactedTo.Term}, but {(at is { } a ? Describe(a) : "nothing")} was applied there (§5.4.1)");
            }
            return;
        }
        var held = termAt(last.Index);
        if (held != last.Term)
        {
            Fail("leader completeness", $"n{node} became leader of term {term} without committed {Describe(last)} " +
                $"(its log has {(held is { } t ? $"term {t}" : "nothing")} there) (§5.4.1)");
        }
    }

    /// <summary>
    /// <paramref name="node"/> sent a granted vote for <paramref name="candidate"/> in <paramref name="term"/>. A node
    /// votes for at most one candidate per term, over all its runs (§5.2): a vote forgotten in a crash breaks it.
    /// </summary>
    public void OnVoteGranted(ulong node, ulong term, ulong candidate)
    {
        if (_votes.TryGetValue((node, term), out var earlier))
        {
            if (earlier != candidate) Fail("one vote per term", $"n{node} voted for n{earlier} and then for n{candidate} in term {term} (§5.2)");
            return;
        }
        _votes.Add((node, term), candidate);
    }

    /// <summary>The commit index last observed of <paramref name="node"/> (what it persisted, after a restart).</summary>
    public ulong CommitOf(ulong node) => _commit[node];

    /// <summary>Observes the commit index of a running node after a step.</summary>
    public void OnCommitIndex(ulong node, ulong commit, ulong lastIndex)
    {
        if (commit < _commit[node]) Fail("commit", $"n{node}'s commit index went back from {_commit[node]} to {commit}");
        if (commit > lastIndex) Fail("commit", $"n{node}'s commit index {commit} is past its last entry {lastIndex}");
        _commit[node] = commit;
    }

    /// <summary>
    /// A node restarted: its state machine starts over (from its snapshot, reported next with
    /// <see cref="OnSnapshotRestored"/>) and its commit index is what it persisted.
    /// </summary>
    public void OnRestart(ulong node, ulong persistedCommit)
    {
        _appliedThisRun[node] = 0;
        _commit[node] = persistedCommit;
    }

    /// <summary>Content equality of entries (the bytes, not the buffers).</summary>
    public static bool SameEntry(in Entry a, in Entry b) =>
        a.Index == b.Index && a.Term == b.Term && a.Type == b.Type && a.Data.Span.SequenceEqual(b.Data.Span);

    /// <summary>A short description of an entry for failure messages.</summary>
    public static string Describe(in Entry e)
    {
        var data = e.Data.Span;
        var shown = Convert.ToHexString(data[..Math.Min(data.Length, 12)]);
        return $"(index {e.Index}, term {e.Term}, {e.Type}, {data.Length} B {shown}{(data.Length > 12 ? "…" : "")})";
    }

    private void Fail(string invariant, string description)
    {
        _fail(invariant, description);
        throw new InvalidOperationException("the failure callback must throw");
    }
}

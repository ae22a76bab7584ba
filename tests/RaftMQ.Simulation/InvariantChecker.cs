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
/// <item>Leader completeness: a new leader holds the last entry known committed, hence (log matching) all of them.</item>
/// <item>State machine safety: no two nodes apply different entries at one index.</item>
/// <item>A running node's commit index never decreases; a node's applied sequence never changes, also across
/// restarts; persisted terms never decrease and a persisted vote never changes within a term.</item>
/// </list>
/// </summary>
public sealed class InvariantChecker
{
    private readonly Action<string, string> _fail;
    private readonly Dictionary<ulong, ulong> _leaderOfTerm = [];
    private readonly Dictionary<(ulong Index, ulong Term), (ulong PrevTerm, Entry Entry)> _logEntries = [];
    private readonly List<Entry> _committed = [];
    private readonly List<Entry>[] _applied;
    private readonly ulong[] _appliedThisRun;
    private readonly ulong[] _commit;

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

    /// <summary><paramref name="node"/> applied <paramref name="entry"/> to its state machine.</summary>
    public void OnApplied(ulong node, Entry entry)
    {
        var index = entry.Index;
        if (index != _appliedThisRun[node] + 1)
            Fail("apply order", $"n{node} applied {Describe(entry)} after index {_appliedThisRun[node]}");
        var history = _applied[node];
        if (index <= (ulong)history.Count)
        {
            var before = history[(int)index - 1];
            if (!SameEntry(before, entry))
                Fail("applied sequence", $"n{node} re-applied {Describe(entry)} where it had applied {Describe(before)}");
        }
        else
        {
            history.Add(entry);
        }
        _appliedThisRun[node] = index;

        // Contiguous application means no node can apply index > Count + 1.
        if (index <= (ulong)_committed.Count)
        {
            var other = _committed[(int)index - 1];
            if (!SameEntry(other, entry))
                Fail("state machine safety", $"n{node} applied {Describe(entry)} but {Describe(other)} was applied at that index before (§5.4.3)");
        }
        else
        {
            _committed.Add(entry);
        }
    }

    /// <summary>Observes that <paramref name="node"/> is leader in <paramref name="term"/>; <paramref name="termAt"/> reads its log (null past the end).</summary>
    public void OnLeader(ulong node, ulong term, Func<ulong, ulong?> termAt)
    {
        if (_leaderOfTerm.TryGetValue(term, out var leader))
        {
            if (leader != node) Fail("election safety", $"n{node} and n{leader} were both leaders of term {term} (§5.2)");
            return;
        }
        _leaderOfTerm.Add(term, node);
        if (_committed.Count == 0) return;
        var last = _committed[^1];
        var held = termAt(last.Index);
        if (held != last.Term)
        {
            Fail("leader completeness", $"n{node} became leader of term {term} without committed {Describe(last)} " +
                $"(its log has {(held is { } t ? $"term {t}" : "nothing")} there) (§5.4.1)");
        }
    }

    /// <summary>Observes the commit index of a running node after a step.</summary>
    public void OnCommitIndex(ulong node, ulong commit, ulong lastIndex)
    {
        if (commit < _commit[node]) Fail("commit", $"n{node}'s commit index went back from {_commit[node]} to {commit}");
        if (commit > lastIndex) Fail("commit", $"n{node}'s commit index {commit} is past its last entry {lastIndex}");
        _commit[node] = commit;
    }

    /// <summary>A node restarted: its state machine starts over and its commit index is what it persisted.</summary>
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

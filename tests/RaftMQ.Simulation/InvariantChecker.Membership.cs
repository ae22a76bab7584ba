using RaftMQ.Raft;

namespace RaftMQ.Simulation;

/// <summary>
/// The invariants across configurations (docs/membership.md). The checker keeps its own record of the configuration
/// each node runs on — the latest configuration entry in the node's durable log, or its snapshot's configuration, or
/// the one it started with — built from what the node persisted and read back from its storage when it restarts or
/// installs a snapshot, never from the core's memory. With it:
/// <list type="bullet">
/// <item><b>Commit quorum.</b> When a leader's commit index moves to <c>c</c>, a majority of the voters of the
/// configuration the leader runs on must have durably held the entry at <c>c</c> (the leader's (index, term)) at some
/// point: persisted it, or installed a snapshot covering it. A voter acknowledges an entry only once it is durable
/// and a committed entry is never truncated, so a correct leader always passes; a leader that counts a removed node, a
/// learner, or itself after removing itself can pass only when a majority of the real configuration happens to hold
/// the entry anyway. Why the leader's latest configuration: with single-server changes the latest configuration in
/// the log is in force, committed or not (thesis §4.1), and any two majorities of consecutive configurations overlap.</item>
/// <item><b>Election quorum.</b> When a node becomes leader of a term, the granted votes of that term sent to it by
/// voters of its configuration (itself included if it is one) must be a majority of that configuration's voters: a
/// vote from a node outside it never elects.</item>
/// <item><b>Configuration in force.</b> A leader's core runs on the configuration this record says (the latest in its
/// log), or on the latest configuration entry of the tail it appended and has not persisted yet (its fsync runs off
/// the loop; the entry is in its log all the same), decoded from the leader's log here.</item>
/// </list>
/// Election safety, log matching, leader completeness and state machine safety (the checks in
/// <c>InvariantChecker.cs</c>) cover every node of the pool, so a node that joins late — from a snapshot or the log —
/// is held to every entry committed before it joined.
/// </summary>
public sealed partial class InvariantChecker
{
    // For every persisted (index, term): a bit per node (bit id-1) that durably held it at some point.
    private readonly Dictionary<(ulong Index, ulong Term), ulong> _holders = [];
    private readonly Dictionary<ulong, NodeConfigurations> _configurations = [];
    private readonly Dictionary<ulong, ulong> _persistedEnd = []; // last index of each node's durable log

    /// <summary>The configuration node <paramref name="node"/> runs on, as this checker reconstructed it.</summary>
    public ClusterConfiguration ConfigurationOf(ulong node) =>
        _configurations.TryGetValue(node, out var c) ? c.Latest : ClusterConfiguration.Empty;

    /// <summary>
    /// <paramref name="node"/> opened its storage (a start or restart) or replaced its log by a snapshot from the
    /// leader: the record of its log and configuration is read again from <paramref name="log"/>. Its configuration
    /// before any snapshot or entry is <paramref name="initial"/> (the bootstrap voters, or empty for a joining node;
    /// null keeps the one given before).
    /// </summary>
    public void OnLogOpened(ulong node, ILogStorage log, ClusterConfiguration? initial)
    {
        ArgumentNullException.ThrowIfNull(log);
        initial ??= _configurations.TryGetValue(node, out var before) ? before.Initial : ClusterConfiguration.Empty;
        var record = new NodeConfigurations(initial, log.Snapshot.Configuration ?? initial);
        _configurations[node] = record;
        if (log.Snapshot.Index > 0) NoteSnapshotHeld(node, log.Snapshot.Index);
        _persistedEnd[node] = log.LastIndex;
        var entries = new List<Entry>();
        for (var from = log.FirstIndex; from <= log.LastIndex; from = entries[^1].Index + 1)
        {
            entries.Clear();
            log.ReadEntries(from, log.LastIndex + 1, 1 << 20, entries);
            foreach (var e in entries)
            {
                Hold(node, e.Index, e.Term);
                if (e.Type == EntryType.Configuration) record.Append(e.Index, Decode(node, e));
            }
        }
    }

    /// <summary>Notes the configuration entries of a persisted batch (which replaces the log from its first index on).</summary>
    private void NoteConfigurations(ulong node, IReadOnlyList<Entry> entries)
    {
        if (entries.Count == 0 || !_configurations.TryGetValue(node, out var record)) return;
        _persistedEnd[node] = entries[^1].Index; // a batch replaces the log from its first index: the log ends here
        record.TruncateFrom(entries[0].Index);
        foreach (var e in entries)
        {
            Hold(node, e.Index, e.Term);
            if (e.Type == EntryType.Configuration) record.Append(e.Index, Decode(node, e));
        }
    }

    private void Hold(ulong node, ulong index, ulong term)
    {
        var key = (index, term);
        _holders[key] = _holders.GetValueOrDefault(key) | Bit(node);
    }

    // A snapshot holds the committed entries up to its index: record them as held by the node.
    private void NoteSnapshotHeld(ulong node, ulong index)
    {
        var upTo = Math.Min(index, (ulong)_committed.Count);
        for (var i = _snapshotHeld.GetValueOrDefault(node); i < upTo; i++) Hold(node, i + 1, _committed[(int)i].Term);
        if (upTo > _snapshotHeld.GetValueOrDefault(node)) _snapshotHeld[node] = upTo;
    }

    private readonly Dictionary<ulong, ulong> _snapshotHeld = [];

    /// <summary>
    /// Leader <paramref name="node"/> of <paramref name="term"/> moved its commit index to <paramref name="commit"/>,
    /// whose entry has term <paramref name="entryTerm"/> in its log, running on <paramref name="inForce"/> (its core's
    /// configuration): checks that a majority of the voters of its configuration held that entry. The leader's log
    /// ends at <paramref name="lastIndex"/>; <paramref name="entryAt"/> reads the entries it has not persisted yet.
    /// </summary>
    public void OnLeaderCommit(
        ulong node, ulong term, ulong commit, ulong entryTerm, ClusterConfiguration inForce, ulong lastIndex = 0, Func<ulong, Entry?>? entryAt = null)
    {
        ArgumentNullException.ThrowIfNull(inForce);
        entryAt ??= static _ => null;
        var configuration = ConfigurationOf(node);
        // A leader only appends: its log is what it persisted and then the entries its fsync has not covered yet.
        for (var i = lastIndex; i > _persistedEnd.GetValueOrDefault(node); i--)
        {
            if (entryAt(i) is { Type: EntryType.Configuration } e)
            {
                configuration = Decode(node, e);
                break;
            }
        }
        if (!configuration.Equals(inForce))
        {
            Fail("configuration in force", $"leader n{node} of term {term} runs on {inForce}, but the latest configuration in its log is {configuration} (§4.1)");
        }
        var holders = _holders.GetValueOrDefault((commit, entryTerm));
        var voters = configuration.Voters;
        var held = voters.Count(v => (holders & Bit(v)) != 0);
        if (held * 2 <= voters.Count)
        {
            Fail("commit quorum", $"leader n{node} of term {term} committed index {commit} (term {entryTerm}) held by only {held} of the " +
                $"{voters.Count} voters of {configuration} (holders: {Describe(holders)})");
        }
    }

    // At a new leader: the votes of its term it got from voters of its configuration must be a majority of them.
    private void CheckElectionQuorum(ulong node, ulong term, ClusterConfiguration? logConfiguration)
    {
        if (!_configurations.TryGetValue(node, out var record)) return; // a checker fed by hand, without logs
        var configuration = logConfiguration ?? record.Latest;
        var voters = configuration.Voters;
        var votes = voters.Count(v => v == node || (_votes.TryGetValue((v, term), out var c) && c == node));
        if (votes * 2 <= voters.Count)
        {
            var from = string.Join(", ", _votes.Where(kv => kv.Key.Term == term && kv.Value == node).Select(kv => "n" + kv.Key.Node));
            Fail("election quorum", $"n{node} became leader of term {term} with votes of {votes} of the {voters.Count} voters of " +
                $"{configuration} (granted by: {(from.Length == 0 ? "none" : from)})");
        }
    }

    private ClusterConfiguration Decode(ulong node, in Entry e)
    {
        if (!ClusterConfiguration.TryDecode(e.Data.Span, out var configuration, out var problem))
            Fail("configuration entry", $"n{node} persisted configuration entry {Describe(e)} that does not decode: {problem}");
        return configuration;
    }

    private static ulong Bit(ulong node) => node is >= 1 and <= 64 ? 1UL << (int)(node - 1) : 0;

    private static string Describe(ulong mask) =>
        mask == 0 ? "none" : string.Join(", ", Enumerable.Range(1, 64).Where(i => (mask & (1UL << (i - 1))) != 0).Select(i => "n" + i));

    /// <summary>The configuration entries of one node's log, after the configuration its log starts with.</summary>
    private sealed class NodeConfigurations(ClusterConfiguration initial, ClusterConfiguration start)
    {
        public ClusterConfiguration Initial => initial;

        private readonly List<(ulong Index, ClusterConfiguration Configuration)> _entries = [];

        public ClusterConfiguration Latest => _entries.Count > 0 ? _entries[^1].Configuration : start;

        public void TruncateFrom(ulong index)
        {
            while (_entries.Count > 0 && _entries[^1].Index >= index) _entries.RemoveAt(_entries.Count - 1);
        }

        public void Append(ulong index, ClusterConfiguration configuration)
        {
            TruncateFrom(index);
            _entries.Add((index, configuration));
        }
    }
}

using RaftMQ.Raft;

namespace RaftMQ.Benchmarks;

/// <summary>
/// Consensus cores wired together on one thread: each Ready is "persisted" to a <see cref="MemoryLogStorage"/> and
/// its messages are handed straight to their receivers. No faults, no delays, no simulator: it measures the core.
/// </summary>
public sealed class InMemoryCluster
{
    private readonly RaftNode[] _nodes;
    private readonly MemoryLogStorage[] _storages;
    private List<RaftMessage> _inFlight = [];
    private List<RaftMessage> _delivering = [];

    public InMemoryCluster(int size)
    {
        var voters = Enumerable.Range(1, size).Select(i => (ulong)i).ToArray();
        _nodes = new RaftNode[size];
        _storages = new MemoryLogStorage[size];
        for (int i = 0; i < size; i++)
        {
            _storages[i] = new MemoryLogStorage();
            _nodes[i] = new RaftNode(new RaftOptions { Id = voters[i], Voters = voters, RandomSeed = 1 }, _storages[i]);
        }
    }

    public RaftNode Leader => _nodes[0];

    /// <summary>Entries handed to the application, summed over all nodes.</summary>
    public long AppliedEntries { get; private set; }

    /// <summary>Only node 1 ticks, so it is the one that campaigns and wins.</summary>
    public void ElectFirstNode()
    {
        for (int i = 0; i < 1000 && Leader.Role != Role.Leader; i++)
        {
            Leader.Tick();
            RunUntilQuiet();
        }
        if (Leader.Role != Role.Leader) throw new InvalidOperationException("node 1 did not win the election");
    }

    /// <summary>Proposes <paramref name="count"/> commands on the leader and runs the cluster until it is quiet.</summary>
    public void ProposeAndCommit(ReadOnlyMemory<byte> command, int count)
    {
        for (int i = 0; i < count; i++)
        {
            if (!Leader.Propose(command).IsAccepted) throw new InvalidOperationException("proposal refused");
        }
        RunUntilQuiet();
    }

    /// <summary>Handles every Ready and delivers every message until no node has anything left to do.</summary>
    public void RunUntilQuiet()
    {
        while (true)
        {
            for (int i = 0; i < _nodes.Length; i++)
            {
                var node = _nodes[i];
                while (node.HasReady())
                {
                    var ready = node.GetReady();
                    var storage = _storages[i];
                    storage.Append(ready.Entries);
                    if (ready.HardState is { } hs) storage.SetHardState(hs);
                    _inFlight.AddRange(ready.Messages);
                    AppliedEntries += ready.CommittedEntries.Count;
                    node.Advance(ready);
                }
            }
            if (_inFlight.Count == 0) return;
            (_inFlight, _delivering) = (_delivering, _inFlight);
            foreach (var message in _delivering) _nodes[(int)message.To - 1].Step(message);
            _delivering.Clear();
        }
    }

    /// <summary>Drops entries every node has applied, as a snapshot would, so long runs keep a steady footprint.</summary>
    public void Compact()
    {
        var applied = _nodes.Min(n => n.AppliedIndex);
        for (int i = 0; i < _nodes.Length; i++)
        {
            if (!_nodes[i].TryGetEntry(applied, out var entry)) continue;
            _storages[i].Compact(new SnapshotMetadata(applied, entry.Term));
        }
    }
}

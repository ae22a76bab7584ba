using System.Runtime.CompilerServices;
using RaftMQ.Raft;

namespace RaftMQ.Simulation.Tests.Support;

/// <summary>
/// The 6.5840 Raft lab's test harness (config.go) on the simulator: connect/disconnect, crash/start, checkOneLeader,
/// checkTerms, nCommitted, one(). Timing is the lab's: 10 ms ticks, a 1 s "election timeout" to wait for.
/// Servers are ids 1..n; <see cref="Next"/> does the lab's (i + k) % n.
/// </summary>
internal sealed class LabCluster
{
    /// <summary>The lab's RaftElectionTimeout: the time within which a new leader must be chosen.</summary>
    public const long ElectionTimeoutMs = 1000;

    private readonly bool[] _connected;

    public LabCluster(Type testClass, int servers, ulong seed, bool unreliable = false, Action<SimOptions>? configure = null,
        [CallerMemberName] string test = "")
    {
        N = servers;
        Sim = Support.Sim.Cluster(testClass, servers, seed, o =>
        {
            o.Link = unreliable ? LinkConfig.Unreliable : LinkConfig.Reliable;
            configure?.Invoke(o);
        }, test);
        Random = new SplitMix64(seed ^ 0x5DEECE66DUL);
        _connected = new bool[servers + 1];
        Array.Fill(_connected, true);
    }

    public SimCluster Sim { get; }

    public int N { get; }

    /// <summary>The test's own randomness (commands, which server to fail), derived from the seed.</summary>
    public SplitMix64 Random { get; }

    public IEnumerable<ulong> Ids => Enumerable.Range(1, N).Select(i => (ulong)i);

    public bool IsConnected(ulong id) => _connected[id];

    /// <summary>The server k places after <paramref name="id"/>, wrapping: the lab's (i + k) % n.</summary>
    public ulong Next(ulong id, int k) => (ulong)((int)(id - 1 + (ulong)k) % N) + 1;

    public void Disconnect(ulong id)
    {
        _connected[id] = false;
        Sim.Isolate(id);
    }

    /// <summary>Reconnects to the servers that are connected (a disconnected peer stays cut off).</summary>
    public void Connect(ulong id)
    {
        _connected[id] = true;
        foreach (var other in Ids)
        {
            if (other == id || !_connected[other]) continue;
            Sim.Unblock(id, other);
            Sim.Unblock(other, id);
        }
    }

    /// <summary>The lab's crash1: the server dies, keeping only what it persisted, and is disconnected.</summary>
    public void Crash(ulong id)
    {
        Disconnect(id);
        Sim.Crash(id);
    }

    /// <summary>The lab's start1: (re)starts a server from its persisted state, still disconnected.</summary>
    public void Start(ulong id)
    {
        if (Sim.Node(id).IsUp) Crash(id);
        Sim.Restart(id);
    }

    public bool IsUp(ulong id) => Sim.Node(id).IsUp;

    public void Sleep(long ms) => Sim.RunFor(ms);

    /// <summary>Proposes on one server (the lab's rf.Start), returning the core's answer.</summary>
    public ProposeResult StartCommand(ulong id, long value) =>
        IsUp(id) ? Sim.Propose(Support.Sim.Cmd(value), id).Result : new ProposeResult(ProposeStatus.NotLeader, 0, 0, 0);

    /// <summary>The leader of the highest term among connected, running servers, or null.</summary>
    public ulong? ConnectedLeader()
    {
        ulong? best = null;
        ulong bestTerm = 0;
        foreach (var id in Ids)
        {
            var r = Sim.Node(id).Raft;
            if (!_connected[id] || r is not { Role: Role.Leader } || (best is not null && r.Term <= bestTerm)) continue;
            best = id;
            bestTerm = r.Term;
        }
        return best;
    }

    /// <summary>Waits up to 5 s for a leader among connected servers (term uniqueness is the checker's job).</summary>
    public ulong CheckOneLeader()
    {
        Sim.Await(() => ConnectedLeader() is not null, 5_000, "expected one leader among connected servers");
        return ConnectedLeader()!.Value;
    }

    /// <summary>Waits for the connected servers to agree on a term and returns it.</summary>
    public ulong CheckTerms()
    {
        bool Agree()
        {
            ulong term = 0;
            foreach (var id in Ids)
            {
                if (!_connected[id] || !IsUp(id)) continue;
                var t = Sim.Node(id).Term;
                if (term != 0 && t != term) return false;
                term = t;
            }
            return true;
        }
        Sim.Await(Agree, 1_000, "servers disagree on term");
        return Ids.Where(id => _connected[id] && IsUp(id)).Select(id => Sim.Node(id).Term).First();
    }

    public void CheckNoLeader()
    {
        foreach (var id in Ids)
            Sim.Expect(!(_connected[id] && Sim.Node(id).IsLeader), $"expected no leader among connected servers, but n{id} claims to be leader");
    }

    /// <summary>How many servers applied <paramref name="index"/>, and the command there.</summary>
    public (int Count, ReadOnlyMemory<byte> Command) NCommitted(ulong index)
    {
        var count = 0;
        ReadOnlyMemory<byte> cmd = default;
        foreach (var id in Ids)
        {
            var applied = Sim.Node(id).Applied;
            if ((ulong)applied.Count < index) continue;
            cmd = applied[(int)index - 1].Data;
            count++;
        }
        return (count, cmd);
    }

    /// <summary>
    /// The lab's one(): proposes <paramref name="value"/> on the leader until at least <paramref name="expected"/>
    /// servers apply it, within 10 s; without <paramref name="retry"/> a first failed attempt fails the test.
    /// </summary>
    public ulong One(long value, int expected, bool retry = false)
    {
        var cmd = Support.Sim.Cmd(value);
        var deadline = Sim.Now + 10_000;
        while (Sim.Now < deadline)
        {
            if (ConnectedLeader() is { } leader)
            {
                var proposal = Sim.Propose(cmd, leader);
                if (proposal.Result.IsAccepted)
                {
                    var index = proposal.Result.Index;
                    if (Sim.RunUntil(() => Committed(index, cmd, expected), 2_000)) return index;
                    if (!retry) throw Sim.Failure($"one({value}) failed to reach agreement on {expected} servers");
                    continue;
                }
            }
            Sim.RunFor(50);
        }
        throw Sim.Failure($"one({value}) failed to reach agreement on {expected} servers within 10 s");
    }

    /// <summary>Waits until <paramref name="expected"/> servers applied <paramref name="index"/>; false if a term passed <paramref name="startTerm"/>.</summary>
    public bool Wait(ulong index, int expected, ulong? startTerm)
    {
        var outcome = Sim.RunUntil(
            () => NCommitted(index).Count >= expected || (startTerm is { } t && Ids.Any(id => IsUp(id) && Sim.Node(id).Term > t)),
            10_000);
        Sim.Expect(outcome, $"only {NCommitted(index).Count} servers applied index {index}, expected {expected}");
        return NCommitted(index).Count >= expected;
    }

    private bool Committed(ulong index, byte[] cmd, int expected)
    {
        var (count, got) = NCommitted(index);
        return count >= expected && got.Span.SequenceEqual(cmd);
    }
}

namespace RaftMQ.Raft.Tests;

/// <summary>
/// An in-memory network of <see cref="TestNode"/>s: messages queue up and are delivered in order unless a node is
/// cut off (<see cref="Isolate"/>) or the optional loss function drops them. Deterministic for a given seed.
/// </summary>
internal sealed class TestCluster
{
    private readonly Queue<RaftMessage> _network = new();
    private readonly HashSet<ulong> _isolated = [];
    private readonly Random _random;

    /// <summary>Nodes <paramref name="voters"/> start as the cluster; <paramref name="joiners"/> start empty, waiting to be added.</summary>
    public TestCluster(ulong[] voters, ulong[]? joiners = null, int seed = 1, Action<RaftOptions>? configure = null)
    {
        _random = new Random(seed);
        Configure = configure;
        foreach (var id in voters) Nodes[id] = new TestNode(id, voters, configure: o => { o.RandomSeed = (ulong)seed; configure?.Invoke(o); });
        foreach (var id in joiners ?? []) Nodes[id] = new TestNode(id, [], configure: o => { o.RandomSeed = (ulong)seed; configure?.Invoke(o); });
    }

    public Action<RaftOptions>? Configure { get; }

    public Dictionary<ulong, TestNode> Nodes { get; } = [];

    /// <summary>Probability in [0, 1) that a message is lost.</summary>
    public double LossRate { get; set; }

    /// <summary>Every (term, leader) pair observed, to check election safety.</summary>
    public Dictionary<ulong, ulong> LeadersByTerm { get; } = [];

    public TestNode this[ulong id] => Nodes[id];

    public RaftNode Node(ulong id) => Nodes[id].Node;

    public void Isolate(ulong id) => _isolated.Add(id);

    public void Heal(ulong id) => _isolated.Remove(id);

    public void HealAll() => _isolated.Clear();

    public bool IsIsolated(ulong id) => _isolated.Contains(id);

    /// <summary>Queues what a node produced outside the cluster's own calls (a proposal, a membership change).</summary>
    public void Send(IEnumerable<RaftMessage> messages)
    {
        foreach (var m in messages) _network.Enqueue(m);
        ObserveLeaders();
    }

    /// <summary>Flushes every node's pending Ready and delivers messages until the network is quiet.</summary>
    public void Deliver(int maxMessages = 200_000)
    {
        foreach (var n in Nodes.Values) Send(n.Flush());
        for (var i = 0; _network.Count > 0; i++)
        {
            if (i >= maxMessages) throw new InvalidOperationException("the network did not quiesce");
            var m = _network.Dequeue();
            if (!Nodes.TryGetValue(m.To, out var to) || _isolated.Contains(m.To) || _isolated.Contains(m.From)) continue;
            if (LossRate > 0 && _random.NextDouble() < LossRate) continue;
            Send(to.Step(m));
        }
    }

    /// <summary>Ticks every node (isolated ones too) <paramref name="ticks"/> times, delivering after each tick.</summary>
    public void Tick(int ticks = 1)
    {
        for (var t = 0; t < ticks; t++)
        {
            foreach (var n in Nodes.Values) Send(n.Tick());
            Deliver();
        }
    }

    /// <summary>Ticks only <paramref name="id"/> until it campaigns, then delivers; it becomes leader if it can win.</summary>
    public TestNode Elect(ulong id)
    {
        var node = Nodes[id];
        for (var i = 0; i < 4 * TestNode.ElectionTicks && node.Node.Role != Role.Leader; i++)
        {
            Send(node.Tick());
            Deliver();
        }
        node.Node.Role.ShouldBe(Role.Leader);
        return node;
    }

    /// <summary>Proposes on <paramref name="id"/> and delivers; returns the result.</summary>
    public ProposeResult Propose(ulong id, byte value = 7)
    {
        var r = Nodes[id].Node.Propose(new[] { value });
        Deliver();
        return r;
    }

    /// <summary>Runs a membership call on <paramref name="id"/> and delivers.</summary>
    public MembershipResult Change(ulong id, Func<RaftNode, MembershipResult> change)
    {
        var r = change(Nodes[id].Node);
        Deliver();
        return r;
    }

    /// <summary>The leader of the highest term among nodes that think they lead, or null.</summary>
    public TestNode? Leader => Nodes.Values.Where(n => n.Node.Role == Role.Leader).MaxBy(n => n.Node.Term);

    /// <summary>Replaces node <paramref name="id"/> with a fresh one over a copy of its storage, as after a crash.</summary>
    public TestNode Restart(ulong id, ulong[] voters)
    {
        var old = Nodes[id];
        var restarted = new TestNode(id, voters, old.Storage.Clone(), o =>
        {
            o.RandomSeed = old.Options.RandomSeed + 1;
            Configure?.Invoke(o);
        });
        Nodes[id] = restarted;
        return restarted;
    }

    private void ObserveLeaders()
    {
        foreach (var n in Nodes.Values)
        {
            if (n.Node.Role != Role.Leader) continue;
            if (LeadersByTerm.TryGetValue(n.Node.Term, out var other) && other != n.Node.Id)
                throw new InvalidOperationException($"two leaders in term {n.Node.Term}: {other} and {n.Node.Id}");
            LeadersByTerm[n.Node.Term] = n.Node.Id;
        }
    }
}

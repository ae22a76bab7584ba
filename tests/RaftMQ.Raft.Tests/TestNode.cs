namespace RaftMQ.Raft.Tests;

/// <summary>
/// One <see cref="RaftNode"/> driven the way a runtime drives it: every Ready is persisted to the node's
/// <see cref="MemoryLogStorage"/> before <see cref="RaftNode.Advance"/>, and the messages it asks to send are
/// handed back to the test, which plays the network by hand.
/// </summary>
internal sealed class TestNode
{
    public const int ElectionTicks = 10;

    public TestNode(ulong id, ulong[] voters, MemoryLogStorage? storage = null, Action<RaftOptions>? configure = null)
    {
        Options = new RaftOptions { Id = id, Voters = voters, ElectionTicks = ElectionTicks, HeartbeatTicks = 1, RandomSeed = 42 };
        configure?.Invoke(Options);
        Storage = storage ?? new MemoryLogStorage();
        Node = new RaftNode(Options, Storage);
    }

    public RaftOptions Options { get; }

    public MemoryLogStorage Storage { get; }

    public RaftNode Node { get; }

    /// <summary>Every Ready handled so far, in order.</summary>
    public List<Ready> Readies { get; } = [];

    /// <summary>Every committed entry handed to the application, in order.</summary>
    public List<Entry> Applied { get; } = [];

    /// <summary>Every read released to the application, in order.</summary>
    public List<ReadState> ReadStates { get; } = [];

    /// <summary>A storage holding entries with the given terms at indexes 1, 2, ... and the given hard state.</summary>
    public static MemoryLogStorage StorageWith(ulong term, ulong commit, params ulong[] entryTerms)
    {
        var storage = new MemoryLogStorage();
        storage.Append(Entries(1, entryTerms));
        storage.SetHardState(new HardState(term, 0, commit));
        return storage;
    }

    /// <summary>Command entries with the given terms starting at <paramref name="firstIndex"/>.</summary>
    public static Entry[] Entries(ulong firstIndex, params ulong[] terms) =>
        [.. terms.Select((t, i) => new Entry(firstIndex + (ulong)i, t, EntryType.Command, new byte[] { (byte)i }))];

    /// <summary>Handles every pending Ready: persist, collect, advance. Returns the messages to send.</summary>
    public List<RaftMessage> Flush()
    {
        var sent = new List<RaftMessage>();
        while (Node.HasReady())
        {
            var ready = Node.GetReady();
            if (ready.Snapshot is { } snapshot) Storage.InstallSnapshot(snapshot);
            Storage.Append(ready.Entries);
            if (ready.HardState is { } hs) Storage.SetHardState(hs);
            sent.AddRange(ready.Messages);
            Applied.AddRange(ready.CommittedEntries);
            ReadStates.AddRange(ready.ReadStates);
            Readies.Add(ready);
            Node.Advance(ready);
        }
        return sent;
    }

    public List<RaftMessage> Step(RaftMessage message)
    {
        Node.Step(message);
        return Flush();
    }

    public List<RaftMessage> Tick(int ticks = 1)
    {
        var sent = new List<RaftMessage>();
        for (int i = 0; i < ticks; i++)
        {
            Node.Tick();
            sent.AddRange(Flush());
        }
        return sent;
    }

    public ProposeResult Propose(int bytes = 100) => Node.Propose(new byte[bytes]);

    /// <summary>Stores a Ready taken by hand (<see cref="RaftNode.GetReady"/>) and advances the node past it.</summary>
    public void PersistAndAdvance(Ready ready)
    {
        Storage.Append(ready.Entries);
        Node.Advance(ready);
    }

    /// <summary>Ticks until the node campaigns, then grants every (pre-)vote it asks for. Returns the leader's first messages.</summary>
    public List<RaftMessage> Elect()
    {
        var sent = new List<RaftMessage>();
        for (int i = 0; i < 2 * ElectionTicks && Node.Role == Role.Follower; i++) sent = Tick();
        var result = new List<RaftMessage>();
        while (Node.Role != Role.Leader)
        {
            var requests = sent.OfType<RequestVote>().ToList();
            if (requests.Count == 0) throw new InvalidOperationException($"node {Node.Id} is {Node.Role} and asks for no votes");
            sent = [];
            foreach (var rv in requests)
            {
                var before = Node.Role;
                var output = Step(new RequestVoteResponse(rv.To, rv.From, rv.Term, true, rv.PreVote));
                if (Node.Role == Role.Leader && before != Role.Leader) result.AddRange(output);
                else sent.AddRange(output);
            }
        }
        return result;
    }

    /// <summary>Elects this node and has every follower acknowledge the no-op, so it is committed and applied.</summary>
    public List<RaftMessage> ElectAndCommitNoOp()
    {
        var sent = new List<RaftMessage>();
        foreach (var ae in Elect().OfType<AppendEntries>()) sent.AddRange(Step(AckOf(ae)));
        return sent;
    }

    /// <summary>The success answer a follower that holds everything in <paramref name="ae"/> would give.</summary>
    public static AppendEntriesResponse AckOf(AppendEntries ae) =>
        new(ae.To, ae.From, ae.Term, false, ae.PrevLogIndex + (ulong)ae.Entries.Count, 0, 0);

    public static HeartbeatResponse AckOf(Heartbeat hb) => new(hb.To, hb.From, hb.Term, hb.ReadRound);
}

internal static class MessageListExtensions
{
    public static List<T> To<T>(this IEnumerable<RaftMessage> messages, ulong to) where T : RaftMessage =>
        [.. messages.OfType<T>().Where(m => m.To == to)];
}

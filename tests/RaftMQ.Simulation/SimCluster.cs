using System.Globalization;
using System.Text;
using RaftMQ.Raft;

namespace RaftMQ.Simulation;

/// <summary>
/// A deterministic simulation of a Raft cluster: N <see cref="RaftNode"/>s in one process, on virtual time owned by
/// the test, talking over a seeded, hostile network. Events (ticks, deliveries) run in (time, sequence) order, so a
/// seed fixes the whole run. Every step is followed by the <see cref="InvariantChecker"/>; a violation throws an
/// <see cref="InvariantViolationException"/> that names the seed and the command that replays it.
/// </summary>
/// <remarks>
/// Each node handles its Ready the way a real runtime must: install a snapshot the core adopted, persist entries and
/// hard state (syncing when <see cref="Ready.MustSync"/>), then send the messages, then apply committed entries, then
/// <see cref="RaftNode.Advance"/>, for as long as <see cref="RaftNode.HasReady"/>. With
/// <see cref="SimOptions.SnapshotEveryEntries"/> it snapshots its state machine and compacts its log; a leader sends
/// a follower that needs compacted entries its newest snapshot in one <see cref="SnapshotChunk"/>. The disk keeps
/// exactly what <see cref="SimOptions.Disk"/> lets survive.
/// </remarks>
public sealed class SimCluster
{
    private readonly SimOptions _options;
    private readonly SimNode[] _nodes;
    private readonly ulong[] _voters;
    private readonly SplitMix64 _random;
    private readonly SplitMix64 _diskRandom;
    private DiskConfig _disk;
    private readonly PriorityQueue<SimEvent, (long Time, long Seq)> _events = new();
    private readonly Dictionary<long, Envelope> _inFlight = [];
    private readonly List<HeldMessage> _held = [];
    private readonly List<Interceptor> _interceptors = [];
    private readonly LinkConfig[] _links;
    private readonly bool[] _blocked;
    private readonly Dictionary<(ulong Node, ulong Index), ClientProposal> _pendingProposals = [];
    private readonly List<ClientProposal> _proposals = [];
    private readonly TraceRecord[] _trace;
    private long _traceCount;
    private long _sequence;
    private long _nextMessageId;
    private long _instant = -1;
    private int _eventsThisInstant;

    public SimCluster(SimOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        Seed = options.Seed;
        _random = new SplitMix64(options.Seed);
        // Disk faults draw from their own stream, so turning them on does not change the network's choices.
        _diskRandom = new SplitMix64(options.Seed ^ 0x3C6EF372FE94F82BUL);
        _disk = options.Disk;
        var n = options.Nodes;
        _nodes = new SimNode[n];
        _voters = new ulong[n];
        Checker = new InvariantChecker(n, (invariant, description) => throw Violation(invariant, description));
        for (int i = 0; i < n; i++)
        {
            _nodes[i] = new SimNode((ulong)i + 1, Checker);
            _voters[i] = (ulong)i + 1;
        }
        _links = new LinkConfig[n * n];
        Array.Fill(_links, options.Link);
        _blocked = new bool[n * n];
        _trace = new TraceRecord[options.TraceCapacity];
        foreach (var node in _nodes)
        {
            // Each node ticks on its own phase, so ticks of different nodes never line up by accident.
            var phase = 1 + _random.Next(options.TickMs);
            Schedule(phase, new SimEvent(EventKind.Tick, node.Id, null));
            Start(node);
        }
    }

    /// <summary>The seed of this run.</summary>
    public ulong Seed { get; }

    public SimOptions Options => _options;

    /// <summary>The virtual time in milliseconds.</summary>
    public long Now { get; private set; }

    /// <summary>Nodes by position; node ids are 1..N.</summary>
    public IReadOnlyList<SimNode> Nodes => _nodes;

    /// <summary>The safety checker that watches this run.</summary>
    public InvariantChecker Checker { get; }

    public NetworkStats Stats { get; } = new();

    /// <summary>Every proposal made through <see cref="Propose"/>, in order.</summary>
    public IReadOnlyList<ClientProposal> Proposals => _proposals;

    /// <summary>Messages parked by interceptors.</summary>
    public IReadOnlyList<HeldMessage> Held => _held;

    /// <summary>Messages on the network, earliest delivery first.</summary>
    public IReadOnlyList<InFlightMessage> InFlight =>
        [.. _inFlight.Values.OrderBy(e => e.DeliverAt).ThenBy(e => e.Id).Select(e => new InFlightMessage(e.Id, e.Message, e.SentAt, e.DeliverAt))];

    public SimNode Node(ulong id)
    {
        if (id == 0 || id > (ulong)_nodes.Length) throw new ArgumentOutOfRangeException(nameof(id), id, $"nodes are 1..{_nodes.Length}");
        return _nodes[id - 1];
    }

    /// <summary>The running leader of the highest term, or null.</summary>
    public SimNode? Leader
    {
        get
        {
            SimNode? best = null;
            foreach (var node in _nodes)
                if (node.Raft is { Role: Role.Leader } r && (best is null || r.Term > best.Raft!.Term)) best = node;
            return best;
        }
    }

    // ---- time ----

    /// <summary>Processes the next event (a tick or a delivery), whatever its time. False only if nothing is scheduled.</summary>
    public bool Step() => StepUntil(long.MaxValue);

    /// <summary>Runs every event due in the next <paramref name="durationMs"/> virtual milliseconds.</summary>
    public void RunFor(long durationMs)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(durationMs);
        var deadline = Now + durationMs;
        while (StepUntil(deadline))
        {
        }
        Now = deadline;
    }

    /// <summary>
    /// Runs until <paramref name="condition"/> holds (checked before the first and after every step) or
    /// <paramref name="timeoutMs"/> of virtual time has passed. Returns whether the condition was met.
    /// </summary>
    public bool RunUntil(Func<bool> condition, long timeoutMs)
    {
        ArgumentNullException.ThrowIfNull(condition);
        ArgumentOutOfRangeException.ThrowIfNegative(timeoutMs);
        var deadline = Now + timeoutMs;
        while (true)
        {
            if (condition()) return true;
            if (!StepUntil(deadline))
            {
                Now = deadline;
                return condition();
            }
        }
    }

    private bool StepUntil(long deadline)
    {
        if (!_events.TryPeek(out var ev, out var due) || due.Time > deadline) return false;
        _events.Dequeue();
        if (due.Time != _instant)
        {
            _instant = due.Time;
            _eventsThisInstant = 0;
        }
        else if (++_eventsThisInstant > _options.MaxEventsPerInstant)
        {
            throw Failure($"livelock: more than {_options.MaxEventsPerInstant} events at virtual time {due.Time}");
        }
        Now = due.Time;
        ProcessEvent(ev);
        return true;
    }

    // ---- faults ----

    /// <summary>
    /// Crashes a node: its in-memory state and every message to or from it are lost; its disk stays, minus the
    /// unsynced writes a power loss takes (<see cref="DiskConfig.LoseUnsyncedOnCrash"/>), or all but the first
    /// <paramref name="keepUnsynced"/> of them when given.
    /// </summary>
    public void Crash(ulong id, int? keepUnsynced = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(keepUnsynced ?? 0, nameof(keepUnsynced));
        var node = Node(id);
        if (!node.IsUp) return;
        // Writes reach the disk in order, so what survives of the unsynced ones is a prefix.
        if (keepUnsynced is { } keep) node.LoseUnsynced(Math.Min(keep, node.UnsyncedWrites));
        else if (_disk.LoseUnsyncedOnCrash) node.LoseUnsynced(_diskRandom.Next(node.UnsyncedWrites + 1));
        Stop(node, TraceKind.Crash, null);
    }

    /// <summary>
    /// Crashes the node in the middle of its next persist of entries, before the Ready's messages are sent: its
    /// earlier unsynced writes and the first <paramref name="keepEntries"/> entries survive, the rest and the
    /// Ready's hard state do not.
    /// </summary>
    public void CrashDuringNextPersist(ulong id, int keepEntries)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(keepEntries);
        Node(id).CrashDuringPersist = keepEntries;
    }

    /// <summary>Stops a running node, leaving its disk as it is now.</summary>
    private void Stop(SimNode node, TraceKind kind, string? note)
    {
        var id = node.Id;
        node.Raft = null;
        // The disk outlives the process; a copy makes sure nothing of the dead process can still write to it.
        node.Storage = node.Storage.Clone();
        var lost = new List<long>();
        foreach (var (key, env) in _inFlight)
            if (env.Message.From == id || env.Message.To == id) lost.Add(key);
        foreach (var key in lost)
        {
            _inFlight[key].Cancelled = true;
            _inFlight.Remove(key);
        }
        Stats.Dropped += lost.Count + _held.RemoveAll(h => h.Message.From == id || h.Message.To == id);
        foreach (var (key, p) in _pendingProposals.Where(kv => kv.Key.Node == id).ToList())
        {
            p.State = ProposalState.Unknown;
            _pendingProposals.Remove(key);
        }
        Trace(kind, id, null, note);
    }

    /// <summary>
    /// Starts a crashed node again from its disk: the state machine from its newest snapshot (§7), then the log after
    /// it (from index 1 when it has no snapshot).
    /// </summary>
    public void Restart(ulong id)
    {
        var node = Node(id);
        if (node.IsUp) throw new InvalidOperationException($"n{id} is running; crash it first");
        Start(node);
    }

    /// <summary>How the disks fail from now on (e.g. <see cref="DiskConfig.Reliable"/> to let a cluster converge).</summary>
    public DiskConfig Disk
    {
        get => _disk;
        set
        {
            ArgumentNullException.ThrowIfNull(value);
            value.Validate();
            _disk = value;
        }
    }

    /// <summary>Stops (or restarts) a node's clock: it keeps receiving messages but never times out.</summary>
    public void PauseClock(ulong id) => Node(id).ClockPaused = true;

    public void ResumeClock(ulong id) => Node(id).ClockPaused = false;

    private void Start(SimNode node)
    {
        node.Incarnation++;
        var options = new RaftOptions
        {
            Id = node.Id,
            Voters = _voters,
            ElectionTicks = _options.ElectionTicks,
            HeartbeatTicks = _options.HeartbeatTicks,
            PreVote = _options.PreVote,
            CheckQuorum = _options.CheckQuorum,
            RandomSeed = Mix(Seed, (ulong)node.Incarnation),
        };
        _options.ConfigureRaft?.Invoke(options);
        // The state machine is rebuilt from the snapshot and the log, so it starts at the snapshot.
        options.Applied = node.Snapshot?.Metadata.Index ?? 0;
        node.ClearRunState();
        node.Synced();
        Checker.OnRestart(node.Id, node.Storage.HardState.Commit);
        if (node.Snapshot is { } snapshot) Checker.OnSnapshotRestored(node.Id, snapshot.Metadata, snapshot.State, restart: true, node.Storage.HardState.Term);
        Guard(() => node.Raft = new RaftNode(options, node.Storage));
        Trace(TraceKind.Start, node.Id, null, null);
        AfterInput(node);
    }

    // ---- the network ----

    /// <summary>Sets how messages from <paramref name="from"/> to <paramref name="to"/> are treated.</summary>
    public void SetLink(ulong from, ulong to, LinkConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        _links[LinkIndex(from, to)] = config;
    }

    /// <summary>Sets every link to <paramref name="config"/>.</summary>
    public void SetAllLinks(LinkConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        Array.Fill(_links, config);
    }

    /// <summary>Blocks messages from <paramref name="from"/> to <paramref name="to"/> only (an asymmetric partition).</summary>
    public void Block(ulong from, ulong to)
    {
        _blocked[LinkIndex(from, to)] = true;
        Trace(TraceKind.Network, from, null, $"block n{from}->n{to}");
    }

    public void Unblock(ulong from, ulong to) => _blocked[LinkIndex(from, to)] = false;

    public bool IsBlocked(ulong from, ulong to) => _blocked[LinkIndex(from, to)];

    /// <summary>Cuts a node off from everyone, both ways (the lab's disconnect).</summary>
    public void Isolate(ulong id)
    {
        foreach (var other in _voters)
        {
            if (other == id) continue;
            _blocked[LinkIndex(id, other)] = true;
            _blocked[LinkIndex(other, id)] = true;
        }
        Trace(TraceKind.Network, id, null, $"isolate n{id}");
    }

    /// <summary>Restores every link of a node, both ways (the lab's connect).</summary>
    public void Reconnect(ulong id)
    {
        foreach (var other in _voters)
        {
            if (other == id) continue;
            _blocked[LinkIndex(id, other)] = false;
            _blocked[LinkIndex(other, id)] = false;
        }
        Trace(TraceKind.Network, id, null, $"reconnect n{id}");
    }

    /// <summary>Splits the cluster: nodes talk only within their group; nodes in no group are cut off from all.</summary>
    public void Partition(params ulong[][] groups)
    {
        ArgumentNullException.ThrowIfNull(groups);
        var groupOf = new int[_nodes.Length + 1];
        Array.Fill(groupOf, -1);
        for (int g = 0; g < groups.Length; g++)
        {
            foreach (var id in groups[g])
            {
                Node(id);
                if (groupOf[id] >= 0) throw new ArgumentException($"n{id} is in two groups");
                groupOf[id] = g;
            }
        }
        foreach (var a in _voters)
            foreach (var b in _voters)
                if (a != b) _blocked[LinkIndex(a, b)] = groupOf[a] < 0 || groupOf[a] != groupOf[b];
        Trace(TraceKind.Network, 0, null, "partition " + string.Join(" | ", groups.Select(g => string.Join(",", g))));
    }

    /// <summary>Removes every partition and block (link faults set with <see cref="SetLink"/> stay).</summary>
    public void Heal()
    {
        Array.Clear(_blocked);
        Trace(TraceKind.Network, 0, null, "heal");
    }

    private int LinkIndex(ulong from, ulong to)
    {
        Node(from);
        Node(to);
        return (int)(from - 1) * _nodes.Length + (int)(to - 1);
    }

    // ---- interceptors and step-by-step delivery ----

    /// <summary>
    /// Installs a rule for messages of type <typeparamref name="T"/> (optionally only from / to given nodes) at
    /// <paramref name="point"/>. Rules run in the order installed; the first that does not pass decides (a rewrite
    /// goes on to the next rule with the new message).
    /// </summary>
    public Interceptor Intercept<T>(
        InterceptPoint point, Func<T, InterceptDecision> decide, ulong? from = null, ulong? to = null, Func<T, bool>? where = null)
        where T : RaftMessage
    {
        ArgumentNullException.ThrowIfNull(decide);
        var interceptor = new Interceptor(
            point,
            m => m is T t && (from is null || m.From == from) && (to is null || m.To == to) && (where is null || where(t)),
            m => decide((T)m));
        _interceptors.Add(interceptor);
        return interceptor;
    }

    public void RemoveInterceptor(Interceptor interceptor) => _interceptors.Remove(interceptor);

    public void ClearInterceptors() => _interceptors.Clear();

    /// <summary>Lets a held message go on: a held send enters the network, a held receive is delivered now.</summary>
    public void Release(HeldMessage held)
    {
        ArgumentNullException.ThrowIfNull(held);
        if (!_held.Remove(held)) throw new InvalidOperationException($"message {held.Id} is not held");
        Trace(TraceKind.Release, held.Message.To, held.Message, null);
        if (held.Point == InterceptPoint.BeforeSend) Transmit(held.Message);
        else Receive(held.Message);
    }

    /// <summary>Releases every held message that matches <paramref name="where"/> (all when null), oldest first.</summary>
    public int ReleaseAll(Func<HeldMessage, bool>? where = null)
    {
        var chosen = _held.Where(h => where is null || where(h)).ToList();
        foreach (var h in chosen) Release(h);
        return chosen.Count;
    }

    /// <summary>Loses a held message.</summary>
    public void DropHeld(HeldMessage held)
    {
        ArgumentNullException.ThrowIfNull(held);
        if (_held.Remove(held)) Stats.Dropped++;
    }

    /// <summary>Delivers an in-flight message now, ahead of its time (it still passes the receive interceptors).</summary>
    public void DeliverNow(InFlightMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (!_inFlight.Remove(message.Id, out var env)) throw new InvalidOperationException($"message {message.Id} is not in flight");
        env.Cancelled = true;
        Arrive(env.Message);
    }

    private void Send(RaftMessage message)
    {
        Stats.OnSent(message);
        Trace(TraceKind.Send, message.From, message, null);
        if (Intercepted(InterceptPoint.BeforeSend, ref message)) return;
        Transmit(message);
    }

    private void Transmit(RaftMessage message)
    {
        if (_inFlight.Count + _held.Count >= _options.MaxInFlightMessages)
            throw Failure($"more than {_options.MaxInFlightMessages} messages in flight");
        var index = LinkIndex(message.From, message.To);
        var link = _links[index];
        if (_blocked[index] || (link.LossProbability > 0 && _random.NextDouble() < link.LossProbability))
        {
            Stats.Dropped++;
            return;
        }
        Enqueue(message, link);
        if (link.DuplicateProbability > 0 && _random.NextDouble() < link.DuplicateProbability)
        {
            Stats.Duplicated++;
            Enqueue(message, link);
        }
    }

    private void Enqueue(RaftMessage message, LinkConfig link)
    {
        int delay;
        if (link.LongDelayProbability > 0 && _random.NextDouble() < link.LongDelayProbability)
            delay = link.LongDelayMinMs + _random.Next(link.LongDelayMaxMs - link.LongDelayMinMs + 1);
        else
            delay = link.MinDelayMs == link.MaxDelayMs ? link.MinDelayMs : link.MinDelayMs + _random.Next(link.MaxDelayMs - link.MinDelayMs + 1);
        var env = new Envelope(++_nextMessageId, message, Now, Now + delay);
        _inFlight.Add(env.Id, env);
        Schedule(env.DeliverAt, new SimEvent(EventKind.Deliver, message.To, env));
    }

    private void Arrive(RaftMessage message)
    {
        // A partition also cuts what was already on the wire.
        if (_blocked[LinkIndex(message.From, message.To)])
        {
            Stats.Dropped++;
            return;
        }
        if (Intercepted(InterceptPoint.BeforeReceive, ref message)) return;
        Receive(message);
    }

    private void Receive(RaftMessage message)
    {
        var node = Node(message.To);
        if (node.Raft is not { } raft)
        {
            Stats.Dropped++;
            return;
        }
        Stats.OnDelivered();
        Trace(TraceKind.Deliver, message.To, message, null);
        switch (message)
        {
            case SnapshotChunk chunk:
                ReceiveSnapshot(node, raft, chunk);
                return;
            case SnapshotChunkResponse response:
                EndSnapshotTransfer(node, raft, response);
                return;
        }
        Guard(() => raft.Step(message));
        AfterInput(node);
    }

    /// <summary>Runs the interceptors; true when the message was dropped or held.</summary>
    private bool Intercepted(InterceptPoint point, ref RaftMessage message)
    {
        for (int i = 0; i < _interceptors.Count; i++)
        {
            var interceptor = _interceptors[i];
            if (interceptor.Point != point) continue;
            var decision = interceptor.Decide(message);
            switch (decision.Action)
            {
                case InterceptAction.Drop:
                    Stats.Dropped++;
                    Trace(TraceKind.Intercept, message.From, message, "dropped");
                    return true;
                case InterceptAction.Hold:
                    _held.Add(new HeldMessage(++_nextMessageId, point, message, Now));
                    Trace(TraceKind.Intercept, message.From, message, "held");
                    return true;
                case InterceptAction.Rewrite:
                    message = decision.Replacement!;
                    Trace(TraceKind.Intercept, message.From, message, "rewritten to");
                    break;
            }
        }
        return false;
    }

    // ---- clients ----

    /// <summary>
    /// Proposes <paramref name="data"/> on <paramref name="node"/>, or on the current <see cref="Leader"/>. The result
    /// is tracked: it is acknowledged once the proposing node applies the entry at its (index, term).
    /// </summary>
    public ClientProposal Propose(ReadOnlyMemory<byte> data, ulong? node = null)
    {
        var target = node is { } id ? Node(id) : Leader;
        ProposeResult result = default;
        if (target?.Raft is { } raft)
        {
            Guard(() => result = raft.Propose(data));
            Trace(TraceKind.Propose, target.Id, null, result.IsAccepted ? $"accepted at (index {result.Index}, term {result.Term})" : result.Status.ToString());
        }
        else
        {
            result = new ProposeResult(ProposeStatus.NotLeader, 0, 0, 0);
        }
        var proposal = new ClientProposal(_proposals.Count + 1, target?.Id ?? 0, data, result, Now);
        _proposals.Add(proposal);
        if (result.IsAccepted)
        {
            var key = (target!.Id, result.Index);
            // A new entry at this index means the one proposed there before was truncated away.
            if (_pendingProposals.Remove(key, out var replaced)) replaced.State = ProposalState.Lost;
            _pendingProposals.Add(key, proposal);
        }
        if (target is not null) AfterInput(target);
        return proposal;
    }

    /// <summary>Asks <paramref name="node"/> for a linearizable read; the answer appears in its <see cref="SimNode.ReadStates"/>.</summary>
    public ProposeResult ReadIndex(ulong node, ulong context)
    {
        var target = Node(node);
        if (target.Raft is not { } raft) throw new InvalidOperationException($"n{node} is down");
        ProposeResult result = default;
        Guard(() => result = raft.ReadIndex(context));
        AfterInput(target);
        return result;
    }

    /// <summary>
    /// Checks that every acknowledged proposal is applied exactly once by every running node (payloads must be
    /// unique). Call when the cluster has converged.
    /// </summary>
    public void CheckAcknowledgedAppliedExactlyOnce()
    {
        var acknowledged = _proposals.Where(p => p.IsAcknowledged).ToList();
        foreach (var node in _nodes)
        {
            if (!node.IsUp) continue;
            var counts = new Dictionary<ReadOnlyMemory<byte>, int>(ByteContentComparer.Instance);
            foreach (var e in node.Applied)
                if (e.Type == EntryType.Command) counts[e.Data] = counts.GetValueOrDefault(e.Data) + 1;
            foreach (var p in acknowledged)
            {
                var count = counts.GetValueOrDefault(p.Data);
                if (count != 1)
                    throw Violation("acknowledged proposals", $"n{node.Id} applied acknowledged {p} {count} times, not once");
            }
        }
    }

    /// <summary>Fails the run with <paramref name="message"/>, the seed and the replay command (for test assertions).</summary>
    public SimulationFailedException Failure(string message, Exception? inner = null) =>
        new(Report(message), Seed, _options.ReplayCommand, inner);

    /// <summary>A summary of every node, one per line.</summary>
    public string Describe() => string.Join(Environment.NewLine, _nodes.Select(n => n.ToString()));

    // ---- one step: input, Ready handling, checks ----

    private void ProcessEvent(SimEvent ev)
    {
        switch (ev.Kind)
        {
            case EventKind.Tick:
                Schedule(Now + _options.TickMs, ev);
                var node = _nodes[ev.Node - 1];
                if (node.Raft is { } raft && !node.ClockPaused)
                {
                    Guard(raft.Tick);
                    AfterInput(node);
                    ExpireSnapshotTransfers(node);
                }
                break;
            case EventKind.Restart:
                var stopped = _nodes[ev.Node - 1];
                if (!stopped.IsUp && stopped.Incarnation == ev.Incarnation) Start(stopped);
                break;
            case EventKind.Deliver:
                var env = ev.Envelope!;
                if (env.Cancelled) break;
                _inFlight.Remove(env.Id);
                Arrive(env.Message);
                break;
        }
    }

    /// <summary>Handles everything the node's last input produced, then checks the invariants the step may touch.</summary>
    private void AfterInput(SimNode node)
    {
        var rounds = 0;
        while (node.Raft is { } raft && raft.HasReady())
        {
            if (++rounds > _options.MaxReadyRoundsPerStep)
                throw Failure($"n{node.Id} still has a Ready after {_options.MaxReadyRoundsPerStep} rounds");
            var ready = raft.GetReady();
            if (ready.SoftState is { } soft)
            {
                Trace(TraceKind.Role, node.Id, null, $"{soft.Role} t{soft.Term} leader=n{soft.Leader}");
                // Transfers belong to the leadership that started them.
                if (soft.Role != Role.Leader) node.OutgoingSnapshots.Clear();
            }
            // 1. Persist: the snapshot, entries, then the hard state that may depend on them. A disk fault stops the
            // node here, before anything that depends on the lost writes was sent.
            if (!Persist(node, ready)) return;
            // 2. Send, only now that what the messages promise is durable.
            var messages = ready.Messages;
            for (int i = 0; i < messages.Count; i++)
            {
                if (messages[i] is InstallSnapshot install) StartSnapshotTransfer(node, install);
                else Send(messages[i]);
            }
            // 3. Apply.
            var committed = ready.CommittedEntries;
            for (int i = 0; i < committed.Count; i++) Apply(node, committed[i]);
            foreach (var read in ready.ReadStates) node.AddReadState(read);
            Guard(() => raft.Advance(ready));
            if (node.SnapshotReports.Count > 0)
            {
                foreach (var (peer, succeeded) in node.SnapshotReports) Guard(() => raft.ReportSnapshot(peer, succeeded));
                node.SnapshotReports.Clear();
            }
            MaybeTakeSnapshot(node, raft);
        }
        if (node.Raft is { } r)
        {
            Checker.OnCommitIndex(node.Id, r.CommitIndex, r.LastIndex);
            if (r.Role == Role.Leader && !(Checker.LeaderOfTerm.TryGetValue(r.Term, out var known) && known == node.Id))
                Checker.OnLeader(node.Id, r.Term, node.Storage.Snapshot, index => r.TryGetEntry(index, out var e) ? e.Term : null);
        }
    }

    // ---- the disk ----

    private enum DiskFault : byte
    {
        None,
        CrashDuringPersist,
        SyncFailed,
    }

    /// <summary>
    /// Persists what <paramref name="ready"/> asks, as the disk model allows. False when a disk fault stopped the
    /// node: then a prefix of the writes (unsynced ones first, then the entries, then the hard state) survives.
    /// </summary>
    private bool Persist(SimNode node, Ready ready)
    {
        var disk = _disk;
        if (ready.Snapshot is { } snapshot)
        {
            // Installing is a synced write of its own (the snapshot file, then the log reset): a crash lands before or after it.
            if (disk.CrashDuringPersistProbability > 0 && _diskRandom.NextDouble() < disk.CrashDuringPersistProbability)
            {
                node.LoseUnsynced(_diskRandom.Next(node.UnsyncedWrites + 1));
                StopByDiskFault(node, $"crash before installing snapshot {snapshot.Index}/t{snapshot.Term}");
                return false;
            }
            InstallSnapshot(node, snapshot);
        }
        var entries = ready.Entries;
        var hard = ready.HardState;
        if (entries.Count == 0 && hard is null) return true;

        var fault = DiskFault.None;
        var keptEntries = entries.Count;
        var keptHardState = hard is not null;
        if (node.CrashDuringPersist is { } scripted && entries.Count > 0)
        {
            node.CrashDuringPersist = null;
            fault = DiskFault.CrashDuringPersist;
            keptEntries = Math.Min(scripted, entries.Count);
            keptHardState = false;
        }
        else
        {
            if (disk.CrashDuringPersistProbability > 0 && _diskRandom.NextDouble() < disk.CrashDuringPersistProbability)
                fault = DiskFault.CrashDuringPersist;
            else if (ready.MustSync && disk.SyncFailureProbability > 0 && _diskRandom.NextDouble() < disk.SyncFailureProbability)
                fault = DiskFault.SyncFailed;
            if (fault != DiskFault.None)
            {
                // Writes reach the disk in order: unsynced ones first, then the entries, then the hard state.
                var kept = _diskRandom.Next(node.UnsyncedWrites + entries.Count + (hard is null ? 0 : 1) + 1);
                var keptUnsynced = Math.Min(kept, node.UnsyncedWrites);
                node.LoseUnsynced(keptUnsynced);
                kept -= keptUnsynced;
                keptEntries = Math.Min(kept, entries.Count);
                keptHardState = hard is not null && kept > entries.Count;
            }
        }
        if (keptEntries > 0)
        {
            var written = keptEntries == entries.Count ? entries : entries.Take(keptEntries).ToArray();
            node.Storage.Append(written);
            Checker.OnPersistedEntries(node.Id, written, node.Storage.Term(written[0].Index - 1));
        }
        if (keptHardState)
        {
            Checker.OnPersistedHardState(node.Id, node.Storage.HardState, hard!.Value);
            node.Storage.SetHardState(hard.Value);
        }
        if (fault != DiskFault.None)
        {
            StopByDiskFault(node, $"{(fault == DiskFault.SyncFailed ? "fsync failed" : "crash while persisting")}: " +
                $"{keptEntries} of {entries.Count} entries{(hard is null ? "" : keptHardState ? " and the hard state" : ", not the hard state")} survive");
            return false;
        }
        if (ready.MustSync) node.Synced();
        else if (hard is { } unsynced) node.WroteUnsynced(unsynced.Commit);
        return true;
    }

    /// <summary>A disk fault stopped the node (fail-stop); it comes back from its disk later, if the disk config says so.</summary>
    private void StopByDiskFault(SimNode node, string note)
    {
        node.DiskFaults++;
        Stop(node, TraceKind.DiskFault, note);
        if (_disk.RestartAfterFaultMs > 0)
            Schedule(Now + _disk.RestartAfterFaultMs, new SimEvent(EventKind.Restart, node.Id, null, node.Incarnation));
    }

    // ---- snapshots (§7) ----

    /// <summary>Snapshots the state machine every <see cref="SimOptions.SnapshotEveryEntries"/> applied entries and compacts the log behind it.</summary>
    private void MaybeTakeSnapshot(SimNode node, RaftNode raft)
    {
        var every = (ulong)_options.SnapshotEveryEntries;
        var applied = raft.AppliedIndex;
        if (every == 0 || applied < (node.Snapshot?.Metadata.Index ?? 0) + every) return;
        // The state machine is the applied sequence, which the current run applied up to `applied`.
        var history = Checker.AppliedBy(node.Id);
        var metadata = new SnapshotMetadata(applied, history[(int)applied - 1].Term);
        Checker.OnSnapshotTaken(node.Id, metadata, raft.TryGetEntry(applied, out var last) ? last.Term : null);
        node.Snapshot = new SimSnapshot(metadata, new ListPrefix<Entry>(history, (int)applied));
        node.SnapshotsTaken++;
        Trace(TraceKind.Snapshot, node.Id, null, $"took snapshot {metadata.Index}/t{metadata.Term}");
        // Keep a tail of entries so a follower a little behind is caught up from the log, not with a snapshot.
        var retain = (ulong)_options.SnapshotRetainEntries;
        if (applied <= retain) return;
        var compactTo = applied - retain;
        var storage = node.Storage;
        if (compactTo <= storage.Snapshot.Index || compactTo > storage.LastIndex) return;
        storage.Compact(new SnapshotMetadata(compactTo, storage.Term(compactTo)));
        // Compaction is a synced write to the log, which makes the writes before it durable too.
        node.Synced();
    }

    /// <summary>Installs the snapshot the core adopted: it becomes the node's snapshot, the start of its log and its state machine.</summary>
    private void InstallSnapshot(SimNode node, SnapshotMetadata metadata)
    {
        if (node.ReceivedSnapshot is not { } snapshot || snapshot.Metadata != metadata)
            throw Failure($"n{node.Id}'s core adopted snapshot {metadata.Index}/t{metadata.Term}, but the node received {node.ReceivedSnapshot?.ToString() ?? "none"}");
        node.Snapshot = snapshot;
        node.Storage.InstallSnapshot(metadata);
        node.Synced();
        node.SnapshotsInstalled++;
        Trace(TraceKind.Snapshot, node.Id, null, $"installed snapshot {metadata.Index}/t{metadata.Term}");
        Checker.OnSnapshotRestored(node.Id, metadata, snapshot.State, restart: false, node.Raft!.Term);
        // Proposals this node made at indexes the snapshot covers are never applied here one by one: their
        // clients cannot learn the outcome from this node.
        if (_pendingProposals.Count == 0) return;
        foreach (var (key, p) in _pendingProposals.Where(kv => kv.Key.Node == node.Id && kv.Key.Index <= metadata.Index).ToList())
        {
            p.State = ProposalState.Unknown;
            _pendingProposals.Remove(key);
        }
    }

    /// <summary>The leader's core asks to send a follower the snapshot: the newest one goes, whole, in one chunk.</summary>
    private void StartSnapshotTransfer(SimNode node, InstallSnapshot install)
    {
        node.OutgoingSnapshots.Remove(install.To);
        if (node.Snapshot is not { } snapshot)
        {
            node.SnapshotReports.Add((install.To, false));
            return;
        }
        var data = snapshot.Encode();
        node.OutgoingSnapshots[install.To] = new SnapshotTransfer(snapshot.Metadata, (ulong)data.Length, Now);
        Send(new SnapshotChunk(node.Id, install.To, install.Term, snapshot.Metadata, 0, data, Done: true));
    }

    /// <summary>The follower side: keep the snapshot, let the core decide (it may adopt it via Ready.Snapshot), then answer.</summary>
    private void ReceiveSnapshot(SimNode node, RaftNode raft, SnapshotChunk chunk)
    {
        if (chunk.Term < raft.Term)
        {
            Send(new SnapshotChunkResponse(node.Id, chunk.From, raft.Term, chunk.Snapshot, 0, Failed: true));
            return;
        }
        SimSnapshot snapshot;
        try
        {
            snapshot = SimSnapshot.Decode(chunk.Data);
        }
        catch (Exception ex) when (ex is FormatException or ArgumentException)
        {
            throw Failure($"n{node.Id} received an unreadable snapshot from n{chunk.From}: {ex.Message}", ex);
        }
        if (snapshot.Metadata != chunk.Snapshot)
            throw Failure($"n{node.Id} received snapshot {snapshot} in a chunk for {chunk.Snapshot}");
        node.ReceivedSnapshot = snapshot;
        Guard(() => raft.Step(new InstallSnapshot(chunk.From, node.Id, chunk.Term, chunk.Snapshot)));
        AfterInput(node);
        // A crash while installing leaves the leader to time out.
        if (node.Raft != raft) return;
        node.ReceivedSnapshot = null;
        Send(new SnapshotChunkResponse(node.Id, chunk.From, raft.Term, chunk.Snapshot, (ulong)chunk.Data.Length, Failed: false));
    }

    /// <summary>The leader side: the follower answered, so the transfer is over; the core hears how it went.</summary>
    private void EndSnapshotTransfer(SimNode node, RaftNode raft, SnapshotChunkResponse response)
    {
        if (!node.OutgoingSnapshots.TryGetValue(response.From, out var transfer) || transfer.Snapshot != response.Snapshot) return;
        node.OutgoingSnapshots.Remove(response.From);
        var succeeded = !response.Failed && response.NextOffset >= transfer.Bytes && response.Term <= raft.Term;
        Trace(TraceKind.Snapshot, node.Id, null, $"transfer to n{response.From} {(succeeded ? "succeeded" : "failed")}");
        Guard(() => raft.ReportSnapshot(response.From, succeeded));
        AfterInput(node);
    }

    /// <summary>A transfer whose follower has not answered in time failed: the message or its answer was lost, or the follower is down.</summary>
    private void ExpireSnapshotTransfers(SimNode node)
    {
        if (node.OutgoingSnapshots.Count == 0 || node.Raft is not { } raft) return;
        foreach (var (peer, transfer) in node.OutgoingSnapshots.ToList())
        {
            if (Now - transfer.StartedAt <= _options.SnapshotTransferTimeoutMs) continue;
            node.OutgoingSnapshots.Remove(peer);
            Trace(TraceKind.Snapshot, node.Id, null, $"transfer to n{peer} timed out");
            Guard(() => raft.ReportSnapshot(peer, false));
        }
        AfterInput(node);
    }

    private void Apply(SimNode node, Entry entry)
    {
        Checker.OnApplied(node.Id, entry, node.Raft!.Term);
        if (_pendingProposals.Count > 0 && _pendingProposals.Remove((node.Id, entry.Index), out var p))
        {
            if (entry.Term == p.Result.Term && entry.Data.Span.SequenceEqual(p.Data.Span))
            {
                p.State = ProposalState.Acknowledged;
                p.AcknowledgedAt = Now;
            }
            else
            {
                p.State = ProposalState.Lost;
            }
        }
    }

    private void Schedule(long time, SimEvent ev) => _events.Enqueue(ev, (time, ++_sequence));

    /// <summary>Runs a call into the core; an exception from it fails the run with the seed attached.</summary>
    private void Guard(Action action)
    {
        try
        {
            action();
        }
        catch (Exception ex) when (ex is not SimulationFailedException)
        {
            throw Failure($"the consensus core threw {ex.GetType().Name}: {ex.Message}", ex);
        }
    }

    private InvariantViolationException Violation(string invariant, string description) =>
        new InvariantViolationException(invariant, Report($"invariant violated: {invariant}: {description}"), Seed, _options.ReplayCommand);

    private string Report(string message)
    {
        var sb = new StringBuilder();
        sb.AppendLine(message);
        sb.Append(CultureInfo.InvariantCulture, $"  seed {Seed}, virtual time {Now} ms").AppendLine();
        if (_options.ReplayCommand is { } replay) sb.Append("  replay: ").AppendLine(replay);
        sb.AppendLine("  nodes:");
        foreach (var node in _nodes) sb.Append("    ").AppendLine(node.ToString());
        var count = (int)Math.Min(_traceCount, _trace.Length);
        if (count > 0)
        {
            sb.AppendLine("  last events:");
            for (long i = _traceCount - count; i < _traceCount; i++)
                sb.Append("    ").AppendLine(_trace[i % _trace.Length].ToString());
        }
        return sb.ToString();
    }

    private void Trace(TraceKind kind, ulong node, RaftMessage? message, string? note)
    {
        if (_trace.Length == 0) return;
        _trace[_traceCount % _trace.Length] = new TraceRecord(Now, kind, node, message, note);
        _traceCount++;
    }

    /// <summary>A message as one short line; AppendEntries shows its entries' index range and terms.</summary>
    public static string Format(RaftMessage message) => message switch
    {
        AppendEntries ae => $"AppendEntries n{ae.From}->n{ae.To} t{ae.Term} prev=({ae.PrevLogIndex}, t{ae.PrevLogTerm}) " +
            (ae.Entries.Count == 0 ? "no entries" : $"entries {ae.Entries[0].Index}..{ae.Entries[^1].Index} (terms {string.Join(",", ae.Entries.Select(e => e.Term).Distinct())})") +
            $" commit={ae.LeaderCommit}",
        _ => message.ToString(),
    };

    private static ulong Mix(ulong a, ulong b) => new SplitMix64(a ^ (b * 0xD1B54A32D192ED03UL)).NextUInt64();

    private enum EventKind : byte
    {
        Tick,
        Deliver,
        Restart,
    }

    /// <summary>An event; <paramref name="Incarnation"/> ties a restart to the run of the node that stopped.</summary>
    private readonly record struct SimEvent(EventKind Kind, ulong Node, Envelope? Envelope, int Incarnation = 0);

    private sealed class Envelope(long id, RaftMessage message, long sentAt, long deliverAt)
    {
        public long Id { get; } = id;

        public RaftMessage Message { get; } = message;

        public long SentAt { get; } = sentAt;

        public long DeliverAt { get; } = deliverAt;

        public bool Cancelled { get; set; }
    }

    private enum TraceKind : byte
    {
        Start,
        Crash,
        Send,
        Deliver,
        Intercept,
        Release,
        Propose,
        Role,
        Network,
        Snapshot,
        DiskFault,
    }

    private readonly record struct TraceRecord(long Time, TraceKind Kind, ulong Node, RaftMessage? Message, string? Note)
    {
        public override string ToString() =>
            $"{Time,7} ms n{Node} {Kind}{(Note is null ? "" : " " + Note)}{(Message is null ? "" : " " + Format(Message))}";
    }
}

/// <summary>Equality of byte buffers by content.</summary>
internal sealed class ByteContentComparer : IEqualityComparer<ReadOnlyMemory<byte>>
{
    public static ByteContentComparer Instance { get; } = new();

    public bool Equals(ReadOnlyMemory<byte> x, ReadOnlyMemory<byte> y) => x.Span.SequenceEqual(y.Span);

    public int GetHashCode(ReadOnlyMemory<byte> obj)
    {
        var hash = new HashCode();
        hash.AddBytes(obj.Span);
        return hash.ToHashCode();
    }
}

using System.Globalization;
using System.Text;
using RaftMQ.Queue;
using RaftMQ.Raft;
using RaftMQ.Runtime;
using RaftMQ.Storage;

namespace RaftMQ.Simulation;

/// <summary>
/// A deterministic simulation of a Raft cluster: N production <see cref="NodeDriver"/>s (the consensus core, the
/// durable log and snapshot files on a fault-injecting in-memory disk, the node's Ready handling) in one process, on
/// virtual time owned by the test, talking over a seeded, hostile network. Events (ticks, deliveries) run in (time, sequence) order, so a
/// seed fixes the whole run. Every step is followed by the <see cref="InvariantChecker"/>; a violation throws an
/// <see cref="InvariantViolationException"/> that names the seed and the command that replays it.
/// </summary>
/// <remarks>
/// Nothing of a node's Ready handling is written here: the driver persists, sends, applies, snapshots and transfers
/// snapshots exactly as it does in production. The simulator supplies what the production loop supplies — messages,
/// ticks, proposals, reads, a clock and a background worker for snapshot writes — and a disk that keeps exactly what
/// <see cref="SimOptions.Disk"/> lets survive.
/// </remarks>
public sealed partial class SimCluster : IDisposable
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
    private readonly List<ClientProposal> _pendingProposals = [];
    private readonly List<ClientProposal> _proposals = [];
    private readonly Dictionary<ClientProposal, TaskCompletionSource<object?>> _forwardCompletions = [];
    private readonly List<ClientRead> _reads = [];
    private readonly List<ClientRead> _pendingReads = [];
    private readonly VirtualTime _time;
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
        _time = new VirtualTime(this);
        var n = options.PoolSize;
        _nodes = new SimNode[n];
        _voters = new ulong[options.Nodes];
        Checker = new InvariantChecker(n, (invariant, description) => throw Violation(invariant, description));
        for (int i = 0; i < n; i++) _nodes[i] = new SimNode((ulong)i + 1, Checker);
        for (int i = 0; i < _voters.Length; i++) _voters[i] = (ulong)i + 1;
        _links = new LinkConfig[n * n];
        Array.Fill(_links, options.Link);
        _blocked = new bool[n * n];
        _trace = new TraceRecord[options.TraceCapacity];
        if (options.Application == SimApplication.Queue)
        {
            // Real files: each node's queue keeps its messages in segment files, as in production.
            QueueRoot = Path.Combine(Path.GetTempPath(), "raftmq-sim", $"{options.Seed}-{Guid.NewGuid():N}");
            foreach (var node in _nodes)
            {
                node.QueueDirectory = Path.Combine(QueueRoot, $"n{node.Id}");
                Directory.CreateDirectory(node.QueueDirectory);
            }
        }
        foreach (var node in _nodes)
        {
            // Each node ticks on its own phase, so ticks of different nodes never line up by accident.
            var phase = 1 + _random.Next(options.TickMs);
            Schedule(phase, new SimEvent(EventKind.Tick, node.Id, null));
            if (node.Id <= (ulong)_voters.Length) Start(node); // spares start when a membership change adds them
        }
    }

    /// <summary>The seed of this run.</summary>
    public ulong Seed { get; }

    /// <summary>In queue mode, the temporary directory holding every node's queue directory (deleted by <see cref="Dispose"/>).</summary>
    public string? QueueRoot { get; }

    private bool QueueMode => _options.Application == SimApplication.Queue;

    /// <summary>Stops every node and, in queue mode, deletes the nodes' queue directories.</summary>
    public void Dispose()
    {
        foreach (var node in _nodes)
            if (node.IsUp) node.Stop(new NodeStoppedException($"n{node.Id} stopped: the simulation ended"));
        if (QueueRoot is { } root && Directory.Exists(root)) Directory.Delete(root, recursive: true);
    }

    public SimOptions Options => _options;

    /// <summary>The virtual time in milliseconds.</summary>
    public long Now { get; private set; }

    /// <summary>Nodes by position; node ids are 1..N (spares of the pool included).</summary>
    public IReadOnlyList<SimNode> Nodes => _nodes;

    /// <summary>The safety checker that watches this run.</summary>
    public InvariantChecker Checker { get; }

    public NetworkStats Stats { get; } = new();

    /// <summary>Every proposal made through <see cref="Propose"/>, in order.</summary>
    public IReadOnlyList<ClientProposal> Proposals => _proposals;

    /// <summary>Every read made through <see cref="Read"/>, in order.</summary>
    public IReadOnlyList<ClientRead> Reads => _reads;

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

    /// <summary>
    /// Holds node <paramref name="id"/>'s loop up for <paramref name="durationMs"/> from now, as a long fsync or a GC
    /// pause does: messages wait in its inbox and ticks are counted, then it handles the messages and catches up.
    /// </summary>
    public void HoldUp(ulong id, long durationMs)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(durationMs);
        var node = Node(id);
        node.BusyUntil = Math.Max(node.BusyUntil, Now + durationMs);
    }

    /// <summary>
    /// Stalls node <paramref name="id"/>'s disk for <paramref name="durationMs"/> from now: a log fsync running or
    /// started meanwhile ends no earlier than that, while the node's loop goes on (the fsync runs off the loop).
    /// </summary>
    public void StallLogSyncs(ulong id, long durationMs)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(durationMs);
        var node = Node(id);
        node.LogSyncStalledUntil = Math.Max(node.LogSyncStalledUntil, Now + durationMs);
    }

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
    /// Crashes a node: its in-memory state is lost; its disk stays, as <paramref name="mode"/> leaves it — by default
    /// everything written survives (a process crash), or, with <see cref="DiskConfig.LoseUnsyncedOnCrash"/>, a power
    /// cut keeps a random part of what was not fsynced. Messages on the wire may still arrive
    /// (<see cref="SimOptions.MessagesSurviveCrashProbability"/>), as a TCP connection's queues do.
    /// </summary>
    public void Crash(ulong id, CrashMode? mode = null)
    {
        var node = Node(id);
        if (!node.IsUp) return;
        Stop(node, TraceKind.Crash, null);
        LoseUnsynced(node, mode);
    }

    /// <summary>What survives of the node's disk after it stopped.</summary>
    private void LoseUnsynced(SimNode node, CrashMode? mode)
    {
        var random = new Random((int)(_diskRandom.NextUInt64() & int.MaxValue));
        var chosen = mode ?? (_disk.LoseUnsyncedOnCrash ? (CrashMode)_diskRandom.Next(3) : CrashMode.KeepAll);
        node.Disk = node.Disk.Crash(chosen, random, keepBytes: random.Next(64 * 1024));
    }

    /// <summary>Stops a running node, leaving its disk as it is now.</summary>
    private void Stop(SimNode node, TraceKind kind, string? note)
    {
        var id = node.Id;
        node.Stop(new NodeStoppedException($"n{id} stopped ({kind})"));
        var survive = _options.MessagesSurviveCrashProbability > 0 && _random.NextDouble() < _options.MessagesSurviveCrashProbability;
        if (!survive)
        {
            var lost = new List<long>();
            foreach (var (key, env) in _inFlight)
                if (env.Message.From == id || env.Message.To == id) lost.Add(key);
            foreach (var key in lost)
            {
                _inFlight[key].Cancelled = true;
                _inFlight.Remove(key);
            }
            Stats.Dropped += lost.Count;
        }
        // (Messages that survive include held ones: a held message is one still on its way.)
        if (!survive) Stats.Dropped += _held.RemoveAll(h => h.Message.From == id || h.Message.To == id);
        // The other nodes' connections to it close: each transport notices within a millisecond or so (RaftRuntime
        // hands that to the driver as NodeDriver.LinkDown). A partition, unlike this, stays silent.
        foreach (var other in _nodes)
            if (other.IsUp && other.Id != id)
                Schedule(Now + 1, new SimEvent(EventKind.LinkDown, other.Id, null, other.Incarnation, Peer: id));
        UpdateClients();
        Trace(kind, id, null, note + (survive ? " (its messages on the wire survive)" : ""));
    }

    /// <summary>
    /// Starts a crashed node again from its disk: the state machine from its newest snapshot (§7), then the log after
    /// it (from index 1 when it has no snapshot).
    /// </summary>
    public void Restart(ulong id)
    {
        var node = Node(id);
        if (node.IsUp) throw new InvalidOperationException($"n{id} is running; crash it first");
        if (IsRetired(id)) throw new InvalidOperationException($"n{id} was wiped or decommissioned; it never runs again");
        Start(node);
    }

    /// <summary>
    /// The log a restart of <paramref name="id"/> would find on its disk now (opened on a copy, so the disk itself is
    /// left as it is). For tests that check what survived a crash.
    /// </summary>
    public DurableLogStorage DiskLog(ulong id)
    {
        var copy = Node(id).Disk.Crash(CrashMode.KeepAll, new Random(0));
        return NodeStorage.Open(SimNode.DataDirectory, StorageOptionsOn(copy)).Log;
    }

    /// <summary>
    /// The write-ahead log alone as a restart of <paramref name="id"/> would find it now, before the newest snapshot
    /// is adopted (<see cref="DiskLog"/> adopts it, as a restart does).
    /// </summary>
    public DurableLogStorage DiskWal(ulong id)
    {
        var copy = Node(id).Disk.Crash(CrashMode.KeepAll, new Random(0));
        return DurableLogStorage.Open(Path.Combine(SimNode.DataDirectory, "wal"), StorageOptionsOn(copy));
    }

    /// <summary>A node's storage settings: the production code with small files, so segments roll and are deleted often.</summary>
    private StorageOptions StorageOptionsOn(FaultyFileSystem disk) => new()
    {
        FileSystem = disk,
        SegmentBytes = _options.SegmentBytes,
        MaxEntryBytes = _options.MaxEntryBytes,
        MaxBatchBytes = (int)Math.Min(_options.SegmentBytes - 4096, int.MaxValue),
        CacheBytes = 256 * 1024,
        CacheEntries = 1024,
    };

    /// <summary>How the disks fail from now on (e.g. <see cref="DiskConfig.Reliable"/> to let a cluster converge).</summary>
    public DiskConfig Disk
    {
        get => _disk;
        set
        {
            ArgumentNullException.ThrowIfNull(value);
            value.Validate();
            _disk = value;
            foreach (var node in _nodes)
            {
                node.Disk.WriteFailureProbability = value.CrashDuringPersistProbability;
                node.Disk.SyncFailureProbability = value.SyncFailureProbability;
            }
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
            Voters = InitialConfiguration(node.Id).Voters.ToArray(),
            ElectionTicks = _options.ElectionTicks,
            HeartbeatTicks = _options.HeartbeatTicks,
            QuiescedHeartbeatTicks = _options.QuiescedHeartbeatTicks,
            PreVote = _options.PreVote,
            CheckQuorum = _options.CheckQuorum,
            RandomSeed = Mix(Seed, (ulong)node.Incarnation),
            MaxEntryBytes = _options.MaxEntryBytes,
        };
        _options.ConfigureRaft?.Invoke(options);
        var every = _options.SnapshotEveryEntries;
        var driverOptions = new NodeDriverOptions
        {
            SnapshotEveryEntries = every == 0 ? ulong.MaxValue : (ulong)every,
            SnapshotEveryBytes = long.MaxValue,
            SnapshotRetainEntries = (ulong)_options.SnapshotRetainEntries,
            SnapshotRetainBytes = _options.SnapshotRetainBytes,
            SnapshotChunkBytes = _options.SnapshotChunkBytes,
            SnapshotTransferTimeout = TimeSpan.FromMilliseconds(_options.SnapshotTransferTimeoutMs),
            Forwarding = QueueMode ? QueueForwarding(node) : new ProposalForwarding { Results = IndexResultCodec.Instance, Timeout = TimeSpan.FromMilliseconds(ForwardTimeoutMs) },
            PromoteCaughtUpLearners = _options.PromoteCaughtUpLearners,
            // Half the incarnations ask their leaders for commits at once, as a node holding long polls does; the rest
            // learn them with the next append or heartbeat: every run mixes both (only latency may depend on it).
            WaitingToApply = ((node.Id + (ulong)node.Incarnation) & 1) == 0 ? static () => true : null,
        };
        var disk = node.Disk;
        disk.FaultRandom = new Random((int)(Mix(Seed ^ 0xD15C, (ulong)node.Incarnation * 64 + node.Id) & int.MaxValue));
        disk.WriteFailureProbability = _disk.CrashDuringPersistProbability;
        disk.SyncFailureProbability = _disk.SyncFailureProbability;
        var storageOptions = StorageOptionsOn(disk);
        // Each run of a node numbers its reads from its own random point, as production does.
        var readContextSeed = Mix(Seed ^ 0x5EAD, (ulong)node.Incarnation * 64 + node.Id);
        try
        {
            node.Start(options, driverOptions, storageOptions, new Host(this, node, node.Incarnation), readContextSeed);
        }
        catch (Exception e) when (FaultyFileSystem.IsInjected(e))
        {
            // Recovery itself hit a disk fault: the node fails to start and is tried again later.
            StopByDiskFault(node, $"disk fault during start-up: {e.Message}");
            return;
        }
        catch (Exception e) when (e is not SimulationFailedException)
        {
            throw Failure($"n{node.Id} could not start from its disk: {e.GetType().Name}: {e.Message}", e);
        }
        Checker.OnLogOpened(node.Id, node.Storage, InitialConfiguration(node.Id));
        Trace(TraceKind.Start, node.Id, null, null);
        Drive(node, static () => { });
    }

    /// <summary>
    /// The queue node's forwarding hooks, as a RaftMQ server sets them (<c>QueueNode.Forwarding</c>): results as
    /// <see cref="QueueResultCodec"/> bytes, and <see cref="PublishStamper.Stamp"/> as the leader's last word on each
    /// command, with a stamper on the virtual clock for each run of the node (a restarted process has a new one). The
    /// server's disk-alarm admission check is not modelled (the simulated disks do not fill up).
    /// </summary>
    private ProposalForwarding QueueForwarding(SimNode node)
    {
        var stamper = new PublishStamper(_time);
        node.Stamper = stamper;
        node.Forwarding = new ProposalForwarding { Results = QueueResultCodec.Instance, Prepare = stamper.Stamp, Timeout = TimeSpan.FromMilliseconds(ForwardTimeoutMs) };
        return node.Forwarding;
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
        foreach (var other in NodeIds)
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
        foreach (var other in NodeIds)
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
        foreach (var a in NodeIds)
            foreach (var b in NodeIds)
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
        if (message is RequestVoteResponse { Granted: true, PreVote: false } vote) Checker.OnVoteGranted(vote.From, vote.Term, vote.To);
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
        if (node.Driver is not { } driver)
        {
            Stats.Dropped++;
            return;
        }
        Stats.OnDelivered();
        Trace(TraceKind.Deliver, message.To, message, null);
        Drive(node, () => driver.Step(message));
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
    /// Proposes <paramref name="data"/> on <paramref name="node"/>, or on the current <see cref="Leader"/>, through the
    /// node's driver. The result is tracked: acknowledged when the driver answers with the applied result.
    /// </summary>
    public ClientProposal Propose(ReadOnlyMemory<byte> data, ulong? node = null)
    {
        var target = node is { } id ? Node(id) : Leader;
        var completion = new TaskCompletionSource<object?>();
        ProposeResult result = new(ProposeStatus.NotLeader, 0, 0, 0);
        if (target?.Driver is { } driver)
        {
            Drive(target, () => result = driver.Propose(data, completion));
            Trace(TraceKind.Propose, target.Id, null, result.IsAccepted ? $"accepted at (index {result.Index}, term {result.Term})" : result.Status.ToString());
        }
        var proposal = new ClientProposal(_proposals.Count + 1, target?.Id ?? 0, data, result, Now, completion.Task);
        _proposals.Add(proposal);
        if (result.IsAccepted) _pendingProposals.Add(proposal);
        UpdateClients();
        return proposal;
    }

    /// <summary>
    /// Asks node <paramref name="id"/> to hand leadership to <paramref name="target"/> (0: the most up-to-date voter),
    /// as <see cref="NodeDriver.TransferLeadership"/>; returns what the core said (a node that does not lead refuses).
    /// </summary>
    public MembershipResult TransferLeadership(ulong id, ulong target)
    {
        var node = Node(id);
        var result = new MembershipResult(MembershipStatus.NotLeader, 0, 0, 0, "down");
        if (node.Driver is { } driver)
        {
            Drive(node, () => result = driver.TransferLeadership(target, new TaskCompletionSource<LeadershipTransferred>()));
            Trace(TraceKind.Propose, id, null, result.IsAccepted ? $"leadership transfer to n{target} started" : $"leadership transfer refused: {result.Status}");
        }
        return result;
    }

    /// <summary>How long a follower waits for the leader's answer to a forwarded proposal before it gives up (virtual ms).</summary>
    public const int ForwardTimeoutMs = 1_500;

    /// <summary>
    /// Proposes <paramref name="data"/> through <paramref name="node"/>: its driver forwards it to the leader it knows,
    /// which proposes it and sends the result back (<see cref="NodeDriver.Forward"/>). Tracked like
    /// <see cref="Propose"/>: acknowledged when the leader's result arrives, with the index it was applied at.
    /// </summary>
    public ClientProposal ProposeThrough(ReadOnlyMemory<byte> data, ulong node)
    {
        var target = Node(node);
        var answer = new TaskCompletionSource<ForwardResult>();
        if (target.Driver is { } driver)
        {
            Drive(target, () => driver.Forward(data, answer));
            Trace(TraceKind.Propose, target.Id, null, answer.Task.IsCompleted ? $"not forwarded: {answer.Task.Result.Status}" : "forwarded");
        }
        else
        {
            answer.SetException(new NodeStoppedException($"n{node} is down"));
        }
        var completion = new TaskCompletionSource<object?>();
        var proposal = new ClientProposal(
            _proposals.Count + 1, node, data, new ProposeResult(ProposeStatus.Accepted, 0, 0, 0), Now, completion.Task, answer.Task);
        _forwardCompletions[proposal] = completion;
        _proposals.Add(proposal);
        _pendingProposals.Add(proposal);
        UpdateClients();
        return proposal;
    }

    /// <summary>
    /// A client's command sent to node <paramref name="node"/>, as a RaftMQ server takes one from its HTTP client: on
    /// the leader, the forwarding hooks' admission check and <see cref="ProposalForwarding.Prepare"/> (the leader's
    /// time stamped in) run and the command is proposed, as <c>RaftRuntime.ProposeOrRouteAsync</c> does; on a
    /// follower it is forwarded to the leader, which prepares it; on a node that is down it is refused (the client's
    /// connection fails). The answer (<see cref="ClientProposal.Answer"/>) is the state machine's result.
    /// </summary>
    public ClientProposal Submit(ReadOnlyMemory<byte> command, ulong node)
    {
        var target = Node(node);
        if (target.Raft is not { } raft) return Propose(command, node);
        if (raft.Role != Role.Leader) return ProposeThrough(command, node);
        // (No admission check: the simulated nodes have no disk alarm.)
        if (target.Forwarding?.Prepare is { } prepare) command = prepare(command);
        return Propose(command, node);
    }

    /// <summary>Forwarded proposals not answered yet (an answer lost on the way comes at the follower's timeout).</summary>
    public int PendingForwards => _pendingProposals.Count(p => p.Forwarded);

    /// <summary>
    /// Asks <paramref name="node"/> for a linearizable read of its state machine (the last index it applied); the
    /// answer is checked against every write acknowledged before the read began.
    /// </summary>
    public ClientRead Read(ulong node)
    {
        var target = Node(node);
        if (target.Driver is not { } driver) throw new InvalidOperationException($"n{node} is down");
        var completion = new TaskCompletionSource<object?>();
        // A read must see every write acknowledged before it began (linearizability's real-time order).
        var mustSee = _proposals.Where(p => p.IsAcknowledged).Select(p => p.Index).DefaultIfEmpty(0UL).Max();
        var read = new ClientRead(_reads.Count + 1, node, Now, mustSee, completion.Task);
        _reads.Add(read);
        _pendingReads.Add(read);
        Func<object?> applied = target.StateMachine is { } machine ? () => machine.AppliedIndex : () => target.AppliedThisRun;
        Drive(target, () => driver.Read(applied, completion));
        UpdateClients();
        return read;
    }

    /// <summary>
    /// Checks that every proposal got an answer: on a converged cluster nothing is left pending (a proposal on a node
    /// that crashed counts as answered: its client saw the connection drop). Call when the cluster has converged.
    /// </summary>
    public void CheckEveryProposalAnswered()
    {
        UpdateClients();
        if (_pendingProposals.Count > 0)
            throw Violation("every proposal answered", $"{_pendingProposals.Count} proposals never answered, the first {_pendingProposals[^1]}");
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
                // The index the client was answered with holds its command (for a forwarded one: the leader's word).
                var applied = node.Applied;
                if (p.Index == 0 || p.Index > (ulong)applied.Count || !applied[(int)p.Index - 1].Data.Span.SequenceEqual(p.Data.Span))
                    throw Violation("acknowledged proposals", $"n{node.Id} does not hold acknowledged {p} at its index");
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
                if (node.Driver is not { } driver || node.ClockPaused) break;
                // A loop held up by a slow fsync counts the ticks it missed and catches up, as RaftRuntime does.
                node.MissedTicks++;
                if (node.BusyUntil > Now) break;
                var ticks = Math.Min(node.MissedTicks, 64);
                node.MissedTicks = 0;
                Drive(node, () => driver.Tick(ticks));
                break;
            case EventKind.Continue:
                var continuing = _nodes[ev.Node - 1];
                if (continuing.Driver is null || continuing.Incarnation != ev.Incarnation) break;
                if (continuing.BusyUntil > Now)
                {
                    Schedule(continuing.BusyUntil, ev);
                    break;
                }
                Drive(continuing, static () => { });
                break;
            case EventKind.Restart:
                var stopped = _nodes[ev.Node - 1];
                if (!stopped.IsUp && stopped.Incarnation == ev.Incarnation && !IsRetired(stopped.Id)) Start(stopped);
                break;
            case EventKind.Deliver:
                var env = ev.Envelope!;
                if (env.Cancelled) break;
                // The receiver's loop is held up by a slow fsync: the message waits in its inbox.
                if (_nodes[env.Message.To - 1] is { IsUp: true } busy && busy.BusyUntil > Now)
                {
                    Schedule(busy.BusyUntil, ev);
                    break;
                }
                _inFlight.Remove(env.Id);
                Arrive(env.Message);
                break;
            case EventKind.SnapshotWrite:
                var writer = _nodes[ev.Node - 1];
                // A crash in between loses the write, as it would lose the thread doing it.
                if (writer.Driver is not { } owner || writer.Incarnation != ev.Incarnation) break;
                var job = ev.Job!;
                if (writer.BusyUntil > Now)
                {
                    Schedule(writer.BusyUntil, ev); // the loop takes the finished job back once it is free
                    break;
                }
                job.Write();
                if (job.Error is { } error && !FaultyFileSystem.IsInjected(error))
                    throw Failure($"n{writer.Id} failed to write snapshot {job.Metadata.Index}/t{job.Metadata.Term}: {error}", error);
                Trace(TraceKind.Snapshot, writer.Id, null, $"wrote snapshot {job.Metadata.Index}/t{job.Metadata.Term}{(job.Error is null ? "" : ": " + job.Error.Message)}");
                Drive(writer, () => owner.CompleteSnapshot(job));
                break;
            case EventKind.LogSync:
                var syncing = _nodes[ev.Node - 1];
                // A crash in between loses the fsync: what it would have covered may be lost on the disk too.
                if (syncing.Driver is not { } syncer || syncing.Incarnation != ev.Incarnation) break;
                if (syncing.BusyUntil > Now || syncing.LogSyncStalledUntil > Now)
                {
                    Schedule(Math.Max(syncing.BusyUntil, syncing.LogSyncStalledUntil), ev);
                    break;
                }
                var logJob = ev.LogJob!;
                logJob.Run();
                Drive(syncing, () => syncer.CompleteLogSync(logJob), loopSyncs: false);
                break;
            case EventKind.LinkDown:
                var hearing = _nodes[ev.Node - 1];
                if (hearing.Driver is not { } linked || hearing.Incarnation != ev.Incarnation) break;
                if (hearing.BusyUntil > Now)
                {
                    Schedule(hearing.BusyUntil, ev);
                    break;
                }
                var peer = ev.Peer;
                Drive(hearing, () => linked.LinkDown(peer));
                break;
        }
    }

    /// <summary>
    /// Gives the node one input, then lets its driver handle every Ready, then checks the invariants the step may
    /// touch. A disk fault the disk injected stops the node (fail-stop), as it stops a production node.
    /// </summary>
    private void Drive(SimNode node, Action input, bool loopSyncs = true)
    {
        if (node.Driver is not { } driver) return;
        var syncs = driver.Counters.LogSyncs;
        try
        {
            input();
            driver.ProcessReady();
            // A slow disk: an fsync this step did on the loop holds the loop up for a while (nothing else is handled).
            // A Ready's fsync runs off the loop (LogSync events); the one that ends in this step was not on the loop.
            if (loopSyncs && driver.Counters.LogSyncs > syncs && _options.SlowFsyncProbability > 0 && _diskRandom.NextDouble() < _options.SlowFsyncProbability)
                node.BusyUntil = Now + 1 + _diskRandom.Next(_options.SlowFsyncMaxMs);
            // Readies left for the next step, as RaftRuntime's loop goes round again at once: after the inputs queued now.
            if (driver.HasPendingReady) Schedule(Now, new SimEvent(EventKind.Continue, node.Id, null, node.Incarnation));
        }
        catch (Exception e) when (FaultyFileSystem.IsInjected(e))
        {
            StopByDiskFault(node, e.Message);
            return;
        }
        catch (Exception e) when (e is not SimulationFailedException)
        {
            throw Failure($"n{node.Id} threw {e.GetType().Name}: {e.Message}", e);
        }
        AfterInput(node);
    }

    /// <summary>Checks what a node's last step may have changed, and records the answers clients got.</summary>
    /// <summary>
    /// The latest configuration entry in <paramref name="r"/>'s log as it is in memory (what it appended, persisted or
    /// not), read from the entries themselves; before its first entry, its snapshot's; null when neither says (a log
    /// opened without either: the checker's own record decides).
    /// </summary>
    private static ClusterConfiguration? LatestConfigurationInLog(SimNode node, RaftNode r)
    {
        for (var i = r.LastIndex; i >= r.FirstIndex && i > 0; i--)
        {
            if (r.TryGetEntry(i, out var e) && e.Type == EntryType.Configuration)
                return ClusterConfiguration.TryDecode(e.Data.Span, out var configuration, out _) ? configuration : null;
        }
        return node.Storage.Snapshot.Configuration;
    }

    private void AfterInput(SimNode node)
    {
        UpdateClients();
        if (node.Raft is { } r)
        {
            var commitBefore = Checker.CommitOf(node.Id);
            Checker.OnCommitIndex(node.Id, r.CommitIndex, r.LastIndex);
            if (r.Role == Role.Leader && r.CommitIndex > commitBefore) CheckCommitQuorum(node, r);
            if (r.Role == Role.Leader && !(Checker.LeaderOfTerm.TryGetValue(r.Term, out var known) && known == node.Id))
            {
                var log = node.Storage;
                Checker.OnLeader(node.Id, r.Term, log.Snapshot, index => r.TryGetEntry(index, out var e) ? e.Term : null, LatestConfigurationInLog(node, r));
            }
        }
    }

    /// <summary>
    /// A disk fault stopped the node (fail-stop, while running or at start-up); what the disk had not made durable may
    /// be lost, and the node comes back from its disk later, if the disk config says so.
    /// </summary>
    private void StopByDiskFault(SimNode node, string note)
    {
        if (node.IsUp) Stop(node, TraceKind.DiskFault, note);
        else Trace(TraceKind.DiskFault, node.Id, null, note);
        node.DiskFaults++;
        LoseUnsynced(node, null);
        if (_disk.RestartAfterFaultMs > 0)
            Schedule(Now + _disk.RestartAfterFaultMs, new SimEvent(EventKind.Restart, node.Id, null, node.Incarnation));
    }

    /// <summary>Moves every client request whose answer came in to its final state, and checks reads.</summary>
    private void UpdateClients()
    {
        for (int i = _pendingProposals.Count - 1; i >= 0; i--)
        {
            var p = _pendingProposals[i];
            if (p.Forwarded) AnswerForwarded(p);
            if (!p.Completion.IsCompleted) continue;
            _pendingProposals.RemoveAt(i);
            if (p.Completion.IsCompletedSuccessfully)
            {
                // The simulated application answers with the entry's index; the queue with its result.
                if (!QueueMode && (ulong)p.Completion.Result! is var index && index != p.Index)
                    throw Failure($"{p} was answered with the result of index {index}");
                p.State = ProposalState.Acknowledged;
                p.AcknowledgedAt = Now;
            }
            else
            {
                p.State = p.Completion.Exception?.InnerException switch
                {
                    ProposalDroppedException => ProposalState.Lost,
                    ForwardNotAppliedException => ProposalState.Rejected,
                    _ => ProposalState.Unknown,
                };
            }
        }
        for (int i = _pendingReads.Count - 1; i >= 0; i--)
        {
            var r = _pendingReads[i];
            if (!r.Completion.IsCompleted) continue;
            _pendingReads.RemoveAt(i);
            r.AnsweredAt = Now;
            if (!r.Completion.IsCompletedSuccessfully) continue;
            var seen = (ulong)r.Completion.Result!;
            r.Index = seen;
            if (seen < r.MustSee)
            {
                throw Violation("linearizable reads",
                    $"read {r.Id} on n{r.Node} (issued at {r.IssuedAt} ms) saw the state at index {seen}, but a write at index {r.MustSee} was acknowledged before it began");
            }
        }
    }

    /// <summary>
    /// Turns the follower's answer to a forwarded proposal into the client's: the applied index, or certainly not
    /// applied, or unknown (a timeout, the leader's word, or the follower stopped).
    /// </summary>
    private void AnswerForwarded(ClientProposal p)
    {
        var answer = p.ForwardAnswer!;
        if (!answer.IsCompleted || !_forwardCompletions.Remove(p, out var completion)) return;
        if (!answer.IsCompletedSuccessfully)
        {
            completion.SetException(answer.Exception?.InnerException ?? new InvalidOperationException("forward cancelled"));
            return;
        }
        var result = answer.Result;
        switch (result.Status)
        {
            case ForwardStatus.Applied when QueueMode:
                completion.SetResult(QueueResultCodec.Instance.Decode(result.Payload.Span));
                break;
            case ForwardStatus.Applied:
                var index = (ulong)IndexResultCodec.Instance.Decode(result.Payload.Span)!;
                p.AppliedIndex = index;
                completion.SetResult(index);
                break;
            case ForwardStatus.NotLeader or ForwardStatus.NotApplied or ForwardStatus.Refused:
                completion.SetException(new ForwardNotAppliedException(result.Status));
                break;
            default:
                completion.SetException(new ProposalOutcomeUnknownException(0));
                break;
        }
    }

    /// <summary>A forwarded proposal that was certainly not applied (its status says why).</summary>
    private sealed class ForwardNotAppliedException(ForwardStatus status) : Exception($"not applied: {status}");

    /// <summary>The simulated state machine's result, its entry's index, as 8 bytes.</summary>
    private sealed class IndexResultCodec : RaftMQ.StateMachine.Sessions.IResultCodec
    {
        public static readonly IndexResultCodec Instance = new();

        public byte[] Encode(object? result) => BitConverter.GetBytes((ulong)result!);

        public object? Decode(ReadOnlySpan<byte> bytes) =>
            bytes.Length == 8 ? BitConverter.ToUInt64(bytes) : throw new FormatException($"an index is 8 bytes, not {bytes.Length}");
    }

    private void Schedule(long time, SimEvent ev) => _events.Enqueue(ev, (time, ++_sequence));

    private InvariantViolationException Violation(string invariant, string description) =>
        new InvariantViolationException(invariant, Report($"invariant violated: {invariant}: {description}"), Seed, _options.ReplayCommand);

    private string Report(string message)
    {
        var sb = new StringBuilder();
        sb.AppendLine(message);
        sb.Append(CultureInfo.InvariantCulture, $"  seed {Seed}, virtual time {Now} ms").AppendLine();
        if (_options.ReplayCommand is { } replay) sb.Append("  replay: ").AppendLine(replay);
        sb.Append(CultureInfo.InvariantCulture, $"  pre-vote {(_options.PreVote ? "on" : "off")}, check-quorum {(_options.CheckQuorum ? "on" : "off")}").AppendLine();
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
        SnapshotWrite,

        /// <summary>A Ready's fsync, run off the node's loop, ends: the driver finishes the Ready.</summary>
        LogSync,

        /// <summary>The node's driver left Readies for its next step (bounded applying): it handles them now.</summary>
        Continue,

        /// <summary>The node's link to a peer went down (the peer process stopped), as TCP reports a closed connection.</summary>
        LinkDown,
    }

    /// <summary>An event; <paramref name="Incarnation"/> ties a restart or a snapshot write to the run of the node.</summary>
    private readonly record struct SimEvent(
        EventKind Kind, ulong Node, Envelope? Envelope, int Incarnation = 0, SnapshotJob? Job = null, LogSyncJob? LogJob = null, ulong Peer = 0);

    /// <summary>What a node's driver needs from the world, for one run of the node.</summary>
    private sealed class Host(SimCluster cluster, SimNode node, int incarnation) : INodeHost
    {
        public TimeProvider Time => cluster._time;

        public void Send(RaftMessage message)
        {
            // A node that crashed sends nothing more (its driver still answers its waiting callers as it stops).
            if (node.IsUp && node.Incarnation == incarnation) cluster.Send(message);
        }

        /// <summary>A crashed or stopped node's connections are closed, as a killed process's are; a partition is silent.</summary>
        public bool IsLinkDown(ulong peer) => peer >= 1 && peer <= (ulong)cluster._nodes.Length && !cluster._nodes[(int)peer - 1].IsUp;

        public void WriteSnapshotInBackground(SnapshotJob job)
        {
            var delay = cluster._options.SnapshotWriteDelayMaxMs == 0 ? 0 : cluster._random.Next(cluster._options.SnapshotWriteDelayMaxMs + 1);
            cluster.Schedule(cluster.Now + delay, new SimEvent(EventKind.SnapshotWrite, node.Id, null, incarnation, job));
        }

        public bool TrySyncLogInBackground(LogSyncJob job)
        {
            var options = cluster._options;
            var delay = options.LogSyncDelayMaxMs == 0 ? 0 : cluster._diskRandom.Next(options.LogSyncDelayMaxMs + 1);
            if (options.SlowFsyncProbability > 0 && cluster._diskRandom.NextDouble() < options.SlowFsyncProbability)
                delay += 1 + cluster._diskRandom.Next(options.SlowFsyncMaxMs);
            cluster.Schedule(cluster.Now + delay, new SimEvent(EventKind.LogSync, node.Id, null, incarnation, LogJob: job));
            return true;
        }
    }

    /// <summary>The virtual clock as a <see cref="TimeProvider"/>: one timestamp tick per virtual millisecond.</summary>
    private sealed class VirtualTime(SimCluster cluster) : TimeProvider
    {
        public override long TimestampFrequency => 1000;

        public override long GetTimestamp() => cluster.Now;

        public override DateTimeOffset GetUtcNow() => DateTimeOffset.UnixEpoch.AddMilliseconds(cluster.Now);
    }

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

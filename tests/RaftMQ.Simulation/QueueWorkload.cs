using System.Globalization;
using System.Text;
using RaftMQ.Linearizability;
using RaftMQ.Queue;
using RaftMQ.Raft;

namespace RaftMQ.Simulation;

/// <summary>
/// At-least-once clients of one topic on a simulated queue cluster (<see cref="SimApplication.Queue"/>), on virtual
/// time, recording what they ask and are answered in a <see cref="QueueHistory"/>. Producers publish batches of
/// messages with ids (the id is also the body) and retry a batch with the same ids until it is answered Ok — also,
/// now and then, after an Ok, as a producer does whose answer was lost on its side. Consumers in two groups receive
/// with leases, hold the messages for a random time (often past the lease, so their acks come late and may be
/// stale), then ack most (half the time the acks ride on the next receive, one receive-ack command), nack some and
/// drop some (never settled: delivered again when the lease ends); and they
/// crash mid-lease — abandoning what they hold and the answer they wait for — and either never come back or come
/// back later as a new consumer. Each call goes to a random node (the leader more often): the leader proposes it
/// with the production hooks, a follower forwards it, a node that is down refuses it. A call not answered within
/// <see cref="ClientTimeoutMs"/> is given up (unknown). <see cref="Drain"/> then lets every group consume to the end
/// with no faults and reads the dead letters back, so the history can be checked for lost messages too.
/// </summary>
public sealed class QueueWorkload
{
    public const string Topic = "jobs";

    /// <summary>After this many deliveries a message not acked is dead-lettered (small, so dead letters happen).</summary>
    public const int MaxDeliveries = 3;

    /// <summary>A client gives up waiting for an answer after this long (virtual ms): the call's outcome is unknown.</summary>
    public const long ClientTimeoutMs = 2_000;

    private static readonly long[] LeaseChoices = [150, 300, 700];
    private const long MaxLeaseMs = 700;
    private const long MaxNackDelayMs = 100;

    private readonly SimCluster _sim;
    private readonly SplitMix64 _rng;
    private readonly List<Producer> _producers = [];
    private readonly List<Consumer> _consumers = [];
    private readonly Dictionary<string, long> _quietSince = []; // per group: its last delivery, or while draining its last failed call
    private int _nextConsumer;

    public QueueWorkload(SimCluster sim, SplitMix64 rng, int producers = 2, int consumersPerGroup = 2, int messagesPerProducer = 20)
    {
        ArgumentNullException.ThrowIfNull(sim);
        if (sim.Options.Application != SimApplication.Queue) throw new ArgumentException("the workload needs a queue cluster");
        _sim = sim;
        _rng = rng;
        History = new QueueHistory(() => sim.Now);
        for (int i = 0; i < producers; i++) _producers.Add(new Producer(this, $"p{i}", messagesPerProducer));
        foreach (var group in Groups)
        {
            for (int i = 0; i < consumersPerGroup; i++) _consumers.Add(NewConsumer(group));
            _quietSince[group] = 0;
        }
    }

    /// <summary>
    /// The consumer groups the consumers use (each gets every message). One is the topic's own <c>default</c>: with
    /// every group consuming, the head moves and what both finished can be compacted under a message still held.
    /// </summary>
    public static IReadOnlyList<string> Groups { get; } = ["default", "audit"];

    public QueueHistory History { get; }

    /// <summary>Consumers that crashed holding leases or waiting for an answer.</summary>
    public int ConsumerCrashes { get; private set; }

    /// <summary>Publishes sent again after an answer that was not Ok, or after an Ok (the same ids each time).</summary>
    public int Republishes { get; private set; }

    /// <summary>Receives sent carrying the acks of the consumer's previous messages (<see cref="QueueOp.ReceiveAck"/>).</summary>
    public int ReceiveAcks { get; private set; }

    /// <summary>Whether the clients only finish their work now: no new messages, no faults of their own, everything acked.</summary>
    public bool Draining { get; private set; }

    /// <summary>Creates the topic and its groups, waiting (at most <paramref name="timeoutMs"/>) until each is answered.</summary>
    public void Setup(long timeoutMs = 20_000)
    {
        var deadline = _sim.Now + timeoutMs;
        Execute(QueueCommand.ConfigureTopic(Topic, MaxDeliveries, createIfMissing: true), deadline, QueueStatus.Ok);
        foreach (var group in Groups) Execute(QueueCommand.CreateGroup(Topic, group, GroupStart.Earliest), deadline, QueueStatus.Ok, QueueStatus.GroupExists);
    }

    private void Execute(QueueCommand command, long deadline, params QueueStatus[] accepted)
    {
        while (true)
        {
            if (_sim.Now > deadline) throw _sim.Failure($"set-up command {command.Op} was not applied in time");
            var proposal = Send(command);
            _sim.RunUntil(() => proposal.State != ProposalState.Pending, ClientTimeoutMs);
            if (proposal.Answer is QueueResult result)
            {
                if (!accepted.Contains(result.Status)) throw _sim.Failure($"set-up command {command.Op} answered {result.Status}");
                return;
            }
            _sim.RunFor(50);
        }
    }

    /// <summary>Moves every client on by what happened since its last step; call between short runs of the cluster.</summary>
    public void Step()
    {
        foreach (var p in _producers) p.Step();
        for (int i = 0; i < _consumers.Count; i++) _consumers[i].Step();
    }

    /// <summary>
    /// The end of a run, with the faults stopped: producers finish (retrying until answered Ok), every crashed consumer
    /// is replaced, and every group consumes, acking all, until no message was delivered in it for two leases and a
    /// nack delay; then the dead letters are read back. Fails the run past <paramref name="timeoutMs"/>.
    /// </summary>
    public void Drain(long timeoutMs = 60_000)
    {
        Draining = true;
        foreach (var group in Groups)
            if (!_consumers.Any(c => c.Group == group && !c.Dead)) _consumers.Add(NewConsumer(group));
        var quiet = 2 * MaxLeaseMs + MaxNackDelayMs + 300;
        foreach (var group in Groups) _quietSince[group] = _sim.Now;
        var deadline = _sim.Now + timeoutMs;
        bool Done() =>
            _producers.All(p => p.Done) && _consumers.All(c => c.Dead || c.Idle)
            && Groups.All(g => _sim.Now - _quietSince[g] > quiet);
        while (!Done())
        {
            if (_sim.Now > deadline)
            {
                throw _sim.Failure($"the queue clients did not drain in {timeoutMs} virtual ms: " +
                    string.Join("; ", _producers.Where(p => !p.Done).Select(p => p.ToString()).Concat(_consumers.Where(c => !c.Dead && !c.Idle).Select(c => c.ToString()))));
            }
            _sim.RunFor(10);
            Step();
        }
        ReadDeadLetters(deadline);
    }

    /// <summary>Receives and acks the topic's dead letters until none is left, recording the group and offset each names.</summary>
    private void ReadDeadLetters(long deadline)
    {
        const long lease = 300;
        var topic = DeadLetters.TopicFor(Topic);
        var unansweredUntil = 0L; // a receive whose answer was lost may hold dead letters under a lease until then
        while (true)
        {
            if (_sim.Now > deadline) throw _sim.Failure("the dead letters could not be read back in time");
            var receive = Send(QueueCommand.Receive(topic, "default", 10, lease));
            var sentAt = _sim.Now;
            _sim.RunUntil(() => receive.State != ProposalState.Pending, ClientTimeoutMs);
            if (receive.Answer is not QueueResult result)
            {
                unansweredUntil = _sim.Now + lease;
                _sim.RunFor(50);
                continue;
            }
            if (result.Status == QueueStatus.NoSuchTopic) return; // nothing was ever dead-lettered
            if (result.Status != QueueStatus.Ok) throw _sim.Failure($"a dead-letter receive answered {result.Status}");
            if (result.Delivered is not { Count: > 0 } delivered)
            {
                if (sentAt > unansweredUntil) return;
                _sim.RunFor(50);
                continue;
            }
            foreach (var m in delivered)
            {
                string Header(string name) => m.Headers.First(h => h.Name == name).Value;
                History.DeadLetter("dlq-reader", Header(DeadLetters.GroupHeader), ulong.Parse(Header(DeadLetters.OriginalOffsetHeader), CultureInfo.InvariantCulture),
                    Encoding.UTF8.GetString(m.Payload.Span));
            }
            var ack = Send(QueueCommand.Ack(topic, "default", [.. delivered.Select(m => new Receipt(m.Offset, m.DeliveryCount) { Tag = result.ReceiptTag })]));
            _sim.RunUntil(() => ack.State != ProposalState.Pending, ClientTimeoutMs);
        }
    }

    /// <summary>Checks the history recorded so far (with <paramref name="drained"/> after <see cref="Drain"/>).</summary>
    public QueueCheckResult Check(bool drained) => QueueHistoryChecker.Check(History.Calls, [.. Groups], drained);

    private Consumer NewConsumer(string group) => new(this, group, $"{group}-c{_nextConsumer++}");

    /// <summary>Sends a command to a random node, the leader more often, as a client with a list of nodes does.</summary>
    private ClientProposal Send(QueueCommand command)
    {
        var node = _rng.Next(5) < 3 && _sim.Leader is { } leader ? leader.Id : (ulong)_rng.Next(_sim.Nodes.Count) + 1;
        return _sim.Submit(command.Encode(), node);
    }

    private long Between(long min, long max) => min + _rng.Next((int)(max - min + 1));

    /// <summary>
    /// A call in flight: the proposal carrying it, its record in the history, and when its client gives up. A receive
    /// that carries acks (<see cref="QueueOp.ReceiveAck"/>) is two records with the same times and outcome: the ack
    /// (<see cref="Record"/>), then the receive (<see cref="ReceivePart"/>), applied in that order in one entry.
    /// </summary>
    private sealed class Call(ClientProposal proposal, QueueCall record, long giveUpAt, QueueCall? receivePart = null)
    {
        public ClientProposal Proposal { get; } = proposal;

        public QueueCall Record { get; } = record;

        /// <summary>The receive of a receive-ack; null for the other calls.</summary>
        public QueueCall? ReceivePart { get; } = receivePart;

        /// <summary>Every record of the call.</summary>
        public IEnumerable<QueueCall> Records => ReceivePart is { } r ? [Record, r] : [Record];

        /// <summary>The outcome once the client knows it: Ok with the result, NotApplied, or Unknown; Pending while it waits.</summary>
        public QueueCallOutcome Poll(long now, out QueueResult? result)
        {
            result = null;
            switch (Proposal.State)
            {
                case ProposalState.Acknowledged:
                    result = (QueueResult)Proposal.Answer!;
                    return QueueCallOutcome.Ok;
                case ProposalState.Rejected or ProposalState.Lost:
                    return QueueCallOutcome.NotApplied;
                case ProposalState.Unknown:
                    return QueueCallOutcome.Unknown;
                default:
                    return now >= giveUpAt ? QueueCallOutcome.Unknown : QueueCallOutcome.Pending;
            }
        }
    }

    private Call Start(QueueCommand command, QueueCall record, QueueCall? receivePart = null) =>
        new(Send(command), record, _sim.Now + ClientTimeoutMs, receivePart);

    /// <summary>A producer: batches of 1–3 messages with ids, each batch retried with the same ids until answered Ok.</summary>
    private sealed class Producer(QueueWorkload w, string name, int messages)
    {
        private int _next;
        private string[]? _batch;
        private Call? _call;
        private long _nextAt;

        public bool Done => _batch is null && _call is null && (w.Draining || _next >= messages);

        public void Step()
        {
            var sim = w._sim;
            if (_call is { } call)
            {
                var outcome = call.Poll(sim.Now, out var result);
                if (outcome == QueueCallOutcome.Pending) return;
                _call = null;
                if (outcome == QueueCallOutcome.Ok)
                {
                    if (result!.Status != QueueStatus.Ok || result.Offsets is not { } offsets || offsets.Count != _batch!.Length)
                        throw sim.Failure($"{name}'s publish of [{string.Join(", ", _batch!)}] was answered {result.Status} with {result.Offsets?.Count} offsets");
                    w.History.Published(call.Record, offsets);
                    // Now and then the producer did not get this answer (its side of the connection broke): it publishes again.
                    if (w.Draining || w._rng.Next(10) != 0) _batch = null;
                    else w.Republishes++;
                }
                else
                {
                    if (outcome == QueueCallOutcome.NotApplied) w.History.NotApplied(call.Record);
                    else w.History.Unknown(call.Record);
                    w.Republishes++;
                }
                _nextAt = sim.Now + w.Between(5, 150);
                return;
            }
            if (sim.Now < _nextAt) return;
            if (_batch is null)
            {
                if (w.Draining || _next >= messages) return;
                var size = Math.Min(1 + w._rng.Next(3), messages - _next);
                _batch = [.. Enumerable.Range(_next, size).Select(i => $"{name}-{i}")];
                _next += size;
            }
            var command = QueueCommand.PublishExtended(Topic, [.. _batch.Select(id => new QueueMessage(Encoding.UTF8.GetBytes(id)) { Id = id })]);
            _call = w.Start(command, w.History.Publish(name, _batch));
        }

        public override string ToString() => $"{name}: batch [{string.Join(", ", _batch ?? [])}], {(_call is null ? "idle" : "waiting")}";
    }

    /// <summary>A consumer of one group: receive, hold, settle (ack, nack, or drop), again; it may crash.</summary>
    private sealed class Consumer(QueueWorkload w, string group, string name)
    {
        private readonly Queue<(QueueCommand Command, QueueCallKind Kind, List<Receipt> Receipts)> _settles = new();
        private Call? _call;
        private List<QueueDelivery> _held = [];

        /// <summary>The tag of the held messages' receipts (the receive's <see cref="QueueResult.ReceiptTag"/>), which settles carry as the HTTP API's do.</summary>
        private ulong? _heldTag;
        private long _nextAt;
        private long _holdUntil = -1;
        private long _reviveAt = -1;

        public string Group { get; } = group;

        /// <summary>Crashed and not (yet) replaced.</summary>
        public bool Dead { get; private set; }

        /// <summary>Nothing held, nothing to settle, no call in flight.</summary>
        public bool Idle => _call is null && _held.Count == 0 && _settles.Count == 0;

        public void Step()
        {
            var sim = w._sim;
            if (Dead)
            {
                if (_reviveAt >= 0 && sim.Now >= _reviveAt)
                {
                    _reviveAt = -1;
                    w._consumers.Add(w.NewConsumer(Group)); // a new process with a new name
                }
                return;
            }
            // A crash mid-lease: what it holds is abandoned (its leases end and the messages go to others), as is the
            // answer it waits for.
            if (!w.Draining && (_held.Count > 0 || _call is not null) && w._rng.Next(400) == 0)
            {
                Dead = true;
                w.ConsumerCrashes++;
                if (_call is { } lost)
                {
                    foreach (var r in lost.Records) w.History.Unknown(r);
                }
                while (_settles.TryDequeue(out _)) { }
                _call = null;
                _held = [];
                if (w._rng.Next(2) == 0) _reviveAt = sim.Now + w.Between(100, 1_500);
                return;
            }
            if (_call is { } call)
            {
                var outcome = call.Poll(sim.Now, out var result);
                if (outcome == QueueCallOutcome.Pending) return;
                _call = null;
                Answered(call, outcome, result);
                return;
            }
            if (_held.Count > 0 && sim.Now >= _holdUntil) Settle();
            if (_settles.TryDequeue(out var next))
            {
                var receipts = next.Receipts.Select(r => new QueueReceipt(r.Offset, r.Delivery)).ToList();
                // The last settle an ack, half the time it rides on the next receive: one command, the ack then the receive.
                if (next.Kind == QueueCallKind.Ack && _settles.Count == 0 && _held.Count == 0 && w._rng.Next(2) == 0)
                {
                    var (ackLease, ackMax) = NextReceive();
                    var ack = w.History.Ack(name, Group, receipts);
                    w.ReceiveAcks++;
                    _call = w.Start(QueueCommand.ReceiveAck(Topic, Group, ackMax, ackLease, next.Receipts), ack, w.History.Receive(name, Group, ackMax, ackLease));
                    return;
                }
                _call = w.Start(next.Command, next.Kind == QueueCallKind.Ack ? w.History.Ack(name, Group, receipts) : w.History.Nack(name, Group, receipts));
                return;
            }
            if (_held.Count == 0 && sim.Now >= _nextAt)
            {
                var (lease, max) = NextReceive();
                _call = w.Start(QueueCommand.Receive(Topic, Group, max, lease), w.History.Receive(name, Group, max, lease));
            }
        }

        private (long Lease, int Max) NextReceive() => (LeaseChoices[w._rng.Next(LeaseChoices.Length)], 1 + w._rng.Next(3));

        private void Answered(Call call, QueueCallOutcome outcome, QueueResult? result)
        {
            var sim = w._sim;
            var record = call.Record;
            if (outcome != QueueCallOutcome.Ok)
            {
                foreach (var r in call.Records)
                {
                    if (outcome == QueueCallOutcome.NotApplied) w.History.NotApplied(r);
                    else w.History.Unknown(r);
                }
                _nextAt = sim.Now + w.Between(10, 100);
                // The drain ends after a quiet spell with no delivery: a call that failed (an answer that came late
                // or never) says nothing about what is left, so the spell starts again. Without this, a consumer
                // that waited out its client timeout ended the drain with messages still undelivered, reported as
                // lost (queue seed 66000505 on a runtime that answered replaced proposals late).
                if (w.Draining) w._quietSince[Group] = sim.Now;
                return;
            }
            if (result!.Status != QueueStatus.Ok) throw sim.Failure($"{name}'s {(call.ReceivePart is null ? record.Kind : "receive-ack")} was answered {result.Status}");
            List<QueueReceipt> stale = [.. (result.Stale ?? []).Select(r => new QueueReceipt(r.Offset, r.Delivery))];
            if (call.ReceivePart is { } receivePart)
            {
                // A receive-ack: its ack part's outcome, then its receive part as any receive.
                w.History.Settled(record, stale);
                record = receivePart;
            }
            else if (record.Kind != QueueCallKind.Receive)
            {
                w.History.Settled(record, stale);
                return;
            }
            var delivered = result.Delivered ?? [];
            _held = [.. delivered.Select(m => new QueueDelivery(m.Offset, m.DeliveryCount, Encoding.UTF8.GetString(m.Payload.Span)))];
            _heldTag = result.ReceiptTag;
            w.History.Received(record, _held);
            if (_held.Count > 0)
            {
                w._quietSince[Group] = sim.Now;
                // Processing takes a while; outside the drain often longer than the lease (the ack comes late).
                _holdUntil = sim.Now + (w.Draining ? w.Between(0, 20) : w.Between(0, record.LeaseMs * 2));
            }
            else
            {
                _nextAt = sim.Now + w.Between(10, 80);
            }
        }

        /// <summary>Decides what becomes of each held message: ack (most), nack, or nothing (a lost ack).</summary>
        private void Settle()
        {
            var acks = new List<Receipt>();
            var nacks = new List<Receipt>();
            foreach (var d in _held)
            {
                var receipt = new Receipt(d.Offset, d.DeliveryCount) { Tag = _heldTag };
                var roll = w.Draining ? 0 : w._rng.Next(100);
                if (roll < 78) acks.Add(receipt);
                else if (roll < 90) nacks.Add(receipt);
                // else: dropped, never settled; its lease ends and it is delivered again
            }
            _held = [];
            if (acks.Count > 0) _settles.Enqueue((QueueCommand.Ack(Topic, Group, acks), QueueCallKind.Ack, acks));
            if (nacks.Count > 0) _settles.Enqueue((QueueCommand.Nack(Topic, Group, nacks, w.Between(0, MaxNackDelayMs), "simulated failure"), QueueCallKind.Nack, nacks));
            _nextAt = w._sim.Now;
        }

        public override string ToString() => $"{name} in {Group}: {_held.Count} held, {_settles.Count} to settle, {(_call is null ? "idle" : "waiting")}";
    }
}

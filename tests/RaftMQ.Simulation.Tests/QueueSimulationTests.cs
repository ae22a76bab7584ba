using System.Diagnostics;
using System.Text;
using RaftMQ.Linearizability;
using RaftMQ.Queue;
using RaftMQ.Simulation.Tests.Support;
using Xunit.Abstractions;

namespace RaftMQ.Simulation.Tests;

/// <summary>
/// The production queue on simulated clusters (<see cref="SimApplication.Queue"/>): scripted at-least-once scenarios
/// (a consumer crashing mid-lease on the minority side of a partition, the leader killed during acks, a retried publish
/// whose answer was lost, leases carried by a snapshot), and the randomized <see cref="QueueFuzzer"/>, all checked by
/// <see cref="QueueHistoryChecker"/>.
/// </summary>
public sealed class QueueSimulationTests(ITestOutputHelper output)
{
    private const string Topic = "jobs";
    private const string Group = "workers";

    /// <summary>A blocking client for scripts: each call goes to one node, waits for its answer on virtual time, and is recorded.</summary>
    private sealed class Client(SimCluster sim, QueueHistory history, string name)
    {
        public QueueResult? Last { get; private set; }

        /// <summary>Sends <paramref name="command"/> to <paramref name="node"/>; the result, or null when not answered Ok within the timeout.</summary>
        public QueueResult? Run(QueueCommand command, ulong node, long timeoutMs = 3_000)
        {
            var proposal = sim.Submit(command.Encode(), node);
            sim.RunUntil(() => proposal.State != ProposalState.Pending, timeoutMs);
            Last = proposal.Answer as QueueResult;
            return Last;
        }

        public IReadOnlyList<ulong>? Publish(ulong node, params string[] ids)
        {
            var call = history.Publish(name, ids);
            var result = Run(QueueCommand.PublishExtended(Topic, [.. ids.Select(id => new QueueMessage(Encoding.UTF8.GetBytes(id)) { Id = id })]), node);
            if (result is null)
            {
                history.Unknown(call);
                return null;
            }
            result.Status.ShouldBe(QueueStatus.Ok);
            history.Published(call, result.Offsets!);
            return result.Offsets;
        }

        public List<QueueDelivery>? Receive(ulong node, int max, long leaseMs)
        {
            var call = history.Receive(name, Group, max, leaseMs);
            var result = Run(QueueCommand.Receive(Topic, Group, max, leaseMs), node);
            if (result is null)
            {
                history.Unknown(call);
                return null;
            }
            result.Status.ShouldBe(QueueStatus.Ok);
            var got = result.Delivered!.Select(m => new QueueDelivery(m.Offset, m.DeliveryCount, Encoding.UTF8.GetString(m.Payload.Span))).ToList();
            history.Received(call, got);
            return got;
        }

        /// <summary>Acks the deliveries; the receipts reported stale, or null when not answered.</summary>
        public List<QueueReceipt>? Ack(ulong node, IEnumerable<QueueDelivery> deliveries)
        {
            var receipts = deliveries.Select(d => new QueueReceipt(d.Offset, d.DeliveryCount)).ToList();
            var call = history.Ack(name, Group, receipts);
            var result = Run(QueueCommand.Ack(Topic, Group, [.. receipts.Select(r => new Receipt(r.Offset, r.Delivery))]), node);
            if (result is null)
            {
                history.Unknown(call);
                return null;
            }
            result.Status.ShouldBe(QueueStatus.Ok);
            var stale = result.Stale!.Select(r => new QueueReceipt(r.Offset, r.Delivery)).ToList();
            history.Settled(call, stale);
            return stale;
        }
    }

    private static SimCluster QueueCluster(ulong seed, Action<SimOptions>? configure = null, [System.Runtime.CompilerServices.CallerMemberName] string test = "") =>
        Sim.Cluster(typeof(QueueSimulationTests), 3, seed, o =>
        {
            o.Application = SimApplication.Queue;
            configure?.Invoke(o);
        }, test);

    /// <summary>Creates the topic and the group through the leader.</summary>
    private static void Setup(SimCluster sim, Client admin)
    {
        sim.Await(() => sim.Leader is not null, 5_000, "a leader");
        admin.Run(QueueCommand.ConfigureTopic(Topic, 5), sim.Leader!.Id)!.Status.ShouldBe(QueueStatus.Ok);
        admin.Run(QueueCommand.CreateGroup(Topic, Group, GroupStart.Earliest), sim.Leader!.Id)!.Status.ShouldBe(QueueStatus.Ok);
    }

    private static void ShouldPass(QueueHistory history, bool drained = true)
    {
        var result = QueueHistoryChecker.Check(history.Calls, [Group], drained);
        result.Describe().ShouldBe("ok");
    }

    [Fact]
    public void A_consumer_that_crashes_mid_lease_behind_a_partition_has_its_messages_redelivered_to_another()
    {
        using var sim = QueueCluster(71);
        var history = new QueueHistory(() => sim.Now);
        var producer = new Client(sim, history, "producer");
        Setup(sim, producer);
        var leader = sim.Leader!.Id;
        var follower = sim.Nodes.First(n => n.Id != leader).Id;
        producer.Publish(leader, "m0", "m1", "m2")!.ShouldBe([0UL, 1UL, 2UL]);

        // The first consumer leases all three through a follower; then the follower is cut off with it, and the
        // consumer crashes there without acking.
        var first = new Client(sim, history, "first");
        var held = first.Receive(follower, 3, leaseMs: 2_000)!;
        held.Select(d => (d.MessageId, d.DeliveryCount)).ShouldBe([("m0", 1), ("m1", 1), ("m2", 1)]);
        var leasedAt = sim.Now;
        sim.Isolate(follower);

        // On the majority side, another consumer gets nothing while the leases last...
        var second = new Client(sim, history, "second");
        second.Receive(leader, 3, leaseMs: 2_000)!.ShouldBeEmpty();
        sim.RunFor(1_000);
        second.Receive(leader, 3, leaseMs: 2_000)!.ShouldBeEmpty();
        // ...and all three, delivered a second time, once they ended.
        sim.RunUntil(() => sim.Now > leasedAt + 2_000, 5_000);
        var again = second.Receive(leader, 3, leaseMs: 2_000)!;
        again.Select(d => (d.MessageId, d.DeliveryCount)).ShouldBe([("m0", 2), ("m1", 2), ("m2", 2)]);
        second.Ack(leader, again)!.ShouldBeEmpty();

        // The partition heals and the first consumer's late ack (a zombie) is refused as stale.
        sim.Reconnect(follower);
        sim.Await(() => sim.Node(follower).Raft?.Leader is > 0 and var l && l == sim.Leader?.Id, 5_000, "the follower back with the leader");
        first.Ack(follower, held)!.Count.ShouldBe(3);
        ShouldPass(history);
    }

    [Fact]
    public void The_leader_killed_during_acks_leaves_each_message_acked_once()
    {
        using var sim = QueueCluster(72);
        var history = new QueueHistory(() => sim.Now);
        var producer = new Client(sim, history, "producer");
        Setup(sim, producer);
        var leader = sim.Leader!.Id;
        producer.Publish(leader, "a", "b", "c", "d");
        var consumer = new Client(sim, history, "consumer");
        var got = consumer.Receive(leader, 4, leaseMs: 60_000)!;
        got.Count.ShouldBe(4);

        // The ack reaches the leader, which crashes before it can answer: the consumer does not know what happened.
        var call = history.Ack("consumer", Group, [.. got.Select(d => new QueueReceipt(d.Offset, d.DeliveryCount))]);
        var ack = sim.Submit(QueueCommand.Ack(Topic, Group, [.. got.Select(d => new Receipt(d.Offset, d.DeliveryCount))]).Encode(), leader);
        sim.RunFor(1);
        sim.Crash(leader);
        ack.State.ShouldBe(ProposalState.Unknown);
        history.Unknown(call);

        // It acks again on the new leader: either the first ack was committed (the receipts are stale now) or not (acked now).
        sim.Await(() => sim.Leader is { } l && l.Id != leader, 5_000, "a new leader");
        var stale = consumer.Ack(sim.Leader!.Id, got)!;
        (stale.Count is 0 or 4).ShouldBeTrue($"all or nothing of one command: {stale.Count} stale");
        sim.Restart(leader);
        consumer.Receive(sim.Leader!.Id, 4, leaseMs: 1_000)!.ShouldBeEmpty();
        ShouldPass(history);
    }

    [Fact]
    public void A_retried_publish_whose_answer_was_lost_is_stored_once()
    {
        using var sim = QueueCluster(73);
        var history = new QueueHistory(() => sim.Now);
        var producer = new Client(sim, history, "producer");
        Setup(sim, producer);
        var leader = sim.Leader!.Id;
        var follower = sim.Nodes.First(n => n.Id != leader).Id;

        // The leader's answer to the forwarded publish is lost: the producer learns nothing (the follower gives up).
        var lose = sim.Intercept<RaftMQ.Raft.ForwardResult>(InterceptPoint.BeforeSend, _ => InterceptDecision.Drop, from: leader, to: follower);
        producer.Publish(follower, "order-1", "order-2").ShouldBeNull();
        sim.RemoveInterceptor(lose);

        // The retry with the same ids is answered with the offsets of the first attempt: nothing is stored twice.
        producer.Publish(leader, "order-1", "order-2")!.ShouldBe([0UL, 1UL]);
        producer.Last!.Count.ShouldBe(0, "both are duplicates");
        producer.Publish(follower, "order-2", "order-3")!.ShouldBe([1UL, 2UL]);
        var consumer = new Client(sim, history, "consumer");
        var got = consumer.Receive(leader, 10, 5_000)!;
        got.Select(d => d.MessageId).ShouldBe(["order-1", "order-2", "order-3"]);
        consumer.Ack(leader, got)!.ShouldBeEmpty();
        ShouldPass(history);
    }

    [Fact]
    public void Leases_travel_in_the_queue_snapshot_a_lagging_follower_installs()
    {
        using var sim = QueueCluster(74, o =>
        {
            o.SnapshotEveryEntries = 4;
            o.SnapshotRetainEntries = 0;
        });
        var history = new QueueHistory(() => sim.Now);
        var producer = new Client(sim, history, "producer");
        Setup(sim, producer);
        var leader = sim.Leader!.Id;
        var lagging = sim.Nodes.First(n => n.Id != leader).Id;
        sim.Isolate(lagging);

        for (int i = 0; i < 6; i++) producer.Publish(leader, $"m{i}");
        var consumer = new Client(sim, history, "consumer");
        var leased = consumer.Receive(leader, 2, leaseMs: 4_000)!;
        leased.Select(d => d.MessageId).ShouldBe(["m0", "m1"]);
        var leasedAt = sim.Now;
        consumer.Ack(leader, consumer.Receive(leader, 2, leaseMs: 4_000)!)!.ShouldBeEmpty();

        // The follower comes back behind the leader's compacted log: it installs the queue's snapshot, then restarts from it.
        sim.Reconnect(lagging);
        sim.Await(() => sim.Node(lagging).SnapshotsInstalled > 0 && sim.Node(lagging).AppliedThisRun == sim.Node(leader).AppliedThisRun, 10_000, "the snapshot installed");
        sim.Crash(lagging);
        sim.Restart(lagging);
        sim.Await(() => sim.Node(lagging).AppliedThisRun == sim.Node(leader).AppliedThisRun, 10_000, "the restarted follower caught up");
        sim.Node(lagging).Queue!.Offsets(Topic).ShouldBe(sim.Node(leader).Queue!.Offsets(Topic));

        // It leads now, from the state the snapshot gave it: the leases of m0 and m1 hold until they end. (The leader
        // first learns that the restarted follower holds the snapshot: its answer to the last chunk was lost in the crash.)
        sim.RunFor(1_000);
        sim.TransferLeadership(leader, lagging).IsAccepted.ShouldBeTrue();
        sim.Await(() => sim.Leader?.Id == lagging, 5_000, "the follower leads");
        consumer.Receive(lagging, 10, 4_000)!.Select(d => d.MessageId).ShouldBe(["m4", "m5"]);
        sim.RunUntil(() => sim.Now > leasedAt + 4_000, 10_000);
        var again = consumer.Receive(lagging, 10, 4_000)!;
        again.Select(d => (d.MessageId, d.DeliveryCount)).ShouldBe([("m0", 2), ("m1", 2)]);
        ShouldPass(history, drained: false);
    }

    [Fact]
    public void The_checker_catches_bugs_put_into_a_real_runs_history()
    {
        const ulong seed = FirstSeed + 1;
        var outcome = QueueFuzzer.Run(seed, SimEnvironment.ReplayCommand(seed, Sim.Filter(GetType(), nameof(The_checker_catches_bugs_put_into_a_real_runs_history))));
        var groups = QueueWorkload.Groups.ToList();
        QueueHistoryChecker.Check(outcome.History, groups, drained: true).Describe().ShouldBe("ok");

        // Lost: every delivery of one acknowledged message to one group erased (as if the queue had skipped it).
        var victim = outcome.History.First(c => c.Kind == QueueCallKind.Publish && c.Outcome == QueueCallOutcome.Ok).Offsets[0];
        var group = groups[0];
        var dead = outcome.History.Any(c => c.Kind == QueueCallKind.DeadLetter && c.Group == group && c.DeadLettered.Offset == victim);
        var lost = QueueHistory.Rewrite(outcome.History, r => r.Group == group ? [.. r.Deliveries.Where(d => d.Offset != victim)] : r.Deliveries);
        if (!dead) QueueHistoryChecker.Check(lost, groups, drained: true).Describe().ShouldContain($"lost: ");

        // Delivered twice with one count: a first delivery handed out again by the next receive of its group.
        var first = outcome.History.First(c => c.Kind == QueueCallKind.Receive && c.Outcome == QueueCallOutcome.Ok && c.Deliveries.Count > 0);
        var next = outcome.History.First(c => c.Id > first.Id && c.Kind == QueueCallKind.Receive && c.Group == first.Group && c.Outcome == QueueCallOutcome.Ok);
        var twice = QueueHistory.Rewrite(outcome.History, r => r.Id == next.Id ? [first.Deliveries[0], .. r.Deliveries] : r.Deliveries);
        QueueHistoryChecker.Check(twice, groups, drained: true).Ok.ShouldBeFalse("a message delivered twice with one count went unnoticed");
    }

    // ---- the randomized runs ----

    private const ulong FirstSeed = 5_000_000;
    private const int DefaultSchedules = 100;
    private const int SoakSchedules = 5_000;

    [Fact]
    public void Queue_fuzz()
    {
        var filter = Sim.Filter(GetType(), nameof(Queue_fuzz));
        IEnumerable<ulong> seeds = SimEnvironment.SeedOverride is { } one
            ? [one]
            : Enumerable.Range(0, SimEnvironment.Soak ? SoakSchedules : DefaultSchedules).Select(i => FirstSeed + SimEnvironment.SeedOffset + (ulong)i);
        var watch = Stopwatch.StartNew();
        var outcomes = new List<QueueFuzzOutcome>();
        foreach (var seed in seeds)
        {
            var outcome = QueueFuzzer.Run(seed, SimEnvironment.ReplayCommand(seed, filter));
            outcomes.Add(outcome);
        }
        output.WriteLine($"{outcomes.Count} queue schedules in {watch.ElapsedMilliseconds} ms: " +
            $"{outcomes.Sum(o => o.Check.AckedPublishes)} messages published and acknowledged, {outcomes.Sum(o => o.Check.Deliveries)} deliveries " +
            $"({outcomes.Sum(o => o.Check.Redeliveries)} redeliveries), {outcomes.Sum(o => o.Check.Acked)} acked ({outcomes.Sum(o => o.ReceiveAcks)} receives carrying acks), " +
            $"{outcomes.Sum(o => o.StaleSettles)} stale receipts, " +
            $"{outcomes.Sum(o => o.DeadLetters)} dead letters, {outcomes.Sum(o => o.ConsumerCrashes)} consumer crashes, {outcomes.Sum(o => o.Republishes)} republishes, " +
            $"{outcomes.Sum(o => o.Unknown)} calls of unknown outcome, {outcomes.Sum(o => o.Crashes)} node crashes, {outcomes.Sum(o => o.Terms)} leader terms, " +
            $"{outcomes.Sum(o => o.SnapshotsInstalled)} snapshots installed");
        if (SimEnvironment.SeedOverride is not null) return;

        // The schedules must stress what the checker checks, or passing means little.
        outcomes.Sum(o => o.Check.AckedPublishes).ShouldBeGreaterThan(outcomes.Count * 12);
        outcomes.Sum(o => o.Check.Redeliveries).ShouldBeGreaterThan(outcomes.Count * 5);
        outcomes.Sum(o => o.ConsumerCrashes).ShouldBeGreaterThan(outcomes.Count * 2);
        outcomes.Sum(o => o.StaleSettles).ShouldBeGreaterThan(outcomes.Count / 10);
        outcomes.Sum(o => o.ReceiveAcks).ShouldBeGreaterThan(outcomes.Count * 2);
        outcomes.Sum(o => o.DeadLetters).ShouldBeGreaterThan(outcomes.Count / 10);
        outcomes.Sum(o => o.Unknown).ShouldBeGreaterThan(outcomes.Count);
        outcomes.Sum(o => o.Republishes).ShouldBeGreaterThan(outcomes.Count);
        outcomes.Count(o => o.Terms > 1).ShouldBeGreaterThan(outcomes.Count / 2);
        outcomes.Sum(o => o.SnapshotsInstalled).ShouldBeGreaterThan(0);
    }
}

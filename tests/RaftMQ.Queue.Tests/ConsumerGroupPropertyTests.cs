using RaftMQ.StateMachine;
using System.Globalization;
using System.Text;

[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace RaftMQ.Queue.Tests;

/// <summary>
/// Tests that measure the process's heap (<see cref="GC.GetTotalMemory"/>) run apart from the tests that allocate
/// much, so that another test's garbage is not counted. A collection alone does not give that (classes outside it run
/// beside it, and a heap measure counts what any of them holds at that instant), so this assembly runs its tests one
/// at a time: all of them take a few seconds.
/// </summary>
[CollectionDefinition(Name)]
public sealed class QueueMemoryCollection
{
    public const string Name = "queue memory";
}

/// <summary>
/// The delivery model under random consumers: receives, acks, nacks, extends, receive-acks, crashes (a consumer forgets its
/// messages) and time passing, on two state machines fed the same commands and a third restored from a snapshot
/// taken mid-lease. Checks that no message is ever leased to two consumers at once, that stale receipts are refused,
/// that every message is in the end acked once or dead-lettered, and that all three answer alike and write the same.
/// </summary>
[Collection(QueueMemoryCollection.Name)]
public sealed class ConsumerGroupPropertyTests : IDisposable
{
    private readonly TestQueues _queues = new();

    public void Dispose() => _queues.Dispose();

    private sealed record Holder(int Delivery, long Deadline);

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void Random_consumers_never_share_a_lease_and_every_message_ends_acked_or_dead_lettered(int seed)
    {
        var random = new Random(seed);
        var store = new QueueStoreOptions { SegmentBytes = 2_048 }; // many segments, so the head deletes files as it moves
        var a = _queues.Create(storeOptions: store);
        var b = _queues.Create(storeOptions: store);
        // A node whose store compacts at every chance, with smaller segments: compaction must change no result.
        var compacting = _queues.Create(storeOptions: new QueueStoreOptions { SegmentBytes = 256, CompactionCheckMessages = 1, WritebackBytes = 1 }); // and writeback requested for every write, racing consumption and retirement
        QueueStateMachine? restored = null;
        var snapshotAt = random.Next(100, 300);

        QueueResult Run(QueueCommand c)
        {
            var bytes = c.Encode();
            var r = (QueueResult)a.Apply(1, bytes)!;
            ((QueueResult)b.Apply(1, bytes)!).ShouldBe(r, c.Op.ToString());
            ((QueueResult)compacting.Apply(1, bytes)!).ShouldBe(r, $"{c.Op} on the compacting node");
            if (restored is not null) ((QueueResult)restored.Apply(1, bytes)!).ShouldBe(r, $"{c.Op} after the restore");
            return r;
        }

        Run(QueueCommand.ConfigureTopic("t", 3));
        Run(QueueCommand.CreateGroup("t", "g2", GroupStart.Earliest));
        string[] groups = ["default", "g2"];
        var holders = groups.ToDictionary(g => g, _ => new Dictionary<ulong, Holder>());
        var acked = groups.ToDictionary(g => g, _ => new HashSet<ulong>());
        var deliveries = groups.ToDictionary(g => g, _ => new Dictionary<ulong, int>());
        ulong published = 0;
        long now = 1_000;

        void Received(string group, IReadOnlyList<QueueMessage> delivered, long deadline)
        {
            var held = holders[group];
            foreach (var m in delivered)
            {
                if (held.TryGetValue(m.Offset, out var h)) h.Deadline.ShouldBeLessThanOrEqualTo(now, $"offset {m.Offset} leased twice in {group}");
                acked[group].ShouldNotContain(m.Offset);
                m.DeliveryCount.ShouldBe(deliveries[group].GetValueOrDefault(m.Offset) + 1);
                deliveries[group][m.Offset] = m.DeliveryCount;
                Encoding.UTF8.GetString(m.Payload.Span).ShouldBe($"m{m.Offset}");
                held[m.Offset] = new Holder(m.DeliveryCount, deadline);
            }
        }

        // The original offsets of the dead letters that group dead-lettered.
        static List<ulong> DeadLetteredBy(IEnumerable<QueueMessage> dead, string group) =>
            [.. dead.Where(m => m.Headers.Contains(new MessageHeader(DeadLetters.GroupHeader, group)))
                .Select(m => ulong.Parse(m.Headers.Single(h => h.Name == DeadLetters.OriginalOffsetHeader).Value, CultureInfo.InvariantCulture))];

        // Each group's delivery-count histogram against the model: every offset neither acked nor dead-lettered, by
        // the deliveries the consumers saw (0 for one never delivered), and summing to the group's unacked count.
        void CheckDeliveryCounts()
        {
            var stats = a.Stats("t", now)!;
            var dead = a.Peek(DeadLetters.TopicFor("t"), null, 10_000) ?? [];
            foreach (var group in groups)
            {
                var lettered = DeadLetteredBy(dead, group).ToHashSet();
                var expected = new long[DeliveryCountHistogram.Buckets];
                for (ulong o = 0; o < published; o++)
                {
                    if (!acked[group].Contains(o) && !lettered.Contains(o)) expected[DeliveryCountHistogram.BucketOf(deliveries[group].GetValueOrDefault(o))]++;
                }
                var g = stats.Groups.Single(x => x.Group == group);
                g.DeliveryCounts!.ShouldBe(expected, $"group {group}'s delivery counts at {now}");
                g.DeliveryCounts!.Sum().ShouldBe(g.Unacked);
            }
        }

        for (int step = 0; step < 600; step++)
        {
            now += random.Next(0, 40);
            var group = groups[random.Next(groups.Length)];
            var held = holders[group];
            switch (random.Next(10))
            {
                case 0 or 1:
                    var n = random.Next(1, 6);
                    Run(QueueCommand.PublishMessages("t", [.. Enumerable.Range(0, n).Select(i => new QueueMessage(Encoding.UTF8.GetBytes($"m{published + (ulong)i}")))], now));
                    published += (ulong)n;
                    break;
                case 2 or 3:
                    var lease = random.Next(1, 120);
                    Received(group, Run(QueueCommand.Receive("t", group, random.Next(1, 5), lease, now)).Delivered!, now + lease);
                    break;
                case 4 or 5 or 6:
                    if (held.Count == 0) break;
                    var chosen = held.Keys.OrderBy(_ => random.Next()).Take(random.Next(1, 4)).ToList();
                    var receipts = chosen.Select(o => new Receipt(o, held[o].Delivery - (random.Next(8) == 0 ? 1 : 0))).Where(r => r.Delivery > 0).ToList();
                    if (receipts.Count == 0) break;
                    // 0 nack, 1 extend, 2 and 3 ack, 4 receive-ack (an ack, then a receive in the same entry).
                    var op = random.Next(5);
                    var extension = random.Next(1, 120);
                    var receiveLease = random.Next(1, 120);
                    var result = op switch
                    {
                        0 => Run(QueueCommand.Nack("t", group, receipts, random.Next(0, 50), "e" + step, now)),
                        1 => Run(QueueCommand.Extend("t", group, receipts, extension, now)),
                        4 => Run(QueueCommand.ReceiveAck("t", group, random.Next(1, 5), receiveLease, receipts, now)),
                        _ => Run(QueueCommand.Ack("t", group, receipts, now)),
                    };
                    if (op != 4) result.Delivered.ShouldBeNull();
                    foreach (var r in receipts)
                    {
                        var current = deliveries[group][r.Offset] == r.Delivery;
                        if (!current) result.Stale!.ShouldContain(r, "a receipt of an earlier delivery must be stale");
                        if (result.Stale!.Contains(r)) continue;
                        current.ShouldBeTrue();
                        if (op == 1) held[r.Offset] = held[r.Offset] with { Deadline = now + extension };
                        else held.Remove(r.Offset);
                        if (op >= 2) acked[group].Add(r.Offset).ShouldBeTrue($"offset {r.Offset} acked twice");
                    }
                    result.Count.ShouldBe(receipts.Count - result.Stale!.Count);
                    // The receive part runs after the ack part: it may lease what the ack part just freed room for.
                    if (op == 4) Received(group, result.Delivered!, now + receiveLease);
                    break;
                case 7:
                    if (held.Count > 0) held.Remove(held.Keys.First()); // a consumer crashes holding it
                    break;
                default:
                    Run(QueueCommand.PopMessages("t", 1)).Delivered!.ShouldAllBe(m => acked["default"].Add(m.Offset));
                    break;
            }
            if (step % 25 == 0) CheckDeliveryCounts();
            if (step == snapshotAt)
            {
                using var buffer = new MemoryStream();
                a.WriteSnapshot(buffer);
                buffer.Position = 0;
                restored = _queues.Create(storeOptions: store);
                restored.RestoreSnapshot(buffer);
                Snapshot(restored).ShouldBe(buffer.ToArray(), "a restored state snapshots to the same bytes");
            }
        }

        // Drain: consumers that ack everything they get, the clock moving past every lease and delay.
        foreach (var group in groups)
        {
            for (int round = 0; round < 1_000; round++)
            {
                now += 1_000;
                var got = Run(QueueCommand.Receive("t", group, 100, 10, now)).Delivered!;
                if (got.Count == 0) break; // every lease and delay is over by now: nothing is held back
                Run(QueueCommand.Ack("t", group, [.. got.Select(m => new Receipt(m.Offset, m.DeliveryCount))], now)).Count.ShouldBe(got.Count);
                foreach (var m in got) acked[group].Add(m.Offset).ShouldBeTrue();
            }
        }
        CheckDeliveryCounts();
        a.Stats("t", now)!.Groups.ShouldAllBe(g => g.DeliveryCounts!.All(c => c == 0), "everything is acked or dead-lettered");
        var dead = a.Peek(DeadLetters.TopicFor("t"), null, 1_000) ?? [];
        dead.ShouldNotBeEmpty("the run should reach the delivery limit for some messages");
        foreach (var group in groups)
        {
            var lettered = DeadLetteredBy(dead, group);
            lettered.ShouldBeUnique();
            lettered.ShouldAllBe(o => !acked[group].Contains(o));
            acked[group].Concat(lettered).Order().ShouldBe(Enumerable.Range(0, (int)published).Select(i => (ulong)i), $"group {group}");
        }
        a.Depth("t").ShouldBe(0);
        Snapshot(a).ShouldBe(Snapshot(b));
        Snapshot(a).ShouldBe(Snapshot(restored!));
        Snapshot(a).ShouldBe(Snapshot(compacting), "compaction changes no snapshot");
        Files(a).ShouldBe(Files(b));
    }

    private static byte[] Snapshot(QueueStateMachine sm)
    {
        using var buffer = new MemoryStream();
        sm.WriteSnapshot(buffer);
        return buffer.ToArray();
    }

    private static List<string> Files(QueueStateMachine sm) =>
        [.. Directory.GetFiles(sm.Directory, "*.seg").Order(StringComparer.Ordinal).Select(f => $"{Path.GetFileName(f)} {Convert.ToHexString(File.ReadAllBytes(f))}")];
}

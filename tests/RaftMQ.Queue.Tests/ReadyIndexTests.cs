using RaftMQ.Queue.Groups;

namespace RaftMQ.Queue.Tests;

/// <summary>
/// A group's index of the pending messages a receive may deliver (<see cref="ConsumerGroup.FirstReady"/>), against a
/// scan of every pending message: under random nacks with delays, ended leases, deliveries and times that move on,
/// and at times earlier than a call before.
/// </summary>
public sealed class ReadyIndexTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void The_first_ready_message_is_the_lowest_pending_one_whose_time_has_come(int seed)
    {
        var random = new Random(seed);
        var group = new ConsumerGroup("g", 0, 0);
        var model = new SortedDictionary<ulong, long>(); // pending offset → not before
        long now = 1_000;
        for (var step = 0; step < 20_000; step++)
        {
            var r = random.Next(100);
            if (r < 45)
            {
                // A nack with a delay (or none), an ended lease (none), or a delayed message set aside: pending again.
                var offset = (ulong)random.Next(2_000);
                var notBefore = random.Next(3) == 0 ? 0 : now + random.Next(-50, 400);
                group.SetPending(offset, new Pending((long)offset, 1, notBefore, null));
                model[offset] = notBefore;
            }
            else if (r < 75)
            {
                // A receive delivers the first ready one.
                var has = group.FirstReady(now, out var offset, out var pending);
                var expected = model.Where(p => p.Value <= now).Select(p => (ulong?)p.Key).FirstOrDefault();
                (has ? offset : (ulong?)null).ShouldBe(expected, $"step {step} at {now}");
                if (has)
                {
                    pending.NotBefore.ShouldBe(model[offset]);
                    group.RemovePending(offset).ShouldBeTrue();
                    model.Remove(offset);
                }
            }
            else if (r < 85)
            {
                var offset = (ulong)random.Next(2_000);
                group.RemovePending(offset).ShouldBe(model.Remove(offset)); // acked, or dropped by retention
            }
            else if (r < 98) now += random.Next(0, 100);
            else
            {
                // An earlier time than a call before (no caller does this: the replicated clock never goes back), then back.
                var earlier = now - random.Next(1, 300);
                group.FirstReady(earlier, out var offset, out _).ShouldBe(model.Any(p => p.Value <= earlier));
                if (model.Any(p => p.Value <= earlier)) offset.ShouldBe(model.First(p => p.Value <= earlier).Key);
            }
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Leases_ending_by_the_thousand_or_one_by_one_become_ready_and_the_rest_stay_leased(int seed)
    {
        // Batches of leases with deadlines spread or shared, acks between, and times that pass few or thousands of
        // deadlines at once: the index by deadline is cut one by one or built again (ExpireLeases), and must hold
        // exactly the live leases either way.
        var random = new Random(seed);
        var group = new ConsumerGroup("g", 0, 0);
        var leased = new Dictionary<ulong, long>(); // offset → deadline
        var ready = new SortedSet<ulong>();
        long now = 1_000;
        ulong next = 0;
        for (var round = 0; round < 300; round++)
        {
            var r = random.Next(10);
            if (r < 4)
            {
                var shared = random.Next(2) == 0;
                var deadline = now + random.Next(1, 500);
                for (var i = random.Next(1, 3_000); i > 0; i--, next++)
                {
                    var d = shared ? deadline : now + random.Next(1, 500);
                    group.AddLease(next, new Lease((long)next, 1, d, null));
                    leased[next] = d;
                }
            }
            else if (r < 6)
            {
                foreach (var offset in leased.Keys.Where(_ => random.Next(3) == 0).ToList())
                {
                    group.RemoveLease(offset); // acked
                    leased.Remove(offset);
                }
            }
            else
            {
                now += random.Next(0, 300);
                group.ExpireLeases(now);
                foreach (var (offset, _) in leased.Where(l => l.Value <= now).ToList())
                {
                    leased.Remove(offset);
                    ready.Add(offset);
                }
            }
            group.LiveLeases(now).ShouldBe(leased.Count(l => l.Value > now), $"round {round}");
            group.EarliestLeaseDeadline.ShouldBe(leased.Count == 0 ? long.MaxValue : leased.Values.Min());
            group.FirstReady(now, out var first, out _).ShouldBe(ready.Count > 0);
            if (ready.Count > 0) first.ShouldBe(ready.Min);
        }
        foreach (var (offset, deadline) in leased)
        {
            group.TryGetLease(offset, out var lease).ShouldBeTrue();
            lease.Deadline.ShouldBe(deadline);
        }
        group.ExpireLeases(long.MaxValue);
        group.LiveLeases(now).ShouldBe(0);
        group.EarliestLeaseDeadline.ShouldBe(long.MaxValue);
    }
}

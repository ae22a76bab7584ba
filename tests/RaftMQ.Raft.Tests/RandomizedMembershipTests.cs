namespace RaftMQ.Raft.Tests;

/// <summary>
/// Random membership changes, transfers, partitions, message loss and restarts on an in-memory cluster: at most one
/// leader per term, nodes never apply different entries at an index, and no committed entry is ever lost.
/// </summary>
public sealed class RandomizedMembershipTests
{
    private static readonly ulong[] Initial = [1, 2, 3];
    private static readonly ulong[] Joiners = [4, 5];

    public static TheoryData<int> Seeds => [.. Enumerable.Range(1, 30)];

    [Theory]
    [MemberData(nameof(Seeds))]
    public void RandomChanges_KeepElectionSafety_AndNeverLoseACommittedEntry(int seed)
    {
        var random = new Random(seed);
        var c = new TestCluster(Initial, Joiners, seed);
        var applied = new Dictionary<ulong, Entry>();
        var accepted = 0;
        for (var step = 0; step < 600; step++)
        {
            var op = random.Next(100);
            var leader = c.Leader?.Node;
            var id = (ulong)random.Next(1, 6);
            if (op < 45)
            {
                c.Tick();
            }
            else if (op < 60)
            {
                if (leader is not null) c.Propose(leader.Id, (byte)step);
            }
            else if (op < 70)
            {
                if (c.IsIsolated(id)) c.Heal(id);
                else if (c.Nodes.Keys.Count(c.IsIsolated) < 2) c.Isolate(id);
            }
            else if (op < 73)
            {
                c.LossRate = random.Next(3) == 0 ? 0.1 : 0;
            }
            else if (op < 76)
            {
                c.Restart(id, Initial.Contains(id) ? Initial : []);
            }
            else if (op < 95)
            {
                if (leader is null) continue;
                var r = c.Change(leader.Id, n => (random.Next(5)) switch
                {
                    0 => n.AddLearner(id),
                    1 => n.PromoteLearner(id),
                    2 => n.AddVoter(id),
                    3 => n.RemoveMember(id),
                    _ => n.AddLearner(id),
                });
                if (r.IsAccepted) accepted++;
                else r.Message.ShouldNotBeNullOrEmpty();
            }
            else
            {
                if (leader is not null) c.Change(leader.Id, n => n.TransferLeadership(random.Next(2) == 0 ? 0 : id));
            }
            CheckApplied(c, applied);
        }

        // Heal everything: a leader emerges and still holds every entry any node ever applied.
        c.HealAll();
        c.LossRate = 0;
        c.Tick(20 * TestNode.ElectionTicks);
        var final = c.Leader.ShouldNotBeNull($"seed {seed}: no leader after healing:\n{Describe(c)}").Node;
        final.Propose(new byte[] { 255 });
        c.Tick(5);
        CheckApplied(c, applied);
        foreach (var (index, entry) in applied)
        {
            final.TryGetEntry(index, out var held).ShouldBeTrue($"seed {seed}: committed entry {index} lost");
            held.Term.ShouldBe(entry.Term, $"seed {seed}: committed entry {index} replaced");
        }
        accepted.ShouldBeGreaterThan(0, $"seed {seed}: no membership change was ever accepted");
        foreach (var n in c.Nodes.Values)
        {
            // Every member that is still a voter or learner has caught up with the final configuration.
            if (final.Configuration.IsMember(n.Node.Id)) n.Node.Configuration.ShouldBe(final.Configuration, $"seed {seed}: node {n.Node.Id}\n{Describe(c)}\n{final.DescribeProgress(n.Node.Id)}");
        }
    }

    private static string Describe(TestCluster c) => string.Join('\n', c.Nodes.Values.Select(n =>
        $"node {n.Node.Id}: {n.Node.Role} term {n.Node.Term} leader {n.Node.Leader} last {n.Node.LastIndex}/{n.Node.LastTerm} " +
        $"commit {n.Node.CommitIndex} {n.Node.Configuration} at {n.Node.ConfigurationIndex}"));

    private static void CheckApplied(TestCluster c, Dictionary<ulong, Entry> applied)
    {
        foreach (var n in c.Nodes.Values)
        {
            foreach (var e in n.Applied)
            {
                if (applied.TryGetValue(e.Index, out var seen))
                {
                    e.Term.ShouldBe(seen.Term, $"node {n.Node.Id} applied another entry at {e.Index}");
                    e.Data.Span.SequenceEqual(seen.Data.Span).ShouldBeTrue($"node {n.Node.Id} applied other data at {e.Index}");
                }
                else
                {
                    applied[e.Index] = e;
                }
            }
        }
    }
}

using RaftMQ.Simulation.Tests.Support;

namespace RaftMQ.Simulation.Tests;

/// <summary>
/// The Raft paper's Figure 8 (§5.4.2), played step by step: an entry of an old term that sits on a majority is not
/// committed by counting replicas, because a later leader may still overwrite it; it commits only together with an
/// entry of the leader's current term.
/// </summary>
public sealed class Figure8ScriptTests
{
    private const ulong S1 = 1, S2 = 2, S3 = 3, S4 = 4, S5 = 5;
    private static readonly byte[] X = "figure-8 entry X"u8.ToArray();

    [Fact]
    public void Figure8_OldTermEntryOnMajority_IsNotCommitted_AndCanBeOverwritten()
    {
        var (sim, oldTerm) = PlayUpToFigure8c();

        // (d) S1 crashes; S5, whose last entry has a later term than X, is elected by S2, S3, S4 and overwrites X.
        sim.Crash(S1);
        sim.ClearInterceptors();
        sim.Restart(S5);
        ElectOnly(sim, S5);
        sim.Await(() => new[] { S2, S3, S4, S5 }.All(id => sim.Node(id).AppliedThisRun >= 3), 2_000, "S5's log applied on S2..S5");
        foreach (var id in new[] { S2, S3, S4, S5 })
        {
            var applied = sim.Node(id).Applied;
            applied[1].Term.ShouldNotBe(oldTerm, $"n{id} kept X at index 2");
            applied.Any(e => e.Data.Span.SequenceEqual(X)).ShouldBeFalse($"n{id} applied X");
        }
    }

    [Fact]
    public void Figure8_OldTermEntry_CommitsOnlyWithACurrentTermEntry()
    {
        var (sim, oldTerm) = PlayUpToFigure8c();
        var s1 = sim.Node(S1);
        var currentTerm = s1.Term;

        // (e) S1 replicates its own no-op of the current term to a majority: now both commit at once.
        sim.ClearInterceptors();
        var commits = new List<ulong>();
        sim.Await(() =>
        {
            if (commits.Count == 0 || commits[^1] != s1.CommitIndex) commits.Add(s1.CommitIndex);
            return s1.CommitIndex >= 2;
        }, 1_000, "S1 commits");
        commits.ShouldBe([1UL, 3UL], "the commit index must jump over X straight to the current-term entry");
        s1.Raft!.TryGetEntry(3, out var noOp).ShouldBeTrue();
        noOp.Term.ShouldBe(currentTerm);

        sim.Await(() => new[] { S1, S2, S3, S4 }.All(id => sim.Node(id).AppliedThisRun >= 3), 1_000, "all applied");
        foreach (var id in new[] { S1, S2, S3, S4 })
        {
            var x = sim.Node(id).Applied[1];
            x.Term.ShouldBe(oldTerm);
            x.Data.ToArray().ShouldBe(X);
        }
    }

    /// <summary>
    /// Plays Figure 8 (a)–(c) and returns the cluster with S1 leading, X (the old-term entry at index 2) stored on
    /// S1, S2 and S3 — a majority of five — and S1's current-term entry at index 3 held back from everyone.
    /// </summary>
    private (SimCluster Sim, ulong OldTerm) PlayUpToFigure8c([System.Runtime.CompilerServices.CallerMemberName] string test = "")
    {
        var sim = Sim.Cluster(GetType(), 5, 8, o => o.Link = LinkConfig.Reliable with { MinDelayMs = 1, MaxDelayMs = 1 }, test);
        ElectOnly(sim, S1);
        sim.Await(() => sim.Nodes.All(n => n.AppliedThisRun == 1), 1_000, "S1's first no-op applied everywhere");

        // (a) S1 leads and replicates X to S2 only.
        var toOthers = sim.Intercept<AppendEntries>(InterceptPoint.BeforeSend, _ => InterceptDecision.Drop, from: S1, where: m => m.To != S2);
        var x = sim.Propose(X, S1);
        x.Result.IsAccepted.ShouldBeTrue();
        x.Result.Index.ShouldBe(2UL);
        var oldTerm = x.Result.Term;
        sim.Await(() => sim.Node(S2).Storage.LastIndex == 2, 500, "X reaches S2");
        sim.Node(S1).CommitIndex.ShouldBe(1UL);
        sim.RemoveInterceptor(toOthers);

        // (b) S1 crashes. S5 is elected by S3, S4 and itself, appends its no-op at index 2, and crashes before
        // anyone sees it.
        sim.Crash(S1);
        sim.Intercept<RaftMessage>(InterceptPoint.BeforeSend, _ => InterceptDecision.Drop, from: S5,
            where: m => m is AppendEntries or Heartbeat);
        ElectOnly(sim, S5);
        sim.Node(S5).Storage.Term(2).ShouldBeGreaterThan(oldTerm);
        sim.Crash(S5);
        sim.ClearInterceptors();

        // (c) S1 restarts and is elected by S2, S3, S4. It replicates X to S3 but — the network holds back the
        // rest — not its current-term no-op at index 3, and nothing to S4.
        sim.Intercept<AppendEntries>(InterceptPoint.BeforeSend, _ => InterceptDecision.Drop, from: S1, to: S4);
        sim.Intercept<AppendEntries>(InterceptPoint.BeforeSend,
            m => InterceptDecision.Rewrite(m with { Entries = [.. m.Entries.Where(e => e.Index <= 2)] }),
            from: S1, where: m => m.Entries.Any(e => e.Index > 2));
        sim.Restart(S1);
        ElectOnly(sim, S1);
        var s1 = sim.Node(S1);
        s1.Term.ShouldBeGreaterThan(sim.Node(S5).Term);
        sim.Await(() => sim.Node(S3).Storage.LastIndex == 2 && sim.Node(S3).Storage.Term(2) == oldTerm, 1_000, "X reaches S3");
        sim.RunFor(500);

        // X is on S1, S2, S3: a majority. Counting replicas would commit it; Raft must not (§5.4.2).
        foreach (var id in new[] { S1, S2, S3 }) sim.Node(id).Storage.Term(2).ShouldBe(oldTerm);
        s1.Raft!.DescribeProgress(S2)!.ShouldContain("match=2");
        s1.Raft!.DescribeProgress(S3)!.ShouldContain("match=2");
        s1.Raft!.LastIndex.ShouldBe(3UL);
        foreach (var n in sim.Nodes) n.CommitIndex.ShouldBe(1UL, $"n{n.Id} committed the old-term entry by counting replicas");
        return (sim, oldTerm);
    }

    /// <summary>Lets only <paramref name="candidate"/>'s vote requests through until it leads.</summary>
    private static void ElectOnly(SimCluster sim, ulong candidate)
    {
        var others = sim.Intercept<RequestVote>(InterceptPoint.BeforeSend, _ => InterceptDecision.Drop, where: m => m.From != candidate);
        sim.Await(() => sim.Node(candidate).IsLeader, 5_000, $"n{candidate} elected");
        sim.RemoveInterceptor(others);
    }
}

using System.Diagnostics;
using Xunit.Abstractions;

namespace RaftMQ.Simulation.Tests;

/// <summary>
/// Fuzzed schedules with membership changes of every kind among the faults (see <see cref="Fuzzer"/> and
/// Fuzzer.Membership.cs): a fixed set of seeds in the default run, many with <c>RAFTMQ_SOAK=1</c>, one with
/// <c>RAFTMQ_SEED=n</c>. Split over two classes because xunit runs classes, not the cases of one theory, in parallel.
/// </summary>
public abstract class MembershipFuzzTestsBase(ITestOutputHelper output)
{
    private const int Parts = 2;
    private const ulong FirstSeed = 7_000_000;
    private const int DefaultSchedules = 160;
    private const int SoakSchedules = 20_000;

    protected abstract int Part { get; }

    [Fact]
    public void MembershipFuzz()
    {
        var filter = "FullyQualifiedName~RaftMQ.Simulation.Tests.MembershipFuzz";
        if (SimEnvironment.SeedOverride is { } replay)
        {
            if (Part != 0) return;
            var outcome = Fuzzer.Run(replay, SimEnvironment.ReplayCommand(replay, filter), membership: true);
            output.WriteLine(outcome.ToString());
            return;
        }

        var total = SimEnvironment.Soak ? SoakSchedules : DefaultSchedules;
        var perPart = total / Parts;
        var first = FirstSeed + SimEnvironment.SeedOffset + (ulong)(Part * perPart);
        var watch = Stopwatch.StartNew();
        long asked = 0, added = 0, promoted = 0, votersRemoved = 0, learnersRemoved = 0, selfRemovals = 0, wiped = 0, inFlight = 0, misuse = 0, notLeader = 0;
        long acknowledged = 0, crashes = 0, snapshotJoins = 0;
        int grown = 0, shrunk = 0, oneVoter = 0;
        var statuses = new SortedDictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < perPart; i++)
        {
            var seed = first + (ulong)i;
            var outcome = Fuzzer.Run(seed, SimEnvironment.ReplayCommand(seed, filter), membership: true);
            var m = outcome.Membership!;
            asked += m.Asked;
            added += m.LearnersAdded;
            promoted += m.Promoted;
            votersRemoved += m.VotersRemoved;
            learnersRemoved += m.LearnersRemoved;
            selfRemovals += m.LeaderSelfRemovals;
            wiped += m.Wiped;
            inFlight += m.InFlightRefusals;
            misuse += m.MisuseRefusals;
            notLeader += m.NotLeaderRefusals;
            snapshotJoins += m.JoinedFromSnapshot;
            acknowledged += outcome.Acknowledged;
            crashes += outcome.Crashes;
            if (m.FinalVoters > outcome.Nodes) grown++;
            if (m.FinalVoters < outcome.Nodes) shrunk++;
            if (m.FinalVoters == 1) oneVoter++;
            foreach (var ((kind, status), count) in m.Statuses) statuses[$"{kind} {status}"] = statuses.GetValueOrDefault($"{kind} {status}") + count;
        }
        output.WriteLine($"{perPart} schedules (seeds {first}..{first + (ulong)perPart - 1}) in {watch.ElapsedMilliseconds} ms: " +
            $"{asked} changes asked, committed: {added} learners added, {promoted} promoted, {votersRemoved} voters and {learnersRemoved} learners removed; " +
            $"{selfRemovals} leader self-removals accepted, {wiped} nodes wiped, {inFlight} refused while another was in flight, {misuse} misuses and {notLeader} asked of a non-leader refused, " +
            $"{snapshotJoins} joiners caught up from a snapshot; {grown} schedules ended larger, {shrunk} smaller, {oneVoter} with one voter; " +
            $"{acknowledged} proposals acknowledged, {crashes} crashes; answers: {string.Join(", ", statuses.Select(kv => $"{kv.Key} {kv.Value}"))}");

        // Every kind of change must actually happen, or passing means little.
        added.ShouldBeGreaterThan(perPart / 2L);
        promoted.ShouldBeGreaterThan(perPart / 4L);
        votersRemoved.ShouldBeGreaterThan(perPart / 4L);
        learnersRemoved.ShouldBeGreaterThan(0L);
        selfRemovals.ShouldBeGreaterThanOrEqualTo(perPart / 10L); // a tenth of the schedules or more
        wiped.ShouldBeGreaterThan(perPart / 10L);
        inFlight.ShouldBeGreaterThan(perPart / 10L);
        misuse.ShouldBeGreaterThan(perPart / 8L);
        snapshotJoins.ShouldBeGreaterThan(0L);
        grown.ShouldBeGreaterThan(0);
        shrunk.ShouldBeGreaterThan(0);
        acknowledged.ShouldBeGreaterThan(perPart * 5L);
        crashes.ShouldBeGreaterThan((long)perPart);
    }
}

public sealed class MembershipFuzzPart0Tests(ITestOutputHelper output) : MembershipFuzzTestsBase(output)
{
    protected override int Part => 0;
}

public sealed class MembershipFuzzPart1Tests(ITestOutputHelper output) : MembershipFuzzTestsBase(output)
{
    protected override int Part => 1;
}

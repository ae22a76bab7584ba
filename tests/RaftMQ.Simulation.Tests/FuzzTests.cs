using System.Diagnostics;
using RaftMQ.Simulation.Tests.Support;
using Xunit.Abstractions;

namespace RaftMQ.Simulation.Tests;

/// <summary>
/// Randomized fault schedules (see <see cref="Fuzzer"/>), with and without snapshots and disk faults: 6,000 in the default run, 200,000 with
/// <c>RAFTMQ_SOAK=1</c>, one with <c>RAFTMQ_SEED=n</c>. The seeds are split over several test classes because xunit
/// runs classes, not the cases of one theory, in parallel.
/// </summary>
public abstract class FuzzTestsBase(ITestOutputHelper output)
{
    private const int Parts = 4;
    private const ulong FirstSeed = 1_000_000;
    private const int DefaultSchedules = 6_000;
    private const int SoakSchedules = 200_000;

    protected abstract int Part { get; }

    [Fact]
    public void Fuzz()
    {
        var filter = "FullyQualifiedName~RaftMQ.Simulation.Tests.Fuzz";
        if (SimEnvironment.SeedOverride is { } replay)
        {
            // Replays go to part 0 only; the other parts have nothing to do.
            if (Part != 0) return;
            var outcome = Fuzzer.Run(replay, SimEnvironment.ReplayCommand(replay, filter));
            output.WriteLine(outcome.ToString());
            return;
        }

        var total = SimEnvironment.Soak ? SoakSchedules : DefaultSchedules;
        var perPart = total / Parts;
        var first = FirstSeed + SimEnvironment.SeedOffset + (ulong)(Part * perPart);
        var watch = Stopwatch.StartNew();
        long acknowledged = 0, forwarded = 0, proposals = 0, crashes = 0, elections = 0, snapshotsInstalled = 0, diskFaults = 0, reads = 0, transfers = 0;
        int withLeaderChange = 0, fiveNodes = 0, withSnapshotInstall = 0, withDiskFault = 0;
        for (int i = 0; i < perPart; i++)
        {
            var seed = first + (ulong)i;
            var outcome = Fuzzer.Run(seed, SimEnvironment.ReplayCommand(seed, filter));
            acknowledged += outcome.Acknowledged;
            forwarded += outcome.ForwardedAcknowledged;
            proposals += outcome.Proposals;
            crashes += outcome.Crashes;
            elections += outcome.Terms;
            if (outcome.Terms > 1) withLeaderChange++;
            if (outcome.Nodes == 5) fiveNodes++;
            snapshotsInstalled += outcome.SnapshotsInstalled;
            diskFaults += outcome.DiskFaults;
            reads += outcome.ReadsServed;
            transfers += outcome.TransfersStarted;
            if (outcome.SnapshotsInstalled > 0) withSnapshotInstall++;
            if (outcome.DiskFaults > 0) withDiskFault++;
        }
        output.WriteLine($"{perPart} schedules (seeds {first}..{first + (ulong)perPart - 1}) in {watch.ElapsedMilliseconds} ms: " +
            $"{proposals} proposals, {acknowledged} acknowledged ({forwarded} forwarded by a follower), {crashes} crashes, {elections} leader terms, " +
            $"{withLeaderChange} schedules with a leader change, {fiveNodes} on five nodes, " +
            $"{snapshotsInstalled} snapshots installed in {withSnapshotInstall} schedules, {diskFaults} disk faults in {withDiskFault} schedules, " +
            $"{reads} reads served, {transfers} leadership transfers started");

        // The schedules must actually stress the cluster, or passing means nothing.
        acknowledged.ShouldBeGreaterThan(perPart * 5L);
        forwarded.ShouldBeGreaterThan((long)perPart);
        withLeaderChange.ShouldBeGreaterThan(perPart / 2);
        crashes.ShouldBeGreaterThan(perPart);
        fiveNodes.ShouldBeInRange(perPart / 3, perPart * 2 / 3);
        withSnapshotInstall.ShouldBeGreaterThan(perPart / 10);
        withDiskFault.ShouldBeGreaterThan(perPart / 20);
        reads.ShouldBeGreaterThan(perPart * 5L);
        transfers.ShouldBeGreaterThan(perPart / 4L);
    }
}

public sealed class FuzzPart0Tests(ITestOutputHelper output) : FuzzTestsBase(output)
{
    protected override int Part => 0;
}

public sealed class FuzzPart1Tests(ITestOutputHelper output) : FuzzTestsBase(output)
{
    protected override int Part => 1;
}

public sealed class FuzzPart2Tests(ITestOutputHelper output) : FuzzTestsBase(output)
{
    protected override int Part => 2;
}

public sealed class FuzzPart3Tests(ITestOutputHelper output) : FuzzTestsBase(output)
{
    protected override int Part => 3;
}

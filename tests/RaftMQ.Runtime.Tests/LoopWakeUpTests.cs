using System.Text;
using RaftMQ.Raft;
using RaftMQ.Storage;

namespace RaftMQ.Runtime.Tests;

/// <summary>
/// Every thread that posts to the loop runs it when it is idle, so no input waits for the alarm (docs/runtime.md, "Who
/// runs the loop"). A one-node cluster on a clock that stops once the node leads: from then on the alarm never fires,
/// and only the posting threads (the proposers, and the fsync thread handing back each finished fsync) run the loop.
/// A posting path that left its input for someone else would strand the last proposals past the deadline (checked:
/// with the fsync thread's hand-back not running the loop, this test fails). The narrow window between a holder's
/// last look at the inbox and its letting go is not reliably hit here; the holder's second look covers it.
/// </summary>
public sealed class LoopWakeUpTests : IAsyncLifetime
{
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(10);
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);
    private const int Proposers = 8;
    private const int PerProposer = 400;

    private readonly string _directory = Path.Combine(Path.GetTempPath(), "raftmq-loop-wakeup-tests", Guid.NewGuid().ToString("N")[..12]);
    private readonly ManualClock _clock = new();
    private readonly AppendMachine _machine = new();
    private RaftRuntime _node = null!;

    public Task InitializeAsync()
    {
        var options = new RaftRuntimeOptions
        {
            Raft = new RaftOptions { Id = 1, Voters = [1], ElectionTicks = 5, HeartbeatTicks = 1, RandomSeed = 3 },
            TickInterval = Tick,
        };
        _node = new RaftRuntime(options, NodeStorage.Open(_directory), _machine, new ProposeOrRouteTests.NoPeers(), _clock);
        _node.Start();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _node.DisposeAsync();
        if (Directory.Exists(_directory)) Directory.Delete(_directory, recursive: true);
    }

    [Fact]
    public async Task Proposals_posted_from_many_threads_complete_with_the_clock_stopped()
    {
        using var deadline = new CancellationTokenSource(Deadline);
        using (var period = new PeriodicTimer(TimeSpan.FromMilliseconds(2)))
        {
            while (_node.Status.Role != Role.Leader)
            {
                _clock.Advance(Tick); // the alarm fires on the next due time the clock passes
                await period.WaitForNextTickAsync(deadline.Token);
            }
        }
        // The clock stops here: the alarm will not fire again in this test.

        var proposers = Enumerable.Range(0, Proposers).Select(p => Task.Run(async () =>
        {
            for (var k = 0; k < PerProposer; k++)
                await _node.ProposeAsync(Encoding.UTF8.GetBytes($"p{p}-{k}"), deadline.Token);
        })).ToArray();
        await Task.WhenAll(proposers);

        _machine.Applies.ShouldBe(Proposers * PerProposer);
    }
}

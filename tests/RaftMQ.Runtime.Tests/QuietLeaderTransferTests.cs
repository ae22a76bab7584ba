using RaftMQ.Raft;
using RaftMQ.Storage;

namespace RaftMQ.Runtime.Tests;

/// <summary>
/// A quiet leader sleeps between its slow heartbeats; a request that wakes it must find a clock that has not been
/// run forward yet. Three real runtimes over real storage and an in-process network, on one manual clock: time moves
/// only when the test moves it, so the idle time before the request is exact.
/// </summary>
public sealed class QuietLeaderTransferTests : IAsyncLifetime
{
    private const int ElectionTicks = 10;
    private const int QuietHeartbeatTicks = 50;
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(10);
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    private readonly string _directory = Path.Combine(Path.GetTempPath(), "raftmq-quiet-transfer-tests", Guid.NewGuid().ToString("N")[..12]);
    private readonly InProcessNetwork _network = new();
    private readonly ManualClock _clock = new();
    private readonly RaftRuntime[] _nodes = new RaftRuntime[3];

    public Task InitializeAsync()
    {
        for (var i = 0; i < 3; i++)
        {
            var id = (ulong)(i + 1);
            var options = new RaftRuntimeOptions
            {
                // Only node 1 ever times out by itself (the others' timeouts are beyond any time this test passes), so
                // it is the one leader, elected when the test first moves the clock.
                Raft = new RaftOptions
                {
                    Id = id, Voters = [1, 2, 3], ElectionTicks = id == 1 ? ElectionTicks : 100_000, HeartbeatTicks = 1,
                    QuiescedHeartbeatTicks = QuietHeartbeatTicks, RandomSeed = 7 + id,
                },
                TickInterval = Tick,
            };
            _nodes[i] = new RaftRuntime(options, NodeStorage.Open(Path.Combine(_directory, "n" + id)), new AppendMachine(), _network.Join(id), _clock);
            _nodes[i].Start();
        }
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        foreach (var node in _nodes) await node.DisposeAsync();
        if (Directory.Exists(_directory)) Directory.Delete(_directory, recursive: true);
    }

    /// <summary>
    /// Polls every 2 ms until the condition holds or the deadline passes; with <paramref name="clock"/>, moves it a
    /// tick forward each time the condition is still false.
    /// </summary>
    private static async Task<bool> WaitUntilAsync(Func<bool> condition, ManualClock? clock = null)
    {
        using var deadline = new CancellationTokenSource(Deadline);
        using var period = new PeriodicTimer(TimeSpan.FromMilliseconds(2));
        while (!condition())
        {
            clock?.Advance(Tick);
            try
            {
                await period.WaitForNextTickAsync(deadline.Token);
            }
            catch (OperationCanceledException)
            {
                return condition();
            }
        }
        return true;
    }

    [Fact]
    public async Task A_transfer_asked_of_a_leader_idle_for_longer_than_an_election_timeout_gets_a_whole_election_timeout()
    {
        (await WaitUntilAsync(() => _nodes.All(n => n.Status.Leader == 1) && _nodes[0].Status.Role == Role.Leader, _clock))
            .ShouldBeTrue("node 1 is elected");
        (await WaitUntilAsync(() => _nodes[0].Status.Quiesced, _clock)).ShouldBeTrue("the idle leader quiets");

        // Idle for more than an election timeout, less than a quiet heartbeat: nothing is due, so nothing runs until
        // the request arrives. Were those ticks counted after the request, the transfer's clock would start nearly
        // run out (the loop gives the core at most an election timeout less one tick at a time), and the few ticks
        // node 2 takes to win would be too many.
        _clock.Advance(Tick * (ElectionTicks + 5));
        _network.Hold(2);
        using var timeout = new CancellationTokenSource(Deadline);
        var transfer = _nodes[0].TransferLeadershipAsync(2, timeout.Token);
        (await WaitUntilAsync(() => _network.Held(2).Any(m => m is TimeoutNow))).ShouldBeTrue("node 1 tells node 2 to campaign");

        // Node 2 wins only three ticks later; the leader, awake again, sends it a heartbeat after each tick it counts.
        var before = _network.Held(2).Count;
        _clock.Advance(Tick * 3);
        (await WaitUntilAsync(() => _network.Held(2).Count > before || transfer.IsCompleted)).ShouldBeTrue("node 1 counts the ticks");
        _network.Release(2);

        var done = await transfer;
        done.Leader.ShouldBe(2UL);
        // Node 2 publishes its status at the end of the iteration that sent node 1 the news, so it may trail node 1's answer.
        (await WaitUntilAsync(() => _nodes[1].Status.Role == Role.Leader)).ShouldBeTrue("node 2 says it leads");
    }
}

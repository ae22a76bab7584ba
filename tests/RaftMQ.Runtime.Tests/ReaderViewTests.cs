using System.Text;
using System.Threading.Channels;
using RaftMQ.Raft;
using RaftMQ.StateMachine;
using RaftMQ.Storage;

namespace RaftMQ.Runtime.Tests;

/// <summary>The loop lets a state machine with a view for readers (<see cref="IReaderView"/>) refresh it after applying, and while idle.</summary>
public sealed class ReaderViewTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "raftmq-reader-view-tests", Guid.NewGuid().ToString("N")[..12]);

    public void Dispose()
    {
        if (Directory.Exists(_directory)) Directory.Delete(_directory, recursive: true);
    }

    /// <summary>Appends strings; each time the loop asks, publishes how many it holds and the clock it was given.</summary>
    private sealed class ViewMachine : IStateMachine, IReaderView
    {
        private readonly List<string> _items = [];
        private readonly Channel<(int Count, long NowMs)> _views = Channel.CreateUnbounded<(int, long)>();

        public ChannelReader<(int Count, long NowMs)> Views => _views.Reader;

        public object? Apply(ulong index, ReadOnlyMemory<byte> command)
        {
            _items.Add(Encoding.UTF8.GetString(command.Span));
            return _items.Count;
        }

        public void PublishReaderView(DateTimeOffset now) => _views.Writer.TryWrite((_items.Count, now.ToUnixTimeMilliseconds()));

        public IStateMachineSnapshot CaptureSnapshot() => StateMachineSnapshots.Serialized(_ => { });

        public void RestoreSnapshot(Stream source) => _items.Clear();
    }

    [Fact]
    public async Task The_view_follows_what_was_applied_and_is_refreshed_while_the_node_is_idle()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var machine = new ViewMachine();
        var options = new RaftRuntimeOptions
        {
            Raft = new RaftOptions { Id = 1, Voters = [1], ElectionTicks = 5, RandomSeed = 7 },
            TickInterval = TimeSpan.FromMilliseconds(10),
        };
        await using var runtime = new RaftRuntime(options, NodeStorage.Open(_directory), machine, new ProposeOrRouteTests.NoPeers());
        runtime.Start();

        for (var i = 1; i <= 3; i++)
        {
            (await runtime.ProposeOrRouteAsync(() => Encoding.UTF8.GetBytes($"c{i}"), timeout.Token)).ShouldBe(new ProposeOutcome.Applied(i));
            // The loop asks after the iteration that applied it (views of earlier iterations may come first).
            int seen;
            do seen = (await machine.Views.ReadAsync(timeout.Token)).Count;
            while (seen < i);
            seen.ShouldBe(i);
        }

        // Nothing more is proposed: the loop still wakes for its timers and asks again, with the wall clock.
        for (var idle = 0; idle < 3; idle++)
        {
            var (count, nowMs) = await machine.Views.ReadAsync(timeout.Token);
            count.ShouldBe(3);
            Math.Abs(nowMs - DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()).ShouldBeLessThan(10_000);
        }
    }
}

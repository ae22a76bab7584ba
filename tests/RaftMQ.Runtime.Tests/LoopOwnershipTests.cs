using System.Text;
using RaftMQ.StateMachine;

namespace RaftMQ.Runtime.Tests;

/// <summary>
/// The loop has no thread of its own: whichever thread posts to an idle loop runs it (docs/runtime.md, "Who runs the
/// loop"). Three runtimes over an in-process network that delivers each message on the sending thread (so one
/// node's loop runs the next node's inline), under proposals from many threads at once to every node: no two threads
/// ever run a node's loop at the same time, no input is left waiting in an idle loop, and every node applies the
/// same commands in the same order.
/// </summary>
public sealed class LoopOwnershipTests : IAsyncLifetime
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);
    private const int Proposers = 8;
    private const int PerProposer = 150;

    private readonly string _directory = Path.Combine(Path.GetTempPath(), "raftmq-loop-ownership-tests", Guid.NewGuid().ToString("N")[..12]);
    private readonly InProcessNetwork _network = new();
    private readonly ExclusiveMachine[] _machines = [new(), new(), new()];
    private RaftRuntime[] _nodes = [];

    public Task InitializeAsync()
    {
        _nodes = InProcessCluster.Start(_directory, _network, _machines, seed: 41, Deadline);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        foreach (var node in _nodes) await node.DisposeAsync();
        if (Directory.Exists(_directory)) Directory.Delete(_directory, recursive: true);
    }

    [Fact]
    public async Task Proposals_from_many_threads_to_every_node_are_each_applied_once_everywhere_by_one_thread_at_a_time()
    {
        using var timeout = new CancellationTokenSource(Deadline);
        var proposers = Enumerable.Range(0, Proposers).Select(p => Task.Run(async () =>
        {
            for (var k = 0; k < PerProposer; k++)
            {
                var node = _nodes[(p + k) % 3]; // followers forward to the leader
                var command = $"p{p}-{k}";
                var outcome = await node.ProposeOrRouteAsync(() => Encoding.UTF8.GetBytes(command), timeout.Token);
                outcome.ShouldBeOfType<ProposeOutcome.Applied>($"{command} through node {node.Status.Id}");
            }
        })).ToArray();
        await Task.WhenAll(proposers).WaitAsync(timeout.Token);

        // Every node gets there: the followers learn the last commit index from the leader's next message.
        foreach (var (node, machine) in _nodes.Zip(_machines))
        {
            while (machine.Count < Proposers * PerProposer)
            {
                var changed = machine.Changed;
                if (machine.Count >= Proposers * PerProposer) break;
                await changed.WaitAsync(timeout.Token);
            }
        }

        foreach (var machine in _machines)
        {
            machine.Overlaps.ShouldBe(0, "two threads applied at once");
            var items = machine.Snapshot();
            items.Count.ShouldBe(Proposers * PerProposer);
            items.Distinct().Count().ShouldBe(items.Count, "no command applied twice");
        }
        _machines[1].Snapshot().ShouldBe(_machines[0].Snapshot());
        _machines[2].Snapshot().ShouldBe(_machines[0].Snapshot());
    }

    /// <summary>
    /// An append-only log that counts calls overlapping in time: the runtime promises one thread in the state machine
    /// at a time, whichever thread that is.
    /// </summary>
    private sealed class ExclusiveMachine : IStateMachine
    {
        private readonly Lock _gate = new();
        private readonly List<string> _items = [];
        private int _inside;
        private int _overlaps;
        private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public int Overlaps => Volatile.Read(ref _overlaps);

        public int Count
        {
            get
            {
                lock (_gate) return _items.Count;
            }
        }

        /// <summary>Completes at the next apply after this call.</summary>
        public Task Changed
        {
            get
            {
                lock (_gate) return _changed.Task;
            }
        }

        public List<string> Snapshot()
        {
            lock (_gate) return [.. _items];
        }

        public object? Apply(ulong index, ReadOnlyMemory<byte> command)
        {
            if (Interlocked.Increment(ref _inside) != 1) Interlocked.Increment(ref _overlaps);
            Thread.SpinWait(50); // widen the window in which a second thread would be caught
            TaskCompletionSource changed;
            int count;
            lock (_gate)
            {
                _items.Add(Encoding.UTF8.GetString(command.Span));
                count = _items.Count;
                changed = _changed;
                _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }
            Interlocked.Decrement(ref _inside);
            changed.TrySetResult();
            return count;
        }

        public IStateMachineSnapshot CaptureSnapshot() => StateMachineSnapshots.Serialized(Write);

        private void Write(Stream destination)
        {
            using var w = new BinaryWriter(destination, Encoding.UTF8, leaveOpen: true);
            var items = Snapshot();
            w.Write(items.Count);
            foreach (var i in items) w.Write(i);
        }

        public void RestoreSnapshot(Stream source)
        {
            using var r = new BinaryReader(source, Encoding.UTF8, leaveOpen: true);
            var n = r.ReadInt32();
            lock (_gate)
            {
                _items.Clear();
                for (var i = 0; i < n; i++) _items.Add(r.ReadString());
            }
        }
    }
}

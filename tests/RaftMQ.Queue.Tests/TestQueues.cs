namespace RaftMQ.Queue.Tests;

/// <summary>Queue state machines over fresh temporary directories, all closed and deleted on dispose.</summary>
internal sealed class TestQueues : IDisposable
{
    private readonly List<QueueStateMachine> _machines = [];

    public string Root { get; } = Path.Combine(Path.GetTempPath(), "raftmq-queue-tests", Guid.NewGuid().ToString("N"));

    public QueueStateMachine Create(QueueLimits? limits = null, QueueStoreOptions? storeOptions = null)
    {
        var machine = new QueueStateMachine(Path.Combine(Root, $"node-{_machines.Count}"), limits, storeOptions);
        _machines.Add(machine);
        return machine;
    }

    public void Dispose()
    {
        foreach (var machine in _machines) machine.Dispose();
        if (Directory.Exists(Root)) Directory.Delete(Root, recursive: true);
    }
}

namespace RaftMQ.Runtime;

/// <summary>
/// The thread that fsyncs a node's log off its loop (<see cref="INodeHost.TrySyncLogInBackground"/>): one job at a
/// time, since the driver keeps at most one Ready outstanding. A thread of its own rather than the thread pool: an
/// fsync can block for hundreds of milliseconds on a busy disk, and a pool thread held that long is one the HTTP
/// server does not get.
/// </summary>
internal sealed class LogSyncThread : IDisposable
{
    private readonly Action<LogSyncJob> _done;
    private readonly AutoResetEvent _signal = new(false); // no spinning before it sleeps (SemaphoreSlim spins)
    private readonly Thread _thread;
    private LogSyncJob? _job;
    private volatile bool _stopping;

    /// <param name="name">The thread's name.</param>
    /// <param name="done">Called on this thread after each job ran (whether or not its fsync failed).</param>
    public LogSyncThread(string name, Action<LogSyncJob> done)
    {
        _done = done;
        _thread = new Thread(Run) { IsBackground = true, Name = name };
        _thread.Start();
    }

    /// <summary>Hands the thread a job; the previous one must have been handed back (at most one at a time).</summary>
    public void Start(LogSyncJob job)
    {
        if (Interlocked.CompareExchange(ref _job, job, null) is not null)
            throw new InvalidOperationException("a log fsync is already running");
        _signal.Set();
    }

    private void Run()
    {
        while (true)
        {
            _signal.WaitOne();
            if (_stopping) return;
            var job = Volatile.Read(ref _job)!;
            job.Run();
            Volatile.Write(ref _job, null);
            _done(job);
        }
    }

    /// <summary>Stops the thread after the job it runs, if any (its callback is still called).</summary>
    public void Dispose()
    {
        _stopping = true;
        _signal.Set();
        _thread.Join();
        _signal.Dispose();
    }
}

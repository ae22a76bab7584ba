namespace RaftMQ.Runtime;

/// <summary>
/// The loop's wake-up for the core's next timeout: one thread of its own that sleeps until a timestamp and then calls
/// back once. Moving the time later (a follower does after every heartbeat) costs nothing: the thread wakes at the
/// time it was waiting for, sees the later one and sleeps again. Only an earlier time wakes it at once.
/// <para>
/// A <see cref="System.Threading.Timer"/> did the same with several times the wake-ups on Linux: every firing there is
/// a wake of the runtime's timer thread, a thread-pool work item, and a second wake of the timer thread when the
/// queue re-arms (docs/benchmarks.md, "The loop's wake-up on a thread of its own").
/// </para>
/// </summary>
internal sealed class LoopAlarm : IDisposable
{
    private const long Disarmed = long.MaxValue;

    private readonly TimeProvider _time;
    private readonly Action _fired;
    private readonly object _gate = new(); // a monitor: the thread sleeps on it with Monitor.Wait
    private readonly Thread _thread;
    private long _due = Disarmed; // under _gate
    private long _waitingFor = Disarmed; // under _gate: the time the thread sleeps until
    private bool _stopping; // under _gate

    /// <param name="name">The thread's name.</param>
    /// <param name="time">The clock the due times are read on; the thread sleeps in real time.</param>
    /// <param name="fired">Called on the alarm's thread, outside its lock, once per due time reached.</param>
    public LoopAlarm(string name, TimeProvider time, Action fired)
    {
        _time = time;
        _fired = fired;
        _thread = new Thread(Run) { IsBackground = true, Name = name };
        _thread.Start();
    }

    /// <summary>Arms the alarm for <paramref name="dueTimestamp"/> (a <see cref="TimeProvider.GetTimestamp"/> value), replacing the previous time.</summary>
    public void Set(long dueTimestamp)
    {
        lock (_gate)
        {
            _due = dueTimestamp;
            if (dueTimestamp < _waitingFor) Monitor.Pulse(_gate);
        }
    }

    private void Run()
    {
        while (true)
        {
            lock (_gate)
            {
                while (true)
                {
                    if (_stopping) return;
                    if (_due != Disarmed)
                    {
                        var remaining = _due - _time.GetTimestamp();
                        if (remaining <= 0) break;
                        _waitingFor = _due;
                        // Rounded up to whole milliseconds, so the thread never wakes just before the time and spins.
                        var ms = Math.Ceiling(remaining * 1000.0 / _time.TimestampFrequency);
                        Monitor.Wait(_gate, ms >= int.MaxValue ? int.MaxValue : (int)ms);
                    }
                    else
                    {
                        _waitingFor = Disarmed;
                        Monitor.Wait(_gate);
                    }
                }

                _due = Disarmed;
                _waitingFor = Disarmed;
            }

            _fired();
        }
    }

    /// <summary>Stops the thread; a callback running meanwhile finishes first.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            _stopping = true;
            Monitor.Pulse(_gate);
        }

        if (Thread.CurrentThread != _thread) _thread.Join();
    }
}

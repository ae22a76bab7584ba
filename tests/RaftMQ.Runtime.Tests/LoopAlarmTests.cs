namespace RaftMQ.Runtime.Tests;

/// <summary>
/// The loop's wake-up thread: it fires once per due time, never before it, at once when the time is moved earlier,
/// and not at the earlier time when it is moved later.
/// </summary>
public sealed class LoopAlarmTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);
    private static readonly TimeProvider Time = TimeProvider.System;

    private static long In(TimeSpan span) => Time.GetTimestamp() + (long)(span.TotalSeconds * Time.TimestampFrequency);

    private sealed class Firings
    {
        private readonly List<long> _at = [];
        private TaskCompletionSource _next = NewSignal();

        private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Fired()
        {
            lock (_at)
            {
                _at.Add(Time.GetTimestamp());
                _next.TrySetResult();
            }
        }

        public long[] Times
        {
            get
            {
                lock (_at) return [.. _at];
            }
        }

        /// <summary>Waits until at least <paramref name="count"/> firings happened, within the deadline.</summary>
        public async Task WaitForAsync(int count)
        {
            var until = Time.GetTimestamp() + (long)(Deadline.TotalSeconds * Time.TimestampFrequency);
            while (true)
            {
                Task next;
                lock (_at)
                {
                    if (_at.Count >= count) return;
                    if (_next.Task.IsCompleted) _next = NewSignal();
                    next = _next.Task;
                }
                var left = Time.GetElapsedTime(Time.GetTimestamp(), until);
                left.ShouldBeGreaterThan(TimeSpan.Zero, $"the alarm fired {Times.Length} times, not {count}, within {Deadline}");
                try
                {
                    await next.WaitAsync(left); // the next firing, or the deadline (checked above on the next round)
                }
                catch (TimeoutException)
                {
                }
            }
        }
    }

    [Fact]
    public async Task Fires_once_and_not_before_its_time()
    {
        var firings = new Firings();
        using var alarm = new LoopAlarm("test-alarm", Time, firings.Fired);
        var due = In(TimeSpan.FromMilliseconds(30));
        alarm.Set(due);
        await firings.WaitForAsync(1);
        firings.Times[0].ShouldBeGreaterThanOrEqualTo(due);

        // Fired means disarmed: it fires again only when set again.
        var again = In(TimeSpan.FromMilliseconds(10));
        alarm.Set(again);
        await firings.WaitForAsync(2);
        firings.Times[1].ShouldBeGreaterThanOrEqualTo(again);
    }

    [Fact]
    public async Task A_time_moved_later_is_kept_and_the_earlier_one_is_forgotten()
    {
        var firings = new Firings();
        using var alarm = new LoopAlarm("test-alarm", Time, firings.Fired);
        alarm.Set(In(TimeSpan.FromMilliseconds(20)));
        var later = In(TimeSpan.FromMilliseconds(300));
        alarm.Set(later); // what a follower does on every heartbeat
        await firings.WaitForAsync(1);
        firings.Times[0].ShouldBeGreaterThanOrEqualTo(later, "fired at the time it was moved away from");
        firings.Times.Length.ShouldBe(1);
    }

    [Fact]
    public async Task A_time_moved_earlier_wakes_the_sleeping_thread()
    {
        var firings = new Firings();
        using var alarm = new LoopAlarm("test-alarm", Time, firings.Fired);
        var far = In(TimeSpan.FromHours(1));
        alarm.Set(far); // the thread sleeps until then ...
        alarm.Set(In(TimeSpan.FromMilliseconds(20))); // ... unless woken: otherwise this test runs out of its deadline
        await firings.WaitForAsync(1);
        firings.Times[0].ShouldBeLessThan(far);
    }

    [Fact]
    public async Task A_time_beyond_any_wait_sleeps_and_still_obeys_an_earlier_one()
    {
        var firings = new Firings();
        using var alarm = new LoopAlarm("test-alarm", Time, firings.Fired);
        alarm.Set(long.MaxValue - 1); // more milliseconds than a wait can take
        alarm.Set(In(TimeSpan.FromMilliseconds(20)));
        await firings.WaitForAsync(1);
    }

    [Fact]
    public async Task A_time_already_past_fires_at_once()
    {
        var firings = new Firings();
        using var alarm = new LoopAlarm("test-alarm", Time, firings.Fired);
        alarm.Set(Time.GetTimestamp() - 1);
        await firings.WaitForAsync(1);
    }

    [Fact]
    public void Dispose_stops_the_thread_even_while_it_sleeps()
    {
        var firings = new Firings();
        var alarm = new LoopAlarm("test-alarm", Time, firings.Fired);
        alarm.Set(In(TimeSpan.FromHours(1)));
        alarm.Dispose(); // joins the thread: returns only once it has ended
        alarm.Set(Time.GetTimestamp() - 1); // harmless once stopped
        firings.Times.ShouldBeEmpty();
    }
}

namespace RaftMQ.Runtime.Tests;

/// <summary>A clock that moves only when told to; safe to read from any thread (a runtime's alarm thread reads it).</summary>
internal sealed class ManualClock : TimeProvider
{
    private long _ticks;

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public override long GetTimestamp() => Interlocked.Read(ref _ticks);

    public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);
}

using Microsoft.Extensions.Logging;

namespace RaftMQ.Server;

/// <summary>
/// The disk alarm (as RabbitMQ's <c>disk_free_limit</c>): while the file system holding the data directory has less
/// free space than the limit, the leader refuses commands that add data (publish, batch publish, topic creation), so
/// a full disk refuses publishes instead of stopping the node on ENOSPC. The alarm is cluster-wide: a follower's
/// runtime reports its alarm to the leader (<see cref="QueueNode.ReadDiskAlarm"/>), whose admission refuses the same
/// commands while any node's alarm is on. Pops and reads go on: their log entries are small and they free space. Free space is read with statvfs (through <see cref="DriveInfo"/>) at most once per
/// <see cref="CheckInterval"/>; between reads the cached value answers, so a publish costs no system call. The cache
/// is bounded in bytes as well as in time: a fast disk (tmpfs, NVMe) takes far more than the limit in one interval,
/// so <see cref="Admit"/> reads again as soon as the bytes admitted since the last reading could have used half of
/// the room it saw above the limit. Far from the limit that is rare; near it, every publish reads.
/// </summary>
public sealed partial class DiskAlarm
{
    /// <summary>How stale the cached free space may be: bounds what is admitted after the disk crossed the limit.</summary>
    public static readonly TimeSpan CheckInterval = TimeSpan.FromMilliseconds(250);

    private readonly string _directory;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private DiskState _state;
    private long _checkedAt;
    private long _admittedSinceCheck;

    public DiskAlarm(string directory, long limitBytes, TimeProvider time, ILogger logger)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(limitBytes);
        _directory = Path.GetFullPath(directory);
        _time = time;
        _logger = logger;
        LimitBytes = limitBytes;
        _state = new DiskState(false, long.MaxValue, limitBytes, _directory);
        _checkedAt = long.MinValue;
    }

    /// <summary>Refuse new data while fewer bytes than this are free; 0 turns the alarm off.</summary>
    public long LimitBytes { get; }

    /// <summary>
    /// Each admitted byte is written at least twice (the log's entry and the queue's segment file); the cached
    /// reading is used until the admitted bytes, times this, could have taken half the room above the limit.
    /// </summary>
    public const int WriteAmplification = 2;

    /// <summary>The state now: the cached reading if it is fresh, else a new one.</summary>
    public DiskState Current
    {
        get
        {
            lock (_gate) return Read(CheckInterval);
        }
    }

    /// <summary>
    /// How stale the reading a follower reports to its leader may be. A follower admits nothing itself: it stores
    /// whatever the leader sends, as fast as the leader admits it, so only a fresh reading lets it raise its alarm
    /// before that fills its disk (at 50 MB/s of publishes a follower writes about 25 MB in the
    /// <see cref="CheckInterval"/>). One statvfs per report at most every 10 ms; reports come with the driver's
    /// ticks, which an idle node has only with its heartbeats.
    /// </summary>
    public static readonly TimeSpan ReportInterval = TimeSpan.FromMilliseconds(10);

    /// <summary>The state for a follower's report to its leader: read again when older than <see cref="ReportInterval"/>.</summary>
    public DiskState ForReport
    {
        get
        {
            lock (_gate) return Read(ReportInterval);
        }
    }

    /// <summary>
    /// The leader's admission of a command adding <paramref name="bytes"/>: the state to decide on, read again when
    /// the bytes admitted since the last reading may have used the room that reading saw; unless the alarm is on,
    /// the bytes are counted as admitted.
    /// </summary>
    public DiskState Admit(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        lock (_gate)
        {
            var room = _state.FreeBytes - LimitBytes;
            // While the alarm is on nothing is admitted: the time bound alone decides when to look again.
            var stale = LimitBytes > 0 && !_state.Alarm && (_admittedSinceCheck + bytes) * WriteAmplification > room / 2;
            var state = Read(stale ? TimeSpan.Zero : CheckInterval);
            if (!state.Alarm) _admittedSinceCheck += bytes;
            return state;
        }
    }

    /// <summary>The cached reading, unless it is <paramref name="maxAge"/> old or older (or there is none yet).</summary>
    private DiskState Read(TimeSpan maxAge)
    {
        var now = _time.GetTimestamp();
        if (_checkedAt != long.MinValue && _time.GetElapsedTime(_checkedAt, now) < maxAge) return _state;
        _checkedAt = now;
        _admittedSinceCheck = 0;
        var free = FreeBytes();
        var alarm = LimitBytes > 0 && free < LimitBytes;
        if (alarm != _state.Alarm)
        {
            if (alarm) LogRaised(_logger, free / Mb, LimitBytes / Mb, _directory);
            else LogCleared(_logger, free / Mb, LimitBytes / Mb, _directory);
        }
        _state = new DiskState(alarm, free, LimitBytes, _directory);
        return _state;
    }

    private const long Mb = 1024 * 1024;

    private const int ENOSPC = 28; // Linux errno; .NET puts the raw errno in HResult of the IOException it throws

    /// <summary>Whether <paramref name="e"/> or an exception inside it is a write that found the disk full.</summary>
    public static bool IsDiskFull(Exception? e)
    {
        for (; e is not null; e = e.InnerException)
        {
            if (e is AggregateException a) return a.InnerExceptions.Any(IsDiskFull);
            if (e is IOException io && (io.HResult == ENOSPC || io.Message.Contains("No space left", StringComparison.Ordinal))) return true;
        }
        return false;
    }

    /// <summary>Free bytes for an unprivileged writer (statvfs f_bavail) on the file system of the data directory.</summary>
    private long FreeBytes()
    {
        // The data directory may not exist yet (before the first start): its nearest existing parent is on the same
        // file system unless a mount is about to be created under it, which a running node does not see.
        var dir = new DirectoryInfo(_directory);
        while (dir is { Exists: false, Parent: not null }) dir = dir.Parent;
        try
        {
            return new DriveInfo(dir!.FullName).AvailableFreeSpace;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            // Cannot tell: do not refuse publishes for a failed statvfs; the WAL's own errors still stop the node.
            LogUnknown(_logger, _directory, e.Message);
            return long.MaxValue;
        }
    }

    [LoggerMessage(EventId = 20, Level = LogLevel.Warning,
        Message = "Disk alarm: {FreeMb} MB free under {Directory}, below the limit of {LimitMb} MB; publishes and topic creation are refused (507 disk-full) until space is freed")]
    private static partial void LogRaised(ILogger logger, long freeMb, long limitMb, string directory);

    [LoggerMessage(EventId = 21, Level = LogLevel.Information,
        Message = "Disk alarm cleared: {FreeMb} MB free under {Directory}, limit {LimitMb} MB; publishes are accepted again")]
    private static partial void LogCleared(ILogger logger, long freeMb, long limitMb, string directory);

    [LoggerMessage(EventId = 22, Level = LogLevel.Warning, Message = "Disk alarm: cannot read the free space under {Directory}: {Error}")]
    private static partial void LogUnknown(ILogger logger, string directory, string error);
}

/// <summary>One reading of the disk alarm.</summary>
public sealed record DiskState(bool Alarm, long FreeBytes, long LimitBytes, string Directory)
{
    /// <summary>The cluster index of the node whose alarm this is, when not the leader's own (a follower reported it).</summary>
    public int? Node { get; init; }
}

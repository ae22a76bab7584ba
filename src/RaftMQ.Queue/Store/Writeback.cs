using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace RaftMQ.Queue.Store;

/// <summary>
/// Starts the kernel's writeback of the segment bytes the store wrote, a little at a time, on a thread of its own.
/// The store never fsyncs its segments (the Raft log is the durable copy), so without this their dirty pages pile
/// up until a snapshot's fsync or the kernel's own writeback flushes them in one burst, and the Raft log's fsyncs
/// queue behind that burst. Every <see cref="QueueStoreOptions.WritebackBytes"/> written, the ranges written since
/// are handed to the thread, which asks the kernel to start writing them out (Linux <c>sync_file_range</c> with
/// <c>SYNC_FILE_RANGE_WRITE</c>, which does not wait for the disk). Advisory only: nothing waits for it and nothing
/// depends on it, so an error is ignored (a real disk fault shows up in the snapshot's fsync). At most one batch is
/// in flight; while the thread is busy the ranges grow and go with the next batch.
/// </summary>
internal sealed partial class Writeback : IDisposable
{
    private const uint SyncFileRangeWrite = 2;

    private readonly long _threshold;
    private readonly List<Segment> _dirty = [];
    private readonly AutoResetEvent _signal = new(false); // no spinning before it sleeps (SemaphoreSlim spins)
    private (SafeFileHandle Handle, long From, long Count)[]? _batch; // handed to the thread; null once taken
    private Thread? _thread;
    private long _written;
    private volatile bool _stopping;
    private bool _unsupported;

    public Writeback(long threshold) => _threshold = threshold;

    /// <summary>Notes that <paramref name="count"/> bytes at <paramref name="position"/> of <paramref name="segment"/> were written (loop thread).</summary>
    public void Written(Segment segment, long position, int count)
    {
        if (_threshold <= 0 || _unsupported || !OperatingSystem.IsLinux()) return;
        if (segment.WritebackEnd == segment.WritebackFrom) _dirty.Add(segment);
        segment.WritebackEnd = Math.Max(segment.WritebackEnd, position + count);
        _written += count;
        if (_written < _threshold || Volatile.Read(ref _batch) is not null) return;
        var batch = new (SafeFileHandle, long, long)[_dirty.Count];
        var n = 0;
        foreach (var s in _dirty)
        {
            if (s.HandleForWriteback is { } handle) batch[n++] = (handle, s.WritebackFrom, s.WritebackEnd - s.WritebackFrom);
            s.WritebackFrom = s.WritebackEnd;
        }
        _dirty.Clear();
        _written = 0;
        if (n == 0) return;
        Volatile.Write(ref _batch, n == batch.Length ? batch : batch[..n]);
        _thread ??= StartThread();
        _signal.Set();
    }

    private Thread StartThread()
    {
        var thread = new Thread(Run) { IsBackground = true, Name = "raftmq-queue-writeback" };
        thread.Start();
        return thread;
    }

    private void Run()
    {
        while (true)
        {
            _signal.WaitOne();
            if (_stopping) return;
            var batch = Volatile.Read(ref _batch)!;
            foreach (var (handle, from, count) in batch)
            {
                try
                {
                    if (SyncFileRange(handle, from, count, SyncFileRangeWrite) != 0
                        && Marshal.GetLastPInvokeError() is 38 or 29) // ENOSYS, ESPIPE: not on this system or file
                    {
                        _unsupported = true;
                    }
                }
                catch (ObjectDisposedException)
                {
                    // The segment was consumed or retired meanwhile: nothing to write out.
                }
            }
            Volatile.Write(ref _batch, null);
        }
    }

    [LibraryImport("libc", EntryPoint = "sync_file_range", SetLastError = true)]
    private static partial int SyncFileRange(SafeFileHandle fd, long offset, long nbytes, uint flags);

    public void Dispose()
    {
        _stopping = true;
        if (_thread is not null)
        {
            _signal.Set();
            _thread.Join();
        }
        _signal.Dispose();
    }
}

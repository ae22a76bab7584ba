using System.Runtime.InteropServices;
using RaftMQ.Storage;

namespace RaftMQ.Hosting;

/// <summary>
/// One node process per data directory: an exclusive <c>flock</c> on <c>DIR/node.lock</c>, held until the process
/// exits (the kernel releases it then, SIGKILL included). A second node started on the same directory — the same
/// command run twice, or two nodes given one <c>--data-dir</c> — must stop before it touches anything there: at start
/// a node deletes the queue's segment files of the previous run (they are rebuilt from the snapshot and the log), so
/// it would delete those of the node that runs, and it would write the same log.
/// </summary>
public sealed partial class DataDirectoryLock : IDisposable
{
    /// <summary>The lock file's name in the data directory.</summary>
    public const string FileName = "node.lock";

    private readonly int _fd;
    private bool _disposed;

    private DataDirectoryLock(int fd) => _fd = fd;

    /// <summary>
    /// Takes the lock, creating the directory (owner-only) if it is missing. Returns null where no lock can be had for
    /// a reason that is not another process (not Linux, a directory that cannot be created, a read-only file system
    /// without the lock file, a file system without locks): the node's start then reports what it finds itself.
    /// Throws <see cref="DataDirectoryInUseException"/> when another process holds it.
    /// </summary>
    public static DataDirectoryLock? Acquire(string dataDirectory)
    {
        if (!OperatingSystem.IsLinux()) return null;
        try
        {
            PhysicalFileSystem.CreateDirectoryOwnerOnly(dataDirectory);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
        var path = Path.Combine(dataDirectory, FileName);
        // Read-only is enough for flock, so a node on a file system remounted read-only still gets the lock (and then
        // reports the read-only file system where it first writes).
        var fd = Open(path, ORdOnly | OCreat | OCloExec, 0b110_000_000);
        if (fd < 0) return null;
        if (FLock(fd, LockEx | LockNb) == 0) return new DataDirectoryLock(fd);
        var errno = Marshal.GetLastPInvokeError();
        Close(fd);
        if (errno == EWouldBlock)
        {
            throw new DataDirectoryInUseException(
                $"the data directory {Path.GetFullPath(dataDirectory)} is in use by another node process (it holds {FileName} there): "
                + "stop that node first, or give this node a data directory of its own (--data-dir)");
        }
        return null;
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        Close(_fd); // releases the lock
    }

    private const int ORdOnly = 0;
    private const int OCreat = 0x40;       // Linux, every architecture .NET runs on
    private const int OCloExec = 0x80000;  // Linux x64 and arm64
    private const int LockEx = 2;
    private const int LockNb = 4;
    private const int EWouldBlock = 11;

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "flock", SetLastError = true)]
    private static partial int FLock(int fd, int operation);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}

/// <summary>Another process holds the data directory's lock (<see cref="DataDirectoryLock"/>).</summary>
public sealed class DataDirectoryInUseException(string message) : Exception(message);

using RaftMQ.Storage;

namespace RaftMQ.Hosting;

/// <summary>
/// One node process per data directory: an exclusive <c>flock</c> on <c>DIR/node.lock</c>, held until the process
/// exits (the kernel releases it then, SIGKILL included). A second node started on the same directory — the same
/// command run twice, or two nodes given one <c>--data-dir</c> — must stop before it touches anything there: at start
/// a node deletes the queue's segment files of the previous run (they are rebuilt from the snapshot and the log), so
/// it would delete those of the node that runs, and it would write the same log.
/// </summary>
public static class DataDirectoryLock
{
    /// <summary>The lock file's name in the data directory.</summary>
    public const string FileName = "node.lock";

    /// <summary>The HResult of the IOException an open throws when another process holds the file's flock: EWOULDBLOCK
    /// (Linux errno; .NET puts the raw errno in HResult on Unix).</summary>
    private const int EWouldBlock = 11;

    /// <summary>
    /// Takes the lock (<see cref="PhysicalFileSystem.Lock"/>, the one the log's directory has too), creating the
    /// directory (owner-only) if it is missing; disposing the handle releases it. Returns null where no lock can be had
    /// for a reason that is not another process (not Linux, a directory that cannot be created, a read-only file system:
    /// .NET locks only a file open for writing; a file system without locks gives a handle that locks nothing): the node's start then
    /// reports what it finds itself. Throws <see cref="DataDirectoryInUseException"/> when another process holds it.
    /// </summary>
    public static IDisposable? Acquire(string dataDirectory)
    {
        if (!OperatingSystem.IsLinux()) return null;
        try
        {
            PhysicalFileSystem.CreateDirectoryOwnerOnly(dataDirectory);
            return PhysicalFileSystem.Instance.Lock(Path.Combine(dataDirectory, FileName));
        }
        catch (IOException e) when (e.HResult == EWouldBlock)
        {
            throw new DataDirectoryInUseException(
                $"the data directory {Path.GetFullPath(dataDirectory)} is in use by another node process (it holds {FileName} there): "
                + "stop that node first, or give this node a data directory of its own (--data-dir)");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}

/// <summary>Another process holds the data directory's lock (<see cref="DataDirectoryLock"/>).</summary>
public sealed class DataDirectoryInUseException(string message) : Exception(message);

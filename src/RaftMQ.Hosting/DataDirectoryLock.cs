using System.Runtime.InteropServices;
using RaftMQ.Storage;

namespace RaftMQ.Hosting;

/// <summary>
/// One node process per data directory, and a data directory the node can write: an exclusive <c>flock</c> on
/// <c>DIR/node.lock</c>, held until the process exits (the kernel releases it then, SIGKILL included). A second node
/// started on the same directory — the same command run twice, or two nodes given one <c>--data-dir</c> — must stop
/// before it touches anything there: at start a node deletes the queue's segment files of the previous run (they are
/// rebuilt from the snapshot and the log), so it would delete those of the node that runs, and it would write the
/// same log. Taking the lock creates the directory and opens a file in it for writing, so it is also the node's
/// first check that it can write there: a directory it cannot create or write stops it at once, naming the
/// directory and the system's reason, before it asks a cluster to add it or finds its secret.
/// </summary>
public sealed class DataDirectoryLock : IDisposable
{
    /// <summary>The lock file's name in the data directory.</summary>
    public const string FileName = "node.lock";

    /// <summary>The HResult of the IOException an open throws when another process holds the file's flock: EWOULDBLOCK
    /// (Linux errno; .NET puts the raw errno in HResult on Unix).</summary>
    private const int EWouldBlock = 11;

    private const string Remedy = "the node needs a directory it can create and write (--data-dir)";

    private readonly string _directory;
    private readonly IReadOnlyList<string> _created;
    private IDisposable? _file;

    private DataDirectoryLock(string directory, IReadOnlyList<string> created, IDisposable? file)
    {
        _directory = directory;
        _created = created;
        _file = file;
    }

    /// <summary>Whether this start created the data directory (it did not exist before <see cref="Acquire"/>).</summary>
    public bool CreatedDirectory => _created.Count > 0;

    /// <summary>
    /// Creates the directory (owner-only) and every missing parent, and takes the lock
    /// (<see cref="PhysicalFileSystem.Lock"/>, the one the log's directory has too: an open for writing with
    /// <see cref="FileShare.None"/>); disposing the result releases it. Throws
    /// <see cref="DataDirectoryInUseException"/> when another process holds it, and
    /// <see cref="DataDirectoryUnusableException"/> when the directory cannot be created or the lock file cannot be
    /// opened for writing (permission denied, a read-only file system, a part of the path that is a file...). Not on
    /// Linux the directory is created but nothing is locked. A file system without locks gives a handle that locks
    /// nothing.
    /// </summary>
    public static DataDirectoryLock Acquire(string dataDirectory)
    {
        ArgumentException.ThrowIfNullOrEmpty(dataDirectory);
        var full = Path.GetFullPath(dataDirectory);
        var created = Missing(full);
        try
        {
            PhysicalFileSystem.CreateDirectoryOwnerOnly(full);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DataDirectoryUnusableException($"the data directory {full} cannot be created: {Reason(e, full)}; {Remedy}");
        }

        if (!OperatingSystem.IsLinux()) return new DataDirectoryLock(full, created, null);
        try
        {
            return new DataDirectoryLock(full, created, PhysicalFileSystem.Instance.Lock(Path.Combine(full, FileName)));
        }
        catch (IOException e) when (e.HResult == EWouldBlock)
        {
            throw new DataDirectoryInUseException(
                $"the data directory {full} is in use by another node process (it holds {FileName} there): "
                + "stop that node first, or give this node a data directory of its own (--data-dir)");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DataDirectoryUnusableException(
                $"the data directory {full} is not writable: {Reason(e, full)} (opening {FileName} there for writing); {Remedy}");
        }
    }

    /// <summary>
    /// For a start that stops before it stored anything (a joining node refused for having no secret, a join the
    /// cluster refused): when this start created the data directory, removes the lock file and the directories it
    /// created, each only if empty, so the refused start leaves nothing behind; then releases the lock. A directory
    /// that existed before keeps its lock file (an empty file).
    /// </summary>
    public void Abandon()
    {
        if (CreatedDirectory)
        {
            try
            {
                File.Delete(Path.Combine(_directory, FileName));
                foreach (var directory in _created) Directory.Delete(directory, recursive: false); // deepest first
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Not empty (another process wrote there meanwhile) or not removable: it stays, harmless.
            }
        }
        Dispose();
    }

    /// <summary>Releases the lock (the kernel also does when the process exits).</summary>
    public void Dispose()
    {
        _file?.Dispose();
        _file = null;
    }

    /// <summary><paramref name="full"/> and its parents that do not exist, deepest first.</summary>
    private static List<string> Missing(string full)
    {
        var missing = new List<string>();
        for (var p = full; p is not null && !Directory.Exists(p) && !File.Exists(p); p = Path.GetDirectoryName(p)) missing.Add(p);
        return missing;
    }

    /// <summary>
    /// Why an operation on <paramref name="path"/> failed, in the system's words ("Permission denied", "Read-only file
    /// system"): .NET on Unix keeps the errno as the HResult of the IOException it makes from one, alone or inside an
    /// UnauthorizedAccessException. A part of the path that is a file (ENOTDIR, which .NET reports as "could not find
    /// a part of the path", or EEXIST for the directory itself) is named.
    /// </summary>
    internal static string Reason(Exception e, string path)
    {
        for (var p = Path.GetFullPath(path); p is not null; p = Path.GetDirectoryName(p))
        {
            if (File.Exists(p)) return $"Not a directory ({p} is a file)"; // ENOTDIR
        }
        for (Exception? x = e; x is not null; x = x.InnerException)
        {
            if (x.GetType() == typeof(IOException) && x.HResult is > 0 and < 4096) return Marshal.GetPInvokeErrorMessage(x.HResult);
        }
        return e is DirectoryNotFoundException or FileNotFoundException ? "No such file or directory" : e.Message; // ENOENT
    }
}

/// <summary>Another process holds the data directory's lock (<see cref="DataDirectoryLock"/>).</summary>
public sealed class DataDirectoryInUseException(string message) : Exception(message);

/// <summary>The data directory cannot be created or written (<see cref="DataDirectoryLock"/>); the message names it and why.</summary>
public sealed class DataDirectoryUnusableException(string message) : Exception(message);

using System.ComponentModel;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace RaftMQ.Storage;

/// <summary>
/// The real file system: <see cref="RandomAccess"/> on <see cref="SafeFileHandle"/>s, fsync through
/// <see cref="RandomAccess.FlushToDisk"/>. Directories it creates are the owner's only (0700) and so are files (0600):
/// the log holds every message the application committed.
/// </summary>
public sealed partial class PhysicalFileSystem : IStorageFileSystem
{
    /// <summary>Mode of the files this file system creates on Unix.</summary>
    public const UnixFileMode OwnerOnlyFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>Mode of the directories this file system creates on Unix.</summary>
    public const UnixFileMode OwnerOnlyDirectory = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    /// <summary>The one instance.</summary>
    public static PhysicalFileSystem Instance { get; } = new();

    private PhysicalFileSystem()
    {
    }

    public void CreateDirectory(string path) => CreateDirectoryOwnerOnly(path);

    /// <summary>
    /// Creates <paramref name="path"/> and every missing parent with <see cref="OwnerOnlyDirectory"/> (like
    /// <c>mkdir -p</c>, but the mode applies to the parents too). Directories that exist, say one the operator chose,
    /// keep their mode.
    /// </summary>
    public static void CreateDirectoryOwnerOnly(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(path);
            return;
        }

        var full = Path.GetFullPath(path);
        if (Directory.Exists(full)) return;
        if (Path.GetDirectoryName(full) is { } parent) CreateDirectoryOwnerOnly(parent);
        // Another process may create it meanwhile: CreateDirectory succeeds on an existing directory.
        Directory.CreateDirectory(full, OwnerOnlyDirectory);
    }

    public IReadOnlyList<string> ListFiles(string directory, string searchPattern) =>
        Directory.Exists(directory) ? Directory.GetFiles(directory, searchPattern) : [];

    public bool FileExists(string path) => File.Exists(path);

    public IStorageFile Open(string path, bool create)
    {
        var handle = File.OpenHandle(path, create ? FileMode.CreateNew : FileMode.Open, FileAccess.ReadWrite, FileShare.Read);
        try
        {
            if (create && !OperatingSystem.IsWindows()) File.SetUnixFileMode(handle, OwnerOnlyFile);
            return new PhysicalFile(handle);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    public void Delete(string path) => File.Delete(path);

    public void Rename(string source, string destination) => File.Move(source, destination, overwrite: true);

    public void SyncDirectory(string path)
    {
        // .NET cannot open a directory as a SafeFileHandle on Unix, so fsync it through libc. Windows (NTFS)
        // journals directory changes with the metadata and has no directory fsync.
        if (OperatingSystem.IsWindows()) return;
        var fd = Open(path, 0 /* O_RDONLY */);
        if (fd < 0) throw new IOException($"open({path}) for directory fsync failed", new Win32Exception(Marshal.GetLastPInvokeError()));
        try
        {
            if (Fsync(fd) != 0)
                throw new IOException($"fsync of directory {path} failed", new Win32Exception(Marshal.GetLastPInvokeError()));
        }
        finally
        {
            _ = Close(fd);
        }
    }

    public IDisposable Lock(string path)
    {
        // FileShare.None takes an advisory lock (flock on Unix) that the kernel drops when the process dies.
        var options = new FileStreamOptions { Mode = FileMode.OpenOrCreate, Access = FileAccess.ReadWrite, Share = FileShare.None };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = OwnerOnlyFile;
        return new FileStream(path, options);
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);

    private sealed class PhysicalFile(SafeFileHandle handle) : IStorageFile
    {
        public long Length => RandomAccess.GetLength(handle);

        public int Read(long offset, Span<byte> buffer)
        {
            var total = 0;
            while (total < buffer.Length)
            {
                var n = RandomAccess.Read(handle, buffer[total..], offset + total);
                if (n == 0) break;
                total += n;
            }
            return total;
        }

        public void Write(long offset, ReadOnlySpan<byte> data) => RandomAccess.Write(handle, data, offset);

        public void Sync() => RandomAccess.FlushToDisk(handle);

        public void SetLength(long length) => RandomAccess.SetLength(handle, length);

        public void Dispose() => handle.Dispose();
    }

    /// <summary>
    /// Makes <paramref name="newPath"/> a hard link to <paramref name="existing"/>. False when this file system cannot
    /// link them (another device, no hard links, too many links); other failures throw.
    /// </summary>
    public bool TryLink(string existing, string newPath)
    {
        if (OperatingSystem.IsWindows()) return false;
        if (Link(existing, newPath) == 0) return true;
        var errno = Marshal.GetLastPInvokeError();
        // EPERM (1), EXDEV (18), EMLINK (31), ENOTSUP/EOPNOTSUPP (95 on Linux, 45 on macOS).
        if (errno is 1 or 18 or 31 or 95 or 45) return false;
        throw new IOException($"cannot link {existing} as {newPath}", new Win32Exception(errno));
    }

    [LibraryImport("libc", EntryPoint = "link", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Link(string existing, string newPath);
}

using System.ComponentModel;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace RaftMQ.Storage;

/// <summary>The real file system: <see cref="RandomAccess"/> on <see cref="SafeFileHandle"/>s, fsync through <see cref="RandomAccess.FlushToDisk"/>.</summary>
public sealed partial class PhysicalFileSystem : IStorageFileSystem
{
    /// <summary>The one instance.</summary>
    public static PhysicalFileSystem Instance { get; } = new();

    private PhysicalFileSystem()
    {
    }

    public void CreateDirectory(string path) => Directory.CreateDirectory(path);

    public IReadOnlyList<string> ListFiles(string directory, string searchPattern) =>
        Directory.Exists(directory) ? Directory.GetFiles(directory, searchPattern) : [];

    public bool FileExists(string path) => File.Exists(path);

    public IStorageFile Open(string path, bool create) =>
        new PhysicalFile(File.OpenHandle(path, create ? FileMode.CreateNew : FileMode.Open, FileAccess.ReadWrite, FileShare.Read));

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

    public IDisposable Lock(string path) =>
        // FileShare.None takes an advisory lock (flock on Unix) that the kernel drops when the process dies.
        File.Open(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);

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

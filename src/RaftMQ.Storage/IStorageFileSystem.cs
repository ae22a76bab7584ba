namespace RaftMQ.Storage;

/// <summary>
/// The file operations the storage uses, so tests can inject torn writes, lost unsynced data, bit flips and fsync
/// failures. Durability contract (POSIX): file data is durable only after <see cref="IStorageFile.Sync"/>; a
/// created, renamed or deleted name is durable only after <see cref="SyncDirectory"/> on its directory.
/// </summary>
public interface IStorageFileSystem
{
    /// <summary>Creates <paramref name="path"/> and its parents if missing.</summary>
    void CreateDirectory(string path);

    /// <summary>Full paths of the files directly in <paramref name="directory"/> whose names match <paramref name="searchPattern"/>.</summary>
    IReadOnlyList<string> ListFiles(string directory, string searchPattern);

    /// <summary>Whether a file exists at <paramref name="path"/>.</summary>
    bool FileExists(string path);

    /// <summary>Opens an existing file (<paramref name="create"/> false) or creates a new one that must not exist.</summary>
    IStorageFile Open(string path, bool create);

    /// <summary>Deletes a file; no error when it is missing.</summary>
    void Delete(string path);

    /// <summary>Renames <paramref name="source"/> to <paramref name="destination"/>, atomically replacing it.</summary>
    void Rename(string source, string destination);

    /// <summary>Makes the directory's entries (creations, renames, deletions) durable: fsync on the directory.</summary>
    void SyncDirectory(string path);

    /// <summary>Takes an exclusive lock on <paramref name="path"/> (created if missing) for the life of the handle.</summary>
    IDisposable Lock(string path);
}

/// <summary>An open file with positional I/O.</summary>
public interface IStorageFile : IDisposable
{
    /// <summary>Current length in bytes.</summary>
    long Length { get; }

    /// <summary>Reads up to <c>buffer.Length</c> bytes at <paramref name="offset"/>; returns fewer only at end of file.</summary>
    int Read(long offset, Span<byte> buffer);

    /// <summary>Writes all of <paramref name="data"/> at <paramref name="offset"/>.</summary>
    void Write(long offset, ReadOnlySpan<byte> data);

    /// <summary>Flushes data and metadata to stable storage (fsync).</summary>
    void Sync();

    /// <summary>Cuts or extends the file to <paramref name="length"/>.</summary>
    void SetLength(long length);
}

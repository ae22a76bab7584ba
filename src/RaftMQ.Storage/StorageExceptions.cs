namespace RaftMQ.Storage;

/// <summary>
/// The stored data is damaged in a way recovery must not repair on its own (a record that may have been
/// acknowledged is unreadable, a segment is missing, a header is wrong). The node must not start on this
/// directory; <see cref="Exception.Message"/> names the file, the offset and what an operator can do.
/// </summary>
public sealed class StorageCorruptedException : Exception
{
    public StorageCorruptedException(string message, string? path = null, long offset = -1, Exception? inner = null)
        : base(message, inner)
    {
        FilePath = path;
        Offset = offset;
    }

    /// <summary>The damaged file, when one is known.</summary>
    public string? FilePath { get; }

    /// <summary>Byte offset of the damage in <see cref="FilePath"/>, or -1.</summary>
    public long Offset { get; }
}

/// <summary>
/// A write or fsync failed. Whether the data reached the disk is unknown, so the storage stops accepting writes
/// (fail-stop): retrying an fsync after an error can report success for pages the kernel already dropped. The
/// node must stop and recover from the directory on restart.
/// </summary>
public sealed class StorageFailedException : Exception
{
    public StorageFailedException(string message, Exception? inner = null) : base(message, inner)
    {
    }
}

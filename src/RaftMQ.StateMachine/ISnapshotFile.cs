namespace RaftMQ.StateMachine;

/// <summary>
/// Implemented by a snapshot stream that reads a complete, durable file which is never written again. A state
/// machine restoring from such a stream may keep referring to byte ranges of the file (for example through a hard
/// link of its own) instead of copying them, which makes a restore independent of the snapshot's size. The stream's
/// position <c>p</c> is the file's byte <c>DataStart + p</c>.
/// </summary>
public interface ISnapshotFile
{
    /// <summary>The file's path, or false when the stream is not backed by a file on the operating system's file system.</summary>
    bool TryGetFile(out string path, out long dataStart);
}

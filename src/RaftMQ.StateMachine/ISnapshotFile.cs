namespace RaftMQ.StateMachine;

/// <summary>
/// Implemented by a snapshot stream whose bytes lie in files that are never written again in those ranges (a
/// committed snapshot and its parts). A state machine restoring from such a stream may keep referring to the files
/// (for example through hard links of its own) instead of copying the bytes, which makes a restore independent of
/// the snapshot's size.
/// </summary>
public interface ISnapshotFile
{
    /// <summary>
    /// Where the stream's byte at <paramref name="position"/> lies: a file, the byte's offset in it, and how many
    /// bytes from there on are contiguous in that file. False when that byte is not in a file on the operating
    /// system's file system (or the position is outside the stream).
    /// </summary>
    bool TryGetFileRange(long position, out string path, out long fileOffset, out long length);
}

/// <summary>
/// Implemented by a snapshot destination that can take a range of a file without copying it (by hard-linking the
/// file into the snapshot). A state machine whose data lies in immutable files offers those ranges here and writes
/// the bytes itself when this returns false.
/// </summary>
public interface ISnapshotFileSink
{
    /// <summary>
    /// Appends bytes [<paramref name="offset"/>, +<paramref name="length"/>) of <paramref name="path"/> to the snapshot.
    /// The caller promises those bytes never change afterwards (bytes after them may). False when the destination
    /// cannot take files: nothing was appended.
    /// </summary>
    bool TryAppendFileRange(string path, long offset, long length);
}

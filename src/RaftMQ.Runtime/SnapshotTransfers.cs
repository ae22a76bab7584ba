using RaftMQ.Raft;
using RaftMQ.Storage;

namespace RaftMQ.Runtime;

/// <summary>
/// The leader's side of InstallSnapshot (§7, Figure 13): streams the newest snapshot file to one follower in bounded
/// chunks, one in flight at a time, resuming from the offset the follower confirms. A transfer starts with an empty
/// probe chunk so a follower that already holds part of the same snapshot says where to continue.
/// </summary>
internal sealed class OutgoingSnapshot : IDisposable
{
    private readonly SnapshotStream _stream;
    private readonly byte[] _buffer;
    private bool _doneSent;
    private bool _awaitingResponse;
    private ulong? _expectedNextOffset; // null after the probe: the follower says where to go on

    public OutgoingSnapshot(ulong peer, SnapshotStream stream, int chunkBytes, long now)
    {
        Peer = peer;
        _stream = stream;
        _buffer = new byte[chunkBytes];
        LastActivity = now;
    }

    public ulong Peer { get; }

    public SnapshotMetadata Snapshot => _stream.Metadata;

    /// <summary>Timestamp of the last chunk sent or answered, for the transfer timeout.</summary>
    public long LastActivity { get; private set; }

    public SnapshotChunk Probe(ulong from, ulong term)
    {
        _awaitingResponse = true;
        _expectedNextOffset = null;
        return new(from, Peer, term, Snapshot, 0, ReadOnlyMemory<byte>.Empty, _stream.Length == 0 && (_doneSent = true));
    }

    /// <summary>
    /// Takes an answer from the follower: true only for the answer to the chunk last sent (the one that confirms it,
    /// or any answer to the probe). One chunk is in flight at a time, so any other answer is a duplicate or a late
    /// one; acting on it would put a second chunk in flight, and on a network that duplicates, chunks and answers
    /// would multiply without bound. A transfer whose answer never comes times out and starts again with a probe.
    /// </summary>
    public bool TakeResponse(SnapshotChunkResponse response)
    {
        if (!_awaitingResponse) return false;
        if (!response.Failed && _expectedNextOffset is { } expected && response.NextOffset != expected) return false;
        _awaitingResponse = false;
        return true;
    }

    /// <summary>The follower's answer: the next chunk to send, or null when the transfer is complete.</summary>
    public SnapshotChunk? Next(SnapshotChunkResponse response, ulong from, ulong term, long now)
    {
        LastActivity = now;
        var length = (ulong)_stream.Length;
        if (response.NextOffset >= length && _doneSent) return null;
        var offset = Math.Min(response.NextOffset, length);
        _stream.Seek((long)offset, SeekOrigin.Begin);
        var read = 0;
        while (read < _buffer.Length && offset + (ulong)read < length)
        {
            var n = _stream.Read(_buffer, read, _buffer.Length - read);
            if (n == 0) throw new InvalidDataException($"snapshot {Snapshot} ended early at {offset + (ulong)read} of {length} bytes");
            read += n;
        }
        var done = offset + (ulong)read == length;
        _doneSent |= done;
        _awaitingResponse = true;
        _expectedNextOffset = offset + (ulong)read;
        return new SnapshotChunk(from, Peer, term, Snapshot, offset, _buffer.AsSpan(0, read).ToArray(), done);
    }

    public void Dispose() => _stream.Dispose();
}

/// <summary>
/// The follower's side: chunks in order go into a snapshot file being written; out-of-order or repeated chunks are
/// answered with the offset expected next. When the last chunk arrives the core is told, through
/// <see cref="InstallSnapshot"/>, that the snapshot is here; the file is committed (fsynced, renamed) only if the core
/// adopts it (NodeDriver.StepInstall says why).
/// </summary>
internal sealed class IncomingSnapshot : IDisposable
{
    private readonly SnapshotWriter _writer;

    public IncomingSnapshot(SnapshotMetadata snapshot, SnapshotWriter writer)
    {
        Snapshot = snapshot;
        _writer = writer;
    }

    public SnapshotMetadata Snapshot { get; }

    public ulong Received { get; private set; }

    /// <summary>Takes a chunk; true when the snapshot is complete (not yet committed to the store: <see cref="Commit"/>).</summary>
    public bool Accept(SnapshotChunk chunk)
    {
        if (chunk.Offset != Received) return false;
        if (!chunk.Data.IsEmpty)
        {
            _writer.Write(chunk.Data.Span);
            Received += (ulong)chunk.Data.Length;
        }
        return chunk.Done;
    }

    /// <summary>Makes the complete snapshot the store's newest (the core adopted it).</summary>
    public void Commit() => _writer.Commit();

    public void Dispose() => _writer.Dispose();
}

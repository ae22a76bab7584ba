using RaftMQ.Raft;
using RaftMQ.Runtime;
using RaftMQ.Storage;
using RaftMQ.Transport;

namespace RaftMQ.Hosting;

/// <summary>
/// Checks at start-up that the bounds of the layers fit each other, so that no input within the documented limits
/// can stop a node: every command the core accepts must be storable, and every message it can send (the largest
/// AppendEntries, the largest snapshot chunk) must fit in one transport frame. Each layer keeps its own bounds in
/// its options class; this is the one place they are compared.
/// </summary>
public static class NodeLimits
{
    /// <summary>Throws <see cref="ArgumentException"/> naming the two bounds that do not fit.</summary>
    public static void Validate(RaftOptions raft, NodeDriverOptions node, StorageOptions storage, TcpTransportOptions transport)
    {
        ArgumentNullException.ThrowIfNull(raft);
        ArgumentNullException.ThrowIfNull(node);
        ArgumentNullException.ThrowIfNull(storage);
        ArgumentNullException.ThrowIfNull(transport);
        storage.Validate();
        if (raft.MaxEntryBytes > storage.MaxEntryBytes)
        {
            throw new ArgumentException(
                $"the consensus core accepts commands of up to {raft.MaxEntryBytes} bytes (RaftOptions.MaxEntryBytes) but storage keeps " +
                $"entries of at most {storage.MaxEntryBytes} (StorageOptions.MaxEntryBytes)");
        }
        var append = RaftMessageCodec.MaxAppendEntriesSize(raft.MaxBytesPerAppend, raft.MaxEntryBytes);
        if (append > transport.MaxFrameBytes)
        {
            throw new ArgumentException(
                $"an AppendEntries can take {append} bytes (RaftOptions.MaxBytesPerAppend {raft.MaxBytesPerAppend}, MaxEntryBytes " +
                $"{raft.MaxEntryBytes}) but a transport frame holds at most {transport.MaxFrameBytes} (TcpTransportOptions.MaxFrameBytes)");
        }
        var chunk = RaftMessageCodec.MaxSnapshotChunkSize(node.SnapshotChunkBytes);
        if (chunk > transport.MaxFrameBytes)
        {
            throw new ArgumentException(
                $"a snapshot chunk can take {chunk} bytes (SnapshotChunkBytes {node.SnapshotChunkBytes}) but a transport frame holds at most " +
                $"{transport.MaxFrameBytes} (TcpTransportOptions.MaxFrameBytes)");
        }
        if (node.Forwarding is { } forwarding)
        {
            forwarding.Validate();
            var proposal = RaftMessageCodec.MaxForwardProposalSize(raft.MaxEntryBytes);
            var result = RaftMessageCodec.MaxForwardResultSize(forwarding.MaxResultBytes);
            if (Math.Max(proposal, result) > transport.MaxFrameBytes)
            {
                throw new ArgumentException(
                    $"a forwarded command or its result can take {Math.Max(proposal, result)} bytes (MaxEntryBytes {raft.MaxEntryBytes}, " +
                    $"ProposalForwarding.MaxResultBytes {forwarding.MaxResultBytes}) but a transport frame holds at most " +
                    $"{transport.MaxFrameBytes} (TcpTransportOptions.MaxFrameBytes)");
            }
        }
        if (node.SnapshotChunkBytes <= 0) throw new ArgumentException("SnapshotChunkBytes must be positive.");
    }
}

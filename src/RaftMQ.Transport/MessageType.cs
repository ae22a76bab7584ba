namespace RaftMQ.Transport;

/// <summary>
/// The first byte of every frame payload. Raft messages use 1–63; the handshake uses 128 and up, so a handshake
/// message after authentication, or a Raft message before it, is recognised as a protocol error.
/// Values are part of the wire format: never renumber, only add.
/// </summary>
public enum MessageType : byte
{
    RequestVote = 1,
    RequestVoteResponse = 2,
    AppendEntries = 3,
    AppendEntriesResponse = 4,
    Heartbeat = 5,
    HeartbeatResponse = 6,
    ReadIndexRequest = 7,
    ReadIndexResponse = 8,
    InstallSnapshot = 9,
    SnapshotChunk = 10,
    SnapshotChunkResponse = 11,
    ForwardProposal = 12,
    ForwardResult = 13,
    DiskAlarmReport = 14,
    /// <summary>A <c>Heartbeat</c> of a leader at the quiet pace (<c>Heartbeat.Quiesced</c>); same fields as Heartbeat.</summary>
    QuietHeartbeat = 15,

    // Membership and leadership transfer take 32 and up.
    TimeoutNow = 32,
    /// <summary>A <c>RequestVote</c> of an election the leader asked for (leadership transfer); same fields as RequestVote.</summary>
    TransferVote = 33,

    HandshakeHello = 128,
    HandshakeChallenge = 129,
    HandshakeProof = 130,
    HandshakeWelcome = 131,
}

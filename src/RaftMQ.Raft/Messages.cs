namespace RaftMQ.Raft;

/// <summary>A message between Raft peers. Every message carries its sender, receiver and the sender's term.</summary>
public abstract record RaftMessage(ulong From, ulong To, ulong Term);

/// <summary>
/// RequestVote (§5.2), or a pre-vote (thesis §9.6) when <paramref name="PreVote"/> is set; a pre-vote carries the term
/// the sender would campaign in. <paramref name="LeadershipTransfer"/> marks the election a leader asked for with
/// <see cref="TimeoutNow"/>: voters answer it even while they still hear from that leader (thesis §3.10, §4.2.3).
/// </summary>
public sealed record RequestVote(
    ulong From, ulong To, ulong Term, ulong LastLogIndex, ulong LastLogTerm, bool PreVote, bool LeadershipTransfer = false)
    : RaftMessage(From, To, Term);

/// <summary>The answer to <see cref="RequestVote"/>.</summary>
public sealed record RequestVoteResponse(ulong From, ulong To, ulong Term, bool Granted, bool PreVote)
    : RaftMessage(From, To, Term);

/// <summary>AppendEntries (§5.3): entries following (<paramref name="PrevLogIndex"/>, <paramref name="PrevLogTerm"/>) and the leader's commit index.</summary>
public sealed record AppendEntries(
    ulong From, ulong To, ulong Term, ulong PrevLogIndex, ulong PrevLogTerm, IReadOnlyList<Entry> Entries, ulong LeaderCommit)
    : RaftMessage(From, To, Term);

/// <summary>
/// The answer to <see cref="AppendEntries"/>. On success <paramref name="Index"/> is the last index the follower now
/// matches. On rejection <paramref name="Index"/> is the rejected PrevLogIndex and (<paramref name="HintIndex"/>,
/// <paramref name="HintTerm"/>) is the follower's last entry that may still match, for fast backtracking (§5.3).
/// <paramref name="WantsCommit"/> (on success only): the follower has requests waiting for it to apply new entries
/// (<see cref="RaftNode.WaitingToApply"/>), so the leader sends it each new commit index at once instead of with the
/// next append or heartbeat.
/// </summary>
public sealed record AppendEntriesResponse(
    ulong From, ulong To, ulong Term, bool Reject, ulong Index, ulong HintIndex, ulong HintTerm, bool WantsCommit = false)
    : RaftMessage(From, To, Term);

/// <summary>
/// A leader's heartbeat: keeps followers from campaigning, carries a safe commit index and, when
/// <paramref name="ReadRound"/> is not 0, asks followers to confirm leadership for pending reads (thesis §6.4).
/// <paramref name="Quiesced"/>: the leader is quiet (<see cref="RaftOptions.QuiescedHeartbeatTicks"/>), its next
/// heartbeat comes at the quiet pace, so the follower waits the quiet election timeout.
/// </summary>
public sealed record Heartbeat(ulong From, ulong To, ulong Term, ulong Commit, ulong ReadRound, bool Quiesced = false)
    : RaftMessage(From, To, Term);

/// <summary>The answer to <see cref="Heartbeat"/>, echoing its read round.</summary>
public sealed record HeartbeatResponse(ulong From, ulong To, ulong Term, ulong ReadRound)
    : RaftMessage(From, To, Term);

/// <summary>A follower forwards a linearizable read to its leader (thesis §6.4).</summary>
public sealed record ReadIndexRequest(ulong From, ulong To, ulong Term, ulong Context)
    : RaftMessage(From, To, Term);

/// <summary>The leader's answer to <see cref="ReadIndexRequest"/>: the index the follower must apply before serving the read.</summary>
public sealed record ReadIndexResponse(ulong From, ulong To, ulong Term, ulong Context, ulong Index)
    : RaftMessage(From, To, Term);

/// <summary>
/// InstallSnapshot (§7): the leader no longer holds the entries this follower needs, so it sends its snapshot. The
/// core sees only the snapshot's metadata: the runtime streams the bytes in <see cref="SnapshotChunk"/> messages and
/// steps the follower's core with this message once the whole snapshot is received and verified.
/// </summary>
public sealed record InstallSnapshot(ulong From, ulong To, ulong Term, SnapshotMetadata Snapshot)
    : RaftMessage(From, To, Term);

/// <summary>
/// One bounded piece of a snapshot being transferred (Figure 13's offset/data/done), sent and received by the
/// runtime, never by the core. A transfer resumes from the offset the receiver last confirmed.
/// </summary>
public sealed record SnapshotChunk(
    ulong From, ulong To, ulong Term, SnapshotMetadata Snapshot, ulong Offset, ReadOnlyMemory<byte> Data, bool Done)
    : RaftMessage(From, To, Term);

/// <summary>The receiver's answer to a <see cref="SnapshotChunk"/>: the offset it expects next, or that it gave up.</summary>
public sealed record SnapshotChunkResponse(ulong From, ulong To, ulong Term, SnapshotMetadata Snapshot, ulong NextOffset, bool Failed)
    : RaftMessage(From, To, Term);

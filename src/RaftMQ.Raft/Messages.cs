namespace RaftMQ.Raft;

/// <summary>A message between Raft peers. Every message carries its sender, receiver and the sender's term.</summary>
public abstract record RaftMessage(ulong From, ulong To, ulong Term);

/// <summary>RequestVote (§5.2), or a pre-vote (thesis §9.6) when <paramref name="PreVote"/> is set; a pre-vote carries the term the sender would campaign in.</summary>
public sealed record RequestVote(ulong From, ulong To, ulong Term, ulong LastLogIndex, ulong LastLogTerm, bool PreVote)
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
/// </summary>
public sealed record AppendEntriesResponse(
    ulong From, ulong To, ulong Term, bool Reject, ulong Index, ulong HintIndex, ulong HintTerm)
    : RaftMessage(From, To, Term);

/// <summary>
/// A leader's heartbeat: keeps followers from campaigning, carries a safe commit index and, when
/// <paramref name="ReadRound"/> is not 0, asks followers to confirm leadership for pending reads (thesis §6.4).
/// </summary>
public sealed record Heartbeat(ulong From, ulong To, ulong Term, ulong Commit, ulong ReadRound)
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

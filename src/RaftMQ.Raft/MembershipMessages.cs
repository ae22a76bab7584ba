namespace RaftMQ.Raft;

/// <summary>
/// A leader handing over leadership (thesis §3.10) tells the target, whose log it has brought up to date, to start an
/// election at once, without waiting for its election timeout and without a pre-vote.
/// </summary>
public sealed record TimeoutNow(ulong From, ulong To, ulong Term)
    : RaftMessage(From, To, Term);

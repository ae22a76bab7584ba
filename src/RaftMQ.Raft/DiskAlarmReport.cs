namespace RaftMQ.Raft;

/// <summary>
/// A node tells the leader about its disk alarm (free space under the node's limit): <paramref name="Alarm"/> with
/// the <paramref name="FreeBytes"/> and <paramref name="LimitBytes"/> it read. Sent by a follower when its alarm or
/// its leader changes, and again every election timeout while the alarm is on, so the leader can refuse new data
/// while any member could not store it (a cluster-wide disk alarm). Not a message of the consensus core: the runtime
/// handles it.
/// </summary>
public sealed record DiskAlarmReport(ulong From, ulong To, ulong Term, bool Alarm, long FreeBytes, long LimitBytes)
    : RaftMessage(From, To, Term);

using RaftMQ.Raft;

namespace RaftMQ.Simulation;

/// <summary>Counters of what the nodes sent and what the network did with it, for RPC and byte bounds in tests.</summary>
public sealed class NetworkStats
{
    /// <summary>Fixed per-message cost in <see cref="BytesSent"/>: ids, term and the fixed fields of the largest message.</summary>
    public const int MessageOverhead = 48;

    private readonly long[] _sentByKind = new long[KindCount];

    private const int KindCount = 9;

    /// <summary>Messages the nodes handed to the network (before interceptors and faults).</summary>
    public long Sent { get; private set; }

    /// <summary>Messages stepped into a receiver.</summary>
    public long Delivered { get; private set; }

    /// <summary>Messages lost to partitions, link loss, interceptors or crashes.</summary>
    public long Dropped { get; internal set; }

    /// <summary>Extra copies the network made.</summary>
    public long Duplicated { get; internal set; }

    /// <summary>Approximate bytes sent: <see cref="MessageOverhead"/> per message plus <see cref="Entry.Size"/> per entry and the bytes of snapshots.</summary>
    public long BytesSent { get; private set; }

    /// <summary>Log entries carried by AppendEntries messages sent.</summary>
    public long EntriesSent { get; private set; }

    /// <summary>AppendEntries rejections sent by followers (each is one round trip of log backtracking).</summary>
    public long AppendRejectionsSent { get; private set; }

    /// <summary>Messages of type <typeparamref name="T"/> sent.</summary>
    public long SentOf<T>() where T : RaftMessage => _sentByKind[KindOf(typeof(T))];

    /// <summary>Requests sent (RequestVote, AppendEntries, Heartbeat, ReadIndexRequest): the lab's "RPC count".</summary>
    public long RequestsSent =>
        SentOf<RequestVote>() + SentOf<AppendEntries>() + SentOf<Heartbeat>() + SentOf<ReadIndexRequest>();

    internal void OnSent(RaftMessage message)
    {
        Sent++;
        _sentByKind[KindOf(message.GetType())]++;
        long bytes = MessageOverhead;
        switch (message)
        {
            case AppendEntries ae:
                EntriesSent += ae.Entries.Count;
                for (int i = 0; i < ae.Entries.Count; i++) bytes += ae.Entries[i].Size;
                break;
            case AppendEntriesResponse { Reject: true }:
                AppendRejectionsSent++;
                break;
            case SnapshotChunk chunk:
                bytes += chunk.Data.Length;
                break;
        }
        BytesSent += bytes;
    }

    internal void OnDelivered() => Delivered++;

    private static int KindOf(Type type) =>
        type == typeof(AppendEntries) ? 0
        : type == typeof(AppendEntriesResponse) ? 1
        : type == typeof(Heartbeat) ? 2
        : type == typeof(HeartbeatResponse) ? 3
        : type == typeof(RequestVote) ? 4
        : type == typeof(RequestVoteResponse) ? 5
        : type == typeof(ReadIndexRequest) ? 6
        : type == typeof(ReadIndexResponse) ? 7
        : 8;

    public override string ToString() =>
        $"sent={Sent} delivered={Delivered} dropped={Dropped} duplicated={Duplicated} bytes={BytesSent} entries={EntriesSent}";
}

namespace RaftMQ.Raft;

/// <summary>
/// The largest term, log index and snapshot offset a message from a peer may carry. A real cluster never comes near
/// 2^62 (a new term per election, an index per entry), so a larger value is hostile or corrupt input; refusing it keeps
/// every <c>+ 1</c> on a term or index in the core far from overflowing, and stops one message from pushing a node to
/// a term it could never campaign past.
/// </summary>
public static class RaftLimits
{
    /// <summary>Largest term a peer's message may carry (2^62).</summary>
    public const ulong MaxTerm = 1UL << 62;

    /// <summary>Largest log index (and commit index) a peer's message may carry (2^62).</summary>
    public const ulong MaxIndex = 1UL << 62;

    /// <summary>Largest byte offset into a snapshot a peer's message may carry (2^62).</summary>
    public const ulong MaxSnapshotOffset = 1UL << 62;

    /// <summary>
    /// The first term, index or offset of <paramref name="message"/> beyond its bound, as "field = value", or null
    /// when every one is in range. Message types without such fields are always in range.
    /// </summary>
    public static string? FirstOutOfRange(RaftMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (message.Term > MaxTerm) return Field("Term", message.Term);
        return message switch
        {
            RequestVote m => Index("LastLogIndex", m.LastLogIndex) ?? Term("LastLogTerm", m.LastLogTerm),
            AppendEntries m => Index("PrevLogIndex", m.PrevLogIndex) ?? Term("PrevLogTerm", m.PrevLogTerm)
                ?? Index("LeaderCommit", m.LeaderCommit) ?? Entries(m.Entries),
            AppendEntriesResponse m => Index("Index", m.Index) ?? Index("HintIndex", m.HintIndex) ?? Term("HintTerm", m.HintTerm),
            Heartbeat m => Index("Commit", m.Commit),
            ReadIndexResponse m => Index("Index", m.Index),
            InstallSnapshot m => Snapshot(m.Snapshot),
            SnapshotChunk m => Snapshot(m.Snapshot) ?? Offset("Offset", m.Offset),
            SnapshotChunkResponse m => Snapshot(m.Snapshot) ?? Offset("NextOffset", m.NextOffset),
            _ => null,
        };
    }

    private static string? Entries(IReadOnlyList<Entry> entries)
    {
        foreach (var e in entries)
        {
            if ((Index("entry Index", e.Index) ?? Term("entry Term", e.Term)) is { } bad) return bad;
        }
        return null;
    }

    private static string? Snapshot(SnapshotMetadata s) => Index("snapshot Index", s.Index) ?? Term("snapshot Term", s.Term);

    private static string? Term(string name, ulong value) => value > MaxTerm ? Field(name, value) : null;

    private static string? Index(string name, ulong value) => value > MaxIndex ? Field(name, value) : null;

    private static string? Offset(string name, ulong value) => value > MaxSnapshotOffset ? Field(name, value) : null;

    private static string Field(string name, ulong value) => $"{name} = {value}";
}

using FsCheck;
using FsCheck.Fluent;
using RaftMQ.Raft;

namespace RaftMQ.Transport.Tests;

/// <summary>FsCheck generators for every Raft message type, with edge values mixed in.</summary>
internal static class MessageGenerators
{
    private static readonly Gen<ulong> U64 = Gen.Frequency(
        (3, ArbMap.Default.GeneratorFor<ulong>()),
        (1, Gen.Elements(0UL, 1UL, (ulong)uint.MaxValue, ulong.MaxValue - 1, ulong.MaxValue)));

    /// <summary>Terms, indexes and snapshot offsets: anything up to the protocol's bound, with the edges mixed in.</summary>
    private static readonly Gen<ulong> Bounded = Gen.Frequency(
        (3, ArbMap.Default.GeneratorFor<ulong>().Select(v => v % (RaftLimits.MaxIndex + 1))),
        (1, Gen.Elements(0UL, 1UL, (ulong)uint.MaxValue, RaftLimits.MaxIndex - 1, RaftLimits.MaxIndex)));

    private static readonly Gen<bool> Bool = ArbMap.Default.GeneratorFor<bool>();

    private static readonly Gen<Entry> EntryGen =
        from index in Bounded
        from term in Bounded
        from type in Gen.Elements(EntryType.Command, EntryType.NoOp, EntryType.Configuration)
        from data in Gen.ArrayOf(ArbMap.Default.GeneratorFor<byte>())
        select new Entry(index, term, type, data);

    private static readonly Gen<ClusterConfiguration?> ConfigurationGen = Gen.Frequency(
        (1, Gen.Constant<ClusterConfiguration?>(null)),
        (2, from ids in Gen.Shuffle(Enumerable.Range(1, 80).Select(i => (ulong)i).ToArray())
            from voters in Gen.Choose(0, 8)
            from learners in Gen.Choose(0, 4)
            select (ClusterConfiguration?)new ClusterConfiguration(ids.Take(voters), ids.Skip(voters).Take(learners))));

    private static readonly Gen<SnapshotMetadata> SnapshotGen =
        from si in Bounded from st in Bounded from c in ConfigurationGen
        select new SnapshotMetadata(si, st) { Configuration = c };

    public static readonly Gen<RaftMessage> Message = Gen.OneOf(
        from f in U64 from t in U64 from term in Bounded from i in Bounded from lt in Bounded from pv in Bool
        select (RaftMessage)new RequestVote(f, t, term, i, lt, pv),
        from f in U64 from t in U64 from term in Bounded from g in Bool from pv in Bool
        select (RaftMessage)new RequestVoteResponse(f, t, term, g, pv),
        from f in U64 from t in U64 from term in Bounded from pi in Bounded from pt in Bounded
        from entries in Gen.ListOf(EntryGen) from c in Bounded
        select (RaftMessage)new AppendEntries(f, t, term, pi, pt, entries.ToArray(), c),
        from f in U64 from t in U64 from term in Bounded from r in Bool from i in Bounded from hi in Bounded from ht in Bounded from w in Bool
        select (RaftMessage)(r ? new AppendEntriesResponse(f, t, term, true, i, hi, ht) : new AppendEntriesResponse(f, t, term, false, i, 0, 0, w)),
        from f in U64 from t in U64 from term in Bounded from c in Bounded from rr in U64 from q in Bool
        select (RaftMessage)new Heartbeat(f, t, term, c, rr, q),
        from f in U64 from t in U64 from term in Bounded from rr in U64
        select (RaftMessage)new HeartbeatResponse(f, t, term, rr),
        from f in U64 from t in U64 from term in Bounded from ctx in U64
        select (RaftMessage)new ReadIndexRequest(f, t, term, ctx),
        from f in U64 from t in U64 from term in Bounded from ctx in U64 from i in Bounded
        select (RaftMessage)new ReadIndexResponse(f, t, term, ctx, i),
        from f in U64 from t in U64 from term in Bounded from snap in SnapshotGen
        select (RaftMessage)new InstallSnapshot(f, t, term, snap),
        from f in U64 from t in U64 from term in Bounded from snap in SnapshotGen from o in Bounded
        from data in Gen.ArrayOf(ArbMap.Default.GeneratorFor<byte>()) from d in Bool
        select (RaftMessage)new SnapshotChunk(f, t, term, snap, o, data, d),
        from f in U64 from t in U64 from term in Bounded from snap in SnapshotGen from o in Bounded from failed in Bool
        select (RaftMessage)new SnapshotChunkResponse(f, t, term, snap, o, failed),
        from f in U64 from t in U64 from term in Bounded from id in U64 from command in Gen.ArrayOf(ArbMap.Default.GeneratorFor<byte>())
        select (RaftMessage)new ForwardProposal(f, t, term, id, command),
        from f in U64 from t in U64 from term in Bounded from id in U64
        from status in Gen.Elements(Enum.GetValues<ForwardStatus>()) from reason in ArbMap.Default.GeneratorFor<byte>()
        from hint in U64 from code in Text(ForwardResult.MaxCodeBytes) from text in Text(ForwardResult.MaxMessageBytes)
        from payload in Gen.ArrayOf(ArbMap.Default.GeneratorFor<byte>())
        select (RaftMessage)new ForwardResult(f, t, term, id, status, reason, hint, code, text, payload),
        from f in U64 from t in U64 from term in Bounded
        select (RaftMessage)new TimeoutNow(f, t, term),
        from f in U64 from t in U64 from term in Bounded from alarm in Bool
        from free in ArbMap.Default.GeneratorFor<long>() from limit in ArbMap.Default.GeneratorFor<long>()
        select (RaftMessage)new DiskAlarmReport(f, t, term, alarm, free, limit),
        from f in U64 from t in U64 from term in Bounded from i in Bounded from lt in Bounded from pv in Bool
        select (RaftMessage)new RequestVote(f, t, term, i, lt, pv, LeadershipTransfer: true));

    public static Arbitrary<RaftMessage> Messages => Message.ToArbitrary();

    /// <summary>Text of any characters (multi-byte ones included), cut to the field's bound in UTF-8 bytes.</summary>
    private static Gen<string> Text(int maxBytes) =>
        Gen.Frequency(
            (3, ArbMap.Default.GeneratorFor<string>().Select(s => s ?? "")),
            (1, Gen.Elements("", "disk-full", "é€😀", new string('x', maxBytes), new string('é', maxBytes))))
        .Select(s => ForwardResult.Truncate(string.Concat(s.EnumerateRunes().Select(r => r.ToString())), maxBytes));

    /// <summary>Structural equality: records compare entry lists by reference, so AppendEntries is compared by hand.</summary>
    public static bool Same(RaftMessage expected, RaftMessage actual)
    {
        if (expected is AppendEntries a && actual is AppendEntries b)
        {
            return a.From == b.From && a.To == b.To && a.Term == b.Term && a.PrevLogIndex == b.PrevLogIndex
                && a.PrevLogTerm == b.PrevLogTerm && a.LeaderCommit == b.LeaderCommit && a.Entries.Count == b.Entries.Count
                && a.Entries.Zip(b.Entries).All(p =>
                    p.First.Index == p.Second.Index && p.First.Term == p.Second.Term && p.First.Type == p.Second.Type
                    && p.First.Data.Span.SequenceEqual(p.Second.Data.Span));
        }

        if (expected is SnapshotChunk c && actual is SnapshotChunk d)
        {
            return c with { Data = default } == d with { Data = default } && c.Data.Span.SequenceEqual(d.Data.Span)
                && Equals(c.Snapshot.Configuration, d.Snapshot.Configuration);
        }

        if (expected is ForwardProposal p && actual is ForwardProposal q)
        {
            return p with { Command = default } == q with { Command = default } && p.Command.Span.SequenceEqual(q.Command.Span);
        }

        if (expected is ForwardResult r && actual is ForwardResult s)
        {
            return r with { Payload = default } == s with { Payload = default } && r.Payload.Span.SequenceEqual(s.Payload.Span);
        }

        // Snapshot metadata compare by index and term only: the configuration is compared on its own.
        var configurationsMatch = (expected, actual) switch
        {
            (InstallSnapshot x, InstallSnapshot y) => Equals(x.Snapshot.Configuration, y.Snapshot.Configuration),
            (SnapshotChunkResponse x, SnapshotChunkResponse y) => Equals(x.Snapshot.Configuration, y.Snapshot.Configuration),
            _ => true,
        };
        return expected.Equals(actual) && configurationsMatch;
    }
}

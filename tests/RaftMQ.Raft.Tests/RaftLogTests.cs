namespace RaftMQ.Raft.Tests;

/// <summary>The log's stable/unstable split and its bounded reads.</summary>
public sealed class RaftLogTests
{
    private static Entry Command(ulong index, ulong term, int bytes = 100) => new(index, term, EntryType.Command, new byte[bytes]);

    /// <summary>Entries 1..3 durable, 4..6 unstable; every entry is 124 bytes with overhead.</summary>
    private static RaftLog SplitLog()
    {
        var storage = new MemoryLogStorage();
        storage.Append([Command(1, 1), Command(2, 1), Command(3, 1)]);
        var log = new RaftLog(storage, applied: 0);
        for (ulong i = 4; i <= 6; i++) log.AppendLeaderEntry(Command(i, 2));
        return log;
    }

    private static ulong[] SliceIndexes(RaftLog log, ulong lo, ulong hi, long maxBytes)
    {
        var into = new List<Entry>();
        log.Slice(lo, hi, maxBytes, into);
        return [.. into.Select(e => e.Index)];
    }

    [Fact]
    public void Slice_SpansStableAndUnstableEntries()
    {
        var log = SplitLog();
        SliceIndexes(log, 1, 7, long.MaxValue).ShouldBe([1UL, 2UL, 3UL, 4UL, 5UL, 6UL]);
        SliceIndexes(log, 3, 5, long.MaxValue).ShouldBe([3UL, 4UL]);
        SliceIndexes(log, 5, 7, long.MaxValue).ShouldBe([5UL, 6UL]);
        SliceIndexes(log, 4, 4, long.MaxValue).ShouldBeEmpty();
    }

    // A byte bound is a maximum (MaxBytesPerAppend, MaxBytesPerApplyBatch), except that one entry always goes.
    [Theory]
    [InlineData(1UL, 250L, new ulong[] { 1, 2 })]       // within the durable part
    [InlineData(3UL, 250L, new ulong[] { 3, 4 })]       // across the boundary
    [InlineData(4UL, 250L, new ulong[] { 4, 5 })]       // within the unstable part
    [InlineData(1UL, 248L, new ulong[] { 1, 2 })]       // an exact fit
    [InlineData(1UL, 1L, new ulong[] { 1 })]            // at least one entry
    [InlineData(5UL, 1L, new ulong[] { 5 })]
    public void Slice_RespectsTheByteBound(ulong lo, long maxBytes, ulong[] expected)
    {
        SliceIndexes(SplitLog(), lo, 7, maxBytes).ShouldBe(expected);
    }

    [Fact]
    public void LeaderEntries_AreUnstableUntilPersisted()
    {
        var storage = new MemoryLogStorage();
        storage.Append([Command(1, 1), Command(2, 1), Command(3, 1)]);
        var log = new RaftLog(storage, applied: 0);
        log.AppendLeaderEntry(Command(4, 2));
        log.AppendLeaderEntry(Command(5, 2));

        log.LastIndex.ShouldBe(5UL);
        log.LastTerm.ShouldBe(2UL);
        log.StableLastIndex.ShouldBe(3UL);
        log.UnstableEntries().Select(e => e.Index).ShouldBe([4UL, 5UL]);

        storage.Append(log.UnstableEntries());
        log.StableTo(5, 2);

        log.HasUnstable.ShouldBeFalse();
        log.StableLastIndex.ShouldBe(5UL);
        log.LastIndex.ShouldBe(5UL);
    }

    // An acknowledgement of a write that a later append has since replaced must not mark the new entries stable.
    [Fact]
    public void StableTo_IgnoresStaleAcknowledgements()
    {
        var storage = new MemoryLogStorage();
        storage.Append([Command(1, 1)]);
        var log = new RaftLog(storage, applied: 0);
        log.TryAppend(1, 1, [Command(2, 2), Command(3, 2)], out _).ShouldBeTrue();

        log.StableTo(2, 1); // wrong term: those entries were replaced
        log.StableTo(4, 2); // past the end
        log.StableTo(1, 1); // already durable
        log.UnstableCount.ShouldBe(2);

        log.StableTo(2, 2);
        log.UnstableEntries().Select(e => e.Index).ShouldBe([3UL]);
        log.StableLastIndex.ShouldBe(1UL); // the runtime has not written entry 2 to this storage in the test
    }

    // §5.3: a follower's conflicting durable suffix is replaced logically at once, physically by the next write.
    [Fact]
    public void TryAppend_ReplacesAConflictingDurableSuffix()
    {
        var storage = new MemoryLogStorage();
        storage.Append([Command(1, 1), Command(2, 1), Command(3, 1)]);
        var log = new RaftLog(storage, applied: 0);

        log.TryAppend(1, 1, [Command(2, 2)], out var lastNew).ShouldBeTrue();

        lastNew.ShouldBe(2UL);
        log.LastIndex.ShouldBe(2UL);
        log.Term(2).ShouldBe(2UL);
        log.TryTerm(3, out _).ShouldBeFalse();
        log.StableLastIndex.ShouldBe(1UL);
        log.UnstableEntries().Select(e => (e.Index, e.Term)).ShouldBe([(2UL, 2UL)]);
    }

    // §5.4 (Leader Completeness): a committed entry is never overwritten; an append that would do so is a bug
    // elsewhere and must fail loudly.
    [Fact]
    public void TryAppend_RefusesToOverwriteACommittedEntry()
    {
        var storage = new MemoryLogStorage();
        storage.Append([Command(1, 1), Command(2, 1)]);
        var log = new RaftLog(storage, applied: 0);
        log.CommitTo(2);

        Should.Throw<InvalidOperationException>(() => log.TryAppend(1, 1, [Command(2, 3)], out _));
        log.TryAppend(1, 1, [Command(2, 1), Command(3, 3)], out _).ShouldBeTrue();
        log.LastIndex.ShouldBe(3UL);
    }

    [Fact]
    public void FindConflictByTerm_ReturnsTheLastIndexWithATermNoLaterThanGiven()
    {
        var storage = new MemoryLogStorage();
        storage.Append([Command(1, 1), Command(2, 2), Command(3, 2), Command(4, 4), Command(5, 4)]);
        var log = new RaftLog(storage, applied: 0);

        log.FindConflictByTerm(5, 4).ShouldBe(5UL);
        log.FindConflictByTerm(5, 3).ShouldBe(3UL);
        log.FindConflictByTerm(5, 1).ShouldBe(1UL);
        log.FindConflictByTerm(5, 0).ShouldBe(0UL);
    }

    [Fact]
    public void NextCommittedEntries_AreBoundedByBytes()
    {
        var storage = new MemoryLogStorage();
        storage.Append([Command(1, 1), Command(2, 1), Command(3, 1)]);
        var log = new RaftLog(storage, applied: 0);
        log.CommitTo(3);

        log.NextCommittedEntries(130).Select(e => e.Index).ShouldBe([1UL]);
        log.AppliedTo(1);
        log.NextCommittedEntries(long.MaxValue).Select(e => e.Index).ShouldBe([2UL, 3UL]);
        Should.Throw<InvalidOperationException>(() => log.AppliedTo(4));
    }
}

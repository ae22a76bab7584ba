namespace RaftMQ.Raft.Tests;

/// <summary>
/// The log's edges: recovery from storage, a snapshot from the leader waiting to be installed (§7), where a follower's
/// new entries land in the unstable tail (§5.3), and its refusals.
/// </summary>
public sealed class RaftLogEdgeTests
{
    private static Entry Command(ulong index, ulong term) => new(index, term, EntryType.Command, new byte[100]);

    private static MemoryLogStorage Stored(ulong commit, params ulong[] terms)
    {
        var storage = new MemoryLogStorage();
        storage.Append([.. terms.Select((t, i) => Command((ulong)i + 1, t))]);
        storage.SetHardState(new HardState(terms.Length > 0 ? terms[^1] : 0, 0, commit));
        return storage;
    }

    // Recovery: a snapshot is committed by definition, so a persisted commit index below it is raised to it, and the
    // state machine restored from it counts as applied.
    [Fact]
    public void Recovery_CommitsAndAppliesAtLeastTheSnapshot()
    {
        var storage = Stored(1, 1, 1, 1, 1);
        storage.Compact(new SnapshotMetadata(3, 1));
        storage.SetHardState(new HardState(1, 0, 1));

        var log = new RaftLog(storage, applied: 0);

        (log.Committed, log.Applied, log.FirstIndex).ShouldBe((3UL, 3UL, 4UL));
        log.HasNextCommittedEntries.ShouldBeFalse();
        log.NextCommittedEntries(long.MaxValue).ShouldBeEmpty();
    }

    [Fact]
    public void Recovery_WithACommitIndexPastTheLog_Throws()
    {
        Should.Throw<InvalidOperationException>(() => new RaftLog(Stored(3, 1, 1), applied: 0));
        new RaftLog(Stored(2, 1, 1), applied: 0).Committed.ShouldBe(2UL); // the last stored index is fine
    }

    [Fact]
    public void Recovery_WithAppliedAtTheLastIndex_CommitsUpToIt()
    {
        var log = new RaftLog(Stored(0, 1, 1, 1), applied: 3);
        (log.Committed, log.Applied).ShouldBe((3UL, 3UL));
    }

    // §7, Figure 13 rule 7-8: a snapshot from the leader replaces the log at once in the core's view; storage still
    // holds the old log until the runtime installs it.
    [Fact]
    public void PendingSnapshot_IsTheWholeLog_UntilInstalled()
    {
        var storage = Stored(1, 1, 1, 1);
        var log = new RaftLog(storage, applied: 0);
        var snapshot = new SnapshotMetadata(8, 2);

        log.Restore(snapshot);

        log.PendingSnapshot.ShouldBe(snapshot);
        log.HasUnstable.ShouldBeTrue();
        (log.FirstIndex, log.LastIndex, log.LastTerm).ShouldBe((9UL, 8UL, 2UL));
        (log.Committed, log.Applied).ShouldBe((8UL, 8UL));
        log.StableLastIndex.ShouldBe(0UL); // nothing of the new log is durable yet
        log.TryTerm(8, out var term).ShouldBeTrue();
        term.ShouldBe(2UL);
        log.TryTerm(2, out _).ShouldBeFalse(); // the old entries are gone
        log.TryTerm(9, out _).ShouldBeFalse();
        log.MatchTerm(8, 2).ShouldBeTrue();

        // Entries after the snapshot go to the unstable tail.
        log.TryAppend(8, 2, [Command(9, 2)], out var lastNew).ShouldBeTrue();
        lastNew.ShouldBe(9UL);
        log.LastIndex.ShouldBe(9UL);

        // Only the installation of this snapshot clears it.
        log.SnapshotStableTo(new SnapshotMetadata(8, 1));
        log.PendingSnapshot.ShouldBe(snapshot);
        storage.InstallSnapshot(snapshot);
        log.SnapshotStableTo(snapshot);
        log.PendingSnapshot.ShouldBeNull();
        log.FirstIndex.ShouldBe(9UL);
    }

    // §5.3: appends land in the unstable tail at the right place — after it, inside it (a conflict), or before it.
    [Fact]
    public void TryAppend_ExtendsOrTruncatesTheUnstableTail()
    {
        var log = new RaftLog(Stored(0, 1), applied: 0);
        log.TryAppend(1, 1, [Command(2, 1), Command(3, 1)], out _).ShouldBeTrue();

        log.TryAppend(3, 1, [Command(4, 1)], out _).ShouldBeTrue(); // right after the tail
        log.UnstableEntries().Select(e => e.Index).ShouldBe([2UL, 3, 4]);

        log.TryAppend(2, 1, [Command(3, 2)], out var lastNew).ShouldBeTrue(); // a conflict inside the tail
        lastNew.ShouldBe(3UL);
        log.UnstableEntries().Select(e => (e.Index, e.Term)).ShouldBe([(2UL, 1UL), (3UL, 2UL)]);

        log.TryAppend(1, 1, [Command(2, 3)], out _).ShouldBeTrue(); // a conflict at the tail's first entry
        log.UnstableEntries().Select(e => (e.Index, e.Term)).ShouldBe([(2UL, 3UL)]);
        log.LastIndex.ShouldBe(2UL);
    }

    // §5.3: an append that does not match at its previous entry is refused and changes nothing.
    [Fact]
    public void TryAppend_WithoutAMatchAtThePreviousEntry_ChangesNothing()
    {
        var log = new RaftLog(Stored(0, 1, 1), applied: 0);
        log.TryAppend(2, 2, [Command(3, 2)], out var lastNew).ShouldBeFalse();
        lastNew.ShouldBe(0UL);
        log.TryAppend(5, 1, [Command(6, 2)], out _).ShouldBeFalse();
        (log.LastIndex, log.UnstableCount).ShouldBe((2UL, 0));
    }

    // The hint search stops where terms are no longer known: just below the snapshot. (The leader then finds that
    // index compacted and sends its snapshot, §7.)
    [Fact]
    public void FindConflictByTerm_StopsAtTheSnapshot()
    {
        var storage = Stored(0, 1, 2, 3, 3);
        storage.Compact(new SnapshotMetadata(2, 2));
        var log = new RaftLog(storage, applied: 0);

        log.FindConflictByTerm(4, 1).ShouldBe(1UL); // the snapshot's term 2 is still later than 1; index 1 is unknown
        log.FindConflictByTerm(4, 2).ShouldBe(2UL);
        log.FindConflictByTerm(4, 3).ShouldBe(4UL);
    }

    [Fact]
    public void CommitTo_NeverMovesBack_AndNeverPassesTheLastIndex()
    {
        var log = new RaftLog(Stored(0, 1, 1, 1), applied: 0);
        log.CommitTo(2);
        log.CommitTo(1);
        log.Committed.ShouldBe(2UL);
        Should.Throw<InvalidOperationException>(() => log.CommitTo(4));
        log.CommitTo(3);
        log.Committed.ShouldBe(3UL);
    }

    [Fact]
    public void AppliedTo_StaysWithinAppliedAndCommitted()
    {
        var log = new RaftLog(Stored(3, 1, 1, 1), applied: 2);
        log.AppliedTo(0); // nothing applied in this Ready
        log.Applied.ShouldBe(2UL);
        Should.Throw<InvalidOperationException>(() => log.AppliedTo(1));
        log.AppliedTo(2);
        log.AppliedTo(3);
        log.Applied.ShouldBe(3UL);
        log.HasNextCommittedEntries.ShouldBeFalse();
    }

    // Reads bounded by bytes stop inside the durable part when the bound is reached there.
    [Fact]
    public void Slice_StopsInTheDurablePart_WhenTheBoundIsReachedThere()
    {
        var log = new RaftLog(Stored(0, 1, 1, 1), applied: 0);
        log.AppendLeaderEntry(Command(4, 2));
        var into = new List<Entry>();
        log.Slice(2, 5, 248, into); // two entries of 124 bytes fill the bound exactly
        into.Select(e => e.Index).ShouldBe([2UL, 3UL]);

        into.Clear();
        log.Slice(3, 5, 249, into); // the bound is not reached in storage: continue into the unstable tail
        into.Select(e => e.Index).ShouldBe([3UL, 4UL]);
    }
    // [lo, lo) is empty wherever it lies; in the durable part storage is not even asked (it refuses an empty range).
    [Fact]
    public void Slice_OfAnEmptyRange_IsEmpty()
    {
        var log = new RaftLog(Stored(0, 1, 1, 1), applied: 0);
        log.AppendLeaderEntry(Command(4, 2));
        var into = new List<Entry>();
        log.Slice(2, 2, long.MaxValue, into);
        log.Slice(4, 4, long.MaxValue, into);
        log.Slice(3, 2, long.MaxValue, into);
        into.ShouldBeEmpty();
    }

    // The byte bound is a maximum in the unstable tail too: an exact fit is taken whole.
    [Fact]
    public void Slice_TakesAnExactFit_InTheUnstableTail()
    {
        var log = new RaftLog(Stored(0, 1), applied: 0);
        for (ulong i = 2; i <= 4; i++) log.AppendLeaderEntry(Command(i, 2));
        var into = new List<Entry>();
        log.Slice(2, 5, 248, into);
        into.Select(e => e.Index).ShouldBe([2UL, 3UL]);
    }

    // §7: a snapshot from the leader replaces unstable (not yet written) entries too.
    [Fact]
    public void Restore_DropsTheUnstableTail()
    {
        var log = new RaftLog(Stored(0, 1), applied: 0);
        log.TryAppend(1, 1, [Command(2, 1), Command(3, 1)], out _).ShouldBeTrue();
        log.UnstableCount.ShouldBe(2);

        log.Restore(new SnapshotMetadata(6, 2));

        log.UnstableCount.ShouldBe(0);
        log.UnstableEntries().ShouldBeEmpty();
        (log.LastIndex, log.LastTerm).ShouldBe((6UL, 2UL));
    }
}

namespace RaftMQ.Raft.Tests;

/// <summary>
/// <see cref="MemoryLogStorage"/> is what the simulator and these tests treat as the disk, and the reference for the
/// <see cref="ILogStorage"/> contract the durable storage implements: its bounds and refusals are checked here.
/// </summary>
public sealed class MemoryLogStorageTests
{
    // Entries 1..5 of terms 1, 1, 2, 2, 3; every entry is 25 bytes with overhead (one data byte).
    private static MemoryLogStorage FiveEntries() => TestNode.StorageWith(3, 0, 1, 1, 2, 2, 3);

    private static List<ulong> Read(MemoryLogStorage storage, ulong from, ulong to, long maxBytes)
    {
        var into = new List<Entry>();
        storage.ReadEntries(from, to, maxBytes, into);
        return [.. into.Select(e => e.Index)];
    }

    [Fact]
    public void NewStorage_IsEmpty()
    {
        var storage = new MemoryLogStorage();
        (storage.FirstIndex, storage.LastIndex).ShouldBe((1UL, 0UL));
        storage.HardState.ShouldBe(HardState.Empty);
        storage.Snapshot.ShouldBe(default);
        storage.Term(0).ShouldBe(0UL);
    }

    [Fact]
    public void Term_IsKnownFromTheSnapshotIndexToTheLastIndex_AndRefusedOutside()
    {
        var storage = FiveEntries();
        storage.Compact(new SnapshotMetadata(2, 1));

        storage.Term(2).ShouldBe(1UL); // the snapshot's own term
        storage.Term(3).ShouldBe(2UL);
        storage.Term(5).ShouldBe(3UL);
        Should.Throw<ArgumentOutOfRangeException>(() => storage.Term(1));
        Should.Throw<ArgumentOutOfRangeException>(() => storage.Term(6));
    }

    // ILogStorage.ReadEntries: stop after the first entry that brings the total to maxBytes or past; at least one entry.
    [Theory]
    [InlineData(1UL, 6UL, 1000L, new ulong[] { 1, 2, 3, 4, 5 })]
    [InlineData(2UL, 4UL, 1000L, new ulong[] { 2, 3 })]        // up to but excluding `to`
    [InlineData(1UL, 6UL, 50L, new ulong[] { 1, 2 })]          // 25 + 25 reaches the bound: stop there
    [InlineData(1UL, 6UL, 51L, new ulong[] { 1, 2, 3 })]       // 50 is below 51: one more, which passes it
    [InlineData(1UL, 6UL, 1L, new ulong[] { 1 })]              // at least one entry
    public void ReadEntries_ReturnsTheRange_BoundedByBytes(ulong from, ulong to, long maxBytes, ulong[] expected) =>
        Read(FiveEntries(), from, to, maxBytes).ShouldBe(expected);

    [Theory]
    [InlineData(0UL, 2UL)]  // before the first index
    [InlineData(1UL, 7UL)]  // past the end
    [InlineData(3UL, 3UL)]  // empty range
    [InlineData(4UL, 3UL)]  // reversed range
    public void ReadEntries_OutsideTheLog_Throws(ulong from, ulong to) =>
        Should.Throw<ArgumentOutOfRangeException>(() => Read(FiveEntries(), from, to, 1000));

    [Fact]
    public void ReadEntries_AfterCompaction_StartsAtTheFirstIndex()
    {
        var storage = FiveEntries();
        storage.Compact(new SnapshotMetadata(2, 1));
        Read(storage, 3, 6, 1000).ShouldBe([3UL, 4, 5]);
        Should.Throw<ArgumentOutOfRangeException>(() => Read(storage, 2, 6, 1000));
    }

    [Fact]
    public void Append_ReplacesTheSuffixFromItsFirstIndex()
    {
        var storage = FiveEntries();
        storage.Append(TestNode.Entries(3, 4));
        storage.LastIndex.ShouldBe(3UL);
        storage.Term(3).ShouldBe(4UL);
        storage.Term(2).ShouldBe(1UL);

        storage.Append(TestNode.Entries(4, 4, 4)); // plain append at the end
        storage.LastIndex.ShouldBe(5UL);

        storage.Append([]); // nothing to do
        storage.LastIndex.ShouldBe(5UL);
    }

    [Fact]
    public void Append_LeavingAGap_OrIntoTheSnapshot_Throws()
    {
        var storage = FiveEntries();
        Should.Throw<InvalidOperationException>(() => storage.Append(TestNode.Entries(7, 3)));
        storage.Append(TestNode.Entries(6, 3)); // right after the last entry is fine

        storage.Compact(new SnapshotMetadata(2, 1));
        Should.Throw<InvalidOperationException>(() => storage.Append(TestNode.Entries(2, 3)));
        storage.Append(TestNode.Entries(3, 4)); // right after the snapshot is fine
        storage.LastIndex.ShouldBe(3UL);
    }

    [Fact]
    public void Compact_DropsEntriesUpToTheSnapshot_AndNeverMovesBack()
    {
        var storage = FiveEntries();
        storage.Compact(new SnapshotMetadata(3, 2));
        (storage.FirstIndex, storage.LastIndex).ShouldBe((4UL, 5UL));
        storage.Term(4).ShouldBe(2UL);

        storage.Compact(new SnapshotMetadata(3, 2)); // the same snapshot again
        storage.Compact(new SnapshotMetadata(1, 1)); // an older one
        storage.Snapshot.ShouldBe(new SnapshotMetadata(3, 2));
        (storage.FirstIndex, storage.LastIndex).ShouldBe((4UL, 5UL));

        storage.Compact(new SnapshotMetadata(5, 3)); // up to the last entry
        (storage.FirstIndex, storage.LastIndex).ShouldBe((6UL, 5UL));
    }

    [Fact]
    public void Compact_PastTheLastEntry_EmptiesTheLog()
    {
        var storage = FiveEntries();
        storage.Compact(new SnapshotMetadata(9, 4));
        storage.Snapshot.ShouldBe(new SnapshotMetadata(9, 4));
        (storage.FirstIndex, storage.LastIndex).ShouldBe((10UL, 9UL));
        storage.Term(9).ShouldBe(4UL);
    }

    // §7: a snapshot from the leader replaces the whole log, even entries past its index, and is committed.
    [Fact]
    public void InstallSnapshot_DiscardsEveryEntry_AndRaisesTheCommitIndexOnly()
    {
        var storage = FiveEntries();
        storage.InstallSnapshot(new SnapshotMetadata(3, 3));
        (storage.FirstIndex, storage.LastIndex).ShouldBe((4UL, 3UL));
        storage.HardState.ShouldBe(new HardState(3, 0, 3));

        storage.SetHardState(new HardState(4, 2, 8));
        storage.InstallSnapshot(new SnapshotMetadata(5, 4));
        storage.HardState.ShouldBe(new HardState(4, 2, 8)); // a commit index past the snapshot stays
    }

    [Fact]
    public void Clone_IsIndependentOfTheOriginal()
    {
        var storage = FiveEntries();
        storage.SetHardState(new HardState(3, 2, 4));
        storage.Compact(new SnapshotMetadata(1, 1));

        var clone = storage.Clone();
        storage.Append(TestNode.Entries(3, 9));
        storage.SetHardState(new HardState(9, 0, 0));

        clone.HardState.ShouldBe(new HardState(3, 2, 4));
        clone.Snapshot.ShouldBe(new SnapshotMetadata(1, 1));
        clone.LastIndex.ShouldBe(5UL);
        clone.Term(3).ShouldBe(2UL);
    }
}

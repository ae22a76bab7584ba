namespace RaftMQ.Simulation.Tests;

/// <summary>Each invariant of <see cref="InvariantChecker"/> fires on the violation it is for, and only then.</summary>
public sealed class InvariantCheckerTests
{
    private sealed class ViolationException(string invariant) : Exception(invariant)
    {
        public string Invariant { get; } = invariant;
    }

    private static InvariantChecker NewChecker() => new(3, (invariant, _) => throw new ViolationException(invariant));

    private static Entry E(ulong index, ulong term, byte data = 0) => new(index, term, EntryType.Command, new[] { data });

    private static void ShouldViolate(string invariant, Action action) =>
        Should.Throw<ViolationException>(action).Invariant.ShouldBe(invariant);

    [Fact]
    public void ElectionSafety_TwoLeadersOfOneTerm()
    {
        var c = NewChecker();
        c.OnLeader(1, 5, _ => null);
        c.OnLeader(1, 5, _ => null);
        c.OnLeader(2, 6, _ => null);
        ShouldViolate("election safety", () => c.OnLeader(3, 5, _ => null));
    }

    [Fact]
    public void LogMatching_SameIndexAndTerm_DifferentContentOrHistory()
    {
        var c = NewChecker();
        c.OnPersistedEntries(1, [E(1, 1), E(2, 1, 7), E(3, 2)], 0);
        c.OnPersistedEntries(2, [E(1, 1), E(2, 1, 7)], 0);
        ShouldViolate("log matching", () => c.OnPersistedEntries(3, [E(2, 1, 8)], 1));
        ShouldViolate("log matching", () => c.OnPersistedEntries(3, [E(3, 2)], 2));
        ShouldViolate("log", () => c.OnPersistedEntries(3, [E(4, 1)], 2));
    }

    [Fact]
    public void StateMachineSafety_AndAppliedSequence()
    {
        var c = NewChecker();
        c.OnApplied(1, E(1, 1));
        c.OnApplied(2, E(1, 1));
        ShouldViolate("state machine safety", () => c.OnApplied(3, E(1, 2)));
        ShouldViolate("apply order", () => c.OnApplied(1, E(3, 1)));

        // After a restart the node re-applies from 1 and must apply the same sequence.
        c.OnRestart(1, 1);
        c.OnApplied(1, E(1, 1));
        c.OnRestart(2, 1);
        ShouldViolate("applied sequence", () => c.OnApplied(2, E(1, 1, 9)));
    }

    [Fact]
    public void LeaderCompleteness_NewLeaderMissesACommittedEntry()
    {
        var c = NewChecker();
        c.OnApplied(1, E(1, 1));
        c.OnApplied(1, E(2, 1));
        c.OnLeader(2, 2, i => i <= 2 ? 1UL : null);
        ShouldViolate("leader completeness", () => c.OnLeader(3, 3, i => i <= 1 ? 1UL : null));
    }

    [Fact]
    public void LeaderCompleteness_ALeaderElectedLateForAnOlderTerm_NeedNotHoldLaterCommits()
    {
        var c = NewChecker();
        c.OnApplied(1, E(1, 2), term: 2);
        c.OnLeader(2, 1, _ => null);
        ShouldViolate("leader completeness", () => c.OnLeader(3, 3, _ => null));
    }

    [Fact]
    public void LeaderCompleteness_OnACompactedLog_ComparesTheEntryTheLogStartsAfter()
    {
        var c = NewChecker();
        for (ulong i = 1; i <= 4; i++) c.OnApplied(1, E(i, i <= 2 ? 1UL : 2UL));
        c.OnLeader(2, 3, new SnapshotMetadata(4, 2), _ => null);
        c.OnLeader(3, 4, new SnapshotMetadata(2, 1), i => i <= 4 ? (i <= 2 ? 1UL : 2UL) : null);
        ShouldViolate("leader completeness", () => c.OnLeader(1, 5, new SnapshotMetadata(4, 1), _ => null));
    }

    [Fact]
    public void SnapshotInstall_MustEqualWhatOthersApplied_AndOnlyMoveForward()
    {
        var c = NewChecker();
        c.OnApplied(1, E(1, 1));
        c.OnApplied(1, E(2, 1));
        c.OnApplied(2, E(1, 1));
        c.OnSnapshotRestored(2, new SnapshotMetadata(3, 1), [E(1, 1), E(2, 1), E(3, 1)], restart: false);
        c.AppliedThisRun(2).ShouldBe(3UL);
        c.Committed.Count.ShouldBe(3, "the snapshot's entries count as applied");
        c.OnApplied(2, E(4, 1));

        ShouldViolate("state machine safety", () => c.OnSnapshotRestored(3, new SnapshotMetadata(2, 1), [E(1, 1), E(2, 1, 5)], restart: false));
        ShouldViolate("snapshot", () => c.OnSnapshotRestored(2, new SnapshotMetadata(3, 1), [E(1, 1), E(2, 1), E(3, 1)], restart: false));
        ShouldViolate("snapshot", () => c.OnSnapshotRestored(3, new SnapshotMetadata(2, 2), [E(1, 1), E(2, 1)], restart: false));
    }

    [Fact]
    public void SnapshotRestart_StartsTheStateMachineAtTheSnapshot_WhichMustHoldWhatWasApplied()
    {
        var c = NewChecker();
        for (ulong i = 1; i <= 3; i++) c.OnApplied(1, E(i, 1));
        c.OnSnapshotTaken(1, new SnapshotMetadata(2, 1), 1);
        ShouldViolate("snapshot", () => c.OnSnapshotTaken(1, new SnapshotMetadata(4, 1), null));
        ShouldViolate("snapshot", () => c.OnSnapshotTaken(1, new SnapshotMetadata(2, 1), 2));

        c.OnRestart(1, 0);
        c.OnSnapshotRestored(1, new SnapshotMetadata(2, 1), [E(1, 1), E(2, 1)], restart: true);
        ShouldViolate("apply order", () => c.OnApplied(1, E(2, 1)));
        c.OnApplied(1, E(3, 1));

        c.OnRestart(1, 0);
        ShouldViolate("applied sequence", () => c.OnSnapshotRestored(1, new SnapshotMetadata(4, 1), [E(1, 1), E(2, 1), E(3, 1, 5), E(4, 1)], restart: true));

        // A snapshot received from the leader just before a crash may be past what the node applied.
        c.OnRestart(1, 0);
        c.OnSnapshotRestored(1, new SnapshotMetadata(4, 1), [E(1, 1), E(2, 1), E(3, 1), E(4, 1)], restart: true);
        c.AppliedThisRun(1).ShouldBe(4UL);
    }

    [Fact]
    public void CommitIndex_NeverGoesBack_OrPastTheLog()
    {
        var c = NewChecker();
        c.OnCommitIndex(1, 5, 5);
        ShouldViolate("commit", () => c.OnCommitIndex(1, 4, 5));
        ShouldViolate("commit", () => c.OnCommitIndex(2, 6, 5));
        c.OnRestart(1, 3);
        c.OnCommitIndex(1, 3, 5);
    }

    [Fact]
    public void PersistedHardState_OneVotePerTerm_TermNeverGoesBack()
    {
        var c = NewChecker();
        c.OnPersistedHardState(1, new HardState(2, 0, 0), new HardState(2, 3, 0));
        c.OnPersistedHardState(1, new HardState(2, 3, 0), new HardState(3, 0, 0));
        ShouldViolate("one vote per term", () => c.OnPersistedHardState(1, new HardState(3, 2, 0), new HardState(3, 1, 0)));
        ShouldViolate("term", () => c.OnPersistedHardState(1, new HardState(3, 0, 0), new HardState(2, 0, 0)));
        ShouldViolate("commit", () => c.OnPersistedHardState(1, new HardState(3, 0, 4), new HardState(3, 0, 2)));
    }
}

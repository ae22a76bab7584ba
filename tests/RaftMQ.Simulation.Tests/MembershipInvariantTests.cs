namespace RaftMQ.Simulation.Tests;

/// <summary>
/// The invariants across configurations (InvariantChecker.Membership.cs) fire on deliberately wrong histories — a
/// commit or an election that counted a removed node — and pass the same histories when the node was not removed.
/// </summary>
public sealed class MembershipInvariantTests
{
    private sealed class ViolationException(string invariant, string description) : Exception(invariant + ": " + description)
    {
        public string Invariant { get; } = invariant;
    }

    private static readonly ClusterConfiguration FiveVoters = new([1, 2, 3, 4, 5]);
    private static readonly ClusterConfiguration FiveRemoved = new([1, 2, 3, 4]);

    private static Entry E(ulong index, ulong term, byte data = 0) => new(index, term, EntryType.Command, new[] { data });

    private static Entry Config(ulong index, ulong term, ClusterConfiguration configuration) =>
        new(index, term, EntryType.Configuration, configuration.Encode());

    /// <summary>Five nodes that bootstrapped as voters 1..5, each with an empty log.</summary>
    private static InvariantChecker FiveNodes()
    {
        var c = new InvariantChecker(5, (invariant, description) => throw new ViolationException(invariant, description));
        for (ulong n = 1; n <= 5; n++) c.OnLogOpened(n, new MemoryLogStorage(), FiveVoters);
        return c;
    }

    private static void ShouldViolate(string invariant, Action action) =>
        Should.Throw<ViolationException>(action).Invariant.ShouldBe(invariant);

    // Leader n1 of term 1 has entries 1..2, then (with removal) the entry removing n5 at 3, then a command at 4,
    // which n1, n2 and n5 persisted.
    private static InvariantChecker History(bool removeFive)
    {
        var c = FiveNodes();
        var third = removeFive ? Config(3, 1, FiveRemoved) : E(3, 1, 3);
        Entry[] log = [E(1, 1), E(2, 1, 2), third, E(4, 1, 4)];
        c.OnPersistedEntries(1, log, 0);
        c.OnPersistedEntries(2, log, 0);
        c.OnPersistedEntries(5, log, 0);
        return c;
    }

    [Fact]
    public void CommitQuorum_CountingTheRemovedNode_IsCaught()
    {
        // Without the removal, n1, n2 and n5 are three of five voters: a majority.
        History(removeFive: false).OnLeaderCommit(1, 1, 4, 1, FiveVoters);

        // With it, n5 no longer counts: n1 and n2 are two of the four voters, not a majority.
        var c = History(removeFive: true);
        c.ConfigurationOf(1).ShouldBe(FiveRemoved);
        ShouldViolate("commit quorum", () => c.OnLeaderCommit(1, 1, 4, 1, FiveRemoved));

        // Once n3 holds the entry too, three of the four voters do.
        c.OnPersistedEntries(3, [E(1, 1), E(2, 1, 2), Config(3, 1, FiveRemoved), E(4, 1, 4)], 0);
        c.OnLeaderCommit(1, 1, 4, 1, FiveRemoved);
    }

    [Fact]
    public void CommitQuorum_AnEntryOfAnotherTermAtTheIndex_DoesNotCount()
    {
        var c = FiveNodes();
        c.OnPersistedEntries(1, [E(1, 1), E(2, 2)], 0);
        c.OnPersistedEntries(2, [E(1, 1), E(2, 2)], 0);
        c.OnPersistedEntries(3, [E(1, 1), E(2, 1, 9)], 0); // a different entry at index 2
        ShouldViolate("commit quorum", () => c.OnLeaderCommit(1, 2, 2, 2, FiveVoters));
    }

    [Fact]
    public void ConfigurationInForce_ALeaderOnAnotherConfigurationThanItsLog_IsCaught()
    {
        var c = History(removeFive: true);
        ShouldViolate("configuration in force", () => c.OnLeaderCommit(1, 1, 4, 1, FiveVoters));
    }

    // The leader's fsync runs off its loop: a configuration entry it appended is in force before it is durable there.
    [Fact]
    public void ConfigurationInForce_FromTheLeadersUnpersistedTail_IsTheLatest()
    {
        var c = FiveNodes();
        Entry[] durable = [E(1, 1), E(2, 1, 2)];
        foreach (var n in new ulong[] { 1, 2, 3 }) c.OnPersistedEntries(n, durable, 0);
        Entry[] tail = [Config(3, 1, FiveRemoved)];
        c.OnPersistedEntries(2, tail, 1);
        c.OnPersistedEntries(3, tail, 1);
        Entry? At(ulong i) => i == 3 ? tail[0] : null;
        // n1 runs on the removal it has not persisted: n2 and n3 hold index 3, with n1 not counted that is 2 of 4.
        ShouldViolate("commit quorum", () => c.OnLeaderCommit(1, 1, 3, 1, FiveRemoved, 3, At));
        c.OnPersistedEntries(4, [.. durable, .. tail], 0);
        c.OnLeaderCommit(1, 1, 3, 1, FiveRemoved, 3, At);
        // Without that entry in its log, the same leader on the same configuration is caught.
        ShouldViolate("configuration in force", () => c.OnLeaderCommit(1, 1, 2, 1, FiveRemoved, 2, At));
    }

    [Fact]
    public void ConfigurationRecord_FollowsTruncationAndSnapshots()
    {
        var c = History(removeFive: true);
        c.ConfigurationOf(2).ShouldBe(FiveRemoved);
        // A new leader's entries replace n2's from index 3 on: the removal is gone from its log.
        c.OnPersistedEntries(2, [E(3, 2, 7)], 1);
        c.ConfigurationOf(2).ShouldBe(FiveVoters);
        // A node that joins reads its configuration from the snapshot it installed.
        var joined = new MemoryLogStorage();
        joined.InstallSnapshot(new SnapshotMetadata(3, 1) { Configuration = FiveRemoved.WithLearner(6) });
        var big = new InvariantChecker(6, (i, d) => throw new ViolationException(i, d));
        big.OnLogOpened(6, joined, ClusterConfiguration.Empty);
        big.ConfigurationOf(6).ShouldBe(FiveRemoved.WithLearner(6));
    }

    [Fact]
    public void ElectionQuorum_VotesOfARemovedNode_AreCaught()
    {
        // n1 runs on {1..4} (n5 removed); it counts itself and the votes of n2 and n5: two of four.
        var c = History(removeFive: true);
        c.OnVoteGranted(2, 2, 1);
        c.OnVoteGranted(5, 2, 1);
        ShouldViolate("election quorum", () => c.OnLeader(1, 2, _ => 1));

        // The same votes elect n1 of five voters.
        var ok = History(removeFive: false);
        ok.OnVoteGranted(2, 2, 1);
        ok.OnVoteGranted(5, 2, 1);
        ok.OnLeader(1, 2, _ => 1);
    }

    [Fact]
    public void ElectionQuorum_ACandidateOutsideItsConfiguration_DoesNotCountItself()
    {
        // n5 holds its own removal: it may campaign to finish it (docs/membership.md, rule 8), but its own vote does not count.
        var c = History(removeFive: true);
        c.OnVoteGranted(1, 2, 5);
        ShouldViolate("election quorum", () => c.OnLeader(5, 2, _ => 1));
        c.OnVoteGranted(2, 3, 5);
        c.OnVoteGranted(3, 3, 5);
        c.OnVoteGranted(4, 3, 5);
        c.OnLeader(5, 3, _ => 1);
    }
}

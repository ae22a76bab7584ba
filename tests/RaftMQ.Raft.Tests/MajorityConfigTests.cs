using RaftMQ.Raft.Quorum;

namespace RaftMQ.Raft.Tests;

/// <summary>Quorum arithmetic of one majority (§5.2 elections, §5.3 commitment, thesis §6.2 check-quorum).</summary>
public sealed class MajorityConfigTests
{
    /// <summary>Voters 1..n.</summary>
    private static MajorityConfig Voters(int n) => new(Enumerable.Range(1, n).Select(i => (ulong)i));

    // acks[i] is what voter i + 1 acknowledged. A majority of n is n / 2 + 1: 1 of 1, 2 of 2, 2 of 3, 3 of 4, ...
    [Theory]
    [InlineData(new ulong[] { 0 }, 0UL)]
    [InlineData(new ulong[] { 5 }, 5UL)]
    [InlineData(new ulong[] { 5, 3 }, 3UL)]
    [InlineData(new ulong[] { 5, 0 }, 0UL)]
    [InlineData(new ulong[] { 5, 3, 1 }, 3UL)]
    [InlineData(new ulong[] { 2, 9, 4 }, 4UL)]
    [InlineData(new ulong[] { 5, 5, 0 }, 5UL)]
    [InlineData(new ulong[] { 0, 0, 7 }, 0UL)]
    [InlineData(new ulong[] { 4, 3, 2, 1 }, 2UL)] // 4 voters need 3
    [InlineData(new ulong[] { 5, 5, 0, 0 }, 0UL)] // half is not a majority
    [InlineData(new ulong[] { 5, 5, 5, 0 }, 5UL)]
    [InlineData(new ulong[] { 1, 9, 7, 8 }, 7UL)]
    [InlineData(new ulong[] { 1, 2, 3, 4, 5 }, 3UL)]
    [InlineData(new ulong[] { 5, 5, 0, 0, 0 }, 0UL)]
    [InlineData(new ulong[] { 0, 5, 5, 0, 5 }, 5UL)]
    [InlineData(new ulong[] { 6, 5, 4, 3, 2, 1 }, 3UL)] // 6 voters need 4
    [InlineData(new ulong[] { 6, 6, 6, 0, 0, 0 }, 0UL)]
    [InlineData(new ulong[] { 6, 0, 6, 0, 6, 6 }, 6UL)]
    [InlineData(new ulong[] { 1, 2, 3, 4, 5, 6, 7 }, 4UL)]
    [InlineData(new ulong[] { 7, 7, 7, 0, 0, 0, 0 }, 0UL)]
    [InlineData(new ulong[] { 0, 7, 0, 7, 0, 7, 7 }, 7UL)]
    public void CommittedIndex_IsTheLargestIndexAMajorityAcknowledged(ulong[] acks, ulong expected)
    {
        var config = Voters(acks.Length);

        config.CommittedIndex(id => acks[id - 1]).ShouldBe(expected);
    }

    [Fact]
    public void CommittedIndex_OfTheEmptyConfiguration_IsUnbounded()
    {
        // So that a joint configuration whose outgoing half is empty commits what its incoming half commits.
        MajorityConfig.Empty.CommittedIndex(_ => 3).ShouldBe(ulong.MaxValue);
    }

    [Fact]
    public void CommittedIndex_DoesNotAllocate()
    {
        var config = Voters(7);
        var acks = new ulong[] { 9, 3, 7, 1, 5, 8, 2 };
        Func<ulong, ulong> ackOf = id => acks[id - 1];
        config.CommittedIndex(ackOf); // JIT and first-call work out of the way

        var before = GC.GetAllocatedBytesForCurrentThread();
        var committed = config.CommittedIndex(ackOf);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        committed.ShouldBe(5UL);
        allocated.ShouldBe(0L);
    }

    [Fact]
    public void CommittedIndex_OfALargeCluster_SortsOnTheHeapAndAgrees()
    {
        var config = Voters(21);

        config.CommittedIndex(id => id).ShouldBe(11UL); // 11 of 21 voters hold 11 or more
    }

    // votes[i] is voter i + 1's answer: y granted, n rejected, _ not yet answered. (The expected result is named, as
    // VoteResult is internal and a public test method cannot take it.)
    [Theory]
    [InlineData("_", nameof(VoteResult.Pending))]
    [InlineData("y", nameof(VoteResult.Won))]
    [InlineData("n", nameof(VoteResult.Lost))]
    [InlineData("y_", nameof(VoteResult.Pending))]
    [InlineData("yy", nameof(VoteResult.Won))]
    [InlineData("yn", nameof(VoteResult.Pending))]
    [InlineData("nn", nameof(VoteResult.Lost))]
    [InlineData("y__", nameof(VoteResult.Pending))]
    [InlineData("yy_", nameof(VoteResult.Won))]
    [InlineData("yn_", nameof(VoteResult.Pending))]
    [InlineData("nn_", nameof(VoteResult.Lost))]
    [InlineData("ynn", nameof(VoteResult.Lost))]
    [InlineData("yy__", nameof(VoteResult.Pending))]
    [InlineData("yyy_", nameof(VoteResult.Won))]
    [InlineData("yynn", nameof(VoteResult.Pending))] // a win is impossible, but Lost needs a quorum (3) of rejections
    [InlineData("nnn_", nameof(VoteResult.Lost))]
    [InlineData("yyy__", nameof(VoteResult.Won))]
    [InlineData("yynn_", nameof(VoteResult.Pending))]
    [InlineData("yynnn", nameof(VoteResult.Lost))]
    [InlineData("yyynnn", nameof(VoteResult.Pending))]
    [InlineData("yyyy__", nameof(VoteResult.Won))]
    [InlineData("nnnny__", nameof(VoteResult.Lost))]
    [InlineData("yyyynnn", nameof(VoteResult.Won))]
    public void VoteResult_WinsOnAQuorumOfGrants_LosesOnAQuorumOfRejections(string votes, string expected)
    {
        var config = Voters(votes.Length);

        config.VoteResult(id => votes[(int)id - 1] switch { 'y' => true, 'n' => false, _ => null })
            .ShouldBe(Enum.Parse<VoteResult>(expected));
    }

    [Fact]
    public void VoteResult_OfTheEmptyConfiguration_IsWon()
    {
        MajorityConfig.Empty.VoteResult(_ => null).ShouldBe(VoteResult.Won);
    }

    [Fact]
    public void VoteResult_IgnoresAnswersOfNonVoters()
    {
        var config = new MajorityConfig([1, 2, 3]);

        config.VoteResult(id => id > 3 ? true : null).ShouldBe(VoteResult.Pending);
    }

    // active[i] says whether voter i + 1 was heard from.
    [Theory]
    [InlineData("a", true)]
    [InlineData("-", false)]
    [InlineData("a-", false)]
    [InlineData("aa", true)]
    [InlineData("a--", false)]
    [InlineData("-aa", true)]
    [InlineData("aa--", false)]
    [InlineData("a-aa", true)]
    [InlineData("aa-a-", true)]
    [InlineData("aa---", false)]
    [InlineData("aaa---", false)]
    [InlineData("aa-aa-", true)]
    [InlineData("aaa----", false)]
    [InlineData("-a-a-aa", true)]
    public void HasQuorum_NeedsAMajorityActive(string active, bool expected)
    {
        var config = Voters(active.Length);

        config.HasQuorum(id => active[(int)id - 1] == 'a').ShouldBe(expected);
    }

    [Theory]
    [InlineData(0, 0)]
    [InlineData(1, 1)]
    [InlineData(2, 2)]
    [InlineData(3, 2)]
    [InlineData(4, 3)]
    [InlineData(5, 3)]
    [InlineData(6, 4)]
    [InlineData(7, 4)]
    public void Quorum_IsASimpleMajority(int voters, int quorum)
    {
        Voters(voters).Quorum.ShouldBe(quorum);
    }

    [Fact]
    public void Ids_AreSortedAndChecked()
    {
        var config = new MajorityConfig([3, 1, 2]);

        config.Ids.ShouldBe([1UL, 2UL, 3UL]);
        config.Contains(2).ShouldBeTrue();
        config.Contains(1).ShouldBeTrue("the smallest id is a voter too");
        config.Contains(3).ShouldBeTrue();
        config.Contains(4).ShouldBeFalse();
        config.Contains(0).ShouldBeFalse();
        config.ToString().ShouldBe("(1 2 3)");
        Should.Throw<ArgumentException>(() => new MajorityConfig([1, 2, 1]));
        Should.Throw<ArgumentException>(() => new MajorityConfig([0, 1]));
    }
}

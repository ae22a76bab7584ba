using RaftMQ.Raft.Quorum;

namespace RaftMQ.Raft.Tests;

/// <summary>Joint consensus (thesis §4.3): every decision needs a majority of the old and of the new configuration.</summary>
public sealed class JointConfigTests
{
    private static readonly JointConfig Plain = new([1, 2, 3]);

    // Voters 1, 2, 3 moving to 3, 4, 5.
    private static readonly JointConfig Joint = new(new MajorityConfig([3, 4, 5]), new MajorityConfig([1, 2, 3]));

    private static Func<ulong, ulong> Acks(params (ulong Id, ulong Index)[] acks) =>
        id => acks.FirstOrDefault(a => a.Id == id).Index;

    private static Func<ulong, bool?> Votes(string granted, string rejected) =>
        id => granted.Contains((char)('0' + id)) ? true : rejected.Contains((char)('0' + id)) ? false : null;

    [Fact]
    public void WithoutAnOutgoingHalf_ItIsThePlainMajority()
    {
        Plain.IsJoint.ShouldBeFalse();
        Plain.Ids.ShouldBe([1UL, 2UL, 3UL]);
        Plain.CommittedIndex(Acks((1, 5), (2, 4), (3, 1))).ShouldBe(4UL);
        Plain.VoteResult(Votes("12", "")).ShouldBe(VoteResult.Won);
        Plain.VoteResult(Votes("1", "23")).ShouldBe(VoteResult.Lost);
        Plain.VoteResult(Votes("1", "2")).ShouldBe(VoteResult.Pending);
        Plain.HasQuorum(id => id != 3).ShouldBeTrue();
        Plain.HasQuorum(id => id == 3).ShouldBeFalse();

        // No outgoing half given is the empty one, which never holds a decision back.
        var explicitNull = new JointConfig(new MajorityConfig([1, 2, 3]), null);
        explicitNull.Outgoing.Count.ShouldBe(0);
        explicitNull.CommittedIndex(Acks((1, 5), (2, 4), (3, 1))).ShouldBe(4UL);
        explicitNull.Contains(1).ShouldBeTrue();
    }

    [Fact]
    public void Ids_AreTheUnionOfBothHalves()
    {
        Joint.IsJoint.ShouldBeTrue();
        Joint.Ids.ShouldBe([1UL, 2UL, 3UL, 4UL, 5UL]);
        Joint.Contains(1).ShouldBeTrue();
        Joint.Contains(5).ShouldBeTrue();
        Joint.Contains(6).ShouldBeFalse();
        Joint.ToString().ShouldBe("(3 4 5)&&(1 2 3)");
    }

    [Fact]
    public void CommittedIndex_IsTheSmallerOfTheTwoMajorities()
    {
        // Old (1 2 3) has 7 on a majority; new (3 4 5) has only 4.
        Joint.CommittedIndex(Acks((1, 9), (2, 7), (3, 4), (4, 2), (5, 1))).ShouldBe(2UL);
        Joint.CommittedIndex(Acks((1, 9), (2, 7), (3, 7), (4, 8), (5, 1))).ShouldBe(7UL);
        Joint.CommittedIndex(Acks((1, 1), (2, 1), (3, 9), (4, 9), (5, 9))).ShouldBe(1UL);
    }

    [Theory]
    [InlineData("12", "", nameof(VoteResult.Pending))]     // old won, new pending
    [InlineData("45", "", nameof(VoteResult.Pending))]     // new won, old pending
    [InlineData("124", "", nameof(VoteResult.Pending))]
    [InlineData("34", "", nameof(VoteResult.Pending))]     // 3 counts in both, but old needs one more
    [InlineData("134", "", nameof(VoteResult.Won))]
    [InlineData("1245", "", nameof(VoteResult.Won))]
    [InlineData("45", "12", nameof(VoteResult.Lost))]     // the old majority rejected
    [InlineData("12", "45", nameof(VoteResult.Lost))]     // the new majority rejected
    [InlineData("12", "3", nameof(VoteResult.Pending))]
    public void VoteResult_NeedsBothMajorities(string granted, string rejected, string expected)
    {
        Joint.VoteResult(Votes(granted, rejected)).ShouldBe(Enum.Parse<VoteResult>(expected));
    }

    [Theory]
    [InlineData("12", false)]
    [InlineData("45", false)]
    [InlineData("34", false)]
    [InlineData("134", true)]
    [InlineData("1245", true)]
    public void HasQuorum_NeedsBothMajorities(string active, bool expected)
    {
        Joint.HasQuorum(id => active.Contains((char)('0' + id))).ShouldBe(expected);
    }
}

namespace RaftMQ.Raft.Tests;

/// <summary>The leader's per-follower replication state (§5.3 nextIndex/matchIndex and flow control).</summary>
public sealed class ProgressTests
{
    private static Progress Replicating(ulong match, int maxInflight = 4)
    {
        var pr = new Progress(match + 1, maxInflight);
        pr.MaybeUpdate(match);
        pr.BecomeReplicate();
        return pr;
    }

    [Fact]
    public void MaybeUpdate_IgnoresOldAcknowledgements()
    {
        var pr = Replicating(match: 5);

        pr.MaybeUpdate(3).ShouldBeFalse();
        pr.MaybeUpdate(5).ShouldBeFalse();
        (pr.Match, pr.Next).ShouldBe((5UL, 6UL));

        pr.MaybeUpdate(7).ShouldBeTrue();
        (pr.Match, pr.Next).ShouldBe((7UL, 8UL));
    }

    // In probe mode only a rejection of the append just sent (PrevLogIndex == Next - 1) moves Next back.
    [Fact]
    public void MaybeDecrTo_InProbe_IgnoresStaleRejections_AndFollowsTheHint()
    {
        var pr = new Progress(10, 4);

        pr.MaybeDecrTo(7, 2).ShouldBeFalse();
        pr.Next.ShouldBe(10UL);

        pr.SentEntries(9, 0);
        pr.IsPaused.ShouldBeTrue();
        pr.MaybeDecrTo(9, 4).ShouldBeTrue();
        pr.Next.ShouldBe(5UL); // just after the follower's hint
        pr.IsPaused.ShouldBeFalse();

        pr.MaybeDecrTo(4, 100).ShouldBeTrue(); // a hint past the rejection never moves Next forward
        pr.Next.ShouldBe(4UL);
    }

    [Fact]
    public void MaybeDecrTo_NeverGoesBelowMatch()
    {
        var pr = new Progress(10, 4);
        pr.MaybeUpdate(3);
        pr.BecomeProbe();
        pr.Next.ShouldBe(4UL);
        pr.MaybeDecrTo(3, 0).ShouldBeTrue();
        pr.Next.ShouldBe(4UL);
    }

    // In replicate mode a rejection at or below Match answers an append that was already superseded.
    [Fact]
    public void MaybeDecrTo_InReplicate_IgnoresRejectionsAtOrBelowMatch()
    {
        var pr = Replicating(match: 5);
        pr.SentEntries(8, 3);

        pr.MaybeDecrTo(5, 0).ShouldBeFalse();
        pr.MaybeDecrTo(2, 0).ShouldBeFalse();
        pr.Next.ShouldBe(9UL);

        pr.MaybeDecrTo(8, 0).ShouldBeTrue();
        pr.Next.ShouldBe(6UL);
    }

    [Fact]
    public void InflightWindow_FillsAndFreesInOrder()
    {
        var pr = Replicating(match: 0, maxInflight: 3);
        pr.SentEntries(2, 2);
        pr.SentEntries(4, 2);
        pr.SentEntries(6, 2);
        pr.IsPaused.ShouldBeTrue();
        pr.Next.ShouldBe(7UL);
        pr.SentEntries(6, 0); // an empty append takes no slot

        pr.FreeInflightTo(3);
        pr.IsPaused.ShouldBeFalse();
        pr.ToString().ShouldBe("Replicate match=0 next=7 inflight=2");
        pr.FreeInflightTo(6);
        pr.ToString().ShouldBe("Replicate match=0 next=7 inflight=0");

        // The ring wraps around.
        for (ulong i = 7; i < 10; i++) pr.SentEntries(i, 1);
        pr.IsPaused.ShouldBeTrue();
        pr.FreeInflightTo(9);
        pr.IsPaused.ShouldBeFalse();
    }
}

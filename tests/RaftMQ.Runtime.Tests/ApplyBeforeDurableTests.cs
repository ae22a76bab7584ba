using RaftMQ.Raft;
using RaftMQ.Storage;

namespace RaftMQ.Runtime.Tests;

/// <summary>
/// A leader whose followers acknowledge an entry before its own fsync of it ends applies the entry then, and answers
/// its proposal, without waiting for that fsync (the entry is durable on a majority already).
/// </summary>
public sealed class ApplyBeforeDurableTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "raftmq-apply-early-tests", Guid.NewGuid().ToString("N")[..12]);
    private readonly HoldingHost _host = new();
    private readonly AppendMachine _machine = new();
    private readonly NodeDriver _driver;

    /// <summary>Node 1 of three, elected, with its no-op committed and every fsync finished.</summary>
    public ApplyBeforeDurableTests()
    {
        _driver = new NodeDriver(new RaftOptions { Id = 1, Voters = [1, 2, 3], ElectionTicks = 5, RandomSeed = 3 },
            new NodeDriverOptions(), NodeStorage.Open(_directory), _machine, _host, readContextSeed: 5);
        ElectAndSettle(_driver, _host);
    }

    [Fact]
    public void A_proposal_acknowledged_by_both_followers_completes_while_the_leaders_own_fsync_runs()
    {
        var appliedBefore = _machine.Applies;
        var done = new TaskCompletionSource<object?>(TaskCreationOptions.RunContinuationsAsynchronously);
        var proposed = _driver.Propose("a"u8.ToArray(), done);
        proposed.IsAccepted.ShouldBeTrue();
        _driver.ProcessReady();
        var sync = _host.Sync.ShouldNotBeNull(); // the leader's own fsync of the entry, held here
        _driver.LogSyncInProgress.ShouldBeTrue();

        AcknowledgeAll(_driver, _host, proposed.Index);
        _driver.ProcessReady();

        done.Task.IsCompletedSuccessfully.ShouldBeTrue(); // answered before the leader's fsync ended
        _machine.Applies.ShouldBe(appliedBefore + 1);
        _machine.Items[^1].ShouldBe("a");
        _driver.AppliedIndex.ShouldBe(proposed.Index);
        _driver.Raft.AppliedIndex.ShouldBe(proposed.Index);
        _driver.LogSyncInProgress.ShouldBeTrue(); // the leader's own fsync is still out

        _host.Sync = null;
        sync.Run();
        _driver.CompleteLogSync(sync);
        _driver.ProcessReady();
        _machine.Applies.ShouldBe(appliedBefore + 1); // not applied twice
    }

    [Fact]
    public void One_acknowledgement_with_the_leaders_fsync_out_is_not_a_majority()
    {
        var done = new TaskCompletionSource<object?>(TaskCreationOptions.RunContinuationsAsynchronously);
        var proposed = _driver.Propose("b"u8.ToArray(), done);
        _driver.ProcessReady();
        var sync = _host.Sync.ShouldNotBeNull();

        _driver.Step(new AppendEntriesResponse(2, 1, _driver.Raft.Term, false, proposed.Index, 0, 0));
        _driver.ProcessReady();
        done.Task.IsCompleted.ShouldBeFalse(); // one follower alone holds it durably

        _host.Sync = null;
        sync.Run();
        _driver.CompleteLogSync(sync); // now the leader's own copy counts: two of three
        _driver.ProcessReady();
        done.Task.IsCompletedSuccessfully.ShouldBeTrue();
        _machine.Items[^1].ShouldBe("b");
    }

    /// <summary>Makes the driver the leader of term 1 with the term's no-op committed and every fsync finished.</summary>
    private static void ElectAndSettle(NodeDriver driver, HoldingHost host)
    {
        for (var i = 0; i < 100 && driver.Raft.Role != Role.Leader; i++)
        {
            driver.Tick();
            host.Drain(driver);
            foreach (var vote in host.TakeSent().OfType<RequestVote>())
                driver.Step(new RequestVoteResponse(vote.To, 1, vote.Term, true, vote.PreVote));
            host.Drain(driver);
        }
        driver.Raft.Role.ShouldBe(Role.Leader);
        AcknowledgeAll(driver, host, driver.Raft.LastIndex);
        host.Drain(driver);
        driver.Raft.CommitIndex.ShouldBe(driver.Raft.LastIndex);
        host.TakeSent();
    }

    private static void AcknowledgeAll(NodeDriver driver, HoldingHost host, ulong index)
    {
        foreach (var peer in new ulong[] { 2, 3 })
            driver.Step(new AppendEntriesResponse(peer, 1, driver.Raft.Term, false, index, 0, 0));
        host.TakeSent();
    }

    public void Dispose()
    {
        _driver.Dispose();
        _driver.Storage.Dispose();
        if (Directory.Exists(_directory)) Directory.Delete(_directory, recursive: true);
    }
}

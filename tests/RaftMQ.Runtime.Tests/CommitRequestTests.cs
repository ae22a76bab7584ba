using RaftMQ.Raft;
using RaftMQ.Storage;

namespace RaftMQ.Runtime.Tests;

/// <summary>
/// A follower whose host holds requests waiting for it to apply (<see cref="NodeDriverOptions.WaitingToApply"/>)
/// asks its leader for each new commit index at once, in the answer to every append it takes while they wait; the
/// driver reads the host's answer at each append.
/// </summary>
public sealed class CommitRequestTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "raftmq-commitrequest-tests", Guid.NewGuid().ToString("N")[..12]);
    private readonly List<RaftMessage> _sent = [];
    private NodeDriver? _driver;
    private bool _waiting;

    [Fact]
    public void A_follower_asks_for_commits_at_once_exactly_while_its_host_holds_waiting_requests()
    {
        _driver = new NodeDriver(
            new RaftOptions { Id = 1, Voters = [1, 2, 3], ElectionTicks = 5, RandomSeed = 3 },
            new NodeDriverOptions { WaitingToApply = () => _waiting }, NodeStorage.Open(_directory), new AppendMachine(), new SendRecordingHost(_sent),
            readContextSeed: 7);
        var answers = new List<AppendEntriesResponse>();
        void Append(ulong index)
        {
            _driver.Step(new AppendEntries(2, 1, 1, index - 1, index == 1 ? 0UL : 1UL,
                [new Entry(index, 1, EntryType.Command, new byte[] { 1, 2, 3 })], index - 1));
            _driver.ProcessReady();
            answers.Add(_sent.OfType<AppendEntriesResponse>().Last());
        }

        Append(1);
        _waiting = true;
        Append(2);
        Append(3);
        _waiting = false;
        Append(4);

        // A read of its own waits to apply up to its read index too: the follower asks while one is outstanding.
        var read = new TaskCompletionSource<object?>(TaskCreationOptions.RunContinuationsAsynchronously);
        _driver.Read(() => "read", read);
        _driver.ProcessReady();
        _sent.OfType<ReadIndexRequest>().ShouldHaveSingleItem().To.ShouldBe(2UL);
        Append(5);

        answers.Select(a => (a.Index, a.Reject, a.WantsCommit)).ShouldBe(
            [(1UL, false, false), (2UL, false, true), (3UL, false, true), (4UL, false, false), (5UL, false, true)]);
        _driver.AppliedIndex.ShouldBe(4UL); // each append carried the commit of the one before
        read.Task.IsCompleted.ShouldBeFalse();
    }

    public void Dispose()
    {
        if (_driver is not null)
        {
            _driver.Dispose();
            _driver.Storage.Dispose();
        }
        if (Directory.Exists(_directory)) Directory.Delete(_directory, recursive: true);
    }
}

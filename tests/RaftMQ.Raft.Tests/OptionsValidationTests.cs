namespace RaftMQ.Raft.Tests;

/// <summary>
/// <see cref="RaftOptions"/> are checked when a node is created: a bad setting fails at start, not as a wedged cluster
/// later. Each bound is probed at its edge, so a check that is off by one or tests the wrong field fails here.
/// </summary>
public sealed class OptionsValidationTests
{
    private static RaftOptions Valid() => new() { Id = 1, Voters = [1, 2, 3], ElectionTicks = 10, HeartbeatTicks = 1 };

    private static RaftNode Create(RaftOptions options) => new(options, new MemoryLogStorage());

    [Fact]
    public void ValidOptions_AtEveryLowerBound_AreAccepted()
    {
        var options = Valid();
        options.HeartbeatTicks = 1;
        options.ElectionTicks = 2; // the smallest that is greater than HeartbeatTicks
        options.MaxInflightAppends = 1;
        options.MaxBytesPerAppend = 1;
        options.MaxBytesPerApplyBatch = 1;
        options.MaxUncommittedBytes = 1;
        options.MaxEntryBytes = 1;
        options.MaxPendingReads = 1;

        var node = Create(options);

        node.Id.ShouldBe(1UL);
        node.Voters.ShouldBe([1UL, 2UL, 3UL]);
        node.Role.ShouldBe(Role.Follower);
    }

    public static TheoryData<string, Action<RaftOptions>> InvalidSettings => new()
    {
        { "Id 0", o => o.Id = 0 },
        { "Id not among the voters", o => o.Voters = [2, 3, 4] },
        { "voter 0", o => o.Voters = [0, 1, 2] },
        { "duplicate voter", o => o.Voters = [1, 2, 2] },
        { "HeartbeatTicks 0", o => o.HeartbeatTicks = 0 },
        { "HeartbeatTicks negative", o => o.HeartbeatTicks = -1 },
        { "ElectionTicks equal to HeartbeatTicks", o => (o.ElectionTicks, o.HeartbeatTicks) = (3, 3) },
        { "ElectionTicks below HeartbeatTicks", o => (o.ElectionTicks, o.HeartbeatTicks) = (2, 3) },
        { "MaxInflightAppends 0", o => o.MaxInflightAppends = 0 },
        { "MaxBytesPerAppend 0", o => o.MaxBytesPerAppend = 0 },
        { "MaxBytesPerApplyBatch 0", o => o.MaxBytesPerApplyBatch = 0 },
        { "MaxUncommittedBytes 0", o => o.MaxUncommittedBytes = 0 },
        { "MaxEntryBytes 0", o => o.MaxEntryBytes = 0 },
        { "MaxPendingReads 0", o => o.MaxPendingReads = 0 },
    };

    [Theory]
    [MemberData(nameof(InvalidSettings))]
    public void InvalidOptions_AreRefusedWhenTheNodeIsCreated(string setting, Action<RaftOptions> spoil)
    {
        var options = Valid();
        spoil(options);
        Should.Throw<ArgumentException>(() => Create(options), setting);
    }

    [Fact]
    public void NullArguments_AreRefused()
    {
        Should.Throw<ArgumentNullException>(() => new RaftNode(null!, new MemoryLogStorage()));
        Should.Throw<ArgumentNullException>(() => new RaftNode(Valid(), null!));
    }
}

using Microsoft.Extensions.Logging;
using RaftMQ.Raft;

namespace RaftMQ.Runtime;

// Membership changes through the loop (docs/membership.md): add a learner, promote it, remove a member; the
// configuration in force as seen from outside the loop. The driver proposes the changes, completes their callers
// and promotes caught-up learners (NodeDriver.Membership.cs).
public sealed partial class RaftRuntime
{
    private volatile ClusterConfiguration _configuration = ClusterConfiguration.Empty;
    private volatile ClusterConfiguration _committedConfiguration = ClusterConfiguration.Empty;

    /// <summary>The configuration this node runs on (the latest in its log, committed or not), refreshed every iteration.</summary>
    public ClusterConfiguration Configuration => _configuration;

    /// <summary>
    /// The configuration in force at this node's commit index, refreshed with <see cref="Configuration"/>: a
    /// membership change whose call completed is in it.
    /// </summary>
    public ClusterConfiguration CommittedConfiguration => _committedConfiguration;

    /// <summary>
    /// Raised on the loop whenever <see cref="Configuration"/> changes (and once at start), with the new one. The handler
    /// must return quickly and must not call into the runtime synchronously.
    /// </summary>
    public event Action<ClusterConfiguration>? ConfigurationChanged;

    /// <summary>
    /// The configuration in force and the leader, read at a linearizable point (as <see cref="ReadWaitingForLeaderAsync{T}"/>,
    /// waiting out elections): every change committed before the call is in it.
    /// </summary>
    public Task<(ClusterConfiguration Configuration, ulong Leader)> ReadConfigurationAsync(CancellationToken cancellationToken = default) =>
        ReadWaitingForLeaderAsync(() => (_driver!.Raft.Configuration, _driver.Raft.Leader), cancellationToken);

    /// <summary>
    /// <see cref="ReadConfigurationAsync"/> with where the configuration stands, all read together on the loop at the
    /// linearizable point: the index of the log entry that holds it and whether this node's commit index covers it.
    /// </summary>
    public Task<ConfigurationState> ReadConfigurationStateAsync(CancellationToken cancellationToken = default) =>
        ReadWaitingForLeaderAsync(() =>
        {
            var raft = _driver!.Raft;
            return new ConfigurationState(raft.Configuration, raft.ConfigurationIndex, raft.ConfigurationIndex <= raft.CommitIndex, raft.Leader);
        }, cancellationToken);

    /// <summary>
    /// Adds node <paramref name="id"/> as a learner (it gets the log, then a leader with
    /// <see cref="RaftRuntimeOptions.PromoteCaughtUpLearners"/> promotes it once caught up), recording
    /// <paramref name="addresses"/> in the configuration; completes once the change is committed. Throws
    /// <see cref="MembershipChangeException"/> when refused or when its outcome is unknown.
    /// </summary>
    public Task<MembershipChanged> AddLearnerAsync(
        ulong id, IReadOnlyDictionary<ulong, byte[]>? addresses = null, CancellationToken cancellationToken = default) =>
        ChangeAsync(raft => raft.AddLearner(id, addresses), cancellationToken);

    /// <summary>Makes learner <paramref name="id"/> a voter once it has caught up; completes when committed. See <see cref="AddLearnerAsync"/>.</summary>
    public Task<MembershipChanged> PromoteLearnerAsync(ulong id, CancellationToken cancellationToken = default) =>
        ChangeAsync(raft => raft.PromoteLearner(id), cancellationToken);

    /// <summary>
    /// Removes voter or learner <paramref name="id"/>, this node included when it leads (it hands over and steps down
    /// once the change commits); completes when committed. See <see cref="AddLearnerAsync"/>.
    /// </summary>
    public Task<MembershipChanged> RemoveMemberAsync(ulong id, CancellationToken cancellationToken = default) =>
        ChangeAsync(raft => raft.RemoveMember(id), cancellationToken);

    private async Task<MembershipChanged> ChangeAsync(Func<RaftNode, MembershipResult> change, CancellationToken cancellationToken)
    {
        var tcs = new TaskCompletionSource<MembershipChanged>(TaskCreationOptions.RunContinuationsAsynchronously);
        await PostAsync(new MembershipInput(change, tcs), cancellationToken).ConfigureAwait(false);
        try
        {
            return await tcs.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            tcs.TrySetCanceled(cancellationToken); // the loop forgets the waiter at its next iteration
            throw;
        }
    }

    // The driver runs the change and completes the caller once it is committed (NodeDriver.ChangeMembership).
    private static void HandleMembership(NodeDriver driver, MembershipInput input) => driver.ChangeMembership(input.Change, input.Completion);

    /// <summary>After every iteration: publishes the configuration in force and the committed one.</summary>
    private void NoteMembership(RaftNode raft)
    {
        var configuration = raft.Configuration;
        _committedConfiguration = raft.ConfigurationAt(raft.CommitIndex); // the latest one once committed
        if (!ReferenceEquals(configuration, _configuration))
        {
            var changed = !configuration.Equals(_configuration);
            _configuration = configuration;
            if (changed)
            {
                LogConfiguration(_logger, raft.Id, configuration.ToString());
                ConfigurationChanged?.Invoke(configuration);
            }
        }
    }

    private sealed record MembershipInput(Func<RaftNode, MembershipResult> Change, TaskCompletionSource<MembershipChanged> Completion) : Input;

    [LoggerMessage(EventId = 20, Level = LogLevel.Information, Message = "Node {Id} runs on configuration {Configuration}")]
    private static partial void LogConfiguration(ILogger logger, ulong id, string configuration);
}

/// <summary>
/// The configuration a node runs on (the latest in its log) as <see cref="RaftRuntime.ReadConfigurationStateAsync"/>
/// reads it: <paramref name="Index"/> is its entry's log index, 0 when it comes from the node's snapshot or is the
/// initial one (then it is committed); <paramref name="Committed"/> whether the node's commit index covers it (a
/// follower learns of a commit with the leader's next message); <paramref name="Leader"/> the leader, 0 for none.
/// </summary>
public sealed record ConfigurationState(ClusterConfiguration Configuration, ulong Index, bool Committed, ulong Leader);

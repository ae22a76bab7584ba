using RaftMQ.Raft;

namespace RaftMQ.Simulation;

/// <summary>What became of a client's proposal.</summary>
public enum ProposalState : byte
{
    /// <summary>The node did not accept it (not leader, or overloaded); for a forwarded one, certainly not applied.</summary>
    Rejected = 0,

    /// <summary>In the proposing leader's log, not yet applied there.</summary>
    Pending = 1,

    /// <summary>The proposing node applied the entry at the proposal's (index, term): committed, the client was answered.</summary>
    Acknowledged = 2,

    /// <summary>The proposing node applied another entry at that index: the proposal was lost to a leader change.</summary>
    Lost = 3,

    /// <summary>
    /// The proposing node crashed before it could tell, or jumped past the entry by installing a leader's snapshot;
    /// the entry may or may not be committed.
    /// </summary>
    Unknown = 4,
}

/// <summary>A command a test client proposed through <see cref="SimCluster.Propose"/>.</summary>
public sealed class ClientProposal
{
    internal ClientProposal(
        long id, ulong node, ReadOnlyMemory<byte> data, ProposeResult result, long submittedAt, Task<object?> completion,
        Task<ForwardResult>? forwardAnswer = null)
    {
        ForwardAnswer = forwardAnswer;
        Completion = completion;
        Id = id;
        Node = node;
        Data = data;
        Result = result;
        SubmittedAt = submittedAt;
        State = result.IsAccepted ? ProposalState.Pending : ProposalState.Rejected;
    }

    /// <summary>Number of the proposal in its run, from 1.</summary>
    public long Id { get; }

    /// <summary>The node it was proposed on (0 when there was no leader to propose on).</summary>
    public ulong Node { get; }

    public ReadOnlyMemory<byte> Data { get; }

    /// <summary>The core's answer: index, term, or why it refused. For a forwarded proposal, a placeholder (index 0).</summary>
    public ProposeResult Result { get; }

    /// <summary>Whether a follower forwarded the proposal to its leader (<see cref="SimCluster.ProposeThrough"/>).</summary>
    public bool Forwarded => ForwardAnswer is not null;

    /// <summary>The answer the forwarding follower's driver gave, for a forwarded proposal.</summary>
    public Task<ForwardResult>? ForwardAnswer { get; }

    /// <summary>
    /// The index the proposal's entry has: where the proposer put it, or, for a forwarded proposal, where the leader
    /// said it applied it (0 until acknowledged).
    /// </summary>
    public ulong Index => Forwarded ? AppliedIndex : Result.Index;

    internal ulong AppliedIndex { get; set; }

    public long SubmittedAt { get; }

    /// <summary>The driver's answer to the proposer.</summary>
    public Task<object?> Completion { get; }

    public ProposalState State { get; internal set; }

    /// <summary>Virtual time of the acknowledgement, or -1.</summary>
    public long AcknowledgedAt { get; internal set; } = -1;

    public bool IsAcknowledged => State == ProposalState.Acknowledged;

    /// <summary>The state machine's result once acknowledged (the entry's index, or in queue mode a <c>QueueResult</c>); null before.</summary>
    public object? Answer => IsAcknowledged ? Completion.Result : null;

    public override string ToString() => Forwarded
        ? $"proposal {Id} forwarded by n{Node}: {State} at index {Index}"
        : $"proposal {Id} on n{Node}: {State} at (index {Result.Index}, term {Result.Term})";
}

/// <summary>A linearizable read a client asked one node for, and what it saw.</summary>
public sealed class ClientRead
{
    internal ClientRead(long id, ulong node, long issuedAt, ulong mustSee, Task<object?> completion)
    {
        Id = id;
        Node = node;
        IssuedAt = issuedAt;
        MustSee = mustSee;
        Completion = completion;
    }

    public long Id { get; }

    public ulong Node { get; }

    /// <summary>Virtual time the read was issued.</summary>
    public long IssuedAt { get; }

    /// <summary>The highest index of a write acknowledged before the read began: the read must see at least this.</summary>
    public ulong MustSee { get; }

    /// <summary>The driver's answer: the applied index the read saw, or why it failed.</summary>
    public Task<object?> Completion { get; }

    /// <summary>Virtual time of the answer, or -1.</summary>
    public long AnsweredAt { get; internal set; } = -1;

    /// <summary>The applied index the read saw, once answered successfully.</summary>
    public ulong? Index { get; internal set; }

    public override string ToString() => $"read {Id} on n{Node} at {IssuedAt} ms: " +
        (Index is { } i ? $"saw index {i}" : Completion.IsCompleted ? $"failed ({Completion.Exception?.InnerException?.GetType().Name})" : "pending");
}

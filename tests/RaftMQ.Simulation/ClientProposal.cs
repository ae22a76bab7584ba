using RaftMQ.Raft;

namespace RaftMQ.Simulation;

/// <summary>What became of a client's proposal.</summary>
public enum ProposalState : byte
{
    /// <summary>The node did not accept it (not leader, or overloaded).</summary>
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
    internal ClientProposal(long id, ulong node, ReadOnlyMemory<byte> data, ProposeResult result, long submittedAt)
    {
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

    /// <summary>The core's answer: index, term, or why it refused.</summary>
    public ProposeResult Result { get; }

    public long SubmittedAt { get; }

    public ProposalState State { get; internal set; }

    /// <summary>Virtual time of the acknowledgement, or -1.</summary>
    public long AcknowledgedAt { get; internal set; } = -1;

    public bool IsAcknowledged => State == ProposalState.Acknowledged;

    public override string ToString() => $"proposal {Id} on n{Node}: {State} at (index {Result.Index}, term {Result.Term})";
}

namespace RaftMQ.Runtime;

/// <summary>This node is not the leader; <see cref="LeaderId"/> is the leader it knows of, or 0.</summary>
public sealed class NotLeaderException(ulong leaderId)
    : Exception(leaderId == 0 ? "No leader is known." : $"Not the leader; the leader is node {leaderId}.")
{
    public ulong LeaderId { get; } = leaderId;
}

/// <summary>The proposal was overwritten by another leader's entry: it was definitely not applied. Safe to retry.</summary>
public sealed class ProposalDroppedException(ulong index)
    : Exception($"The proposal at index {index} was replaced by a new leader's entry and was not applied.")
{
    public ulong Index { get; } = index;
}

/// <summary>The node is over a bound (uncommitted bytes, pending reads, inbox); try again later.</summary>
public sealed class NodeOverloadedException(string what) : Exception($"The node is overloaded: {what}.");

/// <summary>A linearizable read lost its confirmation (leader or term changed); safe to retry.</summary>
public sealed class ReadAbortedException() : Exception("Leadership changed before the read was confirmed.");

/// <summary>The node stopped (shut down or failed); <see cref="Exception.InnerException"/> holds the cause of a failure.</summary>
public sealed class NodeStoppedException(string message, Exception? inner = null) : Exception(message, inner);

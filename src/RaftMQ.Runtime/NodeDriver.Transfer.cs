using RaftMQ.Raft;

namespace RaftMQ.Runtime;

/// <summary>
/// Leadership transfer (thesis §3.10, <see cref="RaftNode.TransferLeadership"/>): the core hands leadership over; the
/// driver tells the caller when it is done — this node stepped down and a new leader is known — or abandoned.
/// </summary>
public sealed partial class NodeDriver
{
    private TaskCompletionSource<LeadershipTransferred>? _transfer;
    private ulong _transferTarget;

    /// <summary>
    /// Starts handing leadership to voter <paramref name="target"/> (0: the most up-to-date voter) and returns what the
    /// core said. When accepted, <paramref name="completion"/> gets the new leader once this node has stepped down and
    /// one is known, or <see cref="LeadershipTransferException"/> when the transfer is abandoned (the target did not
    /// take over within an election timeout, or this node leads again); when refused, it gets that exception at once
    /// with the core's status and message.
    /// </summary>
    public MembershipResult TransferLeadership(ulong target, TaskCompletionSource<LeadershipTransferred> completion)
    {
        ArgumentNullException.ThrowIfNull(completion);
        var r = _node.TransferLeadership(target);
        if (!r.IsAccepted)
        {
            completion.TrySetException(new LeadershipTransferException(r.Status, r.LeaderHint, r.Message));
            return r;
        }
        // The core refuses a second transfer while one runs, so a waiter still here belongs to one already over.
        _transfer?.TrySetException(new LeadershipTransferException(MembershipStatus.Transferring, _node.Leader, "a newer transfer replaced this one"));
        _transfer = completion;
        _transferTarget = _node.LeadTransferee;
        return r;
    }

    /// <summary>The voter a transfer is handing leadership to, or 0.</summary>
    public ulong LeadTransferee => _node.LeadTransferee;

    /// <summary>After each Ready and tick: completes the transfer's caller once it succeeded or was abandoned.</summary>
    private void CheckTransfer()
    {
        if (_transfer is not { } waiter) return;
        if (waiter.Task.IsCompleted)
        {
            _transfer = null; // the caller stopped waiting; the core finishes or abandons the transfer on its own
            return;
        }
        var node = _node;
        if (node.Role != Role.Leader)
        {
            if (node.Leader == 0 || node.Leader == node.Id) return; // the election the target runs is not decided yet
            _transfer = null;
            waiter.TrySetResult(new LeadershipTransferred(node.Leader, node.Term));
            return;
        }
        if (node.LeadTransferee != 0) return;
        _transfer = null;
        waiter.TrySetException(new LeadershipTransferException(MembershipStatus.Transferring, node.Id,
            $"node {_transferTarget} did not take over within an election timeout; node {node.Id} leads on and accepts proposals again",
            abandoned: true));
    }

    private void FailTransfer(Exception error)
    {
        _transfer?.TrySetException(error);
        _transfer = null;
    }
}

/// <summary>A finished leadership transfer: <paramref name="Leader"/> leads in <paramref name="Term"/>.</summary>
public readonly record struct LeadershipTransferred(ulong Leader, ulong Term);

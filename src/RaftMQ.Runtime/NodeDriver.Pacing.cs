using RaftMQ.Raft;

namespace RaftMQ.Runtime;

/// <summary>
/// Pacing of proposals at the leader (<see cref="NodeDriverOptions.MaxProposalBytesInFlight"/>): once that many bytes
/// of commands proposed here (or forwarded here) are in the log and not yet applied, a large command waits in arrival
/// order until enough of them are applied, while a small one is proposed at once. The log is one queue for every
/// client: without this, a small request is appended behind everything the busy clients have sent (tens of MB) and
/// waits for all of it to be replicated, fsynced and applied first.
/// </summary>
public sealed partial class NodeDriver
{
    private const string HeldFullMessage = "too many large commands are waiting to be proposed";

    private readonly Queue<HeldProposal> _held = new();
    private long _heldBytes;
    private long _proposedBytesInFlight;

    /// <summary>Bytes of commands proposed on this node and not yet applied (nor dropped).</summary>
    public long ProposedBytesInFlight => _proposedBytesInFlight;

    /// <summary>Large proposals held back until the bytes in flight fall under the bound.</summary>
    public int HeldProposals => _held.Count;

    private enum HoldOutcome : byte { NotHeld, Held, Refused }

    /// <summary>Holds <paramref name="command"/> back if it is large and the leader has its fill in flight already.</summary>
    private HoldOutcome Hold(ReadOnlyMemory<byte> command, TaskCompletionSource<object?>? completion, ulong forwardedBy, ulong requestId)
    {
        var budget = _options.MaxProposalBytesInFlight;
        if (budget <= 0 || _node.Role != Role.Leader || command.Length <= _options.SmallProposalBytes) return HoldOutcome.NotHeld;
        // Large commands keep their order: one arriving while others wait queues behind them.
        if (_held.Count == 0 && _proposedBytesInFlight < budget) return HoldOutcome.NotHeld;
        if (_held.Count >= _options.MaxHeldProposals || _heldBytes + command.Length > _options.MaxHeldProposalBytes) return HoldOutcome.Refused;
        _held.Enqueue(new HeldProposal(command, completion, forwardedBy, requestId));
        _heldBytes += command.Length;
        return HoldOutcome.Held;
    }

    /// <summary>
    /// Proposes held commands while there is room in flight (all of them when this node no longer leads: the core
    /// then refuses them, and their callers route them again). Returns whether any entered the log.
    /// </summary>
    private bool ProposeHeld()
    {
        var proposed = false;
        while (_held.Count > 0 && (_node.Role != Role.Leader || _proposedBytesInFlight < _options.MaxProposalBytesInFlight))
        {
            var h = _held.Dequeue();
            _heldBytes -= h.Command.Length;
            ProposeResult r;
            if (h.Completion is { } completion)
            {
                if (completion.Task.IsCompleted) continue; // its caller gave up while it was held: never proposed
                r = ProposeNow(h.Command, completion);
            }
            else
            {
                _forwardedInFlight--; // ProposeForwarded counts it again once it is in the log
                var before = _forwardedInFlight;
                ProposeForwarded(h.Command, h.ForwardedBy, h.RequestId);
                r = new ProposeResult(_forwardedInFlight > before ? ProposeStatus.Accepted : ProposeStatus.NotLeader, 0, 0, 0);
            }
            proposed |= r.IsAccepted;
        }
        return proposed;
    }

    private void AddProposal(ulong index, PendingProposal p)
    {
        _proposals[index] = p;
        _proposedBytesInFlight += p.Bytes;
    }

    private bool RemoveProposal(ulong index, out PendingProposal p)
    {
        if (!_proposals.Remove(index, out p)) return false;
        _proposedBytesInFlight -= p.Bytes;
        return true;
    }

    private void FailHeld(Exception error)
    {
        while (_held.TryDequeue(out var h))
        {
            if (h.Completion is { } completion)
            {
                completion.TrySetException(error);
            }
            else
            {
                _forwardedInFlight--;
                // Held back, so never proposed: certainly not applied.
                Answer(h.ForwardedBy, h.RequestId, ForwardStatus.NotApplied, (byte)NotAppliedReason.Stopped, error.Message);
            }
        }
        _heldBytes = 0;
    }

    private readonly record struct HeldProposal(
        ReadOnlyMemory<byte> Command, TaskCompletionSource<object?>? Completion, ulong ForwardedBy, ulong RequestId);
}

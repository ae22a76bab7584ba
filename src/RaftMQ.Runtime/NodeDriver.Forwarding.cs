using Microsoft.Extensions.Logging;
using RaftMQ.Raft;

namespace RaftMQ.Runtime;

/// <summary>
/// Forwarding of proposals (<see cref="ProposalForwarding"/>): a follower sends a command to the leader it knows in a
/// <see cref="ForwardProposal"/> and waits for the <see cref="ForwardResult"/>; the leader proposes the command as its
/// own and answers once the entry is applied, dropped or lost. Both sides run here, on the loop, so the simulator
/// drives them as production does.
/// </summary>
public sealed partial class NodeDriver
{
    /// <summary>Forward requests remembered to recognise a duplicate; the oldest is forgotten beyond this.</summary>
    private const int MaxRememberedForwards = 65_536;

    private readonly Dictionary<ulong, PendingForward> _forwards = [];
    private readonly HashSet<(ulong From, ulong RequestId)> _seenForwards = [];
    private readonly Queue<(ulong From, ulong RequestId)> _seenForwardsOrder = new();
    private ulong _nextForwardId;
    private ulong _startTerm; // the term this run started in: forwards sent up to it may have been taken by the previous run
    private int _forwardedInFlight;

    /// <summary>Forwards this node sent and is waiting on.</summary>
    public int OutstandingForwards => _forwards.Count;

    /// <summary>Forwarded proposals this node (as the leader) holds, not yet answered.</summary>
    public int ForwardedInFlight => _forwardedInFlight;

    /// <summary>
    /// Sends <paramref name="command"/> to the leader this node knows (forwarding must be on) and completes
    /// <paramref name="completion"/> with the answer: the leader's <see cref="ForwardResult"/>, or one made here —
    /// <see cref="ForwardStatus.NotLeader"/> when no other node is known to lead (this node may lead: propose here) or
    /// the host's link to the leader is down (<see cref="INodeHost.IsLinkDown"/>; not sent: route again once the leader
    /// changes),
    /// <see cref="ForwardStatus.NotApplied"/> when over <see cref="ProposalForwarding.MaxOutstandingForwards"/> or the
    /// command is too large, <see cref="ForwardStatus.Unknown"/> after <see cref="ProposalForwarding.Timeout"/>. A
    /// caller that stops waiting cancels <paramref name="completion"/>; the forward is then forgotten at the next tick.
    /// </summary>
    public void Forward(ReadOnlyMemory<byte> command, TaskCompletionSource<ForwardResult> completion)
    {
        ArgumentNullException.ThrowIfNull(completion);
        var forwarding = _options.Forwarding ?? throw new InvalidOperationException("Forwarding is off (NodeDriverOptions.Forwarding).");
        var leader = _node.Leader;
        if (_node.Role == Role.Leader || leader == 0)
        {
            completion.TrySetResult(LocalAnswer(ForwardStatus.NotLeader, 0, leader, leader == 0 ? "no leader is known" : "this node leads"));
            return;
        }
        if (_host.IsLinkDown(leader))
        {
            // Sent now, it would wait in the link's queue for a node that is most likely gone, and its fate would be
            // unknown. Not sent, it is certainly not applied: the caller routes again once the leader changes.
            completion.TrySetResult(LocalAnswer(ForwardStatus.NotLeader, 0, leader,
                $"the link to the leader (node {leader}) is down; the command was not sent"));
            return;
        }
        if (command.Length > _raftOptions.MaxEntryBytes)
        {
            completion.TrySetResult(LocalAnswer(ForwardStatus.NotApplied, (byte)NotAppliedReason.TooLarge, leader,
                new CommandTooLargeException(command.Length, _raftOptions.MaxEntryBytes).Message));
            return;
        }
        if (_forwards.Count >= forwarding.MaxOutstandingForwards)
        {
            completion.TrySetResult(LocalAnswer(ForwardStatus.NotApplied, (byte)NotAppliedReason.Overloaded, leader,
                $"The node is overloaded: {forwarding.MaxOutstandingForwards} forwarded commands are waiting for the leader."));
            return;
        }
        var id = unchecked(++_nextForwardId);
        _forwards[id] = new PendingForward(leader, completion, _host.Time.GetTimestamp());
        Counters.Forwarded();
        _host.Send(new ForwardProposal(_node.Id, leader, _node.Term, id, command));
    }

    /// <summary>
    /// The leader side: admit, propose, and remember whom to answer; or answer at once why not. A command is not
    /// idempotent, so each request is taken at most once: a copy of one already seen gets no answer of its own (the
    /// first copy's answer is the answer), and one sent in a term no later than the one this run started in is
    /// answered as unknown: this node may have taken it in its previous run, which it does not remember.
    /// </summary>
    private void ReceiveForward(ForwardProposal m)
    {
        if (m.To != _node.Id) return;
        if (!_seenForwards.Add((m.From, m.RequestId)))
        {
            Counters.ForwardDuplicateIgnored();
            return;
        }
        _seenForwardsOrder.Enqueue((m.From, m.RequestId));
        if (_seenForwardsOrder.Count > MaxRememberedForwards) _seenForwards.Remove(_seenForwardsOrder.Dequeue());
        if (m.Term <= _startTerm)
        {
            Answer(m.From, m.RequestId, ForwardStatus.Unknown, (byte)UnknownReason.Stale,
                $"node {_node.Id} restarted in term {_startTerm} and got the command sent in term {m.Term}: it cannot tell whether it took it before");
            return;
        }
        var forwarding = _options.Forwarding;
        if (forwarding is null)
        {
            Answer(m.From, m.RequestId, ForwardStatus.NotApplied, (byte)NotAppliedReason.Overloaded, "node " + _node.Id + " does not take forwarded commands");
            return;
        }
        if (_node.Role != Role.Leader)
        {
            Answer(m.From, m.RequestId, ForwardStatus.NotLeader, 0, $"node {_node.Id} is not the leader");
            return;
        }
        if (_forwardedInFlight >= forwarding.MaxForwardedInFlight)
        {
            Answer(m.From, m.RequestId, ForwardStatus.NotApplied, (byte)NotAppliedReason.Overloaded,
                $"The node is overloaded: {forwarding.MaxForwardedInFlight} forwarded commands are in flight on the leader.");
            return;
        }
        if (forwarding.Admit?.Invoke(m.Command) is { } refusal)
        {
            Counters.ForwardRefused();
            _host.Send(new ForwardResult(
                _node.Id, m.From, _node.Term, m.RequestId, ForwardStatus.Refused, 0, _node.Leader,
                ForwardResult.Truncate(refusal.Code, ForwardResult.MaxCodeBytes),
                ForwardResult.Truncate(refusal.Message, ForwardResult.MaxMessageBytes), refusal.Detail));
            return;
        }
        // The leader's own bytes go into the log, not the follower's: Prepare runs here, never on the sender.
        var command = forwarding.Prepare is { } prepare ? prepare(m.Command) : m.Command;
        Counters.Proposed();
        switch (Hold(command, null, m.From, m.RequestId))
        {
            case HoldOutcome.Held:
                _forwardedInFlight++; // answered once proposed and applied, or dropped
                break;
            case HoldOutcome.Refused:
                Answer(m.From, m.RequestId, ForwardStatus.NotApplied, (byte)NotAppliedReason.Overloaded, HeldFullMessage);
                break;
            default:
                ProposeForwarded(command, m.From, m.RequestId);
                break;
        }
    }

    /// <summary>Proposes a command forwarded by node <paramref name="from"/> to the core now, or answers why not.</summary>
    private void ProposeForwarded(ReadOnlyMemory<byte> command, ulong from, ulong requestId)
    {
        var r = _node.Propose(command);
        switch (r.Status)
        {
            case ProposeStatus.Accepted:
                FailReplacedProposal(r.Index);
                AddProposal(r.Index, new PendingProposal(r.Term, null, from, requestId, command.Length));
                _forwardedInFlight++;
                break;
            case ProposeStatus.NotLeader:
                Answer(from, requestId, ForwardStatus.NotLeader, 0, $"node {_node.Id} is not the leader");
                break;
            case ProposeStatus.Transferring:
                // Not proposed, and this node is about to stop leading: the follower routes again to the new leader.
                Answer(from, requestId, ForwardStatus.NotLeader, 0, $"node {_node.Id} is handing leadership to node {_node.LeadTransferee}");
                break;
            case ProposeStatus.TooLarge:
                Answer(from, requestId, ForwardStatus.NotApplied, (byte)NotAppliedReason.TooLarge,
                    new CommandTooLargeException(command.Length, _raftOptions.MaxEntryBytes).Message);
                break;
            default:
                Answer(from, requestId, ForwardStatus.NotApplied, (byte)NotAppliedReason.Overloaded,
                    new NodeOverloadedException("too many uncommitted bytes").Message);
                break;
        }
    }

    /// <summary>The follower side: an answer counts only for a forward of this run, and only from the node it was sent to.</summary>
    private void ReceiveForwardResult(ForwardResult m)
    {
        if (m.To != _node.Id || !_forwards.TryGetValue(m.RequestId, out var f) || f.Leader != m.From)
        {
            Counters.ForwardAnswerIgnored();
            return;
        }
        _forwards.Remove(m.RequestId);
        f.Completion.TrySetResult(m);
    }

    /// <summary>
    /// Forgets forwards whose caller stopped waiting, and gives up on those past the timeout, or whose leader has not
    /// led for an election timeout (<paramref name="ticks"/> counted since the last call): outcome unknown. A deposed
    /// leader that is alive answers its forwarded entries as they are applied or replaced, which takes a heartbeat or
    /// two of the new leader; one that crashed never answers, and its followers' callers should not wait the whole
    /// <see cref="ProposalForwarding.Timeout"/> for it. When the host also knows its link to that node is down
    /// (<see cref="INodeHost.IsLinkDown"/>: a killed process closes its connections), no answer can come over it and
    /// the forward is given up at once.
    /// </summary>
    private void ExpireForwards(int ticks)
    {
        if (_forwards.Count == 0 || _options.Forwarding is not { } forwarding) return;
        List<(ulong Id, UnknownReason Reason)>? expired = null;
        List<ulong>? leaderless = null;
        foreach (var (id, f) in _forwards)
        {
            if (f.Completion.Task.IsCompleted || _host.Time.GetElapsedTime(f.SentAt) > forwarding.Timeout)
                (expired ??= []).Add((id, UnknownReason.TimedOut));
            else if (_node.Leader != f.Leader && (f.TicksWithoutLeader + ticks >= _raftOptions.ElectionTicks || _host.IsLinkDown(f.Leader)))
                (expired ??= []).Add((id, UnknownReason.LeaderLost));
            else if (_node.Leader != f.Leader)
                (leaderless ??= []).Add(id);
        }
        if (leaderless is not null && ticks > 0)
        {
            foreach (var id in leaderless) _forwards[id] = _forwards[id] with { TicksWithoutLeader = _forwards[id].TicksWithoutLeader + ticks };
        }
        if (expired is null) return;
        foreach (var (id, reason) in expired)
        {
            _forwards.Remove(id, out var f);
            f.Completion.TrySetResult(LocalAnswer(ForwardStatus.Unknown, (byte)reason, f.Leader, reason == UnknownReason.TimedOut
                ? $"no answer from the leader (node {f.Leader}) in {forwarding.Timeout.TotalSeconds:0.#} s; the command may or may not have been applied"
                : $"the leader (node {f.Leader}) stopped leading before it answered; the command may or may not have been applied"));
        }
    }

    private void FailForwards(Exception error)
    {
        foreach (var (_, f) in _forwards) f.Completion.TrySetException(error);
        _forwards.Clear();
    }

    /// <summary>Answers a proposal with its apply result: this node's caller, or the follower that forwarded it.</summary>
    private void Succeed(in PendingProposal p, object? result)
    {
        if (p.Completion is { } completion)
        {
            completion.TrySetResult(result);
            return;
        }
        _forwardedInFlight--;
        var forwarding = _options.Forwarding!;
        byte[] payload;
        try
        {
            payload = forwarding.Results.Encode(result);
        }
        catch (Exception e)
        {
            LogResultNotEncoded(_logger, _raftOptions.Id, e);
            Answer(p.ForwardedBy, p.RequestId, ForwardStatus.Unknown, (byte)UnknownReason.ResultLost,
                "the command was applied, but the leader could not encode its result: " + e.Message);
            return;
        }
        if (payload.Length > forwarding.MaxResultBytes)
        {
            Answer(p.ForwardedBy, p.RequestId, ForwardStatus.Unknown, (byte)UnknownReason.ResultLost,
                $"the command was applied, but its result of {payload.Length} bytes is over the {forwarding.MaxResultBytes} bytes a leader sends back");
            return;
        }
        _host.Send(new ForwardResult(_node.Id, p.ForwardedBy, _node.Term, p.RequestId, ForwardStatus.Applied, 0, _node.Leader, "", "", payload));
    }

    /// <summary>Answers a proposal that was not applied, or whose fate is unknown.</summary>
    private void Fail(in PendingProposal p, Exception error)
    {
        if (p.Completion is { } completion)
        {
            completion.TrySetException(error);
            return;
        }
        _forwardedInFlight--;
        switch (error)
        {
            case ProposalDroppedException:
                // Certainly not applied, and the leadership it was proposed under is over: the follower routes again.
                Answer(p.ForwardedBy, p.RequestId, ForwardStatus.NotLeader, 0, error.Message);
                break;
            case ProposalOutcomeUnknownException unknown:
                Answer(p.ForwardedBy, p.RequestId, ForwardStatus.Unknown, (byte)unknown.Reason, error.Message);
                break;
            default:
                Answer(p.ForwardedBy, p.RequestId, ForwardStatus.Unknown, (byte)UnknownReason.Stopped, error.Message);
                break;
        }
    }

    private void Answer(ulong to, ulong requestId, ForwardStatus status, byte reason, string message) =>
        _host.Send(new ForwardResult(
            _node.Id, to, _node.Term, requestId, status, reason, _node.Leader, "",
            ForwardResult.Truncate(message, ForwardResult.MaxMessageBytes), ReadOnlyMemory<byte>.Empty));

    private ForwardResult LocalAnswer(ForwardStatus status, byte reason, ulong leader, string message) =>
        new(_node.Id, _node.Id, _node.Term, 0, status, reason, leader, "",
            ForwardResult.Truncate(message, ForwardResult.MaxMessageBytes), ReadOnlyMemory<byte>.Empty);

    private readonly record struct PendingForward(ulong Leader, TaskCompletionSource<ForwardResult> Completion, long SentAt, int TicksWithoutLeader = 0);

    [LoggerMessage(EventId = 10, Level = LogLevel.Error, Message = "Node {Id} applied a forwarded command but could not encode its result")]
    private static partial void LogResultNotEncoded(ILogger logger, ulong id, Exception exception);
}

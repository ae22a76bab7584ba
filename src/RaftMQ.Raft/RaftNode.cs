using System.Diagnostics;
using RaftMQ.Raft.Quorum;

namespace RaftMQ.Raft;

/// <summary>
/// The Raft consensus algorithm as a pure state machine (modelled on etcd's raft): it performs no I/O, reads no
/// clock, starts no thread and never awaits. Inputs are <see cref="Tick"/>, <see cref="Step"/>,
/// <see cref="Propose"/> and <see cref="ReadIndex"/>; outputs come as a <see cref="Ready"/> batch that the runtime
/// handles and then acknowledges with <see cref="Advance"/>. The same inputs always give the same outputs.
/// Inputs may continue while a Ready is outstanding (its entries being made durable off the loop): what they
/// produce waits for the next Ready, except the messages <see cref="TakeMessagesBeforeDurable"/> hands out.
/// </summary>
/// <remarks>Not thread-safe: one owner (a node's event loop or a test) calls it.</remarks>
public sealed partial class RaftNode
{
    private readonly RaftOptions _options;
    private readonly RaftLog _log;
    private readonly SplitMix64 _random;
    private readonly ProgressTracker _tracker;
    private readonly Queue<PendingRead> _pendingReads = new();
    private readonly List<PendingRead> _readsAwaitingCommit = [];
    private readonly HashSet<ulong> _forwardedReads = [];
    private List<RaftMessage> _messages = [];
    private List<ReadState> _readStates = [];

    private int _electionElapsed;
    private int _heartbeatElapsed;
    private int _randomizedElectionTimeout;
    private long _uncommittedBytes;
    private bool _broadcastPending;
    private bool _readRoundPending;
    private HardState _previousHardState;
    private HardState _durableHardState; // as of the last Ready advanced (the runtime persisted it)
    private SoftState _previousSoftState;
    private Ready? _outstandingReady;

    /// <summary>Creates a node over <paramref name="storage"/>, recovering term, vote and commit from it.</summary>
    public RaftNode(RaftOptions options, ILogStorage storage)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(storage);
        options.Validate();
        _options = options;
        Id = options.Id;
        var initial = storage.Snapshot.Configuration ?? new ClusterConfiguration(options.Voters);
        _tracker = new ProgressTracker(Id, initial, options.MaxInflightAppends);
        _random = new SplitMix64(options.RandomSeed ^ (options.Id * 0x9E3779B97F4A7C15UL));
        _log = new RaftLog(storage, options.Applied);
        LoadConfigurations(initial);
        var hs = storage.HardState;
        Term = hs.Term;
        Vote = hs.Vote;
        _previousHardState = hs;
        _durableHardState = hs;
        BecomeFollower(Term, 0);
        _previousSoftState = SoftState;
        // A cluster of one has nobody to wait for: it leads at once, also right after a restart.
        if (_tracker.SelfIsQuorum) Campaign();
    }

    /// <summary>This node's id.</summary>
    public ulong Id { get; }

    /// <summary>The current term (§5.1).</summary>
    public ulong Term { get; private set; }

    /// <summary>The candidate voted for in the current term, or 0.</summary>
    public ulong Vote { get; private set; }

    /// <summary>The leader this node knows of in the current term, or 0.</summary>
    public ulong Leader { get; private set; }

    /// <summary>This node's role.</summary>
    public Role Role { get; private set; }

    /// <summary>The highest index known to be committed.</summary>
    public ulong CommitIndex => _log.Committed;

    /// <summary>The highest index handed to the application.</summary>
    public ulong AppliedIndex => _log.Applied;

    /// <summary>
    /// Set by the host while it holds requests that wait for this node to apply new entries (a follower's long polls).
    /// A follower's append answers carry it (<see cref="AppendEntriesResponse.WantsCommit"/>), and a leader sends such
    /// a follower each new commit index at once; every other follower learns it with the next append or heartbeat
    /// (<see cref="MaybeCommit"/>). Only latency depends on it, never safety.
    /// </summary>
    public bool WaitingToApply { get; set; }

    /// <summary>
    /// A snapshot this node adopted (an <see cref="InstallSnapshot"/> it took) that the next <see cref="Ready"/> hands
    /// out, or null: right after stepping an InstallSnapshot, whether the core took it.
    /// </summary>
    public SnapshotMetadata? PendingSnapshot => _log.PendingSnapshot;

    /// <summary>The index of the last entry in the log (durable or not).</summary>
    public ulong LastIndex => _log.LastIndex;

    /// <summary>The term of the last entry in the log.</summary>
    public ulong LastTerm => _log.LastTerm;

    /// <summary>Index of the first entry still in the log (after the snapshot).</summary>
    public ulong FirstIndex => _log.FirstIndex;

    /// <summary>Ids of the voting members of the current configuration.</summary>
    public IReadOnlyList<ulong> Voters => _tracker.Voters;

    /// <summary>Ids of the learners of the current configuration.</summary>
    public IReadOnlyList<ulong> Learners => _tracker.Learners;

    /// <summary>Leader, role and term as one value.</summary>
    public SoftState SoftState => new(Leader, Role, Term);

    /// <summary>Term, vote and commit as they must be persisted.</summary>
    public HardState HardState => new(Term, Vote, _log.Committed);

    /// <summary>The log entry at <paramref name="index"/>, if the log holds it.</summary>
    public bool TryGetEntry(ulong index, out Entry entry)
    {
        entry = default;
        if (index < _log.FirstIndex || index > _log.LastIndex) return false;
        var list = new List<Entry>(1);
        _log.Slice(index, index + 1, long.MaxValue, list);
        entry = list[0];
        return true;
    }

    /// <summary>The leader's view of a follower's replication, for diagnostics ("Replicate match=5 next=6 ...").</summary>
    public string? DescribeProgress(ulong peer) =>
        Role == Role.Leader && _tracker.TryGetProgress(peer, out var p) ? p.ToString() : null;

    /// <summary>On the leader, the highest index known to be in <paramref name="peer"/>'s log; null elsewhere or for an unknown peer.</summary>
    public ulong? MatchIndexOf(ulong peer) =>
        Role == Role.Leader && _tracker.TryGetProgress(peer, out var p) ? p.Match : null;

    /// <summary>
    /// Ticks until the next tick that does something (a heartbeat, a quorum check, the end of a leadership transfer or
    /// an election timeout), at least 1. Ticks before it only count; a host may sleep until then, and must tick the
    /// node for the time that passed when anything else wakes it (messages change this value: a heartbeat received
    /// restarts the election timeout).
    /// </summary>
    public int TicksUntilTimeout
    {
        get
        {
            int ticks;
            if (Role == Role.Leader)
            {
                ticks = Math.Min(HeartbeatTicksInEffect - _heartbeatElapsed, ElectionTicksInEffect - _electionElapsed);
                if (_transferTarget != 0) ticks = Math.Min(ticks, _options.ElectionTicks - _transferElapsed);
            }
            else
            {
                ticks = ElectionTimeoutInEffect - _electionElapsed;
            }
            return Math.Max(1, ticks);
        }
    }

    /// <summary>Advances the logical clock by one tick: election timeouts, heartbeats and quorum checks.</summary>
    public void Tick()
    {
        if (Role == Role.Leader) TickLeader();
        else TickElection();
    }

    /// <summary>
    /// Proposes a command. Only the leader accepts; a follower answers <see cref="ProposeStatus.NotLeader"/> with
    /// the leader's id so the runtime can forward.
    /// </summary>
    public ProposeResult Propose(ReadOnlyMemory<byte> command)
    {
        if (Role != Role.Leader) return new ProposeResult(ProposeStatus.NotLeader, 0, 0, Leader);
        if (_transferTarget != 0) return new ProposeResult(ProposeStatus.Transferring, 0, 0, Id);
        if (command.Length > _options.MaxEntryBytes) return new ProposeResult(ProposeStatus.TooLarge, 0, 0, Id);
        var entry = new Entry(_log.LastIndex + 1, Term, EntryType.Command, command);
        // Bound the uncommitted tail, but always let one entry through so a big command cannot wedge the leader.
        if (_uncommittedBytes > 0 && _uncommittedBytes + entry.Size > _options.MaxUncommittedBytes)
            return new ProposeResult(ProposeStatus.Overloaded, 0, 0, Id);
        _log.AppendLeaderEntry(entry);
        _uncommittedBytes += entry.Size;
        _broadcastPending = true;
        Wake();
        return new ProposeResult(ProposeStatus.Accepted, entry.Index, Term, Id);
    }

    /// <summary>
    /// Asks for a linearizable read (thesis §6.4). When accepted, a <see cref="ReadState"/> with this context appears
    /// in a later <see cref="Ready"/> once leadership is confirmed by a quorum; on a follower the request is forwarded
    /// to the leader. A read may be lost with a leader change: callers time out and retry.
    /// </summary>
    public ProposeResult ReadIndex(ulong context)
    {
        if (Role == Role.Leader)
        {
            return AcceptRead(context, Id)
                ? new ProposeResult(ProposeStatus.Accepted, 0, Term, Id)
                : new ProposeResult(ProposeStatus.Overloaded, 0, 0, Id);
        }
        if (Leader == 0) return new ProposeResult(ProposeStatus.NotLeader, 0, 0, 0);
        if (_forwardedReads.Count >= _options.MaxPendingReads) return new ProposeResult(ProposeStatus.Overloaded, 0, 0, Leader);
        _forwardedReads.Add(context);
        Send(new ReadIndexRequest(Id, Leader, Term, context));
        return new ProposeResult(ProposeStatus.Accepted, 0, Term, Leader);
    }

    /// <summary>Handles a message from a peer.</summary>
    public void Step(RaftMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        // Adopting a snapshot replaces the log and the applied index that an outstanding Ready's Advance relies on.
        if (message is InstallSnapshot && _outstandingReady is not null)
            throw new InvalidOperationException("An InstallSnapshot must wait until the outstanding Ready is advanced.");
        if (message.To != Id || message.From == Id || !AcceptsFrom(message)) return;
        // A term or index no real cluster reaches is hostile or corrupt: adopting it could leave this node at a term
        // it can never campaign past (the transport refuses such messages too; this guards every other caller).
        if (RaftLimits.FirstOutOfRange(message) is not null) return;
        // Snapshot bytes are the runtime's business; the core sees the finished transfer as InstallSnapshot.
        if (message is SnapshotChunk or SnapshotChunkResponse) return;

        if (message.Term > Term)
        {
            if (message is RequestVote { LeadershipTransfer: false } && _options.CheckQuorum && Leader != 0
                && _electionElapsed < ElectionTicksInEffect)
            {
                // Thesis §4.2.3: while we hear from a current leader, ignore (pre-)vote requests from a disruptive node;
                // an election the leader itself asked for (§3.10) is the exception.
                return;
            }
            if (message is RequestVote { PreVote: true } or RequestVoteResponse { PreVote: true, Granted: true })
            {
                // A pre-vote does not change terms (thesis §9.6); a granted pre-vote answer carries the future term.
            }
            else
            {
                var leader = message is AppendEntries or Heartbeat or InstallSnapshot ? message.From : 0;
                BecomeFollower(message.Term, leader);
            }
        }
        else if (message.Term < Term)
        {
            if ((_options.CheckQuorum || _options.PreVote) && message is AppendEntries or Heartbeat or InstallSnapshot)
            {
                // A stale leader (e.g. one back from a partition) learns our term and steps down; without this a
                // node whose term rose while cut off could wait forever, since pre-vote keeps it from campaigning.
                Send(new AppendEntriesResponse(Id, message.From, Term, false, 0, 0, 0));
            }
            else if (message is RequestVote { PreVote: true })
            {
                Send(new RequestVoteResponse(Id, message.From, Term, false, true));
            }
            return;
        }

        switch (message)
        {
            case RequestVote rv:
                HandleRequestVote(rv);
                return;
            case ReadIndexResponse rr:
                // Only an answer to a read this node forwarded to this leader in this term counts: a late answer to
                // a read of an earlier run (contexts of a new run could repeat) must not confirm a new one.
                if (rr.From == Leader && _forwardedReads.Remove(rr.Context)) _readStates.Add(new ReadState(rr.Context, rr.Index));
                return;
        }

        switch (Role)
        {
            case Role.Leader:
                StepLeader(message);
                break;
            case Role.Candidate:
            case Role.PreCandidate:
                StepCandidate(message);
                break;
            default:
                StepFollower(message);
                break;
        }
    }

    /// <summary>Whether <see cref="GetReady"/> has anything to hand out.</summary>
    public bool HasReady()
    {
        if (_outstandingReady is not null) return false;
        Flush();
        return !SoftState.Equals(_previousSoftState)
            || !HardState.Equals(_previousHardState)
            || _log.HasUnstable
            || _log.HasNextCommittedEntries
            || _messages.Count > 0
            || _readStates.Count > 0;
    }

    /// <summary>
    /// Takes the pending outputs. Call <see cref="Advance"/> with it before the next <see cref="GetReady"/>; inputs
    /// may be given meanwhile (except an <see cref="InstallSnapshot"/>), while the runtime makes the Ready durable.
    /// </summary>
    public Ready GetReady()
    {
        EnsureNoOutstandingReady();
        Flush();
        var soft = SoftState;
        var hard = HardState;
        var entries = _log.UnstableEntries();
        var snapshot = _log.PendingSnapshot;
        var mustSync = entries.Length > 0 || snapshot is not null
            || hard.Term != _previousHardState.Term || hard.Vote != _previousHardState.Vote;
        var ready = new Ready(
            soft.Equals(_previousSoftState) ? null : soft,
            hard.Equals(_previousHardState) ? null : hard,
            entries,
            _log.NextCommittedEntries(_options.MaxBytesPerApplyBatch),
            _messages,
            _readStates,
            mustSync,
            snapshot);
        _previousSoftState = soft;
        _previousHardState = hard;
        _messages = [];
        _readStates = [];
        _outstandingReady = ready;
        return ready;
    }

    /// <summary>The runtime persisted, sent and applied everything in <paramref name="ready"/>.</summary>
    public void Advance(Ready ready)
    {
        ArgumentNullException.ThrowIfNull(ready);
        if (!ReferenceEquals(ready, _outstandingReady))
            throw new InvalidOperationException("Advance must be given the Ready returned by the last GetReady.");
        _outstandingReady = null;
        if (ready.HardState is { } persisted) _durableHardState = persisted;
        if (ready.Snapshot is { } snapshot) _log.SnapshotStableTo(snapshot);
        if (ready.Entries.Count > 0)
        {
            // What this Ready wrote and the log still holds is durable now: an append that replaced a suffix of it
            // meanwhile leaves the prefix before the replacement, which is not written again (it may already be
            // compacted behind a snapshot taken meanwhile).
            var written = WrittenAndStillInTheLog(ready);
            if (written >= ready.Entries[0].Index) _log.StableTo(written, _log.Term(written));
            // A commit this advances goes out with the next append or heartbeat, or at once to followers that want it (Flush).
            if (Role == Role.Leader && _tracker[Id].MaybeUpdate(_log.StableLastIndex)) MaybeCommit();
        }
        if (ready.CommittedEntries.Count > 0)
        {
            // Entries handed out by TakeCommittedBeforeDurable meanwhile follow these: the applied index is past them.
            var last = ready.CommittedEntries[^1].Index;
            if (last > _log.Applied) _log.AppliedTo(last);
            ReleaseUncommittedBytes(ready.CommittedEntries);
        }
    }

    /// <summary>
    /// While a Ready is outstanding, takes the entries committed since that it does not hand out, at most
    /// <paramref name="maxBytes"/> of them (at least one), for the runtime to apply at once, after the outstanding
    /// Ready's own <see cref="Ready.CommittedEntries"/> and before its write ends. A committed entry is durable on a
    /// majority and can never change, so applying it does not wait for this node's own copy to be durable: a leader
    /// whose followers acknowledged an entry before its own fsync ended applies it then (thesis §10.2.1). Only entries
    /// up to the last one the outstanding Ready writes are handed out: everything applied is in the written log, and
    /// once that write is durable, in the durable log. The next Ready does not hand these entries out again.
    /// </summary>
    public IReadOnlyList<Entry> TakeCommittedBeforeDurable(long maxBytes)
    {
        if (_outstandingReady is not { } outstanding || _log.PendingSnapshot is not null) return [];
        var from = _log.Applied;
        if (outstanding.CommittedEntries.Count > 0) from = Math.Max(from, outstanding.CommittedEntries[^1].Index);
        var to = Math.Min(_log.Committed, WrittenAndStillInTheLog(outstanding));
        if (to <= from) return [];
        var list = RaftLog.NewSliceList(from + 1, to + 1);
        _log.Slice(from + 1, to + 1, maxBytes, list);
        _log.AppliedTo(list[^1].Index);
        ReleaseUncommittedBytes(list);
        return list;
    }

    /// <summary>
    /// The last index up to which this node's log holds what is written (by earlier Readies, and by
    /// <paramref name="outstanding"/>, whose write may not have ended). An append of a new leader that arrived meanwhile
    /// may have replaced a suffix of what the outstanding Ready writes (§5.3: a conflicting entry and all that follow
    /// it): those indexes now hold other entries, not yet written, which must not be applied before they are.
    /// </summary>
    private ulong WrittenAndStillInTheLog(Ready outstanding)
    {
        var entries = outstanding.Entries;
        // Same index and term: the same entry, and (Log Matching) the same log before it. So the common case, nothing
        // replaced, is one look-up, however many entries the Ready writes.
        if (entries.Count > 0 && _log.TryTerm(entries[^1].Index, out var lastTerm) && lastTerm == entries[^1].Term)
            return entries[^1].Index;
        var written = _log.StableLastIndex;
        foreach (var e in entries)
        {
            if (!_log.TryTerm(e.Index, out var term) || term != e.Term) break;
            written = e.Index;
        }
        return written;
    }

    private void ReleaseUncommittedBytes(IReadOnlyList<Entry> applied)
    {
        if (Role != Role.Leader) return;
        foreach (var e in applied)
            if (e.Term == Term) _uncommittedBytes -= e.Size;
        if (_uncommittedBytes < 0) _uncommittedBytes = 0;
    }

    /// <summary>
    /// While a Ready is outstanding, takes the messages produced since that need nothing of it to be durable, so the
    /// runtime sends them before its write ends: a leader's (it counts itself only once durable, thesis §10.2.1: its
    /// appends and heartbeats may go at once), and elsewhere heartbeat responses and forwarded read requests, which
    /// promise nothing about the log. Only while this node's term and vote are those last persisted: a message that
    /// carries a term or vote not yet durable waits for the Ready that persists it. The rest wait for the next Ready.
    /// </summary>
    public IReadOnlyList<RaftMessage> TakeMessagesBeforeDurable()
    {
        if (Term != _durableHardState.Term || Vote != _durableHardState.Vote) return [];
        Flush();
        if (_messages.Count == 0) return [];
        if (Role == Role.Leader)
        {
            var all = _messages;
            _messages = [];
            return all;
        }
        List<RaftMessage>? early = null;
        var kept = 0;
        for (var i = 0; i < _messages.Count; i++)
        {
            var m = _messages[i];
            if (m is HeartbeatResponse or ReadIndexRequest) (early ??= []).Add(m);
            else _messages[kept++] = m;
        }
        if (early is null) return [];
        _messages.RemoveRange(kept, _messages.Count - kept);
        return early;
    }

    private void EnsureNoOutstandingReady()
    {
        if (_outstandingReady is not null)
            throw new InvalidOperationException("The last Ready has not been advanced.");
    }

    // ---- elections (§5.2) ----

    private void TickElection()
    {
        _electionElapsed++;
        if (_electionElapsed >= ElectionTimeoutInEffect)
        {
            _electionElapsed = 0;
            StartElection();
        }
    }

    private void TickLeader()
    {
        _heartbeatElapsed++;
        _electionElapsed++;
        if (_idleTicks < int.MaxValue) _idleTicks++;
        if (_transferTarget != 0 && ++_transferElapsed >= _options.ElectionTicks)
        {
            // Thesis §3.10: the target did not take over within an election timeout; lead on and accept proposals.
            AbortLeadershipTransfer();
        }
        if (_electionElapsed >= ElectionTicksInEffect)
        {
            _electionElapsed = 0;
            // A quiet leader wakes when any follower went silent for a whole (quiet) period: a cluster missing a member
            // runs at the normal pace.
            if (_quiesced && !_tracker.AllRecentlyActive()) Wake();
            var quorumActive = QuorumRecentlyActive();
            MaybeForgetDeparting(periodEnded: true);
            if (_options.CheckQuorum && !quorumActive)
            {
                // Thesis §6.2: a leader that has not heard from a majority for an election timeout steps down.
                BecomeFollower(Term, 0);
                return;
            }
        }
        if (_heartbeatElapsed >= HeartbeatTicksInEffect)
        {
            _heartbeatElapsed = 0;
            if (!_quiesced && CanQuiesce()) _quiesced = true;
            BroadcastHeartbeat();
        }
    }

    private void StartElection()
    {
        if (!Promotable)
        {
            // A learner, a removed node or one that has not joined yet never campaigns; it only stops counting on a
            // leader it no longer hears from, so that it answers the vote requests of a new one.
            Leader = 0;
            return;
        }
        if (_options.PreVote) BecomePreCandidate();
        else Campaign();
    }

    private void BecomePreCandidate()
    {
        // Thesis §9.6: ask whether we could win before disturbing anyone's term.
        Role = Role.PreCandidate;
        Leader = 0;
        _quiesced = false; // a node that campaigns retries at the normal timeout, quiet leader or not
        _tracker.ResetVotes();
        _tracker.RecordVote(Id, true);
        if (_tracker.TallyVotes() == VoteResult.Won)
        {
            Campaign();
            return;
        }
        foreach (var peer in _tracker.Voters)
            if (peer != Id) Send(new RequestVote(Id, peer, Term + 1, _log.LastIndex, _log.LastTerm, true));
    }

    private void Campaign(bool leadershipTransfer = false)
    {
        Reset(Term + 1);
        Role = Role.Candidate;
        Vote = Id;
        _tracker.RecordVote(Id, true);
        if (_tracker.TallyVotes() == VoteResult.Won)
        {
            BecomeLeader();
            return;
        }
        foreach (var peer in _tracker.Voters)
            if (peer != Id) Send(new RequestVote(Id, peer, Term, _log.LastIndex, _log.LastTerm, false, leadershipTransfer));
    }

    private void HandleRequestVote(RequestVote rv)
    {
        // §5.2: one vote per term, first come first served; a pre-vote for a later term binds nothing.
        var canVote = Vote == rv.From || (Vote == 0 && Leader == 0) || (rv.PreVote && rv.Term > Term);
        // §5.4.1: only for a candidate whose log is at least as up to date as ours.
        if (canVote && _log.IsUpToDate(rv.LastLogIndex, rv.LastLogTerm))
        {
            if (rv.PreVote && !_tracker.Replicas.Contains(rv.From)) _preVoteGrantedToNonMember = (rv.From, rv.Term);
            Send(new RequestVoteResponse(Id, rv.From, rv.Term, true, rv.PreVote));
            if (!rv.PreVote)
            {
                _electionElapsed = 0;
                Vote = rv.From;
            }
        }
        else
        {
            Send(new RequestVoteResponse(Id, rv.From, Term, false, rv.PreVote));
        }
    }

    private void StepCandidate(RaftMessage message)
    {
        switch (message)
        {
            case AppendEntries ae:
                // §5.2: a candidate that hears from a leader of its term returns to follower.
                BecomeFollower(ae.Term, ae.From);
                HandleAppendEntries(ae);
                break;
            case Heartbeat hb:
                BecomeFollower(hb.Term, hb.From);
                HandleHeartbeat(hb);
                break;
            case InstallSnapshot snap:
                BecomeFollower(snap.Term, snap.From);
                HandleInstallSnapshot(snap);
                break;
            case RequestVoteResponse vr when vr.PreVote == (Role == Role.PreCandidate):
                _tracker.RecordVote(vr.From, vr.Granted);
                switch (_tracker.TallyVotes())
                {
                    case VoteResult.Won:
                        if (Role == Role.PreCandidate) Campaign();
                        else BecomeLeader();
                        break;
                    case VoteResult.Lost:
                        BecomeFollower(Term, 0);
                        break;
                }
                break;
        }
    }

    private void StepFollower(RaftMessage message)
    {
        switch (message)
        {
            case AppendEntries ae:
                _electionElapsed = 0;
                Leader = ae.From;
                _quiesced = false;
                HandleAppendEntries(ae);
                break;
            case Heartbeat hb:
                _electionElapsed = 0;
                Leader = hb.From;
                HandleHeartbeat(hb);
                break;
            case InstallSnapshot snap:
                _electionElapsed = 0;
                Leader = snap.From;
                _quiesced = false;
                HandleInstallSnapshot(snap);
                break;
            case TimeoutNow:
                // Thesis §3.10: the leader brought our log up to date and asks us to take over at once.
                if (Promotable) Campaign(leadershipTransfer: true);
                break;
        }
    }

    /// <summary>§7 / Figure 13: adopt the leader's snapshot unless the log already holds what it covers.</summary>
    private void HandleInstallSnapshot(InstallSnapshot m)
    {
        var snap = m.Snapshot;
        if (snap.Index <= _log.Committed)
        {
            Send(new AppendEntriesResponse(Id, m.From, Term, false, _log.Committed, 0, 0));
            return;
        }
        if (_log.MatchTerm(snap.Index, snap.Term))
        {
            // "If existing log entry has same index and term as snapshot's last included entry, retain log entries
            // following it": the entries are already here, only the commit index moves.
            _log.CommitTo(snap.Index);
        }
        else
        {
            // Without a configuration in the snapshot, the last one this node knows committed is the best it has.
            var fallback = ConfigurationAt(_log.Committed);
            _log.Restore(snap);
            RestoreConfiguration(snap, fallback);
        }
        Send(new AppendEntriesResponse(Id, m.From, Term, false, snap.Index, 0, 0));
    }

    /// <summary>
    /// The runtime reports how a snapshot transfer to <paramref name="peer"/> ended. On failure the leader probes the
    /// follower again (after its next heartbeat response), which starts a new transfer if it is still needed.
    /// </summary>
    public void ReportSnapshot(ulong peer, bool succeeded)
    {
        if (Role != Role.Leader || !_tracker.TryGetProgress(peer, out var pr) || pr.State != ReplicationState.Snapshot) return;
        if (!succeeded) pr.AbortSnapshot();
        pr.BecomeProbe();
        // Wait for the follower's answer (or a heartbeat response) before sending more.
        pr.ProbeSent = true;
    }

    // ---- log replication (§5.3) ----

    private void HandleAppendEntries(AppendEntries ae)
    {
        if (ae.PrevLogIndex < _log.Committed)
        {
            // Everything up to our commit index already matches the leader (§5.4 leader completeness).
            Send(new AppendEntriesResponse(Id, ae.From, Term, false, _log.Committed, 0, 0, WaitingToApply));
            return;
        }
        if (!ConfigurationEntriesValid(ae)) return;
        if (_log.TryAppend(ae.PrevLogIndex, ae.PrevLogTerm, ae.Entries, out var lastNew))
        {
            NoteAppended(ae.PrevLogIndex, ae.Entries);
            // Figure 2, AppendEntries rule 5: commit up to min(leaderCommit, index of last new entry).
            _log.CommitTo(Math.Min(ae.LeaderCommit, lastNew));
            Send(new AppendEntriesResponse(Id, ae.From, Term, false, lastNew, 0, 0, WaitingToApply));
            return;
        }
        // §5.3 optimisation: name our last entry whose term is at most the leader's PrevLogTerm, so the leader can
        // skip a whole divergent term per round trip instead of one entry.
        var hintIndex = _log.FindConflictByTerm(Math.Min(ae.PrevLogIndex, _log.LastIndex), ae.PrevLogTerm);
        Send(new AppendEntriesResponse(Id, ae.From, Term, true, ae.PrevLogIndex, hintIndex, _log.Term(hintIndex)));
    }

    private void HandleHeartbeat(Heartbeat hb)
    {
        // The leader sends min(matchIndex, commit), so this never passes what we hold.
        _log.CommitTo(Math.Min(hb.Commit, _log.LastIndex));
        FollowPace(hb.Quiesced);
        Send(new HeartbeatResponse(Id, hb.From, Term, hb.ReadRound));
    }

    private void StepLeader(RaftMessage message)
    {
        switch (message)
        {
            case AppendEntriesResponse r when _tracker.TryGetProgress(r.From, out var pr):
                pr.RecentActive = true;
                if (r.Reject)
                {
                    Wake();
                    var hint = r.HintTerm > 0 ? _log.FindConflictByTerm(r.HintIndex, r.HintTerm) : r.HintIndex;
                    if (pr.MaybeDecrTo(r.Index, hint))
                    {
                        if (pr.State == ReplicationState.Replicate) pr.BecomeProbe();
                        SendAppend(r.From, sendIfEmpty: true);
                    }
                    break;
                }
                pr.WantsCommit = r.WantsCommit;
                if (!pr.MaybeUpdate(r.Index)) break;
                if (pr.State == ReplicationState.Snapshot)
                {
                    if (pr.Match < pr.PendingSnapshot) break;
                    pr.BecomeProbe();
                    pr.BecomeReplicate();
                }
                else if (pr.State == ReplicationState.Probe)
                {
                    pr.BecomeReplicate();
                }
                else
                {
                    pr.FreeInflightTo(r.Index);
                }
                MaybeCommit(); // goes out with the next append or heartbeat, or at once to followers that want it (Flush)
                // Pipelining: keep the follower's window full while it is behind.
                while (SendAppend(r.From, sendIfEmpty: false))
                {
                }
                if (r.From == _transferTarget) MaybeSendTimeoutNow();
                if (_tracker.Departing.Count > 0) MaybeForgetDeparting(periodEnded: false);
                break;
            case HeartbeatResponse h when _tracker.TryGetProgress(h.From, out var pr):
                pr.RecentActive = true;
                pr.ProbeSent = false;
                // The follower is alive, but a full window may hold only lost appends, whose answers never come.
                // Free one slot so an append goes out; if the follower lacks entries its rejection restarts probing.
                if (pr.State == ReplicationState.Replicate && pr.InflightFull) pr.FreeFirstInflight();
                if (pr.Match < _log.LastIndex)
                {
                    Wake();
                    SendAppend(h.From, sendIfEmpty: true);
                }
                if (_tracker.RecordReadRoundAck(h.From, h.ReadRound)) ReleaseConfirmedReads();
                break;
            case ReadIndexRequest rq:
                AcceptRead(rq.Context, rq.From);
                break;
        }
    }

    /// <summary>Sends the follower the entries from its Next; false when paused or (unless asked) nothing to send.</summary>
    private bool SendAppend(ulong to, bool sendIfEmpty)
    {
        // A member removed by a change that just committed has no progress any more.
        if (!_tracker.TryGetProgress(to, out var pr) || pr.IsPaused) return false;
        var prevIndex = pr.Next - 1;
        if (!_log.TryTerm(prevIndex, out var prevTerm))
        {
            // §7: the entries this follower needs are compacted away; it gets the snapshot instead.
            var snapshot = _log.StorageSnapshot;
            // The follower adopts the configuration as of the snapshot with it (§4 with §7).
            snapshot = snapshot with { Configuration = snapshot.Configuration ?? ConfigurationAt(snapshot.Index) };
            Send(new InstallSnapshot(Id, to, Term, snapshot));
            pr.BecomeSnapshot(snapshot.Index);
            return true;
        }
        IReadOnlyList<Entry> entries = [];
        if (pr.Next <= _log.LastIndex)
        {
            var slice = RaftLog.NewSliceList(pr.Next, _log.LastIndex + 1);
            _log.Slice(pr.Next, _log.LastIndex + 1, _options.MaxBytesPerAppend, slice);
            entries = slice;
        }
        if (entries.Count == 0 && !sendIfEmpty) return false;
        Send(new AppendEntries(Id, to, Term, prevIndex, prevTerm, entries, _log.Committed));
        pr.SentCommit(_log.Committed);
        pr.SentEntries(entries.Count > 0 ? entries[^1].Index : prevIndex, entries.Count);
        return true;
    }

    private void BroadcastHeartbeat()
    {
        foreach (var peer in _tracker.ReplicationTargets)
        {
            if (peer == Id) continue;
            var pr = _tracker[peer];
            var commit = Math.Min(pr.Match, _log.Committed);
            Send(new Heartbeat(Id, peer, Term, commit, _tracker.ReadRound, _quiesced));
            pr.SentCommit(commit);
            if (pr.State == ReplicationState.Probe && pr.ProbeSent && pr.SilentLastPeriod && !pr.RecentActive)
            {
                // A follower whose log lags behind the change that added this leader drops its heartbeats (it does not
                // know the sender) but takes appends and snapshots (thesis §4.1): after a silent election timeout an
                // empty append re-sends the lost probe, or, when this log was compacted past what the follower
                // needs, the snapshot is sent (without it such a follower never answered and never caught up).
                if (_log.TryTerm(pr.Next - 1, out var prevTerm))
                {
                    Send(new AppendEntries(Id, peer, Term, pr.Next - 1, prevTerm, [], _log.Committed));
                    pr.SentCommit(_log.Committed);
                }
                else
                {
                    pr.ProbeSent = false;
                    SendAppend(peer, sendIfEmpty: true);
                }
            }
        }
    }

    /// <summary>Sends what proposals and commits of this step owe the followers, once per Ready (batching).</summary>
    private void Flush()
    {
        if (Role != Role.Leader) return;
        if (_readRoundPending)
        {
            _readRoundPending = false;
            _tracker.StartReadRound();
            BroadcastHeartbeat();
        }
        if (_broadcastPending)
        {
            _broadcastPending = false;
            foreach (var peer in _tracker.ReplicationTargets)
                if (peer != Id) SendAppend(peer, sendIfEmpty: true);
        }
        // A follower that holds requests waiting to apply gets a new commit index at once (an append, empty when it
        // has every entry), instead of with the next append or heartbeat.
        foreach (var peer in _tracker.ReplicationTargets)
        {
            if (peer == Id) continue;
            var pr = _tracker[peer];
            if (pr.WantsCommit && pr.CommitSent < Math.Min(pr.Match, _log.Committed)) SendAppend(peer, sendIfEmpty: true);
        }
        MaybeStepDownAfterRemoval();
    }

    /// <summary>
    /// §5.3/§5.4.2: commit the highest index a quorum holds, but only an entry of the current term. No append is sent
    /// for the new commit index alone, except to followers that asked for it (<see cref="WaitingToApply"/>, in
    /// <see cref="Flush"/>): the others learn it with the next append or heartbeat (every
    /// <see cref="RaftOptions.HeartbeatTicks"/>), §5.3's "eventually". A follower needs it only to apply, and only
    /// its own waiting requests wait on that: a proposal is answered by the leader (a forwarded one too), and a read on
    /// a follower learns the commit index from its read round's heartbeat. Sent alone to every follower, it cost each
    /// a round trip per commit: half of a lone writer's peer messages (docs/benchmarks.md, "The commit only to
    /// followers that wait").
    /// </summary>
    private bool MaybeCommit()
    {
        var candidate = _tracker.Committed();
#if MUTATION_COMMITPREVIOUSTERM
        if (candidate <= _log.Committed) return false; // the bug: a previous-term entry is committed by counting replicas
#else
        if (candidate <= _log.Committed || _log.Term(candidate) != Term) return false;
#endif
        var firstCommitInTerm = _log.Term(_log.Committed) != Term;
        _log.CommitTo(candidate);
        MaybeForgetDeparting(periodEnded: false);
        if (firstCommitInTerm && _readsAwaitingCommit.Count > 0)
        {
            foreach (var r in _readsAwaitingCommit) StartRead(r.Context, r.From);
            _readsAwaitingCommit.Clear();
        }
        return true;
    }

    /// <summary>Whether a quorum was heard from in the election timeout now ending; the next one starts afresh.</summary>
    private bool QuorumRecentlyActive()
    {
        var active = _tracker.QuorumActive();
        _tracker.ResetRecentActive();
        return active;
    }

    // ---- linearizable reads (thesis §6.4) ----

    private readonly record struct PendingRead(ulong Context, ulong Index, ulong Round, ulong From);

    private bool AcceptRead(ulong context, ulong from)
    {
        if (_pendingReads.Count + _readsAwaitingCommit.Count >= _options.MaxPendingReads) return false;
        if (_log.Term(_log.Committed) != Term)
        {
            // The leader does not yet know the full commit index until its no-op commits (§6.4 step 1).
            _readsAwaitingCommit.Add(new PendingRead(context, 0, 0, from));
            return true;
        }
        StartRead(context, from);
        return true;
    }

    private void StartRead(ulong context, ulong from)
    {
#if MUTATION_READWITHOUTROUND
        if (_tracker.SelfIsQuorum || Term > 0) // the bug: the leader answers without confirming it still leads
#else
        if (_tracker.SelfIsQuorum)
#endif
        {
            DeliverRead(new PendingRead(context, _log.Committed, 0, from));
            return;
        }
        // Reads that arrive before the next flush share one heartbeat round.
        _pendingReads.Enqueue(new PendingRead(context, _log.Committed, _tracker.ReadRound + 1, from));
        _readRoundPending = true;
    }

    private void ReleaseConfirmedReads()
    {
        var confirmed = _tracker.ConfirmedReadRound();
        while (_pendingReads.Count > 0 && _pendingReads.Peek().Round <= confirmed)
            DeliverRead(_pendingReads.Dequeue());
    }

    private void DeliverRead(PendingRead read)
    {
        if (read.From == Id) _readStates.Add(new ReadState(read.Context, read.Index));
        else Send(new ReadIndexResponse(Id, read.From, Term, read.Context, read.Index));
    }

    // ---- role changes ----

    private void Reset(ulong term)
    {
        if (term != Term)
        {
            Term = term;
            Vote = 0;
        }
        Leader = 0;
        _electionElapsed = 0;
        _heartbeatElapsed = 0;
        _randomizedElectionTimeout = _options.ElectionTicks + _random.Next(_options.ElectionTicks);
        _tracker.ResetVotes();
        _tracker.ClearProgress();
        _pendingReads.Clear();
        _readsAwaitingCommit.Clear();
        _forwardedReads.Clear();
        _readRoundPending = false;
        _broadcastPending = false;
        _uncommittedBytes = 0;
        _transferTarget = 0;
        _transferElapsed = 0;
        _quiesced = false;
        _idleTicks = 0;
    }

    private void BecomeFollower(ulong term, ulong leader)
    {
        Reset(term);
        Role = Role.Follower;
        Leader = leader;
    }

    private void BecomeLeader()
    {
        Debug.Assert(Role == Role.Candidate);
        Reset(Term);
        Role = Role.Leader;
        Leader = Id;
        // Members that the latest, uncommitted change removes still get the log until it commits, from this leader
        // too, not only from the one that proposed it: else one that still counts itself a voter (Promotable) hears
        // nothing, campaigns and, without pre-vote or check-quorum, deposes every leader that needs longer than an
        // election timeout to commit the change (thesis §4.2.3).
        _tracker.ResetProgress(_log.LastIndex + 1, ConfigurationIndex > _log.Committed ? PreviousConfiguration : null);
        _tracker[Id].MaybeUpdate(_log.StableLastIndex);
        // §5.4.2 and §8: a leader commits entries of earlier terms only by committing one of its own; the no-op is it.
        var noOp = new Entry(_log.LastIndex + 1, Term, EntryType.NoOp, ReadOnlyMemory<byte>.Empty);
        _log.AppendLeaderEntry(noOp);
        _uncommittedBytes += noOp.Size;
        _broadcastPending = true;
    }

    private void Send(RaftMessage message) => _messages.Add(message);
}

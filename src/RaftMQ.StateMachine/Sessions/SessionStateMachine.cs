using System.Text;

namespace RaftMQ.StateMachine.Sessions;

/// <summary>
/// Client sessions over any state machine (thesis §6.3): a client registers a session, numbers its commands, and a
/// command that reaches the log twice — the client retried after losing the answer — is applied once; the retry
/// gets the recorded result. The table is bounded (sessions, results per session, result size), expires idle
/// sessions by the timestamps carried in the log (never a node's own clock, so every node expires the same ones),
/// and is written into the same snapshot as the inner state machine, ahead of it.
/// </summary>
/// <remarks>
/// Every entry must be a <see cref="SessionCommand"/> envelope. Queries bypass the session layer: read the inner
/// state machine through the runtime's <c>ReadAsync</c>.
/// </remarks>
public sealed class SessionStateMachine : IStateMachine
{
    private const uint SnapshotMagic = 0x53514D52; // "RMQS"
    private const byte SnapshotVersion = 1;

    private readonly IStateMachine _inner;
    private readonly IResultCodec _codec;
    private readonly ClientSessionOptions _options;
    private readonly Dictionary<ulong, Session> _sessions = [];
    private readonly LinkedList<Session> _byActivity = []; // least recently active first
    private long _clockMs;

    public SessionStateMachine(IStateMachine inner, IResultCodec codec, ClientSessionOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(inner);
        ArgumentNullException.ThrowIfNull(codec);
        _options = options ?? new ClientSessionOptions();
        _options.Validate();
        _inner = inner;
        _codec = codec;
    }

    /// <summary>The wrapped application state machine.</summary>
    public IStateMachine Inner => _inner;

    /// <summary>Open sessions.</summary>
    public int SessionCount => _sessions.Count;

    /// <summary>The newest timestamp seen in the log: the session table's clock.</summary>
    public long ClockMs => _clockMs;

    /// <summary>Whether session <paramref name="sessionId"/> is open.</summary>
    public bool HasSession(ulong sessionId) => _sessions.ContainsKey(sessionId);

    public object? Apply(ulong index, ReadOnlyMemory<byte> command)
    {
        if (!SessionCommand.TryDecode(command, out var c)) return new SessionRejected(SessionRejection.Malformed, 0, 0);
        if (c.Kind == SessionCommandKind.Plain) return _inner.Apply(index, c.Payload);
        // A new leader's clock may be behind the old one's: time never goes back for the table.
        _clockMs = Math.Max(_clockMs, c.TimestampMs);
        ExpireIdle();
        switch (c.Kind)
        {
            case SessionCommandKind.Register:
                while (_sessions.Count >= _options.MaxSessions) Remove(_byActivity.First!.Value);
                var session = new Session(index);
                session.Node = _byActivity.AddLast(session);
                session.LastActiveMs = _clockMs;
                _sessions.Add(index, session);
                return new SessionRegistered(index);
            case SessionCommandKind.Close:
                var existed = _sessions.TryGetValue(c.SessionId, out var closing);
                if (existed) Remove(closing!);
                return new SessionClosed(c.SessionId, existed);
            default:
                return ApplyInSession(index, c);
        }
    }

    private object? ApplyInSession(ulong index, SessionCommand c)
    {
        if (!_sessions.TryGetValue(c.SessionId, out var session))
            return new SessionRejected(SessionRejection.UnknownSession, c.SessionId, c.Sequence);
        Touch(session);
        if (c.AcknowledgedBelow > session.Floor)
        {
            // The client has these answers: forget them (the §6.3 "lowest sequence without a response" rule).
            while (session.Results.Count > 0 && session.Results.Keys[0] < c.AcknowledgedBelow) session.Results.RemoveAt(0);
            session.Floor = c.AcknowledgedBelow;
        }
        if (session.Results.TryGetValue(c.Sequence, out var recorded))
        {
            return recorded is null
                ? new SessionRejected(SessionRejection.ResultNotKept, c.SessionId, c.Sequence)
                : _codec.Decode(recorded);
        }
        if (c.Sequence < session.Floor) return new SessionRejected(SessionRejection.StaleSequence, c.SessionId, c.Sequence);

        var result = _inner.Apply(index, c.Payload);
        var bytes = _codec.Encode(result);
        session.Results.Add(c.Sequence, bytes.Length <= _options.MaxResultBytes ? bytes : null);
        if (session.Results.Count > _options.MaxResultsPerSession)
        {
            // Forgetting a result must also refuse its sequence from now on, or a late retry would apply again.
            session.Floor = Math.Max(session.Floor, session.Results.Keys[0] + 1);
            session.Results.RemoveAt(0);
        }
        return result;
    }

    private void Touch(Session session)
    {
        session.LastActiveMs = _clockMs;
        _byActivity.Remove(session.Node!);
        _byActivity.AddLast(session.Node!);
    }

    private void ExpireIdle()
    {
        // Activity times only grow along the list, so the idle sessions are a prefix of it.
        var timeoutMs = (long)_options.SessionTimeout.TotalMilliseconds;
        while (_byActivity.First is { } oldest && _clockMs - oldest.Value.LastActiveMs > timeoutMs) Remove(oldest.Value);
    }

    private void Remove(Session session)
    {
        _sessions.Remove(session.Id);
        _byActivity.Remove(session.Node!);
    }

    /// <summary>
    /// The session table is bounded (<see cref="ClientSessionOptions"/>), so it is serialized at capture; the inner
    /// state machine captures its own view. The table goes ahead of the inner state in the snapshot.
    /// </summary>
    public IStateMachineSnapshot CaptureSnapshot()
    {
        var table = StateMachineSnapshots.Serialized(WriteTable);
        var inner = _inner.CaptureSnapshot();
        return new CompositeSnapshot(table, inner);
    }

    private void WriteTable(Stream destination)
    {
        using (var w = new BinaryWriter(destination, Encoding.UTF8, leaveOpen: true))
        {
            w.Write(SnapshotMagic);
            w.Write(SnapshotVersion);
            w.Write(_clockMs);
            w.Write(_sessions.Count);
            foreach (var s in _byActivity)
            {
                w.Write(s.Id);
                w.Write(s.LastActiveMs);
                w.Write(s.Floor);
                w.Write(s.Results.Count);
                foreach (var (sequence, bytes) in s.Results)
                {
                    w.Write(sequence);
                    w.Write(bytes is null ? -1 : bytes.Length);
                    if (bytes is not null) w.Write(bytes);
                }
            }
        }
    }

    private sealed class CompositeSnapshot(IStateMachineSnapshot table, IStateMachineSnapshot inner) : IStateMachineSnapshot
    {
        public void WriteTo(Stream destination)
        {
            table.WriteTo(destination);
            inner.WriteTo(destination);
        }

        public void Dispose()
        {
            table.Dispose();
            inner.Dispose();
        }
    }

    public void RestoreSnapshot(Stream source)
    {
        _sessions.Clear();
        _byActivity.Clear();
        using (var r = new BinaryReader(source, Encoding.UTF8, leaveOpen: true))
        {
            if (r.ReadUInt32() != SnapshotMagic) throw new InvalidDataException("not a session table snapshot");
            var version = r.ReadByte();
            if (version != SnapshotVersion) throw new InvalidDataException($"unknown session table snapshot version {version}");
            _clockMs = r.ReadInt64();
            var count = r.ReadInt32();
            if (count < 0) throw new InvalidDataException("negative session count in snapshot");
            for (int i = 0; i < count; i++)
            {
                var s = new Session(r.ReadUInt64()) { LastActiveMs = r.ReadInt64(), Floor = r.ReadUInt64() };
                var results = r.ReadInt32();
                if (results < 0) throw new InvalidDataException("negative result count in snapshot");
                for (int j = 0; j < results; j++)
                {
                    var sequence = r.ReadUInt64();
                    var length = r.ReadInt32();
                    if (length < -1) throw new InvalidDataException("bad result length in snapshot");
                    byte[]? bytes = null;
                    if (length >= 0)
                    {
                        bytes = r.ReadBytes(length);
                        if (bytes.Length != length) throw new EndOfStreamException("session table snapshot is truncated");
                    }
                    s.Results.Add(sequence, bytes);
                }
                s.Node = _byActivity.AddLast(s);
                _sessions.Add(s.Id, s);
            }
        }
        _inner.RestoreSnapshot(source);
    }

    private sealed class Session(ulong id)
    {
        public ulong Id { get; } = id;

        public long LastActiveMs { get; set; }

        /// <summary>Every sequence below this is either answered from <see cref="Results"/> or refused as stale.</summary>
        public ulong Floor { get; set; }

        /// <summary>Recorded results by sequence; null when the result was too large to keep.</summary>
        public SortedList<ulong, byte[]?> Results { get; } = [];

        public LinkedListNode<Session>? Node { get; set; }
    }
}

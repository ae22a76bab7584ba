using System.Buffers;
using System.Buffers.Binary;
using RaftMQ.Raft;

namespace RaftMQ.Transport;

/// <summary>
/// The binary encoding of <see cref="RaftMessage"/>s: one type byte, the common header (From, To, Term), then the
/// type's own fields. Integers are big-endian and fixed width; booleans are one byte, 0 or 1. Decoding checks every
/// count and length against the bytes actually present before allocating, so hostile input costs at most its own
/// size. Snapshot metadata carries the cluster configuration as of the snapshot: a presence byte, then (1) voter and
/// learner counts (u16) and the ids (u64), or (2, when members carry addresses) a u32 length and
/// <see cref="ClusterConfiguration.Encode"/>'s bytes. To add a message type: a <see cref="MessageType"/> value, a case in <see cref="TryGetSize"/>,
/// <see cref="Write"/> and <see cref="Read(in ReadOnlySequence{byte})"/>.
/// </summary>
public static class RaftMessageCodec
{
    /// <summary>Type byte plus From, To and Term.</summary>
    public const int HeaderSize = 1 + (3 * sizeof(ulong));

    /// <summary>Index, Term, Type and data length of one entry; its data follows.</summary>
    public const int EntryHeaderSize = sizeof(ulong) + sizeof(ulong) + 1 + sizeof(uint);

    private const int AppendEntriesFixedSize = HeaderSize + (3 * sizeof(ulong)) + sizeof(uint);

    private const int SnapshotChunkFixedSize = HeaderSize + (3 * sizeof(ulong)) + 1 + sizeof(uint);

    private const int ForwardProposalFixedSize = HeaderSize + sizeof(ulong) + sizeof(uint);

    // RequestId, Status, Reason, LeaderHint, code length (1 byte), message length (2 bytes), payload length.
    private const int ForwardResultFixedSize = HeaderSize + sizeof(ulong) + 1 + 1 + sizeof(ulong) + 1 + sizeof(ushort) + sizeof(uint);
    /// <summary>The most bytes a snapshot's configuration adds to its metadata (presence byte included).</summary>
    public const int MaxSnapshotConfigurationSize = 1 + sizeof(uint) + ClusterConfiguration.MaxEncodedBytes;

    /// <summary>
    /// The largest encoded AppendEntries a leader sends with these core bounds: entries up to
    /// <paramref name="maxBytesPerAppend"/> (the core counts each entry with at least its encoded header), or one
    /// entry of <paramref name="maxEntryBytes"/> when that is larger (the core always sends at least one).
    /// </summary>
    public static long MaxAppendEntriesSize(long maxBytesPerAppend, int maxEntryBytes) =>
        AppendEntriesFixedSize + Math.Max(maxBytesPerAppend, (long)EntryHeaderSize + maxEntryBytes);

    /// <summary>The largest encoded snapshot chunk carrying <paramref name="chunkBytes"/> bytes of snapshot.</summary>
    public static long MaxSnapshotChunkSize(int chunkBytes) => SnapshotChunkFixedSize + MaxSnapshotConfigurationSize + (long)chunkBytes;

    /// <summary>The largest encoded <see cref="ForwardProposal"/> carrying a command of <paramref name="commandBytes"/> bytes.</summary>
    public static long MaxForwardProposalSize(int commandBytes) => ForwardProposalFixedSize + (long)commandBytes;

    /// <summary>The largest encoded <see cref="ForwardResult"/> carrying a payload of <paramref name="payloadBytes"/> bytes.</summary>
    public static long MaxForwardResultSize(int payloadBytes) =>
        ForwardResultFixedSize + (long)ForwardResult.MaxCodeBytes + ForwardResult.MaxMessageBytes + payloadBytes;

    /// <summary>The exact number of bytes <see cref="Write"/> produces for <paramref name="message"/>.</summary>
    public static long GetSize(RaftMessage message) =>
        TryGetSize(message, out var size)
            ? size
            : throw new ArgumentException($"No encoding for message type {message.GetType().Name}.", nameof(message));

    /// <summary>Like <see cref="GetSize"/>, but false instead of an exception for a type without an encoding.</summary>
    public static bool TryGetSize(RaftMessage message, out long size)
    {
        ArgumentNullException.ThrowIfNull(message);
        size = message switch
        {
            RequestVote => HeaderSize + 8 + 8 + 1,
            RequestVoteResponse => HeaderSize + 1 + 1,
            AppendEntries m => AppendEntriesSize(m),
            AppendEntriesResponse => HeaderSize + 1 + 8 + 8 + 8,
            Heartbeat => HeaderSize + 8 + 8,
            HeartbeatResponse => HeaderSize + 8,
            ReadIndexRequest => HeaderSize + 8,
            ReadIndexResponse => HeaderSize + 8 + 8,
            InstallSnapshot m => HeaderSize + 8 + 8 + ConfigurationSize(m.Snapshot),
            SnapshotChunk m => SnapshotChunkFixedSize + ConfigurationSize(m.Snapshot) + m.Data.Length,
            SnapshotChunkResponse m => HeaderSize + 8 + 8 + ConfigurationSize(m.Snapshot) + 8 + 1,
            ForwardProposal m => ForwardProposalFixedSize + m.Command.Length,
            ForwardResult m => ForwardResultSize(m),
            TimeoutNow => HeaderSize,
            DiskAlarmReport => HeaderSize + 1 + 8 + 8,
            _ => -1,
        };
        return size >= 0;
    }

    /// <summary>Writes <paramref name="message"/> to <paramref name="writer"/>: exactly <see cref="GetSize"/> bytes.</summary>
    public static void Write(RaftMessage message, IBufferWriter<byte> writer)
    {
        ArgumentNullException.ThrowIfNull(message);
        ArgumentNullException.ThrowIfNull(writer);
        switch (message)
        {
            case RequestVote { LeadershipTransfer: true } m:
                WriteTransferVote(m, writer);
                break;

            case RequestVote m:
            {
                var w = Begin(writer, MessageType.RequestVote, m, 8 + 8 + 1);
                w.U64(m.LastLogIndex);
                w.U64(m.LastLogTerm);
                w.Bool(m.PreVote);
                w.Commit(writer);
                break;
            }

            case RequestVoteResponse m:
            {
                var w = Begin(writer, MessageType.RequestVoteResponse, m, 1 + 1);
                w.Bool(m.Granted);
                w.Bool(m.PreVote);
                w.Commit(writer);
                break;
            }

            case AppendEntries m:
                WriteAppendEntries(m, writer);
                break;

            case AppendEntriesResponse m:
            {
                var w = Begin(writer, MessageType.AppendEntriesResponse, m, 1 + 8 + 8 + 8);
                w.Bool(m.Reject);
                w.U64(m.Index);
                // A success carries no hint; its hint index says whether the follower wants commits at once (1) or not
                // (0), which a node of an earlier version ignores: the wire format is unchanged.
                w.U64(m.Reject ? m.HintIndex : m.WantsCommit ? 1UL : 0UL);
                w.U64(m.Reject ? m.HintTerm : 0UL);
                w.Commit(writer);
                break;
            }

            case Heartbeat m:
            {
                // A quiet heartbeat has a type of its own, so one at the normal pace is the same bytes as before quiescing.
                var w = Begin(writer, m.Quiesced ? MessageType.QuietHeartbeat : MessageType.Heartbeat, m, 8 + 8);
                w.U64(m.Commit);
                w.U64(m.ReadRound);
                w.Commit(writer);
                break;
            }

            case HeartbeatResponse m:
            {
                var w = Begin(writer, MessageType.HeartbeatResponse, m, 8);
                w.U64(m.ReadRound);
                w.Commit(writer);
                break;
            }

            case ReadIndexRequest m:
            {
                var w = Begin(writer, MessageType.ReadIndexRequest, m, 8);
                w.U64(m.Context);
                w.Commit(writer);
                break;
            }

            case ReadIndexResponse m:
            {
                var w = Begin(writer, MessageType.ReadIndexResponse, m, 8 + 8);
                w.U64(m.Context);
                w.U64(m.Index);
                w.Commit(writer);
                break;
            }

            case InstallSnapshot m:
            {
                var w = Begin(writer, MessageType.InstallSnapshot, m, 8 + 8);
                w.U64(m.Snapshot.Index);
                w.U64(m.Snapshot.Term);
                w.Commit(writer);
                WriteConfiguration(m.Snapshot.Configuration, writer);
                break;
            }

            case SnapshotChunk m:
            {
                var w = Begin(writer, MessageType.SnapshotChunk, m, 8 + 8);
                w.U64(m.Snapshot.Index);
                w.U64(m.Snapshot.Term);
                w.Commit(writer);
                WriteConfiguration(m.Snapshot.Configuration, writer);
                w = new FieldWriter(writer.GetSpan(8 + 1 + 4), 8 + 1 + 4);
                w.U64(m.Offset);
                w.Bool(m.Done);
                w.U32((uint)m.Data.Length);
                w.Commit(writer);
                writer.Write(m.Data.Span);
                break;
            }

            case SnapshotChunkResponse m:
            {
                var w = Begin(writer, MessageType.SnapshotChunkResponse, m, 8 + 8);
                w.U64(m.Snapshot.Index);
                w.U64(m.Snapshot.Term);
                w.Commit(writer);
                WriteConfiguration(m.Snapshot.Configuration, writer);
                w = new FieldWriter(writer.GetSpan(8 + 1), 8 + 1);
                w.U64(m.NextOffset);
                w.Bool(m.Failed);
                w.Commit(writer);
                break;
            }

            case ForwardProposal m:
            {
                var w = Begin(writer, MessageType.ForwardProposal, m, ForwardProposalFixedSize - HeaderSize);
                w.U64(m.RequestId);
                w.U32((uint)m.Command.Length);
                w.Commit(writer);
                writer.Write(m.Command.Span);
                break;
            }

            case ForwardResult m:
                WriteForwardResult(m, writer);
                break;

            case TimeoutNow m:
                Begin(writer, MessageType.TimeoutNow, m, 0).Commit(writer);
                break;

            case DiskAlarmReport m:
            {
                var w = Begin(writer, MessageType.DiskAlarmReport, m, 1 + 8 + 8);
                w.Bool(m.Alarm);
                w.U64((ulong)m.FreeBytes);
                w.U64((ulong)m.LimitBytes);
                w.Commit(writer);
                break;
            }

            default:
                throw new ArgumentException($"No encoding for message type {message.GetType().Name}.", nameof(message));
        }
    }

    /// <summary>Encodes <paramref name="message"/> into a new array (tests and tools; the transport writes into its pipe).</summary>
    public static byte[] Encode(RaftMessage message)
    {
        var buffer = new ArrayBufferWriter<byte>(checked((int)GetSize(message)));
        Write(message, buffer);
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Decodes one message that fills <paramref name="payload"/> exactly.</summary>
    /// <exception cref="ProtocolException">
    /// Unknown type, truncated or malformed field, trailing bytes, or a term, index or offset beyond
    /// <see cref="RaftLimits"/>.
    /// </exception>
    public static RaftMessage Read(in ReadOnlySequence<byte> payload)
    {
        var r = new FieldReader(payload);
        var typeByte = r.Byte("message type");
        var type = (MessageType)typeByte;
        var from = r.U64("From");
        var to = r.U64("To");
        var term = r.U64("Term");
        RaftMessage message = type switch
        {
            MessageType.RequestVote => new RequestVote(
                from, to, term, LastLogIndex: r.U64("LastLogIndex"), LastLogTerm: r.U64("LastLogTerm"), PreVote: r.Bool("PreVote")),
            MessageType.RequestVoteResponse =>
                new RequestVoteResponse(from, to, term, Granted: r.Bool("Granted"), PreVote: r.Bool("PreVote")),
            MessageType.AppendEntries => ReadAppendEntries(ref r, from, to, term),
            MessageType.AppendEntriesResponse => ReadAppendEntriesResponse(ref r, from, to, term),
            MessageType.Heartbeat or MessageType.QuietHeartbeat => new Heartbeat(
                from, to, term, Commit: r.U64("Commit"), ReadRound: r.U64("ReadRound"), Quiesced: type == MessageType.QuietHeartbeat),
            MessageType.HeartbeatResponse => new HeartbeatResponse(from, to, term, ReadRound: r.U64("ReadRound")),
            MessageType.ReadIndexRequest => new ReadIndexRequest(from, to, term, Context: r.U64("Context")),
            MessageType.ReadIndexResponse => new ReadIndexResponse(from, to, term, Context: r.U64("Context"), Index: r.U64("Index")),
            MessageType.InstallSnapshot => new InstallSnapshot(from, to, term, ReadSnapshotMetadata(ref r)),
            MessageType.SnapshotChunk => ReadSnapshotChunk(ref r, from, to, term),
            MessageType.SnapshotChunkResponse => new SnapshotChunkResponse(
                from, to, term, ReadSnapshotMetadata(ref r), NextOffset: r.U64("NextOffset"), Failed: r.Bool("Failed")),
            MessageType.ForwardProposal => ReadForwardProposal(ref r, from, to, term),
            MessageType.ForwardResult => ReadForwardResult(ref r, from, to, term),
            MessageType.TimeoutNow => new TimeoutNow(from, to, term),
            MessageType.DiskAlarmReport => new DiskAlarmReport(
                from, to, term, Alarm: r.Bool("Alarm"), FreeBytes: (long)r.U64("FreeBytes"), LimitBytes: (long)r.U64("LimitBytes")),
            MessageType.TransferVote => ReadTransferVote(ref r, from, to, term),
            _ => throw new ProtocolException($"Unknown message type {typeByte}."),
        };
        if (r.Remaining != 0)
        {
            throw new ProtocolException($"{r.Remaining} unexpected trailing bytes after a {type} message.");
        }

        if (RaftLimits.FirstOutOfRange(message) is { } outOfRange)
        {
            throw new ProtocolException($"{type} message with {outOfRange}, beyond the protocol's bound of 2^62.");
        }

        return message;
    }

    /// <summary>Decodes one message that fills <paramref name="payload"/> exactly.</summary>
    public static RaftMessage Read(ReadOnlyMemory<byte> payload) => Read(new ReadOnlySequence<byte>(payload));

    private static long AppendEntriesSize(AppendEntries m)
    {
        long size = AppendEntriesFixedSize;
        foreach (var e in m.Entries)
        {
            size += EntryHeaderSize + e.Data.Length;
        }

        return size;
    }

    private static void WriteAppendEntries(AppendEntries m, IBufferWriter<byte> writer)
    {
        var w = Begin(writer, MessageType.AppendEntries, m, (3 * sizeof(ulong)) + sizeof(uint));
        w.U64(m.PrevLogIndex);
        w.U64(m.PrevLogTerm);
        w.U64(m.LeaderCommit);
        w.U32(checked((uint)m.Entries.Count));
        w.Commit(writer);
        foreach (var e in m.Entries)
        {
            var span = writer.GetSpan(EntryHeaderSize);
            BinaryPrimitives.WriteUInt64BigEndian(span, e.Index);
            BinaryPrimitives.WriteUInt64BigEndian(span[8..], e.Term);
            span[16] = (byte)e.Type;
            BinaryPrimitives.WriteUInt32BigEndian(span[17..], (uint)e.Data.Length);
            writer.Advance(EntryHeaderSize);
            writer.Write(e.Data.Span);
        }
    }

    private static SnapshotMetadata ReadSnapshotMetadata(ref FieldReader r) =>
        new(r.U64("snapshot Index"), r.U64("snapshot Term")) { Configuration = ReadConfiguration(ref r) };

    private static SnapshotChunk ReadSnapshotChunk(ref FieldReader r, ulong from, ulong to, ulong term)
    {
        var snapshot = ReadSnapshotMetadata(ref r);
        var offset = r.U64("Offset");
        var done = r.Bool("Done");
        var length = r.U32("chunk length");
        if (length > r.Remaining)
        {
            throw new ProtocolException($"Snapshot chunk of {length} bytes but only {r.Remaining} bytes follow.");
        }

        var data = length == 0 ? ReadOnlyMemory<byte>.Empty : r.Bytes((int)length);
        return new SnapshotChunk(from, to, term, snapshot, offset, data, done);
    }

    private static AppendEntriesResponse ReadAppendEntriesResponse(ref FieldReader r, ulong from, ulong to, ulong term)
    {
        var reject = r.Bool("Reject");
        var index = r.U64("Index");
        var hintIndex = r.U64("HintIndex");
        var hintTerm = r.U64("HintTerm");
        return reject
            ? new AppendEntriesResponse(from, to, term, true, index, hintIndex, hintTerm)
            : new AppendEntriesResponse(from, to, term, false, index, 0, 0, WantsCommit: hintIndex != 0);
    }

    private static AppendEntries ReadAppendEntries(ref FieldReader r, ulong from, ulong to, ulong term)
    {
        var prevLogIndex = r.U64("PrevLogIndex");
        var prevLogTerm = r.U64("PrevLogTerm");
        var leaderCommit = r.U64("LeaderCommit");
        var count = r.U32("entry count");

        // Every entry takes at least its header, so a count the remaining bytes cannot hold is a lie: refuse it
        // before allocating the list.
        if (count > r.Remaining / EntryHeaderSize)
        {
            throw new ProtocolException($"AppendEntries claims {count} entries but only {r.Remaining} bytes follow.");
        }

        var entries = new Entry[count];
        for (var i = 0; i < entries.Length; i++)
        {
            var index = r.U64("entry Index");
            var entryTerm = r.U64("entry Term");
            var typeByte = r.Byte("entry Type");
            if (typeByte > (byte)EntryType.Configuration)
            {
                throw new ProtocolException($"Unknown entry type {typeByte}.");
            }

            var length = r.U32("entry data length");
            if (length > r.Remaining)
            {
                throw new ProtocolException($"Entry data of {length} bytes but only {r.Remaining} bytes follow.");
            }

            // Copied: the frame's buffer is reused once the message is decoded.
            var data = length == 0 ? ReadOnlyMemory<byte>.Empty : r.Bytes((int)length);
            entries[i] = new Entry(index, entryTerm, (EntryType)typeByte, data);
        }

        return new AppendEntries(from, to, term, prevLogIndex, prevLogTerm, entries, leaderCommit);
    }

    private static long ForwardResultSize(ForwardResult m) =>
        ForwardResultFixedSize + (long)Utf8.GetByteCount(m.Code) + Utf8.GetByteCount(m.Message) + m.Payload.Length;

    private static void WriteForwardResult(ForwardResult m, IBufferWriter<byte> writer)
    {
        var code = Utf8.GetBytes(m.Code);
        var text = Utf8.GetBytes(m.Message);
        if (code.Length > ForwardResult.MaxCodeBytes || text.Length > ForwardResult.MaxMessageBytes)
        {
            throw new ArgumentException("ForwardResult code or message over its bound.", nameof(m));
        }

        var w = Begin(writer, MessageType.ForwardResult, m, 8 + 1 + 1 + 8);
        w.U64(m.RequestId);
        w.Byte((byte)m.Status);
        w.Byte(m.Reason);
        w.U64(m.LeaderHint);
        w.Commit(writer);
        var span = writer.GetSpan(1 + code.Length + 2 + text.Length + 4);
        span[0] = (byte)code.Length;
        code.CopyTo(span[1..]);
        var at = 1 + code.Length;
        BinaryPrimitives.WriteUInt16BigEndian(span[at..], (ushort)text.Length);
        text.CopyTo(span[(at + 2)..]);
        at += 2 + text.Length;
        BinaryPrimitives.WriteUInt32BigEndian(span[at..], (uint)m.Payload.Length);
        writer.Advance(at + 4);
        writer.Write(m.Payload.Span);
    }

    private static ForwardProposal ReadForwardProposal(ref FieldReader r, ulong from, ulong to, ulong term)
    {
        var requestId = r.U64("RequestId");
        var length = r.U32("command length");
        if (length > r.Remaining)
        {
            throw new ProtocolException($"Forwarded command of {length} bytes but only {r.Remaining} bytes follow.");
        }

        var command = length == 0 ? ReadOnlyMemory<byte>.Empty : r.Bytes((int)length);
        return new ForwardProposal(from, to, term, requestId, command);
    }

    private static ForwardResult ReadForwardResult(ref FieldReader r, ulong from, ulong to, ulong term)
    {
        var requestId = r.U64("RequestId");
        var statusByte = r.Byte("Status");
        if (statusByte > (byte)ForwardStatus.Unknown)
        {
            throw new ProtocolException($"Unknown forward status {statusByte}.");
        }

        var reason = r.Byte("Reason");
        var leaderHint = r.U64("LeaderHint");
        var code = ReadText(ref r, r.Byte("code length"), ForwardResult.MaxCodeBytes, "code");
        var message = ReadText(ref r, r.U16("message length"), ForwardResult.MaxMessageBytes, "message");
        var length = r.U32("payload length");
        if (length > r.Remaining)
        {
            throw new ProtocolException($"Forward result payload of {length} bytes but only {r.Remaining} bytes follow.");
        }

        var payload = length == 0 ? ReadOnlyMemory<byte>.Empty : r.Bytes((int)length);
        return new ForwardResult(from, to, term, requestId, (ForwardStatus)statusByte, reason, leaderHint, code, message, payload);
    }

    private static string ReadText(ref FieldReader r, int length, int maxBytes, string field)
    {
        if (length > maxBytes)
        {
            throw new ProtocolException($"Field {field} of {length} bytes is over its bound of {maxBytes}.");
        }

        if (length > r.Remaining)
        {
            throw new ProtocolException($"Field {field} of {length} bytes but only {r.Remaining} bytes follow.");
        }

        try
        {
            return length == 0 ? "" : StrictUtf8.GetString(r.Bytes(length));
        }
        catch (System.Text.DecoderFallbackException)
        {
            throw new ProtocolException($"Field {field} is not valid UTF-8.");
        }
    }

    private static readonly System.Text.UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false);

    private static readonly System.Text.UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);
    // ---- membership: snapshot configurations, leadership transfer ----

    private static int ConfigurationSize(SnapshotMetadata snapshot) => snapshot.Configuration switch
    {
        null => 1,
        { Addresses.Count: > 0 } c => 1 + sizeof(uint) + c.EncodedLength,
        var c => 1 + 2 + 2 + ((c.Voters.Count + c.Learners.Count) * sizeof(ulong)),
    };

    private static void WriteConfiguration(ClusterConfiguration? configuration, IBufferWriter<byte> writer)
    {
        if (configuration is null)
        {
            writer.GetSpan(1)[0] = 0;
            writer.Advance(1);
            return;
        }

        if (configuration.Addresses.Count > 0)
        {
            var encoded = configuration.Encode();
            var target = writer.GetSpan(1 + sizeof(uint) + encoded.Length);
            target[0] = 2;
            BinaryPrimitives.WriteUInt32BigEndian(target[1..], (uint)encoded.Length);
            encoded.CopyTo(target[(1 + sizeof(uint))..]);
            writer.Advance(1 + sizeof(uint) + encoded.Length);
            return;
        }

        var count = configuration.Voters.Count + configuration.Learners.Count;
        var size = 1 + 2 + 2 + (count * sizeof(ulong));
        var span = writer.GetSpan(size);
        span[0] = 1;
        BinaryPrimitives.WriteUInt16BigEndian(span[1..], (ushort)configuration.Voters.Count);
        BinaryPrimitives.WriteUInt16BigEndian(span[3..], (ushort)configuration.Learners.Count);
        var at = 5;
        foreach (var id in configuration.Voters.Concat(configuration.Learners))
        {
            BinaryPrimitives.WriteUInt64BigEndian(span[at..], id);
            at += sizeof(ulong);
        }

        writer.Advance(size);
    }

    private static ClusterConfiguration? ReadConfiguration(ref FieldReader r)
    {
        var presence = r.Byte("snapshot configuration present");
        if (presence == 0)
        {
            return null;
        }

        if (presence == 2)
        {
            var length = r.U32("configuration length");
            if (length > ClusterConfiguration.MaxEncodedBytes || length > r.Remaining)
            {
                throw new ProtocolException($"Configuration of {length} bytes is over the bound of {ClusterConfiguration.MaxEncodedBytes} or cut short.");
            }

            var bytes = r.Bytes((int)length);
            return ClusterConfiguration.TryDecode(bytes, out var decoded, out var problem)
                ? decoded
                : throw new ProtocolException($"Invalid snapshot configuration: {problem}");
        }

        if (presence != 1)
        {
            throw new ProtocolException($"Field snapshot configuration present must be 0, 1 or 2, got {presence}.");
        }

        var voters = r.U16("configuration voter count");
        var learners = r.U16("configuration learner count");
        if (voters + learners > ClusterConfiguration.MaxMembers)
        {
            throw new ProtocolException($"Configuration of {voters + learners} members is over the bound of {ClusterConfiguration.MaxMembers}.");
        }

        var ids = new ulong[voters + learners];
        for (var i = 0; i < ids.Length; i++)
        {
            ids[i] = r.U64("configuration member id");
        }

        try
        {
            return new ClusterConfiguration(ids.Take(voters), ids.Skip(voters));
        }
        catch (ArgumentException e)
        {
            throw new ProtocolException($"Invalid snapshot configuration: {e.Message}");
        }
    }

    private static void WriteTransferVote(RequestVote m, IBufferWriter<byte> writer)
    {
        var w = Begin(writer, MessageType.TransferVote, m, 8 + 8 + 1);
        w.U64(m.LastLogIndex);
        w.U64(m.LastLogTerm);
        w.Bool(m.PreVote);
        w.Commit(writer);
    }

    private static RequestVote ReadTransferVote(ref FieldReader r, ulong from, ulong to, ulong term) => new(
        from, to, term, LastLogIndex: r.U64("LastLogIndex"), LastLogTerm: r.U64("LastLogTerm"), PreVote: r.Bool("PreVote"),
        LeadershipTransfer: true);

    private static FieldWriter Begin(IBufferWriter<byte> writer, MessageType type, RaftMessage m, int bodySize)
    {
        var w = new FieldWriter(writer.GetSpan(HeaderSize + bodySize), HeaderSize + bodySize);
        w.Byte((byte)type);
        w.U64(m.From);
        w.U64(m.To);
        w.U64(m.Term);
        return w;
    }

    /// <summary>Writes fixed-width fields into one span obtained up front.</summary>
    private ref struct FieldWriter(Span<byte> span, int size)
    {
        private readonly Span<byte> span = span;
        private int position;

        public void Byte(byte value)
        {
            span[position++] = value;
        }

        public void Bool(bool value) => Byte(value ? (byte)1 : (byte)0);

        public void U32(uint value)
        {
            BinaryPrimitives.WriteUInt32BigEndian(span[position..], value);
            position += sizeof(uint);
        }

        public void U64(ulong value)
        {
            BinaryPrimitives.WriteUInt64BigEndian(span[position..], value);
            position += sizeof(ulong);
        }

        public readonly void Commit(IBufferWriter<byte> writer)
        {
            // The field list of each case must match its declared size, or the frame length would lie.
            if (position != size)
            {
                throw new InvalidOperationException($"Encoder wrote {position} bytes, declared {size}.");
            }

            writer.Advance(size);
        }
    }
}

/// <summary>Reads named fields and turns running out of bytes into a <see cref="ProtocolException"/> naming the field.</summary>
internal ref struct FieldReader(ReadOnlySequence<byte> sequence)
{
    private SequenceReader<byte> reader = new(sequence);

    public readonly long Remaining => reader.Remaining;

    public byte Byte(string field) =>
        reader.TryRead(out var value) ? value : throw Truncated(field);

    public bool Bool(string field) => Byte(field) switch
    {
        0 => false,
        1 => true,
        var b => throw new ProtocolException($"Field {field} must be 0 or 1, got {b}."),
    };

    public ushort U16(string field) =>
        reader.TryReadBigEndian(out short value) ? (ushort)value : throw Truncated(field);

    public uint U32(string field) =>
        reader.TryReadBigEndian(out int value) ? (uint)value : throw Truncated(field);

    public ulong U64(string field) =>
        reader.TryReadBigEndian(out long value) ? (ulong)value : throw Truncated(field);

    /// <summary>Copies <paramref name="length"/> bytes; the caller has checked them against <see cref="Remaining"/>.</summary>
    public byte[] Bytes(int length)
    {
        var bytes = new byte[length];
        if (!reader.TryCopyTo(bytes))
        {
            throw Truncated("bytes");
        }

        reader.Advance(length);
        return bytes;
    }

    private static ProtocolException Truncated(string field) => new($"Truncated message: missing {field}.");
}

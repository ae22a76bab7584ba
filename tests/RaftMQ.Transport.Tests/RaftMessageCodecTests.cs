using System.Buffers;
using System.Buffers.Binary;
using FsCheck;
using FsCheck.Fluent;
using RaftMQ.Raft;

namespace RaftMQ.Transport.Tests;

public sealed class RaftMessageCodecTests
{
    [Fact]
    public void Every_message_type_round_trips()
    {
        Prop.ForAll(MessageGenerators.Messages, message =>
        {
            var bytes = RaftMessageCodec.Encode(message);
            return bytes.Length == RaftMessageCodec.GetSize(message)
                && MessageGenerators.Same(message, RaftMessageCodec.Read(bytes));
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Round_trips_when_the_payload_is_split_across_segments()
    {
        var cuts = Gen.ArrayOf(Gen.Choose(0, 400), 3).ToArbitrary();
        Prop.ForAll(MessageGenerators.Messages, cuts, (message, at) =>
            MessageGenerators.Same(message, RaftMessageCodec.Read(Segments.Split(RaftMessageCodec.Encode(message), at))))
            .QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Covers_every_message_type_in_the_core()
    {
        // A new RaftMessage subtype must get an encoding; this fails until it does.
        var types = typeof(RaftMessage).Assembly.GetTypes().Where(t => t.IsSubclassOf(typeof(RaftMessage)) && !t.IsAbstract).ToArray();
        var samples = MessageGenerators.Message.Sample(2000).Select(m => m.GetType()).ToHashSet();
        types.ShouldNotBeEmpty();
        foreach (var type in types)
        {
            samples.ShouldContain(type, $"the generator and codec must cover {type.Name}");
        }
    }

    [Fact]
    public void Every_truncation_fails_with_a_protocol_exception()
    {
        Prop.ForAll(MessageGenerators.Messages, message =>
        {
            var bytes = RaftMessageCodec.Encode(message);
            for (var length = 0; length < bytes.Length; length++)
            {
                Should.Throw<ProtocolException>(() => RaftMessageCodec.Read(bytes.AsMemory(0, length)));
            }
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Trailing_bytes_fail_with_a_protocol_exception()
    {
        Prop.ForAll(MessageGenerators.Messages, message =>
        {
            byte[] bytes = [.. RaftMessageCodec.Encode(message), 0];
            Should.Throw<ProtocolException>(() => RaftMessageCodec.Read(bytes)).Message.ShouldContain("trailing");
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Garbled_input_either_decodes_or_fails_with_a_protocol_exception()
    {
        // Flip one byte of a valid message, or decode pure noise: nothing but ProtocolException may escape.
        var garble = Gen.Choose(0, int.MaxValue).Two().ToArbitrary();
        Prop.ForAll(MessageGenerators.Messages, garble, (message, g) =>
        {
            var bytes = RaftMessageCodec.Encode(message);
            bytes[g.Item1 % bytes.Length] ^= (byte)(1 + (g.Item2 % 255));
            TryDecode(bytes);
        }).QuickCheckThrowOnFailure();

        Prop.ForAll(Gen.ArrayOf(ArbMap.Default.GeneratorFor<byte>()).ToArbitrary(), noise => TryDecode(noise))
            .QuickCheckThrowOnFailure();

        static void TryDecode(byte[] bytes)
        {
            try
            {
                RaftMessageCodec.Read(bytes);
            }
            catch (ProtocolException)
            {
            }
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(16)]
    [InlineData(63)]
    [InlineData(128)]
    [InlineData(255)]
    public void Unknown_message_type_is_refused(byte type)
    {
        var bytes = new byte[RaftMessageCodec.HeaderSize + 16];
        bytes[0] = type;
        Should.Throw<ProtocolException>(() => RaftMessageCodec.Read(bytes)).Message.ShouldContain($"Unknown message type {type}");
    }

    [Fact]
    public void A_forward_result_round_trips_its_text_and_payload()
    {
        var message = new ForwardResult(2, 3, 7, ulong.MaxValue, ForwardStatus.Refused, 5, 2, "disk-full", "plus de place: é€😀", new byte[] { 0, 1, 255 });
        var decoded = (ForwardResult)RaftMessageCodec.Read(RaftMessageCodec.Encode(message));
        decoded.Code.ShouldBe("disk-full");
        decoded.Message.ShouldBe("plus de place: é€😀");
        decoded.Payload.ToArray().ShouldBe(new byte[] { 0, 1, 255 });
        (decoded with { Payload = default }).ShouldBe(message with { Payload = default });
    }

    [Fact]
    public void A_forward_proposal_whose_command_length_passes_the_frame_is_refused_before_allocating()
    {
        var bytes = RaftMessageCodec.Encode(new ForwardProposal(1, 2, 3, 4, new byte[] { 9 }));
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(RaftMessageCodec.HeaderSize + 8), int.MaxValue);
        Should.Throw<ProtocolException>(() => RaftMessageCodec.Read(bytes)).Message.ShouldContain("Forwarded command of 2147483647 bytes");
    }

    [Fact]
    public void A_forward_result_with_an_oversized_or_lying_field_is_refused()
    {
        var bytes = RaftMessageCodec.Encode(new ForwardResult(1, 2, 3, 4, ForwardStatus.Applied, 0, 0, "", "", new byte[] { 9 }));
        var fixedEnd = RaftMessageCodec.HeaderSize + 8 + 1 + 1 + 8;

        var status = (byte[])bytes.Clone();
        status[RaftMessageCodec.HeaderSize + 8] = 5;
        Should.Throw<ProtocolException>(() => RaftMessageCodec.Read(status)).Message.ShouldContain("Unknown forward status 5");

        var code = (byte[])bytes.Clone();
        code[fixedEnd] = ForwardResult.MaxCodeBytes + 1;
        Should.Throw<ProtocolException>(() => RaftMessageCodec.Read(code)).Message.ShouldContain("over its bound");

        var text = (byte[])bytes.Clone();
        BinaryPrimitives.WriteUInt16BigEndian(text.AsSpan(fixedEnd + 1), ForwardResult.MaxMessageBytes + 1);
        Should.Throw<ProtocolException>(() => RaftMessageCodec.Read(text)).Message.ShouldContain("over its bound");

        var payload = (byte[])bytes.Clone();
        BinaryPrimitives.WriteUInt32BigEndian(payload.AsSpan(fixedEnd + 1 + 2), uint.MaxValue);
        Should.Throw<ProtocolException>(() => RaftMessageCodec.Read(payload)).Message.ShouldContain("payload of 4294967295 bytes");
    }

    [Fact]
    public void A_forward_result_code_that_is_not_utf8_is_refused()
    {
        var bytes = RaftMessageCodec.Encode(new ForwardResult(1, 2, 3, 4, ForwardStatus.Refused, 0, 0, "ab", "", ReadOnlyMemory<byte>.Empty));
        bytes[RaftMessageCodec.HeaderSize + 8 + 1 + 1 + 8 + 1] = 0xFF;
        Should.Throw<ProtocolException>(() => RaftMessageCodec.Read(bytes)).Message.ShouldContain("not valid UTF-8");
    }

    [Fact]
    public void A_forward_result_over_its_text_bounds_cannot_be_built()
    {
        Should.Throw<ArgumentException>(() => new ForwardResult(1, 2, 3, 4, ForwardStatus.Refused, 0, 0, new string('c', ForwardResult.MaxCodeBytes + 1), "", default));
        Should.Throw<ArgumentException>(() => new ForwardResult(1, 2, 3, 4, ForwardStatus.Refused, 0, 0, "", new string('é', ForwardResult.MaxMessageBytes), default));
        ForwardResult.Truncate(new string('é', ForwardResult.MaxMessageBytes), ForwardResult.MaxMessageBytes).Length.ShouldBe(ForwardResult.MaxMessageBytes / 2);
        ForwardResult.Truncate("a😀", 4).ShouldBe("a");
    }

    [Fact]
    public void A_boolean_other_than_0_or_1_is_refused()
    {
        var bytes = RaftMessageCodec.Encode(new RequestVoteResponse(1, 2, 3, Granted: true, PreVote: false));
        bytes[RaftMessageCodec.HeaderSize] = 2;
        Should.Throw<ProtocolException>(() => RaftMessageCodec.Read(bytes)).Message.ShouldContain("Granted");
    }

    [Fact]
    public void An_unknown_entry_type_is_refused()
    {
        var bytes = RaftMessageCodec.Encode(
            new AppendEntries(1, 2, 3, 4, 5, [new Entry(5, 3, EntryType.Command, new byte[] { 1 })], 4));
        bytes[RaftMessageCodec.HeaderSize + 28 + 16] = 7;
        Should.Throw<ProtocolException>(() => RaftMessageCodec.Read(bytes)).Message.ShouldContain("entry type 7");
    }

    [Fact]
    public void A_quiet_heartbeat_carries_its_flag_and_a_normal_one_is_the_bytes_it_always_was()
    {
        var normal = RaftMessageCodec.Encode(new Heartbeat(1, 2, 3, 4, 5));
        normal.Length.ShouldBe(RaftMessageCodec.HeaderSize + 16);
        normal[0].ShouldBe((byte)MessageType.Heartbeat, "at the normal pace the bytes are those of a node without quiescing");
        RaftMessageCodec.Read(normal).ShouldBe(new Heartbeat(1, 2, 3, 4, 5, Quiesced: false));

        var quiet = RaftMessageCodec.Encode(new Heartbeat(1, 2, 3, 4, 5, Quiesced: true));
        quiet.Length.ShouldBe(normal.Length);
        quiet[0].ShouldBe((byte)MessageType.QuietHeartbeat);
        quiet.AsSpan(1).SequenceEqual(normal.AsSpan(1)).ShouldBeTrue("the same fields");
        RaftMessageCodec.Read(quiet).ShouldBe(new Heartbeat(1, 2, 3, 4, 5, Quiesced: true));
    }

    [Fact]
    public void A_success_carries_its_commit_request_where_a_rejection_carries_its_hint_and_an_old_success_decodes_alike()
    {
        var plain = RaftMessageCodec.Encode(new AppendEntriesResponse(1, 2, 3, false, 4, 0, 0));
        var asking = RaftMessageCodec.Encode(new AppendEntriesResponse(1, 2, 3, false, 4, 0, 0, WantsCommit: true));
        asking.Length.ShouldBe(plain.Length, "the same fields: a node of an earlier version reads it as the success it is");
        RaftMessageCodec.Read(plain).ShouldBe(new AppendEntriesResponse(1, 2, 3, false, 4, 0, 0, WantsCommit: false));
        RaftMessageCodec.Read(asking).ShouldBe(new AppendEntriesResponse(1, 2, 3, false, 4, 0, 0, WantsCommit: true));
        RaftMessageCodec.Read(RaftMessageCodec.Encode(new AppendEntriesResponse(1, 2, 3, true, 4, 2, 1, WantsCommit: true)))
            .ShouldBe(new AppendEntriesResponse(1, 2, 3, true, 4, 2, 1), "a rejection keeps its hint and asks for nothing");
    }

    [Fact]
    public void A_huge_entry_count_is_refused_before_anything_is_allocated()
    {
        var bytes = RaftMessageCodec.Encode(new AppendEntries(1, 2, 3, 4, 5, [], 4));
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(RaftMessageCodec.HeaderSize + 24), uint.MaxValue);
        RaftMessageCodec.Read(RaftMessageCodec.Encode(new Heartbeat(1, 2, 3, 4, 5))); // warm up

        var before = GC.GetAllocatedBytesForCurrentThread();
        Should.Throw<ProtocolException>(() => RaftMessageCodec.Read(bytes)).Message.ShouldContain("4294967295 entries");
        (GC.GetAllocatedBytesForCurrentThread() - before).ShouldBeLessThan(16 * 1024);
    }

    [Fact]
    public void A_huge_entry_length_is_refused_before_anything_is_allocated()
    {
        var bytes = RaftMessageCodec.Encode(
            new AppendEntries(1, 2, 3, 4, 5, [new Entry(5, 3, EntryType.Command, new byte[] { 1, 2, 3 })], 4));
        var lengthAt = RaftMessageCodec.HeaderSize + 28 + 17;
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(lengthAt), 0x7FFF_FFFF);
        RaftMessageCodec.Read(RaftMessageCodec.Encode(new Heartbeat(1, 2, 3, 4, 5))); // warm up

        var before = GC.GetAllocatedBytesForCurrentThread();
        Should.Throw<ProtocolException>(() => RaftMessageCodec.Read(bytes)).Message.ShouldContain("2147483647 bytes");
        (GC.GetAllocatedBytesForCurrentThread() - before).ShouldBeLessThan(16 * 1024);
    }

    [Fact]
    public void A_term_beyond_the_bound_is_refused_in_every_message_type()
    {
        // 2^64-1 as the term would leave a node that adopted it unable to ever campaign (term + 1 overflows).
        Prop.ForAll(MessageGenerators.Messages, message =>
        {
            var bytes = RaftMessageCodec.Encode(message);
            BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(1 + 16), ulong.MaxValue);
            Should.Throw<ProtocolException>(() => RaftMessageCodec.Read(bytes)).Message.ShouldContain($"Term = {ulong.MaxValue}");
        }).QuickCheckThrowOnFailure();
    }

    public static TheoryData<string, RaftMessage> OutOfRange => new()
    {
        { "Term = 4611686018427387905", new Heartbeat(1, 2, RaftLimits.MaxTerm + 1, 0, 0) },
        { "LastLogIndex = 18446744073709551615", new RequestVote(1, 2, 3, ulong.MaxValue, 1, false) },
        { "LastLogTerm = 18446744073709551615", new RequestVote(1, 2, 3, 1, ulong.MaxValue, true) },
        { "PrevLogIndex = 18446744073709551615", new AppendEntries(1, 2, 3, ulong.MaxValue, 1, [], 0) },
        { "LeaderCommit = 18446744073709551615", new AppendEntries(1, 2, 3, 1, 1, [], ulong.MaxValue) },
        { "entry Index = 18446744073709551615", new AppendEntries(1, 2, 3, 1, 1, [new Entry(2, 3, EntryType.NoOp, default), new Entry(ulong.MaxValue, 3, EntryType.NoOp, default)], 0) },
        { "entry Term = 18446744073709551615", new AppendEntries(1, 2, 3, 1, 1, [new Entry(2, ulong.MaxValue, EntryType.NoOp, default)], 0) },
        { "HintTerm = 18446744073709551615", new AppendEntriesResponse(1, 2, 3, true, 4, 3, ulong.MaxValue) },
        { "Commit = 18446744073709551615", new Heartbeat(1, 2, 3, ulong.MaxValue, 0) },
        { "Index = 18446744073709551615", new ReadIndexResponse(1, 2, 3, 7, ulong.MaxValue) },
        { "snapshot Index = 18446744073709551615", new InstallSnapshot(1, 2, 3, new SnapshotMetadata(ulong.MaxValue, 1)) },
        { "Offset = 18446744073709551615", new SnapshotChunk(1, 2, 3, new SnapshotMetadata(5, 1), ulong.MaxValue, new byte[] { 1 }, false) },
        { "NextOffset = 18446744073709551615", new SnapshotChunkResponse(1, 2, 3, new SnapshotMetadata(5, 1), ulong.MaxValue, false) },
    };

    [Theory]
    [MemberData(nameof(OutOfRange))]
    public void A_term_index_or_offset_beyond_the_bound_is_refused(string field, RaftMessage message)
    {
        Should.Throw<ProtocolException>(() => RaftMessageCodec.Read(RaftMessageCodec.Encode(message))).Message.ShouldContain(field);
    }

    [Fact]
    public void The_bound_itself_is_accepted()
    {
        var message = new RequestVote(1, 2, RaftLimits.MaxTerm, RaftLimits.MaxIndex, RaftLimits.MaxTerm, false);
        RaftMessageCodec.Read(RaftMessageCodec.Encode(message)).ShouldBe(message);
    }

    [Fact]
    public void Writes_big_endian_fields_after_the_type_byte()
    {
        // Pins the wire format documented in docs/transport.md.
        var bytes = RaftMessageCodec.Encode(new HeartbeatResponse(From: 1, To: 2, Term: 3, ReadRound: 0x0102030405060708));
        bytes.ShouldBe(
        [
            6,
            0, 0, 0, 0, 0, 0, 0, 1,
            0, 0, 0, 0, 0, 0, 0, 2,
            0, 0, 0, 0, 0, 0, 0, 3,
            1, 2, 3, 4, 5, 6, 7, 8,
        ]);
    }

    [Fact]
    public void Entry_data_survives_the_reuse_of_the_frame_buffer()
    {
        var bytes = RaftMessageCodec.Encode(
            new AppendEntries(1, 2, 3, 0, 0, [new Entry(1, 3, EntryType.Command, new byte[] { 9, 9, 9 })], 0));
        var decoded = (AppendEntries)RaftMessageCodec.Read(new ReadOnlySequence<byte>(bytes));
        Array.Clear(bytes);
        decoded.Entries[0].Data.ToArray().ShouldBe([9, 9, 9]);
    }
}

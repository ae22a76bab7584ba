using System.Buffers.Binary;
using System.Text;
using RaftMQ.StateMachine;
using static RaftMQ.Queue.Tests.QueueTestSteps;

namespace RaftMQ.Queue.Tests;

/// <summary>The binary message model: commands, the leader's stamp, headers, offsets, results (docs/queue-store.md).</summary>
public sealed class BinaryMessageTests : IDisposable
{
    private const int O = QueueLimits.MessageOverheadBytes;

    private static readonly byte[] AllBytes = [.. Enumerable.Range(0, 256).Select(i => (byte)i)];

    private readonly TestQueues _queues = new();

    public void Dispose() => _queues.Dispose();

    private static QueueMessage Message(byte[] payload, params (string Name, string Value)[] headers) =>
        new(payload, [.. headers.Select(h => new MessageHeader(h.Name, h.Value))]);

    private static QueueCommand SampleBatch(long timestamp = 1_700_000_000_123) => QueueCommand.PublishMessages("tö/pic",
        [Message(AllBytes, ("content-type", "application/octet-stream"), ("trace", "é€😀")), Message([]), Message([0xFF, 0x00], ("x", ""))],
        timestamp);

    [Fact]
    public void Binary_commands_round_trip_through_their_bytes()
    {
        foreach (var command in new[] { SampleBatch(), SampleBatch(0), SampleBatch(-1), QueueCommand.PopMessages("t", 17) })
        {
            QueueCommand.TryDecode(command.Encode(), out var decoded).ShouldBeTrue();
            decoded.ShouldBe(command);
            decoded.Encode().ShouldBe(command.Encode());
        }
    }

    [Fact]
    public void Every_truncation_and_any_trailing_byte_of_a_binary_publish_is_refused()
    {
        var bytes = SampleBatch().Encode();
        for (int length = 0; length < bytes.Length; length++)
            QueueCommand.TryDecode(bytes.AsSpan(0, length), out _).ShouldBeFalse($"length {length}");
        QueueCommand.TryDecode([.. bytes, 0], out _).ShouldBeFalse();
        var lyingCount = (byte[])bytes.Clone();
        BinaryPrimitives.WriteUInt32LittleEndian(lyingCount.AsSpan(QueueCommand.TimestampPosition(bytes) + 8), uint.MaxValue);
        QueueCommand.TryDecode(lyingCount, out _).ShouldBeFalse();
        QueueCommand.TryDecode([8, 1, 0, (byte)'t', 0, 0, 0, 0], out _).ShouldBeFalse(); // op 8 does not exist
    }

    [Fact]
    public void Entries_of_the_string_ops_decode_and_encode_exactly_as_before()
    {
        // The bytes earlier builds wrote for each of the five string ops.
        byte[][] old =
        [
            [1, 1, 0, (byte)'t', 0, 0, 0, 0],
            [2, 1, 0, (byte)'t', 2, 0, 0, 0, (byte)'h', (byte)'i'],
            [3, 1, 0, (byte)'t', 0, 0, 0, 0],
            [4, 1, 0, (byte)'t', 2, 0, 0, 0, 1, 0, 0, 0, (byte)'a', 0, 0, 0, 0],
            [5, 1, 0, (byte)'t', 3, 0, 0, 0],
        ];
        QueueCommand[] expected =
            [QueueCommand.CreateTopic("t"), QueueCommand.Publish("t", "hi"), QueueCommand.Pop("t"), QueueCommand.PublishBatch("t", ["a", ""]), QueueCommand.PopBatch("t", 3)];
        for (int i = 0; i < old.Length; i++)
        {
            QueueCommand.TryDecode(old[i], out var decoded).ShouldBeTrue();
            decoded.ShouldBe(expected[i]);
            QueueCommand.TimestampPosition(old[i]).ShouldBe(-1);
            // The pops are written with the leader's time now (below); the other ops exactly as before.
            if (decoded.Op is not (QueueOp.Pop or QueueOp.PopBatch)) decoded.Encode().ShouldBe(old[i]);
        }
    }

    [Fact]
    public void Pops_are_written_with_a_timestamp_the_leader_stamps()
    {
        QueueCommand[] pops = [QueueCommand.Pop("t"), QueueCommand.PopBatch("t", 3), QueueCommand.PopMessages("t", 4)];
        var stamper = new PublishStamper(new ManualClock(DateTimeOffset.FromUnixTimeMilliseconds(123_456)));
        foreach (var pop in pops)
        {
            var bytes = pop.Encode();
            bytes.Length.ShouldBe(3 + 1 + 8 + 4);
            QueueCommand.TimestampPosition(bytes).ShouldBe(3 + 1);
            QueueCommand.TryDecode(stamper.Stamp(bytes).Span, out var stamped).ShouldBeTrue();
            stamped.ShouldBe(pop with { TimestampMs = 123_456 });
            stamped.Encode().ShouldBe(stamper.Stamp(bytes).ToArray());
            for (var cut = 0; cut < bytes.Length; cut++)
            {
                if (cut == 3 + 1 + 4) continue; // the earlier build's form: the same pop, with no time
                QueueCommand.TryDecode(bytes.AsSpan(0, cut), out _).ShouldBeFalse($"{pop.Op} cut at {cut}");
            }
        }
    }

    [Fact]
    public void Replaying_string_entries_writes_timestamp_zero_and_no_headers_and_answers_as_before()
    {
        var sm = _queues.Create();
        Apply(sm, QueueCommand.CreateTopic("t")).ShouldBe(QueueResult.Ok);
        Apply(sm, QueueCommand.Publish("t", "hi")).ShouldBe(QueueResult.Ok);
        Apply(sm, QueueCommand.PublishBatch("t", ["a", "b"])).ShouldBe(QueueResult.Ok with { Count = 2 });
        Apply(sm, QueueCommand.Pop("t")).ShouldBe(new QueueResult(QueueStatus.Ok, "hi"));
        var popped = Apply(sm, QueueCommand.PopMessages("t", 5));
        popped.Delivered!.ShouldBe([new QueueMessage("a"u8.ToArray()) { Offset = 1 }, new QueueMessage("b"u8.ToArray()) { Offset = 2 }]);
        popped.Delivered!.ShouldAllBe(m => m.TimestampMs == 0 && m.Headers.Count == 0);
        // The string results carry none of the binary parts, so they encode as earlier builds' did.
        QueueResultCodec.Instance.Encode(Apply(sm, QueueCommand.Pop("t"))).ShouldBe(new byte[] { 3, 0, 0, 0, 0, 0 });
    }

    [Fact]
    public void A_binary_publish_answers_its_first_offset_and_a_binary_pop_returns_offset_time_headers_and_payload()
    {
        var sm = _queues.Create();
        Apply(sm, QueueCommand.CreateTopic("tö/pic"));
        Apply(sm, QueueCommand.Publish("tö/pic", "text first"));
        var published = Apply(sm, SampleBatch(1_700_000_000_123));
        published.ShouldBe(QueueResult.Ok with { Count = 3, FirstOffset = 1 });
        Apply(sm, SampleBatch(1_700_000_000_456)).FirstOffset.ShouldBe(4UL);
        sm.Offsets("tö/pic").ShouldBe((0UL, 7UL));

        var first = Apply(sm, QueueCommand.PopMessages("tö/pic", 2)).Delivered!;
        first.Select(m => m.Offset).ShouldBe([0UL, 1UL]);
        first[0].ShouldBe(new QueueMessage(Encoding.UTF8.GetBytes("text first")));
        first[1].ShouldBe(SampleBatch().Binary![0] with { Offset = 1, TimestampMs = 1_700_000_000_123 });
        first[1].Headers.ShouldBe([new MessageHeader("content-type", "application/octet-stream"), new MessageHeader("trace", "é€😀")]);

        var rest = Apply(sm, QueueCommand.PopMessages("tö/pic", 1_000)).Delivered!;
        rest.Select(m => m.Offset).ShouldBe([2UL, 3UL, 4UL, 5UL, 6UL]);
        rest.Select(m => m.TimestampMs).ShouldBe([1_700_000_000_123, 1_700_000_000_123, 1_700_000_000_456, 1_700_000_000_456, 1_700_000_000_456]);
        rest[1].Payload.ToArray().ShouldBe(new byte[] { 0xFF, 0x00 });
        rest[1].Headers.ShouldBe([new MessageHeader("x", "")]);
        Apply(sm, QueueCommand.PopMessages("tö/pic", 1)).Delivered!.ShouldBeEmpty();
        Apply(sm, QueueCommand.PopMessages("nope", 1)).Status.ShouldBe(QueueStatus.NoSuchTopic);
        Apply(sm, QueueCommand.PopMessages("tö/pic", 0)).Status.ShouldBe(QueueStatus.Invalid);
        Apply(sm, QueueCommand.PublishMessages("nope", [Message([1])])).Status.ShouldBe(QueueStatus.NoSuchTopic);
        Apply(sm, QueueCommand.PublishMessages("tö/pic", [])).Status.ShouldBe(QueueStatus.Invalid);
    }

    [Fact]
    public void The_string_pop_returns_a_binary_message_as_text()
    {
        var sm = _queues.Create();
        Apply(sm, QueueCommand.CreateTopic("t"));
        Apply(sm, QueueCommand.PublishMessages("t", [Message("héllo"u8.ToArray(), ("h", "v")), Message([0x61, 0xFF])]));
        Apply(sm, QueueCommand.Pop("t")).Message.ShouldBe("héllo");
        Apply(sm, QueueCommand.PopBatch("t", 5)).Messages.ShouldBe(["a\uFFFD"]);
    }

    [Fact]
    public void The_record_holds_the_timestamp_the_header_length_and_the_headers_before_the_payload()
    {
        var sm = _queues.Create();
        Apply(sm, QueueCommand.CreateTopic("t"));
        Apply(sm, QueueCommand.PublishMessages("t", [Message([7, 8, 9], ("ab", "xyz"))], 1_234_567));
        var file = Directory.GetFiles(sm.Directory, "*.seg").Single();
        var record = File.ReadAllBytes(file);
        var headerBytes = 1 + 2 + 2 + 3;
        record.Length.ShouldBe(O + headerBytes + 3);
        BinaryPrimitives.ReadUInt32LittleEndian(record).ShouldBe((uint)(record.Length - 8));
        BinaryPrimitives.ReadUInt64LittleEndian(record.AsSpan(8)).ShouldBe(0UL);
        BinaryPrimitives.ReadInt64LittleEndian(record.AsSpan(16)).ShouldBe(1_234_567);
        BinaryPrimitives.ReadUInt16LittleEndian(record.AsSpan(24)).ShouldBe((ushort)0);
        BinaryPrimitives.ReadUInt16LittleEndian(record.AsSpan(26)).ShouldBe((ushort)headerBytes);
        record.AsSpan(O, headerBytes).ToArray().ShouldBe(new byte[] { 2, (byte)'a', (byte)'b', 3, 0, (byte)'x', (byte)'y', (byte)'z' });
        record.AsSpan(O + headerBytes).ToArray().ShouldBe(new byte[] { 7, 8, 9 });
        sm.TotalMessageBytes.ShouldBe(record.Length); // headers count against the byte bounds like the payload
    }

    [Fact]
    public void Two_stores_fed_the_same_binary_commands_answer_alike_and_write_identical_files()
    {
        var options = new QueueStoreOptions { SegmentBytes = 2_000 };
        var a = _queues.Create(storeOptions: options);
        var b = _queues.Create(storeOptions: options);
        var rng = new Random(7);
        var stamper = new PublishStamper(TimeProvider.System);
        foreach (var sm in new[] { a, b }) Apply(sm, QueueCommand.CreateTopic("t"));
        var start = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        long lastBinary = 0;
        for (int i = 0; i < 1_000; i++)
        {
            var command = rng.Next(3) switch
            {
                0 => QueueCommand.PublishMessages("t", [.. Enumerable.Range(0, rng.Next(1, 4)).Select(j =>
                    Message([.. Enumerable.Range(0, rng.Next(0, 80)).Select(_ => (byte)rng.Next(256))], ("n", $"{i}.{j}")))]),
                1 => QueueCommand.Publish("t", $"s{i}"),
                _ => QueueCommand.PopMessages("t", rng.Next(1, 5)),
            };
            // As the leader does: stamped once, and the stamped bytes are what every node applies.
            var entry = stamper.Stamp(command.Encode());
            var ra = (QueueResult)a.Apply((ulong)i + 2, entry)!;
            var rb = (QueueResult)b.Apply((ulong)i + 2, entry)!;
            ra.ShouldBe(rb);
            if (command.Op == QueueOp.PopMessages)
            {
                foreach (var m in ra.Delivered!)
                {
                    // String messages (no headers here) carry no time; binary ones the stamps, never decreasing.
                    if (m.Headers.Count == 0)
                    {
                        m.TimestampMs.ShouldBe(0);
                        continue;
                    }
                    m.TimestampMs.ShouldBeGreaterThanOrEqualTo(Math.Max(start, lastBinary));
                    m.TimestampMs.ShouldBeLessThanOrEqualTo(stamper.Last);
                    lastBinary = m.TimestampMs;
                }
            }
        }
        var files = Directory.GetFiles(a.Directory, "*.seg").Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray();
        files.Length.ShouldBeGreaterThan(1);
        Directory.GetFiles(b.Directory, "*.seg").Select(Path.GetFileName).Order(StringComparer.Ordinal).ShouldBe(files);
        foreach (var file in files)
            File.ReadAllBytes(Path.Combine(b.Directory, file!)).ShouldBe(File.ReadAllBytes(Path.Combine(a.Directory, file!)), file);
    }

    [Fact]
    public void A_snapshot_keeps_offsets_times_and_headers()
    {
        var sm = _queues.Create(storeOptions: new QueueStoreOptions { SegmentBytes = 200 });
        Apply(sm, QueueCommand.CreateTopic("t"));
        for (int i = 0; i < 20; i++) Apply(sm, QueueCommand.PublishMessages("t", [Message([(byte)i, 0xFE], ("i", $"{i}"))], 1_000 + i));
        Apply(sm, QueueCommand.PopMessages("t", 3));
        using var buffer = new MemoryStream();
        using (var snapshot = sm.CaptureSnapshot()) snapshot.WriteTo(buffer);
        var expected = Apply(sm, QueueCommand.PopMessages("t", 1_000)).Delivered!;
        expected.Count.ShouldBe(17);
        var restored = _queues.Create();
        buffer.Position = 0;
        restored.RestoreSnapshot(buffer);
        Apply(restored, QueueCommand.PopMessages("t", 1_000)).Delivered!.ShouldBe(expected);
        expected[0].ShouldBe(Message([3, 0xFE], ("i", "3")) with { Offset = 3, TimestampMs = 1_003 });
    }

    [Fact]
    public void Headers_out_of_bounds_are_refused_and_nothing_is_published()
    {
        var limits = QueueLimits.Default;
        var sm = _queues.Create();
        Apply(sm, QueueCommand.CreateTopic("t"));
        (string Name, string Value)[][] bad =
        [
            [.. Enumerable.Range(0, limits.MaxHeaders + 1).Select(i => ($"h{i}", ""))],
            [(new string('n', limits.MaxHeaderNameBytes + 1), "v")],
            [("", "v")],
            [("has space", "v")],
            [("é", "v")],
            [("a:b", "v")],
            [("dup", "1"), ("dup", "2")],
            [("v", new string('x', limits.MaxHeaderValueBytes + 1))],
            [.. Enumerable.Range(0, 5).Select(i => ($"h{i}", new string('x', 1_000)))], // each within bounds, together over MaxHeaderBytes
        ];
        foreach (var headers in bad)
        {
            var message = Message([1], headers);
            MessageHeaders.Check(message.Headers, limits).ShouldNotBeNull();
            Apply(sm, QueueCommand.PublishMessages("t", [Message([2]), message])).Status.ShouldBe(QueueStatus.Invalid);
        }
        Apply(sm, QueueCommand.PublishMessages("t", [Message(new byte[limits.MaxMessageBytes + 1])])).Status.ShouldBe(QueueStatus.Invalid);
        sm.Depth("t").ShouldBe(0);
        var fits = Message([], [.. Enumerable.Range(0, limits.MaxHeaders).Select(i => ($"header-{i:D2}", new string('v', 240)))]);
        MessageHeaders.EncodedBytes(fits.Headers).ShouldBeLessThanOrEqualTo(limits.MaxHeaderBytes);
        MessageHeaders.Check(fits.Headers, limits).ShouldBeNull();
        Apply(sm, QueueCommand.PublishMessages("t", [fits])).Success.ShouldBeTrue();
        Apply(sm, QueueCommand.PopMessages("t", 1)).Delivered!.Single().Headers.ShouldBe(fits.Headers);
    }

    [Fact]
    public void A_binary_pop_counts_headers_and_payloads_against_the_batch_bound()
    {
        var sm = _queues.Create(new QueueLimits { MaxPopBatchBytes = 20 });
        Apply(sm, QueueCommand.CreateTopic("t"));
        // Each message: 3 payload bytes and a header of 3 + 1 + 4 bytes = 11.
        Apply(sm, QueueCommand.PublishMessages("t", [.. Enumerable.Range(0, 4).Select(i => Message([1, 2, 3], ("k", "vvvv")))]));
        Apply(sm, QueueCommand.PopMessages("t", 10)).Delivered!.Count.ShouldBe(1);
        Apply(sm, QueueCommand.PopMessages("t", 10)).Delivered!.Count.ShouldBe(1);
        sm.Depth("t").ShouldBe(2);
    }

    [Fact]
    public void The_byte_bounds_count_the_headers()
    {
        var sm = _queues.Create(new QueueLimits { MaxTotalMessageBytes = 2 * (O + 10) });
        Apply(sm, QueueCommand.CreateTopic("t"));
        var message = Message([1, 2, 3, 4], ("ab", "c")); // 4 + 3 + 2 + 1 = 10 bytes beyond the overhead
        Apply(sm, QueueCommand.PublishMessages("t", [message, message])).Success.ShouldBeTrue();
        Apply(sm, QueueCommand.PublishMessages("t", [Message([])])).Status.ShouldBe(QueueStatus.LimitReached);
        sm.TotalMessageBytes.ShouldBe(2 * (O + 10));
    }

    [Fact]
    public void The_stamper_writes_a_never_decreasing_time_into_stamped_commands_only()
    {
        var clock = new ManualClock(DateTimeOffset.FromUnixTimeMilliseconds(5_000));
        var stamper = new PublishStamper(clock);
        var original = QueueCommand.PublishMessages("t", [Message([1])]).Encode();
        var copy = original.ToArray();
        Decode(stamper.Stamp(original)).TimestampMs.ShouldBe(5_000);
        original.ShouldBe(copy); // the caller's buffer is not changed
        clock.Now = DateTimeOffset.FromUnixTimeMilliseconds(4_000); // the clock steps back
        Decode(stamper.Stamp(original)).TimestampMs.ShouldBe(5_000);
        clock.Now = DateTimeOffset.FromUnixTimeMilliseconds(6_500);
        Decode(stamper.Stamp(original)).TimestampMs.ShouldBe(6_500);
        stamper.Last.ShouldBe(6_500);
        foreach (var other in new[] { QueueCommand.Publish("t", "x"), QueueCommand.PublishBatch("t", ["x"]), QueueCommand.CreateTopic("t") })
        {
            var bytes = other.Encode();
            stamper.Stamp(bytes).ToArray().ShouldBe(bytes);
        }
        stamper.Stamp(new byte[] { 6, 1 }).ToArray().ShouldBe(new byte[] { 6, 1 }); // too short to be one: passed on, refused on apply
        stamper.Last.ShouldBe(6_500);

        static QueueCommand Decode(ReadOnlyMemory<byte> bytes)
        {
            QueueCommand.TryDecode(bytes.Span, out var c).ShouldBeTrue();
            return c;
        }
    }

    [Fact]
    public void Binary_results_round_trip_through_the_result_codec_and_truncations_are_refused()
    {
        var codec = QueueResultCodec.Instance;
        QueueResult[] results =
        [
            QueueResult.Ok with { Count = 3, FirstOffset = ulong.MaxValue - 2 },
            QueueResult.Ok with { Delivered = [] },
            QueueResult.Ok with
            {
                Delivered =
                [
                    Message(AllBytes, ("a", "é€😀"), ("b", "")) with { Offset = 9, TimestampMs = 1_700_000_000_000 },
                    new QueueMessage(new byte[65_536]) { Offset = 10, TimestampMs = -1 },
                ],
            },
        ];
        foreach (var result in results)
        {
            var bytes = codec.Encode(result);
            var decoded = (QueueResult)codec.Decode(bytes)!;
            decoded.ShouldBe(result);
            (decoded.Delivered is null).ShouldBe(result.Delivered is null);
            for (int length = 0; length < bytes.Length; length++)
                Should.Throw<FormatException>(() => codec.Decode(bytes.AsSpan(0, length)));
            Should.Throw<FormatException>(() => codec.Decode([.. bytes, 0]));
        }
        var lying = codec.Encode(results[2]);
        BinaryPrimitives.WriteInt32LittleEndian(lying.AsSpan(6), int.MaxValue);
        Should.Throw<FormatException>(() => codec.Decode(lying)).Message.ShouldContain("messages claimed");
    }

    [Fact]
    public void The_largest_binary_pop_result_is_bounded_by_the_limits()
    {
        var limits = new QueueLimits { MaxBatchMessages = 4, MaxPopBatchBytes = 100, MaxMessageBytes = 50, MaxHeaderBytes = 60 };
        var sm = _queues.Create(limits);
        Apply(sm, QueueCommand.CreateTopic("t"));
        var big = Message(new byte[50], ("h", new string('v', 56)));
        MessageHeaders.EncodedBytes(big.Headers).ShouldBe(60);
        for (int i = 0; i < 4; i++) Apply(sm, QueueCommand.PublishMessages("t", [Message(new byte[24], ("h", "v"))])).Success.ShouldBeTrue();
        Apply(sm, QueueCommand.PublishMessages("t", [big])).Success.ShouldBeTrue();
        var bound = QueueResultCodec.MaxPopMessagesResultBytes(limits);
        // 29 bytes of headers and payload each: three fit 100, the fourth goes alone (the big one would cross),
        // and the big one (110 bytes, over the batch bound) is still returned, alone.
        int[] sizes = [3, 1, 1];
        foreach (var expected in sizes)
        {
            var result = Apply(sm, QueueCommand.PopMessages("t", 4));
            result.Delivered!.Count.ShouldBe(expected);
            QueueResultCodec.Instance.Encode(result).Length.ShouldBeLessThanOrEqualTo((int)bound);
        }
        sm.Depth("t").ShouldBe(0);
    }

    private sealed class ManualClock(DateTimeOffset now) : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = now;

        public override DateTimeOffset GetUtcNow() => Now;
    }
}

namespace RaftMQ.Queue.Tests;

/// <summary>The bytes a leader sends a follower for the result of a forwarded queue command.</summary>
public sealed class QueueResultCodecTests
{
    private static readonly QueueResultCodec Codec = QueueResultCodec.Instance;

    public static TheoryData<QueueResult> Results() =>
    [
        QueueResult.Ok,
        new QueueResult(QueueStatus.TopicExists),
        new QueueResult(QueueStatus.NoSuchTopic),
        new QueueResult(QueueStatus.Empty),
        new QueueResult(QueueStatus.LimitReached),
        new QueueResult(QueueStatus.Invalid),
        new QueueResult(QueueStatus.Ok, "héllo, 世界 😀"),
        new QueueResult(QueueStatus.Ok, ""),
        new QueueResult(QueueStatus.Ok) { Count = 1_000 },
        new QueueResult(QueueStatus.Ok) { Messages = [] },
        new QueueResult(QueueStatus.Ok) { Messages = ["a", "", "é€😀", new string('x', 65_536)] },
    ];

    [Theory]
    [MemberData(nameof(Results))]
    public void Every_result_round_trips(QueueResult result)
    {
        var decoded = (QueueResult)Codec.Decode(Codec.Encode(result))!;
        decoded.ShouldBe(result);
        (decoded.Messages is null).ShouldBe(result.Messages is null);
    }

    [Fact]
    public void Every_truncation_and_any_trailing_byte_is_refused()
    {
        var bytes = Codec.Encode(new QueueResult(QueueStatus.Ok, "m") { Messages = ["a", "bc"], Count = 2 });
        for (int length = 0; length < bytes.Length; length++)
            Should.Throw<FormatException>(() => Codec.Decode(bytes.AsSpan(0, length)));
        Should.Throw<FormatException>(() => Codec.Decode([.. bytes, 0]));
    }

    [Fact]
    public void Unknown_status_parts_lying_counts_and_invalid_utf8_are_refused()
    {
        var ok = Codec.Encode(new QueueResult(QueueStatus.Ok) { Messages = ["ab"] });
        var status = (byte[])ok.Clone();
        status[0] = 10;
        Should.Throw<FormatException>(() => Codec.Decode(status)).Message.ShouldContain("status 10");
        var parts = (byte[])ok.Clone();
        parts[1] = 64;
        Should.Throw<FormatException>(() => Codec.Decode(parts));
        var count = (byte[])ok.Clone();
        System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(count.AsSpan(6), int.MaxValue);
        Should.Throw<FormatException>(() => Codec.Decode(count)).Message.ShouldContain("messages claimed");
        var utf8 = (byte[])ok.Clone();
        utf8[^1] = 0xFF;
        Should.Throw<ArgumentException>(() => Codec.Decode(utf8));
    }

    [Fact]
    public void Only_queue_results_are_encoded()
    {
        Should.Throw<ArgumentException>(() => Codec.Encode("not a result"));
        Should.Throw<ArgumentException>(() => Codec.Encode(null));
    }
}

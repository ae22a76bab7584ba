using System.Buffers.Binary;
using System.Text;

namespace RaftMQ.Queue.Tests;

/// <summary>
/// A batch publish is applied straight from the entry's bytes; it answers every command, good or bad, exactly as
/// decoding it and running <see cref="QueueStateMachine.Execute"/> does, and leaves the same messages behind.
/// </summary>
public sealed class PublishBatchApplyTests : IDisposable
{
    private readonly TestQueues _queues = new();

    private static byte[] Batch(string topic, params byte[][] messages)
    {
        var length = QueueCommand.PublishBatchLength(Encoding.UTF8.GetByteCount(topic), messages.Length, messages.Sum(m => (long)m.Length));
        var bytes = new byte[length];
        var at = QueueCommand.WritePublishBatchStart(bytes, topic, messages.Length);
        foreach (var m in messages)
        {
            QueueCommand.WriteBatchMessageLength(bytes.AsSpan(at), m.Length);
            m.CopyTo(bytes.AsSpan(at + 4));
            at += 4 + m.Length;
        }
        return bytes;
    }

    private static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);

    public static TheoryData<string, byte[]> Commands()
    {
        var good = Batch("t", Utf8("a"), Utf8("é€"), []);
        var withCount = (byte[] command, uint count) =>
        {
            var copy = (byte[])command.Clone();
            BinaryPrimitives.WriteUInt32LittleEndian(copy.AsSpan(3 + 1), count);
            return copy;
        };
        return new TheoryData<string, byte[]>
        {
            { "good", good },
            { "the same encoding as QueueCommand.Encode", QueueCommand.PublishBatch("t", ["a", "é€", ""]).Encode() },
            { "no such topic", Batch("u", Utf8("a")) },
            { "empty topic", Batch("", Utf8("a")) },
            { "no messages", Batch("t") },
            { "too many messages", Batch("t", Utf8("a"), Utf8("b"), Utf8("c"), Utf8("d")) },
            { "a message over the size bound", Batch("t", Utf8("a"), Utf8("123456789")) },
            { "over the total bound", Batch("t", Utf8("a"), Utf8("b"), Utf8("c")) },
            { "invalid UTF-8 in a message", Batch("t", Utf8("a"), [0xff]) },
            { "invalid UTF-8 in the topic", [(byte)QueueOp.PublishBatch, 1, 0, 0xff, 1, 0, 0, 0, 0, 0, 0, 0] },
            { "truncated", good[..^1] },
            { "bytes left over", [.. good, 0] },
            { "count past the bytes", withCount(good, 4) },
            { "a huge count", withCount(good, uint.MaxValue) },
            { "header only", [(byte)QueueOp.PublishBatch, 1] },
        };
    }

    [Theory]
    [MemberData(nameof(Commands))]
    public void A_batch_publish_is_applied_as_its_decoded_command_is_executed(string what, byte[] command)
    {
        var limits = new QueueLimits { MaxMessageBytes = 8, MaxBatchMessages = 3, MaxTotalMessages = 5 };
        var direct = _queues.Create(limits);
        var decoded = _queues.Create(limits);
        foreach (var sm in new[] { direct, decoded })
        {
            sm.Execute(QueueCommand.CreateTopic("t")).Success.ShouldBeTrue();
            sm.Execute(QueueCommand.Publish("t", "x")).Success.ShouldBeTrue();
            sm.Execute(QueueCommand.Publish("t", "y")).Success.ShouldBeTrue(); // two of the five total
        }

        var got = (QueueResult)direct.Apply(1, command)!;
        var expected = QueueCommand.TryDecode(command, out var c) ? decoded.Execute(c) : new QueueResult(QueueStatus.Invalid);

        got.ShouldBe(expected, what);
        var left = direct.Execute(QueueCommand.PopBatch("t", 3)).Messages!;
        left.ShouldBe(decoded.Execute(QueueCommand.PopBatch("t", 3)).Messages!, what);
    }

    public void Dispose() => _queues.Dispose();
}

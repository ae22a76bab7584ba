using System.Text;
using FsCheck.Fluent;
using FsCheck;
using RaftMQ.StateMachine;
using static RaftMQ.Queue.Tests.QueueTestSteps;

namespace RaftMQ.Queue.Tests;

public sealed class QueueBatchTests : IDisposable
{
    private readonly TestQueues _queues = new();

    public void Dispose() => _queues.Dispose();

    private const int O = QueueLimits.MessageOverheadBytes; // what each message counts beyond its payload

    private static bool IsUtf8(string s) => Encoding.UTF8.GetString(Encoding.UTF8.GetBytes(s)) == s;

    [Fact]
    public void The_original_three_commands_keep_their_byte_format()
    {
        QueueCommand.CreateTopic("t").Encode().ShouldBe([1, 1, 0, (byte)'t', 0, 0, 0, 0]);
        QueueCommand.Publish("t", "ab").Encode().ShouldBe([2, 1, 0, (byte)'t', 2, 0, 0, 0, (byte)'a', (byte)'b']);
        QueueCommand.TryDecode([2, 1, 0, (byte)'t', 2, 0, 0, 0, (byte)'a', (byte)'b'], out var publish).ShouldBeTrue();
        publish.ShouldBe(QueueCommand.Publish("t", "ab"));
        // The pop's original bytes still decode; this build writes the leader's time before the zero.
        QueueCommand.TryDecode([3, 1, 0, (byte)'t', 0, 0, 0, 0], out var pop).ShouldBeTrue();
        pop.ShouldBe(QueueCommand.Pop("t"));
        (QueueCommand.Pop("t") with { TimestampMs = 258 }).Encode().ShouldBe([3, 1, 0, (byte)'t', 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    }

    [Fact]
    public void Batch_commands_have_a_documented_byte_format()
    {
        QueueCommand.PublishBatch("t", ["a", "", "bc"]).Encode().ShouldBe(
            [4, 1, 0, (byte)'t', 3, 0, 0, 0, 1, 0, 0, 0, (byte)'a', 0, 0, 0, 0, 2, 0, 0, 0, (byte)'b', (byte)'c']);
        (QueueCommand.PopBatch("t", 258) with { TimestampMs = 1 }).Encode().ShouldBe([5, 1, 0, (byte)'t', 1, 0, 0, 0, 0, 0, 0, 0, 2, 1, 0, 0]);
        QueueCommand.TryDecode([5, 1, 0, (byte)'t', 2, 1, 0, 0], out var old).ShouldBeTrue(); // an earlier build's, without the time
        old.ShouldBe(QueueCommand.PopBatch("t", 258));
    }

    [Fact]
    public void Batch_commands_round_trip_through_their_encoding()
    {
        Prop.ForAll(
            ArbMap.Default.ArbFor<NonNull<string>>(), ArbMap.Default.ArbFor<NonNull<string>[]>(), ArbMap.Default.ArbFor<NonNegativeInt>(),
            (topic, messages, max) =>
            {
                var list = messages.Select(m => m.Get).ToArray();
                if (!IsUtf8(topic.Get) || !list.All(IsUtf8)) return true; // lone surrogates cannot be UTF-8
                foreach (var c in new[] { QueueCommand.PublishBatch(topic.Get, list), QueueCommand.PopBatch(topic.Get, max.Get) })
                {
                    if (!QueueCommand.TryDecode(c.Encode(), out var decoded) || decoded != c) return false;
                }
                return true;
            }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Every_truncation_or_extension_of_a_batch_encoding_is_refused()
    {
        foreach (var c in new[] { QueueCommand.PublishBatch("topic", ["one", "", "three ü"]), QueueCommand.PopBatch("topic", 7) })
        {
            var bytes = c.Encode();
            for (int n = 0; n < bytes.Length; n++)
            {
                // A pop cut back to its length without the time is an earlier build's form of it (a pop of max 0 here).
                if (c.Op == QueueOp.PopBatch && n == bytes.Length - 8) continue;
                QueueCommand.TryDecode(bytes.AsSpan(0, n), out _).ShouldBeFalse($"{c.Op} cut to {n} bytes");
            }
            QueueCommand.TryDecode([.. bytes, 0], out _).ShouldBeFalse($"{c.Op} with a byte more");
        }
    }

    [Fact]
    public void A_count_or_length_the_bytes_cannot_hold_is_refused()
    {
        // Count 2^32-1 with no messages after it: refused before anything is allocated.
        QueueCommand.TryDecode([4, 1, 0, (byte)'t', 0xFF, 0xFF, 0xFF, 0xFF], out _).ShouldBeFalse();
        // Count 2 but one message.
        QueueCommand.TryDecode([4, 1, 0, (byte)'t', 2, 0, 0, 0, 1, 0, 0, 0, (byte)'a', 0, 0, 0], out _).ShouldBeFalse();
        // A message length past the end.
        QueueCommand.TryDecode([4, 1, 0, (byte)'t', 1, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, (byte)'a'], out _).ShouldBeFalse();
        // Invalid UTF-8 inside a batch.
        QueueCommand.TryDecode([4, 1, 0, (byte)'t', 1, 0, 0, 0, 1, 0, 0, 0, 0xFF], out _).ShouldBeFalse();
        // A pop max over int.MaxValue.
        QueueCommand.TryDecode([5, 1, 0, (byte)'t', 0, 0, 0, 0x80], out _).ShouldBeFalse();
        // An empty batch decodes (the state machine refuses it).
        QueueCommand.TryDecode([4, 1, 0, (byte)'t', 0, 0, 0, 0], out var empty).ShouldBeTrue();
        empty.Messages.ShouldBeEmpty();
    }

    [Fact]
    public void Garbage_after_a_batch_header_never_throws()
    {
        var sm = _queues.Create();
        Apply(sm, QueueCommand.CreateTopic("t"));
        Prop.ForAll(ArbMap.Default.ArbFor<byte[]>(), ArbMap.Default.ArbFor<bool>(), (tail, publish) =>
        {
            byte[] bytes = [publish ? (byte)4 : (byte)5, 1, 0, (byte)'t', .. tail];
            var decodes = QueueCommand.TryDecode(bytes, out _);
            var result = (QueueResult)sm.Apply(2, bytes)!;
            return decodes || result.Status == QueueStatus.Invalid;
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void A_batch_publish_appends_all_messages_in_order_interleaved_with_single_ones()
    {
        var sm = _queues.Create();
        Apply(sm, QueueCommand.CreateTopic("t"));
        Apply(sm, QueueCommand.Publish("t", "m0")).ShouldBe(QueueResult.Ok);
        Apply(sm, QueueCommand.PublishBatch("t", ["m1", "m2", "m3"])).ShouldBe(QueueResult.Ok with { Count = 3 });
        Apply(sm, QueueCommand.Publish("t", "m4")).ShouldBe(QueueResult.Ok);
        Apply(sm, QueueCommand.PublishBatch("t", ["m5"])).Count.ShouldBe(1);
        sm.Depth("t").ShouldBe(6);
        sm.TotalMessageBytes.ShouldBe(12 + 6 * O);
        sm.Stats("t", 0)!.PublishedTotal.ShouldBe(6, "published_total counts batches too");
        Apply(sm, QueueCommand.Pop("t")).Message.ShouldBe("m0");
        Apply(sm, QueueCommand.PopBatch("t", 2)).Messages.ShouldBe(["m1", "m2"]);
        Apply(sm, QueueCommand.PopBatch("t", 100)).Messages.ShouldBe(["m3", "m4", "m5"]);
        Apply(sm, QueueCommand.PopBatch("t", 100)).ShouldBe(QueueResult.Ok with { Messages = [] });
        sm.TotalMessageBytes.ShouldBe(0);
    }

    [Fact]
    public void A_batch_that_breaks_a_bound_changes_nothing()
    {
        var sm = _queues.Create(new QueueLimits { MaxMessageBytes = 3, MaxTotalMessageBytes = 10 + 4 * O, MaxBatchMessages = 4 });
        Apply(sm, QueueCommand.CreateTopic("t"));
        Apply(sm, QueueCommand.PublishBatch("t", ["abc", "abc"])).Count.ShouldBe(2);

        // One message too large, after valid ones: none is appended.
        Apply(sm, QueueCommand.PublishBatch("t", ["a", "b", "four"])).Status.ShouldBe(QueueStatus.Invalid);
        // Each fits, but together they pass the total: none is appended.
        Apply(sm, QueueCommand.PublishBatch("t", ["ab", "ab", "ab"])).Status.ShouldBe(QueueStatus.LimitReached);
        // Too many messages, or none.
        Apply(sm, QueueCommand.PublishBatch("t", ["a", "b", "c", "d", "e"])).Status.ShouldBe(QueueStatus.Invalid);
        Apply(sm, QueueCommand.PublishBatch("t", [])).Status.ShouldBe(QueueStatus.Invalid);
        Apply(sm, QueueCommand.PublishBatch("missing", ["a"])).Status.ShouldBe(QueueStatus.NoSuchTopic);
        sm.Depth("t").ShouldBe(2);
        sm.TotalMessageBytes.ShouldBe(6 + 2 * O);

        // Exactly at the total is allowed.
        Apply(sm, QueueCommand.PublishBatch("t", ["ab", "ab"])).Count.ShouldBe(2);
        sm.TotalMessageBytes.ShouldBe(10 + 4 * O);
        Apply(sm, QueueCommand.PopBatch("t", 10)).Messages.ShouldBe(["abc", "abc", "ab", "ab"]);
    }

    [Fact]
    public void A_batch_pop_stops_at_the_byte_bound_but_always_takes_one()
    {
        var sm = _queues.Create(new QueueLimits { MaxPopBatchBytes = 10, MaxBatchMessages = 3 });
        Apply(sm, QueueCommand.CreateTopic("t"));
        Apply(sm, QueueCommand.PublishBatch("t", ["aaaa", "bbbb", "cccc"])).Count.ShouldBe(3);
        Apply(sm, QueueCommand.PublishBatch("t", [new string('x', 25), "dd", "ee"])).Count.ShouldBe(3);
        Apply(sm, QueueCommand.PublishBatch("t", ["ff", "gg"])).Count.ShouldBe(2);
        Apply(sm, QueueCommand.PopBatch("t", 10)).Messages.ShouldBe(["aaaa", "bbbb"]); // a third would make 12 bytes
        Apply(sm, QueueCommand.PopBatch("t", 10)).Messages.ShouldBe(["cccc"]); // the next one alone is over the bound
        Apply(sm, QueueCommand.PopBatch("t", 10)).Messages.ShouldBe([new string('x', 25)]); // over the bound, but one is always taken
        Apply(sm, QueueCommand.PopBatch("t", 10)).Messages.ShouldBe(["dd", "ee", "ff"]); // max capped to MaxBatchMessages
        Apply(sm, QueueCommand.PopBatch("t", 0)).Status.ShouldBe(QueueStatus.Invalid);
        Apply(sm, QueueCommand.PopBatch("missing", 1)).Status.ShouldBe(QueueStatus.NoSuchTopic);
        sm.Depth("t").ShouldBe(1);
        sm.TotalMessageBytes.ShouldBe(2 + O);
    }

    [Fact]
    public void Two_nodes_applying_the_same_log_hold_the_same_queues()
    {
        Prop.ForAll(ArbMap.Default.ArbFor<int[]>(), steps =>
        {
            var limits = new QueueLimits { MaxTotalMessageBytes = 200 + 10 * O, MaxBatchMessages = 8, MaxPopBatchBytes = 20 };
            using var a = _queues.Create(limits);
            using var b = _queues.Create(limits);
            ulong index = 0, serial = 0;
            foreach (var step in steps)
            {
                var (op, t, count) = (step & 0xFF, (step >> 8) & 0xFF, (step >> 16) & 0xFF);
                var topic = "t" + t % 3;
                var messages = Enumerable.Range(0, count % 10).Select(_ => new string('m', (int)(serial++ % 7))).ToArray();
                var command = (op % 5) switch
                {
                    0 => QueueCommand.CreateTopic(topic),
                    1 => QueueCommand.Publish(topic, $"m{serial++}"),
                    2 => QueueCommand.Pop(topic),
                    3 => QueueCommand.PublishBatch(topic, messages),
                    _ => QueueCommand.PopBatch(topic, count % 12),
                };
                var bytes = command.Encode();
                index++;
                if (!Equals(a.Apply(index, bytes), b.Apply(index, bytes))) return false;
            }
            return Snapshot(a).AsSpan().SequenceEqual(Snapshot(b)) && a.TotalMessageBytes == b.TotalMessageBytes;
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void The_byte_total_matches_the_waiting_messages_after_any_mix_of_commands()
    {
        var sm = _queues.Create(new QueueLimits { MaxTotalMessageBytes = 100 + 10 * O, MaxPopBatchBytes = 9 });
        Apply(sm, QueueCommand.CreateTopic("t"));
        var rng = new Random(7);
        var model = new Queue<string>();
        for (int i = 0; i < 2_000; i++)
        {
            switch (rng.Next(3))
            {
                case 0:
                    var batch = Enumerable.Range(0, rng.Next(1, 6)).Select(_ => new string('ü', rng.Next(0, 5))).ToArray();
                    if (Apply(sm, QueueCommand.PublishBatch("t", batch)).Success) foreach (var m in batch) model.Enqueue(m);
                    break;
                case 1:
                    foreach (var m in Apply(sm, QueueCommand.PopBatch("t", rng.Next(1, 5))).Messages!) m.ShouldBe(model.Dequeue());
                    break;
                default:
                    var single = Apply(sm, QueueCommand.Pop("t"));
                    if (single.Success) single.Message.ShouldBe(model.Dequeue());
                    break;
            }
            sm.TotalMessageBytes.ShouldBe(model.Sum(m => (long)O + Encoding.UTF8.GetByteCount(m)));
        }
    }

    private static byte[] Snapshot(QueueStateMachine sm)
    {
        using var buffer = new MemoryStream();
        sm.WriteSnapshot(buffer);
        return buffer.ToArray();
    }
}

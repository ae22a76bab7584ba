using System.Buffers.Binary;
using RaftMQ.StateMachine;
using static RaftMQ.Queue.Tests.QueueTestSteps;

namespace RaftMQ.Queue.Tests;

/// <summary>
/// Receipts name the group that gave them, down to the entry that created it (<see cref="Receipt.TagOf"/>): a group or
/// topic deleted and created again under the same name hands out deliveries with the same offsets and counts, and
/// the receipts of the old one must stay stale for them.
/// </summary>
public sealed class ReceiptFencingTests : IDisposable
{
    private readonly TestQueues _queues = new();
    private ulong _index;

    public void Dispose() => _queues.Dispose();

    /// <summary>Applies <paramref name="c"/> as the next entry of the log.</summary>
    private QueueResult Next(QueueStateMachine sm, QueueCommand c) => (QueueResult)sm.Apply(++_index, c.Encode())!;

    /// <summary>The receipts of a receive's messages, as the HTTP layer gives them: with the result's tag.</summary>
    private static List<Receipt> Receipts(QueueResult received) =>
        [.. received.Delivered!.Select(m => new Receipt(m.Offset, m.DeliveryCount) { Tag = received.ReceiptTag })];

    private QueueStateMachine WithTopic(int messages)
    {
        var sm = _queues.Create();
        Next(sm, QueueCommand.ConfigureTopic("t", 5)).Success.ShouldBeTrue();
        Next(sm, QueueCommand.PublishMessages("t", [.. Enumerable.Range(0, messages).Select(i => Msg($"m{i}"))], 1_000)).Count.ShouldBe(messages);
        return sm;
    }

    [Fact]
    public void A_receive_names_the_group_and_the_entry_that_created_it()
    {
        var sm = WithTopic(2);
        Next(sm, QueueCommand.Receive("t", "default", 1, 30_000, 2_000)).ReceiptTag.ShouldBe(Receipt.TagOf("t", "default", 1));
        Next(sm, QueueCommand.CreateGroup("t", "billing", GroupStart.Earliest)).Success.ShouldBeTrue();
        var created = _index;
        var received = Next(sm, QueueCommand.ReceiveAck("t", "billing", 1, 30_000, [new Receipt(9, 1) { Tag = 1 }], 2_001));
        received.ReceiptTag.ShouldBe(Receipt.TagOf("t", "billing", created));
        received.Stale.ShouldBe([new Receipt(9, 1) { Tag = 1 }]); // given back as given, with its tag
    }

    [Fact]
    public void Receipts_of_a_group_deleted_and_created_again_are_stale_for_the_new_one()
    {
        var sm = WithTopic(4);
        Next(sm, QueueCommand.CreateGroup("t", "billing", GroupStart.Earliest)).Success.ShouldBeTrue();
        var old = Receipts(Next(sm, QueueCommand.Receive("t", "billing", 4, 30_000, 2_000)));
        old.Select(r => (r.Offset, r.Delivery)).ShouldBe([(0UL, 1), (1UL, 1), (2UL, 1), (3UL, 1)]);

        Next(sm, QueueCommand.DeleteGroup("t", "billing", 2_001)).Success.ShouldBeTrue();
        Next(sm, QueueCommand.CreateGroup("t", "billing", GroupStart.Earliest)).Success.ShouldBeTrue();
        var fresh = Receipts(Next(sm, QueueCommand.Receive("t", "billing", 4, 30_000, 2_002)));
        // The same offsets and delivery counts: only the tag tells the deliveries apart.
        fresh.Select(r => (r.Offset, r.Delivery)).ShouldBe(old.Select(r => (r.Offset, r.Delivery)));
        fresh[0].Tag.ShouldNotBe(old[0].Tag);

        // The old consumer's late ack, nack, extend and receive-ack settle nothing of the new group's.
        var ack = Next(sm, QueueCommand.Ack("t", "billing", [old[0]], 2_003));
        ack.Count.ShouldBe(0);
        ack.Stale.ShouldBe([old[0]]);
        Next(sm, QueueCommand.Nack("t", "billing", [old[1]], 0, "late", 2_003)).Count.ShouldBe(0);
        Next(sm, QueueCommand.Extend("t", "billing", [old[2]], 60_000, 2_003)).Count.ShouldBe(0);
        var receiveAck = Next(sm, QueueCommand.ReceiveAck("t", "billing", 1, 30_000, [old[3]], 2_003));
        (receiveAck.Count, receiveAck.Delivered!.Count, receiveAck.Stale!.Count).ShouldBe((0, 0, 1));
        var group = sm.Stats("t", 2_003)!.Groups.Single(g => g.Group == "billing");
        (group.Leased, group.AckedTotal).ShouldBe((4, 0L));

        // The new consumer's receipts do settle them, once each.
        var settled = Next(sm, QueueCommand.Ack("t", "billing", fresh, 2_004));
        (settled.Count, settled.Stale!.Count).ShouldBe((4, 0));
        Next(sm, QueueCommand.Ack("t", "billing", fresh, 2_004)).Stale!.Count.ShouldBe(4);
    }

    [Fact]
    public void Receipts_of_a_topic_deleted_and_created_again_are_stale_for_the_new_one()
    {
        var sm = WithTopic(1);
        var old = Receipts(Next(sm, QueueCommand.Receive("t", "default", 1, 30_000, 2_000)));
        Next(sm, QueueCommand.DeleteTopic("t")).Success.ShouldBeTrue();
        Next(sm, QueueCommand.ConfigureTopic("t", 5)).Success.ShouldBeTrue();
        Next(sm, QueueCommand.PublishMessages("t", [Msg("another message")], 2_001)).Count.ShouldBe(1);
        var fresh = Receipts(Next(sm, QueueCommand.Receive("t", "default", 1, 30_000, 2_002)));
        (fresh[0].Offset, fresh[0].Delivery).ShouldBe((old[0].Offset, old[0].Delivery));

        Next(sm, QueueCommand.Ack("t", "default", old, 2_003)).Count.ShouldBe(0);
        sm.Stats("t", 2_003)!.Groups.Single().Leased.ShouldBe(1);
        Next(sm, QueueCommand.Ack("t", "default", fresh, 2_004)).Count.ShouldBe(1);
    }

    [Fact]
    public void Another_groups_receipt_is_stale_even_at_the_same_offset_and_count()
    {
        var sm = WithTopic(1);
        Next(sm, QueueCommand.CreateGroup("t", "billing", GroupStart.Earliest)).Success.ShouldBeTrue();
        var billing = Receipts(Next(sm, QueueCommand.Receive("t", "billing", 1, 30_000, 2_000)));
        var defaults = Receipts(Next(sm, QueueCommand.Receive("t", "default", 1, 30_000, 2_000)));
        Next(sm, QueueCommand.Ack("t", "default", billing, 2_001)).Count.ShouldBe(0);
        Next(sm, QueueCommand.Ack("t", "billing", defaults, 2_001)).Count.ShouldBe(0);
        Next(sm, QueueCommand.Ack("t", "billing", billing, 2_001)).Count.ShouldBe(1);
    }

    [Fact]
    public void Receipts_without_a_tag_from_entries_of_earlier_builds_apply_as_they_did()
    {
        var sm = WithTopic(2);
        var got = Next(sm, QueueCommand.Receive("t", "default", 2, 30_000, 2_000)).Delivered!;
        Next(sm, QueueCommand.Ack("t", "default", [.. got.Select(ReceiptOf)], 2_001)).Count.ShouldBe(2);
    }

    [Fact]
    public void A_snapshot_keeps_each_groups_creation()
    {
        var sm = WithTopic(3);
        Next(sm, QueueCommand.CreateGroup("t", "billing", GroupStart.Earliest)).Success.ShouldBeTrue();
        var old = Receipts(Next(sm, QueueCommand.Receive("t", "billing", 1, 30_000, 2_000)));
        Next(sm, QueueCommand.DeleteGroup("t", "billing", 2_001)).Success.ShouldBeTrue();
        Next(sm, QueueCommand.CreateGroup("t", "billing", GroupStart.Earliest)).Success.ShouldBeTrue();
        var fresh = Receipts(Next(sm, QueueCommand.Receive("t", "billing", 2, 30_000, 2_002)));
        var defaults = Receipts(Next(sm, QueueCommand.Receive("t", "default", 1, 30_000, 2_002)));

        using var buffer = new MemoryStream();
        sm.WriteSnapshot(buffer);
        buffer.Position = 0;
        var restored = _queues.Create();
        restored.RestoreSnapshot(buffer);
        Next(restored, QueueCommand.Ack("t", "billing", old, 2_003)).Count.ShouldBe(0);
        Next(restored, QueueCommand.Ack("t", "billing", fresh, 2_003)).Count.ShouldBe(2);
        Next(restored, QueueCommand.Ack("t", "default", defaults, 2_003)).Count.ShouldBe(1);
        Next(restored, QueueCommand.Receive("t", "billing", 1, 30_000, 2_004)).ReceiptTag.ShouldBe(fresh[0].Tag);
    }

    [Fact]
    public void Groups_of_a_snapshot_from_before_creations_were_recorded_keep_the_tags_their_receipts_had()
    {
        var sm = WithTopic(2);
        Next(sm, QueueCommand.CreateGroup("t", "billing", GroupStart.Earliest)).Success.ShouldBeTrue();
        var got = Next(sm, QueueCommand.Receive("t", "billing", 2, 30_000, 2_000)).Delivered!;
        using var buffer = new MemoryStream();
        sm.WriteSnapshot(buffer);

        // The same snapshot as a build before the creations wrote it: the topic's state (the last thing in it, with
        // no other topic) without its final section, [group count i32] then one u64 per group.
        var bytes = buffer.ToArray();
        const int Section = 4 + 2 * 8;
        BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(bytes.Length - Section)).ShouldBe(2);
        var lengthAt = Enumerable.Range(0, bytes.Length - 4).Last(p => BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(p)) == bytes.Length - p - 4);
        var old = bytes[..^Section];
        BinaryPrimitives.WriteInt32LittleEndian(old.AsSpan(lengthAt), bytes.Length - lengthAt - 4 - Section);

        var restored = _queues.Create();
        restored.RestoreSnapshot(new MemoryStream(old));
        // A receipt an earlier build gave carried the tag of the names alone, which is the tag of creation 0.
        var earlier = got.Select(m => new Receipt(m.Offset, m.DeliveryCount) { Tag = Receipt.TagOf("t", "billing", 0) }).ToList();
        Next(restored, QueueCommand.Ack("t", "billing", [earlier[0]], 2_001)).Count.ShouldBe(1);
        Next(restored, QueueCommand.Ack("t", "billing", [earlier[1] with { Tag = Receipt.TagOf("t", "billing", 4) }], 2_001)).Count.ShouldBe(0);
        // Groups created after it record their entry.
        Next(restored, QueueCommand.CreateGroup("t", "audit", GroupStart.Earliest)).Success.ShouldBeTrue();
        Next(restored, QueueCommand.Receive("t", "audit", 1, 30_000, 2_002)).ReceiptTag.ShouldBe(Receipt.TagOf("t", "audit", _index - 1));
    }
}

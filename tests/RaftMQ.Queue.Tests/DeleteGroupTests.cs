using System.Text;
using RaftMQ.StateMachine;
using static RaftMQ.Queue.Tests.QueueTestSteps;

namespace RaftMQ.Queue.Tests;

/// <summary>Deleting a consumer group (op 17): what only it held goes, its receipts stop counting, the last group stays.</summary>
public sealed class DeleteGroupTests : IDisposable
{
    private readonly TestQueues _queues = new();

    public void Dispose() => _queues.Dispose();

    private static byte[] Snapshot(QueueStateMachine sm)
    {
        using var buffer = new MemoryStream();
        sm.WriteSnapshot(buffer);
        return buffer.ToArray();
    }

    private QueueStateMachine WithGroups()
    {
        var sm = _queues.Create(storeOptions: new QueueStoreOptions { SegmentBytes = 256 });
        Apply(sm, QueueCommand.ConfigureTopic("t", 5)).Count.ShouldBe(1);
        Apply(sm, QueueCommand.CreateGroup("t", "billing", GroupStart.Earliest)).Success.ShouldBeTrue();
        Apply(sm, QueueCommand.PublishMessages("t", [.. Enumerable.Range(0, 40).Select(i => Msg($"m{i}"))], 1_000)).Count.ShouldBe(40);
        return sm;
    }

    private static int SegmentFiles(QueueStateMachine sm) => Directory.GetFiles(sm.Directory, "*.seg").Length;

    [Fact]
    public void Deleting_the_group_nobody_consumes_frees_what_only_it_held()
    {
        var sm = WithGroups();
        // billing consumes everything; default, never consumed, keeps the head at 0 and every segment.
        var got = Apply(sm, QueueCommand.Receive("t", "billing", 40, 30_000, 2_000)).Delivered!;
        Apply(sm, QueueCommand.Ack("t", "billing", [.. got.Select(m => new Receipt(m.Offset, m.DeliveryCount))], 2_001)).Count.ShouldBe(40);
        sm.Offsets("t").ShouldBe((0UL, 40UL));
        var before = SegmentFiles(sm);
        before.ShouldBeGreaterThan(3);

        Apply(sm, QueueCommand.DeleteGroup("t", "default", 2_002)).ShouldBe(QueueResult.Ok);
        sm.Offsets("t").ShouldBe((40UL, 40UL));
        SegmentFiles(sm).ShouldBeLessThan(before);
        sm.Stats("t", 2_002)!.Groups.Select(g => g.Group).ShouldBe(["billing"]);

        // The pops are an atomic receive and ack on default: without it they answer that the group is missing.
        Apply(sm, QueueCommand.Pop("t")).Status.ShouldBe(QueueStatus.NoSuchGroup);
        Apply(sm, QueueCommand.PopBatch("t", 5)).Status.ShouldBe(QueueStatus.NoSuchGroup);
        Apply(sm, QueueCommand.PopMessages("t", 5)).Status.ShouldBe(QueueStatus.NoSuchGroup);

        // Created again, default starts where it is told, and the pops work again.
        Apply(sm, QueueCommand.PublishMessages("t", [Msg("after")], 3_000)).Count.ShouldBe(1);
        Apply(sm, QueueCommand.CreateGroup("t", "default", GroupStart.Earliest)).Success.ShouldBeTrue();
        Apply(sm, QueueCommand.Pop("t")).Message.ShouldBe("after");
    }

    [Fact]
    public void A_deleted_groups_leases_end_and_its_receipts_name_a_missing_group()
    {
        var sm = WithGroups();
        var leased = Apply(sm, QueueCommand.Receive("t", "billing", 3, 30_000, 2_000)).Delivered!;
        Apply(sm, QueueCommand.DeleteGroup("t", "billing", 2_001)).ShouldBe(QueueResult.Ok);
        Apply(sm, QueueCommand.Ack("t", "billing", [.. leased.Select(m => new Receipt(m.Offset, m.DeliveryCount))], 2_002)).Status.ShouldBe(QueueStatus.NoSuchGroup);
        Apply(sm, QueueCommand.Receive("t", "billing", 1, 30_000, 2_003)).Status.ShouldBe(QueueStatus.NoSuchGroup);
        // A new group of the same name starts afresh: the messages are delivered to it from the first.
        Apply(sm, QueueCommand.CreateGroup("t", "billing", GroupStart.Earliest)).Success.ShouldBeTrue();
        var again = Apply(sm, QueueCommand.Receive("t", "billing", 1, 30_000, 2_004)).Delivered!.Single();
        (again.Offset, again.DeliveryCount, Text(again)).ShouldBe((0UL, 1, "m0"));
        // default kept everything meanwhile.
        Apply(sm, QueueCommand.Pop("t")).Message.ShouldBe("m0");
    }

    [Fact]
    public void The_last_group_stays_and_bad_requests_change_nothing()
    {
        var sm = WithGroups();
        Apply(sm, QueueCommand.DeleteGroup("nope", "billing", 2_000)).Status.ShouldBe(QueueStatus.NoSuchTopic);
        Apply(sm, QueueCommand.DeleteGroup("t", "nope", 2_000)).Status.ShouldBe(QueueStatus.NoSuchGroup);
        Apply(sm, QueueCommand.DeleteGroup("t", "bad name!", 2_000)).Status.ShouldBe(QueueStatus.Invalid);
        Apply(sm, QueueCommand.DeleteGroup(DeadLetters.TopicFor("t"), "default", 2_000)).Status.ShouldBe(QueueStatus.Invalid);
        sm.Stats("t", 2_000)!.Groups.Select(g => g.Group).ShouldBe(["default", "billing"]);
        Apply(sm, QueueCommand.DeleteGroup("t", "billing", 2_001)).ShouldBe(QueueResult.Ok);
        Apply(sm, QueueCommand.DeleteGroup("t", "default", 2_002)).Status.ShouldBe(QueueStatus.LastGroup);
        Apply(sm, QueueCommand.Pop("t")).Message.ShouldBe("m0");
    }

    [Fact]
    public void A_topic_without_default_goes_through_a_snapshot_and_the_op_and_status_encode()
    {
        var sm = WithGroups();
        Apply(sm, QueueCommand.DeleteGroup("t", "default", 2_000)).ShouldBe(QueueResult.Ok);
        var bytes = Snapshot(sm);
        var restored = _queues.Create();
        restored.RestoreSnapshot(new MemoryStream(bytes));
        Snapshot(restored).ShouldBe(bytes);
        restored.Stats("t", 2_000)!.Groups.Select(g => g.Group).ShouldBe(["billing"]);
        Apply(restored, QueueCommand.Pop("t")).Status.ShouldBe(QueueStatus.NoSuchGroup);

        var command = QueueCommand.DeleteGroup("orders", "billing", 1_234);
        var encoded = command.Encode();
        encoded[0].ShouldBe((byte)17);
        QueueCommand.IsStamped(QueueOp.DeleteGroup).ShouldBeTrue();
        QueueCommand.TryDecode(encoded, out var decoded).ShouldBeTrue();
        decoded.ShouldBe(command);
        for (var cut = 1; cut < encoded.Length; cut++) QueueCommand.TryDecode(encoded.AsSpan(0, cut), out _).ShouldBeFalse($"cut at {cut}");
        QueueCommand.TryDecode([.. encoded, 0], out _).ShouldBeFalse("a byte past the group");
        var codec = new QueueResultCodec();
        ((QueueResult)codec.Decode(codec.Encode(new QueueResult(QueueStatus.LastGroup)))!).Status.ShouldBe(QueueStatus.LastGroup);
    }
}

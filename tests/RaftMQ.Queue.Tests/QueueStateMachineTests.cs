using FsCheck.Fluent;
using FsCheck;
using RaftMQ.StateMachine;
using static RaftMQ.Queue.Tests.QueueTestSteps;

namespace RaftMQ.Queue.Tests;

public sealed class QueueStateMachineTests : IDisposable
{
    private readonly TestQueues _queues = new();

    public void Dispose() => _queues.Dispose();

    [Fact]
    public void Commands_round_trip_through_their_encoding()
    {
        Prop.ForAll(
            ArbMap.Default.ArbFor<NonNull<string>>(), ArbMap.Default.ArbFor<NonNull<string>>(),
            (topic, message) =>
            {
                foreach (var c in new[] { QueueCommand.CreateTopic(topic.Get), QueueCommand.Publish(topic.Get, message.Get), QueueCommand.Pop(topic.Get) })
                {
                    var bytes = c.Encode();
                    if (!QueueCommand.TryDecode(bytes, out var decoded) || decoded != c)
                    {
                        // Lone surrogates cannot be UTF-8; everything else must round-trip.
                        if (System.Text.Encoding.UTF8.GetString(System.Text.Encoding.UTF8.GetBytes(topic.Get)) == topic.Get
                            && System.Text.Encoding.UTF8.GetString(System.Text.Encoding.UTF8.GetBytes(message.Get)) == message.Get)
                            return false;
                    }
                }
                return true;
            }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Garbage_is_not_a_command_and_applies_as_invalid_without_changing_state()
    {
        var sm = _queues.Create();
        Apply(sm, QueueCommand.CreateTopic("t"));
        Prop.ForAll(ArbMap.Default.ArbFor<byte[]>(), bytes =>
        {
            var result = (QueueResult)sm.Apply(2, bytes)!;
            return result.Status == QueueStatus.Invalid || QueueCommand.TryDecode(bytes, out _);
        }).QuickCheckThrowOnFailure();
        sm.Apply(3, new byte[] { 2, 1, 0, (byte)'t', 5, 0, 0, 0, 1 }).ShouldBe(new QueueResult(QueueStatus.Invalid));
        sm.Apply(4, new byte[] { 9, 0, 0, 0, 0, 0, 0 }).ShouldBe(new QueueResult(QueueStatus.Invalid));
    }

    [Fact]
    public void Topics_keep_creation_order_and_messages_pop_first_in_first_out()
    {
        var sm = _queues.Create();
        Apply(sm, QueueCommand.CreateTopic("z")).ShouldBe(QueueResult.Ok);
        Apply(sm, QueueCommand.CreateTopic("a")).ShouldBe(QueueResult.Ok);
        Apply(sm, QueueCommand.CreateTopic("z")).Status.ShouldBe(QueueStatus.TopicExists);
        sm.Topics().ShouldBe(["z", "a"]);
        Apply(sm, QueueCommand.Publish("q", "x")).Status.ShouldBe(QueueStatus.NoSuchTopic);
        Apply(sm, QueueCommand.Pop("q")).Status.ShouldBe(QueueStatus.NoSuchTopic);
        Apply(sm, QueueCommand.Pop("a")).Status.ShouldBe(QueueStatus.Empty);
        for (int i = 0; i < 3; i++) Apply(sm, QueueCommand.Publish("a", $"m{i}"));
        for (int i = 0; i < 3; i++) Apply(sm, QueueCommand.Pop("a")).ShouldBe(new QueueResult(QueueStatus.Ok, $"m{i}"));
        sm.TotalMessageBytes.ShouldBe(0);
    }

    [Fact]
    public void Limits_are_enforced_by_the_state_machine_itself()
    {
        var sm = _queues.Create(new QueueLimits { MaxTopics = 2, MaxTopicNameBytes = 4, MaxMessageBytes = 3, MaxTotalMessageBytes = QueueLimits.MessageOverheadBytes + 5 });
        Apply(sm, QueueCommand.CreateTopic("toolong")).Status.ShouldBe(QueueStatus.Invalid);
        Apply(sm, QueueCommand.CreateTopic("")).Status.ShouldBe(QueueStatus.Invalid);
        Apply(sm, QueueCommand.CreateTopic("a")).ShouldBe(QueueResult.Ok);
        Apply(sm, QueueCommand.CreateTopic("b")).ShouldBe(QueueResult.Ok);
        Apply(sm, QueueCommand.CreateTopic("c")).Status.ShouldBe(QueueStatus.LimitReached);
        Apply(sm, QueueCommand.Publish("a", "four")).Status.ShouldBe(QueueStatus.Invalid);
        Apply(sm, QueueCommand.Publish("a", "abc")).ShouldBe(QueueResult.Ok);
        Apply(sm, QueueCommand.Publish("b", "abc")).Status.ShouldBe(QueueStatus.LimitReached);
        Apply(sm, QueueCommand.Pop("a")).Message.ShouldBe("abc");
        Apply(sm, QueueCommand.Publish("b", "abc")).ShouldBe(QueueResult.Ok);
    }

    [Fact]
    public void A_snapshot_restores_the_same_queues_on_another_node()
    {
        var source = _queues.Create();
        Apply(source, QueueCommand.CreateTopic("ü/topic"));
        Apply(source, QueueCommand.CreateTopic("empty"));
        for (int i = 0; i < 100; i++) Apply(source, QueueCommand.Publish("ü/topic", new string('x', i)));
        Apply(source, QueueCommand.Pop("ü/topic"));
        using var buffer = new MemoryStream();
        source.WriteSnapshot(buffer);

        var target = _queues.Create();
        Apply(target, QueueCommand.CreateTopic("stale"));
        buffer.Position = 0;
        target.RestoreSnapshot(buffer);
        target.Topics().ShouldBe(["ü/topic", "empty"]);
        target.Depth("ü/topic").ShouldBe(99);
        target.TotalMessageBytes.ShouldBe(source.TotalMessageBytes);
        for (int i = 1; i < 100; i++)
            Apply(target, QueueCommand.Pop("ü/topic")).Message.ShouldBe(Apply(source, QueueCommand.Pop("ü/topic")).Message);
    }

    [Fact]
    public void A_foreign_or_damaged_snapshot_is_refused()
    {
        var sm = _queues.Create();
        Should.Throw<InvalidDataException>(() => sm.RestoreSnapshot(new MemoryStream([1, 2, 3, 4, 5])));
        using var buffer = new MemoryStream();
        sm.WriteSnapshot(buffer);
        var bytes = buffer.ToArray();
        bytes[4] = 99; // unknown version
        Should.Throw<InvalidDataException>(() => sm.RestoreSnapshot(new MemoryStream(bytes)));
    }
}

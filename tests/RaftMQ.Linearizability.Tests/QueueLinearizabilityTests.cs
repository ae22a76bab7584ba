using RaftMQ.Linearizability;

namespace RaftMQ.Linearizability.Tests;

public sealed class QueueLinearizabilityTests
{
    private static readonly QueueModel Model = new();

    private static Operation<QueueInput, QueueOutput> Pub(int client, string m, long call, long ret) =>
        new(client, new QueueInput(QueueOpKind.Publish, m), QueueOutput.Ok, call, ret);

    private static Operation<QueueInput, QueueOutput> Pop(int client, string? m, long call, long ret) =>
        new(client, new QueueInput(QueueOpKind.Pop, null), QueueOutput.Popped(m), call, ret);

    private static bool Check(params Operation<QueueInput, QueueOutput>[] history) =>
        LinearizabilityChecker.Check(Model, history).IsLinearizable;

    [Fact]
    public void A_sequential_FIFO_history_is_linearizable()
    {
        Check(Pub(0, "a", 0, 1), Pub(0, "b", 2, 3), Pop(0, "a", 4, 5), Pop(0, "b", 6, 7), Pop(0, null, 8, 9)).ShouldBeTrue();
    }

    [Fact]
    public void Popping_out_of_order_is_not()
    {
        Check(Pub(0, "a", 0, 1), Pub(0, "b", 2, 3), Pop(0, "b", 4, 5)).ShouldBeFalse();
    }

    [Fact]
    public void A_message_popped_twice_is_not()
    {
        Check(Pub(0, "a", 0, 1), Pop(1, "a", 2, 3), Pop(2, "a", 4, 5)).ShouldBeFalse();
    }

    [Fact]
    public void A_stale_read_after_a_completed_pop_is_not()
    {
        // The pop of "a" completed before the second pop began, so the second cannot see "a" again — even though
        // the operations are on different clients (real-time order is what linearizability adds to sequential consistency).
        Check(Pub(0, "a", 0, 1), Pub(0, "b", 0, 1), Pop(1, "a", 2, 3), Pop(2, "a", 4, 5)).ShouldBeFalse();
    }

    [Fact]
    public void Concurrent_publishes_may_land_in_either_order()
    {
        Check(Pub(0, "a", 0, 10), Pub(1, "b", 1, 9), Pop(2, "b", 11, 12), Pop(2, "a", 13, 14)).ShouldBeTrue();
        Check(Pub(0, "a", 0, 10), Pub(1, "b", 1, 9), Pop(2, "a", 11, 12), Pop(2, "b", 13, 14)).ShouldBeTrue();
    }

    [Fact]
    public void A_pop_that_sees_a_message_not_yet_published_is_not()
    {
        Check(Pop(0, "a", 0, 1), Pub(1, "a", 2, 3)).ShouldBeFalse();
    }

    [Fact]
    public void An_operation_with_an_unknown_outcome_may_have_happened_or_not()
    {
        var unknownPublish = new Operation<QueueInput, QueueOutput>(0, new QueueInput(QueueOpKind.Publish, "x"), QueueOutput.Unknown, 0, long.MaxValue);
        Check(unknownPublish, Pop(1, null, 5, 6)).ShouldBeTrue();
        Check(unknownPublish, Pop(1, "x", 5, 6)).ShouldBeTrue();
        Check(unknownPublish, Pop(1, "y", 5, 6)).ShouldBeFalse();
    }

    [Fact]
    public void The_linearization_found_respects_real_time()
    {
        var history = new[] { Pub(0, "a", 0, 2), Pop(1, "a", 1, 5), Pub(0, "b", 3, 4), Pop(1, "b", 6, 7) };
        var result = LinearizabilityChecker.Check(Model, history);
        result.IsLinearizable.ShouldBeTrue();
        result.Order!.Select(o => o.Input.Message ?? "pop:" + o.Output.Message).ShouldBe(["a", "pop:a", "b", "pop:b"]);
    }

    [Fact]
    public void A_larger_concurrent_history_is_checked_quickly()
    {
        // 4 clients, 400 operations, each overlapping its neighbours; produced by a real FIFO queue, so linearizable.
        var queue = new Queue<string>();
        var history = new List<Operation<QueueInput, QueueOutput>>();
        var random = new Random(7);
        for (int i = 0; i < 400; i++)
        {
            var call = i * 10L;
            if (random.Next(2) == 0)
            {
                queue.Enqueue($"m{i}");
                history.Add(Pub(i % 4, $"m{i}", call, call + 25));
            }
            else
            {
                history.Add(Pop(i % 4, queue.TryDequeue(out var m) ? m : null, call, call + 25));
            }
        }
        var result = LinearizabilityChecker.Check(Model, history);
        result.TimedOut.ShouldBeFalse();
        result.IsLinearizable.ShouldBeTrue();
    }
}

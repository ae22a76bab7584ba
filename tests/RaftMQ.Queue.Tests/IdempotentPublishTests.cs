using System.Text;
using RaftMQ.StateMachine;
using static RaftMQ.Queue.Tests.QueueTestSteps;

namespace RaftMQ.Queue.Tests;

/// <summary>
/// Idempotent publishing: message ids remembered per topic for its dedup window by the commands' time, within the
/// per-topic and node-wide bounds, kept in snapshots.
/// </summary>
[Collection(QueueMemoryCollection.Name)]
public sealed class IdempotentPublishTests : IDisposable
{
    private readonly TestQueues _queues = new();

    public void Dispose() => _queues.Dispose();

    private static QueueMessage Msg(string text, string? id = null) => new(Encoding.UTF8.GetBytes(text)) { Id = id };

    private static QueueResult Publish(QueueStateMachine sm, long now, params QueueMessage[] messages) =>
        Apply(sm, QueueCommand.PublishExtended("t", messages, now));

    private static string[] Texts(QueueStateMachine sm) =>
        [.. sm.Peek("t", null, 1_000)!.Select(m => Encoding.UTF8.GetString(m.Payload.Span))];

    private QueueStateMachine WithTopic(QueueLimits? limits = null, long? window = null)
    {
        var sm = _queues.Create(limits);
        Apply(sm, QueueCommand.ConfigureTopic("t", 0, dedupWindowMs: window)).Count.ShouldBe(1);
        return sm;
    }

    [Fact]
    public void A_repeated_id_is_not_stored_again_and_answers_the_original_offset()
    {
        var sm = WithTopic();
        var first = Publish(sm, 1_000, Msg("a", "id-a"), Msg("b"), Msg("c", "id-c"));
        first.ShouldBe(QueueResult.Ok with { Count = 3, Offsets = [0UL, 1UL, 2UL] });
        // The retry of a publish whose answer was lost: nothing stored, the same offsets back.
        var retry = Publish(sm, 2_000, Msg("a", "id-a"), Msg("c", "id-c"));
        retry.ShouldBe(QueueResult.Ok with { Count = 0, Offsets = [0UL, 2UL] });
        // A message without an id is never a duplicate; a known id among new ones is skipped alone.
        Publish(sm, 3_000, Msg("b"), Msg("x", "id-c"), Msg("d", "id-d")).ShouldBe(QueueResult.Ok with { Count = 2, Offsets = [3UL, 2UL, 4UL] });
        Texts(sm).ShouldBe(["a", "b", "c", "b", "d"]);
        var stats = sm.Stats("t", 3_000)!;
        (stats.PublishedTotal, stats.DedupIds, stats.DedupWindowMs).ShouldBe((5L, 3, sm.Limits.DefaultDedupWindowMs));
    }

    [Fact]
    public void A_repeated_id_within_one_batch_is_stored_once()
    {
        var sm = WithTopic();
        Publish(sm, 1_000, Msg("a", "k"), Msg("b", "k"), Msg("c")).ShouldBe(QueueResult.Ok with { Count = 2, Offsets = [0UL, 0UL, 1UL] });
        Texts(sm).ShouldBe(["a", "c"]);
    }

    [Fact]
    public void An_id_is_forgotten_when_the_window_has_passed_by_the_replicated_clock()
    {
        var sm = WithTopic(window: 10_000);
        Publish(sm, 1_000, Msg("a", "k")).Offsets.ShouldBe([0UL]);
        Publish(sm, 10_999, Msg("a", "k")).ShouldBe(QueueResult.Ok with { Count = 0, Offsets = [0UL] });
        // The window is measured from the first publish, not renewed by the duplicate.
        Publish(sm, 11_000, Msg("a", "k")).ShouldBe(QueueResult.Ok with { Count = 1, Offsets = [1UL] });
        // A command stamped earlier than the clock is judged at the clock: it does not bring the old id back.
        Publish(sm, 5_000, Msg("a", "k")).ShouldBe(QueueResult.Ok with { Count = 0, Offsets = [1UL] });
        Texts(sm).ShouldBe(["a", "a"]);
    }

    [Fact]
    public void Changing_the_window_applies_to_remembered_ids_and_zero_turns_deduplication_off()
    {
        var sm = WithTopic(window: 60_000);
        Publish(sm, 1_000, Msg("a", "k"));
        Apply(sm, QueueCommand.ConfigureTopic("t", 0, createIfMissing: false, dedupWindowMs: 5_000)).ShouldBe(QueueResult.Ok);
        sm.Stats("t", 0)!.MaxDeliveries.ShouldBe(sm.Limits.DefaultMaxDeliveries); // max_deliveries 0 keeps it
        Publish(sm, 6_000, Msg("a", "k")).Count.ShouldBe(1);
        Apply(sm, QueueCommand.ConfigureTopic("t", 0, createIfMissing: false, dedupWindowMs: 0)).ShouldBe(QueueResult.Ok);
        Publish(sm, 6_001, Msg("b", "j")).Count.ShouldBe(1);
        Publish(sm, 6_002, Msg("b", "j")).Count.ShouldBe(1);
        sm.Stats("t", 0)!.DedupIds.ShouldBe(0);
        Apply(sm, QueueCommand.ConfigureTopic("t", 0, dedupWindowMs: sm.Limits.MaxDedupWindowMs + 1)).Status.ShouldBe(QueueStatus.Invalid);
        Apply(sm, QueueCommand.ConfigureTopic("t", 0, dedupWindowMs: -1)).Status.ShouldBe(QueueStatus.Invalid);
    }

    [Fact]
    public void At_the_per_topic_bound_the_oldest_id_is_forgotten_early_and_counted()
    {
        var sm = WithTopic(QueueLimits.Default with { MaxDedupIdsPerTopic = 3 });
        Publish(sm, 1_000, Msg("1", "a"), Msg("2", "b"), Msg("3", "c"), Msg("4", "d")).Count.ShouldBe(4);
        var stats = sm.Stats("t", 1_000)!;
        (stats.DedupIds, stats.DedupForgottenEarlyTotal).ShouldBe((3, 1L));
        Publish(sm, 1_001, Msg("4", "d"), Msg("3", "c")).Count.ShouldBe(0);
        Publish(sm, 1_002, Msg("1", "a")).ShouldBe(QueueResult.Ok with { Count = 1, Offsets = [4UL] }); // "a" was forgotten
    }

    [Fact]
    public void At_the_node_wide_bound_a_topic_forgets_its_own_oldest_or_remembers_nothing()
    {
        var sm = _queues.Create(QueueLimits.Default with { MaxDedupIds = 2 });
        Apply(sm, QueueCommand.ConfigureTopic("t", 0)).Count.ShouldBe(1);
        Apply(sm, QueueCommand.ConfigureTopic("u", 0)).Count.ShouldBe(1);
        Publish(sm, 1_000, Msg("1", "a"), Msg("2", "b"));
        sm.DedupIds.ShouldBe(2);
        // u remembers none: its id is not remembered, and that is counted.
        Apply(sm, QueueCommand.PublishExtended("u", [Msg("x", "z")], 1_001)).Count.ShouldBe(1);
        Apply(sm, QueueCommand.PublishExtended("u", [Msg("x", "z")], 1_002)).Count.ShouldBe(1);
        sm.Stats("u", 0)!.DedupForgottenEarlyTotal.ShouldBe(2L);
        // t forgets its own oldest.
        Publish(sm, 1_003, Msg("3", "c")).Count.ShouldBe(1);
        sm.DedupIds.ShouldBe(2);
        Publish(sm, 1_004, Msg("2", "b"), Msg("3", "c")).Count.ShouldBe(0);
        // Deleting a topic frees its ids.
        Apply(sm, QueueCommand.DeleteTopic("t")).ShouldBe(QueueResult.Ok);
        sm.DedupIds.ShouldBe(0);
        Apply(sm, QueueCommand.PublishExtended("u", [Msg("x", "z")], 1_005)).Count.ShouldBe(1);
        Apply(sm, QueueCommand.PublishExtended("u", [Msg("x", "z")], 1_006)).Count.ShouldBe(0);
    }

    [Fact]
    public void A_publish_refused_by_a_bound_remembers_no_id()
    {
        var sm = WithTopic(QueueLimits.Default with { MaxTopicMessages = 1 });
        Publish(sm, 1_000, Msg("a", "k"), Msg("b", "j")).Status.ShouldBe(QueueStatus.LimitReached);
        sm.Stats("t", 0)!.DedupIds.ShouldBe(0);
        Publish(sm, 1_001, Msg("a", "k")).ShouldBe(QueueResult.Ok with { Count = 1, Offsets = [0UL] });
        // A batch of duplicates only stores nothing, so a full topic does not refuse it.
        Publish(sm, 1_002, Msg("a", "k")).ShouldBe(QueueResult.Ok with { Count = 0, Offsets = [0UL] });
    }

    [Fact]
    public void Bad_ids_and_delays_are_refused_whole()
    {
        var sm = WithTopic();
        // An empty id cannot even be encoded; a command holding one is refused when executed.
        Should.Throw<ArgumentException>(() => QueueCommand.PublishExtended("t", [Msg("a", "")]).Encode());
        sm.Execute(QueueCommand.PublishExtended("t", [Msg("a", "")], 1_000)).Status.ShouldBe(QueueStatus.Invalid);
        Publish(sm, 1_000, Msg("a", new string('x', sm.Limits.MaxMessageIdBytes + 1))).Status.ShouldBe(QueueStatus.Invalid);
        Publish(sm, 1_000, Msg("a", "k"), Msg("b") with { DelayMs = -1 }).Status.ShouldBe(QueueStatus.Invalid);
        Apply(sm, QueueCommand.PublishExtended("nope", [Msg("a", "k")], 1_000)).Status.ShouldBe(QueueStatus.NoSuchTopic);
        sm.Depth("t").ShouldBe(0);
        sm.DedupIds.ShouldBe(0);
    }

    [Fact]
    public void Ids_and_the_window_survive_a_snapshot()
    {
        var sm = WithTopic(window: 10_000);
        Publish(sm, 1_000, Msg("a", "k"), Msg("b", "j"));
        Publish(sm, 2_000, Msg("c", "i"));
        using var buffer = new MemoryStream();
        sm.WriteSnapshot(buffer);
        buffer.Position = 0;
        var restored = _queues.Create();
        restored.RestoreSnapshot(buffer);
        restored.DedupIds.ShouldBe(3);
        restored.Stats("t", 0)!.DedupWindowMs.ShouldBe(10_000);
        Publish(restored, 3_000, Msg("a", "k"), Msg("c", "i")).ShouldBe(QueueResult.Ok with { Count = 0, Offsets = [0UL, 2UL] });
        // Expiry after the restore follows the restored publish times.
        Publish(restored, 11_000, Msg("a", "k"), Msg("c", "i")).ShouldBe(QueueResult.Ok with { Count = 1, Offsets = [3UL, 2UL] });
    }

    [Fact]
    public void A_snapshot_holds_the_ids_at_capture_however_the_table_moves_before_it_is_written()
    {
        // The capture does not copy the ids (the loop would stall on a large table); it is written later. Between the
        // two the table forgets every id it held (by the window, then by the per-topic bound) and remembers new ones,
        // over several of its chunks.
        var limits = QueueLimits.Default with { MaxDedupIdsPerTopic = 3_000 };
        QueueMessage[] Ids(string prefix, int from, int count) => [.. Enumerable.Range(from, count).Select(i => Msg($"{prefix}{i}", $"{prefix}-{i}"))];
        void Before(QueueStateMachine m)
        {
            foreach (var batch in Ids("old", 0, 1_000).Chunk(500)) Publish(m, 1_000, batch).Count.ShouldBe(500);
            foreach (var batch in Ids("kept", 0, 1_500).Chunk(500)) Publish(m, 2_000, batch).Count.ShouldBe(500);
            Publish(m, 11_000, Msg("last", "last")).Count.ShouldBe(1); // the window (10 s) forgets the 1,000 "old" ids
            // Ids whose snapshot form is longer: two-byte UTF-8, and the longest id (128 bytes: a two-byte length).
            Publish(m, 11_000, Msg("é", "clé-é"), Msg("long", new string('x', 128))).Count.ShouldBe(2);
            m.Stats("t", 0)!.DedupIds.ShouldBe(1_503);
        }
        var sm = WithTopic(limits, window: 10_000);
        Before(sm);
        using var snapshot = sm.CaptureSnapshot();

        foreach (var batch in Ids("new", 0, 3_001).Chunk(1_000)) Publish(sm, 30_000, batch);
        (sm.Stats("t", 0)!.DedupIds, sm.Stats("t", 0)!.DedupForgottenEarlyTotal).ShouldBe((3_000, 1L));
        using var written = new MemoryStream();
        snapshot.WriteTo(written);

        // The same bytes as a node that only ever applied the commands before the capture.
        var twin = WithTopic(limits, window: 10_000);
        Before(twin);
        using var expected = new MemoryStream();
        twin.WriteSnapshot(expected);
        written.ToArray().ShouldBe(expected.ToArray());

        written.Position = 0;
        var restored = _queues.Create(limits);
        restored.RestoreSnapshot(written);
        (restored.DedupIds, restored.Stats("t", 0)!.DedupForgottenEarlyTotal).ShouldBe((1_503, 0L));
        Publish(restored, 11_001, Msg("x", "kept-0"), Msg("x", "kept-1499"), Msg("x", "last"), Msg("x", "clé-é"), Msg("x", new string('x', 128))).Count.ShouldBe(0);
        Publish(restored, 11_002, Msg("x", "old-999"), Msg("x", "new-0")).Count.ShouldBe(2);
    }

    [Fact]
    public void A_topic_state_written_before_deduplication_restores_with_the_default_window()
    {
        var sm = WithTopic(window: 10_000);
        using var buffer = new MemoryStream();
        sm.WriteSnapshot(buffer);
        var bytes = buffer.ToArray();
        // One empty topic "t": magic, version, clock, count, name, logical head, head, tail, bytes, no extents, then the state's
        // length and the state, whose last bytes are the dedup section (window, forgotten total, no ids: 20), the
        // delayed section (no messages: 4), the retention section (42) and the groups' creations (one group: 12).
        const int lengthAt = 4 + 1 + 8 + 4 + 2 + 32 + 4;
        var stateLength = BitConverter.ToInt32(bytes, lengthAt);
        (lengthAt + 4 + stateLength).ShouldBe(bytes.Length);
        BitConverter.ToInt64(bytes, bytes.Length - 12 - 42 - 24).ShouldBe(10_000);
        byte[] Without(int tail)
        {
            var old = bytes[..^tail];
            BitConverter.GetBytes(stateLength - tail).CopyTo(old, lengthAt);
            return old;
        }
        // Written before delayed delivery: the window is kept.
        var withDedup = _queues.Create();
        withDedup.RestoreSnapshot(new MemoryStream(Without(12 + 42 + 4)));
        withDedup.Stats("t", 0)!.DedupWindowMs.ShouldBe(10_000);
        // Written before deduplication: the default window.
        var restored = _queues.Create();
        restored.RestoreSnapshot(new MemoryStream(Without(12 + 42 + 24)));
        restored.Stats("t", 0)!.DedupWindowMs.ShouldBe(restored.Limits.DefaultDedupWindowMs);
        Publish(restored, 1_000, Msg("a", "k")).Count.ShouldBe(1);
        Publish(restored, 1_001, Msg("a", "k")).Count.ShouldBe(0);
    }

    [Fact]
    public void The_extended_publish_and_the_window_setting_round_trip_and_old_configure_bytes_still_decode()
    {
        var command = QueueCommand.PublishExtended("t", [Msg("a", "k") with { Headers = [new MessageHeader("h", "v")] }, Msg("b"), Msg("c", "é") with { DelayMs = 5 }], 42);
        var bytes = command.Encode();
        QueueCommand.TryDecode(bytes, out var decoded).ShouldBeTrue();
        decoded.ShouldBe(command);
        QueueCommand.TimestampPosition(bytes).ShouldBe(3 + 1);
        for (int cut = 0; cut < bytes.Length; cut++) QueueCommand.TryDecode(bytes.AsSpan(0, cut), out _).ShouldBeFalse();
        QueueCommand.TryDecode([.. bytes, 0], out _).ShouldBeFalse();

        var configure = QueueCommand.ConfigureTopic("t", 3, dedupWindowMs: 7_000);
        QueueCommand.TryDecode(configure.Encode(), out var c).ShouldBeTrue();
        c.ShouldBe(configure);
        // The encoding written before deduplication: no window, which keeps the current one.
        var old = QueueCommand.ConfigureTopic("t", 3).Encode();
        old.Length.ShouldBe(3 + 1 + 8 + 5);
        QueueCommand.TryDecode(old, out var o).ShouldBeTrue();
        o.DedupWindowMs.ShouldBeNull();

        var result = QueueResult.Ok with { Count = 1, Offsets = [7UL, 3UL] };
        QueueResultCodec.Instance.Decode(QueueResultCodec.Instance.Encode(result)).ShouldBe(result);
    }
}

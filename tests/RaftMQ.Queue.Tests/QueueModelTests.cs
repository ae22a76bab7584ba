using System.Text;
using FsCheck;
using FsCheck.Fluent;

namespace RaftMQ.Queue.Tests;

/// <summary>
/// The store against a model: a list of topics and a Queue&lt;string&gt; each, with the same bounds. Any sequence of
/// commands, with snapshots captured, left open while commands go on, written and restored at random points, must
/// give exactly the model's results.
/// </summary>
public sealed class QueueModelTests : IDisposable
{
    private const int O = QueueLimits.MessageOverheadBytes;

    private readonly TestQueues _queues = new();

    public void Dispose() => _queues.Dispose();

    /// <summary>
    /// The specification: the queue before it had a store, plus the record overhead in the byte bounds and the
    /// queue-wide bounds as replicated settings.
    /// </summary>
    private sealed class Model(QueueLimits limits)
    {
        public List<(string Name, Queue<string> Messages)> Topics { get; private init; } = [];

        private QueueBounds _bounds = limits.InitialBounds;

        public QueueBounds Bounds => _bounds;

        public long Bytes => Topics.Sum(t => TopicBytes(t.Messages));

        public Model Clone() => new(limits) { Topics = [.. Topics.Select(t => (t.Name, new Queue<string>(t.Messages)))], _bounds = _bounds };

        public QueueResult Execute(QueueCommand c)
        {
            if (c.Op == QueueOp.SetLimits)
            {
                var b = c.Bounds!;
                long?[] values = [b.MaxBytes, b.MaxTopicBytes, b.MaxMessages, b.MaxTopicMessages];
                if (values.All(v => v is null) || values.Any(v => v < 1)) return new(QueueStatus.Invalid);
                _bounds = new QueueBounds(b.MaxBytes ?? _bounds.MaxBytes, b.MaxMessages ?? _bounds.MaxMessages,
                    b.MaxTopicBytes ?? _bounds.MaxTopicBytes, b.MaxTopicMessages ?? _bounds.MaxTopicMessages);
                return QueueResult.Ok;
            }
            if (c.Topic.Length == 0 || Encoding.UTF8.GetByteCount(c.Topic) > limits.MaxTopicNameBytes) return new(QueueStatus.Invalid);
            var q = Topics.FirstOrDefault(t => t.Name == c.Topic).Messages;
            if (c.Op == QueueOp.CreateTopic)
            {
                if (q is not null) return new(QueueStatus.TopicExists);
                if (Topics.Count >= limits.MaxTopics) return new(QueueStatus.LimitReached);
                Topics.Add((c.Topic, new Queue<string>()));
                return QueueResult.Ok;
            }
            if (q is null) return new(QueueStatus.NoSuchTopic);
            switch (c.Op)
            {
                case QueueOp.Publish:
                    return Publish(q, [c.Message!]);
                case QueueOp.PublishBatch:
                    if (c.Messages!.Count == 0 || c.Messages.Count > limits.MaxBatchMessages) return new(QueueStatus.Invalid);
                    var r = Publish(q, c.Messages);
                    return r.Success ? r with { Count = c.Messages.Count } : r;
                case QueueOp.Pop:
                    return q.TryDequeue(out var m) ? new(QueueStatus.Ok, m) : new(QueueStatus.Empty);
                default:
                    if (c.Max < 1) return new(QueueStatus.Invalid);
                    var popped = new List<string>();
                    var size = 0;
                    while (popped.Count < Math.Min(c.Max, limits.MaxBatchMessages) && q.TryPeek(out var next))
                    {
                        var n = Encoding.UTF8.GetByteCount(next);
                        if (popped.Count > 0 && size + n > limits.MaxPopBatchBytes) break;
                        popped.Add(q.Dequeue());
                        size += n;
                    }
                    return QueueResult.Ok with { Messages = popped };
            }
        }

        private QueueResult Publish(Queue<string> q, IReadOnlyList<string> messages)
        {
            if (messages.Any(m => Encoding.UTF8.GetByteCount(m) > limits.MaxMessageBytes)) return new(QueueStatus.Invalid);
            var bytes = TopicBytes(messages);
            if (Bytes + bytes > _bounds.MaxBytes || TopicBytes(q) + bytes > _bounds.MaxTopicBytes
                || Topics.Sum(t => t.Messages.Count) + messages.Count > _bounds.MaxMessages || q.Count + messages.Count > _bounds.MaxTopicMessages)
                return new(QueueStatus.LimitReached);
            foreach (var m in messages) q.Enqueue(m);
            return QueueResult.Ok;
        }

        private static long TopicBytes(IEnumerable<string> messages) => messages.Sum(m => (long)O + Encoding.UTF8.GetByteCount(m));
    }

    [Fact]
    public void Any_commands_with_snapshots_at_random_points_give_the_models_results()
    {
        var limits = new QueueLimits
        {
            MaxTopics = 3, MaxMessageBytes = 40, MaxBatchMessages = 6, MaxPopBatchBytes = 30,
            MaxTotalMessageBytes = 40 * O, MaxTopicMessageBytes = 25 * O, MaxTotalMessages = 30, MaxTopicMessages = 20,
        };
        // Small segments and buffers, so that commands roll segments, compaction deletes them and reads refill.
        var store = new QueueStoreOptions { SegmentBytes = 200, WriteBufferBytes = 64, ReadBufferBytes = 48 };
        Prop.ForAll(ArbMap.Default.ArbFor<int[]>(), steps =>
        {
            var machines = new List<QueueStateMachine> { _queues.Create(limits, store) };
            var sm = machines[0];
            var model = new Model(limits);
            RaftMQ.StateMachine.IStateMachineSnapshot? snapshot = null;
            Model? captured = null;
            var serial = 0;
            try
            {
                foreach (var raw in steps)
                {
                    var step = Spread(raw);
                    var op = step & 0xFF;
                    if (CommandFor(step, ref serial) is { } c)
                    {
                        var expected = model.Execute(c);
                        var actual = (QueueResult)sm.Apply(1, c.Encode())!;
                        if (!expected.Equals(actual)) throw new Exception($"{c.Op} {c.Topic}: expected {Show(expected)}, got {Show(actual)}");
                    }
                    else if (op % 9 == 6 || snapshot is null)
                    {
                        snapshot?.Dispose();
                        snapshot = sm.CaptureSnapshot();
                        captured = model.Clone();
                    }
                    else
                    {
                        // Written after the commands since the capture; restored into this machine or a new one.
                        using var buffer = new MemoryStream();
                        snapshot.WriteTo(buffer);
                        snapshot.Dispose();
                        snapshot = null;
                        if (op % 9 == 7)
                        {
                            sm = _queues.Create(limits, store);
                            machines.Add(sm);
                        }
                        buffer.Position = 0;
                        sm.RestoreSnapshot(buffer);
                        model = captured!;
                    }
                    Check(sm, model);
                }
                return true;
            }
            finally
            {
                snapshot?.Dispose();
                foreach (var m in machines) m.Dispose();
            }
        }).Check(Config.QuickThrowOnFailure.WithMaxTest(1_000));
    }

    /// <summary>
    /// Snapshots go through the snapshot store's files, so restores link them (docs/queue-store.md), and a node
    /// crashes and restarts at random points: its segment files are left behind (and some junk with them), a new
    /// store opens the same directory, restores the newest snapshot file and re-applies the commands after it (the
    /// log), which must give the same results as the first time and the model's state.
    /// </summary>
    [Fact]
    public void Crashes_and_restarts_from_snapshot_files_and_the_log_give_the_models_results()
    {
        var limits = new QueueLimits
        {
            MaxTopics = 3, MaxMessageBytes = 40, MaxBatchMessages = 6, MaxPopBatchBytes = 30,
            MaxTotalMessageBytes = 40 * O, MaxTopicMessageBytes = 25 * O, MaxTotalMessages = 30, MaxTopicMessages = 20,
        };
        var options = new QueueStoreOptions { SegmentBytes = 200, WriteBufferBytes = 64, ReadBufferBytes = 48 };
        var run = 0;
        Prop.ForAll(ArbMap.Default.ArbFor<int[]>(), steps =>
        {
            var root = Path.Combine(_queues.Root, $"crash-{run++}");
            var directory = Path.Combine(root, "queue");
            var snapshots = RaftMQ.Storage.SnapshotStore.Open(Path.Combine(root, "snapshots"));
            var sm = new QueueStateMachine(directory, limits, options);
            var model = new Model(limits);
            var log = new List<(QueueCommand, QueueResult)>(); // applied since the newest snapshot file: the Raft log
            var index = 0UL;
            var serial = 0;
            try
            {
                // Three topics to start with, so that most publishes land; steps may still try a fourth (refused).
                foreach (var name in new[] { "t0", "t1", "t2" })
                {
                    var create = QueueCommand.CreateTopic(name);
                    model.Execute(create);
                    log.Add((create, (QueueResult)sm.Apply(1, create.Encode())!));
                }
                foreach (var raw in steps)
                {
                    var step = Spread(raw);
                    var op = step & 0xFF;
                    // A crash one step in three of those that are not commands; a snapshot the others.
                    var crash = op % 9 is 7 or 8 && ((uint)step >> 24) % 3 == 0;
                    if (CommandFor(step, ref serial) is { } c)
                    {
                        var expected = model.Execute(c);
                        var actual = (QueueResult)sm.Apply(1, c.Encode())!;
                        if (!expected.Equals(actual)) throw new Exception($"{c.Op} {c.Topic}: expected {Show(expected)}, got {Show(actual)}");
                        log.Add((c, actual));
                    }
                    else if (!crash)
                    {
                        using (var captured = sm.CaptureSnapshot())
                        using (var writer = snapshots.Create(new RaftMQ.Raft.SnapshotMetadata(++index, 1)))
                        {
                            captured.WriteTo(writer);
                            writer.Commit();
                        }
                        log.Clear();
                    }
                    else
                    {
                        // kill -9: nothing is closed or deleted (the abandoned store is never disposed: its files
                        // stay as they are), and a torn file is left beside them.
                        File.WriteAllBytes(Path.Combine(directory, "g0-t9-00000000000000000000.seg"), [1, 2, 3]);
                        sm = new QueueStateMachine(directory, limits, options);
                        if (Directory.GetFiles(directory, "*.seg").Length != 0) throw new Exception("files of the crashed run were kept");
                        using (var snapshot = snapshots.OpenLatest())
                        {
                            if (snapshot is not null) sm.RestoreSnapshot(snapshot);
                        }
                        foreach (var (logged, result) in log)
                        {
                            var again = (QueueResult)sm.Apply(1, logged.Encode())!;
                            if (!again.Equals(result)) throw new Exception($"replayed {logged.Op} {logged.Topic}: first {Show(result)}, now {Show(again)}");
                        }
                    }
                    Check(sm, model);
                }
                return true;
            }
            finally
            {
                sm.Dispose();
            }
        }).Check(Config.QuickThrowOnFailure.WithMaxTest(300));
    }

    private static void Check(QueueStateMachine sm, Model model)
    {
        if (!sm.Topics().SequenceEqual(model.Topics.Select(x => x.Name)) || sm.TotalMessageBytes != model.Bytes
            || model.Topics.Any(x => sm.Depth(x.Name) != x.Messages.Count) || sm.Bounds != model.Bounds)
            throw new Exception("the queue's state differs from the model's");
    }

    /// <summary>
    /// FsCheck's integers are small (within the test size), which would leave the topic and count bits of a step
    /// almost always 0 or all ones; a bijective mix spreads them over every field.
    /// </summary>
    private static int Spread(int raw)
    {
        var z = (uint)raw * 0x9E3779B9u;
        z ^= z >> 16;
        z *= 0x85EBCA6Bu;
        z ^= z >> 13;
        return (int)z;
    }

    /// <summary>The command a step stands for, or null for a snapshot or restore step.</summary>
    private static QueueCommand? CommandFor(int step, ref int serial)
    {
        var (op, t, count) = (step & 0xFF, (step >> 8) & 0xFF, (step >> 16) & 0xFF);
        var topic = "t" + t % 4; // one more than MaxTopics
        var first = serial;
        serial += op % 9 == 4 ? count % 8 : 1;
        string Message(int i) => new('ü', (first + i) % 23);
        return (op % 9) switch
        {
            0 => QueueCommand.CreateTopic(topic),
            1 or 2 => QueueCommand.Publish(topic, Message(0)),
            3 => QueueCommand.Pop(topic),
            4 => QueueCommand.PublishBatch(topic, [.. Enumerable.Range(0, count % 8).Select(Message)]),
            // Now and then the queue-wide bounds move, up or down past what the queue holds (all four left out: Invalid).
            5 when count >= 0xC0 => QueueCommand.SetLimits(new QueueBoundsChange(
                MaxBytes: (count & 1) == 0 ? (20 + t % 40) * O : null, MaxMessages: (count & 2) == 0 ? 10 + t % 30 : null,
                MaxTopicBytes: (count & 4) == 0 ? (10 + t % 30) * O : null, MaxTopicMessages: (count & 8) == 0 ? 5 + t % 25 : null)),
            5 => QueueCommand.PopBatch(topic, count % 8),
            _ => null,
        };
    }

    private static string Show(QueueResult r) =>
        $"{r.Status} message={r.Message} count={r.Count} messages=[{string.Join(",", r.Messages ?? [])}]";
}

using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using RaftMQ.Client;
using Spectre.Console;

namespace RaftMQ.Cli;

/// <summary>
/// What to measure and for how long. <see cref="Count"/> and <see cref="Prefill"/> are in messages; with
/// <see cref="Batch"/> above 1 each operation is one request carrying up to that many messages (the /v1 batch API),
/// with 1 it is one RRMQ request per message. For <c>receive</c> an operation is a receive of up to
/// <see cref="Batch"/> messages (its <c>max</c>) leased for <see cref="LeaseMs"/> to consumer group
/// <see cref="Group"/>; the receipts are acked by the client's next receive, in the same request
/// (<see cref="SeparateAck"/>: by one ack request of their own right after the receive).
/// </summary>
public sealed record BenchSettings(
    string Operation, int Clients, int Size, long? Count, TimeSpan? Duration, string Topic, long Prefill, int Batch = 1,
    int LeaseMs = 30_000, string Group = "default", bool SeparateAck = false)
{
    /// <summary>
    /// Whether each message records the latency of the operation that carried it (receive: receive sent → ack
    /// answered), rather than each request once (publish, pop).
    /// </summary>
    public bool LatencyPerMessage => Operation == "receive";
}

/// <summary>The outcome of a benchmark run: <see cref="Ops"/> requests that carried <see cref="Messages"/> messages.</summary>
public sealed record BenchResult(
    BenchSettings Settings, long Ops, long Empty, IReadOnlyDictionary<string, long> Errors, TimeSpan Elapsed, LatencyHistogram Latency, long Messages)
{
    /// <summary>Requests per second.</summary>
    public double OpsPerSecond => Elapsed > TimeSpan.Zero ? Ops / Elapsed.TotalSeconds : 0;

    public double MessagesPerSecond => Elapsed > TimeSpan.Zero ? Messages / Elapsed.TotalSeconds : 0;

    public double MegabytesPerSecond => MessagesPerSecond * Settings.Size / 1e6;

    public long ErrorCount => Errors.Values.Sum();

    /// <summary>
    /// Latencies of the requests an operation is made of, by name, when it is made of several (receive: "receive" and
    /// "ack", each per request; with the acks on the receives, "ack" is each client's last, plain ack), so that a run
    /// shows where an operation's time goes; empty otherwise.
    /// </summary>
    public IReadOnlyDictionary<string, LatencyHistogram> Parts { get; init; } = new Dictionary<string, LatencyHistogram>();
}

/// <summary>
/// The load generator: N client tasks share one <see cref="RaftMQClient"/> (one connection pool) and run one
/// operation after another; each latency is a Stopwatch interval recorded in the task's own histogram.
/// </summary>
public static class Bench
{
    /// <summary>Most messages per batch request: the server's bound (QueueLimits.MaxBatchMessages).</summary>
    public const int MaxBatch = 1_000;

    public static async Task<BenchResult> RunAsync(RaftMQClient client, BenchSettings s, bool showProgress, CancellationToken ct)
    {
        await client.CreateTopicAsync(s.Topic, ct).ConfigureAwait(false);
        var payloads = Enumerable.Repeat(Payload(s.Size), s.Batch).ToArray();
        async Task<int> PublishAsync(int n, CancellationToken t)
        {
            if (s.Batch == 1) await client.PublishAsync(s.Topic, payloads[0], t).ConfigureAwait(false);
            else await client.PublishBatchAsync(s.Topic, new ArraySegment<string>(payloads, 0, n), t).ConfigureAwait(false);
            return n;
        }

        if (s.Operation == "receive") return await ReceiveAndAckAsync(client, s, showProgress, ct).ConfigureAwait(false);
        if (s.Operation == "pop")
        {
            var fill = s.Count ?? s.Prefill;
            await RunPhaseAsync("filling", s with { Count = fill, Duration = null }, PublishAsync, showProgress, ct).ConfigureAwait(false);
            return await RunPhaseAsync("pop", s, async (n, t) => s.Batch == 1
                ? await client.PopAsync(s.Topic, t).ConfigureAwait(false) is null ? 0 : 1
                : (await client.PopBatchAsync(s.Topic, n, t).ConfigureAwait(false)).Count,
                showProgress, ct).ConfigureAwait(false);
        }
        return await RunPhaseAsync("publish", s, PublishAsync, showProgress, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// At-least-once consumption: fills the topic (not measured, in requests as large as a 1 MiB body allows), then
    /// every client receives up to <see cref="BenchSettings.Batch"/> messages with a lease, again and again, acking
    /// each batch's receipts with its next receive (one request, one log entry: receive with <c>"ack"</c>), and the last
    /// batch with a plain ack; with <see cref="BenchSettings.SeparateAck"/>, with one ack request of their own right
    /// after each receive. A message counts once its ack is answered with it applied; its latency runs from sending the
    /// receive that delivered it to that answer. A receipt reported stale (its lease ran out and the message went to
    /// another consumer) counts as an error, and its message will be received again.
    /// </summary>
    private static async Task<BenchResult> ReceiveAndAckAsync(RaftMQClient client, BenchSettings s, bool showProgress, CancellationToken ct)
    {
        if (s.Group != "default") await client.CreateGroupAsync(s.Topic, s.Group, GroupStartPosition.Earliest, ct).ConfigureAwait(false);
        var fillBatch = FillBatch(s.Size);
        var payload = Enumerable.Repeat(Payload(s.Size), fillBatch).ToArray();
        await RunPhaseAsync("filling", s with { Operation = "fill", Count = s.Count ?? s.Prefill, Duration = null, Batch = fillBatch },
            async (n, t) =>
            {
                await client.PublishBatchAsync(s.Topic, new ArraySegment<string>(payload, 0, n), t).ConfigureAwait(false);
                return n;
            }, showProgress, ct).ConfigureAwait(false);

        long stale = 0;
        var lease = TimeSpan.FromMilliseconds(s.LeaseMs);
        LatencyHistogram receives = new(), acks = new();
        static void Record(LatencyHistogram h, long since)
        {
            var latency = Stopwatch.GetElapsedTime(since);
            lock (h) h.Record(latency);
        }
        int Applied(SettleResult settled)
        {
            if (settled.Stale.Count > 0) Interlocked.Add(ref stale, settled.Stale.Count);
            return settled.Applied;
        }
        static string[] Receipts(IReadOnlyList<Delivery> deliveries)
        {
            var receipts = new string[deliveries.Count];
            for (int i = 0; i < receipts.Length; i++) receipts[i] = deliveries[i].Receipt;
            return receipts;
        }

        ClientSteps SeparateAck() => new(async (n, t) =>
        {
            var t0 = Stopwatch.GetTimestamp();
            var deliveries = await client.ReceiveAsync(s.Topic, s.Group, n, lease, deadLetters: false, t).ConfigureAwait(false);
            Record(receives, t0);
            if (deliveries.Count == 0) return new Step(0, 0, t0, Exhausted: true);
            var t1 = Stopwatch.GetTimestamp();
            var settled = await client.AckAsync(s.Topic, Receipts(deliveries), s.Group, deadLetters: false, t).ConfigureAwait(false);
            Record(acks, t1);
            var applied = Applied(settled);
            return new Step(applied, applied, t0);
        });

        // Each client holds its last batch (its receipts, and when its receive was sent) until its next receive acks it.
        ClientSteps AckOnNextReceive()
        {
            string[] held = [];
            long heldSince = 0;
            return new ClientSteps(
                async (n, t) =>
                {
                    var t0 = Stopwatch.GetTimestamp();
                    var result = await client.ReceiveAndAckAsync(s.Topic, held, s.Group, n, lease, cancellationToken: t).ConfigureAwait(false);
                    Record(receives, t0);
                    var applied = Applied(result.Acks);
                    var done = new Step(applied, result.Deliveries.Count - result.Acks.Stale.Count, heldSince, result.Deliveries.Count == 0);
                    (held, heldSince) = (Receipts(result.Deliveries), t0);
                    return done;
                },
                async t =>
                {
                    if (held.Length == 0) return Step.Nothing;
                    var t0 = Stopwatch.GetTimestamp();
                    var settled = await client.AckAsync(s.Topic, held, s.Group, deadLetters: false, t).ConfigureAwait(false);
                    Record(acks, t0);
                    var applied = Applied(settled);
                    var done = new Step(applied, applied, heldSince);
                    held = [];
                    return done;
                });
        }

        var result = await RunPhaseAsync("receive+ack", s, s.SeparateAck ? SeparateAck : AckOnNextReceive, showProgress, ct).ConfigureAwait(false);
        var errors = new Dictionary<string, long>(result.Errors);
        if (stale > 0) errors["stale-receipt"] = stale;
        // Every request counts: each receive (an empty one too) and each ack request, which a step of --separate-ack
        // makes two of.
        return result with
        {
            Ops = receives.Count + acks.Count, Errors = errors,
            Parts = new Dictionary<string, LatencyHistogram> { ["receive"] = receives, ["ack"] = acks },
        };
    }

    /// <summary>Messages per fill request: as many as fit a 1 MiB body (each costs its bytes plus quotes and a comma).</summary>
    internal static int FillBatch(int size) =>
        (int)Math.Clamp((RaftMQClient.MaxRequestBytes - 1024) / (size + 3L), 1, MaxBatch);

    /// <summary>
    /// What one operation did: <paramref name="Done"/> messages finished (counted, each with the latency from
    /// <paramref name="Since"/>, a Stopwatch timestamp), <paramref name="Taken"/> of the messages it claimed kept (the
    /// rest are handed back for any client to do; fewer than none when earlier ones must be done again), whether it
    /// found nothing left (<paramref name="Exhausted"/>: the client stops), and how many requests it sent and had
    /// answered (<paramref name="Requests"/>; an answer that carried nothing, an empty pop, is a request all the same).
    /// </summary>
    private readonly record struct Step(int Done, int Taken, long Since, bool Exhausted = false, int Requests = 1)
    {
        /// <summary>Nothing to do, and no request sent.</summary>
        public static Step Nothing => new(0, 0, 0, Exhausted: true, Requests: 0);
    }

    /// <summary>One client's operation (given how many messages to claim), and what it does once it stops (finishing what it holds).</summary>
    private sealed record ClientSteps(Func<int, CancellationToken, Task<Step>> Op, Func<CancellationToken, Task<Step>>? Finish = null);

    /// <summary>
    /// Runs <paramref name="op"/> from every client until the count (of messages) or the duration is reached. The
    /// op is given how many messages to carry and returns how many it did; 0 means nothing is left to pop.
    /// </summary>
    private static Task<BenchResult> RunPhaseAsync(
        string label, BenchSettings s, Func<int, CancellationToken, Task<int>> op, bool showProgress, CancellationToken ct) =>
        RunPhaseAsync(label, s, () => new ClientSteps(async (n, t) =>
        {
            var t0 = Stopwatch.GetTimestamp();
            var carried = await op(n, t).ConfigureAwait(false);
            return new Step(carried, carried, t0, carried == 0);
        }), showProgress, ct);

    /// <summary>
    /// Runs each client's steps (<paramref name="newClient"/> makes them, once per client) until the count (of
    /// messages) or the duration is reached, or a step finds nothing left; then the client's finish, if any.
    /// </summary>
    private static async Task<BenchResult> RunPhaseAsync(
        string label, BenchSettings s, Func<ClientSteps> newClient, bool showProgress, CancellationToken ct)
    {
        long issued = 0, done = 0, messages = 0, empty = 0;
        var errors = new System.Collections.Concurrent.ConcurrentDictionary<string, long>();
        var histograms = Enumerable.Range(0, s.Clients).Select(_ => new LatencyHistogram()).ToArray();
        var start = Stopwatch.GetTimestamp();

        async Task ClientAsync(int c)
        {
            var h = histograms[c];
            var steps = newClient();
            // Every request answered counts, and (per request) its latency: an empty pop too, which each pop client
            // ends on. Per message (receive), only the messages done have a latency.
            void Count(Step step)
            {
                if (step.Requests == 0) return;
                var latency = Stopwatch.GetElapsedTime(step.Since);
                if (!s.LatencyPerMessage) h.Record(latency);
                else if (step.Done > 0) h.Record(latency, step.Done);
                Interlocked.Add(ref done, step.Requests);
                Interlocked.Add(ref messages, step.Done);
            }
            while (!ct.IsCancellationRequested)
            {
                var n = s.Batch;
                if (s.Count is { } count)
                {
                    // Claim up to a batch of the messages still to do.
                    var before = Interlocked.Add(ref issued, s.Batch) - s.Batch;
                    if (before >= count) break;
                    n = (int)Math.Min(s.Batch, count - before);
                }
                if (s.Duration is { } d && Stopwatch.GetElapsedTime(start) >= d) break;
                try
                {
                    var step = await steps.Op(n, ct).ConfigureAwait(false);
                    Count(step);
                    if (step.Exhausted)
                    {
                        // Nothing left to pop: this client is done.
                        Interlocked.Increment(ref empty);
                        break;
                    }
                    // A request that kept fewer than it claimed (a receive short of messages, a stale ack) hands the
                    // rest back, so that --count messages are done in the end.
                    if (s.Count is not null && step.Taken < n) Interlocked.Add(ref issued, step.Taken - n);
                }
                catch (RaftMQException e)
                {
                    errors.AddOrUpdate(ErrorKind(e), 1, (_, k) => k + 1);
                    // A cluster that stays down would otherwise turn this loop into a busy spin of failures.
                    if (e is ClusterUnavailableException) await Task.Delay(50, ct).ConfigureAwait(false);
                }
            }
            if (steps.Finish is { } finish)
            {
                try
                {
                    Count(await finish(ct).ConfigureAwait(false));
                }
                catch (RaftMQException e)
                {
                    errors.AddOrUpdate(ErrorKind(e), 1, (_, k) => k + 1);
                }
            }
        }

        var clients = Task.WhenAll(Enumerable.Range(0, s.Clients).Select(c => Task.Run(() => ClientAsync(c), ct)));
        if (showProgress)
        {
            await AnsiConsole.Progress()
                .AutoClear(true)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new SpinnerColumn())
                .StartAsync(async ctx =>
                {
                    var total = s.Count is { } n ? n : s.Duration!.Value.TotalSeconds;
                    var task = ctx.AddTask($"{label} ({s.Clients} clients)", maxValue: Math.Max(total, 1));
                    while (!clients.IsCompleted)
                    {
                        await Task.WhenAny(clients, Task.Delay(100, ct)).ConfigureAwait(false);
                        task.Value = s.Count is not null ? Interlocked.Read(ref messages) : Math.Min(Stopwatch.GetElapsedTime(start).TotalSeconds, total);
                        task.Description = $"{label} ({s.Clients} clients, {Interlocked.Read(ref messages):N0} messages)";
                    }
                    task.Value = task.MaxValue;
                }).ConfigureAwait(false);
        }
        await clients.ConfigureAwait(false);
        var elapsed = Stopwatch.GetElapsedTime(start);
        var all = new LatencyHistogram();
        foreach (var h in histograms) all.Add(h);
        return new BenchResult(s, done, empty, new Dictionary<string, long>(errors), elapsed, all, messages);
    }

    private static string ErrorKind(RaftMQException e) => e switch
    {
        OutcomeUnknownException => "outcome-unknown",
        ClusterUnavailableException u => u.Reason,
        TopicNotFoundException => "no-such-topic",
        RequestRejectedException r => ((int)r.StatusCode).ToString(CultureInfo.InvariantCulture),
        _ => e.GetType().Name,
    };

    private static string Payload(int size)
    {
        var chars = new char[size];
        for (int i = 0; i < size; i++) chars[i] = (char)('a' + i % 26);
        return new string(chars);
    }

    public static Table Table(BenchResult r)
    {
        var t = new Table().Border(TableBorder.Rounded);
        // Latencies are per request (a whole batch), except for receive: per message, receive sent → ack answered.
        foreach (var c in new[] { "operation", "clients", "batch", "size (B)", "requests", "messages", "errors", "seconds", "req/s", "msg/s", "MB/s", "p50 ms", "p90 ms", "p99 ms", "max ms" })
            t.AddColumn(new TableColumn(c).RightAligned());
        var h = r.Latency;
        t.AddRow(
            r.Settings.Operation, N(r.Settings.Clients), N(r.Settings.Batch), N(r.Settings.Size), N(r.Ops), N(r.Messages), N(r.ErrorCount),
            r.Elapsed.TotalSeconds.ToString("0.00", CultureInfo.InvariantCulture),
            r.OpsPerSecond.ToString("N0", CultureInfo.InvariantCulture), r.MessagesPerSecond.ToString("N0", CultureInfo.InvariantCulture),
            r.MegabytesPerSecond.ToString("0.00", CultureInfo.InvariantCulture),
            Ms(h.Percentile(0.50)), Ms(h.Percentile(0.90)), Ms(h.Percentile(0.99)), Ms(h.MaxMicros));
        return t;
    }

    public static string Json(BenchResult r)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            var h = r.Latency;
            w.WriteStartObject();
            w.WriteString("operation", r.Settings.Operation);
            w.WriteString("topic", r.Settings.Topic);
            w.WriteNumber("clients", r.Settings.Clients);
            w.WriteNumber("size_bytes", r.Settings.Size);
            w.WriteNumber("ops", r.Ops);
            w.WriteNumber("errors", r.ErrorCount);
            w.WriteStartObject("errors_by_kind");
            foreach (var (k, v) in r.Errors) w.WriteNumber(k, v);
            w.WriteEndObject();
            w.WriteNumber("seconds", Math.Round(r.Elapsed.TotalSeconds, 3));
            w.WriteNumber("ops_per_second", Math.Round(r.OpsPerSecond, 1));
            w.WriteNumber("mb_per_second", Math.Round(r.MegabytesPerSecond, 3));
            // Added with batching; "ops" and "ops_per_second" count requests, as before (one message each at batch 1).
            w.WriteNumber("batch", r.Settings.Batch);
            w.WriteNumber("requests", r.Ops);
            w.WriteNumber("requests_per_second", Math.Round(r.OpsPerSecond, 1));
            w.WriteNumber("messages", r.Messages);
            w.WriteNumber("messages_per_second", Math.Round(r.MessagesPerSecond, 1));
            if (r.Settings.Operation == "receive")
            {
                w.WriteString("group", r.Settings.Group);
                w.WriteNumber("max", r.Settings.Batch);
                w.WriteNumber("lease_ms", r.Settings.LeaseMs);
                // "next-receive": each batch acked by the client's next receive; "separate": by an ack request of its own.
                w.WriteString("ack", r.Settings.SeparateAck ? "separate" : "next-receive");
            }
            // What one latency sample is: a request, or (receive) a message from its receive sent to its ack answered.
            w.WriteString("latency_per", r.Settings.LatencyPerMessage ? "message" : "request");
            w.WriteStartObject("latency_ms");
            w.WriteNumber("mean", Math.Round(h.Count == 0 ? 0 : h.SumMicros / h.Count / 1000, 3));
            w.WriteNumber("p50", Math.Round(h.Percentile(0.50) / 1000, 3));
            w.WriteNumber("p90", Math.Round(h.Percentile(0.90) / 1000, 3));
            w.WriteNumber("p99", Math.Round(h.Percentile(0.99) / 1000, 3));
            w.WriteNumber("max", Math.Round(h.MaxMicros / 1000.0, 3));
            w.WriteEndObject();
            if (r.Parts.Count > 0)
            {
                // Each request of an operation on its own (receive: the receive, then the ack), per request.
                w.WriteStartObject("requests_ms");
                foreach (var (name, part) in r.Parts)
                {
                    w.WriteStartObject(name);
                    w.WriteNumber("count", part.Count);
                    w.WriteNumber("mean", Math.Round(part.Count == 0 ? 0 : part.SumMicros / part.Count / 1000, 3));
                    w.WriteNumber("p50", Math.Round(part.Percentile(0.50) / 1000, 3));
                    w.WriteNumber("p99", Math.Round(part.Percentile(0.99) / 1000, 3));
                    w.WriteEndObject();
                }
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }

    private static string N(long n) => n.ToString("N0", CultureInfo.InvariantCulture);

    private static string Ms(double micros) => (micros / 1000).ToString("0.00", CultureInfo.InvariantCulture);
}

using System.Diagnostics;
using System.Text;

namespace RaftMQ.Client;

/// <summary>Settings of a <see cref="RaftMQConsumer"/>.</summary>
public sealed record RaftMQConsumerOptions
{
    /// <summary>The consumer group to receive as.</summary>
    public string Group { get; init; } = "default";

    /// <summary>Messages leased per receive (1-1,000): the handler runs on them one by one while their leases are kept.</summary>
    public int Prefetch { get; init; } = 10;

    /// <summary>The lease of each receive and extension. Leases are extended every half lease while messages wait or run.</summary>
    public TimeSpan Lease { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>The delay before a message the handler failed on is delivered again.</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.Zero;

    /// <summary>
    /// How long each receive waits on the server while nothing is ready (long polling; 1 ms to <see cref="MaxWait"/>):
    /// a message published meanwhile is delivered at once, and an idle consumer sends about one receive per this.
    /// </summary>
    public TimeSpan Wait { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The longest <see cref="Wait"/>: the server's bound on <c>wait_ms</c> (docs/rest-api.md, "Long polling").</summary>
    public static TimeSpan MaxWait { get; } = TimeSpan.FromSeconds(20);

    /// <summary>
    /// The longest the ack of a handled message waits to ride on the next receive (one request and one log entry for
    /// both) while the handler runs on the batch's next messages; past it, the acks waiting are sent on their own
    /// (0 to 1 minute; zero: each ack but the batch's last is sent as soon as its handler returns). The batch's last
    /// acks always ride on the receive that follows it.
    /// </summary>
    public TimeSpan AckDelay { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>The longest <see cref="AckDelay"/>.</summary>
    public static TimeSpan MaxAckDelay { get; } = TimeSpan.FromMinutes(1);

    internal void Validate()
    {
        ArgumentException.ThrowIfNullOrEmpty(Group);
        if (Prefetch is < 1 or > 1000) throw new ArgumentOutOfRangeException(nameof(Prefetch), Prefetch, "must be 1..1000");
        if (Lease < TimeSpan.FromMilliseconds(2)) throw new ArgumentOutOfRangeException(nameof(Lease), Lease, "must be at least 2 ms");
        if (RetryDelay < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(RetryDelay), RetryDelay, "must not be negative");
        if (Wait < TimeSpan.FromMilliseconds(1) || Wait > MaxWait) throw new ArgumentOutOfRangeException(nameof(Wait), Wait, $"must be 1 ms to {MaxWait.TotalSeconds:0} s");
        if (AckDelay < TimeSpan.Zero || AckDelay > MaxAckDelay) throw new ArgumentOutOfRangeException(nameof(AckDelay), AckDelay, $"must be 0 to {MaxAckDelay.TotalSeconds:0} s");
    }
}

/// <summary>
/// Runs a handler on the messages of one topic's consumer group, at least once: it receives up to
/// <see cref="RaftMQConsumerOptions.Prefetch"/> messages with a lease (waiting on the server up to
/// <see cref="RaftMQConsumerOptions.Wait"/> while none is ready), runs the handler on each in turn, acks the
/// message when the handler returns and nacks it (with the exception's message as its error) when the handler
/// throws. The acks of a batch ride on the next receive (<see cref="RaftMQClient.ReceiveAndAckAsync"/>: one request
/// and one log entry for the acks and the next batch). That receive does not wait on the server, so its answer, with
/// the acks' outcome, comes at once; only when it finds nothing does the consumer send a waiting receive, which carries
/// no acks. So no ack is held while the consumer is idle. An ack waiting for the receive while the handler runs on the
/// batch's next messages is sent on its own once it has waited <see cref="RaftMQConsumerOptions.AckDelay"/>; acks
/// whose receive failed are sent again with the next one, and acks left when the consumer stops are sent with a
/// plain ack. While messages wait, run or wait for their ack, their leases are extended every half lease, so a slow
/// handler keeps its message. <see cref="StopAsync"/> lets the running handler finish, nacks the prefetched messages it
/// did not start, sends the acks left, and returns. A consumer that dies instead loses nothing: its leases end and the
/// messages are delivered again.
/// </summary>
public sealed class RaftMQConsumer : IAsyncDisposable
{
    private const int MaxErrorBytes = 1024;

    private readonly RaftMQClient _client;
    private readonly string _topic;
    private readonly Func<Delivery, CancellationToken, Task> _handler;
    private readonly RaftMQConsumerOptions _options;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private long _processed;
    private long _failed;

    /// <summary>Starts consuming <paramref name="topic"/> at once, running <paramref name="handler"/> on each message.</summary>
    public RaftMQConsumer(RaftMQClient client, string topic, Func<Delivery, CancellationToken, Task> handler, RaftMQConsumerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentException.ThrowIfNullOrEmpty(topic);
        ArgumentNullException.ThrowIfNull(handler);
        _options = options ?? new RaftMQConsumerOptions();
        _options.Validate();
        _client = client;
        _topic = topic;
        _handler = handler;
        _loop = Task.Run(RunAsync);
    }

    /// <summary>Messages the handler finished and that were acked.</summary>
    public long Processed => Interlocked.Read(ref _processed);

    /// <summary>Messages the handler threw on (nacked).</summary>
    public long Failed => Interlocked.Read(ref _failed);

    /// <summary>Called with each error of the consumer itself (a receive, ack, nack or extend that failed); it carries on.</summary>
    public Action<Exception>? OnError { get; init; }

    /// <summary>
    /// Stops receiving, lets the running handler finish (its token is cancelled), nacks the prefetched messages not
    /// started, and returns when all that is done. The task of the loop's fatal error, if any (an unknown topic or
    /// group), is rethrown here.
    /// </summary>
    public async Task StopAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await _loop.ConfigureAwait(false);
    }

    /// <summary>Stops as <see cref="StopAsync"/> does, without rethrowing the loop's error.</summary>
    public async ValueTask DisposeAsync()
    {
        try
        {
            await StopAsync().ConfigureAwait(false);
        }
        catch (RaftMQException)
        {
            // Reported by StopAsync to a caller who asks; disposing does not throw it again.
        }
        _stop.Dispose();
    }

    /// <summary>The pause after a receive that failed, doubling up to <see cref="MaxErrorPause"/> while failures go on.</summary>
    private static readonly TimeSpan FirstErrorPause = TimeSpan.FromMilliseconds(20);

    private static readonly TimeSpan MaxErrorPause = TimeSpan.FromSeconds(1);

    private async Task RunAsync()
    {
        var stopping = _stop.Token;
        var pause = FirstErrorPause;
        // Handled messages whose ack is not sent yet: it rides on the next receive.
        List<string> acks = [];
        try
        {
            while (!stopping.IsCancellationRequested)
            {
                IReadOnlyList<Delivery> batch;
                try
                {
                    if (acks.Count > 0)
                    {
                        // The acks and the next batch in one request that does not wait: its answer (and the acks'
                        // outcome) comes at once; when it finds nothing, the next round waits, without acks. A stop
                        // does not cancel it (a cancelled request may still be applied, and its acks then look stale
                        // when sent again): it is answered within the client's operation timeout, and what it leased
                        // is nacked at once below.
                        var result = await _client.ReceiveAndAckAsync(
                            _topic, acks, _options.Group, _options.Prefetch, _options.Lease, TimeSpan.Zero, cancellationToken: CancellationToken.None).ConfigureAwait(false);
                        Acked(result.Acks);
                        acks = [];
                        batch = result.Deliveries;
                    }
                    else
                    {
                        // Long polling: while nothing is ready the server holds the receive until something is (or Wait
                        // is over), so the next receive follows at once, with no pause between receives.
                        batch = await _client.ReceiveAsync(_topic, _options.Group, _options.Prefetch, _options.Lease, _options.Wait, cancellationToken: stopping)
                            .ConfigureAwait(false);
                    }
                    pause = FirstErrorPause;
                }
                catch (OperationCanceledException) when (stopping.IsCancellationRequested)
                {
                    return;
                }
                catch (Exception e) when (e is TopicNotFoundException or RequestRejectedException)
                {
                    throw; // an unknown topic or group, a bad option: nothing to retry
                }
                catch (RaftMQException e)
                {
                    // The client retried until its operation timeout already; pause so a node failing fast is not
                    // hammered. The acks stay, for the next receive (sent again, a receipt already acked is stale).
                    OnError?.Invoke(e);
                    try
                    {
                        await Task.Delay(pause, stopping).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException)
                    {
                        return;
                    }
                    pause = TimeSpan.FromMilliseconds(Math.Min(pause.TotalMilliseconds * 2, MaxErrorPause.TotalMilliseconds));
                    continue;
                }
                if (batch.Count > 0) acks = await HandleBatchAsync(batch, stopping).ConfigureAwait(false);
            }
        }
        finally
        {
            // Stopping (or a fatal error) with acks not sent, or whose receive was cancelled: a plain ack, not cancelled
            // by the stop (bounded by the client's operation timeout).
            if (acks.Count > 0) await SettleAsync(() => _client.AckAsync(_topic, acks, _options.Group), acked: true).ConfigureAwait(false);
        }
    }

    /// <summary>Runs the handler on each message of <paramref name="batch"/>; returns the receipts to ack that are not sent yet.</summary>
    private async Task<List<string>> HandleBatchAsync(IReadOnlyList<Delivery> batch, CancellationToken stopping)
    {
        var unsettled = new List<string>(batch.Select(d => d.Receipt));
        var gate = new object();
        var acks = new List<string>();
        var oldestAck = 0L;
        using var extending = new CancellationTokenSource();
        var extender = ExtendLeasesAsync(() => { lock (gate) return [.. unsettled]; }, extending.Token);
        try
        {
            for (int i = 0; i < batch.Count; i++)
            {
                var d = batch[i];
                if (stopping.IsCancellationRequested)
                {
                    await SettleAsync(() => _client.NackAsync(_topic, [.. batch.Skip(i).Select(b => b.Receipt)], _options.Group)).ConfigureAwait(false);
                    break;
                }
                var handling = HandleAsync(d, stopping);
                if (acks.Count > 0)
                {
                    // Acks wait for the next receive at most AckDelay: past it (the handler still running), they go alone.
                    var left = _options.AckDelay - Stopwatch.GetElapsedTime(oldestAck);
                    var due = left <= TimeSpan.Zero;
                    if (!due)
                    {
                        using var timer = new CancellationTokenSource();
                        var delay = Task.Delay(left, timer.Token);
                        due = await Task.WhenAny(handling, delay).ConfigureAwait(false) != handling;
                        await timer.CancelAsync().ConfigureAwait(false);
                    }
                    if (due)
                    {
                        List<string> sent = [.. acks];
                        acks.Clear();
                        await SettleAsync(() => _client.AckAsync(_topic, sent, _options.Group), acked: true).ConfigureAwait(false);
                        lock (gate) unsettled.RemoveAll(sent.Contains);
                    }
                }
                var failure = await handling.ConfigureAwait(false);
                if (failure is null)
                {
                    // Its lease is still extended (it stays unsettled) until its ack is sent.
                    if (acks.Count == 0) oldestAck = Stopwatch.GetTimestamp();
                    acks.Add(d.Receipt);
                }
                else
                {
                    lock (gate) unsettled.Remove(d.Receipt);
                    Interlocked.Increment(ref _failed);
                    await SettleAsync(() => _client.NackAsync(_topic, [d.Receipt], _options.Group, _options.RetryDelay, Cut(failure.Message))).ConfigureAwait(false);
                }
            }
        }
        finally
        {
            await extending.CancelAsync().ConfigureAwait(false);
            await extender.ConfigureAwait(false);
        }
        return acks;
    }

    /// <summary>The handler's run on <paramref name="d"/>: null when it returned, else what it threw.</summary>
    private async Task<Exception?> HandleAsync(Delivery d, CancellationToken stopping)
    {
        try
        {
            await _handler(d, stopping).ConfigureAwait(false);
            return null;
        }
        catch (Exception e)
        {
            return e;
        }
    }

    /// <summary>Counts what an ack applied; stale receipts go to <see cref="OnError"/> (their message comes back).</summary>
    private void Acked(SettleResult result)
    {
        Interlocked.Add(ref _processed, result.Applied);
        ReportStale(result);
    }

    private void ReportStale(SettleResult result)
    {
        if (result.Stale.Count > 0)
            OnError?.Invoke(new InvalidOperationException($"stale receipts {string.Join(", ", result.Stale)}: their lease ended before they were settled; they will be delivered again"));
    }

    /// <summary>Every half lease, extends the leases of the messages not settled yet.</summary>
    private async Task ExtendLeasesAsync(Func<List<string>> receipts, CancellationToken done)
    {
        using var timer = new PeriodicTimer(_options.Lease / 2);
        try
        {
            while (await timer.WaitForNextTickAsync(done).ConfigureAwait(false))
            {
                var open = receipts();
                if (open.Count == 0) continue;
                try
                {
                    await _client.ExtendAsync(_topic, open, _options.Lease, _options.Group, cancellationToken: done).ConfigureAwait(false);
                }
                catch (RaftMQException e)
                {
                    OnError?.Invoke(e);
                }
            }
        }
        catch (OperationCanceledException) when (done.IsCancellationRequested)
        {
            // the batch is settled
        }
    }

    /// <summary>
    /// Runs an ack (<paramref name="acked"/>: counted in <see cref="Processed"/>) or nack. Stale receipts and failures go
    /// to <see cref="OnError"/>: the message then comes back after its lease.
    /// </summary>
    private async Task SettleAsync(Func<Task<SettleResult>> settle, bool acked = false)
    {
        try
        {
            var result = await settle().ConfigureAwait(false);
            if (acked) Acked(result);
            else ReportStale(result);
        }
        catch (RaftMQException e)
        {
            OnError?.Invoke(e);
        }
    }

    private static string Cut(string error)
    {
        if (Encoding.UTF8.GetByteCount(error) <= MaxErrorBytes) return error;
        var cut = error[..Math.Min(error.Length, MaxErrorBytes / 4)];
        return char.IsHighSurrogate(cut[^1]) ? cut[..^1] : cut;
    }
}

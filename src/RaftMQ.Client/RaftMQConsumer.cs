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

    internal void Validate()
    {
        ArgumentException.ThrowIfNullOrEmpty(Group);
        if (Prefetch is < 1 or > 1000) throw new ArgumentOutOfRangeException(nameof(Prefetch), Prefetch, "must be 1..1000");
        if (Lease < TimeSpan.FromMilliseconds(2)) throw new ArgumentOutOfRangeException(nameof(Lease), Lease, "must be at least 2 ms");
        if (RetryDelay < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(RetryDelay), RetryDelay, "must not be negative");
        if (Wait < TimeSpan.FromMilliseconds(1) || Wait > MaxWait) throw new ArgumentOutOfRangeException(nameof(Wait), Wait, $"must be 1 ms to {MaxWait.TotalSeconds:0} s");
    }
}

/// <summary>
/// Runs a handler on the messages of one topic's consumer group, at least once: it receives up to
/// <see cref="RaftMQConsumerOptions.Prefetch"/> messages with a lease (waiting on the server up to
/// <see cref="RaftMQConsumerOptions.Wait"/> while none is ready), runs the handler on each in turn, acks the
/// message when the handler returns and nacks it (with the exception's message as its error) when the handler
/// throws. While messages wait or run, their leases are extended every half lease, so a slow handler keeps its
/// message. <see cref="StopAsync"/> lets the running handler finish, nacks the prefetched messages it did not start,
/// and returns. A consumer that dies instead loses nothing: its leases end and the messages are delivered again.
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
        while (!stopping.IsCancellationRequested)
        {
            IReadOnlyList<Delivery> batch;
            try
            {
                // Long polling: while nothing is ready the server holds the receive until something is (or Wait is
                // over), so the next receive follows at once, with no pause between receives.
                batch = await _client.ReceiveAsync(_topic, _options.Group, _options.Prefetch, _options.Lease, _options.Wait, cancellationToken: stopping)
                    .ConfigureAwait(false);
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
                // The client retried until its operation timeout already; pause so a node failing fast is not hammered.
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
            if (batch.Count > 0) await HandleBatchAsync(batch, stopping).ConfigureAwait(false);
        }
    }

    private async Task HandleBatchAsync(IReadOnlyList<Delivery> batch, CancellationToken stopping)
    {
        var unsettled = new List<string>(batch.Select(d => d.Receipt));
        var gate = new object();
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
                    return;
                }
                Exception? failure = null;
                try
                {
                    await _handler(d, stopping).ConfigureAwait(false);
                }
                catch (Exception e)
                {
                    failure = e;
                }
                lock (gate) unsettled.Remove(d.Receipt);
                if (failure is null)
                {
                    if (await SettleAsync(() => _client.AckAsync(_topic, [d.Receipt], _options.Group)).ConfigureAwait(false))
                        Interlocked.Increment(ref _processed);
                }
                else
                {
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

    /// <summary>Runs an ack or nack; true when nothing was stale. Failures go to <see cref="OnError"/>: the message then comes back after its lease.</summary>
    private async Task<bool> SettleAsync(Func<Task<SettleResult>> settle)
    {
        try
        {
            var result = await settle().ConfigureAwait(false);
            if (result.Stale.Count > 0)
                OnError?.Invoke(new InvalidOperationException($"stale receipts {string.Join(", ", result.Stale)}: their lease ended before they were settled; they will be delivered again"));
            return result.Stale.Count == 0;
        }
        catch (RaftMQException e)
        {
            OnError?.Invoke(e);
            return false;
        }
    }

    private static string Cut(string error)
    {
        if (Encoding.UTF8.GetByteCount(error) <= MaxErrorBytes) return error;
        var cut = error[..Math.Min(error.Length, MaxErrorBytes / 4)];
        return char.IsHighSurrogate(cut[^1]) ? cut[..^1] : cut;
    }
}

using System.Text;
using System.Threading.Channels;

namespace RaftMQ.Client;

/// <summary>Bounds of a <see cref="RaftMQPublisher"/>.</summary>
public sealed record RaftMQPublisherOptions
{
    /// <summary>Most messages in one request (the cluster accepts at most 1,000).</summary>
    public int MaxBatchMessages { get; init; } = 1000;

    /// <summary>
    /// Most UTF-8 bytes of messages in one request. JSON escaping can grow a message up to six times, so the default
    /// keeps every request within the 1 MiB request limit. A single larger message still goes, alone.
    /// </summary>
    public int MaxBatchBytes { get; init; } = 128 * 1024;

    /// <summary>Most messages waiting to be sent; <see cref="RaftMQPublisher.PublishAsync"/> waits while this many wait.</summary>
    public int MaxQueuedMessages { get; init; } = 10_000;

    internal void Validate()
    {
        if (MaxBatchMessages is < 1 or > 1000) throw new ArgumentOutOfRangeException(nameof(MaxBatchMessages), MaxBatchMessages, "must be 1..1000");
        if (MaxBatchBytes < 1) throw new ArgumentOutOfRangeException(nameof(MaxBatchBytes), MaxBatchBytes, "must be positive");
        if (MaxQueuedMessages < 1) throw new ArgumentOutOfRangeException(nameof(MaxQueuedMessages), MaxQueuedMessages, "must be positive");
    }
}

/// <summary>
/// The sender's side of the queue was not reached: an earlier message of the same <see cref="RaftMQPublisher"/>
/// failed, so this one was <b>not</b> published (the publisher stops at the first failure to keep the order).
/// <see cref="Exception.InnerException"/> is that first failure.
/// </summary>
public sealed class PublisherFaultedException : RaftMQException
{
    /// <summary>Creates the exception.</summary>
    public PublisherFaultedException(Exception cause)
        : base($"not published: an earlier message of this publisher failed ({cause.Message})", cause)
    {
    }
}

/// <summary>
/// Publishes a stream of messages to one topic in batches: each <see cref="PublishAsync"/> queues a message, and one
/// request at a time carries everything queued meanwhile (up to the bounds) through the batch endpoint. Throughput
/// grows with the number of messages in flight without the caller batching by hand, and the topic receives the
/// messages in the order of the calls.
/// <para>
/// The task of each message completes once the cluster has committed it, or fails with the batch's error
/// (<see cref="OutcomeUnknownException"/>, <see cref="ClusterUnavailableException"/>,
/// <see cref="TopicNotFoundException"/>, ...). After the first failure the publisher sends nothing more: every later
/// message fails with <see cref="PublisherFaultedException"/> and was certainly not published. Create a new publisher
/// to go on.
/// </para>
/// </summary>
public sealed class RaftMQPublisher : IAsyncDisposable
{
    private readonly RaftMQClient _client;
    private readonly string _topic;
    private readonly RaftMQPublisherOptions _options;
    private readonly Channel<Pending> _queue;
    private readonly Task _sender;
    private volatile Exception? _fault;

    /// <summary>Starts a publisher for <paramref name="topic"/> on <paramref name="client"/> (which it does not own).</summary>
    public RaftMQPublisher(RaftMQClient client, string topic, RaftMQPublisherOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentException.ThrowIfNullOrEmpty(topic);
        _options = options ?? new RaftMQPublisherOptions();
        _options.Validate();
        _client = client;
        _topic = topic;
        _queue = Channel.CreateBounded<Pending>(new BoundedChannelOptions(_options.MaxQueuedMessages)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
        _sender = Task.Run(SendLoopAsync);
    }

    /// <summary>
    /// Queues <paramref name="message"/> and completes when it is committed. <paramref name="cancellationToken"/>
    /// only cancels waiting for room in the queue: a queued message is sent.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The publisher was disposed.</exception>
    /// <exception cref="PublisherFaultedException">An earlier message failed; this one was not published.</exception>
    public Task PublishAsync(string message, CancellationToken cancellationToken = default)
    {
        // With room in the queue, the task returned is the message's own: it is complete as soon as the message is
        // answered, so after DisposeAsync every such task is done. (An async wrapper would complete a moment later,
        // on the thread pool.) Only a publish that waited for room goes through a wrapper.
        var enqueued = EnqueueAsync(message, cancellationToken);
        return enqueued.IsCompletedSuccessfully ? enqueued.Result : WhenSentAsync(enqueued);

        static async Task WhenSentAsync(ValueTask<Task> enqueued) => await (await enqueued.ConfigureAwait(false)).ConfigureAwait(false);
    }

    /// <summary>
    /// Waits for room in the queue (<see cref="RaftMQPublisherOptions.MaxQueuedMessages"/>), queues
    /// <paramref name="message"/> and returns the task of its commit without waiting for it. A loop that awaits
    /// this, and looks at the returned tasks later, streams messages with a bounded amount of memory.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The publisher was disposed.</exception>
    /// <exception cref="PublisherFaultedException">An earlier message failed; this one was not queued.</exception>
    public async ValueTask<Task> EnqueueAsync(string message, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (_fault is { } fault) throw new PublisherFaultedException(fault);
        var pending = new Pending(message, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        try
        {
            await _queue.Writer.WriteAsync(pending, cancellationToken).ConfigureAwait(false);
        }
        catch (ChannelClosedException)
        {
            throw new ObjectDisposedException(nameof(RaftMQPublisher));
        }
        return pending.Done.Task;
    }

    /// <summary>Stops taking messages, sends every queued one and waits until they are answered.</summary>
    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _sender.ConfigureAwait(false);
    }

    private async Task SendLoopAsync()
    {
        var batch = new List<Pending>(_options.MaxBatchMessages);
        var messages = new List<string>(_options.MaxBatchMessages);
        Pending? carried = null; // taken from the queue but over the previous batch's byte bound
        var reader = _queue.Reader;
        while (carried is not null || await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            long bytes = 0;
            while (batch.Count < _options.MaxBatchMessages && (carried is { } next || reader.TryRead(out next)))
            {
                var size = Encoding.UTF8.GetByteCount(next.Message);
                if (batch.Count > 0 && bytes + size > _options.MaxBatchBytes)
                {
                    carried = next;
                    break;
                }
                carried = null;
                bytes += size;
                batch.Add(next);
                messages.Add(next.Message);
            }
            if (_fault is { } fault)
            {
                foreach (var p in batch) p.Done.TrySetException(new PublisherFaultedException(fault));
            }
            else
            {
                try
                {
                    await _client.PublishBatchAsync(_topic, messages).ConfigureAwait(false);
                    foreach (var p in batch) p.Done.TrySetResult();
                }
                catch (Exception e)
                {
                    _fault = e; // from here on nothing is sent, so no later message can overtake this one
                    foreach (var p in batch) p.Done.TrySetException(e);
                }
            }
            batch.Clear();
            messages.Clear();
        }
    }

    private sealed record Pending(string Message, TaskCompletionSource Done);
}

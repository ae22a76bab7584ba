using System.Collections.Concurrent;
using RaftMQ.Client;

namespace RaftMQ.Server.Tests;

/// <summary>
/// A client publishing "m0", "m1", ... to one topic, one after another, while a test changes the cluster; it records
/// which messages were acknowledged and which are in doubt (outcome unknown). <see cref="DrainAndCheckAsync"/> then
/// pops the topic empty and checks the queue's promise: nothing acknowledged lost, nothing consumed twice, nothing
/// consumed that was neither acknowledged nor in doubt.
/// </summary>
internal sealed class PublishHistory : IAsyncDisposable
{
    private readonly RaftMQClient _client;
    private readonly string _topic;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _publisher;

    private PublishHistory(RaftMQClient client, string topic)
    {
        _client = client;
        _topic = topic;
        _publisher = Task.Run(PublishAsync);
    }

    /// <summary>Starts publishing to <paramref name="topic"/> (which must exist) through <paramref name="client"/>.</summary>
    public static PublishHistory Start(RaftMQClient client, string topic) => new(client, topic);

    /// <summary>Messages whose publish was acknowledged, in the order they were published.</summary>
    public ConcurrentQueue<string> Acknowledged { get; } = new();

    /// <summary>Messages whose publish ended with an unknown outcome: each may or may not be in the topic.</summary>
    public ConcurrentQueue<string> Unknown { get; } = new();

    /// <summary>Publishes refused as certainly not applied (no leader in time).</summary>
    public int NotPublished => Volatile.Read(ref _notPublished);

    private int _notPublished;

    private async Task PublishAsync()
    {
        for (var n = 0; !_stop.IsCancellationRequested; n++)
        {
            var message = "m" + n;
            try
            {
                await _client.PublishAsync(_topic, message);
                Acknowledged.Enqueue(message);
            }
            catch (OutcomeUnknownException)
            {
                Unknown.Enqueue(message);
            }
            catch (ClusterUnavailableException)
            {
                Interlocked.Increment(ref _notPublished); // certainly not published
            }
        }
    }

    /// <summary>Stops publishing and waits for the publish in flight.</summary>
    public async Task StopAsync()
    {
        await _stop.CancelAsync();
        await _publisher;
    }

    /// <summary>Stops publishing, pops the topic empty and checks it against what was acknowledged; returns what was consumed, in order.</summary>
    public async Task<List<string>> DrainAndCheckAsync()
    {
        await StopAsync();
        var consumed = new List<string>();
        while (true)
        {
            var batch = await _client.PopBatchAsync(_topic, 1000);
            if (batch.Count == 0) break;
            consumed.AddRange(batch);
        }
        consumed.Distinct().Count().ShouldBe(consumed.Count, "a message was consumed twice");
        var got = consumed.ToHashSet();
        Acknowledged.Where(m => !got.Contains(m)).ShouldBeEmpty("acknowledged messages were lost");
        var sent = Acknowledged.Concat(Unknown).ToHashSet();
        consumed.Where(m => !sent.Contains(m)).ShouldBeEmpty("messages never acknowledged nor in doubt were consumed");
        return consumed;
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _stop.Dispose();
    }
}

using System.Threading.Channels;
using RaftMQ.Raft;

namespace RaftMQ.Transport;

/// <summary>
/// Carries Raft messages between peers. Raft tolerates loss, duplication and reordering (§5.3, §5.5), so the
/// transport is best-effort: it never blocks or throws into the node's event loop; when a bound is reached it
/// drops and counts, and Raft's retries fill the gap.
/// </summary>
public interface ITransport : IAsyncDisposable
{
    /// <summary>Messages received from authenticated peers, addressed to this node.</summary>
    ChannelReader<RaftMessage> Inbound { get; }

    /// <summary>Starts listening and connecting to peers.</summary>
    Task StartAsync(CancellationToken cancellationToken = default);

    /// <summary>Queues <paramref name="message"/> for its <see cref="RaftMessage.To"/> peer; returns at once and never throws for a non-null message.</summary>
    void Send(RaftMessage message);
}

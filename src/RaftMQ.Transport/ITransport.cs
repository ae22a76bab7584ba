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

    /// <summary>
    /// Hands every later message straight to <paramref name="receiver"/> on the connection's reading thread instead of
    /// queueing it on <see cref="Inbound"/>, which saves a thread hand-off per message. Messages already queued are
    /// handed over first. The receiver must not block; it bounds its own queue (dropping is safe: Raft retries).
    /// </summary>
    void SetReceiver(Action<RaftMessage> receiver);

    /// <summary>Starts listening and connecting to peers.</summary>
    Task StartAsync(CancellationToken cancellationToken = default);

    /// <summary>Queues <paramref name="message"/> for its <see cref="RaftMessage.To"/> peer; returns at once and never throws for a non-null message.</summary>
    void Send(RaftMessage message);

    /// <summary>
    /// True when this node's link to <paramref name="peerId"/> is known to be down now: its connection closed or
    /// failed and has not been made again (the peer process is gone, or refuses this node). False when the link is up,
    /// not yet tried, or the transport cannot tell. A partition that drops packets silently looks up until a write
    /// times out, so false never means the peer is alive.
    /// </summary>
    bool IsLinkDown(ulong peerId) => false;

    /// <summary>
    /// Calls <paramref name="handler"/> with the peer's id each time a link goes down (<see cref="IsLinkDown"/> turns
    /// true), once per outage, on a transport thread; it must not block. Transports that cannot tell never call it.
    /// </summary>
    void SetLinkDownHandler(Action<ulong> handler)
    {
    }
}

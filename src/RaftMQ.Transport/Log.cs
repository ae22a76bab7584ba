using Microsoft.Extensions.Logging;

namespace RaftMQ.Transport;

/// <summary>The transport's log lines: one per connect, disconnect, refusal or protocol error; silent otherwise.</summary>
internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Information, "Node {NodeId} listening for peers on {EndPoint}")]
    public static partial void Listening(this ILogger logger, ulong nodeId, string endPoint);

    [LoggerMessage(2, LogLevel.Information, "Connected to peer {PeerId} at {EndPoint}")]
    public static partial void OutboundConnected(this ILogger logger, ulong peerId, string endPoint);

    [LoggerMessage(3, LogLevel.Information, "Connection to peer {PeerId} lost: {Reason}")]
    public static partial void OutboundLost(this ILogger logger, ulong peerId, string reason);

    [LoggerMessage(4, LogLevel.Warning, "Peer {PeerId} at {EndPoint} unreachable: {Reason}; retrying with backoff")]
    public static partial void PeerUnreachable(this ILogger logger, ulong peerId, string endPoint, string reason);

    [LoggerMessage(5, LogLevel.Information, "Peer {PeerId} connected from {Remote}")]
    public static partial void InboundConnected(this ILogger logger, ulong peerId, string remote);

    [LoggerMessage(6, LogLevel.Information, "Peer {PeerId} from {Remote} disconnected: {Reason}")]
    public static partial void InboundLost(this ILogger logger, ulong peerId, string remote, string reason);

    [LoggerMessage(7, LogLevel.Warning, "Authentication failed on connection {Direction} {Remote}: {Reason}; closed")]
    public static partial void AuthenticationFailed(this ILogger logger, string direction, string remote, string reason);

    [LoggerMessage(8, LogLevel.Warning, "Protocol error from peer {PeerId} at {Remote}: {Reason}; connection closed")]
    public static partial void ProtocolError(this ILogger logger, ulong peerId, string remote, string reason);

    [LoggerMessage(9, LogLevel.Warning, "Refused connection from {Remote}: {Max} inbound connections already open{Suppressed}")]
    private static partial void TooManyConnections(this ILogger logger, string remote, int max, string suppressed);

    /// <summary>Rate-limited (see <see cref="RateLimitedLog"/>): <paramref name="suppressed"/> refusals were not logged before this one.</summary>
    public static void TooManyConnections(this ILogger logger, string remote, int max, long suppressed) =>
        logger.TooManyConnections(remote, max, RateLimitedLog.Since(suppressed));

    [LoggerMessage(13, LogLevel.Warning, "Authentication failed on connection from {Remote}: {Reason}; closed{Suppressed}")]
    private static partial void InboundHandshakeFailed(this ILogger logger, string remote, string reason, string suppressed);

    /// <summary>Rate-limited: <paramref name="suppressed"/> failed inbound handshakes were not logged before this one.</summary>
    public static void InboundHandshakeFailed(this ILogger logger, string remote, string reason, long suppressed) =>
        logger.InboundHandshakeFailed(remote, reason, RateLimitedLog.Since(suppressed));

    [LoggerMessage(
        14,
        LogLevel.Warning,
        "Closed unauthenticated connection from {Remote} to make room for a newer one (at most {MaxPending} in their handshake, {MaxPerAddress} per address){Suppressed}")]
    private static partial void HandshakeEvicted(this ILogger logger, string remote, int maxPending, int maxPerAddress, string suppressed);

    /// <summary>Rate-limited: <paramref name="suppressed"/> evictions were not logged before this one.</summary>
    public static void HandshakeEvicted(this ILogger logger, string remote, int maxPending, int maxPerAddress, long suppressed) =>
        logger.HandshakeEvicted(remote, maxPending, maxPerAddress, RateLimitedLog.Since(suppressed));

    [LoggerMessage(10, LogLevel.Warning, "Dropped a {Type} of {Bytes} bytes to peer {PeerId}: over the frame cap of {Max} bytes")]
    public static partial void MessageTooLarge(this ILogger logger, string type, long bytes, ulong peerId, int max);

    [LoggerMessage(12, LogLevel.Error, "Dropped a {Type} to peer {PeerId}: the transport has no encoding for this message type")]
    public static partial void UnsupportedMessage(this ILogger logger, string type, ulong peerId);

    [LoggerMessage(11, LogLevel.Debug, "Dropped a {Type} from peer {PeerId} claiming From={From} To={To}")]
    public static partial void SpoofedMessage(this ILogger logger, string type, ulong peerId, ulong from, ulong to);

    [LoggerMessage(20, LogLevel.Warning, "The link-down handler failed for peer {PeerId}")]
    public static partial void LinkDownHandlerFailed(this ILogger logger, Exception exception, ulong peerId);
}

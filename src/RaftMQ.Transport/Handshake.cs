using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace RaftMQ.Transport;

/// <summary>A handshake that did not prove the peer is a member of this cluster.</summary>
internal sealed class HandshakeException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Mutual challenge–response authentication run on every new connection before any Raft message is read.
/// The dialer sends Hello(version, cluster id, dialer id, listener id, dialer nonce); the listener answers
/// Challenge(listener id, listener nonce) — a nonce and nothing derived from the secret; the dialer answers
/// Proof(dialer proof); only once that proof checks out does the listener answer Welcome(listener proof), which the
/// dialer checks in turn. A proof is HMAC-SHA256(secret, role label ‖ transcript) where the transcript holds the
/// version, cluster id, both ids and both nonces: fresh nonces on both sides make a recorded proof useless later, and
/// the role label stops a listener's proof being reflected back as a dialer's. Because the dialer proves first, a
/// stranger who connects to the peer port learns a random nonce and nothing it could test guesses of the secret
/// against (docs/security.md).
/// </summary>
internal static class Handshake
{
    public const int NonceSize = 32;
    public const int ProofSize = 32;

    /// <summary>Bytes of a challenge: type, listener id, listener nonce.</summary>
    public const int ChallengeSize = 1 + sizeof(ulong) + NonceSize;

    /// <summary>Cap on handshake frames: an unauthenticated peer cannot make this node buffer more.</summary>
    public const int MaxFrameBytes = 512;

    internal static readonly byte[] DialerLabel = "RaftMQ/peer-handshake/dialer\0"u8.ToArray();
    internal static readonly byte[] ListenerLabel = "RaftMQ/peer-handshake/listener\0"u8.ToArray();

    /// <summary>Runs the dialer's side on <paramref name="connection"/> to reach <paramref name="peerId"/>.</summary>
    public static async Task DialAsync(PeerConnection connection, TcpTransportOptions options, ulong peerId, CancellationToken cancellationToken)
    {
        var dialerNonce = RandomNumberGenerator.GetBytes(NonceSize);
        await connection.WriteFrameAsync(EncodeHello(Frame.Version, options.ClusterId, options.NodeId, peerId, dialerNonce), cancellationToken)
            .ConfigureAwait(false);

        var (listenerId, listenerNonce) = DecodeChallenge(await ReadAsync(connection, "challenge", cancellationToken).ConfigureAwait(false));
        if (listenerId != peerId)
        {
            throw new HandshakeException($"expected node {peerId} but node {listenerId} answered");
        }

        var transcript = Transcript(options.ClusterId, options.NodeId, peerId, dialerNonce, listenerNonce);
        await connection.WriteFrameAsync(EncodeProof(MessageType.HandshakeProof, Prove(options.ClusterSecret, DialerLabel, transcript)), cancellationToken)
            .ConfigureAwait(false);

        var welcome = await ReadAsync(connection, "welcome", cancellationToken, $"node {peerId} closed the connection instead of a welcome: it refused this node's proof (a different cluster secret?) or timed out")
            .ConfigureAwait(false);
        var listenerProof = DecodeProof(welcome, MessageType.HandshakeWelcome, "welcome");
        if (!CryptographicOperations.FixedTimeEquals(listenerProof, Prove(options.ClusterSecret, ListenerLabel, transcript)))
        {
            throw new HandshakeException($"node {peerId} failed to prove the cluster secret");
        }
    }

    /// <summary>
    /// Runs the listener's side; returns the authenticated peer's id. <paramref name="refusePeer"/> says why the
    /// dialer's claimed id may not connect (not a peer; with TLS, a certificate not naming that peer), or null.
    /// </summary>
    public static async Task<ulong> AcceptAsync(
        PeerConnection connection, TcpTransportOptions options, Func<ulong, string?> refusePeer, CancellationToken cancellationToken)
    {
        var hello = DecodeHello(await ReadAsync(connection, "hello", cancellationToken).ConfigureAwait(false));
        if (hello.Version != Frame.Version)
        {
            throw new HandshakeException($"protocol version {hello.Version} is not supported (this node speaks {Frame.Version})");
        }

        if (!string.Equals(hello.ClusterId, options.ClusterId, StringComparison.Ordinal))
        {
            throw new HandshakeException($"cluster id '{hello.ClusterId}' is not this cluster's '{options.ClusterId}'");
        }

        if (hello.ListenerId != options.NodeId)
        {
            throw new HandshakeException($"hello addressed to node {hello.ListenerId}, this is node {options.NodeId}");
        }

        if (refusePeer(hello.DialerId) is { } refusal)
        {
            throw new HandshakeException(refusal);
        }

        var listenerNonce = RandomNumberGenerator.GetBytes(NonceSize);
        await connection.WriteFrameAsync(EncodeChallenge(options.NodeId, listenerNonce), cancellationToken).ConfigureAwait(false);

        var transcript = Transcript(options.ClusterId, hello.DialerId, options.NodeId, hello.Nonce, listenerNonce);
        var proof = DecodeProof(await ReadAsync(connection, "proof", cancellationToken).ConfigureAwait(false), MessageType.HandshakeProof, "proof");
        if (!CryptographicOperations.FixedTimeEquals(proof, Prove(options.ClusterSecret, DialerLabel, transcript)))
        {
            throw new HandshakeException($"node {hello.DialerId} failed to prove the cluster secret");
        }

        // Only a peer that proved the secret gets a proof from this node.
        await connection.WriteFrameAsync(EncodeProof(MessageType.HandshakeWelcome, Prove(options.ClusterSecret, ListenerLabel, transcript)), cancellationToken)
            .ConfigureAwait(false);
        return hello.DialerId;
    }

    internal readonly record struct Hello(byte Version, string ClusterId, ulong DialerId, ulong ListenerId, byte[] Nonce);

    /// <summary>[type][version][u8 cluster id length][cluster id UTF-8][u64 dialer id][u64 listener id][nonce].</summary>
    internal static byte[] EncodeHello(byte version, string clusterId, ulong dialerId, ulong listenerId, byte[] nonce)
    {
        var id = Encoding.UTF8.GetBytes(clusterId);
        var bytes = new byte[3 + id.Length + 16 + NonceSize];
        bytes[0] = (byte)MessageType.HandshakeHello;
        bytes[1] = version;
        bytes[2] = checked((byte)id.Length);
        id.CopyTo(bytes, 3);
        BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(3 + id.Length), dialerId);
        BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(11 + id.Length), listenerId);
        nonce.CopyTo(bytes, 19 + id.Length);
        return bytes;
    }

    internal static Hello DecodeHello(byte[] bytes)
    {
        if (bytes.Length < 3 || bytes[0] != (byte)MessageType.HandshakeHello)
        {
            throw new HandshakeException("malformed hello: not a hello");
        }

        var idLength = bytes[2];
        if (bytes.Length != 3 + idLength + 16 + NonceSize)
        {
            throw new HandshakeException($"malformed hello: {bytes.Length} bytes for a cluster id of {idLength}");
        }

        string clusterId;
        try
        {
            clusterId = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes, 3, idLength);
        }
        catch (DecoderFallbackException ex)
        {
            throw new HandshakeException("malformed hello: cluster id is not UTF-8", ex);
        }

        return new Hello(
            bytes[1],
            clusterId,
            BinaryPrimitives.ReadUInt64BigEndian(bytes.AsSpan(3 + idLength)),
            BinaryPrimitives.ReadUInt64BigEndian(bytes.AsSpan(11 + idLength)),
            bytes[(19 + idLength)..]);
    }

    /// <summary>[type][u64 listener id][listener nonce].</summary>
    internal static byte[] EncodeChallenge(ulong listenerId, byte[] nonce)
    {
        var bytes = new byte[ChallengeSize];
        bytes[0] = (byte)MessageType.HandshakeChallenge;
        BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(1), listenerId);
        nonce.CopyTo(bytes, 1 + sizeof(ulong));
        return bytes;
    }

    internal static (ulong ListenerId, byte[] Nonce) DecodeChallenge(byte[] bytes)
    {
        if (bytes.Length != ChallengeSize || bytes[0] != (byte)MessageType.HandshakeChallenge)
        {
            throw new HandshakeException("malformed challenge");
        }

        return (BinaryPrimitives.ReadUInt64BigEndian(bytes.AsSpan(1)), bytes[(1 + sizeof(ulong))..]);
    }

    /// <summary>[type][HMAC]: the dialer's Proof and the listener's Welcome share this layout.</summary>
    internal static byte[] EncodeProof(MessageType type, byte[] proof)
    {
        var bytes = new byte[1 + ProofSize];
        bytes[0] = (byte)type;
        proof.CopyTo(bytes, 1);
        return bytes;
    }

    private static byte[] DecodeProof(byte[] bytes, MessageType type, string what)
    {
        if (bytes.Length != 1 + ProofSize || bytes[0] != (byte)type)
        {
            throw new HandshakeException($"malformed {what}");
        }

        return bytes[1..];
    }

    private static async Task<byte[]> ReadAsync(
        PeerConnection connection, string what, CancellationToken cancellationToken, string? whenClosed = null)
    {
        try
        {
            return await connection.ReadFrameAsync(MaxFrameBytes, cancellationToken).ConfigureAwait(false);
        }
        catch (ProtocolException ex)
        {
            throw new HandshakeException($"malformed {what}: {ex.Message}", ex);
        }
        catch (EndOfStreamException ex)
        {
            throw new HandshakeException(whenClosed ?? $"connection closed while waiting for the {what}", ex);
        }
    }

    internal static byte[] Transcript(string clusterId, ulong dialerId, ulong listenerId, byte[] dialerNonce, byte[] listenerNonce)
    {
        var id = Encoding.UTF8.GetBytes(clusterId);
        var bytes = new byte[2 + id.Length + 16 + (2 * NonceSize)];
        bytes[0] = Frame.Version;
        bytes[1] = checked((byte)id.Length);
        id.CopyTo(bytes, 2);
        BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(2 + id.Length), dialerId);
        BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(10 + id.Length), listenerId);
        dialerNonce.CopyTo(bytes, 18 + id.Length);
        listenerNonce.CopyTo(bytes, 18 + id.Length + NonceSize);
        return bytes;
    }

    internal static byte[] Prove(byte[] secret, byte[] label, byte[] transcript) =>
        HMACSHA256.HashData(secret, (byte[])[.. label, .. transcript]);
}

using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace RaftMQ.Transport;

/// <summary>A handshake that did not prove the peer is a member of this cluster.</summary>
internal sealed class HandshakeException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Mutual challenge–response authentication run on every new connection before any Raft message is read.
/// The dialer sends Hello(version, cluster id, dialer id, listener id, dialer nonce); the listener answers
/// Challenge(listener id, listener nonce, listener proof); the dialer answers Proof(dialer proof); the listener
/// answers Welcome. A proof is HMAC-SHA256(secret, role label ‖ transcript) where the transcript holds the
/// version, cluster id, both ids and both nonces: fresh nonces on both sides make a recorded proof useless
/// later, and the role label stops a listener's proof being reflected back as a dialer's.
/// </summary>
internal static class Handshake
{
    public const int NonceSize = 32;
    public const int ProofSize = 32;

    /// <summary>Cap on handshake frames: an unauthenticated peer cannot make this node buffer more.</summary>
    public const int MaxFrameBytes = 512;

    internal static readonly byte[] DialerLabel = "RaftMQ/peer-handshake/dialer\0"u8.ToArray();
    private static readonly byte[] ListenerLabel = "RaftMQ/peer-handshake/listener\0"u8.ToArray();

    /// <summary>Runs the dialer's side on <paramref name="connection"/> to reach <paramref name="peerId"/>.</summary>
    public static async Task DialAsync(PeerConnection connection, TcpTransportOptions options, ulong peerId, CancellationToken cancellationToken)
    {
        var dialerNonce = RandomNumberGenerator.GetBytes(NonceSize);
        await connection.WriteFrameAsync(EncodeHello(Frame.Version, options.ClusterId, options.NodeId, peerId, dialerNonce), cancellationToken)
            .ConfigureAwait(false);

        var challenge = await ReadAsync(connection, "challenge", cancellationToken).ConfigureAwait(false);
        var (listenerId, listenerNonce, listenerProof) = DecodeChallenge(challenge);
        if (listenerId != peerId)
        {
            throw new HandshakeException($"expected node {peerId} but node {listenerId} answered");
        }

        var transcript = Transcript(options.ClusterId, options.NodeId, peerId, dialerNonce, listenerNonce);
        if (!CryptographicOperations.FixedTimeEquals(listenerProof, Prove(options.ClusterSecret, ListenerLabel, transcript)))
        {
            throw new HandshakeException($"node {peerId} failed to prove the cluster secret");
        }

        var proof = new byte[1 + ProofSize];
        proof[0] = (byte)MessageType.HandshakeProof;
        Prove(options.ClusterSecret, DialerLabel, transcript).CopyTo(proof, 1);
        await connection.WriteFrameAsync(proof, cancellationToken).ConfigureAwait(false);

        var welcome = await ReadAsync(connection, "welcome", cancellationToken).ConfigureAwait(false);
        if (welcome.Length != 1 || welcome[0] != (byte)MessageType.HandshakeWelcome)
        {
            throw new HandshakeException("malformed welcome");
        }
    }

    /// <summary>Runs the listener's side; returns the authenticated peer's id.</summary>
    public static async Task<ulong> AcceptAsync(
        PeerConnection connection, TcpTransportOptions options, Func<ulong, bool> isPeer, CancellationToken cancellationToken)
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

        if (!isPeer(hello.DialerId))
        {
            throw new HandshakeException($"node {hello.DialerId} is not a configured peer");
        }

        var listenerNonce = RandomNumberGenerator.GetBytes(NonceSize);
        var transcript = Transcript(options.ClusterId, hello.DialerId, options.NodeId, hello.Nonce, listenerNonce);
        var challenge = new byte[1 + sizeof(ulong) + NonceSize + ProofSize];
        challenge[0] = (byte)MessageType.HandshakeChallenge;
        BinaryPrimitives.WriteUInt64BigEndian(challenge.AsSpan(1), options.NodeId);
        listenerNonce.CopyTo(challenge, 1 + sizeof(ulong));
        Prove(options.ClusterSecret, ListenerLabel, transcript).CopyTo(challenge, 1 + sizeof(ulong) + NonceSize);
        await connection.WriteFrameAsync(challenge, cancellationToken).ConfigureAwait(false);

        var proof = await ReadAsync(connection, "proof", cancellationToken).ConfigureAwait(false);
        if (proof.Length != 1 + ProofSize || proof[0] != (byte)MessageType.HandshakeProof)
        {
            throw new HandshakeException("malformed proof");
        }

        if (!CryptographicOperations.FixedTimeEquals(proof.AsSpan(1), Prove(options.ClusterSecret, DialerLabel, transcript)))
        {
            throw new HandshakeException($"node {hello.DialerId} failed to prove the cluster secret");
        }

        await connection.WriteFrameAsync(new[] { (byte)MessageType.HandshakeWelcome }, cancellationToken).ConfigureAwait(false);
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

    internal static (ulong ListenerId, byte[] Nonce, byte[] Proof) DecodeChallenge(byte[] bytes)
    {
        if (bytes.Length != 1 + sizeof(ulong) + NonceSize + ProofSize || bytes[0] != (byte)MessageType.HandshakeChallenge)
        {
            throw new HandshakeException("malformed challenge");
        }

        return (
            BinaryPrimitives.ReadUInt64BigEndian(bytes.AsSpan(1)),
            bytes[(1 + sizeof(ulong))..(1 + sizeof(ulong) + NonceSize)],
            bytes[(1 + sizeof(ulong) + NonceSize)..]);
    }

    private static async Task<byte[]> ReadAsync(PeerConnection connection, string what, CancellationToken cancellationToken)
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
            throw new HandshakeException($"connection closed while waiting for the {what}", ex);
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

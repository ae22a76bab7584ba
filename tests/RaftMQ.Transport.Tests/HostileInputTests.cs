using System.Buffers.Binary;
using System.Net.Sockets;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using RaftMQ.Raft;
using static RaftMQ.Transport.Tests.TestSupport;

namespace RaftMQ.Transport.Tests;

/// <summary>
/// Bad bytes and bad credentials on the peer port: each closes its own connection with a logged reason, and the
/// node keeps serving its good peers. Node 3 is a configured peer of both nodes whose real transport never runs,
/// so tests can speak for it by hand.
/// </summary>
public sealed class HostileInputTests : IAsyncLifetime
{
    private readonly ListLogger log = new();
    private readonly ReservedPort portOfNode3 = new();
    private TcpTransport[] t = [];

    private TcpTransport A => t[0];

    private TcpTransport B => t[1];

    public async Task InitializeAsync()
    {
        t = await StartClusterAsync(
            2,
            o =>
            {
                o.MaxFrameBytes = 64 * 1024;
                o.Peers[3] = portOfNode3.EndPoint;
            },
            log);
        await AssertExchangeAsync(A, B);
    }

    public async Task DisposeAsync()
    {
        await DisposeAllAsync(t);
        portOfNode3.Dispose();
    }

    [Fact]
    public async Task Garbage_bytes_close_the_connection()
    {
        using var socket = await ConnectRawAsync(B.LocalEndPoint);
        await socket.SendAsync("GET / HTTP/1.1\r\nHost: raftmq\r\n\r\n"u8.ToArray());
        await AssertClosedByPeerAsync(socket);

        WaitUntil(() => B.Counters.AuthFailures == 1, "the refusal is counted");
        log.Has(LogLevel.Warning, "Authentication failed").ShouldBeTrue();
        await AssertExchangeAsync(A, B);
    }

    [Fact]
    public async Task A_hello_frame_over_the_handshake_cap_closes_the_connection()
    {
        using var socket = await ConnectRawAsync(B.LocalEndPoint);
        await socket.SendAsync(new byte[] { 0, 0, 0x10, 0, Frame.Version });
        await AssertClosedByPeerAsync(socket);

        WaitUntil(() => B.Counters.AuthFailures == 1, "the refusal is counted");
        log.Has(LogLevel.Warning, "exceeds the cap of 512 bytes").ShouldBeTrue();
        await AssertExchangeAsync(A, B);
    }

    [Fact]
    public async Task A_wrong_frame_version_closes_the_connection()
    {
        using var socket = await ConnectRawAsync(B.LocalEndPoint);
        // Version 1 is the earlier handshake, where the listener proved the secret first.
        var hello = Hello(3, 2);
        byte[] frame = [0, 0, 0, (byte)hello.Length, 1, .. hello];
        await socket.SendAsync(frame);
        await AssertClosedByPeerAsync(socket);

        WaitUntil(() => B.Counters.AuthFailures == 1, "the refusal is counted");
        log.Has(LogLevel.Warning, $"Unsupported frame version 1 (this node speaks {Frame.Version})").ShouldBeTrue();
        await AssertExchangeAsync(A, B);
    }

    [Fact]
    public async Task A_hello_of_another_protocol_version_is_refused()
    {
        await using var connection = await PeerConnection.ConnectAsync(B.LocalEndPoint, CancellationToken.None);
        var nonce = RandomNumberGenerator.GetBytes(Handshake.NonceSize);
        await connection.WriteFrameAsync(Handshake.EncodeHello(Frame.Version - 1, ClusterId, 3, 2, nonce), CancellationToken.None);
        await AssertClosedAsync(connection);

        WaitUntil(() => B.Counters.AuthFailures == 1, "the refusal is counted");
        log.Has(LogLevel.Warning, $"protocol version {Frame.Version - 1} is not supported (this node speaks {Frame.Version})").ShouldBeTrue();
        await AssertExchangeAsync(A, B);
    }

    [Fact]
    public async Task A_stranger_gets_a_nonce_and_nothing_derived_from_the_secret()
    {
        // Everything a stranger can put in a hello is public (cluster id, node ids): the answer must not let it test
        // guesses of the secret offline, so the challenge is exactly an id and a fresh nonce, and a wrong proof ends
        // the connection with nothing more sent.
        await using var connection = await PeerConnection.ConnectAsync(B.LocalEndPoint, CancellationToken.None);
        await connection.WriteFrameAsync(Hello(3, 2), CancellationToken.None);
        var challenge = await connection.ReadFrameAsync(512, CancellationToken.None);
        challenge.Length.ShouldBe(1 + sizeof(ulong) + Handshake.NonceSize);
        challenge[0].ShouldBe((byte)MessageType.HandshakeChallenge);
        BinaryPrimitives.ReadUInt64BigEndian(challenge.AsSpan(1)).ShouldBe(2UL);

        await connection.WriteFrameAsync(Handshake.EncodeProof(MessageType.HandshakeProof, new byte[Handshake.ProofSize]), CancellationToken.None);
        await AssertClosedAsync(connection);
        WaitUntil(() => B.Counters.AuthFailures == 1, "the refusal is counted");
        log.Has(LogLevel.Warning, "node 3 failed to prove the cluster secret").ShouldBeTrue();
    }

    [Fact]
    public async Task A_listener_with_the_wrong_secret_is_refused_by_the_dialer()
    {
        // A listener that does not know the secret answers the challenge and then welcomes with a proof of its own
        // key: the dialer must refuse it and send nothing else.
        using var listener = new TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var wrongSecret = "a listener that is not of this cluster"u8.ToArray();
        var fake = Task.Run(async () =>
        {
            await using var accepted = new PeerConnection(await listener.AcceptSocketAsync());
            var hello = Handshake.DecodeHello(await accepted.ReadFrameAsync(512, CancellationToken.None));
            var listenerNonce = RandomNumberGenerator.GetBytes(Handshake.NonceSize);
            await accepted.WriteFrameAsync(Handshake.EncodeChallenge(2, listenerNonce), CancellationToken.None);
            await accepted.ReadFrameAsync(512, CancellationToken.None);
            var transcript = Handshake.Transcript(ClusterId, hello.DialerId, 2, hello.Nonce, listenerNonce);
            await accepted.WriteFrameAsync(
                Handshake.EncodeProof(MessageType.HandshakeWelcome, Handshake.Prove(wrongSecret, Handshake.ListenerLabel, transcript)),
                CancellationToken.None);
        });

        await using var connection = await PeerConnection.ConnectAsync(listener.LocalEndpoint, CancellationToken.None);
        using var cts = new CancellationTokenSource(Deadline);
        var refusal = await Should.ThrowAsync<HandshakeException>(() => Handshake.DialAsync(connection, Options(3), 2, cts.Token));
        refusal.Message.ShouldBe("node 2 failed to prove the cluster secret");
        await fake;
    }

    [Fact]
    public async Task A_malformed_hello_closes_the_connection()
    {
        await using var connection = await PeerConnection.ConnectAsync(B.LocalEndPoint, CancellationToken.None);
        await connection.WriteFrameAsync(new byte[] { (byte)MessageType.HandshakeHello, Frame.Version, 200, 1, 2 }, CancellationToken.None);
        await AssertClosedAsync(connection);

        WaitUntil(() => B.Counters.AuthFailures == 1, "the refusal is counted");
        log.Has(LogLevel.Warning, "malformed hello").ShouldBeTrue();
        await AssertExchangeAsync(A, B);
    }

    [Fact]
    public async Task A_wrong_cluster_id_is_refused()
    {
        await using var connection = await PeerConnection.ConnectAsync(B.LocalEndPoint, CancellationToken.None);
        await connection.WriteFrameAsync(Hello(3, 2, clusterId: "another-cluster"), CancellationToken.None);
        await AssertClosedAsync(connection);

        WaitUntil(() => B.Counters.AuthFailures == 1, "the refusal is counted");
        log.Has(LogLevel.Warning, "cluster id 'another-cluster' is not this cluster's").ShouldBeTrue();
        await AssertExchangeAsync(A, B);
    }

    [Fact]
    public async Task An_unknown_node_id_is_refused()
    {
        await using var connection = await PeerConnection.ConnectAsync(B.LocalEndPoint, CancellationToken.None);
        await connection.WriteFrameAsync(Hello(99, 2), CancellationToken.None);
        await AssertClosedAsync(connection);

        WaitUntil(() => B.Counters.AuthFailures == 1, "the refusal is counted");
        log.Has(LogLevel.Warning, "node 99 is not a configured peer").ShouldBeTrue();
        await AssertExchangeAsync(A, B);
    }

    [Fact]
    public async Task A_dialer_with_the_wrong_secret_is_refused_by_the_listener()
    {
        await using var connection = await PeerConnection.ConnectAsync(B.LocalEndPoint, CancellationToken.None);
        var nonce = RandomNumberGenerator.GetBytes(Handshake.NonceSize);
        await connection.WriteFrameAsync(Handshake.EncodeHello(Frame.Version, ClusterId, 3, 2, nonce), CancellationToken.None);
        var (_, listenerNonce) = Handshake.DecodeChallenge(await connection.ReadFrameAsync(512, CancellationToken.None));
        var wrongSecret = "not the cluster's secret at all"u8.ToArray();
        var proof = Handshake.Prove(wrongSecret, Handshake.DialerLabel, Handshake.Transcript(ClusterId, 3, 2, nonce, listenerNonce));
        await connection.WriteFrameAsync((byte[])[(byte)MessageType.HandshakeProof, .. proof], CancellationToken.None);
        await AssertClosedAsync(connection);

        WaitUntil(() => B.Counters.AuthFailures == 1, "the refusal is counted");
        log.Has(LogLevel.Warning, "node 3 failed to prove the cluster secret").ShouldBeTrue();
        await AssertExchangeAsync(A, B);
    }

    [Fact]
    public async Task A_transport_with_the_wrong_secret_delivers_nothing()
    {
        var options = Options(3, secret: "a different secret, same length!!!!"u8.ToArray());
        options.Peers[2] = B.LocalEndPoint;
        var receivedBefore = B.Counters.MessagesReceived;
        await using var c = new TcpTransport(options, log);
        await c.StartAsync();
        c.Send(new Heartbeat(3, 2, 1, 1, 0));

        // The listener refuses the dialer's proof and closes without a proof of its own; both sides count it.
        WaitUntil(() => c.Counters.AuthFailures >= 1 && B.Counters.AuthFailures >= 1, "both sides refuse the handshake");
        log.Has(LogLevel.Warning, "node 3 failed to prove the cluster secret").ShouldBeTrue();
        WaitUntil(() => log.Has(LogLevel.Warning, "node 2 closed the connection instead of a welcome"), "the dialer logs why");
        B.Counters.InboundAccepts.ShouldBe(1, "only node 1 ever authenticated");
        c.Counters.OutboundConnects.ShouldBe(0);
        await AssertExchangeAsync(A, B);
        WaitUntil(() => B.Counters.MessagesReceived >= receivedBefore + 1, "node 1's message is counted");
        B.Counters.MessagesReceived.ShouldBe(receivedBefore + 1, "only node 1's message arrived, node 3's never");
    }

    [Fact]
    public async Task A_replayed_proof_is_refused()
    {
        var nonce = RandomNumberGenerator.GetBytes(Handshake.NonceSize);
        byte[] recordedProof;
        await using (var first = await PeerConnection.ConnectAsync(B.LocalEndPoint, CancellationToken.None))
        {
            await first.WriteFrameAsync(Handshake.EncodeHello(Frame.Version, ClusterId, 3, 2, nonce), CancellationToken.None);
            var (_, listenerNonce) = Handshake.DecodeChallenge(await first.ReadFrameAsync(512, CancellationToken.None));
            recordedProof = Handshake.Prove(Secret, Handshake.DialerLabel, Handshake.Transcript(ClusterId, 3, 2, nonce, listenerNonce));
            await first.WriteFrameAsync((byte[])[(byte)MessageType.HandshakeProof, .. recordedProof], CancellationToken.None);
            var welcome = await first.ReadFrameAsync(512, CancellationToken.None);
            welcome[0].ShouldBe((byte)MessageType.HandshakeWelcome);
            welcome[1..].ShouldBe(Handshake.Prove(Secret, Handshake.ListenerLabel, Handshake.Transcript(ClusterId, 3, 2, nonce, listenerNonce)));
            // The listener counts the accept after it sent the welcome; closing before then would let it see the
            // connection gone and count nothing (the count below would then miss it, on a busy machine).
            WaitUntil(() => B.Counters.InboundAccepts == 2, "the first handshake is accepted");
        }

        // Same hello, same proof: the listener's fresh nonce makes the recording worthless.
        await using var replay = await PeerConnection.ConnectAsync(B.LocalEndPoint, CancellationToken.None);
        await replay.WriteFrameAsync(Handshake.EncodeHello(Frame.Version, ClusterId, 3, 2, nonce), CancellationToken.None);
        await replay.ReadFrameAsync(512, CancellationToken.None);
        await replay.WriteFrameAsync((byte[])[(byte)MessageType.HandshakeProof, .. recordedProof], CancellationToken.None);
        await AssertClosedAsync(replay);

        WaitUntil(() => B.Counters.AuthFailures == 1, "the replay is refused");
        B.Counters.InboundAccepts.ShouldBe(2);
    }

    [Fact]
    public async Task An_oversized_frame_after_authentication_closes_the_connection()
    {
        await using var connection = await AuthenticateAsNode3Async();
        var header = new byte[Frame.HeaderSize];
        BinaryPrimitives.WriteUInt32BigEndian(header, 64 * 1024 + 1);
        header[4] = Frame.Version;
        await connection.Writer.WriteAsync(header);
        await AssertClosedAsync(connection);

        WaitUntil(() => B.Counters.ProtocolErrors == 1, "the protocol error is counted");
        log.Has(LogLevel.Warning, "exceeds the cap of 65536 bytes").ShouldBeTrue();
        await AssertExchangeAsync(A, B);
    }

    [Fact]
    public async Task A_garbled_message_after_authentication_closes_the_connection()
    {
        await using var connection = await AuthenticateAsNode3Async();
        await connection.WriteFrameAsync(new byte[] { 42, 1, 2, 3 }, CancellationToken.None);
        await AssertClosedAsync(connection);

        WaitUntil(() => B.Counters.ProtocolErrors == 1, "the protocol error is counted");
        log.Has(LogLevel.Warning, "Truncated message").ShouldBeTrue();
        await AssertExchangeAsync(A, B);
    }

    [Fact]
    public async Task A_message_claiming_another_sender_is_dropped()
    {
        await using var connection = await AuthenticateAsNode3Async();
        await connection.WriteFrameAsync(RaftMessageCodec.Encode(new Heartbeat(From: 1, To: 2, 9, 9, 9)), CancellationToken.None);
        await connection.WriteFrameAsync(RaftMessageCodec.Encode(new Heartbeat(From: 3, To: 1, 9, 9, 9)), CancellationToken.None);
        await connection.WriteFrameAsync(RaftMessageCodec.Encode(new Heartbeat(From: 3, To: 2, 9, 9, 9)), CancellationToken.None);

        (await B.ReceiveAsync()).ShouldBe(new Heartbeat(3, 2, 9, 9, 9));
        B.Counters.SpoofedDrops.ShouldBe(2);
        B.Counters.ProtocolErrors.ShouldBe(0);
    }

    /// <summary>
    /// A seeded random run over the peer protocol after authentication: connection after connection, a peer that
    /// proved the secret sends a random mix of good messages, good messages with bytes flipped, cut short or padded,
    /// noise, frames claiming more than the cap and frames of another version. Whatever it sends, the transport closes
    /// at most that connection and goes on serving its real peer; a frame over the cap or of another version always
    /// closes it. 60 connections by default, 1,000 with <c>RAFTMQ_SOAK=1</c>; <c>RAFTMQ_SEED=n</c> replays one run.
    /// </summary>
    [Fact]
    public async Task Random_frames_from_an_authenticated_peer_never_stop_the_transport()
    {
        var seed = Environment.GetEnvironmentVariable("RAFTMQ_SEED") is { } s ? int.Parse(s, System.Globalization.CultureInfo.InvariantCulture) : Environment.TickCount;
        var random = new Random(seed);
        var connections = Environment.GetEnvironmentVariable("RAFTMQ_SOAK") == "1" ? 1_000 : 60;
        var fatal = 0; // connections that sent a frame that must close them
        for (var c = 0; c < connections; c++)
        {
            await using var connection = await AuthenticateAsNode3Async();
            var closesIt = false;
            try
            {
                for (var f = random.Next(1, 8); f > 0 && !closesIt; f--)
                {
                    var good = RaftMessageCodec.Encode(RandomMessage(random));
                    switch (random.Next(7))
                    {
                        case 0:
                        case 1:
                            await connection.WriteFrameAsync(good, CancellationToken.None);
                            break;
                        case 2:
                            var flipped = good.ToArray();
                            for (var k = random.Next(1, 4); k > 0; k--) flipped[random.Next(flipped.Length)] ^= (byte)random.Next(1, 256);
                            await connection.WriteFrameAsync(flipped, CancellationToken.None);
                            break;
                        case 3:
                            await connection.WriteFrameAsync(good.AsMemory(0, random.Next(good.Length)), CancellationToken.None);
                            break;
                        case 4:
                            var noise = new byte[random.Next(0, 2_000)];
                            random.NextBytes(noise);
                            await connection.WriteFrameAsync(noise, CancellationToken.None);
                            break;
                        case 5:
                            var header = new byte[Frame.HeaderSize];
                            BinaryPrimitives.WriteUInt32BigEndian(header, (uint)random.NextInt64(64 * 1024 + 1, uint.MaxValue + 1L));
                            header[4] = Frame.Version;
                            await connection.Writer.WriteAsync(header);
                            closesIt = true;
                            break;
                        default:
                            var other = new byte[Frame.HeaderSize + 4];
                            BinaryPrimitives.WriteUInt32BigEndian(other, 4);
                            other[4] = (byte)(Frame.Version + random.Next(1, 255));
                            await connection.Writer.WriteAsync(other);
                            closesIt = true;
                            break;
                    }
                }
            }
            catch (IOException)
            {
                // Closed by the node after an earlier bad frame of this connection: as it should.
            }
            if (closesIt)
            {
                fatal++;
                await AssertClosedAsync(connection);
            }
        }
        WaitUntil(() => B.Counters.ProtocolErrors >= fatal, $"every frame over the cap or of another version is refused (seed {seed})");
        await AssertExchangeAsync(A, B);
    }

    private static RaftMessage RandomMessage(Random random)
    {
        ulong Small() => (ulong)random.Next(0, 1_000);
        return random.Next(4) switch
        {
            0 => new Heartbeat(3, 2, Small(), Small(), Small()),
            1 => new RequestVote(3, 2, Small(), Small(), Small(), random.Next(2) == 0),
            2 => random.Next(2) == 0
                ? new AppendEntriesResponse(3, 2, Small(), true, Small(), Small(), Small())
                : new AppendEntriesResponse(3, 2, Small(), false, Small(), 0, 0, random.Next(2) == 0),
            _ => new AppendEntries(3, 2, Small(), Small(), Small(),
                [.. Enumerable.Range(0, random.Next(0, 4)).Select(i => new Entry(Small() + (ulong)i, Small(), EntryType.Command, new byte[random.Next(0, 200)]))],
                Small()),
        };
    }

    private static byte[] Hello(ulong dialer, ulong listener, string clusterId = ClusterId) =>
        Handshake.EncodeHello(Frame.Version, clusterId, dialer, listener, RandomNumberGenerator.GetBytes(Handshake.NonceSize));

    private static async Task AssertClosedAsync(PeerConnection connection)
    {
        using var cts = new CancellationTokenSource(Deadline);
        try
        {
            while (true)
            {
                var result = await connection.Reader.ReadAsync(cts.Token);
                result.Buffer.IsEmpty.ShouldBeTrue("nothing is sent to a refused peer");
                if (result.IsCompleted)
                {
                    return;
                }

                connection.Reader.AdvanceTo(result.Buffer.End);
            }
        }
        catch (IOException ex) when (ex.InnerException is SocketException)
        {
            // Reset: closed with our bytes unread.
        }
    }

    private async Task<PeerConnection> AuthenticateAsNode3Async()
    {
        var options = Options(3);
        var connection = await PeerConnection.ConnectAsync(B.LocalEndPoint, CancellationToken.None);
        using var cts = new CancellationTokenSource(Deadline);
        await Handshake.DialAsync(connection, options, 2, cts.Token);
        return connection;
    }
}

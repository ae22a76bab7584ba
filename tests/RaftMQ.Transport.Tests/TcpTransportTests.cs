using RaftMQ.Raft;
using static RaftMQ.Transport.Tests.TestSupport;

namespace RaftMQ.Transport.Tests;

public sealed class TcpTransportTests
{
    [Fact]
    public async Task Two_transports_exchange_every_message_type_in_order()
    {
        var t = await StartClusterAsync(2);
        try
        {
            RaftMessage[] toB =
            [
                new RequestVote(1, 2, 5, 10, 4, PreVote: true),
                new AppendEntries(1, 2, 5, 10, 4, [new Entry(11, 5, EntryType.NoOp, ReadOnlyMemory<byte>.Empty), new Entry(12, 5, EntryType.Command, new byte[] { 1, 2, 3 })], 9),
                new Heartbeat(1, 2, 5, 12, 3),
                new ReadIndexResponse(1, 2, 5, 77, 12),
            ];
            RaftMessage[] toA =
            [
                new RequestVoteResponse(2, 1, 5, Granted: true, PreVote: true),
                new AppendEntriesResponse(2, 1, 5, Reject: false, 12, 0, 0),
                new HeartbeatResponse(2, 1, 5, 3),
                new ReadIndexRequest(2, 1, 5, 77),
            ];
            foreach (var m in toB) t[0].Send(m);
            foreach (var m in toA) t[1].Send(m);

            foreach (var expected in toB)
            {
                MessageGenerators.Same(expected, await t[1].ReceiveAsync()).ShouldBeTrue();
            }

            foreach (var expected in toA)
            {
                MessageGenerators.Same(expected, await t[0].ReceiveAsync()).ShouldBeTrue();
            }

            WaitUntil(
                () => t[0].Counters.MessagesSent == 4 && t[1].Counters.MessagesSent == 4 && t[0].Counters.MessagesReceived == 4,
                "both sides count their sends and receipts");
            t[0].Counters.OutboundConnects.ShouldBe(1);
            t[0].Counters.InboundAccepts.ShouldBe(1);
        }
        finally
        {
            await DisposeAllAsync(t);
        }
    }

    [Fact]
    public async Task A_port_another_transport_listens_on_is_refused_and_a_closed_ones_port_can_be_taken_again()
    {
        // .NET's ReuseAddress sets SO_REUSEPORT too on Unix, which let a second node (another cluster's, or the same
        // node started twice) listen on a running node's peer port and share its connections, with no error.
        var first = new TcpTransport(Options(1));
        await first.StartAsync();
        var port = first.LocalEndPoint.Port;
        try
        {
            var second = new TcpTransport(Options(2, port));
            var refused = await Should.ThrowAsync<IOException>(() => second.StartAsync());
            refused.Message.ShouldStartWith($"cannot listen for peers on 127.0.0.1:{port}: ");
            await second.DisposeAsync();
        }
        finally
        {
            await first.DisposeAsync();
        }

        // A restarted node rebinds its port at once (SO_REUSEADDR is still set).
        var again = new TcpTransport(Options(1, port));
        await again.StartAsync();
        again.LocalEndPoint.Port.ShouldBe(port);
        await again.DisposeAsync();
    }

    [Fact]
    public async Task A_receiver_gets_the_queued_messages_first_then_every_later_one_in_order()
    {
        var t = await StartClusterAsync(2);
        try
        {
            // Two arrive before the receiver is set (queued on Inbound), three after (handed over directly).
            t[0].Send(new Heartbeat(1, 2, 1, 1, 1));
            t[0].Send(new Heartbeat(1, 2, 1, 2, 2));
            WaitUntil(() => t[1].Counters.MessagesReceived == 2, "the first two arrive on the queue");
            var received = new System.Collections.Concurrent.ConcurrentQueue<RaftMessage>();
            t[1].SetReceiver(received.Enqueue);
            received.Count.ShouldBe(2, "the queued messages are handed over at once");
            for (ulong i = 3; i <= 5; i++) t[0].Send(new Heartbeat(1, 2, 1, i, i));
            WaitUntil(() => received.Count == 5, "the later three reach the receiver");
            received.Select(m => ((Heartbeat)m).Commit).ShouldBe([1UL, 2, 3, 4, 5]);
            t[1].Inbound.TryRead(out _).ShouldBeFalse("nothing is left on the queue");
        }
        finally
        {
            await DisposeAllAsync(t);
        }
    }

    [Fact]
    public async Task Three_transports_each_reach_both_others()
    {
        var t = await StartClusterAsync(3);
        try
        {
            const int perPeer = 200;
            foreach (var from in t)
            {
                foreach (var to in t.Where(x => x != from))
                {
                    for (ulong i = 1; i <= perPeer; i++)
                    {
                        from.Send(new Heartbeat(from.NodeId, to.NodeId, 1, i, 0));
                    }
                }
            }

            foreach (var node in t)
            {
                var last = new Dictionary<ulong, ulong>();
                for (var n = 0; n < 2 * perPeer; n++)
                {
                    var m = (Heartbeat)await node.ReceiveAsync();
                    m.To.ShouldBe(node.NodeId);
                    m.Commit.ShouldBe(last.GetValueOrDefault(m.From) + 1, "messages from one peer arrive in order");
                    last[m.From] = m.Commit;
                }

                last.Keys.Order().ShouldBe(t.Select(x => x.NodeId).Where(id => id != node.NodeId).Order());
            }
        }
        finally
        {
            await DisposeAllAsync(t);
        }
    }

    [Fact]
    public async Task A_peer_down_at_boot_is_reached_once_it_starts()
    {
        using var reserved = new ReservedPort();
        var portOfB = reserved.Port;
        var optionsA = Options(1);
        optionsA.Peers[2] = Loopback(portOfB);
        await using var a = new TcpTransport(optionsA);
        await a.StartAsync();
        a.Send(new Heartbeat(1, 2, 1, 1, 0));
        a.Send(new Heartbeat(1, 2, 1, 2, 0));

        var optionsB = Options(2, portOfB);
        optionsB.Peers[1] = a.LocalEndPoint;
        await using var b = new TcpTransport(optionsB);
        await b.StartAsync();

        ((Heartbeat)await b.ReceiveAsync()).Commit.ShouldBe(1UL);
        ((Heartbeat)await b.ReceiveAsync()).Commit.ShouldBe(2UL);
        await AssertExchangeAsync(a, b);
    }

    [Fact]
    public async Task A_peer_that_dies_mid_stream_and_restarts_is_reconnected()
    {
        var t = await StartClusterAsync(2);
        var a = t[0];
        var b = t[1];
        try
        {
            await AssertExchangeAsync(a, b);
            var portOfB = b.LocalEndPoint.Port;
            for (ulong i = 0; i < 1000; i++)
            {
                a.Send(new Heartbeat(1, 2, 1, i, 0));
            }

            await b.DisposeAsync();
            for (ulong i = 1000; i < 2000; i++)
            {
                a.Send(new Heartbeat(1, 2, 1, i, 0));
            }

            var optionsB = Options(2, portOfB);
            optionsB.Peers[1] = a.LocalEndPoint;
            b = t[1] = new TcpTransport(optionsB);
            await b.StartAsync();

            WaitUntil(() => a.Counters.OutboundConnects >= 2, "node 1 reconnects to the restarted node 2");
            await AssertExchangeAsync(a, b);
        }
        finally
        {
            await DisposeAllAsync(t);
        }
    }

    [Fact]
    public async Task A_link_is_reported_down_as_soon_as_its_peer_dies_and_up_again_once_redialled()
    {
        var t = await StartClusterAsync(2);
        var a = t[0];
        var b = t[1];
        try
        {
            var downs = new System.Collections.Concurrent.ConcurrentQueue<ulong>();
            a.SetLinkDownHandler(downs.Enqueue);
            await AssertExchangeAsync(a, b);
            a.IsLinkDown(2).ShouldBeFalse();
            a.IsLinkDown(9).ShouldBeFalse("an unknown peer has no link to be down");
            var portOfB = b.LocalEndPoint.Port;
            downs.ShouldBeEmpty();

            // Nothing is sent after this: the idle link learns of the closed connection by watching it.
            await b.DisposeAsync();
            WaitUntil(() => a.IsLinkDown(2), "node 1 sees its link to the stopped node 2 go down");
            WaitUntil(() => downs.Count == 1, "the link-down handler hears of it");

            var optionsB = Options(2, portOfB);
            optionsB.Peers[1] = a.LocalEndPoint;
            b = t[1] = new TcpTransport(optionsB);
            await b.StartAsync();
            WaitUntil(() => !a.IsLinkDown(2), "node 1's link is up again once it redials the restarted node 2");
            await AssertExchangeAsync(a, b);
            // Once per outage, not once per failed redial in between.
            downs.ShouldBe([2UL]);
        }
        finally
        {
            await DisposeAllAsync(t);
        }
    }

    [Fact]
    public async Task A_full_send_queue_drops_its_oldest_messages()
    {
        using var reserved = new ReservedPort();
        var portOfB = reserved.Port;
        var optionsA = Options(1);
        optionsA.SendQueueCapacity = 4;
        optionsA.Peers[2] = Loopback(portOfB);
        await using var a = new TcpTransport(optionsA);
        await a.StartAsync();
        for (ulong i = 1; i <= 10; i++)
        {
            a.Send(new Heartbeat(1, 2, 1, i, 0));
        }

        a.Counters.SendQueueDrops.ShouldBe(6);

        var optionsB = Options(2, portOfB);
        optionsB.Peers[1] = a.LocalEndPoint;
        await using var b = new TcpTransport(optionsB);
        await b.StartAsync();
        for (ulong i = 7; i <= 10; i++)
        {
            ((Heartbeat)await b.ReceiveAsync()).Commit.ShouldBe(i);
        }

        WaitUntil(() => a.Counters.MessagesSent == 4, "the four kept messages are flushed");
        b.Inbound.TryRead(out _).ShouldBeFalse("only the newest four were kept");
    }

    [Fact]
    public async Task The_send_queue_of_a_peer_is_bounded_in_bytes_as_well_as_messages()
    {
        using var dead = new ReservedPort();
        var options = Options(1);
        options.Peers[2] = dead.EndPoint;
        var message = new AppendEntries(1, 2, 1, 0, 1, [new Entry(1, 1, EntryType.Command, new byte[1000])], 0);
        var size = RaftMessageCodec.GetSize(message) + Frame.HeaderSize;
        options.MaxQueuedBytesPerPeer = 10 * size + size / 2;
        await using var a = new TcpTransport(options);
        await a.StartAsync();
        for (int i = 0; i < 100; i++)
        {
            a.Send(message);
        }

        // Ten fit under the byte bound (far below the 4096-message bound); the other ninety are dropped.
        a.Counters.SendQueueDrops.ShouldBe(90);
    }

    [Fact]
    public async Task Sending_to_a_dead_or_unknown_peer_never_throws_or_blocks()
    {
        var options = Options(1);
        options.SendQueueCapacity = 100;
        using var dead = new ReservedPort();
        options.Peers[2] = dead.EndPoint;
        var a = new TcpTransport(options);
        await a.StartAsync();

        const int count = 100_000;
        for (ulong i = 0; i < count; i++)
        {
            a.Send(new AppendEntries(1, 2, 1, i, 1, [], i));
        }

        a.Send(new Heartbeat(1, 99, 1, 0, 0));
        a.Counters.SendQueueDrops.ShouldBe(count - 100);
        a.Counters.UnknownPeerDrops.ShouldBe(1);

        await a.DisposeAsync();
        a.Send(new Heartbeat(1, 2, 1, 0, 0));
        await a.DisposeAsync();
    }

    [Fact]
    public async Task A_message_over_the_frame_cap_is_dropped_and_the_link_keeps_working()
    {
        var t = await StartClusterAsync(2, o => o.MaxFrameBytes = 4096);
        try
        {
            t[0].Send(new AppendEntries(1, 2, 1, 0, 0, [new Entry(1, 1, EntryType.Command, new byte[5000])], 0));
            await AssertExchangeAsync(t[0], t[1]);
            t[0].Counters.OversizedDrops.ShouldBe(1);
            t[1].Counters.ProtocolErrors.ShouldBe(0);
        }
        finally
        {
            await DisposeAllAsync(t);
        }
    }

    [Fact]
    public async Task Killing_the_leader_while_messages_are_in_flight_disturbs_nobody()
    {
        var t = await StartClusterAsync(3);
        var received = new long[4, 4];
        using var stopDraining = new CancellationTokenSource();
        var drains = t.Skip(1).Select(node => Task.Run(async () =>
        {
            try
            {
                await foreach (var m in node.Inbound.ReadAllAsync(stopDraining.Token))
                {
                    Interlocked.Increment(ref received[m.From, m.To]);
                }
            }
            catch (OperationCanceledException)
            {
            }
        })).ToArray();

        var stopHammering = 0;
        var hammers = t.Select(node => Task.Run(async () =>
        {
            var payload = new byte[256];
            ulong i = 0;
            while (Volatile.Read(ref stopHammering) == 0)
            {
                foreach (var peer in t.Where(p => p.NodeId != node.NodeId))
                {
                    node.Send(new AppendEntries(node.NodeId, peer.NodeId, 1, i, 1, [new Entry(i + 1, 1, EntryType.Command, payload)], i));
                }

                if (++i % 32 == 0)
                {
                    await Task.Yield();
                }
            }
        })).ToArray();

        try
        {
            WaitUntil(() => Volatile.Read(ref received[1, 2]) > 500 && Volatile.Read(ref received[1, 3]) > 500, "the leader's traffic flows");

            // Kill the leader abruptly while its own loop and both followers keep sending.
            await t[0].DisposeAsync();
            var afterKill = Volatile.Read(ref received[2, 3]);
            var backwards = Volatile.Read(ref received[3, 2]);
            WaitUntil(
                () => Volatile.Read(ref received[2, 3]) > afterKill + 500 && Volatile.Read(ref received[3, 2]) > backwards + 500,
                "the surviving nodes keep exchanging");

            Volatile.Write(ref stopHammering, 1);
            await Task.WhenAll(hammers); // rethrows if any Send threw
            hammers.ShouldAllBe(h => h.IsCompletedSuccessfully);
        }
        finally
        {
            Volatile.Write(ref stopHammering, 1);
            await stopDraining.CancelAsync();
            await Task.WhenAll(drains);
            await DisposeAllAsync(t);
        }
    }
}

public sealed class TcpTransportBoundsTests
{
    [Fact]
    public async Task A_peer_moved_to_a_new_endpoint_is_redialled_there()
    {
        var t = await StartClusterAsync(2);
        try
        {
            await AssertExchangeAsync(t[0], t[1]);
            await t[1].DisposeAsync();
            var options = Options(2);
            options.Peers[1] = t[0].LocalEndPoint;
            t[1] = new TcpTransport(options);
            await t[1].StartAsync();

            t[0].SetPeer(2, t[1].LocalEndPoint);
            await AssertExchangeAsync(t[0], t[1]);
        }
        finally
        {
            await DisposeAllAsync(t);
        }
    }

    [Fact]
    public async Task A_removed_peer_can_neither_be_sent_to_nor_connect()
    {
        var t = await StartClusterAsync(2);
        try
        {
            await AssertExchangeAsync(t[0], t[1]);
            await t[1].RemovePeerAsync(1);
            t[1].Send(new Heartbeat(2, 1, 1, 1, 0));
            t[1].Counters.UnknownPeerDrops.ShouldBe(1);

            // Node 1 redials and is refused at the handshake: it is no longer a configured peer of node 2.
            t[0].Send(new Heartbeat(1, 2, 1, 1, 0));
            WaitUntil(() => t[1].Counters.AuthFailures >= 1, "node 2 refuses node 1");
        }
        finally
        {
            await DisposeAllAsync(t);
        }
    }

    [Fact]
    public async Task A_connection_is_refused_at_accept_only_when_every_slot_holds_an_authenticated_peer()
    {
        // Node 2's one slot holds node 1's authenticated connection: there is no handshake to displace.
        var t = await StartClusterAsync(2, o => (o.MaxInboundConnections, o.MaxPendingHandshakes, o.MaxPendingHandshakesPerAddress) = (1, 1, 1));
        try
        {
            await AssertExchangeAsync(t[0], t[1]);
            using var refused = await ConnectRawAsync(t[1].LocalEndPoint);
            await AssertClosedByPeerAsync(refused);
            WaitUntil(() => t[1].Counters.ConnectionsRefused == 1, "the refusal is counted");
            await AssertExchangeAsync(t[0], t[1]);
        }
        finally
        {
            await DisposeAllAsync(t);
        }
    }

    [Fact]
    public async Task A_connection_that_never_completes_the_handshake_is_closed_at_the_deadline()
    {
        var t = await StartClusterAsync(2, o => o.HandshakeTimeout = TimeSpan.FromMilliseconds(200));
        try
        {
            using var silent = await ConnectRawAsync(t[1].LocalEndPoint);
            await AssertClosedByPeerAsync(silent);
            t[1].Counters.AuthFailures.ShouldBe(1);
            await AssertExchangeAsync(t[0], t[1]);
        }
        finally
        {
            await DisposeAllAsync(t);
        }
    }

    [Fact]
    public async Task A_full_inbound_queue_drops_new_messages_and_counts_them()
    {
        var t = await StartClusterAsync(2, o => o.InboundQueueCapacity = 3);
        try
        {
            for (ulong i = 1; i <= 10; i++)
            {
                t[0].Send(new Heartbeat(1, 2, 1, i, 0));
            }

            WaitUntil(() => t[1].Counters.MessagesReceived + t[1].Counters.InboundDrops == 10, "all ten arrive or are dropped");
            t[1].Counters.MessagesReceived.ShouldBe(3);
            t[1].Counters.InboundDrops.ShouldBe(7);
            for (ulong i = 1; i <= 3; i++)
            {
                ((Heartbeat)await t[1].ReceiveAsync()).Commit.ShouldBe(i);
            }
        }
        finally
        {
            await DisposeAllAsync(t);
        }
    }

    [Fact]
    public void Options_without_a_secret_or_cluster_id_are_refused()
    {
        Should.Throw<ArgumentException>(() => new TcpTransport(Options(1, secret: [1, 2, 3]))).Message.ShouldContain("ClusterSecret");
        Should.Throw<ArgumentException>(() => new TcpTransport(Options(1, clusterId: ""))).Message.ShouldContain("ClusterId");
        Should.Throw<ArgumentException>(() => new TcpTransport(Options(0))).Message.ShouldContain("NodeId");
    }
}

public sealed class UnsupportedMessageTests
{
    private sealed record FutureMessage(ulong From, ulong To, ulong Term) : RaftMessage(From, To, Term);

    [Fact]
    public async Task A_message_type_without_an_encoding_is_dropped_without_breaking_the_link()
    {
        RaftMessageCodec.TryGetSize(new FutureMessage(1, 2, 3), out _).ShouldBeFalse();
        var t = await StartClusterAsync(2);
        try
        {
            t[0].Send(new FutureMessage(1, 2, 1));
            await AssertExchangeAsync(t[0], t[1]);
            t[0].Counters.UnsupportedDrops.ShouldBe(1);
            t[0].Counters.OutboundConnects.ShouldBe(1);
        }
        finally
        {
            await DisposeAllAsync(t);
        }
    }

    [Fact]
    public async Task A_peer_named_by_host_name_is_logged_as_host_and_port()
    {
        var log = new ListLogger();
        using var down = new ReservedPort();
        // Every peer dialled by name, as a config whose "ip" is a host name makes the node do; peer 3 never answers.
        var t = await StartClusterAsync(2, o =>
        {
            foreach (var (id, endPoint) in o.Peers.ToList())
            {
                o.Peers[id] = new System.Net.DnsEndPoint("localhost", ((System.Net.IPEndPoint)endPoint).Port);
            }
            if (o.NodeId == 1) o.Peers[3] = new System.Net.DnsEndPoint("localhost", down.Port);
        }, log);
        try
        {
            await AssertExchangeAsync(t[0], t[1]);
            var port2 = t[1].LocalEndPoint.Port;
            WaitUntil(() => log.Has(Microsoft.Extensions.Logging.LogLevel.Information, $"Connected to peer 2 at localhost:{port2}"), "the connection to peer 2 was logged by name");
            WaitUntil(() => log.Has(Microsoft.Extensions.Logging.LogLevel.Warning, $"Peer 3 at localhost:{down.Port} unreachable"), "peer 3 was logged unreachable by name");
            log.Lines.ShouldNotContain(l => l.Message.Contains("Unspecified", StringComparison.Ordinal));
        }
        finally
        {
            await DisposeAllAsync(t);
        }
    }

    [Theory]
    [InlineData("mq-1.example.com", 8568, "mq-1.example.com:8568")]
    [InlineData("fe80::1", 8568, "[fe80::1]:8568")]
    public void A_named_endpoint_is_written_as_host_and_port(string host, int port, string expected) =>
        EndPointText.Of(new System.Net.DnsEndPoint(host, port)).ShouldBe(expected);

    [Fact]
    public void An_address_endpoint_is_written_as_it_writes_itself()
    {
        EndPointText.Of(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 8568)).ShouldBe("127.0.0.1:8568");
        EndPointText.Of(new System.Net.IPEndPoint(System.Net.IPAddress.IPv6Loopback, 8568)).ShouldBe("[::1]:8568");
    }
}

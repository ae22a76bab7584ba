using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using RaftMQ.Raft;
using static RaftMQ.Transport.Tests.TestSupport;

namespace RaftMQ.Transport.Tests;

/// <summary>The bookkeeping of inbound slots: who is evicted, who is refused.</summary>
public sealed class InboundSlotsTests
{
    private static readonly IPAddress A = IPAddress.Parse("10.0.0.1");
    private static readonly IPAddress B = IPAddress.Parse("10.0.0.2");

    [Fact]
    public void A_newcomer_over_the_per_address_bound_evicts_the_oldest_pending_connection_of_its_own_address()
    {
        var slots = new InboundSlots<string>(maxConnections: 10, maxPending: 5, maxPendingPerAddress: 2);
        var evicted = new List<string>();
        slots.Admit(A, "a1", evicted).ShouldNotBeNull();
        slots.Admit(B, "b1", evicted).ShouldNotBeNull();
        slots.Admit(A, "a2", evicted).ShouldNotBeNull();
        evicted.ShouldBeEmpty();

        slots.Admit(A, "a3", evicted).ShouldNotBeNull();
        evicted.ShouldBe(new[] { "a1" });
        slots.Pending.ShouldBe(3);
    }

    [Fact]
    public void A_newcomer_over_the_total_pending_bound_evicts_the_oldest_pending_connection()
    {
        var slots = new InboundSlots<string>(maxConnections: 10, maxPending: 2, maxPendingPerAddress: 2);
        var evicted = new List<string>();
        slots.Admit(A, "a1", evicted);
        slots.Admit(B, "b1", evicted);
        slots.Admit(B, "b2", evicted).ShouldNotBeNull();
        evicted.ShouldBe(new[] { "a1" });
        slots.Pending.ShouldBe(2);
    }

    [Fact]
    public void Authenticated_connections_are_never_evicted_and_a_newcomer_is_refused_only_when_they_fill_every_slot()
    {
        var slots = new InboundSlots<string>(maxConnections: 2, maxPending: 2, maxPendingPerAddress: 2);
        var evicted = new List<string>();
        var p1 = slots.Admit(A, "p1", evicted)!;
        var p2 = slots.Admit(A, "p2", evicted)!;
        slots.Authenticate(p1).ShouldBeTrue();

        // One slot authenticated, one pending: the newcomer displaces the pending one.
        var junk = slots.Admit(B, "junk", evicted);
        junk.ShouldNotBeNull();
        evicted.ShouldBe(new[] { "p2" });
        slots.Authenticate(p2).ShouldBeFalse("an evicted connection cannot become authenticated");
        slots.Release(p2);
        slots.Authenticate(junk).ShouldBeTrue();

        // Both slots authenticated: nothing to displace.
        evicted.Clear();
        slots.Admit(B, "late", evicted).ShouldBeNull();
        evicted.ShouldBeEmpty();

        slots.Release(p1);
        slots.Authenticated.ShouldBe(1);
        slots.Admit(B, "later", evicted).ShouldNotBeNull();
    }

    [Fact]
    public void Released_slots_are_counted_once()
    {
        var slots = new InboundSlots<string>(maxConnections: 4, maxPending: 2, maxPendingPerAddress: 1);
        var evicted = new List<string>();
        var a = slots.Admit(IPAddress.Parse("::ffff:10.0.0.1"), "a", evicted)!;
        slots.Admit(A, "a-again", evicted).ShouldNotBeNull("an IPv4-mapped address is the same address");
        evicted.ShouldBe(new[] { "a" });
        slots.Release(a);
        slots.Release(a);
        slots.Pending.ShouldBe(1);
    }
}

/// <summary>A line per interval per kind, carrying the count of lines held back.</summary>
public sealed class RateLimitedLogTests
{
    [Fact]
    public void The_first_event_logs_at_once_and_the_rest_of_the_interval_is_counted_into_the_next_line()
    {
        var time = new ManualTime();
        var log = new RateLimitedLog(TimeSpan.FromSeconds(10), time);
        log.TryLog(out var suppressed).ShouldBeTrue();
        suppressed.ShouldBe(0);
        for (var i = 0; i < 500; i++)
        {
            log.TryLog(out _).ShouldBeFalse();
        }

        time.Advance(TimeSpan.FromSeconds(9.9));
        log.TryLog(out _).ShouldBeFalse();
        time.Advance(TimeSpan.FromSeconds(0.1));
        log.TryLog(out suppressed).ShouldBeTrue();
        suppressed.ShouldBe(501);
        time.Advance(TimeSpan.FromSeconds(60));
        log.TryLog(out suppressed).ShouldBeTrue();
        suppressed.ShouldBe(0);
        RateLimitedLog.Since(0).ShouldBe(string.Empty);
        RateLimitedLog.Since(501).ShouldContain("501 more");
    }

    private sealed class ManualTime : TimeProvider
    {
        private long now;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => now;

        public void Advance(TimeSpan by) => now += by.Ticks;
    }
}

/// <summary>Floods of junk connections on the peer port: a real peer still gets in promptly, and the log stays short.</summary>
public sealed class ConnectionFloodTests
{
    /// <summary>Long, so that no junk connection times out during a test: only eviction can make room.</summary>
    private static readonly TimeSpan LongHandshake = TimeSpan.FromSeconds(10);

    /// <summary>How soon a restarted peer must be heard: well under the handshake timeout the junk could hold a slot for.</summary>
    private static readonly TimeSpan PeerBound = TimeSpan.FromSeconds(5);

    [Fact]
    public async Task A_restarted_peer_gets_through_a_port_full_of_idle_connections()
    {
        var log = new ListLogger();
        var t = await StartClusterAsync(2, o => o.HandshakeTimeout = LongHandshake, log);
        var junk = new List<Socket>();
        TcpTransport? restarted = null;
        try
        {
            await AssertExchangeAsync(t[0], t[1]);
            await t[0].DisposeAsync();

            // Far more idle connections than every bound (64 open, 16 in their handshake, 8 per address).
            for (var i = 0; i < 300; i++)
            {
                junk.Add(await ConnectRawAsync(t[1].LocalEndPoint));
            }

            WaitUntil(() => t[1].Counters.ConnectionsRefused >= 300 - 8, "the idle connections displaced each other");

            var clock = Stopwatch.StartNew();
            restarted = new TcpTransport(PeerOf(t[1]));
            await restarted.StartAsync();
            await AssertDeliveredWithinAsync(restarted, t[1], PeerBound - clock.Elapsed);

            LinesFrom(log, "make room").ShouldBeLessThanOrEqualTo(2, "evictions are logged at most once per interval");
        }
        finally
        {
            junk.ForEach(s => s.Dispose());
            if (restarted is not null) await restarted.DisposeAsync();
            await DisposeAllAsync(t);
        }
    }

    [Fact]
    public async Task A_restarted_peer_gets_through_a_continuous_flood_from_another_address()
    {
        var log = new ListLogger();
        var t = await StartClusterAsync(2, o => o.HandshakeTimeout = LongHandshake, log);
        using var stopFlood = new CancellationTokenSource();
        var opened = 0;
        var flood = Task.Run(async () =>
        {
            // Junk from 127.0.0.2, as fast as one task can open it, half of it speaking garbage, until the peer is in.
            var sockets = new List<Socket>();
            try
            {
                while (!stopFlood.IsCancellationRequested && sockets.Count < 5000)
                {
                    var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                    sockets.Add(s);
                    s.Bind(new IPEndPoint(IPAddress.Parse("127.0.0.2"), 0));
                    await s.ConnectAsync(t[1].LocalEndPoint, stopFlood.Token);
                    if (sockets.Count % 2 == 0)
                    {
                        await s.SendAsync("GET / HTTP/1.1\r\n\r\n"u8.ToArray(), SocketFlags.None, stopFlood.Token);
                    }

                    Interlocked.Increment(ref opened);
                }
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException)
            {
            }
            finally
            {
                sockets.ForEach(s => s.Dispose());
            }
        });
        TcpTransport? restarted = null;
        try
        {
            await AssertExchangeAsync(t[0], t[1]);
            await t[0].DisposeAsync();
            WaitUntil(() => Volatile.Read(ref opened) >= 200, "the flood is under way");

            var clock = Stopwatch.StartNew();
            restarted = new TcpTransport(PeerOf(t[1]));
            await restarted.StartAsync();
            await AssertDeliveredWithinAsync(restarted, t[1], PeerBound - clock.Elapsed);
            Volatile.Read(ref opened).ShouldBeGreaterThan(2 * 64, "the flood outnumbered the bounds while the peer reconnected");

            await stopFlood.CancelAsync();
            await flood;
            t[1].Counters.ConnectionsRefused.ShouldBeGreaterThan(0);
            LinesFrom(log, "make room").ShouldBeLessThanOrEqualTo(2, "evictions are logged at most once per interval");
            LinesFrom(log, "Authentication failed").ShouldBeLessThanOrEqualTo(2, "failed handshakes are logged at most once per interval");
        }
        finally
        {
            await stopFlood.CancelAsync();
            await flood;
            if (restarted is not null) await restarted.DisposeAsync();
            await DisposeAllAsync(t);
        }
    }

    [Fact]
    public async Task Failed_handshakes_are_logged_once_per_interval_with_the_count_held_back()
    {
        var log = new ListLogger();
        var t = await StartClusterAsync(1, o => o.RefusalLogInterval = TimeSpan.FromHours(1), log);
        try
        {
            for (var i = 0; i < 20; i++)
            {
                using var socket = await ConnectRawAsync(t[0].LocalEndPoint);
                await socket.SendAsync("garbage that is no hello"u8.ToArray());
                await AssertClosedByPeerAsync(socket);
            }

            WaitUntil(() => t[0].Counters.AuthFailures == 20, "every failure is counted");
            LinesFrom(log, "Authentication failed").ShouldBe(1);
        }
        finally
        {
            await DisposeAllAsync(t);
        }
    }

    private static int LinesFrom(ListLogger log, string fragment) =>
        log.Lines.Count(l => l.Message.Contains(fragment, StringComparison.Ordinal));

    /// <summary>Node 1 again, on a new port, dialling <paramref name="target"/> (node 2).</summary>
    private static TcpTransportOptions PeerOf(TcpTransport target)
    {
        var options = Options(1);
        options.Peers[target.NodeId] = target.LocalEndPoint;
        return options;
    }

    private static async Task AssertDeliveredWithinAsync(TcpTransport from, TcpTransport to, TimeSpan bound)
    {
        var marker = (ulong)Random.Shared.NextInt64(1, long.MaxValue);
        from.Send(new ReadIndexRequest(from.NodeId, to.NodeId, 1, marker));
        using var cts = new CancellationTokenSource(bound);
        try
        {
            while ((await to.Inbound.ReadAsync(cts.Token)) is not ReadIndexRequest { Context: var c } || c != marker)
            {
            }
        }
        catch (OperationCanceledException)
        {
            throw new Xunit.Sdk.XunitException($"the restarted peer's message did not arrive within {bound}");
        }
    }
}

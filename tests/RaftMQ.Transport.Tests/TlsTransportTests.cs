using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;
using RaftMQ.Raft;
using static RaftMQ.Transport.Tests.TestSupport;

namespace RaftMQ.Transport.Tests;

/// <summary>Mutual TLS on real peer links: certificates of the cluster's CA naming the peer's address, nothing else.</summary>
public sealed class TlsTransportTests
{
    private static readonly TimeSpan Year = TimeSpan.FromDays(365);

    // One CA and its node certificate for 127.0.0.1 serve every test (ECDSA keys are cheap, but not free on 2 cores).
    private static readonly X509Certificate2 Ca = ClusterCertificates.CreateAuthority("test cluster CA", Year);
    private static readonly X509Certificate2 Node = ClusterCertificates.CreateNode(Ca, "node", ["127.0.0.1", "localhost"], Year);

    private static PeerTlsOptions Tls(X509Certificate2? certificate = null, X509Certificate2? authority = null) =>
        new() { Certificate = certificate ?? Node, Authority = authority ?? Ca };

    [Fact]
    public async Task Three_TLS_transports_exchange_messages_over_authenticated_sessions()
    {
        var t = await StartClusterAsync(3, o => o.Tls = Tls());
        try
        {
            await AssertExchangeAsync(t[0], t[1]);
            await AssertExchangeAsync(t[1], t[2]);
            await AssertExchangeAsync(t[2], t[0]);
            t.Sum(x => x.Counters.AuthFailures).ShouldBe(0);
        }
        finally
        {
            await DisposeAllAsync(t);
        }
    }

    [Fact]
    public async Task A_peer_whose_certificate_comes_from_another_CA_is_refused_and_the_others_keep_talking()
    {
        var otherCa = ClusterCertificates.CreateAuthority("another CA", Year);
        var stranger = ClusterCertificates.CreateNode(otherCa, "stranger", ["127.0.0.1"], Year);
        var log = new ListLogger();
        var t = await StartClusterAsync(3, o => o.Tls = o.NodeId == 3 ? Tls(stranger, Ca) : Tls(), log);
        try
        {
            await AssertExchangeAsync(t[0], t[1]);
            WaitUntil(() => log.Has(LogLevel.Warning, "not issued by the cluster's CA"), "a refusal naming the CA is logged");
            WaitUntil(() => t[0].Counters.AuthFailures > 0 && t[1].Counters.AuthFailures > 0, "nodes 1 and 2 refuse node 3");
            t[0].Send(new Heartbeat(1, 3, 1, 1, 0));
            await AssertExchangeAsync(t[1], t[0]);
            t[2].Counters.MessagesReceived.ShouldBe(0, "node 3 never gets a message through a refused session");
            t[2].Counters.InboundAccepts.ShouldBe(0);
            t[0].Counters.InboundAccepts.ShouldBe(1, "node 1 accepted node 2 only");
        }
        finally
        {
            await DisposeAllAsync(t);
        }
    }

    [Fact]
    public async Task A_certificate_of_the_CA_that_names_another_address_is_refused_both_ways()
    {
        var elsewhere = ClusterCertificates.CreateNode(Ca, "elsewhere", ["10.9.9.9"], Year);
        var log = new ListLogger();
        var t = await StartClusterAsync(2, o => o.Tls = o.NodeId == 2 ? Tls(elsewhere) : Tls(), log);
        try
        {
            WaitUntil(() => log.Has(LogLevel.Warning, "does not name"), "the wrong name is logged");
            WaitUntil(() => t[0].Counters.AuthFailures > 0 && t[1].Counters.AuthFailures > 0, "both sides refuse");
            t[0].Counters.MessagesReceived.ShouldBe(0);
            t[1].Counters.MessagesReceived.ShouldBe(0);
        }
        finally
        {
            await DisposeAllAsync(t);
        }
    }

    [Fact]
    public async Task A_client_certificate_of_the_CA_cannot_act_as_a_node()
    {
        var client = ClusterCertificates.CreateClient(Ca, "app", Year);
        var log = new ListLogger();
        var t = await StartClusterAsync(2, o => o.Tls = o.NodeId == 2 ? Tls(client) : Tls(), log);
        try
        {
            WaitUntil(() => log.Has(LogLevel.Warning, "not issued for this use"), "the key usage refusal is logged");
            t[0].Counters.MessagesReceived.ShouldBe(0);
        }
        finally
        {
            await DisposeAllAsync(t);
        }
    }

    [Fact]
    public async Task A_plain_peer_and_garbage_on_a_TLS_port_are_refused_cleanly_and_the_node_keeps_serving()
    {
        var log = new ListLogger();
        var t = await StartClusterAsync(2, o => o.Tls = Tls(), log);
        var plainOptions = Options(3);
        plainOptions.Peers[1] = t[0].LocalEndPoint;
        await using var plain = new TcpTransport(plainOptions);
        try
        {
            t[0].SetPeer(3, Loopback(1)); // node 3 is a configured peer of node 1: only TLS keeps it out
            await plain.StartAsync();
            plain.Send(new Heartbeat(3, 1, 1, 1, 0));
            WaitUntil(() => plain.Counters.AuthFailures > 0, "the plain dialer fails its handshake");
            WaitUntil(() => log.Has(LogLevel.Warning, "TLS handshake failed"), "node 1 logs the failed TLS handshake");

            using (var garbage = await ConnectRawAsync(t[0].LocalEndPoint))
            {
                await garbage.SendAsync("GET / HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray(), SocketFlags.None);
                await AssertClosedByPeerAsync(garbage);
            }

            await AssertExchangeAsync(t[0], t[1]);
            plain.Counters.OutboundConnects.ShouldBe(0, "the plain peer never got a session");
            t[0].Counters.InboundAccepts.ShouldBe(1, "only node 2 was accepted");
        }
        finally
        {
            await DisposeAllAsync(t);
        }
    }

    [Fact]
    public async Task A_TLS_dialer_meets_a_plain_listener_with_a_clear_failure()
    {
        var log = new ListLogger();
        var plain = await StartClusterAsync(1);
        var tlsOptions = Options(2);
        tlsOptions.Tls = Tls();
        tlsOptions.Peers[1] = plain[0].LocalEndPoint;
        await using var tls = new TcpTransport(tlsOptions, log);
        try
        {
            plain[0].SetPeer(2, Loopback(1));
            await tls.StartAsync();
            tls.Send(new Heartbeat(2, 1, 1, 1, 0));
            WaitUntil(() => log.Has(LogLevel.Warning, "TLS handshake failed"), "the TLS dialer says the handshake failed");
            WaitUntil(() => plain[0].Counters.AuthFailures > 0, "the plain listener refuses the TLS hello");
            plain[0].Counters.MessagesReceived.ShouldBe(0);
        }
        finally
        {
            await DisposeAllAsync(plain);
        }
    }
}

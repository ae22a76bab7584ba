using System.Net;
using RaftMQ.Raft;

namespace RaftMQ.Hosting.Tests;

/// <summary>The node identity stored in a data directory, members' addresses as the configuration records them, and the member directory.</summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class NodeIdentityTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "raftmq-identity-" + Guid.NewGuid().ToString("N")[..8]);

    public void Dispose()
    {
        if (Directory.Exists(_directory)) Directory.Delete(_directory, recursive: true);
    }

    [Fact]
    public void An_identity_survives_a_save_and_a_load_and_a_directory_without_one_has_none()
    {
        NodeIdentity.Load(_directory).ShouldBeNull();
        var identity = new NodeIdentity("abc123", 4, Joined: true, new Dictionary<ulong, NodeAddress>
        {
            [1] = new("127.0.0.1", 8567, 8568, true),
            [4] = new("::1", 9000, 9100, true),
        });

        identity.Save(_directory);
        var loaded = NodeIdentity.Load(_directory).ShouldNotBeNull();

        loaded.ClusterId.ShouldBe("abc123");
        loaded.NodeId.ShouldBe(4UL);
        loaded.Joined.ShouldBeTrue();
        loaded.Members[1].ShouldBe(new NodeAddress("127.0.0.1", 8567, 8568, true));
        loaded.Members[4].ShouldBe(new NodeAddress("::1", 9000, 9100, true));
        Directory.GetFiles(_directory).Select(Path.GetFileName).ShouldBe([NodeIdentity.FileName], "no temporary file is left");
        File.GetUnixFileMode(Path.Combine(_directory, NodeIdentity.FileName)).ShouldBe(UnixFileMode.UserRead | UnixFileMode.UserWrite);
    }

    [Fact]
    public void A_damaged_identity_file_stops_the_node_with_what_to_do()
    {
        Directory.CreateDirectory(_directory);
        File.WriteAllText(Path.Combine(_directory, NodeIdentity.FileName), """{"cluster_id": "x", "node_id": 0, "joined": false, "members": []}""");
        Should.Throw<ConfigException>(() => NodeIdentity.Load(_directory)).Message.ShouldContain("restore it, or wipe the data directory");
        File.WriteAllText(Path.Combine(_directory, NodeIdentity.FileName), "{ not json");
        Should.Throw<ConfigException>(() => NodeIdentity.Load(_directory)).Message.ShouldContain(NodeIdentity.FileName);
    }

    [Fact]
    public void The_bootstrap_identity_is_the_configs_cluster_id_and_index_plus_one()
    {
        var config = ClusterConfig.Parse("""{"addresses": [{"ip": "127.0.0.1", "port": 8567}, {"ip": "127.0.0.1", "port": 9123, "internal_port": 9124}]}""");

        var identity = config.Identity(1);

        identity.ClusterId.ShouldBe(config.ClusterId);
        identity.NodeId.ShouldBe(2UL);
        identity.Joined.ShouldBeFalse();
        identity.Members.Keys.Order().ShouldBe([1UL, 2UL]);
        identity.Members[1].InternalPort.ShouldBe(9567);
        Should.Throw<ConfigException>(() => config.Identity(2));
    }

    [Theory]
    [InlineData("127.0.0.1:8567:8568", "127.0.0.1", 8567, 8568)]
    [InlineData("10.0.0.4:8567", "10.0.0.4", 8567, 9567)]
    [InlineData("[::1]:8567:8568", "::1", 8567, 8568)]
    [InlineData("node-4.example:80:81", "node-4.example", 80, 81)]
    public void Member_addresses_parse(string text, string ip, int port, int peerPort)
    {
        var a = MemberAddress.Decode(text).ShouldNotBeNull();
        (a.Ip, a.Port, a.InternalPort).ShouldBe((ip, port, peerPort));
        MemberAddress.Decode(MemberAddress.Format(a)).ShouldBe(a with { InternalPortGiven = true });
    }

    [Theory]
    [InlineData("")]
    [InlineData("127.0.0.1")]
    [InlineData(":8567")]
    [InlineData("127.0.0.1:0")]
    [InlineData("127.0.0.1:8567:70000")]
    [InlineData("127.0.0.1:8567:8567")]
    [InlineData("127.0.0.1:65000")]
    [InlineData("127.0.0.1:1:2:3")]
    [InlineData("[::1:8567")]
    public void Malformed_member_addresses_are_refused(string text) => MemberAddress.Decode(text).ShouldBeNull();

    [Theory]
    [InlineData("not a host")]
    [InlineData("10.0.0.1:8567")]
    [InlineData("http://10.0.0.1")]
    [InlineData("-node.example")]
    [InlineData("node..example")]
    [InlineData(" 10.0.0.1")]
    public void A_config_ip_that_is_neither_an_ip_address_nor_a_host_name_is_refused(string ip)
    {
        var json = $$"""{"addresses": [{"ip": {{System.Text.Json.JsonSerializer.Serialize(ip)}}, "port": 8567}]}""";
        Should.Throw<ConfigException>(() => ClusterConfig.Parse(json, "c.json")).Message
            .ShouldBe($"c.json: addresses[0].ip must be an IP address or a host name, not '{ip}'");
    }

    [Theory]
    [InlineData("10.0.0.1")]
    [InlineData("::1")]
    [InlineData("localhost")]
    [InlineData("mq-1.example.com")]
    [InlineData("no-such-host.invalid")]
    public void A_config_ip_may_be_an_ip_address_or_a_host_name_that_resolves_only_later(string ip) =>
        ClusterConfig.Parse($$"""{"addresses": [{"ip": "{{ip}}", "port": 8567}]}""").Addresses[0].Ip.ShouldBe(ip);

    [Fact]
    public void A_node_listens_on_its_ip_or_its_host_names_first_address_and_a_name_that_does_not_resolve_stops_it()
    {
        ClusterConfig.ListenAddress("10.0.0.1").ShouldBe(IPAddress.Parse("10.0.0.1"));
        ClusterConfig.ListenAddress("::1").ShouldBe(IPAddress.IPv6Loopback);
        ClusterConfig.ListenAddress("localhost").ShouldBe(IPAddress.Loopback);
        // Not every interface, as before: the first address the name resolves to.
        var name = Dns.GetHostName();
        ClusterConfig.ListenAddress(name).ShouldBe(Dns.GetHostAddresses(name)[0]);
        ClusterConfig.ListenEndPoint(name, 8567).ShouldBe(new IPEndPoint(Dns.GetHostAddresses(name)[0], 8567));
        Should.Throw<ConfigException>(() => ClusterConfig.ListenAddress("no-such-host.invalid")).Message
            .ShouldStartWith("cannot resolve this node's host name 'no-such-host.invalid'");
        Should.Throw<ConfigException>(() => ClusterConfig.ListenAddress("not a host")).Message.ShouldContain("not an IP address or a host name");
    }

    [Fact]
    public void A_peer_named_by_a_host_name_is_dialled_by_that_name_and_one_that_does_not_resolve_is_no_error()
    {
        ClusterConfig.PeerEndPoint(new NodeAddress("10.0.0.1", 8567, 8568, true)).ShouldBe(new IPEndPoint(IPAddress.Parse("10.0.0.1"), 8568));
        ClusterConfig.PeerEndPoint(new NodeAddress("::1", 8567, 8568, true)).ShouldBe(new IPEndPoint(IPAddress.IPv6Loopback, 8568));
        // Resolved by the transport at each connection attempt (and checked against the certificate's DNS name with TLS).
        ClusterConfig.PeerEndPoint(new NodeAddress("mq-1.example.com", 8567, 8568, true)).ShouldBe(new DnsEndPoint("mq-1.example.com", 8568));
        ClusterConfig.PeerEndPoint(new NodeAddress("no-such-host.invalid", 8567, 8568, true)).ShouldBe(new DnsEndPoint("no-such-host.invalid", 8568));
        var config = ClusterConfig.Parse("""{"addresses": [{"ip": "127.0.0.1", "port": 8567}, {"ip": "no-such-host.invalid", "port": 8567}]}""");
        config.HostOptions(0, _directory, new byte[32]).Peers[2].ShouldBe(new DnsEndPoint("no-such-host.invalid", 9567));
    }

    [Fact]
    public void A_members_url_always_writes_its_port()
    {
        new NodeAddress("10.0.0.1", 80, 1080, true).Url.ShouldBe("http://10.0.0.1:80");
        new NodeAddress("::1", 8567, 9567, true).Url.ShouldBe("http://[::1]:8567");
        new NodeAddress("mq-1.example.com", 443, 1443, true).Url.ShouldBe("http://mq-1.example.com:443");
    }

    [Fact]
    public void The_directory_takes_the_configurations_addresses_over_the_initial_ones()
    {
        var directory = new MemberDirectory(new Dictionary<ulong, NodeAddress> { [1] = new("127.0.0.1", 1000, 2000, true), [2] = new("127.0.0.1", 1001, 2001, true) });
        var moved = new NodeAddress("10.0.0.9", 1001, 2001, true);
        var added = new NodeAddress("10.0.0.3", 1002, 2002, true);
        var configuration = new ClusterConfiguration([1, 2], [3]).WithAddresses([
            KeyValuePair.Create(2UL, MemberAddress.Encode(moved)), KeyValuePair.Create(3UL, MemberAddress.Encode(added))]);

        directory.Update(configuration);

        directory.AddressOf(1).ShouldBe(new NodeAddress("127.0.0.1", 1000, 2000, true));
        directory.AddressOf(2).ShouldBe(moved);
        directory.AddressOf(3).ShouldBe(added);
        directory.AddressOf(4).ShouldBeNull();
        var encoded = directory.EncodedAddresses(configuration, 4, new NodeAddress("10.0.0.4", 1003, 2003, true));
        encoded.Keys.Order().ShouldBe([1UL, 2UL, 3UL, 4UL]);
        MemberAddress.Decode(encoded[1]).ShouldBe(new NodeAddress("127.0.0.1", 1000, 2000, true));
    }
}

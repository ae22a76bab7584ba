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

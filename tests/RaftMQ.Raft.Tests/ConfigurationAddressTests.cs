namespace RaftMQ.Raft.Tests;

/// <summary>Members' addresses in a configuration: the encodings (version 1 without, 2 with) and their trip through the log.</summary>
public sealed class ConfigurationAddressTests
{
    private static byte[] Bytes(string s) => System.Text.Encoding.UTF8.GetBytes(s);

    [Fact]
    public void AConfigurationWithoutAddresses_KeepsVersion1_AndOneWithAddresses_RoundTripsAsVersion2()
    {
        var plain = new ClusterConfiguration([1, 2, 3], [4]);
        plain.Encode()[0].ShouldBe(ClusterConfiguration.EncodingVersion);
        plain.Encode().Length.ShouldBe(5 + (4 * 8));

        var addressed = plain.WithAddresses([KeyValuePair.Create(4UL, Bytes("10.0.0.4:8567:8568")), KeyValuePair.Create(1UL, Bytes("a:1:2"))]);
        var bytes = addressed.Encode();

        bytes[0].ShouldBe(ClusterConfiguration.EncodingVersionWithAddresses);
        bytes.Length.ShouldBe(addressed.EncodedLength);
        var decoded = ClusterConfiguration.Decode(bytes);
        decoded.ShouldBe(addressed);
        decoded.ShouldNotBe(plain);
        decoded.AddressOf(4).ToArray().ShouldBe(Bytes("10.0.0.4:8567:8568"));
        decoded.AddressOf(2).IsEmpty.ShouldBeTrue();
        decoded.Voters.ShouldBe([1UL, 2, 3]);
        decoded.Learners.ShouldBe([4UL]);
    }

    [Fact]
    public void Changes_KeepTheAddressesOfTheMembersThatStay_AndDropTheRemovedOnes()
    {
        var c = new ClusterConfiguration([1, 2]).WithAddresses([KeyValuePair.Create(1UL, Bytes("one")), KeyValuePair.Create(2UL, Bytes("two"))]);

        var grown = c.WithLearner(3).WithAddresses([KeyValuePair.Create(3UL, Bytes("three")), KeyValuePair.Create(9UL, Bytes("not a member"))]);
        grown.Addresses.Keys.ShouldBe([1UL, 2, 3]);
        grown.WithVoter(3).AddressOf(3).ToArray().ShouldBe(Bytes("three"));
        var shrunk = grown.WithVoter(3).Without(1);
        shrunk.Addresses.Keys.ShouldBe([2UL, 3]);
        shrunk.Without(2).Without(3).Encode()[0].ShouldBe(ClusterConfiguration.EncodingVersion);
    }

    [Fact]
    public void MalformedAddresses_AreRefusedWithTheReason()
    {
        var bytes = new ClusterConfiguration([1, 2]).WithAddresses([KeyValuePair.Create(2UL, Bytes("x:1:2"))]).Encode();

        ClusterConfiguration.TryDecode(bytes.AsSpan(0, bytes.Length - 1), out _, out var cut).ShouldBeFalse();
        cut.ShouldContain("member 2");
        ClusterConfiguration.TryDecode([.. bytes, 0], out _, out var trailing).ShouldBeFalse();
        trailing.ShouldContain("after its last address");
        ClusterConfiguration.TryDecode(bytes.AsSpan(0, 5 + 16 + 2), out _, out var noRoom).ShouldBeFalse();
        noRoom.ShouldContain("addresses");
        var version3 = (byte[])bytes.Clone();
        version3[0] = 3;
        ClusterConfiguration.TryDecode(version3, out _, out var version).ShouldBeFalse();
        version.ShouldContain("version 3");
        Should.Throw<ArgumentException>(() => new ClusterConfiguration([1]).WithAddresses([KeyValuePair.Create(1UL, new byte[ClusterConfiguration.MaxAddressBytes + 1])]));
    }

    [Fact]
    public void AddLearner_RecordsTheAddresses_AndEveryMemberLearnsThemFromTheLog()
    {
        var c = new TestCluster([1, 2, 3], joiners: [4]);
        c.Elect(1);
        c.Deliver();

        var add = c.Change(1, n => n.AddLearner(4, [KeyValuePair.Create(4UL, Bytes("four")), KeyValuePair.Create(2UL, Bytes("two"))]));

        add.IsAccepted.ShouldBeTrue(add.Message);
        foreach (var id in new ulong[] { 1, 2, 3, 4 })
        {
            c.Node(id).Configuration.AddressOf(4).ToArray().ShouldBe(Bytes("four"));
            c.Node(id).Configuration.AddressOf(2).ToArray().ShouldBe(Bytes("two"));
        }
        // Promotion and removal keep what was recorded.
        c.Change(1, n => n.PromoteLearner(4)).IsAccepted.ShouldBeTrue();
        c.Change(1, n => n.RemoveMember(2)).IsAccepted.ShouldBeTrue();
        c.Node(3).Configuration.AddressOf(4).ToArray().ShouldBe(Bytes("four"));
        c.Node(3).Configuration.AddressOf(2).IsEmpty.ShouldBeTrue();
        c.Change(1, n => n.AddLearner(5, [KeyValuePair.Create(5UL, new byte[ClusterConfiguration.MaxAddressBytes + 1])]))
            .Status.ShouldBe(MembershipStatus.InvalidAddress);
    }
}

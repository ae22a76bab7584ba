using RaftMQ.Raft;

namespace RaftMQ.Transport.Tests;

/// <summary>The encodings membership adds: TimeoutNow, a leadership transfer's vote request, configuration entries and snapshot configurations.</summary>
public sealed class MembershipCodecTests
{
    private static T RoundTrip<T>(T message) where T : RaftMessage
    {
        var bytes = RaftMessageCodec.Encode(message);
        bytes.Length.ShouldBe((int)RaftMessageCodec.GetSize(message));
        return RaftMessageCodec.Read(bytes).ShouldBeOfType<T>();
    }

    [Fact]
    public void TimeoutNow_RoundTrips_AsTheHeaderAlone()
    {
        var m = new TimeoutNow(1, 2, 7);

        RoundTrip(m).ShouldBe(m);
        RaftMessageCodec.Encode(m).Length.ShouldBe(RaftMessageCodec.HeaderSize);
        RaftMessageCodec.Encode(m)[0].ShouldBe((byte)MessageType.TimeoutNow);
    }

    [Fact]
    public void ATransferVote_KeepsItsFlag_AndAPlainVoteKeepsItsEncoding()
    {
        var transfer = new RequestVote(3, 1, 9, 40, 8, false, LeadershipTransfer: true);
        var plain = transfer with { LeadershipTransfer = false };

        RoundTrip(transfer).LeadershipTransfer.ShouldBeTrue();
        RoundTrip(plain).LeadershipTransfer.ShouldBeFalse();
        RaftMessageCodec.Encode(plain)[0].ShouldBe((byte)MessageType.RequestVote);
        RaftMessageCodec.Encode(transfer)[0].ShouldBe((byte)MessageType.TransferVote);
        RaftMessageCodec.Encode(plain).Length.ShouldBe(RaftMessageCodec.Encode(transfer).Length);
    }

    [Fact]
    public void AConfigurationEntry_RoundTripsInAppendEntries()
    {
        var configuration = new ClusterConfiguration([1, 2, 3], [4]);
        var m = new AppendEntries(1, 2, 3, 4, 3, [new Entry(5, 3, EntryType.Configuration, configuration.Encode())], 4);

        var entry = RoundTrip(m).Entries.ShouldHaveSingleItem();

        entry.Type.ShouldBe(EntryType.Configuration);
        ClusterConfiguration.Decode(entry.Data.Span).ShouldBe(configuration);
    }

    [Fact]
    public void ASnapshotsConfiguration_TravelsWithInstallSnapshot_AndSnapshotChunks()
    {
        var configuration = new ClusterConfiguration([1, 2], [5, 6]);
        var snapshot = new SnapshotMetadata(100, 4) { Configuration = configuration };

        RoundTrip(new InstallSnapshot(1, 2, 4, snapshot)).Snapshot.Configuration.ShouldBe(configuration);
        RoundTrip(new SnapshotChunk(1, 2, 4, snapshot, 0, new byte[] { 1, 2 }, true)).Snapshot.Configuration.ShouldBe(configuration);
        RoundTrip(new SnapshotChunkResponse(2, 1, 4, snapshot, 2, false)).Snapshot.Configuration.ShouldBe(configuration);
        RoundTrip(new InstallSnapshot(1, 2, 4, new SnapshotMetadata(100, 4))).Snapshot.Configuration.ShouldBeNull();
    }

    [Fact]
    public void TheLargestChunk_FitsTheBoundWithAFullConfiguration()
    {
        var ids = Enumerable.Range(1, ClusterConfiguration.MaxMembers).Select(i => (ulong)i).ToArray();
        var full = new ClusterConfiguration(ids.Take(5), ids.Skip(5))
            .WithAddresses(ids.Select(id => KeyValuePair.Create(id, new byte[ClusterConfiguration.MaxAddressBytes])));
        var snapshot = new SnapshotMetadata(1, 1) { Configuration = full };

        var chunk = new SnapshotChunk(1, 2, 1, snapshot, 0, new byte[1000], false);

        RaftMessageCodec.GetSize(chunk).ShouldBe(RaftMessageCodec.MaxSnapshotChunkSize(1000));
        RoundTrip(chunk).Snapshot.Configuration.ShouldBe(full);
    }

    [Fact]
    public void ASnapshotConfigurationWithAddresses_RoundTrips_AndOneWithoutKeepsTheIdOnlyLayout()
    {
        var plain = new ClusterConfiguration([1, 2], [3]);
        var withAddresses = plain.WithAddresses([KeyValuePair.Create(3UL, "127.0.0.1:9000:9001"u8.ToArray())]);

        var decoded = RoundTrip(new InstallSnapshot(1, 2, 4, new SnapshotMetadata(100, 4) { Configuration = withAddresses })).Snapshot.Configuration!;

        decoded.ShouldBe(withAddresses);
        decoded.AddressOf(3).ToArray().ShouldBe("127.0.0.1:9000:9001"u8.ToArray());
        decoded.AddressOf(1).IsEmpty.ShouldBeTrue();
        var plainBytes = RaftMessageCodec.Encode(new InstallSnapshot(1, 2, 4, new SnapshotMetadata(100, 4) { Configuration = plain }));
        plainBytes[RaftMessageCodec.HeaderSize + 16].ShouldBe((byte)1);
        plainBytes.Length.ShouldBe(RaftMessageCodec.HeaderSize + 16 + 5 + (3 * 8));
    }

    [Fact]
    public void AnAddressedSnapshotConfiguration_OverItsBoundOrCutShort_FailsWithAProtocolException()
    {
        var configuration = new ClusterConfiguration([1, 2]).WithAddresses([KeyValuePair.Create(2UL, "h:1:2"u8.ToArray())]);
        var bytes = RaftMessageCodec.Encode(new InstallSnapshot(1, 2, 1, new SnapshotMetadata(1, 1) { Configuration = configuration }));
        var lengthAt = RaftMessageCodec.HeaderSize + 16 + 1;

        var huge = (byte[])bytes.Clone();
        huge[lengthAt] = 0x7F;
        Should.Throw<ProtocolException>(() => RaftMessageCodec.Read(huge)).Message.ShouldContain("bound");

        var badAddress = (byte[])bytes.Clone();
        badAddress[^7] = 0xFF; // the last address length's low byte (u16 little-endian): now past the end
        Should.Throw<ProtocolException>(() => RaftMessageCodec.Read(badAddress)).Message.ShouldContain("address");

        var badPresence = (byte[])bytes.Clone();
        badPresence[lengthAt - 1] = 3;
        Should.Throw<ProtocolException>(() => RaftMessageCodec.Read(badPresence)).Message.ShouldContain("0, 1 or 2");
    }

    [Fact]
    public void ABadSnapshotConfiguration_FailsWithAProtocolException()
    {
        var snapshot = new SnapshotMetadata(1, 1) { Configuration = new ClusterConfiguration([1, 2]) };
        var bytes = RaftMessageCodec.Encode(new InstallSnapshot(1, 2, 1, snapshot));
        // The ids follow the header, index, term, presence byte and two counts; make the second id equal the first.
        var ids = RaftMessageCodec.HeaderSize + 16 + 5;
        bytes.AsSpan(ids, 8).CopyTo(bytes.AsSpan(ids + 8, 8));

        Should.Throw<ProtocolException>(() => RaftMessageCodec.Read(bytes)).Message.ShouldContain("appears twice");

        var tooMany = RaftMessageCodec.Encode(new InstallSnapshot(1, 2, 1, snapshot));
        tooMany[RaftMessageCodec.HeaderSize + 16 + 1] = 0xFF; // voter count high byte
        Should.Throw<ProtocolException>(() => RaftMessageCodec.Read(tooMany)).Message.ShouldContain("bound");
    }
}

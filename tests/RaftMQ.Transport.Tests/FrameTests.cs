using System.Buffers;

namespace RaftMQ.Transport.Tests;

public sealed class FrameTests
{
    [Fact]
    public void Reads_whole_frames_and_waits_for_partial_ones()
    {
        var writer = new ArrayBufferWriter<byte>();
        Frame.WriteHeader(writer, 3);
        writer.Write<byte>([1, 2, 3]);
        Frame.WriteHeader(writer, 2);
        writer.Write<byte>([4, 5]);
        var bytes = writer.WrittenSpan.ToArray();
        bytes[..5].ShouldBe([0, 0, 0, 3, Frame.Version]);

        for (var cut = 0; cut < bytes.Length; cut++)
        {
            var buffer = Segments.Split(bytes, cut, cut + 3);
            Frame.TryRead(ref buffer, 1024, out var first).ShouldBeTrue();
            first.ToArray().ShouldBe([1, 2, 3]);
            Frame.TryRead(ref buffer, 1024, out var second).ShouldBeTrue();
            second.ToArray().ShouldBe([4, 5]);
            buffer.IsEmpty.ShouldBeTrue();
            Frame.TryRead(ref buffer, 1024, out _).ShouldBeFalse();
        }

        for (var length = 0; length < 8; length++)
        {
            var partial = new ReadOnlySequence<byte>(bytes, 0, length);
            Frame.TryRead(ref partial, 1024, out _).ShouldBeFalse();
            partial.Length.ShouldBe(length);
        }
    }

    [Fact]
    public void A_frame_over_the_cap_is_refused_from_its_header_alone()
    {
        var buffer = new ReadOnlySequence<byte>(new byte[] { 0x01, 0x00, 0x00, 0x01, Frame.Version });
        Should.Throw<ProtocolException>(() => Frame.TryRead(ref buffer, 16 << 20, out _)).Message.ShouldContain("exceeds the cap");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void An_unknown_version_is_refused(byte version)
    {
        var buffer = new ReadOnlySequence<byte>(new byte[] { 0, 0, 0, 1, version, 42 });
        Should.Throw<ProtocolException>(() => Frame.TryRead(ref buffer, 1024, out _)).Message
            .ShouldBe($"Unsupported frame version {version} (this node speaks 2).");
    }
}

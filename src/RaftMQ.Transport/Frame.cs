using System.Buffers;
using System.Buffers.Binary;

namespace RaftMQ.Transport;

/// <summary>
/// The framing on a peer connection: <c>[u32 payload length, big-endian][u8 version][payload]</c>. The length counts
/// the payload only. A frame is refused as soon as its 5-byte header is in, before its payload is buffered.
/// </summary>
public static class Frame
{
    /// <summary>
    /// The only framing and protocol version this build speaks. 2: the dialer proves the cluster secret first in the
    /// handshake (version 1 had the listener prove first); nodes of different versions refuse each other.
    /// </summary>
    public const byte Version = 2;

    /// <summary>Length prefix plus version byte.</summary>
    public const int HeaderSize = sizeof(uint) + 1;

    /// <summary>Writes a frame header announcing <paramref name="payloadLength"/> bytes of payload.</summary>
    public static void WriteHeader(IBufferWriter<byte> writer, int payloadLength)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentOutOfRangeException.ThrowIfNegative(payloadLength);
        var span = writer.GetSpan(HeaderSize);
        BinaryPrimitives.WriteUInt32BigEndian(span, (uint)payloadLength);
        span[sizeof(uint)] = Version;
        writer.Advance(HeaderSize);
    }

    /// <summary>
    /// Takes one complete frame off the front of <paramref name="buffer"/>. Returns false, leaving the buffer as it
    /// was, when the frame is not complete yet.
    /// </summary>
    /// <exception cref="ProtocolException">Unknown version, or a payload longer than <paramref name="maxPayloadBytes"/>.</exception>
    public static bool TryRead(ref ReadOnlySequence<byte> buffer, int maxPayloadBytes, out ReadOnlySequence<byte> payload)
    {
        payload = default;
        if (buffer.Length < HeaderSize)
        {
            return false;
        }

        Span<byte> header = stackalloc byte[HeaderSize];
        buffer.Slice(0, HeaderSize).CopyTo(header);
        var version = header[sizeof(uint)];
        if (version != Version)
        {
            throw new ProtocolException($"Unsupported frame version {version} (this node speaks {Version}).");
        }

        var length = BinaryPrimitives.ReadUInt32BigEndian(header);
        if (length > (uint)maxPayloadBytes)
        {
            throw new ProtocolException($"Frame of {length} bytes exceeds the cap of {maxPayloadBytes} bytes.");
        }

        if (buffer.Length - HeaderSize < length)
        {
            return false;
        }

        payload = buffer.Slice(HeaderSize, length);
        buffer = buffer.Slice(payload.End);
        return true;
    }
}

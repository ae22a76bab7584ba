using System.Buffers.Binary;
using System.Numerics;

namespace RaftMQ.Storage;

/// <summary>CRC-32C (Castagnoli), the checksum on every record and snapshot; hardware-accelerated where available.</summary>
public static class Crc32C
{
    /// <summary>The CRC-32C of <paramref name="data"/>.</summary>
    public static uint Compute(ReadOnlySpan<byte> data) => ~Append(~0u, data);

    /// <summary>
    /// Continues a running CRC over more bytes. Start with <c>~0u</c> and finish with <c>~crc</c>
    /// (or use <see cref="Compute"/> for one span).
    /// </summary>
    public static uint Append(uint crc, ReadOnlySpan<byte> data)
    {
        // 8 bytes per step: BitOperations.Crc32C maps to the SSE4.2 / ARMv8 CRC instruction.
        while (data.Length >= 8)
        {
            crc = BitOperations.Crc32C(crc, BinaryPrimitives.ReadUInt64LittleEndian(data));
            data = data[8..];
        }
        if (data.Length >= 4)
        {
            crc = BitOperations.Crc32C(crc, BinaryPrimitives.ReadUInt32LittleEndian(data));
            data = data[4..];
        }
        foreach (var b in data) crc = BitOperations.Crc32C(crc, b);
        return crc;
    }
}

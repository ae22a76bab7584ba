using System.Buffers.Binary;
using System.Numerics;

namespace RaftMQ.Queue.Store;

/// <summary>
/// CRC-32C (Castagnoli) of a message record. The same function as RaftMQ.Storage's Crc32C, restated here because the
/// queue must not depend on the storage layer (DESIGN.md: projects depend only downwards); move both to one shared
/// low-level project when there is one.
/// </summary>
internal static class Crc32C
{
    public static uint Compute(ReadOnlySpan<byte> data)
    {
        var crc = ~0u;
        // 8 bytes per step: BitOperations.Crc32C maps to the SSE4.2 / ARMv8 CRC instruction.
        while (data.Length >= 8)
        {
            crc = BitOperations.Crc32C(crc, BinaryPrimitives.ReadUInt64LittleEndian(data));
            data = data[8..];
        }
        foreach (var b in data) crc = BitOperations.Crc32C(crc, b);
        return ~crc;
    }
}

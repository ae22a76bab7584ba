namespace RaftMQ.Storage.CrashWriter;

/// <summary>The options and entry contents shared by the writer and the test that checks what survived.</summary>
public static class CrashPayload
{
    /// <summary>Small segments so that a run rolls and compacts segments many times.</summary>
    public static StorageOptions Options => new()
    {
        SegmentBytes = 256 * 1024,
        MaxEntryBytes = 1024,
        MaxBatchBytes = 64 * 1024,
        CacheEntries = 64,
    };

    /// <summary>The bytes entry (index, term) carries: its length and content follow from both, so any damage shows.</summary>
    public static byte[] For(ulong index, ulong term)
    {
        var length = (int)((index * 31 + term * 7) % 400);
        var data = new byte[length];
        var x = index * 0x9E3779B97F4A7C15UL ^ term;
        for (var i = 0; i < data.Length; i++)
        {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            data[i] = (byte)x;
        }
        return data;
    }
}

using RaftMQ.Raft;
using Shouldly;

namespace RaftMQ.Storage.Tests;

/// <summary>A fresh directory under the temp folder, deleted afterwards.</summary>
public sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "raftmq-storage-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a leftover temp directory does not affect other tests (each has its own).
        }
    }
}

/// <summary>Entries, options and the comparison of a log against its expected contents.</summary>
public static class Logs
{
    /// <summary>Small bounds so that tests cross segment boundaries and read from disk.</summary>
    public static StorageOptions SmallOptions(IStorageFileSystem? fs = null) => new()
    {
        SegmentBytes = 64 * 1024,
        MaxEntryBytes = 4 * 1024,
        MaxBatchBytes = 32 * 1024,
        CacheEntries = 8,
        CacheBytes = 4 * 1024,
        ReadChunkBytes = 4096,
        FileSystem = fs ?? PhysicalFileSystem.Instance,
    };

    public static byte[] Data(ulong index, ulong term, int length)
    {
        var data = new byte[length];
        for (var i = 0; i < length; i++) data[i] = (byte)(index * 13 + term * 7 + (ulong)i);
        return data;
    }

    public static Entry E(ulong index, ulong term, int length = 16) => new(index, term, EntryType.Command, Data(index, term, length));

    public static Entry[] Range(ulong first, ulong last, ulong term, int length = 16)
    {
        var list = new Entry[last - first + 1];
        for (var i = first; i <= last; i++) list[i - first] = E(i, term, length);
        return list;
    }

    public static List<Entry> ReadAll(ILogStorage log)
    {
        var all = new List<Entry>();
        if (log.LastIndex < log.FirstIndex) return all;
        var next = log.FirstIndex;
        while (next <= log.LastIndex)
        {
            var before = all.Count;
            log.ReadEntries(next, log.LastIndex + 1, 10_000, all);
            (all.Count > before).ShouldBeTrue("ReadEntries must return at least one entry");
            next += (ulong)(all.Count - before);
        }
        return all;
    }

    /// <summary>Whether two logs hold the same state, entries and bytes; returns the first difference or null.</summary>
    public static string? Difference(ILogStorage expected, ILogStorage actual)
    {
        if (expected.HardState != actual.HardState) return $"hard state {actual.HardState}, expected {expected.HardState}";
        if (expected.Snapshot != actual.Snapshot) return $"snapshot {actual.Snapshot}, expected {expected.Snapshot}";
        if (expected.FirstIndex != actual.FirstIndex) return $"first index {actual.FirstIndex}, expected {expected.FirstIndex}";
        if (expected.LastIndex != actual.LastIndex) return $"last index {actual.LastIndex}, expected {expected.LastIndex}";
        var a = ReadAll(expected);
        var b = ReadAll(actual);
        for (var i = 0; i < a.Count; i++)
        {
            if (a[i].Index != b[i].Index || a[i].Term != b[i].Term || a[i].Type != b[i].Type || !a[i].Data.Span.SequenceEqual(b[i].Data.Span))
                return $"entry {a[i].Index}: got {b[i].Index}/{b[i].Term}/{b[i].Data.Length}B, expected {a[i].Index}/{a[i].Term}/{a[i].Data.Length}B";
            if (actual.Term(a[i].Index) != a[i].Term) return $"Term({a[i].Index}) = {actual.Term(a[i].Index)}, expected {a[i].Term}";
        }
        return null;
    }

    public static void ShouldMatch(this ILogStorage actual, ILogStorage expected) => Difference(expected, actual).ShouldBeNull();
}

/// <summary>The reference for a durable log: <see cref="MemoryLogStorage"/> plus snapshot installation.</summary>
public sealed class LogModel
{
    public MemoryLogStorage Log { get; private set; } = new();

    public void Save(HardState? hs, IReadOnlyList<Entry> entries)
    {
        if (hs is { } h) Log.SetHardState(h);
        Log.Append(entries);
    }

    public void Compact(SnapshotMetadata s) => Log.Compact(s);

    public void Install(SnapshotMetadata s)
    {
        if (s.Index <= Log.Snapshot.Index) return;
        if (s.Index <= Log.LastIndex && Log.Term(s.Index) == s.Term)
        {
            Log.Compact(s);
            return;
        }
        var fresh = new MemoryLogStorage();
        fresh.SetHardState(Log.HardState);
        fresh.Compact(s);
        Log = fresh;
    }

    public LogModel Clone() => new() { Log = Log.Clone() };
}

/// <summary>Snapshot data for tests.</summary>
public static class SnapshotBytes
{
    /// <summary><paramref name="length"/> random bytes, the same for the same <paramref name="seed"/>.</summary>
    public static byte[] Random(int length, int seed)
    {
        var data = new byte[length];
        new System.Random(seed).NextBytes(data);
        return data;
    }

    /// <summary>Everything left in <paramref name="s"/>.</summary>
    public static byte[] ReadToEnd(Stream s)
    {
        using var ms = new MemoryStream();
        s.CopyTo(ms);
        return ms.ToArray();
    }
}

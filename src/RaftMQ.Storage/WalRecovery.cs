using RaftMQ.Raft;

namespace RaftMQ.Storage;

/// <summary>
/// Rebuilds the log's index from its segment files. Rules (docs/storage.md, "Recovery"):
/// sealed segments must be intact; the log must reach <paramref name="durableEnd"/> (what the DURABLE file says was
/// fsynced; null when there is no such file); the last segment may end in an unfinished batch past that point,
/// which is cut off. Anything else is corruption.
/// </summary>
internal sealed class WalRecovery(IStorageFileSystem fs, string directory, StorageOptions options, LogIndex index, DurableEnd? durableEnd)
{
    private const string Advice =
        "Do not start the node on this directory. Keep a copy for diagnosis, then restore the directory from a backup, " +
        "or remove it so the node rejoins the cluster empty and receives the log from the leader (safe while a majority of the cluster is intact).";

    public sealed class Result
    {
        public List<SegmentFile> Segments { get; } = [];
        public HardState HardState { get; set; }
        public long BytesScanned { get; set; }
        public string? TruncatedFile { get; set; }
        public long TruncatedAtOffset { get; set; }
        public long TruncatedBytes { get; set; }
        public int DiscardedEntries { get; set; }
        public string? TruncationReason { get; set; }
        public List<string> DeletedFiles { get; } = [];
    }

    private readonly int _maxBody = WalFormat.EntryBodyHeaderBytes + options.MaxEntryBytes;

    public Result Run()
    {
        var result = new Result();
        try
        {
            Scan(result);
        }
        catch
        {
            foreach (var s in result.Segments) s.File.Dispose();
            throw;
        }
        return result;
    }

    private void Scan(Result result)
    {
        var files = new List<(ulong Sequence, string Path)>();
        foreach (var path in fs.ListFiles(directory, "wal-*.seg"))
        {
            if (WalFormat.TryParseSegmentName(Path.GetFileName(path), out var seq)) files.Add((seq, path));
        }
        files.Sort((a, b) => a.Sequence.CompareTo(b.Sequence));
        for (var i = 1; i < files.Count; i++)
        {
            if (files[i].Sequence != files[i - 1].Sequence + 1)
            {
                throw new StorageCorruptedException(
                    $"segment {WalFormat.SegmentName(files[i - 1].Sequence + 1)} is missing from {directory} " +
                    $"(found {Path.GetFileName(files[i - 1].Path)} then {Path.GetFileName(files[i].Path)}); the log has a hole. {Advice}",
                    files[i].Path);
            }
        }

        var lastSequence = files.Count > 0 ? files[^1].Sequence : 0;
        if (durableEnd is { } claim && claim.Segment > lastSequence)
        {
            var missing = Path.Combine(directory, WalFormat.SegmentName(claim.Segment));
            throw new StorageCorruptedException(
                $"segment {WalFormat.SegmentName(claim.Segment)} is missing from {directory}: {DurableEndFile.FileName} records that the log was fsynced " +
                $"through offset {claim.Offset} of it ({Describe(claim)}), but {(files.Count == 0 ? "no segment is left" : $"the newest segment is {Path.GetFileName(files[^1].Path)}")}. " +
                "Acknowledged entries, and possibly the node's term and vote, are gone; starting would roll them back, and a forgotten vote breaks " +
                $"Raft's safety. If the file was moved, put it back. {Advice}", missing);
        }

        var initialized = false;
        var pending = new List<(ulong Term, uint Offset)>();
        Span<byte> head = stackalloc byte[WalFormat.SegmentHeaderBytes];
        for (var i = 0; i < files.Count; i++)
        {
            var (seq, path) = files[i];
            var isLast = i == files.Count - 1;
            var file = fs.Open(path, create: false);
            SegmentFile? segment = null;
            try
            {
                var length = file.Length;
                result.BytesScanned += length;
                // How much of this segment the DURABLE file vouches for: recovery must find at least that, intact.
                var claimed = durableEnd is { } c && c.Segment == seq ? c.Offset : 0L;
                var headProblem = WalFormat.CheckSegmentHeader(head[..file.Read(0, head)], seq);
                if (headProblem is not null)
                {
                    // A segment is fsynced with its header and opening batch before anything else is written to it,
                    // so a bad header on a file that never grew past them is an interrupted creation.
                    if (isLast && claimed == 0 && length <= WalFormat.SegmentOverhead && (files.Count > 1 || seq == 1))
                    {
                        DeleteUnfinished(file, path, result);
                        break;
                    }
                    throw new StorageCorruptedException($"segment {path} has a bad header at offset 0: {headProblem}. {Advice}", path, 0);
                }
                segment = new SegmentFile(seq, path, file, length);

                var scanner = new RecordScanner(file, WalFormat.SegmentHeaderBytes, length, _maxBody, options.ReadChunkBytes);
                WalFormat.BatchHeader? batch = null;
                long batchOffset = 0;
                var opened = false; // whether the segment's opening batch was read
                string? failure = null;
                long failureAt = 0;
                pending.Clear();
                while (true)
                {
                    var at = scanner.Position;
                    if (scanner.AtEnd)
                    {
                        if (batch is not null) (failure, failureAt) = ("the file ends inside a batch", at);
                        break;
                    }
                    var check = scanner.Next(out var body, out var problem);
                    if (check != WalFormat.Check.Valid)
                    {
                        (failure, failureAt) = (problem, at);
                        break;
                    }
                    if (batch is null)
                    {
                        if (body[0] != WalFormat.BatchRecord)
                        {
                            (failure, failureAt) = ("an entry record where a batch header belongs", at);
                            break;
                        }
                        var h = WalFormat.ReadBatch(body);
                        if (!opened)
                        {
                            opened = true;
                            if (!initialized)
                            {
                                // The oldest segment left: entries before its first index were compacted away.
                                index.Initialize(h.FirstIndex - 1, h.Snapshot);
                                initialized = true;
                            }
                            else if (h.FirstIndex != index.LastIndex + 1)
                            {
                                throw new StorageCorruptedException(
                                    $"segment {path} opens at index {h.FirstIndex} but the segments before it end at {index.LastIndex}. {Advice}", path, at);
                            }
                        }
                        if (h.Count == 0) ApplyHeader(h, path, at, result);
                        else (batch, batchOffset) = (h, at);
                    }
                    else
                    {
                        var expected = batch.Value.FirstIndex + (ulong)pending.Count;
                        if (body[0] != WalFormat.EntryRecord || WalFormat.EntryIndex(body) != expected)
                        {
                            (failure, failureAt) = ($"expected the record of entry {expected}", at);
                            break;
                        }
                        pending.Add((WalFormat.EntryTerm(body), (uint)at));
                        if ((uint)pending.Count == batch.Value.Count)
                        {
                            ApplyHeader(batch.Value, path, batchOffset, result);
                            for (var k = 0; k < pending.Count; k++)
                                index.Append(segment, batch.Value.FirstIndex + (ulong)k, pending[k].Term, pending[k].Offset);
                            pending.Clear();
                            batch = null;
                        }
                    }
                }

                if (failure is not null)
                {
                    if (!isLast)
                    {
                        throw new StorageCorruptedException(
                            $"segment {path} is damaged at offset {failureAt}: {failure}. It is not the last segment, and every segment is fsynced " +
                            $"before the next one starts, so these bytes were durable. {Advice}", path, failureAt);
                    }
                    var cut = batch is not null ? batchOffset : failureAt;
                    if (cut < claimed) throw Lost(path, length, claimed, $"{failure} at offset {failureAt}", failureAt);
                    if (!opened)
                    {
                        if (files.Count > 1 || seq == 1)
                        {
                            segment = null;
                            DeleteUnfinished(file, path, result);
                            break;
                        }
                        throw new StorageCorruptedException($"segment {path}, the only one left, has no valid opening batch: {failure}. {Advice}", path, failureAt);
                    }
                    file.SetLength(cut);
                    file.Sync();
                    segment.Length = cut;
                    result.TruncatedFile = path;
                    result.TruncatedAtOffset = cut;
                    result.TruncatedBytes = length - cut;
                    result.DiscardedEntries = pending.Count;
                    result.TruncationReason = $"{failure} at offset {failureAt}";
                }
                else if (length < claimed)
                {
                    throw Lost(path, length, claimed, "it ends at a record boundary", length);
                }
                result.Segments.Add(segment);
            }
            catch
            {
                if (segment is null || !result.Segments.Contains(segment)) file.Dispose();
                throw;
            }
        }

        if (!initialized) index.Initialize(0, default);
        if (index.Base > index.Snapshot.Index)
        {
            var first = result.Segments.Count > 0 ? result.Segments[0].Path : directory;
            throw new StorageCorruptedException(
                $"entries {index.Snapshot.Index + 1} to {index.Base} are missing: they were in segments before {first}, which are gone, " +
                $"and no snapshot covers them. {Advice}", first);
        }
        // Reaching the durable end implies its hard state was read back; an older term means these files are not
        // the ones that were fsynced (a segment replaced by an older copy).
        if (durableEnd is { } d && result.HardState.Term < d.HardState.Term)
        {
            var last = result.Segments.Count > 0 ? result.Segments[^1].Path : directory;
            throw new StorageCorruptedException(
                $"the log in {directory} ends with term {result.HardState.Term}, but {DurableEndFile.FileName} records that term " +
                $"{d.HardState.Term} had been fsynced ({Describe(d)}): the segment files are older than the log that was acknowledged. {Advice}", last);
        }
    }

    private void ApplyHeader(in WalFormat.BatchHeader header, string path, long offset, Result result)
    {
        var problem = index.ApplyHeader(header);
        if (problem is not null) throw new StorageCorruptedException($"segment {path} at offset {offset}: {problem}. {Advice}", path, offset);
        result.HardState = header.HardState;
    }

    private void DeleteUnfinished(IStorageFile file, string path, Result result)
    {
        file.Dispose();
        fs.Delete(path);
        fs.SyncDirectory(directory);
        result.DeletedFiles.Add(path);
    }

    // The log does not reach what DURABLE says was fsynced in this segment: acknowledged bytes were cut off or damaged.
    private static StorageCorruptedException Lost(string path, long length, long claimed, string found, long at)
    {
        var what = length < claimed
            ? $"segment {path} is {length} bytes long, but {DurableEndFile.FileName} records that it was fsynced through offset {claimed}: " +
              $"its end was cut off after it had been acknowledged ({found})"
            : $"segment {path} is damaged at offset {at} ({found}), but {DurableEndFile.FileName} records that it was fsynced through offset " +
              $"{claimed}: the damaged bytes had been acknowledged";
        return new StorageCorruptedException($"{what}. {Advice}", path, at);
    }

    private static string Describe(in DurableEnd claim) =>
        $"last index {claim.LastIndex}, term {claim.HardState.Term}, vote {claim.HardState.Vote}, commit {claim.HardState.Commit}";
}

using RaftMQ.Raft;
using RaftMQ.Storage;
using RaftMQ.Storage.CrashWriter;

// Appends batches to a log with fsync and prints "ack <first> <last> <term>" after each batch is durable, until
// killed. A test kills it at random moments and checks that every acknowledged batch survived.
if (args.Length != 2 || !int.TryParse(args[1], out var seed))
{
    Console.Error.WriteLine("usage: RaftMQ.Storage.CrashWriter <directory> <seed>");
    return 2;
}
using var log = DurableLogStorage.Open(args[0], CrashPayload.Options);
var random = new Random(seed);
var term = log.HardState.Term + 1;
log.Save(new HardState(term, 1, 0), [], sync: true);
Console.Out.WriteLine($"ready {log.LastIndex}");
var batch = new List<Entry>();
while (true)
{
    var first = log.LastIndex + 1;
    if (random.Next(20) == 0 && log.LastIndex > log.FirstIndex + 10)
    {
        // A new leader overwrites a few entries: the batch replaces the log's suffix.
        term++;
        first = log.LastIndex - (ulong)random.Next(1, 10);
        log.Save(new HardState(term, 1, 0), [], sync: false);
    }
    batch.Clear();
    // Now and then a Ready over MaxBatchBytes (up to most of a segment), which Save splits into batches.
    var count = random.Next(10) == 0 ? random.Next(100, 500) : random.Next(1, 100);
    for (var i = 0; i < count; i++)
    {
        var index = first + (ulong)i;
        batch.Add(new Entry(index, term, EntryType.Command, CrashPayload.For(index, term)));
    }
    log.Save(null, batch, sync: true);
    Console.Out.WriteLine($"ack {first} {log.LastIndex} {term}");
    if (log.LastIndex - log.Snapshot.Index > 5000)
    {
        var keep = log.LastIndex - 2000;
        log.Compact(new SnapshotMetadata(keep, log.Term(keep)));
    }
}

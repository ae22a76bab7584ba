using System.Diagnostics;
using System.Globalization;
using RaftMQ.Queue;

// A group whose lowest DELAYED in-flight messages were nacked with a one-hour delay and whose READY ones above them
// had their leases end: what each receive of MAX messages costs the applying loop, and what expiring the ended
// leases cost (docs/benchmarks.md, "Receives past delayed redeliveries").
if (args.Length is < 2 or > 3)
{
    Console.Error.WriteLine("usage: ready-receive.sh DELAYED READY [MAX]");
    return 2;
}
var delayed = int.Parse(args[0], CultureInfo.InvariantCulture);
var ready = int.Parse(args[1], CultureInfo.InvariantCulture);
var max = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 1000;
var directory = Path.Combine(Path.GetTempPath(), "raftmq-ready-receive-" + Guid.NewGuid().ToString("N"));
try
{
    using var sm = new QueueStateMachine(directory);
    ulong index = 0;
    QueueResult Run(QueueCommand c) => (QueueResult)sm.Apply(++index, c.Encode())!;
    long now = 1_000;
    Run(QueueCommand.ConfigureTopic("t", 1_000));
    var total = delayed + ready;
    for (var sent = 0; sent < total; sent += 1_000)
        Run(QueueCommand.PublishMessages("t", [.. Enumerable.Range(0, Math.Min(1_000, total - sent)).Select(_ => new QueueMessage(new byte[16]))], now));
    var receipts = new List<Receipt>();
    while (receipts.Count < total)
    {
        var got = Run(QueueCommand.Receive("t", "default", 1_000, 10_000, now));
        if (got.Delivered!.Count == 0) throw new InvalidOperationException($"only {receipts.Count} leased: DELAYED + READY must be within a group's in-flight bound ({QueueLimits.Default.MaxInFlightPerGroup})");
        receipts.AddRange(got.Delivered!.Select(m => new Receipt(m.Offset, m.DeliveryCount) { Tag = got.ReceiptTag }));
    }
    for (var i = 0; i < delayed; i += 1_000)
    {
        var batch = receipts.GetRange(i, Math.Min(1_000, delayed - i));
        if (Run(QueueCommand.Nack("t", "default", batch, 3_600_000, null, now)).Count != batch.Count) throw new InvalidOperationException("a nack was refused");
    }
    now += 20_000; // the other leases ended
    var expiry = Stopwatch.StartNew();
    Run(QueueCommand.Extend("t", "default", [new Receipt(0, 99) { Tag = 1 }], 1_000, now)); // expires the ended leases, extends nothing
    var expired = expiry.Elapsed.TotalMilliseconds;
    var times = new List<double>();
    for (var delivered = 0; delivered < ready;)
    {
        var watch = Stopwatch.StartNew();
        var got = Run(QueueCommand.Receive("t", "default", max, 10_000, now));
        times.Add(watch.Elapsed.TotalMilliseconds);
        if (got.Delivered!.Count == 0) throw new InvalidOperationException($"a receive delivered nothing after {delivered}");
        delivered += got.Delivered.Count;
    }
    times.Sort();
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"delayed {delayed}, ready {ready}, max {max}: expiring the ended leases {expired:F1} ms; {times.Count} receives, median {times[times.Count / 2]:F2} ms, max {times[^1]:F2} ms, total {times.Sum():F0} ms"));
    return 0;
}
finally
{
    if (Directory.Exists(directory)) Directory.Delete(directory, recursive: true);
}

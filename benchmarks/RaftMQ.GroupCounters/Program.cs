using System.Diagnostics;
using System.Text;
using RaftMQ.Queue;

// Fills one topic (in a temporary directory) with DELAYED messages published with a delay of an hour, in batches of
// 1,000 whose leader stamps are SPREAD_MS apart, the topic having GROUPS groups besides `default`; then builds the
// group counters (what a node's loop does at most once a second, QueueStateMachine.PublishReaderView) at times
// before, while and after the messages fall due, with no command between: a topic nothing touches while its delays
// end. With LEASED, each group (default too) first holds that many messages leased for two hours. Prints each build's
// time and the delayed and ready counts of `default`.
int[] numbers = [.. args.Select(a => int.TryParse(a, out var n) && n >= 0 ? n : -1)];
if (args.Length is < 3 or > 4 || numbers.Any(n => n < 0) || numbers[0] < 1000 || numbers[2] < 1)
{
    Console.Error.WriteLine("usage: RaftMQ.GroupCounters DELAYED(>=1000) GROUPS SPREAD_MS(>=1) [LEASED_PER_GROUP]");
    return 2;
}
var (delayed, groups, spread) = (numbers[0], numbers[1], numbers[2]);
var leased = args.Length > 3 ? numbers[3] : 0;
var dir = Path.Combine(Path.GetTempPath(), "raftmq-group-counters-" + Environment.ProcessId);
try
{
    using var sm = new QueueStateMachine(dir, QueueLimits.Default, null);
    ulong index = 1;
    void Apply(QueueCommand c)
    {
        if (sm.Apply(index++, c.Encode()) is QueueResult { Success: false } r) throw new InvalidOperationException($"{c}: {r.Status}");
    }
    Apply(QueueCommand.ConfigureTopic("t", 20));
    for (int g = 0; g < groups; g++) Apply(QueueCommand.CreateGroup("t", $"g{g}", GroupStart.Earliest));
    var body = Encoding.UTF8.GetBytes(new string('x', 20));
    const long FirstStamp = 1_000, DelayMs = 3_600_000;
    var batches = delayed / 1000;
    var filling = Stopwatch.StartNew();
    for (int first = 0; first < leased; first += 1000)
    {
        var count = Math.Min(1000, leased - first);
        Apply(QueueCommand.PublishExtended("t", [.. Enumerable.Repeat(new QueueMessage(body), count)], FirstStamp));
        foreach (var g in new[] { "default" }.Concat(Enumerable.Range(0, groups).Select(g => $"g{g}")))
            Apply(QueueCommand.Receive("t", g, count, 2 * DelayMs, FirstStamp));
    }
    for (int b = 0; b < batches; b++)
    {
        Apply(QueueCommand.PublishExtended("t", [.. Enumerable.Repeat(new QueueMessage(body) { DelayMs = DelayMs }, 1000)], FirstStamp + (long)b * spread));
    }
    Console.WriteLine($"{leased} leased per group, {batches * 1000} delayed messages, {groups} groups besides default, stamps {spread} ms apart per 1,000: filled in {filling.Elapsed.TotalMilliseconds:F0} ms");
    var (firstDue, lastDue) = (FirstStamp + DelayMs, FirstStamp + DelayMs + (batches - 1L) * spread);
    // The builds are at least the refresh interval (1 s) apart, the last one back in time.
    long[] times = [firstDue - 3_001, firstDue - 1, (firstDue + lastDue) / 2, (firstDue + lastDue) / 2 + 1_000, lastDue + 1, lastDue - 1_000];
    foreach (var at in times)
    {
        var clock = Stopwatch.StartNew();
        sm.PublishReaderView(DateTimeOffset.FromUnixTimeMilliseconds(at));
        var took = clock.Elapsed.TotalMilliseconds;
        var counted = sm.GroupCounters().Topics[0].Groups[0];
        Console.WriteLine($"build at {at - firstDue,7} ms from the first due time: {took,7:F1} ms; default: {counted.Delayed} delayed, {counted.Ready} ready");
    }
    return 0;
}
finally
{
    try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
}

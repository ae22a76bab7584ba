using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using RaftMQ.Queue;

// Fills a queue state machine (in a temporary directory) with TOPICS topics, each holding one message per id and
// remembering IDS message ids, then DELAYED messages published with a delay of an hour and LEASED messages leased for
// an hour to the group `default`, then captures a snapshot ROUNDS times: the capture is what the node's loop spends
// (IStateMachine.CaptureSnapshot); the write runs on another thread in a node and is timed only to check the bytes.
// SHAPE `mixed` then settles the leased messages unevenly: of each batch the odd ones are acked (each its own finished
// range above the floor) and every fourth is nacked for an hour with an error (pending), the rest stay leased.
// With LEASED > 0 it then times applying receives and acks of LEASED messages of another topic, 100 per command,
// through the state machine (what the leases' bookkeeping costs the apply path), two times to warm up and then five
// times, printing the median and the least of the five in wall time and in the process's CPU time.
int[] numbers = [.. args.Take(5).Select(a => int.TryParse(a, out var n) && n >= 0 ? n : -1)];
var shape = args.Length > 5 ? args[5] : "leased";
if (args.Length is < 3 or > 6 || numbers.Any(n => n < 0) || numbers[0] < 1 || numbers[2] < 1 || shape is not ("leased" or "mixed"))
{
    Console.Error.WriteLine("usage: RaftMQ.SnapshotCapture TOPICS IDS_PER_TOPIC ROUNDS [DELAYED_PER_TOPIC [LEASED_PER_TOPIC [leased|mixed]]]");
    return 2;
}
var (topicCount, ids, rounds) = (numbers[0], numbers[1], numbers[2]);
var delayed = numbers.Length > 3 ? numbers[3] : 0;
var leased = numbers.Length > 4 ? numbers[4] : 0;
var dir = Path.Combine(Path.GetTempPath(), "raftmq-snapshot-capture-" + Environment.ProcessId);
var limits = new QueueLimits { MaxDedupIdsPerTopic = Math.Max(ids, 1), MaxDedupIds = Math.Max(topicCount * ids, 1), MaxInFlightPerGroup = Math.Max(leased, 1) };
try
{
    using var sm = new QueueStateMachine(dir, limits, null);
    ulong index = 1;
    QueueResult Apply(QueueCommand c)
    {
        var result = (QueueResult)sm.Apply(index++, c.Encode())!;
        return result.Success ? result : throw new InvalidOperationException($"{c}: {result.Status}");
    }
    var body = Encoding.UTF8.GetBytes("hello");
    var filling = Stopwatch.StartNew();
    for (int t = 0; t < topicCount; t++) Apply(QueueCommand.ConfigureTopic($"t{t}", 20));
    for (int t = 0; t < topicCount; t++)
    {
        if (ids + delayed + leased == 0) Apply(QueueCommand.PublishExtended($"t{t}", [new QueueMessage(body)], 1_000));
        for (int first = 0; first < ids; first += limits.MaxBatchMessages)
        {
            var batch = Enumerable.Range(first, Math.Min(limits.MaxBatchMessages, ids - first))
                .Select(i => new QueueMessage(body) { Id = $"message-id-{t}-{i:D12}" }).ToArray();
            Apply(QueueCommand.PublishExtended($"t{t}", batch, 1_000));
        }
        for (int first = 0; first < leased; first += limits.MaxBatchMessages)
        {
            var count = Math.Min(limits.MaxBatchMessages, leased - first);
            Apply(QueueCommand.PublishExtended($"t{t}", [.. Enumerable.Repeat(new QueueMessage(body), count)], 1_000));
            var delivered = Apply(QueueCommand.Receive($"t{t}", "default", count, 3_600_000, 1_000)).Delivered!;
            if (shape != "mixed") continue;
            Receipt[] Pick(int remainder, int modulus) =>
                [.. delivered.Where((_, i) => i % modulus == remainder).Select(m => new Receipt(m.Offset, m.DeliveryCount))];
            Apply(QueueCommand.Ack($"t{t}", "default", Pick(1, 2), 1_000));
            Apply(QueueCommand.Nack($"t{t}", "default", Pick(0, 4), 3_600_000, "failed", 1_000));
        }
        for (int first = 0; first < delayed; first += limits.MaxBatchMessages)
        {
            var count = Math.Min(limits.MaxBatchMessages, delayed - first);
            Apply(QueueCommand.PublishExtended($"t{t}", [.. Enumerable.Repeat(new QueueMessage(body) { DelayMs = 3_600_000 }, count)], 1_000));
        }
    }
    Console.WriteLine($"filled in {filling.Elapsed.TotalMilliseconds:F0} ms");
    var captures = new List<double>();
    for (int r = 0; r < rounds; r++)
    {
        var clock = Stopwatch.StartNew();
        using var snapshot = sm.CaptureSnapshot();
        var captured = clock.Elapsed.TotalMilliseconds;
        using var bytes = new MemoryStream();
        snapshot.WriteTo(bytes);
        captures.Add(captured);
        Console.WriteLine($"round {r + 1}: capture {captured:F1} ms, write {clock.Elapsed.TotalMilliseconds - captured:F1} ms, "
            + $"{bytes.Length:N0} bytes, sha256 {Convert.ToHexString(SHA256.HashData(bytes.GetBuffer().AsSpan(0, (int)bytes.Length)))[..12]}");
    }
    captures.Sort();
    Console.WriteLine($"{topicCount} topics, {ids} ids, {delayed} delayed and {leased} leased messages each ({shape}): median capture {captures[captures.Count / 2]:F1} ms over {rounds} rounds");
    if (leased == 0) return 0;
    Apply(QueueCommand.ConfigureTopic("apply", 20));
    List<double> receives = [], acks = [], receiveCpu = [], ackCpu = [];
    var process = Process.GetCurrentProcess();
    double Cpu()
    {
        process.Refresh();
        return process.TotalProcessorTime.TotalMilliseconds;
    }
    for (int run = -1; run <= 5; run++)
    {
        for (int first = 0; first < leased; first += limits.MaxBatchMessages)
            Apply(QueueCommand.PublishExtended("apply", [.. Enumerable.Repeat(new QueueMessage(body), Math.Min(limits.MaxBatchMessages, leased - first))], 1_000));
        var receipts = new List<Receipt>(leased);
        var cpu = Cpu();
        var clock = Stopwatch.StartNew();
        while (receipts.Count < leased)
        {
            foreach (var m in Apply(QueueCommand.Receive("apply", "default", Math.Min(100, leased - receipts.Count), 3_600_000, 1_000)).Delivered!)
                receipts.Add(new Receipt(m.Offset, m.DeliveryCount));
        }
        var received = clock.Elapsed.TotalMilliseconds;
        var receivedCpu = Cpu() - cpu;
        for (int first = 0; first < leased; first += 100) Apply(QueueCommand.Ack("apply", "default", receipts.GetRange(first, Math.Min(100, leased - first)), 1_000));
        var acked = clock.Elapsed.TotalMilliseconds - received;
        var ackedCpu = Cpu() - cpu - receivedCpu;
        Console.WriteLine($"apply run {run}: receive {leased:N0} in {received:F0} ms ({received * 1e6 / leased:F0} ns each), ack them in {acked:F0} ms ({acked * 1e6 / leased:F0} ns each)");
        if (run < 1) continue;
        receives.Add(received * 1e6 / leased);
        acks.Add(acked * 1e6 / leased);
        receiveCpu.Add(receivedCpu * 1e6 / leased);
        ackCpu.Add(ackedCpu * 1e6 / leased);
    }
    foreach (var list in new[] { receives, acks, receiveCpu, ackCpu }) list.Sort();
    Console.WriteLine($"apply, ns per message (median, least of 5; 100 per command, up to {leased:N0} in flight): receive {receives[2]:F0}, {receives[0]:F0}; "
        + $"ack {acks[2]:F0}, {acks[0]:F0}; in process CPU time: receive {receiveCpu[2]:F0}, {receiveCpu[0]:F0}; ack {ackCpu[2]:F0}, {ackCpu[0]:F0}");
    return 0;
}
finally
{
    if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
}

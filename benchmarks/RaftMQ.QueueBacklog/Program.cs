// The queue-backlog benchmark: a local 3-node cluster is filled with N waiting messages through POST /v1/messages
// (C clients, batches of B) while a probe publishes one small message every 10 ms to another topic. Reports peak RSS
// per node, the fill rate, the probe's latencies, leader changes, disk per node, and how long a follower restarted
// after kill -9 takes to serve its first linearizable read (GET /topic). Run through benchmarks/queue-backlog.sh.
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using RaftMQ.Client;

var opt = Options.Parse(args);
Directory.CreateDirectory(opt.Dir);
var ports = RaftMQ.LoopbackPorts.Take(6);
var http = new[] { ports[0], ports[2], ports[4] };
var config = Path.Combine(opt.Dir, "config.json");
File.WriteAllText(config, "{\"addresses\":[" + string.Join(",", Enumerable.Range(0, 3).Select(i =>
    $"{{\"ip\":\"127.0.0.1\",\"port\":{ports[2 * i]},\"internal_port\":{ports[2 * i + 1]}}}")) + "]}");
var urls = http.Select(p => new Uri($"http://127.0.0.1:{p}")).ToArray();
var pids = new int[3];
var procs = new Process?[3];
using var raw = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };

Process StartNode(int i)
{
    var psi = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
    // exec: the pid is the node's own, for /proc and kill -9.
    psi.ArgumentList.Add("-c");
    psi.ArgumentList.Add($"exec \"$0\" \"$1\" {i} --data-dir \"$2\" {opt.NodeArgs} >> \"$3\" 2>&1");
    psi.ArgumentList.Add(opt.Node);
    psi.ArgumentList.Add(config);
    psi.ArgumentList.Add(Path.Combine(opt.Dir, $"node-{i}"));
    psi.ArgumentList.Add(Path.Combine(opt.Dir, $"node-{i}.log"));
    var p = Process.Start(psi)!;
    procs[i] = p;
    pids[i] = p.Id;
    return p;
}

async Task<(string Role, long Term)?> StatusAsync(int i)
{
    try
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(1));
        var json = JsonDocument.Parse(await raw.GetStringAsync(new Uri(urls[i], "/status"), cts.Token)).RootElement;
        return (json.GetProperty("role").GetString()!, json.GetProperty("term").GetInt64());
    }
    catch (Exception e) when (e is HttpRequestException or OperationCanceledException or JsonException)
    {
        return null;
    }
}

async Task<int> LeaderAsync()
{
    var deadline = Stopwatch.StartNew();
    while (deadline.Elapsed < TimeSpan.FromSeconds(30))
    {
        for (int i = 0; i < 3; i++)
            if (await StatusAsync(i) is ("Leader", _)) return i;
        await Task.Delay(20); // polling interval while waiting for an election
    }
    throw new TimeoutException("no leader within 30 s");
}

async Task<long[]> TermsAsync()
{
    var terms = new long[3];
    for (int i = 0; i < 3; i++) terms[i] = (await StatusAsync(i))?.Term ?? -1;
    return terms;
}

static long ProcKb(int pid, string field)
{
    try
    {
        var line = File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith(field + ":", StringComparison.Ordinal));
        return line is null ? 0 : long.Parse(line[(field.Length + 1)..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
    }
    catch (IOException)
    {
        return 0;
    }
}

// Apparent bytes of the files under dir, each file once: a segment restored from a snapshot is a hard link to it,
// and summing file lengths would count those bytes twice. du counts each inode once.
static long DiskBytes(string dir)
{
    if (!Directory.Exists(dir)) return 0;
    using var du = Process.Start(new ProcessStartInfo("du", ["-sb", dir]) { RedirectStandardOutput = true })!;
    var output = du.StandardOutput.ReadToEnd();
    du.WaitForExit();
    return long.Parse(output.Split('\t')[0], System.Globalization.CultureInfo.InvariantCulture);
}

try
{
    for (int i = 0; i < 3; i++) StartNode(i);
    var leader = await LeaderAsync();
    var clientOptions = new RaftMQClientOptions { AttemptTimeout = TimeSpan.FromSeconds(30), OperationTimeout = TimeSpan.FromSeconds(60) };
    foreach (var u in urls) clientOptions.Nodes.Add(u);
    using var client = new RaftMQClient(clientOptions);
    var probeOptions = new RaftMQClientOptions();
    foreach (var u in urls) probeOptions.Nodes.Add(u);
    using var probeClient = new RaftMQClient(probeOptions);
    var topics = Enumerable.Range(0, opt.Topics).Select(t => opt.Topics == 1 ? "fill" : $"fill-{t}").ToArray();
    foreach (var t in topics) await client.CreateTopicAsync(t);
    // A backlog past the default bounds (1 GiB, 10,000,000 messages a topic) raises them first, as an operator would
    // (PUT /v1/cluster/limits); each message counts its payload and 28 bytes, and the probe adds a few thousand.
    var needBytes = opt.Messages * (opt.Size + 28L) + (64L << 20);
    var needMessages = opt.Messages + 1_000_000L;
    var limits = await client.GetLimitsAsync();
    if (needBytes > Math.Min(limits.MaxBytes, limits.MaxTopicBytes) || needMessages > Math.Min(limits.MaxMessages, limits.MaxTopicMessages))
    {
        limits = await client.SetLimitsAsync(
            Math.Max(needBytes, limits.MaxBytes), Math.Max(needMessages, limits.MaxMessages), Math.Max(needBytes, limits.MaxTopicBytes), Math.Max(needMessages, limits.MaxTopicMessages));
        Console.Error.WriteLine($"raised the queue-wide bounds to {limits.MaxBytes} bytes and {limits.MaxMessages} messages (per topic {limits.MaxTopicBytes}, {limits.MaxTopicMessages})");
    }
    await probeClient.CreateTopicAsync("probe");
    await probeClient.PublishAsync("probe", "warm-up");
    var termsBefore = await TermsAsync();
    Console.Error.WriteLine($"cluster up, leader node {leader}, terms {string.Join(",", termsBefore)}; filling {opt.Messages} x {opt.Size} B over {opt.Topics} topic(s)");

    using var stop = new CancellationTokenSource();
    var peakRssKb = new long[3];
    var sampler = Task.Run(async () =>
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(200));
        do
        {
            for (int i = 0; i < 3; i++) peakRssKb[i] = Math.Max(peakRssKb[i], ProcKb(pids[i], "VmRSS"));
        }
        while (await timer.WaitForNextTickAsync(stop.Token).ConfigureAwait(false));
    });
    var probeLatencies = new List<double>();
    var probeErrors = 0;
    var probe = Task.Run(async () =>
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(opt.ProbeMs));
        while (await timer.WaitForNextTickAsync(stop.Token).ConfigureAwait(false))
        {
            var t0 = Stopwatch.GetTimestamp();
            try
            {
                await probeClient.PublishAsync("probe", "p").ConfigureAwait(false);
            }
            catch (RaftMQException)
            {
                probeErrors++;
            }
            lock (probeLatencies) probeLatencies.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
        }
    });

    var payload = new string('m', opt.Size);
    var batches = (opt.Messages + opt.Batch - 1) / opt.Batch;
    long next = -1, done = 0;
    var fillErrors = 0;
    var fill = Stopwatch.StartNew();
    using (var progress = new Timer(_ => Console.Error.WriteLine(
        $"  {fill.Elapsed.TotalSeconds:F0} s: {Interlocked.Read(ref done)} messages, {Interlocked.Read(ref done) / fill.Elapsed.TotalSeconds:F0} msg/s, RSS MB {string.Join(",", pids.Select(p => ProcKb(p, "VmRSS") / 1024))}"),
        null, 10_000, 10_000))
    {
        await Task.WhenAll(Enumerable.Range(0, opt.Clients).Select(c => Task.Run(async () =>
        {
            long b;
            while ((b = Interlocked.Increment(ref next)) < batches)
            {
                var n = (int)Math.Min(opt.Batch, opt.Messages - b * opt.Batch);
                var batch = new ArraySegment<string>(Enumerable.Repeat(payload, n).ToArray());
                while (true)
                {
                    try
                    {
                        await client.PublishBatchAsync(topics[b % topics.Length], batch).ConfigureAwait(false);
                        break;
                    }
                    catch (ClusterUnavailableException)
                    {
                        Interlocked.Increment(ref fillErrors); // not applied: send it again
                    }
                }
                Interlocked.Add(ref done, n);
            }
        })));
    }
    var fillSeconds = fill.Elapsed.TotalSeconds;
    await stop.CancelAsync();
    await Task.WhenAll(sampler.ContinueWith(_ => { }), probe.ContinueWith(_ => { }));
    var termsAfter = await TermsAsync();
    var hwmKb = pids.Select(p => ProcKb(p, "VmHWM")).ToArray();
    var disk = Enumerable.Range(0, 3).Select(i => DiskBytes(Path.Combine(opt.Dir, $"node-{i}"))).ToArray();
    var liveBytes = opt.Messages * (opt.Size + 28L);

    // A follower, kill -9, then restarted: time from launch to its first linearizable read.
    leader = await LeaderAsync();
    var follower = Enumerable.Range(0, 3).First(i => i != leader);
    procs[follower]!.Kill();
    await procs[follower]!.WaitForExitAsync();
    var restartClock = Stopwatch.StartNew();
    StartNode(follower);
    string? firstAnswer = null;
    while (restartClock.Elapsed < TimeSpan.FromMinutes(5))
    {
        try
        {
            using var r = await raw.GetAsync(new Uri(urls[follower], "/topic"));
            if (r.StatusCode == HttpStatusCode.OK)
            {
                firstAnswer = await r.Content.ReadAsStringAsync();
                break;
            }
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            // Not listening yet; try again at once.
        }
    }
    var restartMs = restartClock.Elapsed.TotalMilliseconds;
    var restartedRssKb = ProcKb(pids[follower], "VmHWM");
    var restartedDisk = DiskBytes(Path.Combine(opt.Dir, $"node-{follower}"));

    double[] sorted;
    lock (probeLatencies) sorted = [.. probeLatencies.Order()];
    double Pct(double p) => sorted.Length == 0 ? 0 : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];
    var result = new Dictionary<string, object>
    {
        ["messages"] = opt.Messages, ["size"] = opt.Size, ["topics"] = opt.Topics, ["clients"] = opt.Clients, ["batch"] = opt.Batch,
        ["fill_seconds"] = Math.Round(fillSeconds, 2),
        ["fill_msgs_per_s"] = Math.Round(opt.Messages / fillSeconds),
        ["fill_mb_per_s"] = Math.Round(opt.Messages * (double)opt.Size / 1e6 / fillSeconds, 1),
        ["fill_retries"] = fillErrors,
        ["peak_rss_mb_sampled"] = peakRssKb.Select(k => k / 1024).ToArray(),
        ["peak_rss_mb_vmhwm"] = hwmKb.Select(k => k / 1024).ToArray(),
        ["probe_requests"] = sorted.Length, ["probe_errors"] = probeErrors,
        ["probe_p50_ms"] = Math.Round(Pct(0.50), 1), ["probe_p99_ms"] = Math.Round(Pct(0.99), 1),
        ["probe_max_ms"] = Math.Round(sorted.LastOrDefault(), 1),
        ["probe_over_150ms"] = sorted.Count(l => l > 150),
        ["terms_before"] = termsBefore, ["terms_after"] = termsAfter,
        ["disk_mb"] = disk.Select(d => d / 1_000_000).ToArray(),
        ["live_mb"] = liveBytes / 1_000_000,
        ["restart_follower"] = follower, ["restart_first_read_ms"] = Math.Round(restartMs),
        ["restart_answered"] = firstAnswer is not null, ["restarted_peak_rss_mb"] = restartedRssKb / 1024,
        ["restarted_disk_mb"] = restartedDisk / 1_000_000,
    };
    Console.WriteLine(JsonSerializer.Serialize(result));
    return firstAnswer is null ? 1 : 0;
}
finally
{
    foreach (var p in procs)
    {
        if (p is { HasExited: false }) p.Kill();
        p?.WaitForExit();
    }
    if (!opt.Keep) Directory.Delete(opt.Dir, recursive: true);
}

internal sealed record Options(
    string Node, string Dir, long Messages, int Size, int Topics, int Clients, int Batch, int ProbeMs, string NodeArgs, bool Keep)
{
    public static Options Parse(string[] args)
    {
        var o = new Options("", "", 2_000_000, 100, 1, 16, 1000, 10, "", false);
        for (int i = 0; i < args.Length; i++)
        {
            string V() => args[++i];
            o = args[i] switch
            {
                "--node" => o with { Node = V() },
                "--dir" => o with { Dir = V() },
                "--messages" => o with { Messages = long.Parse(V(), CultureInfo.InvariantCulture) },
                "--size" => o with { Size = int.Parse(V(), CultureInfo.InvariantCulture) },
                "--topics" => o with { Topics = int.Parse(V(), CultureInfo.InvariantCulture) },
                "--clients" => o with { Clients = int.Parse(V(), CultureInfo.InvariantCulture) },
                "--batch" => o with { Batch = int.Parse(V(), CultureInfo.InvariantCulture) },
                "--probe-ms" => o with { ProbeMs = int.Parse(V(), CultureInfo.InvariantCulture) },
                "--node-args" => o with { NodeArgs = V() },
                "--keep" => o with { Keep = true },
                _ => throw new ArgumentException($"unknown option {args[i]}"),
            };
        }
        if (o.Node.Length == 0 || o.Dir.Length == 0) throw new ArgumentException("need --node PATH and --dir DIR");
        return o;
    }
}

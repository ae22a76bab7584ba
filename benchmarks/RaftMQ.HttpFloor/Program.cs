using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Win32.SafeHandles;
using RaftMQ.Hosting;

// Two floors for the REST API's single-message requests (docs/benchmarks.md, "What HTTP/1.1 alone costs" and
// "What replication alone costs"), measured with ../shared/bench's rrmq load generator:
//   RaftMQ.HttpFloor PORT
//       the node's web host (NodeWebApplication: the same Kestrel set-up, limits and connection limiter) answering
//       the load generator's requests with fixed bodies: the cost of HTTP/1.1 alone.
//   RaftMQ.HttpFloor PORT --replicate DIR FOLLOWER_PORT FOLLOWER_PORT
//       the same, but each publish and each pop is first made durable as a RaftMQ leader must: its record is sent to
//       both followers, appended to DIR/log and fsynced, and answered once this process and one follower have it on
//       disk. One thread does all of the replication with blocking calls, a batch at a time (whatever arrived while
//       the last batch was out goes in the next): the fewest thread wake-ups a replicated, fsynced answer can cost.
//   RaftMQ.HttpFloor --follower DIR PORT
//       a follower for the above: one thread that reads a batch, appends it to DIR/log, fsyncs and acknowledges.
// No election, no log index, no state machine: a floor, not a server anyone should use.
if (args is ["--follower", var followerDir, var followerPort] && int.TryParse(followerPort, out var fport))
{
    RunFollower(followerDir, fport);
    return 0;
}
Replicator? replicator = null;
if (args.Length == 5 && args[1] == "--replicate" && int.TryParse(args[3], out var p1) && int.TryParse(args[4], out var p2))
    replicator = new Replicator(args[2], [p1, p2]);
else if (args.Length != 1)
{
    Console.Error.WriteLine("usage: RaftMQ.HttpFloor PORT [--replicate DIR FOLLOWER_PORT FOLLOWER_PORT] | --follower DIR PORT");
    return 2;
}
if (!int.TryParse(args[0], out var port) || port is < 1 or > 65535)
{
    Console.Error.WriteLine($"not a port: {args[0]}");
    return 2;
}

var builder = NodeWebApplication.CreateBuilder(new IPEndPoint(IPAddress.Loopback, port), LogLevel.Warning, 1 << 20);
var app = builder.Build();
byte[] status = """{"role":"Leader","term":1}"""u8.ToArray();
byte[] success = """{"success":true}"""u8.ToArray();
byte[] message = """{"success":true,"message":"0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"}"""u8.ToArray();
byte[] popRecord = new byte[16]; // what a pop puts in the log: the topic's cursor moving on

long requests = 0;
app.Use(next => ctx => { Interlocked.Increment(ref requests); return next(ctx); });
app.MapGet("/status", ctx => Answer(ctx, status));
app.MapPut("/topic", async ctx => { await Drain(ctx); await Answer(ctx, success); });
app.MapPut("/message", async ctx =>
{
    var body = await Drain(ctx);
    if (replicator != null) await replicator.Replicate(body);
    await Answer(ctx, success);
});
app.MapGet("/message/{**topic}", async ctx =>
{
    if (replicator != null) await replicator.Replicate(popRecord);
    await Answer(ctx, message);
});
Console.WriteLine($"listening on http://127.0.0.1:{port}");
await app.RunAsync();
// On SIGTERM: what the requests cost this process, for the CPU per request beside the load generator's rate.
var cpu = Environment.CpuUsage;
Console.WriteLine($"requests {requests}, cpu user {cpu.UserTime.TotalMilliseconds:F0} ms, system {cpu.PrivilegedTime.TotalMilliseconds:F0} ms, "
    + $"{(requests == 0 ? 0 : cpu.TotalTime.TotalMilliseconds * 1000 / requests):F1} µs a request"
    + (replicator == null ? "" : $", {replicator.Batches} batches"));
return 0;

// The body is read whole, as the node reads a request's JSON.
static async Task<byte[]> Drain(HttpContext ctx)
{
    var body = new MemoryStream();
    await ctx.Request.Body.CopyToAsync(body);
    return body.ToArray();
}

static Task Answer(HttpContext ctx, byte[] body)
{
    ctx.Response.StatusCode = 200;
    ctx.Response.ContentType = "application/json";
    ctx.Response.ContentLength = body.Length;
    return ctx.Response.Body.WriteAsync(body).AsTask();
}

// A frame is [length: 4][batch number: 8][records]; the answer is the batch number, once it is on disk.
static void RunFollower(string dir, int port)
{
    using var log = Wire.OpenLog(dir);
    using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
    listener.Bind(new IPEndPoint(IPAddress.Loopback, port));
    listener.Listen();
    Console.WriteLine($"follower listening on {port}");
    long offset = 0, batches = 0;
    var header = new byte[12];
    var buffer = new byte[1 << 20];
    var answer = new byte[8];
    while (true)
    {
        using var peer = listener.Accept();
        peer.NoDelay = true;
        try
        {
            while (Wire.ReadExactly(peer, header))
            {
                var length = BinaryPrimitives.ReadInt32LittleEndian(header);
                if (length > buffer.Length) buffer = new byte[length];
                if (!Wire.ReadExactly(peer, buffer.AsSpan(0, length))) break;
                RandomAccess.Write(log, buffer.AsSpan(0, length), offset);
                offset += length;
                RandomAccess.FlushToDisk(log);
                header.AsSpan(4, 8).CopyTo(answer);
                peer.Send(answer);
                batches++;
            }
        }
        catch (SocketException) { } // the leader stopped
        var cpu = Environment.CpuUsage;
        Console.WriteLine($"leader gone after {batches} batches, cpu user {cpu.UserTime.TotalMilliseconds:F0} ms, system {cpu.PrivilegedTime.TotalMilliseconds:F0} ms");
    }
}

static class Wire
{
    public static SafeFileHandle OpenLog(string dir)
    {
        Directory.CreateDirectory(dir);
        return File.OpenHandle(Path.Combine(dir, "log"), FileMode.Create, FileAccess.ReadWrite);
    }

    public static bool ReadExactly(Socket socket, Span<byte> into)
    {
        while (into.Length > 0)
        {
            var n = socket.Receive(into);
            if (n == 0) return false;
            into = into[n..];
        }
        return true;
    }
}

sealed class Replicator
{
    private readonly ConcurrentQueue<(byte[] Record, TaskCompletionSource Done)> _pending = new();
    private readonly AutoResetEvent _work = new(false);
    private readonly Socket[] _followers;
    private readonly long[] _acked;
    private readonly SafeFileHandle _log;
    private long _offset;
    private int _sleeping;
    private int _count;
    // FLOOR_MIN_BATCH (an experiment on batch size): a batch waits, up to 1 ms, until that many records are pending.
    private readonly int _minBatch = int.TryParse(Environment.GetEnvironmentVariable("FLOOR_MIN_BATCH"), out var m) ? m : 1;
    public long Batches;

    public Replicator(string dir, int[] followerPorts)
    {
        _log = Wire.OpenLog(dir);
        _followers = followerPorts.Select(p =>
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            s.Connect(new IPEndPoint(IPAddress.Loopback, p));
            return s;
        }).ToArray();
        _acked = new long[_followers.Length];
        new Thread(Run) { IsBackground = true, Name = "replicator" }.Start();
    }

    public Task Replicate(byte[] record)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending.Enqueue((record, done));
        // The first record wakes a replicator sleeping without a deadline (it then waits up to 1 ms for the rest).
        var count = Interlocked.Increment(ref _count);
        if ((count >= _minBatch || count == 1) && Volatile.Read(ref _sleeping) == 1) _work.Set();
        return done.Task;
    }

    private void Run()
    {
        var batch = new List<TaskCompletionSource>();
        var frame = new MemoryStream();
        var answer = new byte[8];
        var readable = new List<Socket>(_followers.Length);
        for (long number = 1; ; number++)
        {
            // Sleep only when nothing is pending (announce it first, so that a writer that sees it sets the event).
            while (Volatile.Read(ref _count) < _minBatch)
            {
                Volatile.Write(ref _sleeping, 1);
                var some = Volatile.Read(ref _count) > 0;
                var woken = Volatile.Read(ref _count) >= _minBatch || _work.WaitOne(some ? 1 : -1);
                Volatile.Write(ref _sleeping, 0);
                if (!woken && some) break;
            }
            batch.Clear();
            frame.SetLength(12);
            frame.Position = 12;
            while (_pending.TryDequeue(out var item))
            {
                Interlocked.Decrement(ref _count);
                frame.Write(item.Record);
                batch.Add(item.Done);
            }
            var bytes = frame.GetBuffer().AsSpan(0, (int)frame.Length);
            BinaryPrimitives.WriteInt32LittleEndian(bytes, bytes.Length - 12);
            BinaryPrimitives.WriteInt64LittleEndian(bytes[4..], number);
            foreach (var follower in _followers) follower.Send(bytes);
            RandomAccess.Write(_log, bytes[12..], _offset);
            _offset += bytes.Length - 12;
            RandomAccess.FlushToDisk(_log);
            // This node has it on disk; one follower more is a majority of three.
            while (_acked.Max() < number)
            {
                readable.Clear();
                readable.AddRange(_followers);
                Socket.Select(readable, null, null, -1);
                foreach (var follower in readable)
                {
                    if (!Wire.ReadExactly(follower, answer)) throw new IOException("a follower closed its connection");
                    var i = Array.IndexOf(_followers, follower);
                    _acked[i] = Math.Max(_acked[i], BinaryPrimitives.ReadInt64LittleEndian(answer));
                }
            }
            foreach (var done in batch) done.SetResult();
            Batches++;
        }
    }
}

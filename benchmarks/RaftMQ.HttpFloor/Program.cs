using System.Net;
using Microsoft.Extensions.Logging;
using RaftMQ.Hosting;

// The node's web host (NodeWebApplication: the same Kestrel set-up, limits and connection limiter) answering the
// requests of ../shared/bench's rrmq load generator with fixed bodies: the cost of the REST API's HTTP/1.1 alone.
//   usage: RaftMQ.HttpFloor PORT
if (args.Length != 1 || !int.TryParse(args[0], out var port) || port is < 1 or > 65535)
{
    Console.Error.WriteLine("usage: RaftMQ.HttpFloor PORT");
    return 2;
}

var builder = NodeWebApplication.CreateBuilder(new IPEndPoint(IPAddress.Loopback, port), LogLevel.Warning, 1 << 20);
var app = builder.Build();
byte[] status = """{"role":"Leader","term":1}"""u8.ToArray();
byte[] success = """{"success":true}"""u8.ToArray();
byte[] message = """{"success":true,"message":"0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"}"""u8.ToArray();

long requests = 0;
app.Use(next => ctx => { Interlocked.Increment(ref requests); return next(ctx); });
app.MapGet("/status", ctx => Answer(ctx, status));
app.MapPut("/topic", async ctx => { await Drain(ctx); await Answer(ctx, success); });
app.MapPut("/message", async ctx => { await Drain(ctx); await Answer(ctx, success); });
app.MapGet("/message/{**topic}", ctx => Answer(ctx, message));
Console.WriteLine($"listening on http://127.0.0.1:{port}");
await app.RunAsync();
// On SIGTERM: what the requests cost this process, for the CPU per request beside the load generator's rate.
var cpu = Environment.CpuUsage;
Console.WriteLine($"requests {requests}, cpu user {cpu.UserTime.TotalMilliseconds:F0} ms, system {cpu.PrivilegedTime.TotalMilliseconds:F0} ms, "
    + $"{(requests == 0 ? 0 : cpu.TotalTime.TotalMilliseconds * 1000 / requests):F1} µs a request");
return 0;

// The body is read whole, as the node reads a request's JSON.
static async Task Drain(HttpContext ctx)
{
    var buffer = new byte[4096];
    while (await ctx.Request.Body.ReadAsync(buffer) > 0) { }
}

static Task Answer(HttpContext ctx, byte[] body)
{
    ctx.Response.StatusCode = 200;
    ctx.Response.ContentType = "application/json";
    ctx.Response.ContentLength = body.Length;
    return ctx.Response.Body.WriteAsync(body).AsTask();
}

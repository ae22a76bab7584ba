using System.Net;
using System.Text;

namespace RaftMQ.Cli.Tests;

/// <summary>One request a <see cref="ScriptedNode"/> received.</summary>
public sealed record ScriptedRequest(string Method, string Path, string Body);

/// <summary>
/// An HTTP server on a free loopback port that answers each request as its script says (status, JSON body), and
/// records what it was asked: a node in whatever state a test needs, which a real cluster cannot be put in on demand
/// (a member at port 80, a leader at an address nothing listens on).
/// </summary>
public sealed class ScriptedNode : IAsyncDisposable
{
    private readonly HttpListener _listener = new();
    private readonly Task _loop;
    private readonly Func<ScriptedNode, ScriptedRequest, (int Status, string Body, string? ErrorCode)> _script;
    private readonly Lock _gate = new();
    private readonly List<ScriptedRequest> _requests = [];

    public ScriptedNode(Func<ScriptedNode, ScriptedRequest, (int Status, string Body)> script)
        : this((self, request) =>
        {
            var (status, body) = script(self, request);
            return (status, body, null);
        })
    {
    }

    /// <summary>A node whose script also gives an answer's error code (the <c>X-RaftMQ-Error</c> header), or null.</summary>
    public ScriptedNode(Func<ScriptedNode, ScriptedRequest, (int Status, string Body, string? ErrorCode)> script)
    {
        _script = script;
        var port = RaftMQ.TestSupport.TestCluster.FreePorts(1)[0];
        Url = $"http://127.0.0.1:{port}";
        _listener.Prefixes.Add(Url + "/");
        _listener.Start();
        _loop = Task.Run(ServeAsync);
    }

    /// <summary>The node's URL, <c>http://127.0.0.1:PORT</c>.</summary>
    public string Url { get; }

    public IReadOnlyList<ScriptedRequest> Requests
    {
        get
        {
            lock (_gate) return [.. _requests];
        }
    }

    private async Task ServeAsync()
    {
        while (true)
        {
            HttpListenerContext ctx;
            try
            {
                ctx = await _listener.GetContextAsync();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }
            string body;
            using (var reader = new StreamReader(ctx.Request.InputStream, Encoding.UTF8)) body = await reader.ReadToEndAsync();
            var request = new ScriptedRequest(ctx.Request.HttpMethod, ctx.Request.Url!.AbsolutePath, body);
            lock (_gate) _requests.Add(request);
            var (status, answer, code) = _script(this, request);
            var bytes = Encoding.UTF8.GetBytes(answer);
            ctx.Response.StatusCode = status;
            ctx.Response.ContentType = "application/json";
            if (code is not null) ctx.Response.Headers["X-RaftMQ-Error"] = code;
            ctx.Response.ContentLength64 = bytes.Length;
            try
            {
                await ctx.Response.OutputStream.WriteAsync(bytes);
                ctx.Response.Close();
            }
            catch (Exception e) when (e is HttpListenerException or IOException or ObjectDisposedException)
            {
                // The client went away.
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _listener.Close();
        await _loop;
    }
}

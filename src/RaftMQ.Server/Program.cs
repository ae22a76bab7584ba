using Microsoft.Extensions.Logging;
using RaftMQ.Hosting;
using RaftMQ.Queue;
using RaftMQ.Server;

NodeWebApplication.RunSocketCompletionsInline(); // first: before any socket (docs/runtime.md, "Who runs the loop")
// The first answer's JSON metadata is built on the other core while this one starts the web host (docs/benchmarks.md).
_ = Task.Run(() => System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(new StatusResponse("Follower", 0), ServerJsonContext.Default.StatusResponse));
NodeSettings settings;
ClusterConfig? config = null;
NodeAddress me;
try
{
    settings = NodeSettings.Parse(args);
    if (settings.ConfigPath.Length > 0)
    {
        config = ClusterConfig.Load(settings.ConfigPath);
        config.Address(settings.Index);
    }
    me = settings.Address ?? config!.Address(settings.Index);
}
catch (HelpRequestedException)
{
    Console.Out.WriteLine(NodeSettings.Usage);
    return 0;
}
catch (ConfigException e)
{
    // One line; the usage after it only when the command line itself is malformed (not a value or the config file).
    Console.Error.WriteLine($"raftmq-node: {e.Message}");
    if (e.ShowUsage) Console.Error.WriteLine(NodeSettings.Usage);
    return 2;
}

// Where the node listens: a host name is resolved once, here, and its first address taken (docs/operations.md).
System.Net.IPAddress listenAddress;
try
{
    listenAddress = ClusterConfig.ListenAddress(me.Ip);
}
catch (ConfigException e)
{
    Console.Error.WriteLine($"raftmq-node: {e.Message}");
    return 2;
}

// Clients' API keys (--auth-file): a file that cannot be used stops the node here; later changes are reloaded.
ApiKeyStore? apiKeys = null;
if (settings.AuthFile is { } authFile)
{
    try
    {
        apiKeys = ApiKeyStore.Open(authFile, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
    }
    catch (ApiKeyFileException e)
    {
        Console.Error.WriteLine($"raftmq-node: {e.Message}");
        return 2;
    }
}

// TLS (--tls-cert, --tls-key, --tls-ca): files that cannot be used stop the node here, with one line naming the file.
NodeTls? tls = null;
if (settings.Tls)
{
    try
    {
        tls = NodeTls.Load(settings.TlsCert!, settings.TlsKey!, settings.TlsCa!, me.Ip);
    }
    catch (ConfigException e)
    {
        Console.Error.WriteLine($"raftmq-node: {e.Message}");
        return 2;
    }
    if (settings.Join is { Scheme: not "https" } plainJoin)
    {
        Console.Error.WriteLine($"raftmq-node: --join {plainJoin.OriginalString}: a node with TLS joins a TLS cluster, at an https:// address");
        return 2;
    }
    NodeHttp.UseTls(tls.Authority);
}
else if (settings.Join is { Scheme: "https" } tlsJoin)
{
    Console.Error.WriteLine($"raftmq-node: --join {tlsJoin.OriginalString}: a node without TLS joins a cluster without TLS, at an http:// address (a TLS cluster's nodes run with --tls-cert, --tls-key and --tls-ca)");
    return 2;
}

// The data directory, before anything in it is read or written and before the secret step (which reads the
// directory's copy of the secret or adds it) or a join: created if missing, and locked, one node process per data
// directory (a node started twice on it, the same command run again or two nodes given one --data-dir, would delete
// the running node's queue files at its start). Taking the lock opens a file there for writing, so it is also the
// check that the node can write there: a directory it cannot create or write stops it here, in one line naming the
// directory and the system's reason, not at the secret step, after a join, or at its first write.
var dataDirectory = settings.DataDirectoryFor(config);
DataDirectoryLock dataLock;
try
{
    dataLock = DataDirectoryLock.Acquire(dataDirectory);
}
catch (Exception e) when (e is DataDirectoryInUseException or DataDirectoryUnusableException)
{
    // A condition of the machine that may pass (the other process stops, the disk is remounted read-write): exit 1,
    // as for a port in use.
    Console.Error.WriteLine($"raftmq-node: {e.Message}");
    return 1;
}
using var heldDataLock = dataLock; // held until the process exits

// The peers' secret: found, or created for a new cluster, before anything listens (docs/security.md).
RaftMQ.Hosting.ClusterSecret secret;
try
{
    secret = RaftMQ.Hosting.ClusterSecret.Resolve(settings.SecretSources(config));
}
catch (ConfigException e)
{
    // A joining node refused for having no secret leaves no directory behind (the lock's, when this start made it).
    dataLock.Abandon();
    Console.Error.WriteLine($"raftmq-node: {e.Message}");
    return 2;
}

// Who this node is: stored in its data directory at its first start (bootstrapped from the config, or joined).
NodeIdentity identity;
try
{
    identity = await NodeIdentityStart.ResolveAsync(settings, config, me, dataDirectory);
}
catch (ConfigException e)
{
    // A join the cluster refused stored nothing: a directory this start made goes (one that holds files stays).
    dataLock.Abandon();
    Console.Error.WriteLine($"raftmq-node: {e.Message}");
    return 2;
}
settings = settings with { Index = ClusterConfig.IndexOf(identity.NodeId) };
var members = new MemberDirectory(identity.Members);

// The Raft host (storage, peer transport) starts on the other core while this one builds the web host, so the first
// HTTP request does not compete with it for the CPU (docs/benchmarks.md, "Node start-up"). Both log through one factory.
using var loggers = NodeWebApplication.CreateLoggerFactory(settings.LogLevel, settings.LogFormat);
var logger = loggers.CreateLogger("RaftMQ.Node");
// The queue keeps its messages in segment files beside the Raft log; it rebuilds them from the snapshot and the log.
var disk = new DiskAlarm(dataDirectory, settings.DiskFreeLimitMb * 1024L * 1024, TimeProvider.System, logger);
QueueStateMachine queue;
try
{
    queue = new QueueStateMachine(Path.Combine(dataDirectory, "queue"));
}
catch (Exception e) when (e is IOException or UnauthorizedAccessException)
{
    // A data directory the node cannot write (read-only, not its owner's, a disk error): a clear line, not a crash.
    logger.LogCritical("Node {Index} could not start: {Message}", settings.Index, e.Message);
    return 1;
}
var node = new QueueNode(settings, identity, members, queue, disk);
using var queueInstruments = new QueueInstruments(node.StateMachine);
using var httpInstruments = new HttpInstruments();
// Every command a request can become must be one the node accepts (no input within the limits may stop a node);
// the limits do not depend on the secret.
var limitOptions = settings.HostOptions(identity, me, dataDirectory, clusterSecret: [], listenAddress: listenAddress);
ServerLimits.CheckAgainst(limitOptions);
ServerLimits.CheckAgainst(node.StateMachine.Limits, node.Forwarding);
// Every connection the bounds allow, plus the node's files, must fit the open-file limit (docs/rest-api.md).
var httpLimits = settings.HttpLimits();
var descriptors = FileDescriptorBudget.Apply(FileDescriptorBudget.For(limitOptions, httpLimits), httpExplicit: settings.MaxConnections is not null);
if (descriptors.Error is not null)
{
    Console.Error.WriteLine($"raftmq-node: {descriptors.Error}");
    return 2;
}
if (descriptors.Warning is not null) logger.LogWarning("{Warning}", descriptors.Warning);
httpLimits = httpLimits with
{
    MaxConnections = descriptors.HttpConnections,
    MaxConnectionsPerAddress = Math.Min(httpLimits.MaxConnectionsPerAddress, descriptors.HttpConnections),
};
// A passphrase's key comes from a slow KDF, so it is derived on that other core too, off the first answer's path.
var raftStart = Task.Run(() => RaftHost.StartAsync(settings.HostOptions(identity, me, dataDirectory, secret.Key(), members, listenAddress) with { ReadDiskAlarm = node.ReadDiskAlarm, WaitingToApply = () => node.Waiters.Waiting > 0, PeerTls = tls?.Peer }, node.StateMachine, node.Forwarding, loggers));
var builder = NodeWebApplication.CreateBuilder(new System.Net.IPEndPoint(listenAddress, me.Port), settings.LogLevel, ServerLimits.MaxRequestBodyBytes, loggers, httpLimits, tls?.Certificate);

NodeEndpoints.AddServices(builder, node);
var app = builder.Build();
// Every answer says its type is the one it has (JSON answers leave <>&' unescaped: NodeWebApplication.AnswerJson).
app.Use((ctx, next) =>
{
    ctx.Response.Headers.XContentTypeOptions = "nosniff";
    return next(ctx);
});
app.Use(httpInstruments.Middleware);
// Before routing: a target that names a host must never reach the forwarding to the leader, and one whose path the
// server would rewrite (dot segments, bad escapes) never reaches another endpoint than it names (RequestTarget).
app.Use(RequestTarget.Check);
// Host, Origin and API key checks, before routing: a refused request never reaches an endpoint (docs/security.md).
if (apiKeys is not null) apiKeys.Logger = loggers.CreateLogger("RaftMQ.Auth");
var guard = new RequestGuard(apiKeys, settings.AuthRrmq, settings.AllowedOrigins,
    settings.AllowedHosts is { } hosts ? [.. hosts, me.Ip] : null);
app.Use(guard.InvokeAsync);
app.UseRouting();
app.Use(RequestTarget.AnswerUnrouted);
// The metrics exporter is built once the node serves (it costs tens of milliseconds of CPU that the first answer
// should not wait for); a scrape before then waits for it. Counters and gauges read cumulative values, so they miss
// nothing; the latency histograms and HTTP counts start with it.
var meterProvider = new TaskCompletionSource<OpenTelemetry.Metrics.MeterProvider>(TaskCreationOptions.RunContinuationsAsynchronously);
NodeEndpoints.Map(app, node, meterProvider.Task);
// While Kestrel starts, the other core runs a first request through the endpoints (see WarmUpAsync).
var warmUp = Task.Run(() => NodeWebApplication.WarmUpAsync(app, e => RrmqEndpoints.Map(e, node), "GET", "/status"));

try
{
    await app.StartAsync();
}
catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException)
{
    // A port in use, an address not on this machine: one line naming the address and why, no stack trace.
    var address = me.Ip == listenAddress.ToString() ? $"{me.Ip}:{me.Port}" : $"{me.Ip}:{me.Port} ({new System.Net.IPEndPoint(listenAddress, me.Port)})";
    Console.Error.WriteLine($"raftmq-node: cannot listen on {address}: {ListenFailure(e)}");
    try
    {
        await (await raftStart).DisposeAsync();
    }
    catch (Exception)
    {
        // Exiting for the listen failure reported above; a Raft host that could not start either left nothing running.
    }
    return 1;
}

var exitCode = 0;
RaftHost? host = null;
try
{
    host = await raftStart;
    node.SetStarted(host);
    // Messages past their topic's max_age_ms expire within a second even when no client command moves the clock.
    _ = ExpiryTicker.RunAsync(node, TimeProvider.System, logger, app.Lifetime.ApplicationStopping);
    if (apiKeys is not null)
    {
        logger.LogInformation("Clients authenticate with the {Count} API keys of {Path}{Rrmq}", apiKeys.Current.Keys.Count, settings.AuthFile,
            settings.AuthRrmq ? ", the RRMQ endpoints included" : "; the RRMQ endpoints stay open (--auth-rrmq)");
        _ = apiKeys.WatchAsync(app.Lifetime.ApplicationStopping);
    }
    logger.LogInformation("Peers authenticate with the cluster secret from {Source}", secret.Source);
    if (tls is not null)
        logger.LogInformation("TLS: HTTPS on port {Port} and mutual TLS between peers with {Certificate} ({Subject}, valid until {NotAfter:u}), peers' CA {Ca}",
            me.Port, tls.CertificatePath, tls.Certificate.Subject, tls.Certificate.NotAfter.ToUniversalTime(), tls.Authority.Subject);
    _ = host.Runtime.Completion.ContinueWith(
        t =>
        {
            if (t.IsFaulted)
            {
                // The runtime logged the failure; a full disk gets a line of its own, naming what the alarm saw.
                if (DiskAlarm.IsDiskFull(t.Exception))
                {
                    var d = disk.Current;
                    logger.LogCritical(
                        "Node {Index} stopped: its disk is full (ENOSPC) under {Directory}; {FreeMb} MB free, disk alarm limit {LimitMb} MB. "
                        + "Free space (or raise --disk-free-limit-mb so the alarm refuses publishes sooner), then restart the node: it recovers from its log",
                        settings.Index, d.Directory, d.FreeBytes / (1024 * 1024), d.LimitBytes / (1024 * 1024));
                }
                exitCode = 1;
                app.Lifetime.StopApplication();
            }
        },
        TaskScheduler.Default);
}
catch (Exception e)
{
    // The peer port in use or not on this machine: one line on stderr, as for the HTTP port. Damaged data, an
    // unwritable directory: one line in the log; anything else with its stack trace.
    if (e is IOException { InnerException: System.Net.Sockets.SocketException }) Console.Error.WriteLine($"raftmq-node: {e.Message}");
    else if (RaftHost.DescribeStartFailure(e) is { } reason) logger.LogCritical("Node {Index} could not start: {Message}", settings.Index, reason);
    else logger.LogCritical(e, "Node {Index} could not start: {Message}", settings.Index, e.Message);
    node.SetFailed(e);
    await app.StopAsync();
    return 1;
}

await warmUp;
meterProvider.SetResult(PrometheusEndpoint.StartCollecting(settings.Index));
await app.WaitForShutdownAsync();
await host.DisposeAsync();
await node.DisposeAsync();
(await meterProvider.Task).Dispose();
return exitCode;

// Why a listen failed, in the system's words ("Address already in use"): the socket error under Kestrel's wrapping.
static string ListenFailure(Exception e)
{
    for (var inner = e; inner is not null; inner = inner.InnerException)
        if (inner is System.Net.Sockets.SocketException socket) return socket.Message;
    return e.Message;
}

using BankTeller.Server;
using RaftMQ.Hosting;

// The bank teller server: the bank state machine, with client sessions, on a node the Raft library hosts.
NodeWebApplication.RunSocketCompletionsInline(); // first: before any socket
ServerSettings settings;
ClusterConfig config;
try
{
    if (args is ["--help"] or ["-h"])
    {
        Console.Out.WriteLine(ServerSettings.Usage);
        return 0;
    }
    settings = ServerSettings.Parse(args);
    config = ClusterConfig.Load(settings.ConfigPath);
    config.Address(settings.Index);
}
catch (ConfigException e)
{
    Console.Error.WriteLine($"bank-server: {e.Message}");
    Console.Error.WriteLine(ServerSettings.Usage);
    return 2;
}

// The nodes' secret: found, or created for a new cluster, before anything listens.
ClusterSecret secret;
try
{
    secret = ClusterSecret.Resolve(settings.SecretSources(config));
}
catch (ConfigException e)
{
    Console.Error.WriteLine($"bank-server: {e.Message}");
    return 2;
}

var me = config.Address(settings.Index);
System.Net.IPEndPoint listen;
try
{
    listen = ClusterConfig.ListenEndPoint(me.Ip, me.Port); // a host name: its first address
}
catch (ConfigException e)
{
    Console.Error.WriteLine($"bank-server: {e.Message}");
    return 2;
}
var builder = NodeWebApplication.CreateBuilder(listen, settings.LogLevel, BankEndpoints.MaxRequestBodyBytes);

var app = builder.Build();
var loggers = app.Services.GetRequiredService<ILoggerFactory>();
var node = new BankNode(settings, config);
BankEndpoints.Map(app, node);
try
{
    await app.StartAsync();
}
catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException)
{
    Console.Error.WriteLine($"bank-server: cannot listen on {me.Ip}:{me.Port}: {e.Message}");
    return 1;
}

RaftHost host;
try
{
    host = await RaftHost.StartAsync(settings.HostOptions(config, secret.Key()), node.CreateStateMachine(), loggers);
}
catch (Exception e)
{
    var log = loggers.CreateLogger("BankTeller");
    if (RaftHost.DescribeStartFailure(e) is { } reason) log.LogCritical("Node {Index} could not start: {Message}", settings.Index, reason);
    else log.LogCritical(e, "Node {Index} could not start: {Message}", settings.Index, e.Message);
    node.SetFailed(e);
    await app.StopAsync();
    return 1;
}
node.SetStarted(host);
loggers.CreateLogger("BankTeller").LogInformation("Bank node {Index} serves http://{Ip}:{Port}", settings.Index, me.Ip, me.Port);

// A node whose loop failed (e.g. a disk error) stops serving rather than answer from a stale state.
var exitCode = 0;
_ = host.Completion.ContinueWith(
    t =>
    {
        if (!t.IsFaulted) return;
        exitCode = 1;
        app.Lifetime.StopApplication();
    },
    TaskScheduler.Default);
await app.WaitForShutdownAsync();
await host.DisposeAsync();
return exitCode;

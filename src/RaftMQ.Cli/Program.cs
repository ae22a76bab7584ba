using System.Runtime.InteropServices;
using RaftMQ.Cli;

// `raftmq bench`: the socket engine runs socket completions on its own thread instead of queueing each to the thread
// pool, so an answer reaches the waiting client without waking a pool thread (a third less client CPU with 16
// consumers; docs/benchmarks.md, "The bench client's threads"). Only there: elsewhere the CLI's code after an await
// may block (a prompt, the console) and would hold every socket up. First, before any socket exists.
const string InlineCompletions = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";
if (args is ["bench", ..] && Environment.GetEnvironmentVariable(InlineCompletions) is null) Environment.SetEnvironmentVariable(InlineCompletions, "1");

// Ctrl-C and SIGTERM cancel the running command (which stops what it started); a second Ctrl-C ends the process.
using var registrations = new Signals();
Cli.ConfigureConsole();
return await Cli.RunAsync(args, Signals.Token);

/// <summary>Turns SIGINT/SIGTERM/SIGHUP into cancellation of the current command (the shell replaces it per line).</summary>
internal sealed class Signals : IDisposable
{
    private static CancellationTokenSource s_current = new();
    private readonly PosixSignalRegistration[] _registrations;

    public Signals()
    {
        _registrations = [.. new[] { PosixSignal.SIGINT, PosixSignal.SIGTERM, PosixSignal.SIGHUP }.Select(s => PosixSignalRegistration.Create(s, OnSignal))];
    }

    public static CancellationToken Token => Volatile.Read(ref s_current).Token;

    /// <summary>A fresh token for the next command, for the shell.</summary>
    public static CancellationToken Renew()
    {
        var next = new CancellationTokenSource();
        Interlocked.Exchange(ref s_current, next).Dispose();
        return next.Token;
    }

    private static void OnSignal(PosixSignalContext context)
    {
        var current = Volatile.Read(ref s_current);
        if (current.IsCancellationRequested) return;
        context.Cancel = true;
        current.Cancel();
    }

    public void Dispose()
    {
        foreach (var r in _registrations) r.Dispose();
    }
}

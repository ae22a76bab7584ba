using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Threading.Channels;

namespace RaftMQ.TestSupport;

/// <summary>A real node process: started from the built server, its output captured line by line.</summary>
public sealed partial class NodeProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly List<string> _lines = [];
    private readonly List<string> _errorLines = [];
    private readonly Lock _gate = new();
    private TaskCompletionSource _newLine = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>
    /// Every node this test process started and has not disposed. A test class whose <c>InitializeAsync</c> throws
    /// is never disposed by xUnit, and neither is its cluster: what is left here is killed when the test process
    /// exits, so that a failed start-up does not leave nodes running beside the test projects that come after it.
    /// </summary>
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<NodeProcess, byte> Live = new();

    static NodeProcess() => AppDomain.CurrentDomain.ProcessExit += (_, _) =>
    {
        foreach (var node in Live.Keys)
        {
            try
            {
                node._process.Kill();
            }
            catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception)
            {
                // It has exited already.
            }
        }
    };

    private NodeProcess(Process process, int index)
    {
        _process = process;
        Index = index;
    }

    public int Index { get; }

    public int Pid => _process.Id;

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    /// <summary>
    /// Waits until the process has exited and all its output has been read (<see cref="Output"/> is complete then:
    /// the exit itself is seen before the last lines arrive); false at the deadline.
    /// </summary>
    public async Task<bool> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>The server assembly built in the same configuration as the tests.</summary>
    public static string ServerDll
    {
        get
        {
            var configuration = AppContext.BaseDirectory.Contains("/Release/", StringComparison.Ordinal) ? "Release" : "Debug";
            var path = Path.Combine(RepoRoot, "src", "RaftMQ.Server", "bin", configuration, "net10.0", "RaftMQ.Server.dll");
            if (!File.Exists(path)) throw new FileNotFoundException("build the server first", path);
            return path;
        }
    }

    /// <summary>
    /// The node as bin/raftmq-node runs it: in Release the self-contained, precompiled executable (bin/Release/node);
    /// in Debug none is built, so null and <see cref="ServerDll"/> runs on the shared runtime.
    /// </summary>
    public static string? ServerExecutable
    {
        get
        {
            if (!AppContext.BaseDirectory.Contains("/Release/", StringComparison.Ordinal)) return null;
            var path = Path.Combine(RepoRoot, "src", "RaftMQ.Server", "bin", "Release", "node", "RaftMQ.Server");
            return File.Exists(path) ? path : throw new FileNotFoundException("build the server first (dotnet build -c Release)", path);
        }
    }

    /// <summary>Starts the RaftMQ node: <c>CONFIG INDEX [extraArgs]</c>.</summary>
    public static NodeProcess Start(string configPath, int index, string workingDirectory, params string[] extraArgs)
    {
        string[] args = [configPath, index.ToString(System.Globalization.CultureInfo.InvariantCulture), .. extraArgs];
        return ServerExecutable is { } exe ? Run(exe, args, index, workingDirectory) : StartAssembly(ServerDll, args, index, workingDirectory);
    }

    /// <summary>Starts the RaftMQ node with exactly <paramref name="args"/> (e.g. <c>--join URL --address ...</c>).</summary>
    public static NodeProcess StartWith(IEnumerable<string> args, int index, string workingDirectory) =>
        ServerExecutable is { } exe ? Run(exe, args, index, workingDirectory) : StartAssembly(ServerDll, args, index, workingDirectory);

    /// <summary>
    /// Starts the RaftMQ node as <see cref="Start"/> does, under an open-file limit (RLIMIT_NOFILE, soft and hard) of
    /// <paramref name="openFiles"/>, set by the shell's <c>ulimit -n</c>.
    /// </summary>
    public static NodeProcess StartWithOpenFileLimit(int openFiles, string configPath, int index, string workingDirectory, params string[] extraArgs)
    {
        string[] node = ServerExecutable is { } exe ? [exe] : ["dotnet", ServerDll];
        string[] args = [configPath, index.ToString(System.Globalization.CultureInfo.InvariantCulture), .. extraArgs];
        // bash -c SCRIPT $0 $@...: the limit is $0, the node's command line "$@", passed through without quoting.
        return Run("bash", ["-c", "ulimit -n \"$0\" && exec \"$@\"", openFiles.ToString(System.Globalization.CultureInfo.InvariantCulture), .. node, .. args], index, workingDirectory);
    }

    /// <summary>
    /// Starts the RaftMQ node as <see cref="Start"/> does, through <paramref name="launcher"/>, a command that runs the
    /// node's command line it is given by exec-ing it (e.g. <c>ip netns exec NAMESPACE</c>), so that <see cref="Pid"/>
    /// is the node's own and signals reach it.
    /// </summary>
    public static NodeProcess StartThrough(IReadOnlyList<string> launcher, string configPath, int index, string workingDirectory, params string[] extraArgs)
    {
        string[] node = ServerExecutable is { } exe ? [exe] : ["dotnet", ServerDll];
        string[] args = [configPath, index.ToString(System.Globalization.CultureInfo.InvariantCulture), .. extraArgs];
        return Run(launcher[0], [.. launcher.Skip(1), .. node, .. args], index, workingDirectory);
    }

    /// <summary>Starts the RaftMQ node as <see cref="Start"/> does, with <paramref name="environment"/> added to its environment.</summary>
    public static NodeProcess StartWithEnvironment(
        IReadOnlyDictionary<string, string> environment, string configPath, int index, string workingDirectory, params string[] extraArgs)
    {
        string[] args = [configPath, index.ToString(System.Globalization.CultureInfo.InvariantCulture), .. extraArgs];
        return ServerExecutable is { } exe
            ? Run(exe, args, index, workingDirectory, environment)
            : Run("dotnet", [ServerDll, .. args], index, workingDirectory, environment);
    }

    /// <summary>Starts any node program built from this repository (e.g. a sample's server) as node <paramref name="index"/>.</summary>
    public static NodeProcess StartAssembly(string assemblyPath, IEnumerable<string> args, int index, string workingDirectory) =>
        Run("dotnet", [assemblyPath, .. args], index, workingDirectory);

    private static NodeProcess Run(
        string program, IEnumerable<string> args, int index, string workingDirectory, IReadOnlyDictionary<string, string>? environment = null)
    {
        var psi = new ProcessStartInfo(program)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var (name, value) in environment ?? new Dictionary<string, string>()) psi.Environment[name] = value;
        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        var node = new NodeProcess(process, index);
        process.OutputDataReceived += (_, e) => node.OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => node.OnLine(e.Data, standardError: true);
        process.Start();
        Live[node] = 0;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return node;
    }

    private void OnLine(string? line, bool standardError = false)
    {
        if (line is null) return;
        TaskCompletionSource signal;
        lock (_gate)
        {
            _lines.Add(line);
            if (standardError) _errorLines.Add(line);
            signal = _newLine;
            _newLine = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        signal.TrySetResult();
    }

    public string Output
    {
        get
        {
            lock (_gate) return string.Join('\n', _lines);
        }
    }

    /// <summary>The lines of standard error alone (<see cref="Output"/> holds them too, among standard output's).</summary>
    public IReadOnlyList<string> ErrorLines
    {
        get
        {
            lock (_gate) return [.. _errorLines];
        }
    }

    /// <summary>Waits until a line of output satisfies <paramref name="match"/>; false at the deadline.</summary>
    public async Task<bool> WaitForLineAsync(Func<string, bool> match, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        var seen = 0;
        while (true)
        {
            Task next;
            lock (_gate)
            {
                for (; seen < _lines.Count; seen++)
                    if (match(_lines[seen])) return true;
                next = _newLine.Task;
            }
            try
            {
                await next.WaitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                return false;
            }
        }
    }

    /// <summary>SIGKILL: the process dies at once, keeping only what it had fsynced.</summary>
    public async Task KillAsync()
    {
        if (!_process.HasExited) _process.Kill();
        await _process.WaitForExitAsync();
    }

    /// <summary>SIGTERM, as a harness stops a node; returns how long the process took to exit.</summary>
    public async Task<TimeSpan> TerminateAsync(TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        if (!_process.HasExited) SendSignal(_process.Id, 15);
        if (await WaitForExitAsync(timeout)) return sw.Elapsed;
        _process.Kill();
        await _process.WaitForExitAsync();
        throw new TimeoutException($"node {Index} did not exit within {timeout} of SIGTERM");
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }
        Live.TryRemove(this, out _);
        _process.Dispose();
    }

    private static string FindRepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "RaftMQ.slnx"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("cannot find the repository root (RaftMQ.slnx)");
    }

    private static void SendSignal(int pid, int signal)
    {
        if (Kill(pid, signal) != 0) throw new InvalidOperationException($"kill({pid}, {signal}) failed: errno {Marshal.GetLastPInvokeError()}");
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}

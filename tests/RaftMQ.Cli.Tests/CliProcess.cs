using System.Diagnostics;

namespace RaftMQ.Cli.Tests;

/// <summary>The real <c>raftmq</c> entry point run as a process, with its own data and home directories.</summary>
public sealed class CliProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly System.Text.StringBuilder _out = new();
    private readonly System.Text.StringBuilder _err = new();
    private readonly Lock _gate = new();

    private CliProcess(Process process) => _process = process;

    public int Pid => _process.Id;

    public string Stdout
    {
        get
        {
            lock (_gate) return _out.ToString();
        }
    }

    public string Stderr
    {
        get
        {
            lock (_gate) return _err.ToString();
        }
    }

    public static CliProcess Start(CliEnvironment env, params string[] args)
    {
        // Started as from a terminal, with Ctrl-C's signal at its default: a test run launched in the background by a
        // script (`./test.sh &`) inherits SIGINT ignored (POSIX shells ignore it for background jobs), .NET keeps an
        // inherited SIG_IGN, and the CLI would then never see the Ctrl-C a test sends it.
        var psi = new ProcessStartInfo("env")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = env.Home,
        };
        psi.ArgumentList.Add("--default-signal=INT");
        foreach (var part in CliCommand.Prefix) psi.ArgumentList.Add(part);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["RAFTMQ_DATA"] = env.Data;
        psi.Environment["HOME"] = env.Home;
        psi.Environment.Remove("RAFTMQ_URLS");
        psi.Environment.Remove("RAFTMQ_INVOKED_AS");
        psi.Environment.Remove("RAFTMQ_CA");
        foreach (var (name, value) in env.Variables) psi.Environment[name] = value;
        var process = new Process { StartInfo = psi };
        var cli = new CliProcess(process);
        process.OutputDataReceived += (_, e) => cli.Append(cli._out, e.Data);
        process.ErrorDataReceived += (_, e) => cli.Append(cli._err, e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return cli;
    }

    /// <summary>Runs to completion (with a deadline) and returns exit code and output.</summary>
    public static async Task<CliResult> RunAsync(CliEnvironment env, string? stdin, params string[] args)
    {
        await using var cli = Start(env, args);
        if (stdin is not null) await cli._process.StandardInput.WriteAsync(stdin);
        cli._process.StandardInput.Close();
        var code = await cli.WaitForExitAsync(TimeSpan.FromSeconds(60));
        return new CliResult(code, cli.Stdout, cli.Stderr);
    }

    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"raftmq did not exit within {timeout}; stdout:\n{Stdout}\nstderr:\n{Stderr}\n{Threads()}");
        }
        return _process.ExitCode;
    }

    public Task<bool> WaitForOutputAsync(string text, TimeSpan timeout) =>
        Eventually.TrueAsync(() => Task.FromResult(Stdout.Contains(text, StringComparison.Ordinal) || _process.HasExited), timeout);

    public Task<bool> WaitForErrorAsync(string text, TimeSpan timeout) =>
        Eventually.TrueAsync(() => Task.FromResult(Stderr.Contains(text, StringComparison.Ordinal) || _process.HasExited), timeout);

    /// <summary>Sends a signal as a terminal would (SIGINT for Ctrl-C); throws when <c>kill</c> fails.</summary>
    public async Task SignalAsync(string signal)
    {
        var psi = new ProcessStartInfo("kill", ["-" + signal, Pid.ToString(System.Globalization.CultureInfo.InvariantCulture)])
        {
            RedirectStandardError = true,
        };
        using var kill = Process.Start(psi)!;
        var error = await kill.StandardError.ReadToEndAsync();
        await kill.WaitForExitAsync();
        if (kill.ExitCode != 0) throw new InvalidOperationException($"kill -{signal} {Pid} exited with {kill.ExitCode}: {error}");
    }

    /// <summary>
    /// What a process that does not exit is doing, for the failure message: its signal masks (pending, blocked,
    /// caught) and each thread's name, state and kernel wait channel.
    /// </summary>
    private string Threads()
    {
        var text = new System.Text.StringBuilder($"process {Pid}:\n");
        try
        {
            foreach (var line in File.ReadLines($"/proc/{Pid}/status"))
            {
                if (line.StartsWith("State", StringComparison.Ordinal) || line.StartsWith("Sig", StringComparison.Ordinal)
                    || line.StartsWith("ShdPnd", StringComparison.Ordinal)) text.AppendLine(line);
            }
            foreach (var task in Directory.EnumerateDirectories($"/proc/{Pid}/task"))
            {
                var stat = File.ReadAllText(Path.Combine(task, "stat"));
                var state = stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[0];
                text.AppendLine($"  {Path.GetFileName(task)} {File.ReadAllText(Path.Combine(task, "comm")).Trim()} {state} {File.ReadAllText(Path.Combine(task, "wchan"))}");
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            text.AppendLine($"  ({e.Message})");
        }
        return text.ToString();
    }

    private void Append(System.Text.StringBuilder to, string? line)
    {
        if (line is null) return;
        lock (_gate) to.AppendLine(line);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }
}

public sealed record CliResult(int ExitCode, string Stdout, string Stderr)
{
    public override string ToString() => $"exit {ExitCode}\nstdout:\n{Stdout}\nstderr:\n{Stderr}";
}

/// <summary>A private data directory (the local cluster's) and home (the shell history) for one test.</summary>
public sealed class CliEnvironment : IAsyncDisposable
{
    public CliEnvironment()
    {
        Root = Path.Combine(Path.GetTempPath(), "raftmq-cli-tests", Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Home);
    }

    public string Root { get; }

    public string Data => Path.Combine(Root, "data");

    public string Home => Path.Combine(Root, "home");

    /// <summary>Environment variables every command of this environment runs with.</summary>
    public Dictionary<string, string> Variables { get; } = [];

    /// <summary>The pids the cluster file records (empty when there is none).</summary>
    public IReadOnlyList<int> RecordedPids()
    {
        var file = Path.Combine(Data, "cluster.json");
        if (!File.Exists(file)) return [];
        using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(file));
        return [.. doc.RootElement.GetProperty("nodes").EnumerateArray().Select(n => n.GetProperty("pid").GetInt32())];
    }

    public static bool IsAlive(int pid) => Posix.IsAlive(pid);

    public Task<CliResult> RunAsync(params string[] args) => CliProcess.RunAsync(this, null, args);

    public Task<CliResult> RunWithInputAsync(string stdin, params string[] args) => CliProcess.RunAsync(this, stdin, args);

    public async ValueTask DisposeAsync()
    {
        // Whatever a failed test left running is stopped by the tool itself, then the directory goes.
        if (File.Exists(Path.Combine(Data, "cluster.json"))) await RunAsync("cluster", "down");
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a leftover temp directory is harmless.
        }
    }
}

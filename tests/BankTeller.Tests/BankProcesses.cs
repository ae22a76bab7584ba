using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;

namespace BankTeller.Tests;

/// <summary>Paths of the built sample, in the configuration the tests were built in.</summary>
internal static class Built
{
    public static string RepoRoot { get; } = FindRepoRoot();

    public static string Configuration { get; } = AppContext.BaseDirectory.Contains("/Release/", StringComparison.Ordinal) ? "Release" : "Debug";

    public static string SampleDirectory => Path.Combine(RepoRoot, "samples", "BankTeller");

    public static string ServerDll => Existing(Path.Combine(SampleDirectory, "BankTeller.Server", "bin", Configuration, "net10.0", "BankTeller.Server.dll"));

    public static string AtmDll => Existing(Path.Combine(AppContext.BaseDirectory, "BankTeller.Atm.dll"));

    private static string Existing(string path) => File.Exists(path) ? path : throw new FileNotFoundException("build the sample first", path);

    private static string FindRepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "RaftMQ.slnx"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("cannot find the repository root (RaftMQ.slnx)");
    }
}

/// <summary>A finished process: exit code and everything it printed.</summary>
internal sealed record ProcessResult(int ExitCode, string Output);

/// <summary>Runs a program to its end with a deadline (a hung program is killed and fails the test).</summary>
internal static class Run
{
    public static async Task<ProcessResult> ProgramAsync(string file, IEnumerable<string> args, string? stdin = null, IDictionary<string, string>? env = null, TimeSpan? timeout = null)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var (k, v) in env ?? new Dictionary<string, string>()) psi.Environment[k] = v;
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (stdin is not null) await process.StandardInput.WriteAsync(stdin);
        process.StandardInput.Close();
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} did not finish; output so far:\n{await stdout}");
        }
        return new ProcessResult(process.ExitCode, (await stdout) + (await stderr));
    }

    /// <summary>The ATM, one-shot: <c>atm --servers ... WORDS</c>.</summary>
    public static Task<ProcessResult> AtmAsync(BankCluster cluster, params string[] words) =>
        ProgramAsync("dotnet", [Built.AtmDll, "--servers", cluster.ServerList, .. words]);
}

/// <summary>
/// Three (or N) bank server processes on free loopback ports, each in its own data directory. Waits are on
/// conditions with deadlines, never fixed sleeps.
/// </summary>
internal sealed class BankCluster : IAsyncDisposable
{
    private readonly Process?[] _nodes;
    private readonly StringBuilder[] _output;

    public BankCluster(int size)
    {
        Directory = Path.Combine(Path.GetTempPath(), "bank-tests", Guid.NewGuid().ToString("N")[..12]);
        System.IO.Directory.CreateDirectory(Directory);
        var ports = FreePorts(2 * size);
        HttpPorts = [.. Enumerable.Range(0, size).Select(i => ports[2 * i])];
        var addresses = new JsonArray([.. Enumerable.Range(0, size).Select(i => (JsonNode)new JsonObject
        {
            ["ip"] = "127.0.0.1",
            ["port"] = ports[2 * i],
            ["internal_port"] = ports[2 * i + 1],
        })]);
        ConfigPath = Path.Combine(Directory, "cluster.json");
        File.WriteAllText(ConfigPath, new JsonObject { ["addresses"] = addresses }.ToJsonString());
        _nodes = new Process?[size];
        _output = [.. Enumerable.Range(0, size).Select(_ => new StringBuilder())];
        Http = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false }) { Timeout = TimeSpan.FromSeconds(10) };
    }

    public string Directory { get; }

    public string ConfigPath { get; }

    public int[] HttpPorts { get; }

    public HttpClient Http { get; }

    public int Size => _nodes.Length;

    public IReadOnlyList<Uri> Urls => [.. HttpPorts.Select(p => new Uri($"http://127.0.0.1:{p}"))];

    public string ServerList => string.Join(',', Urls.Select(u => u.ToString().TrimEnd('/')));

    public string Output(int i)
    {
        lock (_output[i]) return _output[i].ToString();
    }

    public bool IsRunning(int i) => _nodes[i] is { HasExited: false };

    public void Start(int i)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { Built.ServerDll, ConfigPath, i.ToString(System.Globalization.CultureInfo.InvariantCulture), "--data-dir", Path.Combine(Directory, $"data-{i}") })
            psi.ArgumentList.Add(a);
        var process = new Process { StartInfo = psi };
        var sink = _output[i];
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null) lock (sink) sink.AppendLine(e.Data);
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null) lock (sink) sink.AppendLine(e.Data);
        };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _nodes[i] = process;
    }

    public async Task StartAllAsync()
    {
        for (int i = 0; i < Size; i++) Start(i);
        await WaitForLeaderAsync();
    }

    public async Task KillAsync(int i)
    {
        var p = _nodes[i] ?? throw new InvalidOperationException($"node {i} never started");
        if (!p.HasExited) p.Kill();
        await p.WaitForExitAsync();
    }

    /// <summary>GET /stats of node i, or null if it does not answer.</summary>
    public async Task<JsonNode?> StatsAsync(int i)
    {
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(1));
            return JsonNode.Parse(await Http.GetStringAsync(new Uri(Urls[i], "/stats"), cts.Token));
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException or System.Text.Json.JsonException)
        {
            return null;
        }
    }

    /// <summary>Waits until one running node is leader of the highest term any running node reports; returns its index.</summary>
    public async Task<int> WaitForLeaderAsync(int? not = null)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using var period = new PeriodicTimer(TimeSpan.FromMilliseconds(25));
        while (true)
        {
            var leaders = new List<(int Index, ulong Term)>();
            ulong maxTerm = 0;
            for (int i = 0; i < Size; i++)
            {
                if (!IsRunning(i) || await StatsAsync(i) is not { } s) continue;
                var term = s["term"]!.GetValue<ulong>();
                maxTerm = Math.Max(maxTerm, term);
                if (s["role"]!.GetValue<string>() == "Leader") leaders.Add((i, term));
            }
            var current = leaders.Where(l => l.Term == maxTerm).ToList();
            if (current.Count == 1 && current[0].Index != not) return current[0].Index;
            try
            {
                await period.WaitForNextTickAsync(deadline.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException("no leader in time:\n" + string.Join("\n---\n", Enumerable.Range(0, Size).Select(Output)));
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var p in _nodes)
        {
            if (p is null) continue;
            if (!p.HasExited) p.Kill();
            await p.WaitForExitAsync();
            p.Dispose();
        }
        Http.Dispose();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // A leftover temp directory is harmless.
        }
    }

    public static int[] FreePorts(int count)
    {
        var listeners = Enumerable.Range(0, count).Select(_ =>
        {
            var l = new TcpListener(IPAddress.Loopback, 0);
            l.Start();
            return l;
        }).ToList();
        var ports = listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port).ToArray();
        foreach (var l in listeners) l.Stop();
        return ports;
    }
}

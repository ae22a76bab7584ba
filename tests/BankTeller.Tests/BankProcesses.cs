using System.Diagnostics;
using System.Text.Json.Nodes;
using RaftMQ.TestSupport;

namespace BankTeller.Tests;

/// <summary>Paths of the built sample, in the configuration the tests were built in.</summary>
internal static class Built
{
    public static string RepoRoot => NodeProcess.RepoRoot;

    public static string Configuration { get; } = AppContext.BaseDirectory.Contains("/Release/", StringComparison.Ordinal) ? "Release" : "Debug";

    public static string SampleDirectory => Path.Combine(RepoRoot, "samples", "BankTeller");

    public static string ServerDll => Existing(Path.Combine(SampleDirectory, "BankTeller.Server", "bin", Configuration, "net10.0", "BankTeller.Server.dll"));

    public static string AtmDll => Existing(Path.Combine(AppContext.BaseDirectory, "BankTeller.Atm.dll"));

    private static string Existing(string path) => File.Exists(path) ? path : throw new FileNotFoundException("build the sample first", path);
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
    private readonly NodeProcess?[] _nodes;

    public BankCluster(int size)
    {
        Directory = Path.Combine(Path.GetTempPath(), "bank-tests", Guid.NewGuid().ToString("N")[..12]);
        System.IO.Directory.CreateDirectory(Directory);
        var ports = TestCluster.FreePorts(2 * size);
        HttpPorts = [.. Enumerable.Range(0, size).Select(i => ports[2 * i])];
        var addresses = new JsonArray([.. Enumerable.Range(0, size).Select(i => (JsonNode)new JsonObject
        {
            ["ip"] = "127.0.0.1",
            ["port"] = ports[2 * i],
            ["internal_port"] = ports[2 * i + 1],
        })]);
        ConfigPath = Path.Combine(Directory, "cluster.json");
        File.WriteAllText(ConfigPath, new JsonObject { ["addresses"] = addresses }.ToJsonString());
        _nodes = new NodeProcess?[size];
        Http = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false }) { Timeout = TimeSpan.FromSeconds(10) };
    }

    public string Directory { get; }

    public string ConfigPath { get; }

    public int[] HttpPorts { get; }

    public HttpClient Http { get; }

    public int Size => _nodes.Length;

    public IReadOnlyList<Uri> Urls => [.. HttpPorts.Select(p => new Uri($"http://127.0.0.1:{p}"))];

    public string ServerList => string.Join(',', Urls.Select(u => u.ToString().TrimEnd('/')));

    public string Output(int i) => _nodes[i]?.Output ?? "";

    public bool IsRunning(int i) => _nodes[i] is { HasExited: false };

    public void Start(int i)
    {
        var index = i.ToString(System.Globalization.CultureInfo.InvariantCulture);
        _nodes[i] = NodeProcess.StartAssembly(
            Built.ServerDll, [ConfigPath, index, "--data-dir", Path.Combine(Directory, $"data-{i}")], i, Directory);
    }

    public async Task StartAllAsync()
    {
        for (int i = 0; i < Size; i++) Start(i);
        await WaitForLeaderAsync();
    }

    public Task KillAsync(int i) => (_nodes[i] ?? throw new InvalidOperationException($"node {i} never started")).KillAsync();

    /// <summary>GET /stats of node i, or null if it does not answer.</summary>
    public async Task<JsonNode?> StatsAsync(int i)
    {
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(1));
            return JsonNode.Parse(await Http.GetStringAsync(new Uri(Urls[i], "/stats"), cts.Token));
        }
        catch (Exception e) when (e is HttpRequestException or HttpIOException or OperationCanceledException or System.Text.Json.JsonException)
        {
            return null;
        }
    }

    /// <summary>Waits until one running node is leader of the highest term any running node reports; returns its index.</summary>
    public async Task<int> WaitForLeaderAsync(int? not = null)
    {
        var leader = -1;
        var found = await Eventually.TrueAsync(
            async () =>
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
                if (current.Count != 1 || current[0].Index == not) return false;
                leader = current[0].Index;
                return true;
            },
            TimeSpan.FromSeconds(20));
        if (!found) throw new TimeoutException("no leader in time:\n" + string.Join("\n---\n", Enumerable.Range(0, Size).Select(Output)));
        return leader;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var node in _nodes)
            if (node is not null) await node.DisposeAsync();
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
}

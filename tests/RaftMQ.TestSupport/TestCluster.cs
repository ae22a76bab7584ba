using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Shouldly;

namespace RaftMQ.TestSupport;

/// <summary>
/// N real node processes on free loopback ports, with an RRMQ client. Waits are on conditions with deadlines: a
/// log line, or a periodic check of the nodes' answers — never a fixed sleep.
/// </summary>
public sealed class TestCluster : IAsyncDisposable
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(15);

    private readonly NodeProcess?[] _nodes;
    private readonly string[] _extraArgs;
    private readonly string[]?[] _joinArgs;
    private readonly NodeNetwork? _network;

    private TestCluster(int size, string directory, string[] extraArgs, int spare = 0, NodeNetwork? network = null)
    {
        Directory = directory;
        _nodes = new NodeProcess?[size + spare];
        _joinArgs = new string[]?[size + spare];
        _extraArgs = extraArgs;
        _network = network;
        BootstrapSize = size;
        // In a node network every node has its own address and namespace, so every node can take the same ports.
        var ports = network is null ? FreePorts((size + spare) * 2) : [.. Enumerable.Range(0, size + spare).SelectMany(_ => new[] { 8567, 8568 })];
        Ports = [.. Enumerable.Range(0, size + spare).Select(i => (ports[2 * i], ports[2 * i + 1]))];
        Hosts = [.. Enumerable.Range(0, size + spare).Select(i => network?.Address(i) ?? "127.0.0.1")];
        ConfigPath = Path.Combine(directory, $"config-{Ports[0].Http}.json");
        var addresses = new JsonArray([.. Ports.Take(size).Select((p, i) => (JsonNode)new JsonObject
        {
            ["ip"] = Hosts[i],
            ["port"] = p.Http,
            ["internal_port"] = p.Peer,
        })]);
        File.WriteAllText(ConfigPath, new JsonObject { ["addresses"] = addresses }.ToJsonString());
        Http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
    }

    public string Directory { get; }

    public string ConfigPath { get; }

    public (int Http, int Peer)[] Ports { get; }

    /// <summary>Each node's IP address: loopback, or its own address in a <see cref="NodeNetwork"/>.</summary>
    public string[] Hosts { get; }

    public HttpClient Http { get; private set; }

    /// <summary><c>http</c>, or <c>https</c> after <see cref="UseTls"/>.</summary>
    public string Scheme { get; private set; } = "http";

    /// <summary>
    /// The nodes serve HTTPS with certificates of <paramref name="ca"/> (started with <c>--tls-*</c> options):
    /// <see cref="Url"/> and <see cref="Http"/> use https, trusting that CA only.
    /// </summary>
    public void UseTls(System.Security.Cryptography.X509Certificates.X509Certificate2 ca)
    {
        var policy = new System.Security.Cryptography.X509Certificates.X509ChainPolicy
        {
            TrustMode = System.Security.Cryptography.X509Certificates.X509ChainTrustMode.CustomRootTrust,
            RevocationMode = System.Security.Cryptography.X509Certificates.X509RevocationMode.NoCheck,
        };
        policy.CustomTrustStore.Add(ca);
        Http.Dispose();
        Http = new HttpClient(new SocketsHttpHandler { SslOptions = new() { CertificateChainPolicy = policy } }) { Timeout = TimeSpan.FromSeconds(10) };
        Scheme = "https";
    }

    /// <summary>Every node slot: the nodes of the config, then the spare ones that may join later (<see cref="CreateGrowable"/>).</summary>
    public int Size => _nodes.Length;

    /// <summary>The nodes of the config, which bootstrap the cluster.</summary>
    public int BootstrapSize { get; }

    public NodeProcess Node(int i) => _nodes[i] ?? throw new InvalidOperationException($"node {i} is not running");

    public bool IsRunning(int i) => _nodes[i] is { HasExited: false };

    public static TestCluster Create(int size, params string[] extraArgs) => CreateIn(NewDirectory(), size, extraArgs);

    /// <summary>A cluster whose nodes run in <paramref name="directory"/> (several clusters may share one).</summary>
    public static TestCluster CreateIn(string directory, int size, params string[] extraArgs)
    {
        System.IO.Directory.CreateDirectory(directory);
        return new TestCluster(size, directory, extraArgs);
    }

    /// <summary>
    /// A cluster of one node per node of <paramref name="network"/>, each started in its own namespace and listening on
    /// its own address there (the network stays the caller's to dispose, after the cluster).
    /// </summary>
    public static TestCluster CreateOn(NodeNetwork network, params string[] extraArgs)
    {
        ArgumentNullException.ThrowIfNull(network);
        var directory = NewDirectory();
        System.IO.Directory.CreateDirectory(directory);
        return new TestCluster(network.Size, directory, extraArgs, network: network);
    }

    /// <summary>
    /// A cluster of <paramref name="size"/> nodes in its config, with ports for <paramref name="spare"/> more nodes
    /// (numbered after them) that join it at run time (<see cref="StartJoining"/>).
    /// </summary>
    public static TestCluster CreateGrowable(int size, int spare, params string[] extraArgs)
    {
        var directory = NewDirectory();
        System.IO.Directory.CreateDirectory(directory);
        return new TestCluster(size, directory, extraArgs, spare);
    }

    /// <summary>
    /// Starts spare node <paramref name="i"/> as a new node asking the member <paramref name="member"/> to add it
    /// (<c>raftmq-node --join</c>), with the cluster's secret file; <see cref="Start(int)"/> restarts it with the same arguments.
    /// </summary>
    public NodeProcess StartJoining(int i, int member, params string[] moreArgs)
    {
        if (IsRunning(i)) throw new InvalidOperationException($"node {i} is already running");
        string[] args =
        [
            "--join", $"{Scheme}://{Hosts[member]}:{Ports[member].Http}", "--address", $"127.0.0.1:{Ports[i].Http}:{Ports[i].Peer}",
            "--node", i.ToString(System.Globalization.CultureInfo.InvariantCulture), "--data-dir", JoinedDataDirectory(i),
            "--cluster-secret-file", ConfigPath + ".secret", .. _extraArgs, .. moreArgs,
        ];
        _joinArgs[i] = args;
        var node = NodeProcess.StartWith(args, i, Directory);
        _nodes[i] = node;
        return node;
    }

    /// <summary>The data directory of a node started with <see cref="StartJoining"/>.</summary>
    public string JoinedDataDirectory(int i) => Path.Combine(Directory, $"joined-{i}");

    public static string NewDirectory() => Path.Combine(Path.GetTempPath(), "raftmq-tests", Guid.NewGuid().ToString("N")[..12]);

    /// <summary>Starts every node (one after another, as harnesses do) and waits until each answers HTTP.</summary>
    public async Task StartAllAsync()
    {
        for (int i = 0; i < BootstrapSize; i++) Start(i);
        for (int i = 0; i < BootstrapSize; i++) await WaitUntilAnsweringAsync(i);
    }

    public NodeProcess Start(int i) => Start(i, []);

    /// <summary>Starts node i with the cluster's options followed by <paramref name="moreArgs"/> (a later option wins).</summary>
    public NodeProcess Start(int i, params string[] moreArgs)
    {
        if (IsRunning(i)) throw new InvalidOperationException($"node {i} is already running");
        var node = _joinArgs[i] is { } joined
            ? NodeProcess.StartWith([.. joined, .. moreArgs], i, Directory)
            : _network is { } network
                ? NodeProcess.StartThrough(network.Launcher(i), ConfigPath, i, Directory, [.. _extraArgs, .. moreArgs])
                : NodeProcess.Start(ConfigPath, i, Directory, [.. _extraArgs, .. moreArgs]);
        _nodes[i] = node;
        return node;
    }

    public Uri Url(int i, string path) => new($"{Scheme}://{Hosts[i]}:{Ports[i].Http}{path}");

    public async Task WaitUntilAnsweringAsync(int i) =>
        (await Eventually.TrueAsync(async () => await TryStatusAsync(i) is not null, DefaultTimeout))
            .ShouldBeTrue($"node {i} did not answer HTTP; output:\n{_nodes[i]?.Output}");

    /// <summary>GET /status of node i, or null if it does not answer.</summary>
    public async Task<(string Role, long Term)?> TryStatusAsync(int i)
    {
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(1));
            var json = await Http.GetFromJsonAsync<JsonElement>(Url(i, "/status"), cts.Token);
            return (json.GetProperty("role").GetString()!, json.GetProperty("term").GetInt64());
        }
        catch (Exception e) when (e is HttpRequestException or HttpIOException or OperationCanceledException or JsonException)
        {
            return null; // HttpIOException: the answer was cut off (a node stopping, or one that failed to start)
        }
    }

    /// <summary>Waits until exactly one running node reports Leader and every running node reports its term; returns it.</summary>
    public async Task<int> WaitForLeaderAsync(TimeSpan? timeout = null, int? not = null)
    {
        var leader = -1;
        var ok = await Eventually.TrueAsync(
            async () =>
            {
                var leaders = new List<(int Index, long Term)>();
                long maxTerm = 0;
                for (int i = 0; i < Size; i++)
                {
                    if (!IsRunning(i)) continue;
                    var s = await TryStatusAsync(i);
                    if (s is null) continue;
                    maxTerm = Math.Max(maxTerm, s.Value.Term);
                    if (s.Value.Role == "Leader") leaders.Add((i, s.Value.Term));
                }
                var current = leaders.Where(l => l.Term == maxTerm).ToList();
                if (current.Count != 1 || current[0].Index == not) return false;
                leader = current[0].Index;
                return true;
            },
            timeout ?? DefaultTimeout);
        ok.ShouldBeTrue("no single leader was elected in time");
        return leader;
    }

    public async Task<(HttpStatusCode Status, string Body)> SendAsync(int node, HttpMethod method, string path, string? body = null)
    {
        var (status, text, _) = await SendWithErrorCodeAsync(node, method, path, body);
        return (status, text);
    }

    /// <summary>As <see cref="SendAsync"/>, with the answer's <c>X-RaftMQ-Error</c> code, if any.</summary>
    public async Task<(HttpStatusCode Status, string Body, string? ErrorCode)> SendWithErrorCodeAsync(int node, HttpMethod method, string path, string? body = null)
    {
        using var request = new HttpRequestMessage(method, Url(node, path));
        if (body is not null) request.Content = new StringContent(body, System.Text.Encoding.UTF8, "application/json");
        using var response = await Http.SendAsync(request);
        var code = response.Headers.TryGetValues("X-RaftMQ-Error", out var values) ? values.FirstOrDefault() : null;
        return (response.StatusCode, await response.Content.ReadAsStringAsync(), code);
    }

    public Task<(HttpStatusCode Status, string Body)> CreateTopicAsync(int node, string topic) =>
        SendAsync(node, HttpMethod.Put, "/topic", JsonSerializer.Serialize(new { topic }));

    public Task<(HttpStatusCode Status, string Body)> PublishAsync(int node, string topic, string message) =>
        SendAsync(node, HttpMethod.Put, "/message", JsonSerializer.Serialize(new { topic, message }));

    public Task<(HttpStatusCode Status, string Body)> PopAsync(int node, string topic) =>
        SendAsync(node, HttpMethod.Get, "/message/" + Uri.EscapeDataString(topic));

    public Task<(HttpStatusCode Status, string Body)> TopicsAsync(int node) => SendAsync(node, HttpMethod.Get, "/topic");

    /// <summary>Stops every running node with SIGTERM, as a harness does, and checks each exits cleanly.</summary>
    public async Task StopAllAsync()
    {
        for (int i = 0; i < Size; i++)
        {
            if (!IsRunning(i)) continue;
            await Node(i).TerminateAsync(TimeSpan.FromSeconds(5));
            Node(i).ExitCode.ShouldBe(0, $"node {i} exit code; output:\n{Node(i).Output}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var n in _nodes)
            if (n is not null) await n.DisposeAsync();
        Http.Dispose();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a leftover temp directory is harmless.
        }
    }

    /// <summary>
    /// Loopback ports for nodes, distinct from each other, outside the ephemeral range and reserved for this test
    /// process (<see cref="LoopbackPorts"/>): nothing that binds port 0 or connects out, here or in another process,
    /// can take one before the node binds it.
    /// </summary>
    public static int[] FreePorts(int count) => LoopbackPorts.Take(count);
}

/// <summary>Waits for a condition with a deadline, checking it on a short period.</summary>
public static class Eventually
{
    public static async Task<bool> TrueAsync(Func<Task<bool>> condition, TimeSpan timeout, TimeSpan? period = null)
    {
        using var cts = new CancellationTokenSource(timeout);
        using var timer = new PeriodicTimer(period ?? TimeSpan.FromMilliseconds(25));
        while (true)
        {
            if (await condition()) return true;
            try
            {
                if (!await timer.WaitForNextTickAsync(cts.Token)) return false;
            }
            catch (OperationCanceledException)
            {
                return await condition();
            }
        }
    }
}

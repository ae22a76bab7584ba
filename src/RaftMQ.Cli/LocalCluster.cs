using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace RaftMQ.Cli;

/// <summary>
/// One node of a local cluster as the cluster file records it. <see cref="Args"/> are the node's arguments when it
/// joined the running cluster (<c>--join ...</c>) rather than starting from the config. <see cref="Removed"/>: the node
/// was removed from the membership (<c>cluster remove</c> of a node before the last): it is not started again.
/// </summary>
public sealed record LocalNode(
    [property: JsonPropertyName("index")] int Index,
    [property: JsonPropertyName("url")] string Url,
    [property: JsonPropertyName("pid")] int Pid,
    [property: JsonPropertyName("data_dir")] string DataDir,
    [property: JsonPropertyName("log")] string Log,
    [property: JsonPropertyName("args")] List<string>? Args = null,
    [property: JsonPropertyName("removed")] bool Removed = false);

/// <summary>
/// The cluster file (<c>cluster.json</c> in the data directory): how to find and stop a local cluster. <see cref="Ca"/>
/// is the CA of a TLS cluster (<c>cluster up --tls</c>), whose node certificates are beside it (<c>node-N.pem</c>,
/// <c>node-N.key</c>); the CLI's commands trust it for this cluster.
/// </summary>
public sealed record ClusterFile(
    [property: JsonPropertyName("config")] string Config,
    [property: JsonPropertyName("node_binary")] string NodeBinary,
    [property: JsonPropertyName("nodes")] List<LocalNode> Nodes,
    [property: JsonPropertyName("auth_file")] string? AuthFile = null,
    [property: JsonPropertyName("ca")] string? Ca = null,
    [property: JsonPropertyName("auth_rrmq")] bool AuthRrmq = false);

[JsonSourceGenerationOptions(WriteIndented = true)]
[JsonSerializable(typeof(ClusterFile))]
internal sealed partial class CliJson : JsonSerializerContext;

/// <summary>
/// A cluster of node processes on this machine, started from the built node binary, with its configuration, node
/// data, logs and cluster file in one directory. The nodes run in their own session (setsid) so they outlive the
/// terminal when detached; they are stopped by pid, and only if the pid still runs a node of this cluster.
/// </summary>
public sealed class LocalCluster
{
    public const string ClusterFileName = "cluster.json";
    public const string ConfigFileName = "config.json";

    /// <summary>The peers' shared secret the nodes create next to their config (the node's <c>CONFIG.secret</c>).</summary>
    public const string SecretFileName = ConfigFileName + ".secret";
    public const int MaxNodes = 15;

    /// <summary>The directory of a TLS cluster's CA and node certificates, in the cluster's directory.</summary>
    public const string TlsDirectoryName = "tls";

    /// <summary>How long a node gets to exit after SIGTERM before it is killed.</summary>
    public static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(5);

    private LocalCluster(string directory, ClusterFile file)
    {
        Directory = directory;
        File = file;
    }

    public string Directory { get; }

    public ClusterFile File { get; private set; }

    /// <summary>The nodes that are members (not removed), in index order.</summary>
    public IReadOnlyList<LocalNode> Members => [.. File.Nodes.Where(n => !n.Removed)];

    /// <summary>The members' URLs, in index order (removed nodes are no longer part of the cluster).</summary>
    public IReadOnlyList<Uri> Urls => [.. Members.Select(n => new Uri(n.Url))];

    /// <summary>The node recorded at <paramref name="url"/>, or null.</summary>
    public LocalNode? NodeAt(Uri url) => File.Nodes.FirstOrDefault(n => new Uri(n.Url).Authority == url.Authority);

    public static string DefaultDirectory =>
        Environment.GetEnvironmentVariable("RAFTMQ_DATA") is { Length: > 0 } d
            ? d
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".raftmq", "cluster");

    /// <summary>The cluster recorded in <paramref name="directory"/>, or null if there is none.</summary>
    public static LocalCluster? Load(string directory)
    {
        var path = Path.Combine(directory, ClusterFileName);
        if (!System.IO.File.Exists(path)) return null;
        try
        {
            var file = JsonSerializer.Deserialize(System.IO.File.ReadAllText(path), CliJson.Default.ClusterFile)
                ?? throw new JsonException("empty");
            return new LocalCluster(Path.GetFullPath(directory), file);
        }
        catch (Exception e) when (e is JsonException or IOException)
        {
            throw new CliException($"the cluster file {path} is unreadable ({e.Message}); remove it and stop the nodes by hand");
        }
    }

    /// <summary>Whether node <paramref name="index"/> runs: its pid is alive and still runs this cluster's node.</summary>
    public bool IsRunning(int index)
    {
        var pid = File.Nodes[index].Pid;
        return Posix.IsAlive(pid) && Posix.CommandLine(pid) is { } cmd && cmd.Contains(File.Config, StringComparison.Ordinal);
    }

    public bool AnyRunning => File.Nodes.Any(n => IsRunning(n.Index));

    /// <summary>
    /// Writes a configuration for <paramref name="size"/> nodes on free loopback ports (or reuses the one in the
    /// directory, keeping its data, unless <paramref name="fresh"/>), starts every node and records the cluster file.
    /// </summary>
    /// <param name="authFile">The API key file every node is started with (<c>--auth-file</c>), or null for none.</param>
    /// <param name="tls">
    /// TLS everywhere: a CA (made once, kept across restarts, new with <paramref name="fresh"/>) and a certificate per
    /// node in <see cref="TlsDirectoryName"/>; nodes serve HTTPS and talk mutual TLS to each other.
    /// </param>
    /// <param name="authRrmq">With <paramref name="authFile"/>: the RRMQ endpoints need a key too (<c>--auth-rrmq</c>).</param>
    public static LocalCluster Start(
        string directory, int size, string nodeBinary, bool fresh, IReadOnlyList<string> nodeArgs, string? authFile = null, bool tls = false, bool authRrmq = false)
    {
        if (size is < 1 or > MaxNodes) throw new CliException($"--nodes must be between 1 and {MaxNodes}", ExitCodes.Usage);
        if (authRrmq && authFile is null) throw new CliException("--auth-rrmq needs --auth-file (the keys the RRMQ endpoints then require)", ExitCodes.Usage);
        if (authFile is not null)
        {
            authFile = Path.GetFullPath(authFile);
            if (!System.IO.File.Exists(authFile)) throw new CliException($"--auth-file {authFile}: no such file", ExitCodes.Usage);
        }
        directory = Path.GetFullPath(directory);
        if (Load(directory) is { AnyRunning: true } running)
        {
            throw new CliException(
                $"a cluster is already running from {directory} (pids {string.Join(", ", running.File.Nodes.Select(n => n.Pid))}); "
                + $"stop it with: {Cli.Name} cluster down{DataArg(directory)}");
        }
        System.IO.Directory.CreateDirectory(directory);
        var config = Path.Combine(directory, ConfigFileName);
        if (fresh)
        {
            foreach (var d in System.IO.Directory.EnumerateDirectories(directory, "node-*")) System.IO.Directory.Delete(d, recursive: true);
            foreach (var f in System.IO.Directory.EnumerateFiles(directory, "node-*.log")) System.IO.File.Delete(f);
            // A fresh cluster gets a fresh peer secret: the first node to start generates it (docs/security.md).
            System.IO.File.Delete(Path.Combine(directory, SecretFileName));
        }
        // The record of the cluster last run here (kept by `cluster down`), when it has this many members: start the same
        // nodes again, those that joined it later included, with their data.
        var record = fresh || !System.IO.File.Exists(config) ? null : Load(directory)?.File;
        var recorded = record is not null && record.Config == config && record.Nodes.Count(n => !n.Removed) == size ? record : null;
        // The config's ports and node data are reused only for the cluster the config describes: once nodes joined or
        // were removed (the record says so), its members are no longer the config's nodes, and a removed node among
        // them would start again with its data.
        var resized = record is not null && record.Nodes.Any(n => n.Removed || n.Args is not null);
        var reuse = !fresh && !resized && ReadPorts(config) is { } existing && existing.Count == size ? existing : null;
        if (reuse is null && recorded is null)
        {
            // New ports make a new cluster: node data of an earlier one (whose members may have joined at other ports)
            // would not fit it, and its nodes' logs are not the new nodes'.
            foreach (var d in System.IO.Directory.EnumerateDirectories(directory, "node-*")) System.IO.Directory.Delete(d, recursive: true);
            foreach (var f in System.IO.Directory.EnumerateFiles(directory, "node-*.log")) System.IO.File.Delete(f);
        }
        var ports = reuse ?? (recorded is not null ? [] : WriteConfig(config, size));

        string? ca = null;
        var certificates = Path.Combine(directory, TlsDirectoryName);
        if (fresh && System.IO.Directory.Exists(certificates)) System.IO.Directory.Delete(certificates, recursive: true);
        if (tls)
        {
            ca = Path.Combine(certificates, Cli.CaFile);
            if (!System.IO.File.Exists(ca)) Cli.CreateAuthority(certificates, 3650, "RaftMQ local cluster CA");
        }
        var scheme = tls ? "https" : "http";
        var file = recorded is not null
            ? new ClusterFile(config, nodeBinary, [.. recorded.Nodes.Select(n => n with { Url = NodeUrl.Format(new Uri(n.Url), scheme), Args = Scheme(n.Args, scheme) })],
                authFile, ca, authRrmq)
            : new ClusterFile(config, nodeBinary, [.. Enumerable.Range(0, size).Select(i => new LocalNode(
                i, $"{scheme}://127.0.0.1:{ports[i]}", 0, Path.Combine(directory, $"node-{i}"), Path.Combine(directory, $"node-{i}.log")))], authFile, ca, authRrmq);
        var cluster = new LocalCluster(directory, file) { NodeArgs = nodeArgs };
        for (int i = 0; i < file.Nodes.Count; i++)
        {
            if (tls) EnsureNodeCertificate(certificates, i);
            if (!file.Nodes[i].Removed) cluster.StartNode(i);
        }
        return cluster;
    }

    private IReadOnlyList<string> NodeArgs { get; init; } = [];

    /// <summary>A joined node's recorded arguments with the URL it joined through in <paramref name="scheme"/> (the cluster may restart with or without TLS).</summary>
    private static List<string>? Scheme(List<string>? args, string scheme) =>
        args?.Select(a => a.StartsWith("http://", StringComparison.Ordinal) || a.StartsWith("https://", StringComparison.Ordinal)
            ? $"{scheme}://{a[(a.IndexOf("://", StringComparison.Ordinal) + 3)..]}" : a).ToList();

    /// <summary>Starts node <paramref name="index"/> again (after a kill) with the recorded binary and config.</summary>
    public void StartNode(int index)
    {
        if (index < 0 || index >= File.Nodes.Count) throw new CliException($"no node {index}: the cluster has nodes 0-{File.Nodes.Count - 1}", ExitCodes.Usage);
        if (File.Nodes[index].Removed)
            throw new CliException($"node {index} was removed from the cluster: it is no member, and a removed node does not rejoin with its data (add a new one with: {Cli.Name} cluster up --nodes N{DataArg(Directory)})");
        if (IsRunning(index)) throw new CliException($"node {index} is already running (pid {File.Nodes[index].Pid})");
        var node = File.Nodes[index];
        System.IO.File.AppendAllText(node.Log, $"--- {DateTime.Now:yyyy-MM-dd HH:mm:ss} started by {Cli.Name}\n");
        // sh redirects the node's output to its log and execs; setsid (it does not fork: the shell is no group
        // leader) gives the node its own session, so a terminal's Ctrl-C or hang-up does not reach it. The pid stays.
        var psi = new ProcessStartInfo("/bin/sh") { UseShellExecute = false, WorkingDirectory = Directory };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(System.IO.File.Exists("/usr/bin/setsid") || System.IO.File.Exists("/bin/setsid")
            ? "log=\"$1\"; shift; exec setsid \"$@\" >>\"$log\" 2>&1 </dev/null"
            : "log=\"$1\"; shift; exec \"$@\" >>\"$log\" 2>&1 </dev/null");
        psi.ArgumentList.Add("sh");
        psi.ArgumentList.Add(node.Log);
        psi.ArgumentList.Add(File.NodeBinary);
        if (node.Args is { } joined)
        {
            foreach (var a in joined) psi.ArgumentList.Add(a);
        }
        else
        {
            psi.ArgumentList.Add(File.Config);
            psi.ArgumentList.Add(index.ToString(CultureInfo.InvariantCulture));
            psi.ArgumentList.Add("--data-dir");
            psi.ArgumentList.Add(node.DataDir);
        }
        // Every start of every node (a restart, a node that joins later) takes the cluster's key file.
        if (File.AuthFile is { } keys)
        {
            psi.ArgumentList.Add("--auth-file");
            psi.ArgumentList.Add(keys);
            if (File.AuthRrmq) psi.ArgumentList.Add("--auth-rrmq");
        }
        // ... and, for a TLS cluster, its own certificate and the cluster's CA.
        if (File.Ca is { } ca)
        {
            var certificates = Path.GetDirectoryName(ca)!;
            psi.ArgumentList.Add("--tls-cert");
            psi.ArgumentList.Add(Path.Combine(certificates, $"node-{index}.pem"));
            psi.ArgumentList.Add("--tls-key");
            psi.ArgumentList.Add(Path.Combine(certificates, $"node-{index}.key"));
            psi.ArgumentList.Add("--tls-ca");
            psi.ArgumentList.Add(ca);
        }
        foreach (var a in NodeArgs) psi.ArgumentList.Add(a);
        // A node that joins a cluster whose nodes require keys asks with the tool's key (an environment variable, not
        // an argument: arguments are visible to every user of the machine).
        if (node.Args is not null && JoinApiKey is { } key) psi.Environment["RAFTMQ_API_KEY"] = key;
        using var process = Process.Start(psi) ?? throw new CliException($"could not start node {index}");
        File.Nodes[index] = node with { Pid = process.Id };
        Save();
    }

    /// <summary>Whether node <paramref name="index"/> was named a member by the cluster (it stored the identity it was given).</summary>
    public bool HasJoined(int index) => System.IO.File.Exists(Path.Combine(File.Nodes[index].DataDir, "node-identity.json"));

    /// <summary>The API key a node that joins sends with its request (the tool's own key), or null.</summary>
    public string? JoinApiKey { get; set; }

    /// <summary>
    /// Starts node <paramref name="index"/> (the next one after the last) on free ports as a new node that asks the
    /// running cluster at <paramref name="member"/> to add it (<c>raftmq-node --join</c>), with the cluster's secret file.
    /// </summary>
    public void StartJoiningNode(int index, Uri member)
    {
        if (index != File.Nodes.Count) throw new InvalidOperationException("nodes are added after the last one");
        if (index >= MaxNodes) throw new CliException($"a local cluster has at most {MaxNodes} nodes", ExitCodes.Usage);
        var ports = LoopbackPorts.Take(2);
        var dataDir = Path.Combine(Directory, $"node-{index}");
        // A node that had this number before (removed, or refused when it asked to join) leaves nothing to the new one.
        if (System.IO.Directory.Exists(dataDir)) System.IO.Directory.Delete(dataDir, recursive: true);
        var log = Path.Combine(Directory, $"node-{index}.log");
        System.IO.File.Delete(log);
        if (File.Ca is { } ca) EnsureNodeCertificate(Path.GetDirectoryName(ca)!, index);
        List<string> args =
        [
            "--join", NodeUrl.Format(member), "--address", $"127.0.0.1:{ports[0]}:{ports[1]}", "--node", index.ToString(CultureInfo.InvariantCulture),
            "--data-dir", dataDir, "--cluster-secret-file", Path.Combine(Directory, SecretFileName),
        ];
        File.Nodes.Add(new LocalNode(index, $"{(File.Ca is null ? "http" : "https")}://127.0.0.1:{ports[0]}", 0, dataDir, log, args));
        StartNode(index);
    }

    /// <summary>Node <paramref name="index"/>'s certificate (for 127.0.0.1 and localhost), made by the cluster's CA if missing.</summary>
    private static void EnsureNodeCertificate(string certificates, int index)
    {
        if (!System.IO.File.Exists(Path.Combine(certificates, $"node-{index}.pem")))
            Cli.CreateNode(certificates, $"node-{index}", ["127.0.0.1", "localhost"], 825);
    }

    /// <summary>
    /// Stops the last node, which never became a member (its join was refused: it stored no identity), and forgets
    /// it: its entry and its data. Its log stays, for the error that named it, until the next node that takes its
    /// number starts (<see cref="StartJoiningNode"/> starts that one's log afresh).
    /// </summary>
    public async Task DropLastNodeAsync()
    {
        var last = File.Nodes[^1];
        await StopAsync(last.Index).ConfigureAwait(false);
        File.Nodes.RemoveAt(File.Nodes.Count - 1);
        Save();
        DeleteData(last);
    }

    /// <summary>
    /// Forgets node <paramref name="index"/>, removed from the membership: stops it and deletes its data directory
    /// and its log, since a removed node never runs again with its data, and a later node given its number (the last
    /// node's) starts empty, with a log of its own. The last node's entry goes; a node before it stays in the cluster
    /// file marked removed, so that neither <c>cluster up</c> nor <c>cluster start</c> starts it again and its number
    /// is not given again. Reads the cluster file first: another command may have changed it meanwhile (a node
    /// started again).
    /// </summary>
    public async Task ForgetAsync(int index)
    {
        if (Load(Directory) is { } now) File = now.File;
        if (index >= File.Nodes.Count || File.Nodes[index].Removed) return;
        var node = File.Nodes[index];
        await StopAsync(index).ConfigureAwait(false);
        if (index == File.Nodes.Count - 1) File.Nodes.RemoveAt(index);
        else File.Nodes[index] = node with { Removed = true };
        Save();
        DeleteData(node);
        DeleteLog(node);
    }

    /// <summary>
    /// Records node <paramref name="index"/> as removed (the cluster says it is no member), and, as
    /// <see cref="ForgetAsync"/> does, deletes its data and log; it is not running (the caller checked), so nothing is stopped.
    /// </summary>
    public void MarkRemoved(int index)
    {
        var node = File.Nodes[index];
        File.Nodes[index] = node with { Removed = true };
        Save();
        if (IsRunning(index)) return;
        DeleteData(node);
        DeleteLog(node);
    }

    /// <summary>Stops node <paramref name="index"/> if it runs: SIGTERM, SIGKILL after <see cref="StopGrace"/>; returns once it is gone.</summary>
    private async Task StopAsync(int index)
    {
        if (!IsRunning(index)) return;
        var pid = File.Nodes[index].Pid;
        Posix.Signal(pid, Posix.SigTerm);
        if (!await WaitGoneAsync([pid], StopGrace).ConfigureAwait(false)) Posix.Signal(pid, Posix.SigKill);
        if (!await WaitGoneAsync([pid], TimeSpan.FromSeconds(5)).ConfigureAwait(false))
            throw new CliException($"node {index} (pid {pid}) is still running 5 s after SIGKILL");
    }

    private static void DeleteData(LocalNode node)
    {
        if (System.IO.Directory.Exists(node.DataDir)) System.IO.Directory.Delete(node.DataDir, recursive: true);
    }

    private static void DeleteLog(LocalNode node) => System.IO.File.Delete(node.Log);

    /// <summary>
    /// SIGKILL to one node: it dies at once, as in a crash. Returns once the process is gone (the kernel may take a
    /// moment to tear it down), so that a <c>cluster start</c> right after finds it stopped.
    /// </summary>
    public async Task KillNodeAsync(int index)
    {
        if (index < 0 || index >= File.Nodes.Count) throw new CliException($"no node {index}: the cluster has nodes 0-{File.Nodes.Count - 1}", ExitCodes.Usage);
        if (!IsRunning(index)) throw new CliException($"node {index} is not running");
        var pid = File.Nodes[index].Pid;
        Posix.Signal(pid, Posix.SigKill);
        if (!await WaitGoneAsync([pid], TimeSpan.FromSeconds(5)).ConfigureAwait(false))
            throw new CliException($"node {index} (pid {pid}) is still running 5 s after SIGKILL");
    }

    /// <summary>The last lines of a node's log, to show why it failed.</summary>
    public string LogTail(int index, int lines = 15)
    {
        try
        {
            return string.Join('\n', System.IO.File.ReadLines(File.Nodes[index].Log).TakeLast(lines));
        }
        catch (IOException)
        {
            return "(no log)";
        }
    }

    /// <summary>
    /// Stops every running node: SIGTERM, then SIGKILL for any still running after <see cref="StopGrace"/>; waits
    /// until all are gone. The cluster file stays, so that the next <c>cluster up</c> starts the same nodes (a cluster
    /// grown with <c>cluster up --nodes N</c> included). Returns how many nodes were running.
    /// </summary>
    public async Task<int> StopAsync()
    {
        var running = File.Nodes.Where(n => IsRunning(n.Index)).Select(n => n.Pid).ToList();
        foreach (var pid in running) Posix.Signal(pid, Posix.SigTerm);
        if (!await WaitGoneAsync(running, StopGrace))
        {
            foreach (var pid in running.Where(Posix.IsAlive)) Posix.Signal(pid, Posix.SigKill);
            if (!await WaitGoneAsync(running, TimeSpan.FromSeconds(5)))
                throw new CliException($"nodes {string.Join(", ", running.Where(Posix.IsAlive))} survived SIGKILL");
        }
        return running.Count;
    }

    private static async Task<bool> WaitGoneAsync(List<int> pids, TimeSpan timeout)
    {
        // Not our children in general (a detached cluster), so there is no exit event to wait on: poll /proc.
        var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        while (pids.Any(Posix.IsAlive))
        {
            if (Stopwatch.GetTimestamp() > deadline) return false;
            await Task.Delay(20);
        }
        return true;
    }

    private void Save()
    {
        var path = Path.Combine(Directory, ClusterFileName);
        var temp = path + ".tmp";
        System.IO.File.WriteAllText(temp, JsonSerializer.Serialize(File, CliJson.Default.ClusterFile));
        System.IO.File.Move(temp, path, overwrite: true);
    }

    internal static string DataArg(string directory) =>
        Path.GetFullPath(directory) == Path.GetFullPath(DefaultDirectory) ? "" : $" --data {directory}";

    private static List<int>? ReadPorts(string config)
    {
        if (!System.IO.File.Exists(config)) return null;
        try
        {
            using var doc = JsonDocument.Parse(System.IO.File.ReadAllText(config));
            return [.. doc.RootElement.GetProperty("addresses").EnumerateArray().Select(a => a.GetProperty("port").GetInt32())];
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or IOException)
        {
            return null;
        }
    }

    private static List<int> WriteConfig(string config, int size)
    {
        var ports = LoopbackPorts.Take(size * 2);
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteStartArray("addresses");
            for (int i = 0; i < size; i++)
            {
                w.WriteStartObject();
                w.WriteString("ip", "127.0.0.1");
                w.WriteNumber("port", ports[2 * i]);
                w.WriteNumber("internal_port", ports[2 * i + 1]);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        System.IO.File.WriteAllBytes(config, stream.ToArray());
        return [.. Enumerable.Range(0, size).Select(i => ports[2 * i])];
    }

    /// <summary>
    /// The node binary: $RAFTMQ_NODE_BINARY, else the build of src/RaftMQ.Server next to this CLI's build in the
    /// repository (the same configuration first; in Release, the precompiled self-contained node that bin/raftmq-node runs).
    /// </summary>
    public static string FindNodeBinary()
    {
        if (Environment.GetEnvironmentVariable("RAFTMQ_NODE_BINARY") is { Length: > 0 } given)
        {
            return System.IO.File.Exists(given) ? Path.GetFullPath(given)
                : throw new CliException($"RAFTMQ_NODE_BINARY names {given}, which does not exist");
        }
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !System.IO.File.Exists(Path.Combine(dir.FullName, "RaftMQ.slnx"))) dir = dir.Parent;
        if (dir is not null)
        {
            var mine = AppContext.BaseDirectory.Contains("/Debug/", StringComparison.Ordinal) ? "Debug" : "Release";
            foreach (var configuration in new[] { mine, mine == "Release" ? "Debug" : "Release" })
            {
                foreach (var output in configuration == "Release" ? new[] { "node", "net10.0" } : ["net10.0"])
                {
                    var path = Path.Combine(dir.FullName, "src", "RaftMQ.Server", "bin", configuration, output, "RaftMQ.Server");
                    if (System.IO.File.Exists(path)) return path;
                }
            }
        }
        throw new CliException(
            "cannot find the node binary: build it with `dotnet build -c Release RaftMQ.slnx` in the repository, "
            + "or set RAFTMQ_NODE_BINARY to its path");
    }
}

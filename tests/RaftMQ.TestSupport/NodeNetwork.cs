using System.Diagnostics;
using System.Globalization;

namespace RaftMQ.TestSupport;

/// <summary>
/// A private network for node processes, one Linux network namespace per node (needs root): a bridge in the test's
/// own namespace with one veth pair per node, node <c>i</c> at <c>10.213.N.(i+1)</c> in its namespace and the test at
/// <c>10.213.N.254</c>, so the test's clients reach every node while the links between nodes can be cut. A cut from
/// node <c>a</c> to node <c>b</c> is a blackhole route to <c>b</c>'s address inside <c>a</c>'s namespace: every packet
/// <c>a</c> sends to <c>b</c> is dropped, silently for connections already open (new connections fail at once). TCP
/// needs both directions, so a one-way cut is what a one-way packet loss is to TCP: data <c>b</c> sends on an open
/// connection still arrives until its unacknowledged window is full, then nothing moves either way on that link.
/// <para>
/// Each network takes a free subnet number <c>N</c> under an exclusive file lock (released by the kernel if the test
/// process dies); whatever a dead run left under that number (bridge, namespaces, their processes) is removed first,
/// and so is every leftover whose lock nobody holds. <see cref="DisposeAsync"/> removes everything it made.
/// </para>
/// </summary>
public sealed class NodeNetwork : IAsyncDisposable
{
    private const string Prefix = "rmqp";
    private static readonly string LockDirectory = Path.Combine(Path.GetTempPath(), "raftmq-netns");
    private readonly FileStream _lock;
    private readonly HashSet<(int From, int To)> _cuts = [];
    private readonly Lock _gate = new();

    private NodeNetwork(int subnet, int size, FileStream held)
    {
        Subnet = subnet;
        Size = size;
        _lock = held;
    }

    /// <summary>The third octet of the network's addresses, <c>10.213.N.0/24</c>.</summary>
    public int Subnet { get; }

    public int Size { get; }

    /// <summary>Why node namespaces cannot be made here, or null if they can (Linux, root).</summary>
    public static string? WhyNotAvailable()
    {
        if (!OperatingSystem.IsLinux()) return "network namespaces need Linux";
        if (Environment.UserName != "root") return "creating network namespaces needs root (the test runs as root in CI)";
        return null;
    }

    /// <summary>The namespace node <paramref name="i"/> runs in.</summary>
    public string Namespace(int i) => $"{Prefix}{Subnet}n{i}";

    /// <summary>Node <paramref name="i"/>'s address.</summary>
    public string Address(int i) => $"10.213.{Subnet}.{i + 1}";

    /// <summary>The command line prefix that runs a program in node <paramref name="i"/>'s namespace.</summary>
    public string[] Launcher(int i) => ["ip", "netns", "exec", Namespace(i)];

    private string Bridge => $"{Prefix}{Subnet}b";

    private string HostVeth(int i) => $"{Prefix}{Subnet}h{i}";

    /// <summary>The links cut now, as (from, to): packets from <c>from</c> to <c>to</c> are dropped.</summary>
    public IReadOnlyList<(int From, int To)> Cuts
    {
        get
        {
            lock (_gate) return [.. _cuts.Order()];
        }
    }

    /// <summary>Makes a network of <paramref name="size"/> nodes (at most 200), after removing what dead runs left.</summary>
    public static async Task<NodeNetwork> CreateAsync(int size)
    {
        if (size is < 1 or > 200) throw new ArgumentOutOfRangeException(nameof(size));
        Directory.CreateDirectory(LockDirectory);
        await RemoveLeftoversAsync();
        var inUse = await RunAsync("ip", "-o", "-4", "addr", "show");
        var start = Environment.ProcessId % 250;
        for (int k = 0; k < 250; k++)
        {
            var subnet = (start + k) % 250 + 1;
            if (inUse.Contains($" 10.213.{subnet}.", StringComparison.Ordinal)) continue;
            if (TryLock(subnet) is not { } held) continue;
            var network = new NodeNetwork(subnet, size, held);
            try
            {
                await network.RemoveAsync(); // what a dead run left under this number
                await network.BuildAsync();
                return network;
            }
            catch
            {
                await network.DisposeAsync();
                throw;
            }
        }
        throw new InvalidOperationException("no free subnet 10.213.N.0/24 for a test network");
    }

    private async Task BuildAsync()
    {
        await RunAsync("ip", "link", "add", "name", Bridge, "type", "bridge");
        await RunAsync("ip", "addr", "add", $"10.213.{Subnet}.254/24", "dev", Bridge);
        await RunAsync("ip", "link", "set", Bridge, "up");
        for (int i = 0; i < Size; i++)
        {
            var ns = Namespace(i);
            await RunAsync("ip", "netns", "add", ns);
            await RunAsync("ip", "link", "add", HostVeth(i), "type", "veth", "peer", "name", "eth0", "netns", ns);
            await RunAsync("ip", "link", "set", HostVeth(i), "master", Bridge);
            await RunAsync("ip", "link", "set", HostVeth(i), "up");
            await RunAsync("ip", "-n", ns, "addr", "add", $"{Address(i)}/24", "dev", "eth0");
            await RunAsync("ip", "-n", ns, "link", "set", "eth0", "up");
            await RunAsync("ip", "-n", ns, "link", "set", "lo", "up");
        }
    }

    /// <summary>Drops every packet node <paramref name="from"/> sends to node <paramref name="to"/> (no-op if already cut).</summary>
    public async Task CutAsync(int from, int to)
    {
        if (from == to) throw new ArgumentException("a node cannot be cut from itself");
        lock (_gate)
        {
            if (!_cuts.Add((from, to))) return;
        }
        await RunAsync("ip", "-n", Namespace(from), "route", "add", "blackhole", $"{Address(to)}/32");
    }

    /// <summary>Cuts both directions between every node of <paramref name="side"/> and every node of <paramref name="other"/>.</summary>
    public async Task SplitAsync(IEnumerable<int> side, IEnumerable<int> other)
    {
        var b = other.ToList();
        foreach (var x in side)
        {
            foreach (var y in b)
            {
                await CutAsync(x, y);
                await CutAsync(y, x);
            }
        }
    }

    /// <summary>Lets node <paramref name="from"/>'s packets reach node <paramref name="to"/> again.</summary>
    public async Task HealAsync(int from, int to)
    {
        lock (_gate)
        {
            if (!_cuts.Remove((from, to))) return;
        }
        await RunAsync("ip", "-n", Namespace(from), "route", "del", "blackhole", $"{Address(to)}/32");
    }

    /// <summary>Removes every cut.</summary>
    public async Task HealAllAsync()
    {
        foreach (var (from, to) in Cuts) await HealAsync(from, to);
    }

    /// <summary>The blackhole routes each node's namespace really holds (for checking what the kernel was told).</summary>
    public async Task<IReadOnlyList<(int From, int To)>> RoutesAsync()
    {
        var found = new List<(int, int)>();
        for (int i = 0; i < Size; i++)
        {
            var routes = await RunAsync("ip", "-n", Namespace(i), "-4", "route", "show", "type", "blackhole");
            for (int j = 0; j < Size; j++)
                if (routes.Split('\n').Any(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries).Contains(Address(j)))) found.Add((i, j));
        }
        return found;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await RemoveAsync();
        }
        finally
        {
            await _lock.DisposeAsync();
        }
    }

    /// <summary>Kills whatever still runs in this network's namespaces, then deletes them, their links and the bridge.</summary>
    private async Task RemoveAsync() => await RemoveSubnetAsync(Subnet);

    private static async Task RemoveSubnetAsync(int subnet)
    {
        var prefix = $"{Prefix}{subnet}";
        foreach (var ns in (await RunAsync("ip", "netns", "list")).Split('\n')
            .Select(l => l.Split(' ', 2)[0].Trim())
            .Where(n => n.StartsWith(prefix + "n", StringComparison.Ordinal) && int.TryParse(n[(prefix.Length + 1)..], out _)))
        {
            foreach (var pid in (await RunAsync("ip", "netns", "pids", ns)).Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                try
                {
                    using var process = Process.GetProcessById(int.Parse(pid.Trim(), CultureInfo.InvariantCulture));
                    process.Kill();
                    await process.WaitForExitAsync();
                }
                catch (ArgumentException)
                {
                    // Gone already.
                }
            }
            await RunAsync("ip", "netns", "del", ns);
        }
        foreach (var link in LinkNames().Where(l => l.StartsWith(prefix, StringComparison.Ordinal) && IsOurs(l, prefix)))
            await RunAsync(["ip", "link", "del", link], ignoreMissing: true);
    }

    /// <summary>A link name this class makes for that subnet: <c>PREFIX b</c> or <c>PREFIX h DIGITS</c>.</summary>
    private static bool IsOurs(string link, string prefix)
    {
        var rest = link[prefix.Length..];
        return rest == "b" || (rest.Length > 1 && rest[0] == 'h' && rest[1..].All(char.IsAsciiDigit));
    }

    private static IEnumerable<string> LinkNames() =>
        Directory.Exists("/sys/class/net") ? Directory.GetDirectories("/sys/class/net").Select(Path.GetFileName).OfType<string>() : [];

    /// <summary>Removes the leftovers of every subnet whose lock no live process holds.</summary>
    private static async Task RemoveLeftoversAsync()
    {
        var namespaces = (await RunAsync("ip", "netns", "list")).Split('\n').Select(l => l.Split(' ', 2)[0].Trim());
        var subnets = namespaces.Concat(LinkNames())
            .Where(n => n.StartsWith(Prefix, StringComparison.Ordinal))
            .Select(n => new string([.. n[Prefix.Length..].TakeWhile(char.IsAsciiDigit)]))
            .Where(d => d.Length > 0)
            .Select(d => int.Parse(d, CultureInfo.InvariantCulture))
            .Distinct()
            .ToList();
        foreach (var subnet in subnets)
        {
            if (TryLock(subnet) is not { } held) continue; // a live run's
            await using (held) await RemoveSubnetAsync(subnet);
        }
    }

    /// <summary>The subnet's lock file opened exclusively (an advisory lock the kernel drops when the process dies), or null if held.</summary>
    private static FileStream? TryLock(int subnet)
    {
        try
        {
            return new FileStream(Path.Combine(LockDirectory, $"{subnet}.lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException)
        {
            return null;
        }
    }

    private static Task<string> RunAsync(params string[] command) => RunAsync(command, ignoreMissing: false);

    private static async Task<string> RunAsync(string[] command, bool ignoreMissing)
    {
        var psi = new ProcessStartInfo(command[0]) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in command.Skip(1)) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {command[0]}");
        var stdout = p.StandardOutput.ReadToEndAsync();
        var error = await p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        // A device can be missing in two ways: not there when `ip` looks it up ("Cannot find device"), or gone between
        // the lookup and the delete ("No such device": a namespace's deletion removes its veth pair asynchronously, so
        // a host end listed a moment earlier can vanish under us).
        if (p.ExitCode != 0 && !(ignoreMissing && (error.Contains("Cannot find device", StringComparison.Ordinal)
                || error.Contains("No such device", StringComparison.Ordinal))))
            throw new InvalidOperationException($"{string.Join(' ', command)} failed ({p.ExitCode}): {error.Trim()}");
        return await stdout;
    }
}

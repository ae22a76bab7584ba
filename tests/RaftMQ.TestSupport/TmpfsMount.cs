using System.Diagnostics;

namespace RaftMQ.TestSupport;

/// <summary>A small tmpfs mounted for one test (needs root with CAP_SYS_ADMIN): a file system that really fills up.</summary>
public sealed class TmpfsMount : IAsyncDisposable
{
    private TmpfsMount(string path) => Path = path;

    public string Path { get; }

    /// <summary>Why a tmpfs cannot be mounted here, or null if it can (root, CAP_SYS_ADMIN, a mount program).</summary>
    public static string? WhyNotAvailable()
    {
        if (!OperatingSystem.IsLinux()) return "mounting a tmpfs needs Linux";
        if (Environment.UserName != "root") return "mounting a tmpfs needs root (the test runs as root in CI)";
        var capEff = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("CapEff:", StringComparison.Ordinal));
        const int CapSysAdmin = 21;
        if (capEff is null || (Convert.ToUInt64(capEff["CapEff:".Length..].Trim(), 16) & (1UL << CapSysAdmin)) == 0)
            return "mounting a tmpfs needs CAP_SYS_ADMIN (this container does not have it)";
        if (!File.Exists("/bin/mount") && !File.Exists("/usr/bin/mount")) return "no mount program";
        return null;
    }

    /// <summary>Mounts a tmpfs of <paramref name="megabytes"/> MB on a new directory under <paramref name="parent"/>.</summary>
    public static async Task<TmpfsMount> MountAsync(string parent, int megabytes)
    {
        var path = System.IO.Path.Combine(parent, "tmpfs-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(path);
        await RunAsync("mount", "-t", "tmpfs", "-o", $"size={megabytes}m", "tmpfs", path);
        return new TmpfsMount(path);
    }

    /// <summary>Makes the file system read-only, or writable again (<c>mount -o remount,ro|rw</c>).</summary>
    public Task RemountAsync(bool readOnly) => RunAsync("mount", "-o", readOnly ? "remount,ro" : "remount,rw", Path);

    public async ValueTask DisposeAsync()
    {
        await RunAsync("umount", Path);
        Directory.Delete(Path);
    }

    private static async Task RunAsync(string program, params string[] args)
    {
        var psi = new ProcessStartInfo(program) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {program}");
        var error = await p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{program} {string.Join(' ', args)} failed ({p.ExitCode}): {error}");
    }
}

namespace RaftMQ.TestSupport;

/// <summary>How a test runs the raftmq CLI: as bin/raftmq runs it.</summary>
public static class CliCommand
{
    /// <summary>
    /// The command line before the CLI's own arguments: in a Release test run, the native CLI (Native AOT,
    /// src/RaftMQ.Cli/bin/Release/cli/raftmq) when the build made one, which is what bin/raftmq runs then; otherwise
    /// <c>dotnet</c> and the framework-dependent raftmq.dll of the tests' configuration.
    /// </summary>
    public static string[] Prefix
    {
        get
        {
            var release = AppContext.BaseDirectory.Contains("/Release/", StringComparison.Ordinal);
            var native = Path.Combine(NodeProcess.RepoRoot, "src", "RaftMQ.Cli", "bin", "Release", "cli", "raftmq");
            if (release && File.Exists(native)) return [native];
            var dll = Path.Combine(NodeProcess.RepoRoot, "src", "RaftMQ.Cli", "bin", release ? "Release" : "Debug", "net10.0", "raftmq.dll");
            return File.Exists(dll) ? ["dotnet", dll] : throw new FileNotFoundException("build the CLI first", dll);
        }
    }

    /// <summary>A start of the CLI with <paramref name="args"/>, output redirected, in <paramref name="workingDirectory"/>.</summary>
    public static System.Diagnostics.ProcessStartInfo StartInfo(string workingDirectory, params string[] args)
    {
        var prefix = Prefix;
        var psi = new System.Diagnostics.ProcessStartInfo(prefix[0])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory,
        };
        foreach (var part in prefix[1..]) psi.ArgumentList.Add(part);
        foreach (var a in args) psi.ArgumentList.Add(a);
        return psi;
    }
}

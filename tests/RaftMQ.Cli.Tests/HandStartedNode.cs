using System.Diagnostics;

namespace RaftMQ.Cli.Tests;

/// <summary>
/// A node started by the test itself, not by the CLI (as an operator starts one on another machine with
/// <c>raftmq-node --join</c>): the local cluster does not know it. Killed, and waited for, on dispose.
/// </summary>
public sealed class HandStartedNode : IAsyncDisposable
{
    private readonly Process _process;
    private readonly System.Text.StringBuilder _output = new();
    private readonly Lock _gate = new();

    private HandStartedNode(Process process) => _process = process;

    /// <summary>What the node wrote, for a failure message.</summary>
    public string Output
    {
        get
        {
            lock (_gate) return _output.ToString();
        }
    }

    public static HandStartedNode Start(string binary, string workingDirectory, params string[] args)
    {
        var psi = new ProcessStartInfo(binary)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        var process = new Process { StartInfo = psi };
        var node = new HandStartedNode(process);
        process.OutputDataReceived += (_, e) => node.Append(e.Data);
        process.ErrorDataReceived += (_, e) => node.Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return node;
    }

    private void Append(string? line)
    {
        if (line is null) return;
        lock (_gate) _output.AppendLine(line);
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

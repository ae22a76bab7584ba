using System.Diagnostics;

namespace RaftMQ.Cli.Tests;

/// <summary>The process primitives the local cluster uses to tell a running node from an exited one.</summary>
public sealed class PosixTests
{
    /// <summary>
    /// A node starts as sh → setsid → node, each an exec. While a process execs, the kernel shows its arguments as
    /// empty; the local cluster once took such a starting node for an exited one ("node 4 exited while joining").
    /// Every read of a starting process's command line, polled as fast as it goes, must name the command.
    /// </summary>
    [Fact]
    public void A_process_in_the_middle_of_exec_still_shows_its_command_line()
    {
        const string marker = "raftmq-posix-test-marker";
        for (int i = 0; i < 40; i++)
        {
            var psi = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add("exec setsid \"$@\"");
            psi.ArgumentList.Add("sh");
            psi.ArgumentList.Add("/bin/sh");
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add("read line");
            psi.ArgumentList.Add(marker);
            psi.RedirectStandardInput = true;
            using var process = Process.Start(psi)!;
            try
            {
                // Poll until the chain has reached its last program (a shell waiting on stdin, with the marker as $0).
                var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
                while (true)
                {
                    var cmd = Posix.CommandLine(process.Id);
                    cmd.ShouldNotBeNull($"start {i}: a live process read as gone");
                    cmd.ShouldContain(marker);
                    if (!cmd.Contains("setsid", StringComparison.Ordinal) && !cmd.Contains("exec", StringComparison.Ordinal)) break;
                    (DateTime.UtcNow < deadline).ShouldBeTrue("the exec chain did not finish");
                }
            }
            finally
            {
                process.StandardInput.Close();
                process.WaitForExit();
            }
        }
    }
}

using System.Runtime.InteropServices;

namespace RaftMQ.Cli;

/// <summary>The few process primitives .NET lacks for processes that are not our children.</summary>
internal static partial class Posix
{
    public const int SigKill = 9;
    public const int SigTerm = 15;

    /// <summary>Whether the process exists and is not a zombie.</summary>
    public static bool IsAlive(int pid)
    {
        if (pid <= 0) return false;
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            // The state follows the parenthesised command name, which may itself contain spaces or parentheses.
            var close = stat.LastIndexOf(')');
            return close > 0 && close + 2 < stat.Length && stat[close + 2] != 'Z' && stat[close + 2] != 'X';
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>The command line of a process (arguments joined by spaces), or null if it is gone.</summary>
    /// <remarks>
    /// A process in the middle of exec (sh → setsid → node when a node starts) or of exiting has no arguments to
    /// show: the kernel reads them as empty. An empty answer from a live process is therefore read again until it has
    /// arguments or is gone (bounded by <see cref="ExecWindow"/>); otherwise a node that is starting looks like one that exited.
    /// </remarks>
    public static string? CommandLine(int pid)
    {
        var deadline = Environment.TickCount64 + (long)ExecWindow.TotalMilliseconds;
        var spin = default(SpinWait);
        while (true)
        {
            string text;
            try
            {
                text = File.ReadAllText($"/proc/{pid}/cmdline");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return null;
            }
            if (text.Length > 0) return text.Replace('\0', ' ');
            if (!IsAlive(pid) || Environment.TickCount64 > deadline) return null;
            spin.SpinOnce();
        }
    }

    /// <summary>How long a live process may show no arguments (an exec in progress) before it is taken for something else.</summary>
    private static readonly TimeSpan ExecWindow = TimeSpan.FromSeconds(2);

    public static bool Signal(int pid, int signal) => pid > 0 && Kill(pid, signal) == 0;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}

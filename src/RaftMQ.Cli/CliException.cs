namespace RaftMQ.Cli;

/// <summary>A failure the user can fix; <see cref="ExitCode"/> is what the process returns.</summary>
public sealed class CliException(string message, int exitCode = ExitCodes.Failure) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}

/// <summary>The exit codes of every command (documented in docs/cli.md).</summary>
public static class ExitCodes
{
    public const int Ok = 0;

    /// <summary>The command failed and changed nothing: no cluster, no leader, unknown topic, a request refused for the cluster's state (409, 413, 507).</summary>
    public const int Failure = 1;

    /// <summary>Bad arguments: refused by the tool, or by the cluster as an invalid request (400); nothing changed.</summary>
    public const int Usage = 2;

    /// <summary>A publish or pop may or may not have been applied.</summary>
    public const int OutcomeUnknown = 3;

    /// <summary>The node refused the credentials (401: no API key or an unknown one) or the permission (403); nothing was applied.</summary>
    public const int AccessDenied = 4;

    /// <summary>Interrupted by Ctrl-C.</summary>
    public const int Interrupted = 130;
}

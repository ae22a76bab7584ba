using System.Globalization;

namespace RaftMQ.Simulation;

/// <summary>
/// The environment variables that steer simulation runs: <c>RAFTMQ_SEED=n</c> replays one seed,
/// <c>RAFTMQ_SOAK=1</c> runs the long randomized sweeps.
/// </summary>
public static class SimEnvironment
{
    public const string SeedVariable = "RAFTMQ_SEED";
    public const string SoakVariable = "RAFTMQ_SOAK";

    /// <summary>The seed to replay, when <c>RAFTMQ_SEED</c> is set.</summary>
    public static ulong? SeedOverride
    {
        get
        {
            var text = Environment.GetEnvironmentVariable(SeedVariable);
            if (string.IsNullOrWhiteSpace(text)) return null;
            if (!ulong.TryParse(text.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var seed))
                throw new ArgumentException($"{SeedVariable} must be a non-negative integer, not '{text}'.");
            return seed;
        }
    }

    /// <summary>Whether <c>RAFTMQ_SOAK=1</c> asks for the long runs.</summary>
    public static bool Soak => Environment.GetEnvironmentVariable(SoakVariable) == "1";

    /// <summary>The one-line shell command that reruns exactly the test named by <paramref name="testFilter"/> with <paramref name="seed"/>.</summary>
    /// <param name="seed">The seed to replay.</param>
    /// <param name="testFilter">A <c>dotnet test --filter</c> expression, e.g. <c>FullyQualifiedName~Fuzz</c>.</param>
    public static string ReplayCommand(ulong seed, string testFilter) =>
        $"{SeedVariable}={seed.ToString(CultureInfo.InvariantCulture)} dotnet test tests/RaftMQ.Simulation.Tests --filter \"{testFilter}\"";
}

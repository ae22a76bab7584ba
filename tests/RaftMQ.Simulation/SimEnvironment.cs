using System.Globalization;

namespace RaftMQ.Simulation;

/// <summary>
/// The environment variables that steer simulation runs: <c>RAFTMQ_SEED=n</c> replays one seed,
/// <c>RAFTMQ_SOAK=1</c> runs the long randomized sweeps, <c>RAFTMQ_SEED_OFFSET=n</c> moves the sweeps' seeds by n.
/// </summary>
public static class SimEnvironment
{
    public const string SeedVariable = "RAFTMQ_SEED";
    public const string SoakVariable = "RAFTMQ_SOAK";
    public const string SeedOffsetVariable = "RAFTMQ_SEED_OFFSET";

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

    /// <summary>
    /// What <c>RAFTMQ_SEED_OFFSET</c> adds to the first seed of every fuzzer's sweep (0 when unset): a soak with a new
    /// offset runs schedules no earlier soak ran. A failure's replay command names its seed, offset included.
    /// </summary>
    public static ulong SeedOffset
    {
        get
        {
            var text = Environment.GetEnvironmentVariable(SeedOffsetVariable);
            if (string.IsNullOrWhiteSpace(text)) return 0;
            if (!ulong.TryParse(text.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var offset) || offset > 1UL << 60)
                throw new ArgumentException($"{SeedOffsetVariable} must be an integer from 0 to 2^60, not '{text}'.");
            return offset;
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

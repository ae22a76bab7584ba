using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace RaftMQ.Simulation.Tests.Support;

/// <summary>Builds clusters for tests: the test's seed (or <c>RAFTMQ_SEED</c>) and the command that replays it.</summary>
internal static class Sim
{
    /// <summary>
    /// The seeds a randomized test runs: the one in <c>RAFTMQ_SEED</c> if set; otherwise <paramref name="defaultSeed"/>,
    /// and with <c>RAFTMQ_SOAK=1</c> also the <paramref name="soakCount"/> - 1 seeds after it.
    /// </summary>
    public static IEnumerable<ulong> Seeds(ulong defaultSeed, int soakCount = 50)
    {
        if (SimEnvironment.SeedOverride is { } seed)
        {
            yield return seed;
            yield break;
        }
        var count = SimEnvironment.Soak ? soakCount : 1;
        for (int i = 0; i < count; i++) yield return defaultSeed + (ulong)i;
    }

    /// <summary>The <c>dotnet test</c> filter that selects exactly one test method.</summary>
    public static string Filter(Type testClass, string method) => $"FullyQualifiedName={testClass.FullName}.{method}";

    public static SimCluster Cluster(
        Type testClass, int nodes, ulong seed, Action<SimOptions>? configure = null, [CallerMemberName] string test = "")
    {
        var options = new SimOptions
        {
            Nodes = nodes,
            Seed = seed,
            ReplayCommand = SimEnvironment.ReplayCommand(seed, Filter(testClass, test)),
        };
        configure?.Invoke(options);
        return new SimCluster(options);
    }

    /// <summary>An 8-byte command holding <paramref name="value"/>.</summary>
    public static byte[] Cmd(long value)
    {
        var bytes = new byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(bytes, value);
        return bytes;
    }

    /// <summary>Fails the run (with seed and replay command) unless <paramref name="condition"/> holds.</summary>
    public static void Expect(this SimCluster cluster, bool condition, string what)
    {
        if (!condition) throw cluster.Failure(what);
    }

    /// <summary>Runs until <paramref name="condition"/> holds, failing the run (with its seed) when it does not in time.</summary>
    public static void Await(this SimCluster cluster, Func<bool> condition, long timeoutMs, string what)
    {
        if (!cluster.RunUntil(condition, timeoutMs)) throw cluster.Failure($"timed out after {timeoutMs} virtual ms waiting for: {what}");
    }
}

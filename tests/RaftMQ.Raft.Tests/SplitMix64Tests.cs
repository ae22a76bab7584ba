namespace RaftMQ.Raft.Tests;

/// <summary>
/// The random source behind election timeouts and the simulator's schedules: a seed must give the same sequence on
/// every platform and runtime version, or a recorded failing seed no longer replays.
/// </summary>
public sealed class SplitMix64Tests
{
    // The published SplitMix64 reference sequence for seed 0 (Steele, Lea and Flood; Vigna's splitmix64.c).
    [Fact]
    public void Sequence_MatchesTheReferenceImplementation()
    {
        var random = new SplitMix64(0);
        random.NextUInt64().ShouldBe(0xE220A8397B1DCDAFUL);
        random.NextUInt64().ShouldBe(0x6E789E6AA1B965F4UL);
        random.NextUInt64().ShouldBe(0x06C45D188009454FUL);

        var seeded = new SplitMix64(42);
        seeded.NextUInt64().ShouldBe(0xBDD732262FEB6E95UL);
    }

    [Fact]
    public void Next_IsTheNextValueModuloTheBound()
    {
        // Values of the reference sequence for seed 42: 0xBDD732262FEB6E95 % 10 = 3, 0x28EFE333B266F103 % 7 = 5.
        var random = new SplitMix64(42);
        random.Next(10).ShouldBe(3);
        random.Next(7).ShouldBe(5);
        new SplitMix64(42).Next(1).ShouldBe(0);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    public void Next_WithoutAPositiveBound_Throws(int bound) =>
        Should.Throw<ArgumentOutOfRangeException>(() => new SplitMix64(1).Next(bound));

    [Fact]
    public void NextDouble_UsesTheTop53BitsAsAFractionInZeroToOne()
    {
        // The third value for seed 42 is 0x47526757130F9F52; its top 53 bits over 2^53.
        var random = new SplitMix64(42);
        random.NextUInt64();
        random.NextUInt64();
        random.NextDouble().ShouldBe((0x47526757130F9F52UL >> 11) / 9007199254740992.0);

        var many = new SplitMix64(7);
        for (int i = 0; i < 1000; i++) many.NextDouble().ShouldBeInRange(0.0, 0.9999999999999999);
    }
}

using RaftMQ.Raft;
using Shouldly;
using Xunit;

namespace RaftMQ.Storage.Tests;

/// <summary>
/// Configuration entries (entry type 2) are stored like any other entry: the record layout is unchanged, so a log
/// written before they existed reads as before, and one holding them reads back after a restart.
/// </summary>
public sealed class ConfigurationEntryTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void A_configuration_entry_survives_reopen_between_commands_and_no_ops()
    {
        var configuration = new ClusterConfiguration([1, 2, 3], [4]);
        Entry[] entries =
        [
            new(1, 1, EntryType.NoOp, ReadOnlyMemory<byte>.Empty),
            new(2, 1, EntryType.Command, new byte[] { 1, 2, 3 }),
            new(3, 1, EntryType.Configuration, configuration.Encode()),
            new(4, 1, EntryType.Command, new byte[] { 4 }),
        ];
        using (var log = DurableLogStorage.Open(_dir.Path, Logs.SmallOptions()))
        {
            log.Save(new HardState(1, 1, 4), entries, sync: true);
        }

        using var reopened = DurableLogStorage.Open(_dir.Path, Logs.SmallOptions());
        var read = new List<Entry>();
        reopened.ReadEntries(1, 5, long.MaxValue, read);

        read.Select(e => e.Type).ShouldBe([EntryType.NoOp, EntryType.Command, EntryType.Configuration, EntryType.Command]);
        ClusterConfiguration.Decode(read[2].Data.Span).ShouldBe(configuration);
        read[3].Data.ToArray().ShouldBe([(byte)4]);
    }

    [Fact]
    public void An_unknown_entry_type_is_refused_with_a_clear_error()
    {
        using var log = DurableLogStorage.Open(_dir.Path, Logs.SmallOptions());

        Should.Throw<ArgumentException>(() => log.Save(null, [new Entry(1, 1, (EntryType)3, new byte[] { 1 })], sync: true))
            .Message.ShouldContain("unknown type");
    }
}

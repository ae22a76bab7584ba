using System.Net;
using System.Text;
using RaftMQ.Runtime;
using RaftMQ.Raft;
using RaftMQ.StateMachine.Sessions;
using RaftMQ.Storage;
using RaftMQ.Transport;

namespace RaftMQ.Hosting.Tests;

public sealed class RaftHostTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "raftmq-host-tests", Guid.NewGuid().ToString("N")[..12]);

    private RaftHostOptions Options() => new()
    {
        NodeId = 1,
        Peers = new Dictionary<ulong, EndPoint>(),
        ListenEndPoint = new IPEndPoint(IPAddress.Loopback, 0),
        DataDirectory = _directory,
        ClusterId = "host-test",
        ClusterSecret = RaftHostOptions.DeriveSecret("host-test"),
    };

    [Fact]
    public async Task A_hosted_node_applies_through_sessions_and_recovers_its_state_from_the_log()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var inner = new AppendMachine();
        ulong session;
        await using (var host = await RaftHost.StartAsync(Options(), new SessionStateMachine(inner, new IntCodec()), cancellationToken: timeout.Token))
        {
            host.PeerEndPoint.Port.ShouldBeGreaterThan(0);
            await host.Runtime.WaitForLeaderAsync(timeout.Token);
            session = ((SessionRegistered)(await host.Runtime.ProposeAsync(SessionCommand.EncodeRegister(1), timeout.Token))!).SessionId;
            var command = SessionCommand.EncodeCommand(2, session, 1, 1, Encoding.UTF8.GetBytes("x"));
            (await host.Runtime.ProposeAsync(command, timeout.Token)).ShouldBe(1);
            (await host.Runtime.ProposeAsync(command, timeout.Token)).ShouldBe(1); // a resend: the recorded answer
            (await host.Runtime.ReadWaitingForLeaderAsync(() => inner.Items.Count, timeout.Token)).ShouldBe(1);
        }

        var again = new AppendMachine();
        await using (var host = await RaftHost.StartAsync(Options(), new SessionStateMachine(again, new IntCodec()), cancellationToken: timeout.Token))
        {
            // The WAL replays into the new state machine, the session table with it.
            (await host.Runtime.ReadWaitingForLeaderAsync(() => again.Items.ToList(), timeout.Token)).ShouldBe(["x"]);
            var retry = SessionCommand.EncodeCommand(3, session, 1, 1, Encoding.UTF8.GetBytes("x"));
            (await host.Runtime.ProposeAsync(retry, timeout.Token)).ShouldBe(1);
            again.Applies.ShouldBe(1);
        }
    }

    [Fact]
    public async Task The_counters_follow_what_the_loop_did()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var inner = new AppendMachine();
        await using var host = await RaftHost.StartAsync(Options(), new SessionStateMachine(inner, new IntCodec()), cancellationToken: timeout.Token);
        await host.Runtime.WaitForLeaderAsync(timeout.Token);
        var session = ((SessionRegistered)(await host.Runtime.ProposeAsync(SessionCommand.EncodeRegister(1), timeout.Token))!).SessionId;
        for (ulong i = 1; i <= 3; i++)
            await host.Runtime.ProposeAsync(SessionCommand.EncodeCommand((long)i + 1, session, i, i, Encoding.UTF8.GetBytes("x")), timeout.Token);
        await host.Runtime.ReadWaitingForLeaderAsync(() => inner.Items.Count, timeout.Token);

        var c = host.Runtime.Counters;
        c.Proposals.ShouldBe(4);
        c.Reads.ShouldBe(1);
        // The leader's no-op, the registration and the three commands, each written and applied once.
        c.EntriesPersisted.ShouldBe(5);
        c.EntriesApplied.ShouldBe(5);
        c.LogSyncs.ShouldBeInRange(1, c.LogWrites);
        c.LogWrites.ShouldBeInRange(1, c.Readies);
        c.Iterations.ShouldBeGreaterThan(0);
        c.MessagesSent.ShouldBe(0, "a one-node cluster has nobody to talk to");
        c.MessagesHandled.ShouldBe(0);
    }

    [Fact]
    public async Task Invalid_options_are_refused_with_a_clear_error()
    {
        var e = await Should.ThrowAsync<ArgumentException>(() => RaftHost.StartAsync(
            Options() with { HeartbeatInterval = TimeSpan.FromSeconds(1) }, new AppendMachine()));
        e.Message.ShouldContain("HeartbeatInterval");
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
            // Nothing was written.
        }
    }
}

public sealed class NodeLimitsTests
{
    private static readonly RaftOptions Raft = new() { Id = 1, Voters = [1] };

    [Fact]
    public void The_default_bounds_of_every_layer_fit_together() =>
        NodeLimits.Validate(Raft, new NodeDriverOptions(), new StorageOptions(), new TcpTransportOptions());

    [Fact]
    public void A_command_limit_over_what_storage_keeps_is_refused()
    {
        var e = Should.Throw<ArgumentException>(() => NodeLimits.Validate(
            new RaftOptions { Id = 1, Voters = [1], MaxEntryBytes = 8 << 20 }, new NodeDriverOptions(), new StorageOptions(), new TcpTransportOptions()));
        e.Message.ShouldContain("StorageOptions.MaxEntryBytes");
    }

    [Fact]
    public void An_append_or_a_snapshot_chunk_larger_than_a_transport_frame_is_refused()
    {
        var small = new TcpTransportOptions { MaxFrameBytes = 2 << 20 };
        Should.Throw<ArgumentException>(() => NodeLimits.Validate(Raft, new NodeDriverOptions(), new StorageOptions(), small))
            .Message.ShouldContain("AppendEntries");
        var raft = new RaftOptions { Id = 1, Voters = [1], MaxEntryBytes = 1 << 20 };
        Should.Throw<ArgumentException>(() => NodeLimits.Validate(raft, new NodeDriverOptions { SnapshotChunkBytes = 4 << 20 }, new StorageOptions(), small))
            .Message.ShouldContain("snapshot chunk");
    }

    [Fact]
    public async Task A_command_over_the_limit_is_refused_and_the_node_keeps_serving()
    {
        var directory = Path.Combine(Path.GetTempPath(), "raftmq-limits-tests", Guid.NewGuid().ToString("N")[..12]);
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            var options = new RaftHostOptions
            {
                NodeId = 1,
                Peers = new Dictionary<ulong, EndPoint>(),
                ListenEndPoint = new IPEndPoint(IPAddress.Loopback, 0),
                DataDirectory = directory,
                ClusterId = "limits-test",
                ClusterSecret = RaftHostOptions.DeriveSecret("limits-test"),
                MaxCommandBytes = 1024,
            };
            var machine = new AppendMachine();
            await using var host = await RaftHost.StartAsync(options, machine, cancellationToken: timeout.Token);
            await host.Runtime.WaitForLeaderAsync(timeout.Token);
            var e = await Should.ThrowAsync<CommandTooLargeException>(() => host.Runtime.ProposeAsync(new byte[1025], timeout.Token));
            e.MaxBytes.ShouldBe(1024);
            (await host.Runtime.ProposeAsync(Encoding.UTF8.GetBytes("fits"), timeout.Token)).ShouldBe(1);
            host.Completion.IsCompleted.ShouldBeFalse();
        }
        finally
        {
            if (Directory.Exists(directory)) Directory.Delete(directory, recursive: true);
        }
    }
}

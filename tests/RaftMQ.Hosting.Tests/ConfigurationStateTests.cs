using System.Net;
using System.Net.Sockets;
using RaftMQ.Storage;

namespace RaftMQ.Hosting.Tests;

/// <summary>
/// <see cref="Runtime.RaftRuntime.ReadConfigurationStateAsync"/>, which <c>GET /v1/cluster/members</c> answers from: a
/// node runs on (and lists) its latest configuration, committed or not, and says which. A change stays uncommitted
/// here for as long as the test wants: of a five-node cluster two are stopped and a third one's fsyncs are held, so
/// it still answers heartbeats (reads are confirmed) but never acknowledges the change's entry.
/// </summary>
public sealed class ConfigurationStateTests : IDisposable
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "raftmq-config-state-tests", Guid.NewGuid().ToString("N")[..12]);

    [Fact]
    public async Task A_change_not_yet_committed_is_listed_as_uncommitted_on_the_leader_and_on_a_follower_then_as_committed()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        const int Size = 5;
        var ports = FreePorts(Size);
        var disks = new Dictionary<ulong, HeldSyncFileSystem>();
        var hosts = new Dictionary<ulong, RaftHost>();
        try
        {
            for (ulong id = 1; id <= Size; id++)
            {
                disks[id] = new HeldSyncFileSystem();
                var peers = Enumerable.Range(1, Size).Where(p => (ulong)p != id)
                    .ToDictionary(p => (ulong)p, p => (EndPoint)new IPEndPoint(IPAddress.Loopback, ports[p - 1]));
                hosts[id] = await RaftHost.StartAsync(new RaftHostOptions
                {
                    NodeId = id,
                    Peers = peers,
                    ListenEndPoint = new IPEndPoint(IPAddress.Loopback, ports[(int)id - 1]),
                    DataDirectory = Path.Combine(_directory, $"node-{id}"),
                    ClusterId = "config-state-test",
                    ClusterSecret = RaftHostOptions.DeriveSecret("config-state-test"),
                    // Elections only when a node is really gone, even on a busy machine.
                    ElectionTimeout = TimeSpan.FromSeconds(1),
                    HeartbeatInterval = TimeSpan.FromMilliseconds(100),
                    PromoteCaughtUpLearners = false,
                    Storage = new StorageOptions { FileSystem = disks[id] },
                }, new AppendMachine(), cancellationToken: timeout.Token);
            }
            await hosts[1].Runtime.WaitForLeaderAsync(timeout.Token);
            var leader = hosts[1].Runtime.Status.Leader;
            var others = hosts.Keys.Where(id => id != leader).ToList();
            var (follower, stalled) = (others[0], others[1]);

            // The bootstrap configuration: from the options, no entry of the log holds it; committed.
            var initial = await hosts[leader].Runtime.ReadConfigurationStateAsync(timeout.Token);
            initial.Configuration.Voters.Order().ToArray().ShouldBe([1UL, 2, 3, 4, 5]);
            initial.Committed.ShouldBeTrue();
            initial.Index.ShouldBe(0UL);

            // Three voters of five left: the leader, a follower and one whose disk will stall. A command committed now
            // is on the disks of all three, their terms too, so each answers heartbeats from here on (a node answers
            // none while its term is not durable). Then the stalled one still answers heartbeats (reads are confirmed)
            // but acknowledges no entry: a change has two disks of the three it needs, and stays uncommitted.
            foreach (var id in others.Skip(2))
            {
                await hosts[id].DisposeAsync();
                hosts.Remove(id);
            }
            await hosts[leader].Runtime.ProposeAsync(System.Text.Encoding.UTF8.GetBytes("before"), timeout.Token);
            disks[stalled].Hold();
            var change = hosts[leader].Runtime.AddLearnerAsync(6, cancellationToken: timeout.Token);

            // The leader and the follower (which holds the entry) run on the new configuration at once, and say it is
            // not committed. (The stalled node serves no read until its fsync ends.)
            foreach (var id in new[] { leader, follower })
            {
                var pending = await ReadUntilAsync(hosts[id], s => s.Configuration.IsMember(6), timeout.Token);
                pending.Committed.ShouldBeFalse($"node {id}");
                pending.Index.ShouldBeGreaterThan(0UL, $"node {id}");
                pending.Configuration.Learners.ToArray().ShouldBe([6UL], $"node {id}");
                pending.Leader.ShouldBe(leader);
            }
            change.IsCompleted.ShouldBeFalse("the change cannot commit while the third voter's fsyncs are held");
            var index = (await hosts[leader].Runtime.ReadConfigurationStateAsync(timeout.Token)).Index;

            // The disk works again: the change commits, and each node says so for the same entry.
            disks[stalled].Release();
            (await change.WaitAsync(timeout.Token)).Index.ShouldBe(index);
            foreach (var id in new[] { leader, follower, stalled })
            {
                var committed = await ReadUntilAsync(hosts[id], s => s.Committed, timeout.Token);
                committed.Index.ShouldBe(index, $"node {id}");
                committed.Configuration.IsMember(6).ShouldBeTrue($"node {id}");
            }
        }
        finally
        {
            foreach (var disk in disks.Values) disk.Release();
            foreach (var host in hosts.Values) await host.DisposeAsync();
        }
    }

    /// <summary>Reads the node's configuration state until <paramref name="condition"/> holds, up to <see cref="Deadline"/>.</summary>
    private static async Task<Runtime.ConfigurationState> ReadUntilAsync(RaftHost host, Func<Runtime.ConfigurationState, bool> condition, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + Deadline;
        while (true)
        {
            var state = await host.Runtime.ReadConfigurationStateAsync(cancellationToken);
            if (condition(state)) return state;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"node {host.Runtime.Status.Id}: last read {state}");
            await Task.Yield();
        }
    }

    private static int[] FreePorts(int count)
    {
        var listeners = Enumerable.Range(0, count).Select(_ => new TcpListener(IPAddress.Loopback, 0)).ToList();
        foreach (var l in listeners) l.Start();
        var ports = listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port).ToArray();
        foreach (var l in listeners) l.Stop();
        return ports;
    }

    public void Dispose()
    {
        if (Directory.Exists(_directory)) Directory.Delete(_directory, recursive: true);
    }

    /// <summary>The physical file system, whose fsyncs wait while <see cref="Hold"/> is in effect (a disk that stalls).</summary>
    private sealed class HeldSyncFileSystem : IStorageFileSystem
    {
        private readonly IStorageFileSystem _inner = PhysicalFileSystem.Instance;
        private readonly ManualResetEventSlim _open = new(true);

        public void Hold() => _open.Reset();

        public void Release() => _open.Set();

        public void CreateDirectory(string path) => _inner.CreateDirectory(path);

        public IReadOnlyList<string> ListFiles(string directory, string searchPattern) => _inner.ListFiles(directory, searchPattern);

        public bool FileExists(string path) => _inner.FileExists(path);

        public IStorageFile Open(string path, bool create) => new File(_inner.Open(path, create), _open);

        public void Delete(string path) => _inner.Delete(path);

        public void Rename(string source, string destination) => _inner.Rename(source, destination);

        public void SyncDirectory(string path)
        {
            _open.Wait();
            _inner.SyncDirectory(path);
        }

        public IDisposable Lock(string path) => _inner.Lock(path);

        private sealed class File(IStorageFile inner, ManualResetEventSlim open) : IStorageFile
        {
            public long Length => inner.Length;

            public int Read(long offset, Span<byte> buffer) => inner.Read(offset, buffer);

            public void Write(long offset, ReadOnlySpan<byte> data) => inner.Write(offset, data);

            public void Sync()
            {
                open.Wait();
                inner.Sync();
            }

            public void SetLength(long length) => inner.SetLength(length);

            public void Dispose() => inner.Dispose();
        }
    }
}

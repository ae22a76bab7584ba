using RaftMQ.Raft;
using RaftMQ.Storage;

namespace RaftMQ.Runtime.Tests;

/// <summary>
/// The cluster-wide disk alarm in the driver: a follower reports its alarm to its leader on a change and renews it
/// while it stays on; the leader keeps a peer's alarm until it is reported off or goes unrenewed.
/// </summary>
public sealed class DiskAlarmReportTests : IDisposable
{
    private const int ElectionTicks = 5;
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "raftmq-diskalarm-tests", Guid.NewGuid().ToString("N")[..12]);
    private readonly List<NodeDriver> _drivers = [];
    private readonly List<RaftMessage> _sent = [];
    private DiskReading _disk = new(false, 1 << 30, 256 << 20);

    private NodeDriver Open()
    {
        var driver = new NodeDriver(
            new RaftOptions { Id = 1, Voters = [1, 2, 3], ElectionTicks = ElectionTicks, RandomSeed = 3 },
            new NodeDriverOptions { ReadDiskAlarm = () => _disk }, NodeStorage.Open(_directory), new AppendMachine(), new SendRecordingHost(_sent),
            readContextSeed: 7);
        _drivers.Add(driver);
        return driver;
    }

    private List<DiskAlarmReport> Reports() => _sent.OfType<DiskAlarmReport>().ToList();

    [Fact]
    public void A_follower_reports_its_alarm_to_its_leader_on_each_change_and_renews_it_while_it_is_on()
    {
        var driver = Open();
        // Node 2 leads term 1 and its heartbeats keep coming: one before every tick.
        static void Tick(NodeDriver driver)
        {
            driver.Step(new Heartbeat(2, 1, 1, 0, 0));
            driver.ProcessReady();
            driver.Tick();
        }

        Tick(driver);
        Reports().ShouldBe([new DiskAlarmReport(1, 2, 1, false, 1 << 30, 256 << 20)]); // a new leader hears the state
        Tick(driver);
        Reports().Count.ShouldBe(1); // nothing changed

        _disk = new DiskReading(true, 10 << 20, 256 << 20);
        Tick(driver);
        Reports().Count.ShouldBe(2);
        Reports()[^1].ShouldBe(new DiskAlarmReport(1, 2, 1, true, 10 << 20, 256 << 20));
        for (int i = 0; i < ElectionTicks - 1; i++) Tick(driver);
        Reports().Count.ShouldBe(2);
        Tick(driver); // an election timeout after the last report: renewed
        Reports().Count.ShouldBe(3);
        Reports()[^1].Alarm.ShouldBeTrue();

        _disk = new DiskReading(false, 300 << 20, 256 << 20);
        Tick(driver);
        Reports().Count.ShouldBe(4);
        Reports()[^1].Alarm.ShouldBeFalse();
    }

    [Fact]
    public void The_leader_keeps_a_peers_alarm_until_it_is_reported_off_or_not_renewed()
    {
        var driver = Open();
        for (int i = 0; i < 50 && driver.Raft.Role == Role.Follower; i++)
        {
            driver.Tick();
            driver.ProcessReady();
        }
        driver.Step(new RequestVoteResponse(2, 1, driver.Raft.Term + 1, true, PreVote: true));
        driver.ProcessReady();
        driver.Step(new RequestVoteResponse(2, 1, driver.Raft.Term, true, PreVote: false));
        driver.ProcessReady();
        driver.Raft.Role.ShouldBe(Role.Leader);
        var term = driver.Raft.Term;
        driver.PeerDiskAlarm.ShouldBeNull();

        var on = new DiskAlarmReport(3, 1, term, true, 5 << 20, 256 << 20);
        driver.Step(on);
        driver.PeerDiskAlarm.ShouldBe(on);
        driver.Step(on with { Alarm = false });
        driver.PeerDiskAlarm.ShouldBeNull();

        driver.Step(on);
        // Still leading (the followers answer), but node 3 says nothing more: its alarm is forgotten.
        for (int i = 0; i < NodeDriver.DiskAlarmReportTimeoutElections * ElectionTicks + 1; i++)
        {
            driver.Step(new HeartbeatResponse(2, 1, term, 0));
            driver.Tick();
            driver.ProcessReady();
        }
        driver.Raft.Role.ShouldBe(Role.Leader);
        driver.PeerDiskAlarm.ShouldBeNull();

        // A new leadership starts with no reports.
        driver.Step(on);
        driver.PeerDiskAlarm.ShouldBe(on);
        driver.Step(new Heartbeat(2, 1, term + 1, 0, 0));
        driver.ProcessReady();
        driver.PeerDiskAlarm.ShouldBeNull();
    }

    public void Dispose()
    {
        foreach (var d in _drivers)
        {
            d.Dispose();
            d.Storage.Dispose();
        }
        if (Directory.Exists(_directory)) Directory.Delete(_directory, recursive: true);
    }
}

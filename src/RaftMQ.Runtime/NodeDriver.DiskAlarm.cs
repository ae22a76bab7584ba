using RaftMQ.Raft;

namespace RaftMQ.Runtime;

/// <summary>One reading of a node's disk alarm: whether its free space is under its limit, and both in bytes.</summary>
public readonly record struct DiskReading(bool Alarm, long FreeBytes, long LimitBytes);

/// <summary>
/// The cluster-wide disk alarm (<see cref="NodeDriverOptions.ReadDiskAlarm"/>): a follower reports its alarm to the
/// leader in a <see cref="DiskAlarmReport"/> when the alarm or the leader changes, and every election timeout while
/// it is on; the leader keeps the latest report of each peer and forgets one not renewed within
/// <see cref="DiskAlarmReportTimeoutElections"/> election timeouts (a node that went silent stores nothing more
/// anyway). The application's admission check asks <see cref="PeerDiskAlarm"/> (through the runtime) and refuses
/// new data while any peer's alarm is on, as RabbitMQ blocks publishers while any node's disk alarm is on.
/// </summary>
public sealed partial class NodeDriver
{
    /// <summary>Election timeouts after which the leader forgets a peer's alarm that was not reported again.</summary>
    public const int DiskAlarmReportTimeoutElections = 3;

    private readonly Dictionary<ulong, (DiskAlarmReport Report, long At)> _peerAlarms = [];
    private long _ticks;
    private bool _alarmSent;
    private ulong _alarmSentTo;
    private long _alarmSentAt;

    /// <summary>
    /// The report of a peer whose disk alarm is on, as this leader last heard it within the report timeout; null when
    /// none is (or this node does not lead).
    /// </summary>
    public DiskAlarmReport? PeerDiskAlarm
    {
        get
        {
            if (_peerAlarms.Count == 0 || _node.Role != Role.Leader) return null;
            var horizon = _ticks - (long)DiskAlarmReportTimeoutElections * _raftOptions.ElectionTicks;
            foreach (var (_, (report, at)) in _peerAlarms)
            {
                if (at >= horizon) return report;
            }
            return null;
        }
    }

    /// <summary>On each tick: a follower tells its leader of a change of its alarm, and renews an alarm that stays on.</summary>
    private void ReportDiskAlarm(int ticks)
    {
        _ticks += ticks;
        if (_options.ReadDiskAlarm is not { } read || _node.Role == Role.Leader || _node.Leader == 0) return;
        var reading = read();
        var leader = _node.Leader;
        var renew = reading.Alarm && _ticks - _alarmSentAt >= _raftOptions.ElectionTicks;
        if (reading.Alarm == _alarmSent && leader == _alarmSentTo && !renew) return;
        _alarmSent = reading.Alarm;
        _alarmSentTo = leader;
        _alarmSentAt = _ticks;
        _host.Send(new DiskAlarmReport(_node.Id, leader, _node.Term, reading.Alarm, reading.FreeBytes, reading.LimitBytes));
    }

    /// <summary>The leader keeps a peer's latest report (an alarm that went off is forgotten at once).</summary>
    private void ReceiveDiskAlarm(DiskAlarmReport m)
    {
        if (m.To != _node.Id || m.From == _node.Id || _node.Role != Role.Leader) return;
        if (m.Alarm)
        {
            _peerAlarms[m.From] = (m, _ticks);
            // Renewals come every election timeout at the normal pace; a quiet leader would forget the alarm between them.
            _node.KeepAwake();
        }
        else _peerAlarms.Remove(m.From);
    }

    /// <summary>A new leadership starts with no reports: the followers report again to the new leader.</summary>
    private void ForgetPeerAlarms() => _peerAlarms.Clear();
}

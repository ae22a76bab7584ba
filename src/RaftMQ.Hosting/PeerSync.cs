using System.Net;
using Microsoft.Extensions.Logging;
using RaftMQ.Raft;
using RaftMQ.Transport;

namespace RaftMQ.Hosting;

/// <summary>
/// Keeps the transport's peers equal to the members of the configuration in force: a member added at run time is
/// dialled (and may connect) at the address the configuration records for it; a member that left is dropped after
/// <see cref="RaftHostOptions.RemovedPeerGrace"/>, so that it still hears of its removal. Runs off the node's loop.
/// </summary>
internal sealed class PeerSync
{
    private readonly RaftHostOptions _options;
    private readonly TcpTransport _transport;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private readonly Dictionary<ulong, EndPoint> _current;
    private readonly CancellationTokenSource _stop = new();
    private ClusterConfiguration? _latest;
    private volatile ClusterConfiguration? _synced;
    private bool _running;

    public PeerSync(RaftHostOptions options, TcpTransport transport, ILogger logger)
    {
        _options = options;
        _transport = transport;
        _logger = logger;
        _current = new Dictionary<ulong, EndPoint>(options.Peers);
    }

    /// <summary>Called on the node's loop: records the configuration and syncs on the thread pool.</summary>
    public void OnConfigurationChanged(ClusterConfiguration configuration)
    {
        _options.Members?.Update(configuration);
        lock (_gate)
        {
            _latest = configuration;
            if (_running) return; // the running sync picks the latest up when it is done
            _running = true;
        }
        _ = Task.Run(Drain);
    }

    public void Stop() => _stop.Cancel();

    private void Drain()
    {
        while (true)
        {
            ClusterConfiguration next;
            lock (_gate)
            {
                if (_latest is null || _stop.IsCancellationRequested)
                {
                    _running = false;
                    return;
                }
                next = _latest;
                _latest = null;
            }
            try
            {
                Sync(next);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                _logger.LogWarning(e, "Could not update the peer connections for configuration {Configuration}", next);
            }
        }
    }

    private void Sync(ClusterConfiguration configuration)
    {
        if (configuration.Voters.Count + configuration.Learners.Count == 0) return; // not joined yet: keep the peers known
        var members = configuration.Voters.Concat(configuration.Learners).Where(id => id != _options.NodeId).ToHashSet();
        foreach (var id in members)
        {
            EndPoint? endPoint = null;
            if (_options.Members?.AddressOf(id) is { } address)
            {
                // A host name stays a name: the transport resolves it at each connection attempt (one that does not
                // resolve is retried like a peer that is down).
                endPoint = ClusterConfig.PeerEndPoint(address);
            }
            else if (MemberAddress.Decode(configuration.AddressOf(id).Span) is { } recorded)
            {
                endPoint = ClusterConfig.PeerEndPoint(recorded);
            }
            endPoint ??= _options.Peers.GetValueOrDefault(id);
            if (endPoint is null)
            {
                _logger.LogWarning("Member {Id} has no known peer address; it cannot be reached until a configuration records one", id);
                continue;
            }
            if (_current.TryGetValue(id, out var known) && known.Equals(endPoint)) continue;
            _transport.SetPeer(id, endPoint);
            _current[id] = endPoint;
            _logger.LogInformation("Peer {Id} at {EndPoint} (configuration {Configuration})", id, EndPointText.Of(endPoint), configuration);
        }
        foreach (var id in _current.Keys.Where(id => !members.Contains(id)).ToList())
        {
            _current.Remove(id);
            _ = ForgetLaterAsync(id);
        }
        _synced = configuration;
    }

    /// <summary>Drops a departed member's connections once the grace period is over, unless a configuration took it back.</summary>
    private async Task ForgetLaterAsync(ulong id)
    {
        try
        {
            await Task.Delay(_options.RemovedPeerGrace, _stop.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }
        if (_synced?.IsMember(id) == true) return;
        try
        {
            await _transport.RemovePeerAsync(id).ConfigureAwait(false);
            _logger.LogInformation("Peer {Id} left the configuration: its connections are closed", id);
        }
        catch (ObjectDisposedException)
        {
            // The node is stopping.
        }
    }
}

using RaftMQ.Raft;

namespace RaftMQ.Hosting;

/// <summary>
/// Where the members of a cluster are: the addresses the configuration in force records for them, and for members it
/// records none for (the bootstrap members of a cluster whose membership never changed) the addresses the node
/// started with. Updated by <see cref="RaftHost"/> whenever the configuration changes; read from any thread.
/// </summary>
public sealed class MemberDirectory
{
    private readonly IReadOnlyDictionary<ulong, NodeAddress> _initial;
    private volatile View _view;

    /// <summary>A directory knowing <paramref name="initial"/> (this node included) until a configuration says more.</summary>
    public MemberDirectory(IReadOnlyDictionary<ulong, NodeAddress> initial)
    {
        ArgumentNullException.ThrowIfNull(initial);
        _initial = new Dictionary<ulong, NodeAddress>(initial);
        _view = new View(ClusterConfiguration.Empty, _initial);
    }

    /// <summary>The configuration the directory last saw (empty before the node started).</summary>
    public ClusterConfiguration Configuration => _view.Configuration;

    /// <summary>Every address known: the configuration's, then the initial ones for ids it records none for.</summary>
    public IReadOnlyDictionary<ulong, NodeAddress> Addresses => _view.Addresses;

    /// <summary>The address of node <paramref name="id"/>, or null when unknown.</summary>
    public NodeAddress? AddressOf(ulong id) => _view.Addresses.TryGetValue(id, out var a) ? a : null;

    /// <summary>
    /// The encoded address of every member of <paramref name="configuration"/> that has one known, plus
    /// <paramref name="extra"/>: what a change records so that every member can be reached from the configuration alone.
    /// </summary>
    public Dictionary<ulong, byte[]> EncodedAddresses(ClusterConfiguration configuration, ulong extraId, NodeAddress extra)
    {
        var result = new Dictionary<ulong, byte[]>();
        foreach (var id in configuration.Voters.Concat(configuration.Learners))
            if (AddressOf(id) is { } a) result[id] = MemberAddress.Encode(a);
        result[extraId] = MemberAddress.Encode(extra);
        return result;
    }

    /// <summary>Takes the addresses <paramref name="configuration"/> records.</summary>
    public void Update(ClusterConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var addresses = new Dictionary<ulong, NodeAddress>(_initial);
        foreach (var (id, bytes) in configuration.Addresses)
            if (MemberAddress.Decode(bytes) is { } a) addresses[id] = a;
        _view = new View(configuration, addresses);
    }

    private sealed record View(ClusterConfiguration Configuration, IReadOnlyDictionary<ulong, NodeAddress> Addresses);
}

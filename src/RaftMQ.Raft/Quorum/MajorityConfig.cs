using System.Diagnostics;
// The method VoteResult hides the type of the same name inside these classes; the alias names the type.
using Outcome = RaftMQ.Raft.Quorum.VoteResult;

namespace RaftMQ.Raft.Quorum;

/// <summary>The outcome of an election as far as the votes so far can tell.</summary>
internal enum VoteResult : byte
{
    /// <summary>Neither a quorum granted nor a quorum rejected yet.</summary>
    Pending = 0,

    /// <summary>A quorum granted.</summary>
    Won = 1,

    /// <summary>A quorum rejected.</summary>
    Lost = 2,
}

/// <summary>
/// An immutable set of voters whose decisions need a simple majority (§5.2, §5.3): the quorum arithmetic of the core
/// in one place. A membership change (§4.3 joint consensus) combines two of these in a <see cref="JointConfig"/>.
/// </summary>
/// <remarks>
/// The empty configuration agrees to everything (it commits every index and every vote is won in it), so that a
/// joint configuration whose outgoing half is empty behaves exactly like its incoming half, as in etcd's raft.
/// </remarks>
internal sealed class MajorityConfig
{
    // Larger clusters sort on the heap; voting members beyond this are not a real deployment.
    private const int MaxStackVoters = 16;

    private readonly ulong[] _ids;

    /// <summary>The configuration with no voters.</summary>
    public static MajorityConfig Empty { get; } = new([]);

    /// <summary>A configuration of <paramref name="ids"/>: distinct, none of them 0.</summary>
    public MajorityConfig(IEnumerable<ulong> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        _ids = [.. ids.Order()];
        for (int i = 0; i < _ids.Length; i++)
        {
            if (_ids[i] == 0) throw new ArgumentException("Voter id 0 is reserved for 'none'.", nameof(ids));
            if (i > 0 && _ids[i] == _ids[i - 1]) throw new ArgumentException($"Voter {_ids[i]} appears twice.", nameof(ids));
        }
    }

    /// <summary>The voter ids in ascending order.</summary>
    public IReadOnlyList<ulong> Ids => _ids;

    /// <summary>The number of voters.</summary>
    public int Count => _ids.Length;

    /// <summary>The smallest number of voters that is a majority: 2 of 3, 3 of 4, 3 of 5; 0 for the empty configuration.</summary>
    public int Quorum => _ids.Length == 0 ? 0 : _ids.Length / 2 + 1;

    /// <summary>Whether <paramref name="id"/> is a voter here.</summary>
    public bool Contains(ulong id) => Array.BinarySearch(_ids, id) >= 0;

    /// <summary>
    /// The largest index that a majority has acknowledged, given each voter's acknowledged index (its match index,
    /// or a read round it confirmed): §5.3's "a majority of matchIndex[i] ≥ N". <see cref="ulong.MaxValue"/> when empty.
    /// </summary>
    public ulong CommittedIndex(Func<ulong, ulong> ackedIndexOf)
    {
        ArgumentNullException.ThrowIfNull(ackedIndexOf);
        var n = _ids.Length;
        if (n == 0) return ulong.MaxValue;
        Span<ulong> acked = n <= MaxStackVoters ? stackalloc ulong[n] : new ulong[n];
        for (int i = 0; i < n; i++) acked[i] = ackedIndexOf(_ids[i]);
        acked.Sort();
        // Ascending: the entry at n - quorum and every one after it (a quorum of voters) acknowledged at least it.
        return acked[n - Quorum];
    }

    /// <summary>
    /// Counts the votes so far (null: not answered yet). Won once a quorum granted, lost once a quorum rejected;
    /// an empty configuration is won.
    /// </summary>
    /// <remarks>
    /// Lost needs a quorum of rejections, not merely a win becoming impossible: with an even number of voters
    /// (two of four rejecting) the election stays pending until it times out. This is the rule the core has always
    /// used; etcd's raft calls such an election lost at once.
    /// </remarks>
    public VoteResult VoteResult(Func<ulong, bool?> voteOf)
    {
        ArgumentNullException.ThrowIfNull(voteOf);
        if (_ids.Length == 0) return Outcome.Won;
        int granted = 0, rejected = 0;
        foreach (var id in _ids)
        {
            switch (voteOf(id))
            {
                case true:
                    granted++;
                    break;
                case false:
                    rejected++;
                    break;
            }
        }
        var quorum = Quorum;
        Debug.Assert(granted + rejected <= _ids.Length);
        if (granted >= quorum) return Outcome.Won;
        if (rejected >= quorum) return Outcome.Lost;
        return Outcome.Pending;
    }

    /// <summary>Whether the voters for which <paramref name="isActive"/> holds make a majority (true when empty).</summary>
    public bool HasQuorum(Func<ulong, bool> isActive)
    {
        ArgumentNullException.ThrowIfNull(isActive);
        var active = 0;
        foreach (var id in _ids)
            if (isActive(id)) active++;
        return active >= Quorum;
    }

    public override string ToString() => $"({string.Join(' ', _ids)})";
}

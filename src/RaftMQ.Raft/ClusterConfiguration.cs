using System.Buffers.Binary;

namespace RaftMQ.Raft;

/// <summary>
/// The members of a cluster: the voters, whose majorities decide elections and commits, and the learners, which
/// receive the log but never vote or count (thesis §4.2.1). Immutable; ids are sorted, distinct and never 0, and no
/// id is both voter and learner. A configuration travels through the log as a <see cref="EntryType.Configuration"/>
/// entry holding the whole configuration (<see cref="Encode"/>), and as of a snapshot in
/// <see cref="SnapshotMetadata.Configuration"/>. Each member may carry an address: bytes the core never reads, which
/// the hosting layer uses to reach the member (so a node added at run time can be found by every other member).
/// </summary>
public sealed class ClusterConfiguration : IEquatable<ClusterConfiguration>
{
    /// <summary>Most members (voters and learners together) a configuration may have.</summary>
    public const int MaxMembers = 64;

    /// <summary>Most bytes of one member's address.</summary>
    public const int MaxAddressBytes = 320;

    /// <summary>
    /// The first byte of an encoded configuration without addresses: the layout's version. A configuration with
    /// addresses is written as <see cref="EncodingVersionWithAddresses"/>; both are read.
    /// </summary>
    public const byte EncodingVersion = 1;

    /// <summary>The version byte of a configuration whose members carry addresses.</summary>
    public const byte EncodingVersionWithAddresses = 2;

    private const int EncodedHeaderBytes = 1 + 2 + 2;

    /// <summary>The most bytes <see cref="Encode"/> writes: every member with an address of <see cref="MaxAddressBytes"/>.</summary>
    public const int MaxEncodedBytes = EncodedHeaderBytes + (MaxMembers * (8 + 2 + MaxAddressBytes));

    private readonly ulong[] _voters;
    private readonly ulong[] _learners;
    private readonly SortedDictionary<ulong, byte[]> _addresses;

    /// <summary>A configuration of <paramref name="voters"/> and <paramref name="learners"/>.</summary>
    /// <exception cref="ArgumentException">An id is 0, appears twice, or there are more than <see cref="MaxMembers"/>.</exception>
    public ClusterConfiguration(IEnumerable<ulong> voters, IEnumerable<ulong>? learners = null)
    {
        ArgumentNullException.ThrowIfNull(voters);
        _voters = [.. voters.Order()];
        _learners = [.. (learners ?? []).Order()];
        _addresses = [];
        var problem = Check(_voters, _learners);
        if (problem is not null) throw new ArgumentException(problem);
    }

    private ClusterConfiguration(ulong[] voters, ulong[] learners, SortedDictionary<ulong, byte[]>? addresses = null)
    {
        _voters = voters;
        _learners = learners;
        _addresses = addresses ?? [];
    }

    /// <summary>The configuration with no members: a node that has not yet joined a cluster.</summary>
    public static ClusterConfiguration Empty { get; } = new([], []);

    /// <summary>The members that carry an address, with it, ascending by id.</summary>
    public IReadOnlyDictionary<ulong, byte[]> Addresses => _addresses;

    /// <summary>The address recorded for <paramref name="id"/>, or empty.</summary>
    public ReadOnlyMemory<byte> AddressOf(ulong id) => _addresses.TryGetValue(id, out var a) ? a : ReadOnlyMemory<byte>.Empty;

    /// <summary>
    /// This configuration with <paramref name="addresses"/> recorded for the members they name (ids that are not
    /// members are ignored; an empty address removes the member's).
    /// </summary>
    /// <exception cref="ArgumentException">An address is longer than <see cref="MaxAddressBytes"/>.</exception>
    public ClusterConfiguration WithAddresses(IEnumerable<KeyValuePair<ulong, byte[]>> addresses)
    {
        ArgumentNullException.ThrowIfNull(addresses);
        var next = new SortedDictionary<ulong, byte[]>(_addresses);
        foreach (var (id, address) in addresses)
        {
            if (!IsMember(id)) continue;
            if (address.Length > MaxAddressBytes)
                throw new ArgumentException($"the address of member {id} has {address.Length} bytes; at most {MaxAddressBytes}");
            if (address.Length == 0) next.Remove(id);
            else next[id] = [.. address];
        }
        return new ClusterConfiguration(_voters, _learners, next);
    }

    /// <summary>The voting members, ascending.</summary>
    public IReadOnlyList<ulong> Voters => _voters;

    /// <summary>The non-voting members, ascending.</summary>
    public IReadOnlyList<ulong> Learners => _learners;

    /// <summary>Whether <paramref name="id"/> votes.</summary>
    public bool IsVoter(ulong id) => Array.BinarySearch(_voters, id) >= 0;

    /// <summary>Whether <paramref name="id"/> is a learner.</summary>
    public bool IsLearner(ulong id) => Array.BinarySearch(_learners, id) >= 0;

    /// <summary>Whether <paramref name="id"/> is a voter or a learner.</summary>
    public bool IsMember(ulong id) => IsVoter(id) || IsLearner(id);

    /// <summary>This configuration with <paramref name="id"/> added as a learner.</summary>
    public ClusterConfiguration WithLearner(ulong id) => new ClusterConfiguration(_voters, _learners.Append(id)).WithAddresses(_addresses);

    /// <summary>This configuration with <paramref name="id"/> a voter (a learner is promoted).</summary>
    public ClusterConfiguration WithVoter(ulong id) =>
        new ClusterConfiguration(_voters.Append(id), _learners.Where(l => l != id)).WithAddresses(_addresses);

    /// <summary>This configuration without <paramref name="id"/> (and its address).</summary>
    public ClusterConfiguration Without(ulong id) =>
        new ClusterConfiguration(_voters.Where(v => v != id), _learners.Where(l => l != id)).WithAddresses(_addresses);

    /// <summary>
    /// The bytes of a configuration entry: version, voter count, learner count (u16 each), then the ids (u64),
    /// little-endian. Version 2 (when any member has an address) follows the ids with each member's address, in the
    /// order of the ids, as a u16 length and its bytes.
    /// </summary>
    public byte[] Encode()
    {
        var bytes = new byte[EncodedLength];
        bytes[0] = _addresses.Count == 0 ? EncodingVersion : EncodingVersionWithAddresses;
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(1), (ushort)_voters.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(3), (ushort)_learners.Length);
        var at = EncodedHeaderBytes;
        foreach (var id in _voters.Concat(_learners))
        {
            BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(at), id);
            at += 8;
        }
        if (_addresses.Count == 0) return bytes;
        foreach (var id in _voters.Concat(_learners))
        {
            var address = _addresses.TryGetValue(id, out var a) ? a : [];
            BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(at), (ushort)address.Length);
            address.CopyTo(bytes.AsSpan(at + 2));
            at += 2 + address.Length;
        }
        return bytes;
    }

    /// <summary>How many bytes <see cref="Encode"/> writes.</summary>
    public int EncodedLength =>
        EncodedHeaderBytes + 8 * (_voters.Length + _learners.Length)
        + (_addresses.Count == 0 ? 0 : 2 * (_voters.Length + _learners.Length) + _addresses.Values.Sum(a => a.Length));

    /// <summary>Decodes what <see cref="Encode"/> wrote; false with the reason when the bytes are not a valid configuration.</summary>
    public static bool TryDecode(ReadOnlySpan<byte> bytes, out ClusterConfiguration configuration, out string problem)
    {
        configuration = Empty;
        if (bytes.Length < EncodedHeaderBytes)
        {
            problem = $"configuration of {bytes.Length} bytes is shorter than its {EncodedHeaderBytes}-byte header";
            return false;
        }
        if (bytes[0] is not (EncodingVersion or EncodingVersionWithAddresses))
        {
            problem = $"configuration encoding version {bytes[0]}, this build reads versions {EncodingVersion} and {EncodingVersionWithAddresses}";
            return false;
        }
        int voters = BinaryPrimitives.ReadUInt16LittleEndian(bytes[1..]);
        int learners = BinaryPrimitives.ReadUInt16LittleEndian(bytes[3..]);
        if (voters + learners > MaxMembers)
        {
            problem = $"configuration of {voters + learners} members is over the bound of {MaxMembers}";
            return false;
        }
        var idBytes = EncodedHeaderBytes + 8 * (voters + learners);
        if (bytes[0] == EncodingVersion ? bytes.Length != idBytes : bytes.Length < idBytes + 2 * (voters + learners))
        {
            problem = $"configuration of {voters} voters and {learners} learners must be {idBytes} bytes{(bytes[0] == EncodingVersion ? "" : " and their addresses")}, not {bytes.Length}";
            return false;
        }
        var ids = new ulong[voters + learners];
        for (var i = 0; i < ids.Length; i++) ids[i] = BinaryPrimitives.ReadUInt64LittleEndian(bytes[(EncodedHeaderBytes + 8 * i)..]);
        var addresses = new SortedDictionary<ulong, byte[]>();
        if (bytes[0] == EncodingVersionWithAddresses)
        {
            var at = idBytes;
            foreach (var id in ids)
            {
                int length = at + 2 <= bytes.Length ? BinaryPrimitives.ReadUInt16LittleEndian(bytes[at..]) : -1;
                if (length < 0 || length > MaxAddressBytes || at + 2 + length > bytes.Length)
                {
                    problem = $"the address of member {id} is cut short or over {MaxAddressBytes} bytes";
                    return false;
                }
                if (length > 0) addresses[id] = bytes.Slice(at + 2, length).ToArray();
                at += 2 + length;
            }
            if (at != bytes.Length)
            {
                problem = $"configuration has {bytes.Length - at} bytes after its last address";
                return false;
            }
        }
        ulong[] v = [.. ids.Take(voters).Order()];
        ulong[] l = [.. ids.Skip(voters).Order()];
        problem = Check(v, l) ?? "";
        if (problem.Length > 0) return false;
        configuration = new ClusterConfiguration(v, l, addresses);
        return true;
    }

    /// <summary>Decodes a configuration entry's data.</summary>
    /// <exception cref="InvalidDataException">The bytes are not a valid configuration.</exception>
    public static ClusterConfiguration Decode(ReadOnlySpan<byte> bytes) =>
        TryDecode(bytes, out var configuration, out var problem) ? configuration : throw new InvalidDataException(problem);

    private static string? Check(ulong[] voters, ulong[] learners)
    {
        if (voters.Length + learners.Length > MaxMembers)
            return $"a configuration has at most {MaxMembers} members, not {voters.Length + learners.Length}";
        foreach (var ids in new[] { voters, learners })
        {
            for (var i = 0; i < ids.Length; i++)
            {
                if (ids[i] == 0) return "member id 0 is reserved for 'none'";
                if (i > 0 && ids[i] == ids[i - 1]) return $"member {ids[i]} appears twice";
            }
        }
        foreach (var id in learners)
            if (Array.BinarySearch(voters, id) >= 0) return $"member {id} is both a voter and a learner";
        return null;
    }

    /// <summary>Same voters, learners and addresses.</summary>
    public bool Equals(ClusterConfiguration? other) =>
        other is not null && _voters.AsSpan().SequenceEqual(other._voters) && _learners.AsSpan().SequenceEqual(other._learners)
        && _addresses.Count == other._addresses.Count
        && _addresses.All(a => other._addresses.TryGetValue(a.Key, out var b) && a.Value.AsSpan().SequenceEqual(b));

    public override bool Equals(object? obj) => Equals(obj as ClusterConfiguration);

    public override int GetHashCode()
    {
        var hash = new HashCode();
        foreach (var id in _voters) hash.Add(id);
        hash.Add(-1);
        foreach (var id in _learners) hash.Add(id);
        return hash.ToHashCode();
    }

    /// <summary>"voters (1 2 3) learners (4)".</summary>
    public override string ToString() => $"voters ({string.Join(' ', _voters)}) learners ({string.Join(' ', _learners)})";
}

using System.Buffers.Binary;

namespace RaftMQ.Raft;

/// <summary>
/// The members of a cluster: the voters, whose majorities decide elections and commits, and the learners, which
/// receive the log but never vote or count (thesis §4.2.1). Immutable; ids are sorted, distinct and never 0, and no
/// id is both voter and learner. A configuration travels through the log as a <see cref="EntryType.Configuration"/>
/// entry holding the whole configuration (<see cref="Encode"/>), and as of a snapshot in
/// <see cref="SnapshotMetadata.Configuration"/>.
/// </summary>
public sealed class ClusterConfiguration : IEquatable<ClusterConfiguration>
{
    /// <summary>Most members (voters and learners together) a configuration may have.</summary>
    public const int MaxMembers = 64;

    /// <summary>The first byte of an encoded configuration: the layout's version.</summary>
    public const byte EncodingVersion = 1;

    private const int EncodedHeaderBytes = 1 + 2 + 2;

    private readonly ulong[] _voters;
    private readonly ulong[] _learners;

    /// <summary>A configuration of <paramref name="voters"/> and <paramref name="learners"/>.</summary>
    /// <exception cref="ArgumentException">An id is 0, appears twice, or there are more than <see cref="MaxMembers"/>.</exception>
    public ClusterConfiguration(IEnumerable<ulong> voters, IEnumerable<ulong>? learners = null)
    {
        ArgumentNullException.ThrowIfNull(voters);
        _voters = [.. voters.Order()];
        _learners = [.. (learners ?? []).Order()];
        var problem = Check(_voters, _learners);
        if (problem is not null) throw new ArgumentException(problem);
    }

    private ClusterConfiguration(ulong[] voters, ulong[] learners)
    {
        _voters = voters;
        _learners = learners;
    }

    /// <summary>The configuration with no members: a node that has not yet joined a cluster.</summary>
    public static ClusterConfiguration Empty { get; } = new([], []);

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
    public ClusterConfiguration WithLearner(ulong id) => new(_voters, _learners.Append(id));

    /// <summary>This configuration with <paramref name="id"/> a voter (a learner is promoted).</summary>
    public ClusterConfiguration WithVoter(ulong id) => new(_voters.Append(id), _learners.Where(l => l != id));

    /// <summary>This configuration without <paramref name="id"/>.</summary>
    public ClusterConfiguration Without(ulong id) => new(_voters.Where(v => v != id), _learners.Where(l => l != id));

    /// <summary>The bytes of a configuration entry: version, voter count, learner count (u16 each), then the ids (u64), little-endian.</summary>
    public byte[] Encode()
    {
        var bytes = new byte[EncodedHeaderBytes + 8 * (_voters.Length + _learners.Length)];
        bytes[0] = EncodingVersion;
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(1), (ushort)_voters.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(3), (ushort)_learners.Length);
        var at = EncodedHeaderBytes;
        foreach (var id in _voters.Concat(_learners))
        {
            BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(at), id);
            at += 8;
        }
        return bytes;
    }

    /// <summary>Decodes what <see cref="Encode"/> wrote; false with the reason when the bytes are not a valid configuration.</summary>
    public static bool TryDecode(ReadOnlySpan<byte> bytes, out ClusterConfiguration configuration, out string problem)
    {
        configuration = Empty;
        if (bytes.Length < EncodedHeaderBytes)
        {
            problem = $"configuration of {bytes.Length} bytes is shorter than its {EncodedHeaderBytes}-byte header";
            return false;
        }
        if (bytes[0] != EncodingVersion)
        {
            problem = $"configuration encoding version {bytes[0]}, this build reads version {EncodingVersion}";
            return false;
        }
        int voters = BinaryPrimitives.ReadUInt16LittleEndian(bytes[1..]);
        int learners = BinaryPrimitives.ReadUInt16LittleEndian(bytes[3..]);
        if (voters + learners > MaxMembers)
        {
            problem = $"configuration of {voters + learners} members is over the bound of {MaxMembers}";
            return false;
        }
        if (bytes.Length != EncodedHeaderBytes + 8 * (voters + learners))
        {
            problem = $"configuration of {voters} voters and {learners} learners must be {EncodedHeaderBytes + 8 * (voters + learners)} bytes, not {bytes.Length}";
            return false;
        }
        var ids = new ulong[voters + learners];
        for (var i = 0; i < ids.Length; i++) ids[i] = BinaryPrimitives.ReadUInt64LittleEndian(bytes[(EncodedHeaderBytes + 8 * i)..]);
        ulong[] v = [.. ids.Take(voters).Order()];
        ulong[] l = [.. ids.Skip(voters).Order()];
        problem = Check(v, l) ?? "";
        if (problem.Length > 0) return false;
        configuration = new ClusterConfiguration(v, l);
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

    public bool Equals(ClusterConfiguration? other) =>
        other is not null && _voters.AsSpan().SequenceEqual(other._voters) && _learners.AsSpan().SequenceEqual(other._learners);

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

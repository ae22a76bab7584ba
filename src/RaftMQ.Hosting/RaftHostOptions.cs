using System.Net;
using System.Security.Cryptography;
using System.Text;
using RaftMQ.Runtime;
using RaftMQ.Storage;
using RaftMQ.Transport;

namespace RaftMQ.Hosting;

/// <summary>How <see cref="RaftHost"/> starts one node of a static cluster.</summary>
public sealed record RaftHostOptions
{
    /// <summary>This node's id; not 0.</summary>
    public required ulong NodeId { get; init; }

    /// <summary>The other voters and their peer (Raft) endpoints; empty for a single-node cluster.</summary>
    public required IReadOnlyDictionary<ulong, EndPoint> Peers { get; init; }

    /// <summary>
    /// This node joins a running cluster rather than bootstrapping one: it starts with no configuration, waits for a
    /// leader that added it, and learns the members from the log. <see cref="Peers"/> are then the members it knows of
    /// (to answer the leader before its log says where the others are).
    /// </summary>
    public bool JoinExisting { get; init; }

    /// <summary>
    /// The members' addresses (HTTP and peer), kept up to date from the configuration in force; null when the
    /// application needs no more than <see cref="Peers"/>. The transport's peers follow the configuration either way.
    /// </summary>
    public MemberDirectory? Members { get; init; }

    /// <summary>
    /// Recovery of a cluster that permanently lost its majority (<c>--force-new-cluster</c>): before the node starts,
    /// a configuration entry making it the only voter is appended to its log, so it elects itself and commits
    /// everything its log holds. Unsafe by design: writes acknowledged by the lost majority but missing from this
    /// node's log are lost, and entries this node holds that were never committed become committed. The other old
    /// members must never run again with their data; new nodes join with <c>--join</c>.
    /// </summary>
    public bool ForceNewCluster { get; init; }

    /// <summary>Whether a leader promotes a learner to voter once it has caught up (see RaftRuntimeOptions.PromoteCaughtUpLearners).</summary>
    public bool PromoteCaughtUpLearners { get; init; } = true;

    /// <summary>How long the transport still talks to a member after a configuration no longer has it (so it learns of its removal).</summary>
    public TimeSpan RemovedPeerGrace { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Where this node accepts its peers' connections.</summary>
    public required IPEndPoint ListenEndPoint { get; init; }

    /// <summary>Where the write-ahead log and the snapshots live (created if missing).</summary>
    public required string DataDirectory { get; init; }

    /// <summary>Names the cluster: peers of another cluster are refused at the handshake.</summary>
    public required string ClusterId { get; init; }

    /// <summary>
    /// The key peers authenticate each other with (HMAC-SHA256), at least 16 bytes: random bytes, or a passphrase
    /// through <see cref="DeriveSecret"/>. <see cref="ClusterSecret.Resolve"/> finds or creates it for a node.
    /// </summary>
    public required byte[] ClusterSecret { get; init; }

    /// <summary>Mutual TLS on the peer links (docs/security.md, "TLS"); null runs them over plain TCP.</summary>
    public PeerTlsOptions? PeerTls { get; init; }

    /// <summary>Length of one Raft clock tick.</summary>
    public TimeSpan TickInterval { get; init; } = TimeSpan.FromMilliseconds(10);

    /// <summary>Minimum election timeout; the actual one is random in [T, 2T) (§5.2).</summary>
    public TimeSpan ElectionTimeout { get; init; } = TimeSpan.FromMilliseconds(150);

    /// <summary>Leader heartbeat interval; less than <see cref="ElectionTimeout"/>.</summary>
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromMilliseconds(50);

    /// <summary>
    /// The heartbeat interval once the cluster is quiet (<see cref="Raft.RaftOptions.QuiescedHeartbeatTicks"/>): nothing to
    /// replicate for two election timeouts. <see cref="TimeSpan.Zero"/> keeps the normal pace always.
    /// </summary>
    public TimeSpan IdleHeartbeatInterval { get; init; }

    /// <summary>Snapshot the state machine and compact the log every this many applied entries (§7).</summary>
    public ulong SnapshotEveryEntries { get; init; } = 50_000;

    /// <summary>Also snapshot once this many bytes of commands were applied since the last snapshot.</summary>
    public long SnapshotEveryBytes { get; init; } = 128L << 20;

    /// <summary>Entries kept behind a snapshot for followers slightly behind; default a tenth of <see cref="SnapshotEveryEntries"/>.</summary>
    public ulong? SnapshotRetainEntries { get; init; }

    /// <summary>
    /// Largest command a node accepts (RaftOptions.MaxEntryBytes); a larger one is refused with
    /// <see cref="CommandTooLargeException"/>. Checked at start-up against the storage and transport bounds.
    /// </summary>
    public int MaxCommandBytes { get; init; } = 4 << 20;

    /// <summary>
    /// Reads this node's disk alarm; followers report it to the leader, whose admission check can then refuse new
    /// data while any node's alarm is on (<see cref="NodeDriverOptions.ReadDiskAlarm"/>). Null sends no reports.
    /// </summary>
    public Func<DiskReading>? ReadDiskAlarm { get; init; }

    /// <summary>
    /// Whether the application holds requests that wait for this node to apply new entries, such as long polls held on
    /// a follower (<see cref="NodeDriverOptions.WaitingToApply"/>): while true, the leader sends this node each new
    /// commit index at once. Null: only the runtime's own reads count.
    /// </summary>
    public Func<bool>? WaitingToApply { get; init; }

    /// <summary>
    /// Bytes of commands the leader keeps in flight (proposed, not yet applied) before it holds back large ones
    /// (<see cref="NodeDriverOptions.MaxProposalBytesInFlight"/>): a small request waits behind at most about this
    /// much of the others' data. 1 MiB: with the fsync off the loop the next Ready is written while one is fsynced, so
    /// one large batch in flight keeps the disk busy; 4 MiB and 2 MiB gave small requests three times the median wait
    /// and more of them over 150 ms for the same fill rate (docs/benchmarks.md, "Log fsync off the loop").
    /// </summary>
    public const long MaxProposalBytesInFlight = 1L << 20;

    /// <summary>Storage bounds (segment size, cache, largest entry); null for the defaults.</summary>
    public StorageOptions? Storage { get; init; }

    /// <summary>Adjusts the transport's bounds after the host filled in id, endpoints and secret.</summary>
    public Action<TcpTransportOptions>? ConfigureTransport { get; init; }

    /// <summary>PBKDF2 iterations of <see cref="DeriveSecret"/> (OWASP's figure for PBKDF2-HMAC-SHA256).</summary>
    public const int PassphraseIterations = 600_000;

    /// <summary>The salt of <see cref="DeriveSecret"/>: fixed, so every node derives the same key from the same passphrase.</summary>
    private static readonly byte[] PassphraseSalt = "RaftMQ/cluster-passphrase/v1"u8.ToArray();

    /// <summary>
    /// A 32-byte secret from a passphrase shared by every node: PBKDF2-HMAC-SHA256 with
    /// <see cref="PassphraseIterations"/> iterations, so each guess of someone who recorded a handshake costs as much.
    /// A random secret (a secret file) needs no stretching and is used as it is (<see cref="ClusterSecret"/>).
    /// </summary>
    public static byte[] DeriveSecret(string passphrase)
    {
        ArgumentException.ThrowIfNullOrEmpty(passphrase);
        return Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(passphrase), PassphraseSalt, PassphraseIterations, HashAlgorithmName.SHA256, 32);
    }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid setting.</summary>
    public void Validate()
    {
        if (NodeId == 0) throw new ArgumentException("NodeId must not be 0.");
        if (Peers is null || Peers.ContainsKey(NodeId) || Peers.ContainsKey(0))
            throw new ArgumentException("Peers must not contain this node or id 0.");
        if (string.IsNullOrWhiteSpace(DataDirectory)) throw new ArgumentException("DataDirectory is required.");
        if (TickInterval <= TimeSpan.Zero) throw new ArgumentException("TickInterval must be positive.");
        if (HeartbeatInterval < TickInterval || ElectionTimeout <= HeartbeatInterval)
            throw new ArgumentException("Need TickInterval <= HeartbeatInterval < ElectionTimeout.");
        if (IdleHeartbeatInterval != TimeSpan.Zero && IdleHeartbeatInterval < HeartbeatInterval)
            throw new ArgumentException("IdleHeartbeatInterval must be zero (off) or at least HeartbeatInterval.");
        if (MaxCommandBytes <= 0) throw new ArgumentException("MaxCommandBytes must be positive.");
        if (SnapshotEveryEntries == 0 || SnapshotEveryBytes <= 0) throw new ArgumentException("SnapshotEveryEntries and SnapshotEveryBytes must be positive.");
    }
}

using System.ComponentModel;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using RaftMQ.Storage;
using RaftMQ.Transport;

namespace RaftMQ.Hosting;

/// <summary>Where a node may find its cluster secret, in the order <see cref="ClusterSecret.Resolve"/> tries them.</summary>
public sealed record ClusterSecretSources
{
    /// <summary>A passphrase given on the command line (<c>--cluster-secret</c>); stretched by a slow KDF.</summary>
    public string? Passphrase { get; init; }

    /// <summary>A secret file given on the command line (<c>--cluster-secret-file</c>): hex digits, used as the key.</summary>
    public string? SecretFile { get; init; }

    /// <summary>The environment variable that may hold a passphrase (e.g. <c>RAFTMQ_CLUSTER_SECRET</c>); null for none.</summary>
    public string? EnvironmentVariable { get; init; }

    /// <summary>The node's data directory: its copy of the secret, once it has one, is authoritative.</summary>
    public required string DataDirectory { get; init; }

    /// <summary>
    /// The file every node of a one-machine cluster shares (see <see cref="ClusterSecret.SharedFileFor"/>): read if it
    /// exists, else created with a random secret by whichever node gets there first. Null for a node that joins a
    /// running cluster without a config file: it must be given the cluster's secret, never make one up.
    /// </summary>
    public required string? SharedFile { get; init; }
}

/// <summary>
/// The secret the nodes of a cluster prove to each other on every peer connection (docs/security.md). Resolution
/// order: an explicit passphrase, an explicit secret file, the passphrase in the environment variable, the copy in
/// the node's data directory, and finally the shared file next to the cluster config, created with 32 random bytes
/// when no node has made one yet. A secret from the shared file is copied into the data directory, so a node keeps
/// its secret across restarts even if the shared file is lost; an explicit secret always wins and is not copied.
/// Nothing is ever derived from public information such as the cluster id.
/// </summary>
public sealed partial class ClusterSecret
{
    /// <summary>The secret's file name in a node's data directory.</summary>
    public const string DataDirectoryFileName = "cluster-secret";

    /// <summary>Appended to the config file's path to name the shared secret file (<c>config.json.secret</c>).</summary>
    public const string SharedFileSuffix = ".secret";

    /// <summary>Random bytes in a generated secret.</summary>
    public const int GeneratedBytes = 32;

    /// <summary>Fewest bytes a secret file may hold (the transport's minimum key).</summary>
    public const int MinFileBytes = TcpTransportOptions.MinSecretBytes;

    /// <summary>Most bytes a secret file may hold (one HMAC-SHA256 block).</summary>
    public const int MaxFileBytes = 64;

    private const int EExist = 17;
    private const string Remedy = "pass --cluster-secret TEXT or --cluster-secret-file PATH";

    private readonly byte[]? _key;
    private readonly string? _passphrase;

    private ClusterSecret(byte[]? key, string? passphrase, string source)
    {
        _key = key;
        _passphrase = passphrase;
        Source = source;
    }

    /// <summary>Where the secret came from, for the node's log (never the secret itself).</summary>
    public string Source { get; }

    /// <summary>Whether <see cref="Key"/> runs the slow passphrase KDF (<see cref="RaftHostOptions.DeriveSecret"/>).</summary>
    public bool IsPassphrase => _passphrase is not null;

    /// <summary>The shared secret file of the cluster whose config is <paramref name="configPath"/>.</summary>
    public static string SharedFileFor(string configPath) => Path.GetFullPath(configPath) + SharedFileSuffix;

    /// <summary>
    /// The HMAC key: a secret file's bytes as they are (they are random), or a passphrase stretched by PBKDF2, which
    /// takes a noticeable fraction of a second, so a node derives it off the path of its first HTTP answer.
    /// </summary>
    public byte[] Key() => _key is not null ? (byte[])_key.Clone() : RaftHostOptions.DeriveSecret(_passphrase!);

    /// <summary>
    /// Finds this node's secret (see the class summary for the order), creating the shared and the data-directory
    /// copies when needed. Throws <see cref="ConfigException"/> with what to do when a file is unreadable, malformed
    /// or cannot be created.
    /// </summary>
    public static ClusterSecret Resolve(ClusterSecretSources sources)
    {
        ArgumentNullException.ThrowIfNull(sources);
        if (sources.Passphrase is { } passphrase)
        {
            return passphrase.Length > 0
                ? new ClusterSecret(null, passphrase, "--cluster-secret")
                : throw new ConfigException("--cluster-secret must not be empty");
        }

        if (sources.SecretFile is { } file)
        {
            return new ClusterSecret(ReadKeyFile(file, "the cluster secret file"), null, $"--cluster-secret-file {file}");
        }

        if (sources.EnvironmentVariable is { } variable && Environment.GetEnvironmentVariable(variable) is { Length: > 0 } fromEnvironment)
        {
            return new ClusterSecret(null, fromEnvironment, "$" + variable);
        }

        var copy = Path.Combine(sources.DataDirectory, DataDirectoryFileName);
        if (File.Exists(copy))
        {
            return new ClusterSecret(ReadKeyFile(copy, "this node's copy of the cluster secret"), null, copy);
        }

        if (sources.SharedFile is null)
        {
            throw new ConfigException(
                $"a node joining a running cluster needs the cluster's secret and has none in its data directory: {Remedy} "
                + "(the one the cluster's nodes use; a local cluster's is CONFIG.json.secret), or set $" + (sources.EnvironmentVariable ?? "RAFTMQ_CLUSTER_SECRET"));
        }

        var shared = CreateOrRead(sources.SharedFile, RandomNumberGenerator.GetBytes(GeneratedBytes), "the shared cluster secret file");
        try
        {
            PhysicalFileSystem.CreateDirectoryOwnerOnly(sources.DataDirectory);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException($"cannot create the data directory '{sources.DataDirectory}': {e.Message}");
        }

        // Another start of this node may have written its copy meanwhile; the copy on disk is the one that counts.
        var key = CreateOrRead(copy, shared, "this node's copy of the cluster secret");
        return new ClusterSecret(key, null, sources.SharedFile);
    }

    /// <summary>Reads a secret file: hex digits (whitespace around them ignored), <see cref="MinFileBytes"/> to <see cref="MaxFileBytes"/> bytes.</summary>
    internal static byte[] ReadKeyFile(string path, string what)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException($"cannot read {what} '{path}': {e.Message}");
        }

        var hex = text.Trim();
        try
        {
            if (hex.Length % 2 == 0 && hex.Length / 2 is >= MinFileBytes and <= MaxFileBytes)
            {
                return Convert.FromHexString(hex);
            }
        }
        catch (FormatException)
        {
            // Reported below with the expected format.
        }

        throw new ConfigException(
            $"{what} '{path}' is malformed: expected {2 * MinFileBytes} to {2 * MaxFileBytes} hex digits "
            + $"(make one with: openssl rand -hex {GeneratedBytes}); fix or delete it, or {Remedy}");
    }

    /// <summary>
    /// Publishes <paramref name="key"/> at <paramref name="path"/> unless a file is already there, and returns the key
    /// the file holds. The file appears whole or not at all: written to a temporary file (0600) and fsynced, then
    /// hard-linked into place, which fails rather than replace a file another process published first.
    /// </summary>
    private static byte[] CreateOrRead(string path, byte[] key, string what)
    {
        if (File.Exists(path)) return ReadKeyFile(path, what);
        var temp = $"{path}.{Environment.ProcessId}.{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}.tmp";
        try
        {
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows()) options.UnixCreateMode = PhysicalFileSystem.OwnerOnlyFile;
            using (var stream = new FileStream(temp, options))
            {
                stream.Write(Encoding.ASCII.GetBytes(Convert.ToHexStringLower(key) + "\n"));
                stream.Flush(flushToDisk: true);
            }

            return PublishWithoutReplacing(temp, path) ? key : ReadKeyFile(path, what);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException($"cannot create {what} '{path}': {e.Message}; {Remedy} (the same on every node)");
        }
        finally
        {
            try
            {
                File.Delete(temp);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // A stray temporary file holds nothing another node would read; the creation's outcome stands.
            }
        }
    }

    /// <summary>True when <paramref name="temp"/> now also sits at <paramref name="path"/>; false when a file was there first.</summary>
    private static bool PublishWithoutReplacing(string temp, string path)
    {
        if (OperatingSystem.IsWindows())
        {
            try
            {
                File.Move(temp, path, overwrite: false);
                return true;
            }
            catch (IOException) when (File.Exists(path))
            {
                return false;
            }
        }

        if (Link(temp, path) == 0) return true;
        var errno = Marshal.GetLastPInvokeError();
        if (errno == EExist) return false;
        throw new IOException($"link({temp}, {path}) failed: {new Win32Exception(errno).Message}");
    }

    [LibraryImport("libc", EntryPoint = "link", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Link(string existing, string created);
}

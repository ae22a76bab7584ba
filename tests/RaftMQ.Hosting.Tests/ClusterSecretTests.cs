using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using Xunit.Abstractions;

namespace RaftMQ.Hosting.Tests;

[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class ClusterSecretTests(ITestOutputHelper output) : IDisposable
{
    private const UnixFileMode OwnerReadWrite = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode OwnerOnlyDirectory = OwnerReadWrite | UnixFileMode.UserExecute;

    private readonly string _directory = Path.Combine(Path.GetTempPath(), "raftmq-secret-tests", Guid.NewGuid().ToString("N")[..12]);

    private string SharedFile => Path.Combine(_directory, "config.json.secret");

    public void Dispose()
    {
        if (Directory.Exists(_directory)) Directory.Delete(_directory, recursive: true);
    }

    private ClusterSecretSources Sources(int node, string? sharedFile = null) => new()
    {
        EnvironmentVariable = "RAFTMQ_TEST_SECRET_" + Guid.NewGuid().ToString("N"),
        DataDirectory = DataDirectory(node),
        SharedFile = sharedFile ?? SharedFile,
    };

    private string DataDirectory(int node) => Path.Combine(_directory, "data", $"node-{node}");

    private string Copy(int node) => Path.Combine(DataDirectory(node), ClusterSecret.DataDirectoryFileName);

    [Fact]
    public void Nodes_started_without_a_secret_share_a_random_one_kept_owner_only()
    {
        Directory.CreateDirectory(_directory);
        var first = ClusterSecret.Resolve(Sources(0));
        var second = ClusterSecret.Resolve(Sources(1));

        first.IsPassphrase.ShouldBeFalse("a generated secret is random and needs no KDF");
        first.Key().Length.ShouldBe(ClusterSecret.GeneratedBytes);
        second.Key().ShouldBe(first.Key());
        Convert.FromHexString(File.ReadAllText(SharedFile).Trim()).ShouldBe(first.Key());
        File.GetUnixFileMode(SharedFile).ShouldBe(OwnerReadWrite);
        foreach (var node in new[] { 0, 1 })
        {
            Convert.FromHexString(File.ReadAllText(Copy(node)).Trim()).ShouldBe(first.Key());
            File.GetUnixFileMode(Copy(node)).ShouldBe(OwnerReadWrite);
            File.GetUnixFileMode(DataDirectory(node)).ShouldBe(OwnerOnlyDirectory);
        }

        // Another cluster (another config, hence another shared file) gets a secret of its own.
        var other = ClusterSecret.Resolve(Sources(2, Path.Combine(_directory, "other.json.secret")));
        other.Key().ShouldNotBe(first.Key());
    }

    [Fact]
    public async Task Nodes_starting_at_the_same_time_agree_on_one_secret()
    {
        Directory.CreateDirectory(_directory);
        const int Nodes = 8;
        using var gate = new Barrier(Nodes);
        // A thread each (not the pool's few), all released at once into the create-or-read race.
        var keys = await Task.WhenAll(Enumerable.Range(0, Nodes).Select(node => Task.Factory.StartNew(
            () =>
            {
                var sources = Sources(node);
                gate.SignalAndWait(TimeSpan.FromSeconds(20)).ShouldBeTrue();
                return ClusterSecret.Resolve(sources).Key();
            },
            CancellationToken.None,
            TaskCreationOptions.LongRunning,
            TaskScheduler.Default)));

        foreach (var key in keys) key.ShouldBe(keys[0]);
        Convert.FromHexString(File.ReadAllText(SharedFile).Trim()).ShouldBe(keys[0]);
        Directory.GetFiles(_directory).ShouldBe([SharedFile], "no temporary file is left behind");
    }

    [Fact]
    public void A_node_keeps_the_copy_in_its_data_directory_when_the_shared_file_changes()
    {
        Directory.CreateDirectory(_directory);
        var original = ClusterSecret.Resolve(Sources(0)).Key();
        File.WriteAllText(SharedFile, Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32)));

        var restarted = ClusterSecret.Resolve(Sources(0));
        restarted.Key().ShouldBe(original);
        restarted.Source.ShouldBe(Copy(0));

        File.Delete(SharedFile);
        ClusterSecret.Resolve(Sources(0)).Key().ShouldBe(original, "a lost shared file does not change a node's secret");
    }

    [Fact]
    public void An_explicit_secret_wins_and_writes_nothing()
    {
        var file = Path.Combine(_directory, "ops-secret");
        Directory.CreateDirectory(_directory);
        var key = RandomNumberGenerator.GetBytes(32);
        File.WriteAllText(file, "\n  " + Convert.ToHexString(key) + "  \n");

        var fromFile = ClusterSecret.Resolve(Sources(0) with { SecretFile = file });
        fromFile.Key().ShouldBe(key);
        fromFile.IsPassphrase.ShouldBeFalse();

        var passphrase = ClusterSecret.Resolve(Sources(0) with { Passphrase = "correct horse", SecretFile = file });
        passphrase.IsPassphrase.ShouldBeTrue();
        passphrase.Source.ShouldBe("--cluster-secret");
        passphrase.Key().ShouldBe(RaftHostOptions.DeriveSecret("correct horse"));

        var variable = "RAFTMQ_TEST_SECRET_" + Guid.NewGuid().ToString("N");
        Environment.SetEnvironmentVariable(variable, "from the environment");
        try
        {
            var fromEnvironment = ClusterSecret.Resolve(Sources(0) with { EnvironmentVariable = variable });
            fromEnvironment.Source.ShouldBe("$" + variable);
            fromEnvironment.Key().ShouldBe(RaftHostOptions.DeriveSecret("from the environment"));
        }
        finally
        {
            Environment.SetEnvironmentVariable(variable, null);
        }

        File.Exists(SharedFile).ShouldBeFalse();
        Directory.Exists(DataDirectory(0)).ShouldBeFalse();
    }

    [Theory]
    [InlineData("")]
    [InlineData("not hex at all, not hex at all, not hex at all, not hex at all!!")]
    [InlineData("0123456789abcdef")]
    [InlineData("0123456789abcdef0123456789abcdef0")]
    public void A_malformed_secret_file_is_a_clear_error(string content)
    {
        Directory.CreateDirectory(_directory);
        File.WriteAllText(SharedFile, content);
        var error = Should.Throw<ConfigException>(() => ClusterSecret.Resolve(Sources(0)));
        error.Message.ShouldContain($"the shared cluster secret file '{SharedFile}' is malformed");
        error.Message.ShouldContain("openssl rand -hex 32");

        Directory.CreateDirectory(DataDirectory(1));
        File.WriteAllText(Copy(1), content);
        Should.Throw<ConfigException>(() => ClusterSecret.Resolve(Sources(1))).Message
            .ShouldContain($"this node's copy of the cluster secret '{Copy(1)}' is malformed");
    }

    [Fact]
    public void A_shared_file_that_cannot_be_created_tells_the_user_what_to_pass()
    {
        var unwritable = Path.Combine(_directory, "no-such-directory", "config.json.secret");
        var error = Should.Throw<ConfigException>(() => ClusterSecret.Resolve(Sources(0, unwritable)));
        error.Message.ShouldContain($"cannot create the shared cluster secret file '{unwritable}'");
        error.Message.ShouldContain("pass --cluster-secret TEXT or --cluster-secret-file PATH");

        Should.Throw<ConfigException>(() => ClusterSecret.Resolve(Sources(0) with { SecretFile = Path.Combine(_directory, "missing") }))
            .Message.ShouldContain("cannot read the cluster secret file");
        Should.Throw<ConfigException>(() => ClusterSecret.Resolve(Sources(0) with { Passphrase = "" }))
            .Message.ShouldContain("--cluster-secret must not be empty");
    }

    [Fact]
    public void A_passphrase_is_stretched_by_a_slow_kdf()
    {
        var clock = Stopwatch.StartNew();
        var key = RaftHostOptions.DeriveSecret("a passphrase");
        output.WriteLine($"PBKDF2-SHA256 x {RaftHostOptions.PassphraseIterations}: {clock.ElapsedMilliseconds} ms");

        key.Length.ShouldBe(32);
        key.ShouldBe(RaftHostOptions.DeriveSecret("a passphrase"), "every node derives the same key");
        key.ShouldNotBe(SHA256.HashData(Encoding.UTF8.GetBytes("a passphrase")));
        key.ShouldNotBe(RaftHostOptions.DeriveSecret("a passphrasf"));
    }
}

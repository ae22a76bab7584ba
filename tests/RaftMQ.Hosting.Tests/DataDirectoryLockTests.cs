namespace RaftMQ.Hosting.Tests;

/// <summary>
/// The data directory's lock is also the node's first check that it can use the directory: one it cannot create or
/// write is refused at once with the directory and the system's reason. (The tests run as root in CI, where
/// permissions stop nothing: a path below a regular file fails for root too. The read-only file system case runs on a
/// real node, WalDamageTests.)
/// </summary>
public sealed class DataDirectoryLockTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "raftmq-lock-tests", Guid.NewGuid().ToString("N")[..12]);

    public DataDirectoryLockTests() => Directory.CreateDirectory(_directory);

    [Fact]
    public void A_data_directory_below_a_regular_file_is_refused_naming_it_and_the_file()
    {
        var file = Path.Combine(_directory, "a-file");
        File.WriteAllText(file, "not a directory");
        foreach (var data in new[] { Path.Combine(file, "data"), Path.Combine(file, "deeper", "data") })
        {
            var e = Should.Throw<DataDirectoryUnusableException>(() => DataDirectoryLock.Acquire(data));
            e.Message.ShouldBe($"the data directory {data} cannot be created: Not a directory ({file} is a file); "
                + "the node needs a directory it can create and write (--data-dir)");
        }
        File.ReadAllText(file).ShouldBe("not a directory");
    }

    [Fact]
    public void A_data_directory_that_is_a_regular_file_is_refused()
    {
        var file = Path.Combine(_directory, "data");
        File.WriteAllText(file, "");
        var e = Should.Throw<DataDirectoryUnusableException>(() => DataDirectoryLock.Acquire(file));
        e.Message.ShouldStartWith($"the data directory {file} cannot be created: Not a directory ({file} is a file);");
    }

    [Fact]
    public void A_relative_path_is_named_in_full()
    {
        var file = Path.Combine(_directory, "a-file");
        File.WriteAllText(file, "");
        var relative = Path.GetRelativePath(Environment.CurrentDirectory, Path.Combine(file, "data"));
        Should.Throw<DataDirectoryUnusableException>(() => DataDirectoryLock.Acquire(relative))
            .Message.ShouldStartWith($"the data directory {Path.Combine(file, "data")} cannot be created:");
    }

    [Fact]
    public void The_lock_creates_the_directory_and_a_second_taker_is_told_it_is_in_use()
    {
        if (!OperatingSystem.IsLinux()) return; // the lock is taken on Linux only
        var data = Path.Combine(_directory, "parent", "data");
        using (var held = DataDirectoryLock.Acquire(data))
        {
            held.CreatedDirectory.ShouldBeTrue();
            File.Exists(Path.Combine(data, DataDirectoryLock.FileName)).ShouldBeTrue();
            Should.Throw<DataDirectoryInUseException>(() => DataDirectoryLock.Acquire(data))
                .Message.ShouldStartWith($"the data directory {data} is in use by another node process");
        }
        using var again = DataDirectoryLock.Acquire(data); // released
        again.CreatedDirectory.ShouldBeFalse();
    }

    [Fact]
    public void Abandoning_removes_what_this_start_created_and_nothing_else()
    {
        // A start that created the directory (and a missing parent) and stopped before storing anything leaves nothing.
        var parent = Path.Combine(_directory, "parent");
        var data = Path.Combine(parent, "data");
        DataDirectoryLock.Acquire(data).Abandon();
        Directory.Exists(parent).ShouldBeFalse();
        Directory.Exists(_directory).ShouldBeTrue();

        // A directory that existed before keeps what it holds; one this start made but that holds a file stays too.
        var existing = Path.Combine(_directory, "existing");
        Directory.CreateDirectory(existing);
        File.WriteAllText(Path.Combine(existing, "kept"), "x");
        DataDirectoryLock.Acquire(existing).Abandon();
        File.Exists(Path.Combine(existing, "kept")).ShouldBeTrue();
        var written = Path.Combine(_directory, "written");
        var lease = DataDirectoryLock.Acquire(written);
        File.WriteAllText(Path.Combine(written, "cluster-secret"), "x");
        lease.Abandon();
        File.Exists(Path.Combine(written, "cluster-secret")).ShouldBeTrue();

        // Abandoned, the lock is released.
        if (OperatingSystem.IsLinux()) DataDirectoryLock.Acquire(written).Dispose();
    }

    public void Dispose()
    {
        if (Directory.Exists(_directory)) Directory.Delete(_directory, recursive: true);
    }
}

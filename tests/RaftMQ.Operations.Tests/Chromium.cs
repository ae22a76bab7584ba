using PuppeteerSharp;

namespace RaftMQ.Operations.Tests;

/// <summary>
/// The system's Chromium (Debian's <c>chromium</c> package; no browser is downloaded), driven by PuppeteerSharp.
/// <c>RAFTMQ_CHROMIUM</c> names another executable.
/// </summary>
public static class Chromium
{
    private static readonly string[] Candidates = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"];

    /// <summary>The browser's executable, or null when none is installed.</summary>
    public static string? Executable { get; } =
        Environment.GetEnvironmentVariable("RAFTMQ_CHROMIUM") is { Length: > 0 } explicitPath ? explicitPath : Candidates.FirstOrDefault(File.Exists);

    /// <summary>Whether this is a CI run (CI=true), where a browser test must run, never be skipped.</summary>
    public static bool InCi => string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

    /// <summary>Starts a headless browser; fails with how to install one when there is none.</summary>
    public static Task<IBrowser> LaunchAsync()
    {
        var executable = Executable ?? throw new InvalidOperationException(
            "no Chromium found (looked for " + string.Join(", ", Candidates) + " and $RAFTMQ_CHROMIUM); install it: apt-get install -y chromium");
        return Puppeteer.LaunchAsync(new LaunchOptions
        {
            ExecutablePath = executable,
            Headless = true,
            Timeout = 60_000,
            // Root (CI) cannot use Chromium's sandbox; /dev/shm is small in some containers.
            Args = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check"],
        });
    }
}

/// <summary>
/// A test that needs Chromium: skipped with the reason when none is installed, except in CI (CI=true), where it runs
/// and fails loudly instead.
/// </summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class ChromiumFactAttribute : FactAttribute
{
    public ChromiumFactAttribute()
    {
        if (Chromium.Executable is null && !Chromium.InCi)
            Skip = "Chromium is not installed (apt-get install -y chromium); this test runs, and must pass, in CI";
    }
}

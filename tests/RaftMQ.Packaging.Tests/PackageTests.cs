using System.IO.Compression;

namespace RaftMQ.Packaging.Tests;

/// <summary>
/// The packages as a user gets them: the client package, restored from a folder feed by a program of its own and run
/// against a real node; the raftmq tool package, installed with <c>dotnet tool install</c>. Packs the builds of this
/// configuration without rebuilding them, under a prerelease version unique to the run, so no package cache can hand
/// back an older build.
/// </summary>
public sealed class PackageTests : IDisposable
{
    private static readonly TimeSpan SdkTimeout = TimeSpan.FromMinutes(3);

    private readonly string _root = Path.Combine(Path.GetTempPath(), "raftmq-packaging", Guid.NewGuid().ToString("N")[..12]);
    private readonly string _suffix = "test" + Guid.NewGuid().ToString("N")[..8];

    public PackageTests() => Directory.CreateDirectory(_root);

    private string Feed => Path.Combine(_root, "feed");

    private static string Configuration => AppContext.BaseDirectory.Contains("/Release/", StringComparison.Ordinal) ? "Release" : "Debug";

    /// <summary>
    /// The run's own package folder: the packed packages are extracted there, never into the user's cache; the user's
    /// cache is a read-only fallback for their dependencies, so nothing already there is fetched again.
    /// </summary>
    private Dictionary<string, string> SdkEnvironment => new() { ["NUGET_PACKAGES"] = Path.Combine(_root, "packages") };

    [Fact]
    public async Task Client_package_restores_into_a_program_that_publishes_and_consumes_on_a_real_node()
    {
        var version = await PackAsync("src/RaftMQ.Client/RaftMQ.Client.csproj", "RaftMQ.Client");
        using (var package = ZipFile.OpenRead(PackagePath("RaftMQ.Client", version)))
        {
            var entries = package.Entries.Select(e => e.FullName).ToList();
            entries.ShouldContain("README.md");
            entries.ShouldContain("lib/net10.0/RaftMQ.Client.dll");
            entries.ShouldContain("lib/net10.0/RaftMQ.Client.xml");
            using var nuspec = new StreamReader(package.GetEntry("RaftMQ.Client.nuspec")!.Open());
            var metadata = await nuspec.ReadToEndAsync();
            metadata.ShouldContain("<license type=\"expression\">MIT</license>");
            metadata.ShouldContain("<readme>README.md</readme>");
            metadata.ShouldContain("<dependency id=\"Polly\"");
        }

        var app = Path.Combine(_root, "app");
        Directory.CreateDirectory(app);
        await File.WriteAllTextAsync(Path.Combine(app, "app.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <Nullable>enable</Nullable>
                <ImplicitUsings>enable</ImplicitUsings>
                <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="RaftMQ.Client" Version="[{version}]" />
              </ItemGroup>
            </Project>
            """);
        await File.WriteAllTextAsync(Path.Combine(app, "Program.cs"), """
            using RaftMQ.Client;

            // app URL publish TOPIC MESSAGE | app URL pop TOPIC
            using var client = new RaftMQClient([new Uri(args[0])]);
            switch (args[1])
            {
                case "publish":
                    await client.CreateTopicAsync(args[2]);
                    await client.PublishAsync(args[2], args[3]);
                    Console.WriteLine("published");
                    break;
                case "pop":
                    Console.WriteLine($"popped: {await client.PopAsync(args[2]) ?? "(none)"}");
                    break;
            }
            """);
        // The feed first, then the sources this machine is configured with (no <clear/>): the mirror that serves the
        // client's own dependencies.
        await File.WriteAllTextAsync(Path.Combine(app, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <add key="raftmq-packed" value="{Feed}" />
              </packageSources>
              <fallbackPackageFolders>
                <add key="user-cache" value="{UserPackageFolder()}" />
              </fallbackPackageFolders>
            </configuration>
            """);
        var output = Path.Combine(_root, "app-out");
        await DotnetAsync(app, "build", "-c", "Release", "-o", output, "-nologo");
        var appDll = Path.Combine(output, "app.dll");
        File.Exists(Path.Combine(output, "RaftMQ.Client.dll")).ShouldBeTrue("the client assembly comes from the package");

        await using var cluster = TestCluster.Create(1);
        await cluster.StartAllAsync();
        await cluster.WaitForLeaderAsync();
        var url = $"http://127.0.0.1:{cluster.Ports[0].Http}";

        // The program publishes through the packed client; the node's REST API gives the message back.
        var sent = "from-the-package-" + _suffix;
        (await ProcessRunner.RunAsync("dotnet", [appDll, url, "publish", "orders", sent], app, TimeSpan.FromSeconds(60)))
            .ShouldSucceed("publishing with the packed client").Output.ShouldContain("published");
        var popped = await cluster.PopAsync(0, "orders");
        ((int)popped.Status).ShouldBe(200, popped.Body);
        popped.Body.ShouldContain(sent);

        // And the other way round: published over REST, consumed by the program.
        var back = "to-the-package-" + _suffix;
        var published = await cluster.PublishAsync(0, "orders", back);
        ((int)published.Status).ShouldBeInRange(200, 299, published.Body);
        (await ProcessRunner.RunAsync("dotnet", [appDll, url, "pop", "orders"], app, TimeSpan.FromSeconds(60)))
            .ShouldSucceed("consuming with the packed client").Output.ShouldContain($"popped: {back}");
    }

    [Fact]
    public async Task Cli_tool_package_installs_with_dotnet_tool_install_and_runs()
    {
        var version = await PackAsync("src/RaftMQ.Cli/RaftMQ.Cli.csproj", "raftmq");
        var tools = Path.Combine(_root, "tools");
        using (var package = ZipFile.OpenRead(PackagePath("raftmq", version)))
        {
            var entries = package.Entries.Select(e => e.FullName).ToList();
            entries.ShouldContain("tools/net10.0/any/raftmq.dll");
            entries.ShouldContain("tools/net10.0/any/DotnetToolSettings.xml");
            // The node is not part of the tool: a launcher without its assemblies would only fail at run time.
            entries.ShouldNotContain(e => e.Contains("RaftMQ.Server", StringComparison.Ordinal));
        }

        await DotnetAsync(_root, "tool", "install", "--tool-path", tools, "--add-source", Feed, "--version", version, "raftmq");

        var raftmq = Path.Combine(tools, "raftmq");
        File.Exists(raftmq).ShouldBeTrue("the tool's command is raftmq");
        var help = (await ProcessRunner.RunAsync(raftmq, ["--help"], _root, TimeSpan.FromSeconds(60))).ShouldSucceed("raftmq --help");
        help.Output.ShouldContain("Usage:");
        help.Output.ShouldContain("raftmq [command] [options]");
    }

    /// <summary>Packs the build of <paramref name="project"/> into the feed under the run's version; returns the version.</summary>
    private async Task<string> PackAsync(string project, string packageId)
    {
        await DotnetAsync(NodeProcess.RepoRoot, "pack", Path.Combine(NodeProcess.RepoRoot, project), "-c", Configuration,
            "--no-build", "-o", Feed, "--version-suffix", _suffix, "-nologo");
        var package = Directory.GetFiles(Feed, $"{packageId}.*-{_suffix}.nupkg").ShouldHaveSingleItem();
        var name = Path.GetFileNameWithoutExtension(package);
        return name[(packageId.Length + 1)..];
    }

    private string PackagePath(string packageId, string version) => Path.Combine(Feed, $"{packageId}.{version}.nupkg");

    private async Task DotnetAsync(string workingDirectory, params string[] args) =>
        (await ProcessRunner.RunAsync("dotnet", args, workingDirectory, SdkTimeout, SdkEnvironment)).ShouldSucceed($"dotnet {args[0]}");

    private static string UserPackageFolder() =>
        Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } set
            ? set
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");

    public void Dispose()
    {
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
            // A process that outlived its deadline may still hold a file; the directory is under the temp folder.
        }
    }
}

using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Routing.Patterns;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using OpenTelemetry.Metrics;
using RaftMQ.Hosting;
using RaftMQ.Queue;
using RaftMQ.Server;

namespace RaftMQ.Operations.Tests;

/// <summary>
/// GET /openapi/v1.json describes every route the node maps, with its methods: the app is built in-process with the
/// node's own endpoint registration (<see cref="NodeEndpoints"/>), served by Kestrel on a free port, and its
/// <see cref="EndpointDataSource"/> is compared with the document it serves. Generic: a route added later is checked
/// as soon as it is mapped.
/// </summary>
public sealed class OpenApiTests : IAsyncLifetime
{
    private readonly string _directory = TestCluster.NewDirectory();
    private WebApplication? _app;
    private QueueStateMachine? _queue;

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (_app is not null) await _app.DisposeAsync();
        _queue?.Dispose();
        if (Directory.Exists(_directory)) Directory.Delete(_directory, recursive: true);
    }

    /// <summary>The node's app, not started as a Raft node (no peers needed to describe the API); extra routes mapped by <paramref name="more"/>.</summary>
    private async Task<(WebApplication App, Uri Url)> StartAppAsync(Action<WebApplication>? more = null)
    {
        Directory.CreateDirectory(_directory);
        var config = ClusterConfig.Parse("""{"addresses": [{"ip": "127.0.0.1", "port": 1, "internal_port": 2}]}""");
        var settings = new NodeSettings { ConfigPath = Path.Combine(_directory, "config.json"), Index = 0, DataDirectory = _directory };
        _queue = new QueueStateMachine(Path.Combine(_directory, "queue"));
        var identity = config.Identity(0);
        var node = new QueueNode(settings, identity, new MemberDirectory(identity.Members), _queue, new DiskAlarm(_directory, 0, TimeProvider.System, NullLogger.Instance));
        var builder = NodeWebApplication.CreateBuilder(new IPEndPoint(IPAddress.Loopback, 0), LogLevel.Warning, 1 << 20);
        NodeEndpoints.AddServices(builder, node);
        _app = builder.Build();
        _app.UseRouting();
        NodeEndpoints.Map(_app, node, new TaskCompletionSource<MeterProvider>().Task);
        more?.Invoke(_app);
        await _app.StartAsync();
        var address = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return (_app, new Uri(address));
    }

    private static async Task<JsonElement> DocumentAsync(Uri url)
    {
        using var http = new HttpClient { BaseAddress = url, Timeout = TimeSpan.FromSeconds(30) };
        using var response = await http.GetAsync("/openapi/v1.json");
        response.StatusCode.ShouldBe(HttpStatusCode.OK);
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone();
    }

    /// <summary>A route template as an OpenAPI path: <c>/message/{**topic}</c> is <c>/message/{topic}</c>.</summary>
    private static string PathOf(RoutePattern pattern) =>
        "/" + string.Join('/', pattern.PathSegments.Select(s => string.Concat(s.Parts.Select(p => p switch
        {
            RoutePatternLiteralPart l => l.Content,
            RoutePatternParameterPart q => "{" + q.Name + "}",
            RoutePatternSeparatorPart sep => sep.Content,
            _ => throw new InvalidOperationException($"unexpected route part {p}"),
        }))));

    private static void ShouldDescribeEveryRoute(WebApplication app, JsonElement document)
    {
        var paths = document.GetProperty("paths");
        var routes = app.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>().ToList();
        routes.Count.ShouldBeGreaterThan(10, "the node maps its whole API");
        foreach (var route in routes)
        {
            var path = PathOf(route.RoutePattern);
            paths.TryGetProperty(path, out var item).ShouldBeTrue($"{route.RoutePattern.RawText} ({path}) is not in the document");
            var methods = route.Metadata.GetMetadata<IHttpMethodMetadata>()?.HttpMethods;
            if (methods is null or { Count: 0 })
            {
                item.EnumerateObject().Any().ShouldBeTrue($"{path} has no operation");
                continue;
            }
            foreach (var method in methods)
            {
                item.TryGetProperty(method.ToLowerInvariant(), out var operation).ShouldBeTrue($"{method} {path} is not in the document");
                operation.GetProperty("responses").EnumerateObject().Any().ShouldBeTrue($"{method} {path} has no responses");
                foreach (var parameter in route.RoutePattern.Parameters)
                {
                    operation.GetProperty("parameters").EnumerateArray()
                        .Any(p => p.GetProperty("name").GetString() == parameter.Name && p.GetProperty("in").GetString() == "path")
                        .ShouldBeTrue($"{method} {path} does not describe its parameter {parameter.Name}");
                }
            }
        }
    }

    [Fact]
    public async Task The_node_binary_serves_the_same_document_as_the_app_built_here()
    {
        // The shipped node is trimmed (in Release): what it serves must not lose anything the code describes.
        var (_, url) = await StartAppAsync();
        var expected = (await DocumentAsync(url)).GetProperty("paths").GetRawText();
        await using var cluster = TestCluster.Create(1);
        await cluster.StartAllAsync();
        var served = (await DocumentAsync(cluster.Url(0, "/"))).GetProperty("paths").GetRawText();
        served.ShouldBe(expected);
    }

    [Fact]
    public async Task The_document_describes_every_mapped_route_with_its_methods()
    {
        var (app, url) = await StartAppAsync();
        var document = await DocumentAsync(url);
        document.GetProperty("openapi").GetString()!.ShouldStartWith("3.");
        document.GetProperty("info").GetProperty("title").GetString().ShouldBe("RaftMQ");
        ShouldDescribeEveryRoute(app, document);

        // The contract's own endpoints are there with what docs/rest-api.md says of them.
        var paths = document.GetProperty("paths");
        paths.GetProperty("/topic").GetProperty("put").GetProperty("responses").TryGetProperty("409", out _).ShouldBeTrue();
        paths.GetProperty("/message/{topic}").GetProperty("get").GetProperty("summary").GetString()!.ShouldContain("Pop");
        paths.GetProperty("/v1/topics/{topic}/messages").GetProperty("post").GetProperty("requestBody").ValueKind.ShouldBe(JsonValueKind.Object);
        foreach (var path in new[] { "/metrics", "/healthz", "/readyz", "/ui", "/v1/cluster/overview", "/openapi/{documentName}.json" })
            paths.TryGetProperty(path, out _).ShouldBeTrue($"{path} is not in the document");

        // The answers of --auth-file, where they can come: the permission an endpoint needs, none for health.
        string? Response(string path, string method, string status) =>
            paths.GetProperty(path).GetProperty(method).GetProperty("responses").TryGetProperty(status, out var r) ? r.GetProperty("description").GetString() : null;
        Response("/v1/topics/{topic}/publish", "post", "401").ShouldNotBeNull().ShouldStartWith("with --auth-file:");
        Response("/v1/topics/{topic}/publish", "post", "403").ShouldBe("with --auth-file: the API key lacks publish permission on the topic");
        Response("/message/{topic}", "get", "403").ShouldBe("with --auth-file and --auth-rrmq: the API key lacks consume permission on the topic");
        Response("/v1/cluster/transfer-leader", "post", "403").ShouldBe("with --auth-file: the API key lacks admin permission on every topic (a grant on \"*\")");
        Response("/v1/metrics", "get", "401").ShouldNotBeNull();
        Response("/v1/metrics", "get", "403").ShouldBeNull("any valid key may read the metrics");
        Response("/healthz", "get", "401").ShouldBeNull();
        Response("/status", "get", "401").ShouldBeNull();
    }

    [Fact]
    public async Task A_route_the_document_has_never_seen_is_described_once_it_is_mapped()
    {
        var (app, url) = await StartAppAsync(a =>
        {
            a.MapGet("/v1/topics/{topic}/groups/{group}", (HttpContext _) => Task.CompletedTask);
            a.MapMethods("/v1/topics/{topic}/dead-letters", ["GET", "DELETE"], (HttpContext _) => Task.CompletedTask);
        });
        var document = await DocumentAsync(url);
        ShouldDescribeEveryRoute(app, document);
        var paths = document.GetProperty("paths");
        paths.GetProperty("/v1/topics/{topic}/groups/{group}").TryGetProperty("get", out _).ShouldBeTrue();
        paths.GetProperty("/v1/topics/{topic}/dead-letters").TryGetProperty("delete", out _).ShouldBeTrue();
    }
}

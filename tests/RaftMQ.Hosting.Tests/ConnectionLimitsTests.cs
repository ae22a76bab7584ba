using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace RaftMQ.Hosting.Tests;

public sealed class FileDescriptorBudgetTests
{
    private static readonly FileDescriptorBudget.Demand Default = new(4096, 64, 2);

    [Fact]
    public void A_demand_within_the_soft_limit_changes_nothing()
    {
        var plan = FileDescriptorBudget.Decide(Default, soft: 20_000, hard: 20_000, httpExplicit: false);
        plan.ShouldBe(new FileDescriptorBudget.Plan(20_000, 4096, null, null));
    }

    [Fact]
    public void A_demand_over_the_soft_but_within_the_hard_limit_raises_the_soft_one()
    {
        Default.Total.ShouldBe(4096 + 64 + 2 + FileDescriptorBudget.FileReserve);
        var plan = FileDescriptorBudget.Decide(Default, soft: 1024, hard: 524_288, httpExplicit: true);
        plan.ShouldBe(new FileDescriptorBudget.Plan(524_288, 4096, null, null));
        FileDescriptorBudget.Decide(Default, 1024, ulong.MaxValue, httpExplicit: true).SoftLimit.ShouldBe(ulong.MaxValue);
    }

    [Fact]
    public void An_explicit_http_bound_over_the_hard_limit_refuses_to_start_naming_the_option_and_what_fits()
    {
        var plan = FileDescriptorBudget.Decide(Default, soft: 1024, hard: 4096, httpExplicit: true);
        plan.Error.ShouldNotBeNull();
        var room = 4096 - (64 + 2 + FileDescriptorBudget.FileReserve);
        plan.Error.ShouldContain("--max-connections");
        plan.Error.ShouldContain($"at most {room}");
        plan.Error.ShouldContain("4096");
        plan.Warning.ShouldBeNull();
    }

    [Fact]
    public void The_default_http_bound_is_lowered_to_what_fits_with_a_warning()
    {
        var plan = FileDescriptorBudget.Decide(Default, soft: 1024, hard: 4096, httpExplicit: false);
        plan.Error.ShouldBeNull();
        plan.SoftLimit.ShouldBe(4096UL);
        plan.HttpConnections.ShouldBe(4096 - (64 + 2 + FileDescriptorBudget.FileReserve));
        plan.Warning.ShouldNotBeNull().ShouldContain("--max-connections lowered to");
    }

    [Fact]
    public void A_hard_limit_too_low_for_even_the_smallest_http_bound_refuses_to_start()
    {
        var plan = FileDescriptorBudget.Decide(Default, soft: 256, hard: 256, httpExplicit: false);
        plan.Error.ShouldNotBeNull().ShouldContain("raise the hard limit");
        plan.Error.ShouldContain((64 + 2 + FileDescriptorBudget.FileReserve + FileDescriptorBudget.MinHttpConnections).ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public void The_demand_counts_the_transports_inbound_bound_and_one_outbound_connection_per_peer()
    {
        var host = new RaftHostOptions
        {
            NodeId = 1,
            Peers = new Dictionary<ulong, EndPoint> { [2] = new IPEndPoint(IPAddress.Loopback, 1), [3] = new IPEndPoint(IPAddress.Loopback, 2) },
            ListenEndPoint = new IPEndPoint(IPAddress.Loopback, 0),
            DataDirectory = "unused",
            ClusterId = "c",
            ClusterSecret = new byte[32],
            ConfigureTransport = t => t.MaxInboundConnections = 100,
        };
        FileDescriptorBudget.For(host, new HttpConnectionLimits { MaxConnections = 10, MaxConnectionsPerAddress = 5 })
            .ShouldBe(new FileDescriptorBudget.Demand(10, 100, 2));
    }

    [Fact]
    public void This_process_fits_a_small_demand()
    {
        var plan = FileDescriptorBudget.Apply(new FileDescriptorBudget.Demand(10, 10, 1), httpExplicit: true);
        plan.Error.ShouldBeNull();
        plan.HttpConnections.ShouldBe(10);
    }
}

/// <summary>The HTTP connection bounds in a real Kestrel on loopback.</summary>
public sealed class HttpConnectionLimiterTests
{
    [Fact]
    public void Limits_with_a_per_address_bound_over_the_total_are_refused()
    {
        Should.Throw<ArgumentException>(() => new HttpConnectionLimits { MaxConnections = 10, MaxConnectionsPerAddress = 11 }.Validate())
            .Message.ShouldContain("MaxConnectionsPerAddress");
        Should.Throw<ArgumentException>(() => new HttpConnectionLimits { IdleTimeout = TimeSpan.Zero }.Validate());
    }

    [Fact]
    public async Task Connections_over_the_per_address_and_total_bounds_are_closed_and_the_others_keep_being_served()
    {
        var limits = new HttpConnectionLimits { MaxConnections = 6, MaxConnectionsPerAddress = 4 };
        await using var app = NodeWebApplication.CreateBuilder(new IPEndPoint(IPAddress.Loopback, 0), LogLevel.Warning, 1024, connections: limits).Build();
        app.MapGet("/ping", (HttpContext ctx) => ctx.Response.WriteAsync("pong"));
        await app.StartAsync();
        var endPoint = new IPEndPoint(IPAddress.Loopback, new Uri(app.Urls.Single()).Port);
        using var handler = new SocketsHttpHandler { MaxConnectionsPerServer = 1 };
        using var http = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(20) };
        var ping = new Uri($"http://{endPoint}/ping");
        (await http.GetStringAsync(ping)).ShouldBe("pong");

        var fromOne = await OpenAsync(endPoint, "127.0.0.1", 4); // 3 fit beside the client's connection
        (await ClosedByServerAsync(fromOne, expected: 1)).ShouldBe(1);
        var fromTwo = await OpenAsync(endPoint, "127.0.0.2", 4); // 2 fit: 6 in all
        (await ClosedByServerAsync(fromTwo, expected: 2)).ShouldBe(2);

        (await http.GetStringAsync(ping)).ShouldBe("pong", "the open keep-alive connection is still served");
        foreach (var s in fromOne.Concat(fromTwo)) s.Dispose();
        using var fresh = new HttpClient();
        (await Eventually(async () => await TryGetAsync(fresh, ping) == "pong")).ShouldBeTrue("a new client is served once connections close");
    }

    private static async Task<List<Socket>> OpenAsync(IPEndPoint server, string from, int count)
    {
        var sockets = new List<Socket>();
        for (var i = 0; i < count; i++)
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            s.Bind(new IPEndPoint(IPAddress.Parse(from), 0));
            await s.ConnectAsync(server);
            sockets.Add(s);
        }

        return sockets;
    }

    /// <summary>
    /// Waits until <paramref name="expected"/> of <paramref name="sockets"/> are closed by the server (end of stream
    /// or reset; an idle HTTP connection is never sent anything else), then returns how many are.
    /// </summary>
    internal static async Task<int> ClosedByServerAsync(IReadOnlyList<Socket> sockets, int expected)
    {
        await Eventually(() => Task.FromResult(sockets.Count(s => s.Poll(0, SelectMode.SelectRead)) >= expected));
        return sockets.Count(s => s.Poll(0, SelectMode.SelectRead));
    }

    private static async Task<string?> TryGetAsync(HttpClient http, Uri uri)
    {
        try
        {
            return await http.GetStringAsync(uri);
        }
        catch (HttpRequestException)
        {
            return null;
        }
    }

    private static async Task<bool> Eventually(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(20));
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) return false;
            await timer.WaitForNextTickAsync();
        }

        return true;
    }
}

using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using RaftMQ.Raft;
using static RaftMQ.Transport.Tests.TestSupport;

namespace RaftMQ.Transport.Tests;

/// <summary>
/// A peer that authenticates and then stops reading: the sender's flush waits once the socket buffers are full, and
/// after <see cref="TcpTransportOptions.WriteTimeout"/> the link is closed with that reason and dialled again, where
/// an unanswered flush would hold the link forever.
/// </summary>
public sealed class WriteTimeoutTests
{
    [Fact]
    public async Task A_peer_that_stops_reading_has_its_link_closed_after_the_write_timeout()
    {
        var log = new ListLogger();
        using var listener = new TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        using var stop = new CancellationTokenSource(Deadline);
        var accepted = 0;
        var held = new List<PeerConnection>();
        // Node 3, by hand: passes the real handshake on every connection and then never reads a byte.
        var fake = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                var connection = new PeerConnection(await listener.AcceptSocketAsync(stop.Token));
                held.Add(connection);
                await Handshake.AcceptAsync(connection, Options(3), _ => null, stop.Token);
                Interlocked.Increment(ref accepted);
            }
        });

        var options = Options(1);
        options.WriteTimeout = TimeSpan.FromMilliseconds(300);
        options.Peers[3] = (System.Net.IPEndPoint)listener.LocalEndpoint;
        await using var transport = new TcpTransport(options, log);
        await transport.StartAsync();

        // 60 KiB messages until the socket buffers are full and a flush has to wait out the timeout.
        var payload = new byte[60 * 1024];
        ulong index = 0;
        while (!log.Has(LogLevel.Information, "write timed out after 300 ms") && !stop.IsCancellationRequested)
        {
            index++;
            transport.Send(new AppendEntries(1, 3, 1, index - 1, 1, [new Entry(index, 1, EntryType.Command, payload)], 0));
            if (index % 64 == 0) await Task.Yield();
        }
        log.Has(LogLevel.Information, "Connection to peer 3 lost: write timed out after 300 ms").ShouldBeTrue("the stalled link was closed");
        WaitUntil(() => Volatile.Read(ref accepted) >= 2, "the sender dials again after closing the stalled link");

        await stop.CancelAsync();
        listener.Stop();
        await Should.ThrowAsync<Exception>(() => fake);
        foreach (var c in held) await c.DisposeAsync();
    }
}

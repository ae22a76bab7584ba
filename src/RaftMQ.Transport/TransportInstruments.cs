using System.Diagnostics.Metrics;

namespace RaftMQ.Transport;

/// <summary>
/// A transport's <see cref="TransportCounters"/> as <see cref="System.Diagnostics.Metrics"/> instruments on the meter
/// <see cref="MeterName"/>, read when a listener collects (nothing is recorded on the send and receive paths beyond
/// the counters themselves). Disposing removes them.
/// </summary>
public sealed class TransportInstruments : IDisposable
{
    /// <summary>The meter every transport instrument is on.</summary>
    public const string MeterName = "RaftMQ.Transport";

    private readonly Meter _meter = new(MeterName);

    /// <param name="counters">The transport's counters.</param>
    /// <param name="linksDown">Reads how many peer links are down now; null leaves that gauge out.</param>
    public TransportInstruments(TransportCounters counters, Func<int>? linksDown = null)
    {
        ArgumentNullException.ThrowIfNull(counters);
        if (linksDown is not null)
        {
            _meter.CreateObservableGauge("raftmq.transport.links.down", linksDown, "{link}", "Peer links whose connection closed or could not be made, now");
        }

        var c = counters;
        _meter.CreateObservableCounter("raftmq.transport.messages.sent", () => c.MessagesSent, "{message}", "Messages written and flushed to peer connections");
        _meter.CreateObservableCounter("raftmq.transport.messages.received", () => c.MessagesReceived, "{message}", "Messages received from peers and handed to the node");
        _meter.CreateObservableCounter("raftmq.transport.sent", () => c.BytesSent, "By", "Bytes of frames written to peer connections");
        _meter.CreateObservableCounter("raftmq.transport.received", () => c.BytesReceived, "By", "Bytes of frames read from peer connections");
        _meter.CreateObservableCounter("raftmq.transport.drops", () => new Measurement<long>[]
        {
            new(c.SendQueueDrops, new KeyValuePair<string, object?>("reason", "send_queue_full")),
            new(c.InboundDrops, new KeyValuePair<string, object?>("reason", "inbound_queue_full")),
            new(c.OversizedDrops, new KeyValuePair<string, object?>("reason", "oversized")),
            new(c.UnknownPeerDrops, new KeyValuePair<string, object?>("reason", "unknown_peer")),
            new(c.UnsupportedDrops, new KeyValuePair<string, object?>("reason", "unsupported")),
            new(c.SpoofedDrops, new KeyValuePair<string, object?>("reason", "spoofed")),
        }, "{message}", "Messages dropped by the transport, by reason");
        _meter.CreateObservableCounter("raftmq.transport.connects", () => new Measurement<long>[]
        {
            new(c.OutboundConnects, new KeyValuePair<string, object?>("direction", "outbound")),
            new(c.InboundAccepts, new KeyValuePair<string, object?>("direction", "inbound")),
        }, "{connection}", "Peer connections that completed the handshake (each outbound one after the first is a reconnect)");
        _meter.CreateObservableCounter("raftmq.transport.connection.failures", () => new Measurement<long>[]
        {
            new(c.AuthFailures, new KeyValuePair<string, object?>("reason", "auth")),
            new(c.ProtocolErrors, new KeyValuePair<string, object?>("reason", "protocol")),
            new(c.ConnectionsRefused, new KeyValuePair<string, object?>("reason", "refused")),
        }, "{connection}", "Peer connections refused or closed: failed handshake, protocol error, connection bound");
    }

    public void Dispose() => _meter.Dispose();
}

using System.Net;

namespace RaftMQ.Transport;

/// <summary>
/// How logs and messages write a peer's endpoint: <c>HOST:PORT</c>. A peer named by host name is a
/// <see cref="DnsEndPoint"/>, whose own <c>ToString()</c> writes its address family first (<c>Unspecified/HOST:PORT</c>);
/// an <see cref="IPEndPoint"/> is written as it writes itself (an IPv6 address in brackets).
/// </summary>
public static class EndPointText
{
    public static string Of(EndPoint endPoint) => endPoint switch
    {
        DnsEndPoint dns => $"{(dns.Host.Contains(':', StringComparison.Ordinal) ? $"[{dns.Host}]" : dns.Host)}:{dns.Port}",
        _ => endPoint.ToString() ?? "?",
    };
}

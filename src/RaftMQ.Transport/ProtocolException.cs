namespace RaftMQ.Transport;

/// <summary>
/// Bytes from a peer that do not follow the wire protocol: an unknown type or version, a truncated or over-long
/// field, a frame over the size cap. The connection that carried them is closed; the transport keeps serving.
/// </summary>
public sealed class ProtocolException : Exception
{
    public ProtocolException(string message)
        : base(message)
    {
    }

    public ProtocolException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public ProtocolException()
    {
    }
}

namespace RaftMQ.Transport;

/// <summary>
/// The lifetime of one connection: cancelled when the transport stops or when anyone closes the connection, and
/// remembering the first reason given, for the disconnect log line.
/// </summary>
internal sealed class ConnectionScope : IDisposable
{
    private readonly CancellationTokenSource cts;
    private string? reason;

    public ConnectionScope(CancellationToken stopping)
    {
        cts = CancellationTokenSource.CreateLinkedTokenSource(stopping);
    }

    public CancellationToken Token => cts.Token;

    public string Reason => Volatile.Read(ref reason) ?? "transport stopping";

    /// <summary>Closes the connection; safe from any thread, any number of times, even after disposal.</summary>
    public void Close(string why)
    {
        Interlocked.CompareExchange(ref reason, why, null);
        try
        {
            cts.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    public void Dispose() => cts.Dispose();
}

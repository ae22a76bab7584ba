using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using BankTeller.Protocol;

namespace BankTeller.Atm;

/// <summary>Settings of a <see cref="BankClient"/>.</summary>
public sealed record BankClientOptions
{
    /// <summary>How long one command may take in all, retries included.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>How long one attempt waits for its answer before the connection is given up and the command resent.</summary>
    public TimeSpan AttemptTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Longest pause between two attempts when no node could take the command.</summary>
    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromMilliseconds(500);
}

/// <summary>The answer to a credit or debit.</summary>
public sealed record TransferResult(bool Ok, string Account, decimal? Balance, string? Code, string? Error);

/// <summary>No node gave an answer in time. <see cref="OutcomeUnknown"/>: the command may have been applied (once).</summary>
public sealed class BankUnavailableException(string message, bool outcomeUnknown) : Exception(message)
{
    public bool OutcomeUnknown { get; } = outcomeUnknown;
}

/// <summary>
/// A bank client, as the ATM uses it: finds the leader (following redirects, trying each server), holds a session,
/// and numbers its commands. A command whose connection dropped is sent again with the same session and sequence, so
/// the cluster applies it at most once and answers the retry with the first result (thesis §6.3). One command at a
/// time per client.
/// </summary>
public sealed class BankClient : IDisposable
{
    private const int MaxRedirects = 8;

    private readonly IReadOnlyList<Uri> _servers;
    private readonly BankClientOptions _options;
    private readonly HttpClient _http;
    private readonly SemaphoreSlim _oneAtATime = new(1, 1);
    private Uri? _leader;
    private int _next;
    private ulong _session;
    private ulong _sequence;

    public BankClient(IReadOnlyList<Uri> servers, BankClientOptions? options = null, HttpMessageHandler? handler = null)
    {
        if (servers.Count == 0) throw new ArgumentException("at least one server is needed", nameof(servers));
        _servers = servers;
        _options = options ?? new BankClientOptions();
        _http = new HttpClient(handler ?? new SocketsHttpHandler
        {
            AllowAutoRedirect = false, // the client follows redirects itself, to remember the leader
            ConnectTimeout = TimeSpan.FromSeconds(1),
        })
        {
            Timeout = System.Threading.Timeout.InfiniteTimeSpan,
        };
    }

    /// <summary>The open session, or 0.</summary>
    public ulong Session => _session;

    /// <summary>Attempts resent after a dropped connection or an unknown outcome (same session and sequence).</summary>
    public int Resends { get; private set; }

    public Task<TransferResult> CreditAsync(string account, decimal amount, CancellationToken cancellationToken = default) =>
        TransferAsync("credit", account, amount, cancellationToken);

    public Task<TransferResult> DebitAsync(string account, decimal amount, CancellationToken cancellationToken = default) =>
        TransferAsync("debit", account, amount, cancellationToken);

    /// <summary>The balance at a linearizable point (any node answers).</summary>
    public async Task<decimal> BalanceAsync(string account, CancellationToken cancellationToken = default)
    {
        var (status, body) = await SendAsync(HttpMethod.Get, "/accounts/" + Uri.EscapeDataString(account), null, cancellationToken).ConfigureAwait(false);
        if (status == HttpStatusCode.OK) return Deserialize(body, BankJsonContext.Default.BalanceResponse).Balance;
        throw new InvalidOperationException(ErrorOf(body)?.Error ?? $"HTTP {(int)status}");
    }

    /// <summary>Every server's log_stats, or null for one that did not answer.</summary>
    public async Task<IReadOnlyList<(Uri Server, StatsResponse? Stats)>> StatsAsync(CancellationToken cancellationToken = default)
    {
        var list = new List<(Uri, StatsResponse?)>();
        foreach (var server in _servers)
        {
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            cts.CancelAfter(_options.AttemptTimeout);
            try
            {
                list.Add((server, await _http.GetFromJsonAsync(new Uri(server, "/stats"), BankJsonContext.Default.StatsResponse, cts.Token).ConfigureAwait(false)));
            }
            catch (Exception e) when (e is HttpRequestException or OperationCanceledException or JsonException)
            {
                list.Add((server, null));
            }
        }
        return list;
    }

    /// <summary>Opens a session (done by the first transfer if not before).</summary>
    public async Task OpenSessionAsync(CancellationToken cancellationToken = default)
    {
        var (status, body) = await SendAsync(HttpMethod.Post, "/sessions", null, cancellationToken).ConfigureAwait(false);
        if (status != HttpStatusCode.OK) throw new BankUnavailableException(ErrorOf(body)?.Error ?? $"HTTP {(int)status}", false);
        _session = Deserialize(body, BankJsonContext.Default.SessionResponse).Session;
        _sequence = 0;
    }

    /// <summary>Ends the session, so the cluster forgets its results now rather than at expiry. Best effort.</summary>
    public async Task CloseSessionAsync(CancellationToken cancellationToken = default)
    {
        if (_session == 0) return;
        var session = _session;
        _session = 0;
        try
        {
            await SendAsync(HttpMethod.Delete, $"/sessions/{session}", null, cancellationToken).ConfigureAwait(false);
        }
        catch (BankUnavailableException)
        {
            // The session expires on its own.
        }
    }

    private async Task<TransferResult> TransferAsync(string op, string account, decimal amount, CancellationToken cancellationToken)
    {
        await _oneAtATime.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_session == 0) await OpenSessionAsync(cancellationToken).ConfigureAwait(false);
            // A new number for every command, even after a failure: reusing one could return another command's result.
            var sequence = ++_sequence;
            var path = $"/accounts/{Uri.EscapeDataString(account)}/{op}";
            var (status, body, maybeApplied) = await SendTrackedAsync(path, amount, sequence, cancellationToken).ConfigureAwait(false);
            var error = status == HttpStatusCode.OK ? null : ErrorOf(body);
            if (error?.Code == ErrorCodes.UnknownSession && !maybeApplied)
            {
                // The session expired before this command ever reached a log: open a new one and send it there.
                await OpenSessionAsync(cancellationToken).ConfigureAwait(false);
                sequence = ++_sequence;
                (status, body, _) = await SendTrackedAsync(path, amount, sequence, cancellationToken).ConfigureAwait(false);
                error = status == HttpStatusCode.OK ? null : ErrorOf(body);
            }
            if (status == HttpStatusCode.OK)
            {
                var ok = Deserialize(body, BankJsonContext.Default.BalanceResponse);
                return new TransferResult(true, ok.Account, ok.Balance, null, null);
            }
            return new TransferResult(false, account, error?.Balance, error?.Code, error?.Error ?? $"HTTP {(int)status}");
        }
        finally
        {
            _oneAtATime.Release();
        }
    }

    private async Task<(HttpStatusCode Status, string Body, bool MaybeApplied)> SendTrackedAsync(
        string path, decimal amount, ulong sequence, CancellationToken cancellationToken)
    {
        var request = JsonSerializer.Serialize(new TransferRequest(amount, _session, sequence), BankJsonContext.Default.TransferRequest);
        var resendsBefore = Resends;
        var (status, body) = await SendAsync(HttpMethod.Post, path, request, cancellationToken).ConfigureAwait(false);
        return (status, body, Resends > resendsBefore);
    }

    /// <summary>
    /// Sends one request until some node gives a final answer: follows redirects to the leader, tries the next server
    /// when one cannot be reached, and resends (the same bytes) when a connection dropped or the outcome was unknown.
    /// </summary>
    private async Task<(HttpStatusCode Status, string Body)> SendAsync(HttpMethod method, string path, string? json, CancellationToken cancellationToken)
    {
        using var total = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        total.CancelAfter(_options.Timeout);
        var maybeSent = false;
        var redirects = 0;
        var failures = 0;
        string lastError = "no server answered";
        while (true)
        {
            var target = _leader ?? _servers[_next % _servers.Count];
            using var request = new HttpRequestMessage(method, new Uri(target, path));
            if (json is not null) request.Content = new StringContent(json, System.Text.Encoding.UTF8, "application/json");
            using var attempt = CancellationTokenSource.CreateLinkedTokenSource(total.Token);
            attempt.CancelAfter(_options.AttemptTimeout);
            try
            {
                using var response = await _http.SendAsync(request, attempt.Token).ConfigureAwait(false);
                var body = await response.Content.ReadAsStringAsync(attempt.Token).ConfigureAwait(false);
                if (response.StatusCode == HttpStatusCode.TemporaryRedirect && response.Headers.Location is { } location && redirects++ < MaxRedirects)
                {
                    _leader = new Uri(location.GetLeftPart(UriPartial.Authority));
                    continue;
                }
                if (response.StatusCode != HttpStatusCode.ServiceUnavailable)
                {
                    _leader = target;
                    return (response.StatusCode, body);
                }
                var error = ErrorOf(body);
                lastError = $"{target}: {error?.Error ?? "unavailable"}";
                if (error?.Code == ErrorCodes.OutcomeUnknown) maybeSent = true;
            }
            catch (HttpRequestException e) when (e.InnerException is SocketException { SocketErrorCode: SocketError.ConnectionRefused or SocketError.HostUnreachable or SocketError.NetworkUnreachable })
            {
                lastError = $"{target}: {e.Message}"; // never reached the node: nothing was sent
            }
            catch (Exception e) when ((e is HttpRequestException or IOException || (e is OperationCanceledException && !total.IsCancellationRequested)) && json is not null)
            {
                // The connection dropped or the answer did not come: the command may be in the log. Resend it as it is.
                maybeSent = true;
                lastError = $"{target}: {e.Message}";
            }
            catch (Exception e) when (e is HttpRequestException or IOException || (e is OperationCanceledException && !total.IsCancellationRequested))
            {
                lastError = $"{target}: {e.Message}";
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new BankUnavailableException(
                    maybeSent ? $"no answer in time; the command may have been applied (once). Last error: {lastError}" : $"no answer in time: {lastError}",
                    maybeSent);
            }
            if (maybeSent) Resends++;
            _leader = null;
            _next++;
            redirects = 0;
            // Pause once every server was tried, growing up to the bound, so an election has time to finish.
            if (++failures % _servers.Count == 0)
            {
                var pause = TimeSpan.FromMilliseconds(Math.Min(_options.MaxBackoff.TotalMilliseconds, 50 * failures));
                try
                {
                    await Task.Delay(pause, total.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    throw new BankUnavailableException($"no answer in time: {lastError}", maybeSent);
                }
            }
        }
    }

    private static T Deserialize<T>(string body, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type) =>
        JsonSerializer.Deserialize(body, type) ?? throw new InvalidDataException("empty answer");

    private static ErrorResponse? ErrorOf(string body)
    {
        try
        {
            return JsonSerializer.Deserialize(body, BankJsonContext.Default.ErrorResponse);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    public void Dispose()
    {
        _http.Dispose();
        _oneAtATime.Dispose();
    }
}

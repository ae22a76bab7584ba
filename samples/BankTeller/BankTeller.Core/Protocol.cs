using System.Text.Json.Serialization;

namespace BankTeller.Protocol;

// The bank server's HTTP/JSON bodies, shared by the server and the ATM. Amounts are JSON numbers read and written
// as decimal (exactly; System.Text.Json never goes through double for decimal).

/// <summary>Body of POST /accounts/{account}/credit and /debit: the amount and the command's idempotency key.</summary>
public sealed record TransferRequest(
    [property: JsonPropertyName("amount")] decimal Amount,
    [property: JsonPropertyName("session")] ulong Session,
    [property: JsonPropertyName("sequence")] ulong Sequence);

/// <summary>An account and its balance (after the command, for a write).</summary>
public sealed record BalanceResponse(
    [property: JsonPropertyName("account")] string Account,
    [property: JsonPropertyName("balance")] decimal Balance);

/// <summary>Answer of POST /sessions.</summary>
public sealed record SessionResponse([property: JsonPropertyName("session")] ulong Session);

/// <summary>Every error: what happened for people, a stable code for programs, and what else is known.</summary>
public sealed record ErrorResponse(
    [property: JsonPropertyName("error")] string Error,
    [property: JsonPropertyName("code")] string Code,
    [property: JsonPropertyName("balance")] decimal? Balance = null,
    [property: JsonPropertyName("leader_url")] string? LeaderUrl = null);

/// <summary>GET /stats: the bank teller's log_stats — this node's view of the Raft log.</summary>
public sealed record StatsResponse(
    [property: JsonPropertyName("node")] int Node,
    [property: JsonPropertyName("role")] string Role,
    [property: JsonPropertyName("term")] ulong Term,
    [property: JsonPropertyName("leader")] int? Leader,
    [property: JsonPropertyName("leader_url")] string? LeaderUrl,
    [property: JsonPropertyName("commit_index")] ulong CommitIndex,
    [property: JsonPropertyName("applied_index")] ulong AppliedIndex,
    [property: JsonPropertyName("last_index")] ulong LastIndex);

/// <summary>The values of <see cref="ErrorResponse.Code"/>.</summary>
public static class ErrorCodes
{
    /// <summary>409: the debit is larger than the balance; nothing changed.</summary>
    public const string InsufficientFunds = "insufficient-funds";

    /// <summary>400: the request breaks a rule (amount, account name, body); nothing changed.</summary>
    public const string Invalid = "invalid";

    /// <summary>409: a bound was reached (accounts, balance); nothing changed.</summary>
    public const string LimitReached = "limit-reached";

    /// <summary>409: the session expired or never existed; this attempt was not applied, an earlier one may have been.</summary>
    public const string UnknownSession = "unknown-session";

    /// <summary>409: the sequence is older than the session remembers; this attempt was not applied.</summary>
    public const string StaleSequence = "stale-sequence";

    /// <summary>307: this node is not the leader; <see cref="ErrorResponse.LeaderUrl"/> (and Location) name it.</summary>
    public const string NotLeader = "not-leader";

    /// <summary>503: no leader was known before the deadline; not applied. Retry.</summary>
    public const string NoLeader = "no-leader";

    /// <summary>503: proposed, but the commit was not seen in time. Retry with the same key: it is applied at most once.</summary>
    public const string OutcomeUnknown = "outcome-unknown";

    /// <summary>503: the node is over a bound or stopping; not applied. Retry.</summary>
    public const string Unavailable = "unavailable";
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(TransferRequest))]
[JsonSerializable(typeof(BalanceResponse))]
[JsonSerializable(typeof(SessionResponse))]
[JsonSerializable(typeof(ErrorResponse))]
[JsonSerializable(typeof(StatsResponse))]
public sealed partial class BankJsonContext : JsonSerializerContext;

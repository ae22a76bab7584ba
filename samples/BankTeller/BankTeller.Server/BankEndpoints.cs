using System.Globalization;
using System.Text.Json;
using BankTeller.Protocol;
using RaftMQ.Hosting;
using RaftMQ.Raft;
using RaftMQ.StateMachine.Sessions;

namespace BankTeller.Server;

/// <summary>The bank's HTTP API; see the sample's README for the table of routes and answers.</summary>
public static class BankEndpoints
{
    /// <summary>Largest request body; a transfer is well under a hundred bytes.</summary>
    public const int MaxRequestBodyBytes = 4096;

    public static void Map(WebApplication app, BankNode node)
    {
        app.MapPost("/sessions", (HttpContext ctx) => OpenSession(ctx, node));
        app.MapDelete("/sessions/{id}", (HttpContext ctx, string id) => CloseSession(ctx, node, id));
        app.MapPost("/accounts/{account}/credit", (HttpContext ctx, string account) => Transfer(ctx, node, account, BankOp.Credit));
        app.MapPost("/accounts/{account}/debit", (HttpContext ctx, string account) => Transfer(ctx, node, account, BankOp.Debit));
        app.MapGet("/accounts/{account}", (HttpContext ctx, string account) => GetBalance(ctx, node, account));
        app.MapGet("/stats", (HttpContext ctx) => GetStats(ctx, node));
    }

    private static async Task OpenSession(HttpContext ctx, BankNode node)
    {
        using var deadline = node.RequestDeadline(ctx.RequestAborted);
        var outcome = await node.WriteAsync(SessionCommand.EncodeRegister, deadline.Token);
        if (outcome is WriteOutcome.Applied { Result: SessionRegistered r })
            await Write(ctx, StatusCodes.Status200OK, new SessionResponse(r.SessionId), BankJsonContext.Default.SessionResponse);
        else await WriteOutcomeAsync(ctx, node, outcome);
    }

    private static async Task CloseSession(HttpContext ctx, BankNode node, string id)
    {
        if (!ulong.TryParse(id, NumberStyles.None, CultureInfo.InvariantCulture, out var session) || session == 0)
        {
            await WriteError(ctx, StatusCodes.Status400BadRequest, new ErrorResponse("the session id must be a positive integer", ErrorCodes.Invalid));
            return;
        }
        using var deadline = node.RequestDeadline(ctx.RequestAborted);
        var outcome = await node.WriteAsync(now => SessionCommand.EncodeClose(now, session), deadline.Token);
        if (outcome is WriteOutcome.Applied { Result: SessionClosed }) ctx.Response.StatusCode = StatusCodes.Status204NoContent;
        else await WriteOutcomeAsync(ctx, node, outcome);
    }

    private static async Task Transfer(HttpContext ctx, BankNode node, string account, BankOp op)
    {
        if (BankStateMachine.ValidateAccount(account, node.Bank.Limits) is { } badAccount)
        {
            await WriteError(ctx, StatusCodes.Status400BadRequest, new ErrorResponse(badAccount, ErrorCodes.Invalid));
            return;
        }
        TransferRequest? request;
        try
        {
            request = await JsonSerializer.DeserializeAsync(ctx.Request.Body, BankJsonContext.Default.TransferRequest, ctx.RequestAborted);
        }
        catch (Exception e) when (e is JsonException or BadHttpRequestException)
        {
            await WriteError(ctx, StatusCodes.Status400BadRequest, new ErrorResponse(
                "the body must be {\"amount\": N, \"session\": ID, \"sequence\": N} (at most " + MaxRequestBodyBytes + " bytes): " + e.Message, ErrorCodes.Invalid));
            return;
        }
        if (request is null || request.Session == 0)
        {
            await WriteError(ctx, StatusCodes.Status400BadRequest, new ErrorResponse(
                "a write needs its idempotency key: \"session\" (from POST /sessions) and \"sequence\"", ErrorCodes.Invalid));
            return;
        }
        var command = new BankCommand(op, account, request.Amount).Encode();
        using var deadline = node.RequestDeadline(ctx.RequestAborted);
        // The client acknowledges one command at a time: every lower sequence has its answer.
        var outcome = await node.WriteAsync(
            now => SessionCommand.EncodeCommand(now, request.Session, request.Sequence, request.Sequence, command), deadline.Token);
        await WriteOutcomeAsync(ctx, node, outcome);
    }

    private static async Task GetBalance(HttpContext ctx, BankNode node, string account)
    {
        if (BankStateMachine.ValidateAccount(account, node.Bank.Limits) is { } badAccount)
        {
            await WriteError(ctx, StatusCodes.Status400BadRequest, new ErrorResponse(badAccount, ErrorCodes.Invalid));
            return;
        }
        using var deadline = node.RequestDeadline(ctx.RequestAborted);
        var (ok, balance) = await node.ReadAsync(bank => bank.Balance(account), deadline.Token);
        if (ok) await Write(ctx, StatusCodes.Status200OK, new BalanceResponse(account, balance), BankJsonContext.Default.BalanceResponse);
        else await WriteError(ctx, StatusCodes.Status503ServiceUnavailable, new ErrorResponse("no leader confirmed the read in time", ErrorCodes.NoLeader));
    }

    private static Task GetStats(HttpContext ctx, BankNode node)
    {
        var index = node.Settings.Index;
        if (node.Runtime?.Status is not { } s)
            return Write(ctx, StatusCodes.Status200OK, new StatsResponse(index, "Starting", 0, null, null, 0, 0, 0), BankJsonContext.Default.StatsResponse);
        int? leader = s.Leader == 0 ? null : ClusterConfig.IndexOf(s.Leader);
        var url = s.Leader == 0 ? null : node.HttpUri(s.Leader).ToString().TrimEnd('/');
        return Write(ctx, StatusCodes.Status200OK,
            new StatsResponse(index, s.Role.ToString(), s.Term, leader, url, s.CommitIndex, s.AppliedIndex, s.LastIndex),
            BankJsonContext.Default.StatsResponse);
    }

    /// <summary>Answers a write: its result, or why there is none.</summary>
    private static Task WriteOutcomeAsync(HttpContext ctx, BankNode node, WriteOutcome outcome)
    {
        switch (outcome)
        {
            case WriteOutcome.Applied { Result: BankResult r }:
                return r.Status switch
                {
                    BankStatus.Ok => Write(ctx, StatusCodes.Status200OK, new BalanceResponse(r.Account, r.Balance), BankJsonContext.Default.BalanceResponse),
                    BankStatus.InsufficientFunds => WriteError(ctx, StatusCodes.Status409Conflict,
                        new ErrorResponse($"insufficient funds: {r.Account} holds {r.Balance.ToString(CultureInfo.InvariantCulture)}", ErrorCodes.InsufficientFunds, r.Balance)),
                    BankStatus.LimitReached => WriteError(ctx, StatusCodes.Status409Conflict,
                        new ErrorResponse("refused: a bank limit (accounts or largest balance) would be exceeded", ErrorCodes.LimitReached, r.Balance)),
                    BankStatus.InvalidAmount => WriteError(ctx, StatusCodes.Status400BadRequest,
                        new ErrorResponse($"invalid amount: positive, at most {node.Bank.Limits.MaxDecimalPlaces} decimal places, at most {node.Bank.Limits.MaxBalance}", ErrorCodes.Invalid)),
                    _ => WriteError(ctx, StatusCodes.Status400BadRequest, new ErrorResponse("invalid command", ErrorCodes.Invalid)),
                };
            case WriteOutcome.Applied { Result: SessionRejected rejected }:
                return WriteError(ctx, StatusCodes.Status409Conflict, new ErrorResponse(
                    rejected.ToString(),
                    rejected.Reason == SessionRejection.UnknownSession ? ErrorCodes.UnknownSession : ErrorCodes.StaleSequence));
            case WriteOutcome.Redirect redirect:
                var leaderUrl = node.HttpUri(redirect.Leader).ToString().TrimEnd('/');
                ctx.Response.Headers.Location = leaderUrl + ctx.Request.Path + ctx.Request.QueryString;
                return WriteError(ctx, StatusCodes.Status307TemporaryRedirect, new ErrorResponse(
                    $"not the leader; node {ClusterConfig.IndexOf(redirect.Leader)} is", ErrorCodes.NotLeader, LeaderUrl: leaderUrl));
            case WriteOutcome.Unavailable u:
                ctx.Response.Headers.RetryAfter = "1";
                return WriteError(ctx, StatusCodes.Status503ServiceUnavailable, new ErrorResponse(u.Error, u.Code));
            default:
                return WriteError(ctx, StatusCodes.Status500InternalServerError, new ErrorResponse("unexpected result", ErrorCodes.Unavailable));
        }
    }

    private static Task WriteError(HttpContext ctx, int status, ErrorResponse error) =>
        Write(ctx, status, error, BankJsonContext.Default.ErrorResponse);

    private static Task Write<T>(HttpContext ctx, int status, T body, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type)
    {
        ctx.Response.StatusCode = status;
        return ctx.Response.WriteAsJsonAsync(body, type, cancellationToken: ctx.RequestAborted);
    }
}

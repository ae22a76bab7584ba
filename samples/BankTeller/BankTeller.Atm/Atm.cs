using System.Globalization;

namespace BankTeller.Atm;

/// <summary>The ATM's commands over a <see cref="BankClient"/>: parse, run, print one line, return the exit status.</summary>
public sealed class Atm(BankClient client, TextWriter output, TextWriter errors)
{
    public const int Done = 0;
    public const int Refused = 1;
    public const int UsageError = 2;
    public const int NoAnswer = 3;

    /// <summary>Runs one command (its words); prints the answer and returns the exit status.</summary>
    public async Task<int> RunAsync(IReadOnlyList<string> words)
    {
        try
        {
            switch (words)
            {
                case ["credit" or "debit", var account, var amountText]:
                    if (!TryParseAmount(amountText, out var amount))
                    {
                        await errors.WriteLineAsync($"error: '{amountText}' is not an amount (a decimal number like 10 or 12.50)");
                        return UsageError;
                    }
                    var result = words[0] == "credit" ? await client.CreditAsync(account, amount) : await client.DebitAsync(account, amount);
                    if (result.Ok)
                    {
                        await output.WriteLineAsync($"ok: {result.Account} balance {Format(result.Balance!.Value)}");
                        return Done;
                    }
                    await output.WriteLineAsync($"refused: {result.Error}");
                    return Refused;
                case ["balance" or "query", var name]:
                    await output.WriteLineAsync($"{name} balance {Format(await client.BalanceAsync(name))}");
                    return Done;
                case ["stats" or "log_stats"]:
                    foreach (var (server, s) in await client.StatsAsync())
                    {
                        await output.WriteLineAsync(s is null
                            ? $"{server}: no answer"
                            : $"node {s.Node} {server}: {s.Role} term {s.Term} leader {(s.Leader?.ToString(CultureInfo.InvariantCulture) ?? "none")} commit_index {s.CommitIndex} applied_index {s.AppliedIndex} last_log_index {s.LastIndex}");
                    }
                    return Done;
                default:
                    await errors.WriteLineAsync($"error: unknown command '{string.Join(' ', words)}' (try help)");
                    return UsageError;
            }
        }
        catch (BankUnavailableException e)
        {
            await output.WriteLineAsync($"unavailable: {e.Message}");
            return NoAnswer;
        }
        catch (InvalidOperationException e)
        {
            await output.WriteLineAsync($"refused: {e.Message}");
            return Refused;
        }
    }

    public static bool TryParseAmount(string text, out decimal amount) =>
        decimal.TryParse(text, NumberStyles.AllowDecimalPoint | NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out amount);

    public static string Format(decimal value) => value.ToString("0.00##", CultureInfo.InvariantCulture);
}

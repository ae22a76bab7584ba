using System.Globalization;
using BankTeller.Atm;
using RaftMQ.Hosting;

// The ATM: one-shot commands (`atm credit alice 10`) or, with no command, an interactive prompt.
const string Usage = """
    usage: atm [--servers URL,URL,...] [--config CLUSTER.json] [--timeout-ms N] [COMMAND ...]

      --servers URLS     the bank servers' HTTP addresses (default: $BANK_SERVERS, else
                         http://127.0.0.1:7001,http://127.0.0.1:7002,http://127.0.0.1:7003)
      --config FILE      take the servers from a cluster config file instead
      --timeout-ms N     how long one command may take, retries included (default 15000)

    commands (without one, the ATM reads them from a prompt):
      credit ACCOUNT AMOUNT    add money (AMOUNT > 0, at most 2 decimal places)
      debit ACCOUNT AMOUNT     take money; refused if the balance would go below zero
      balance ACCOUNT          the balance, read at a linearizable point (alias: query)
      stats                    each server's term, commit index and last log index (alias: log_stats)
      help, quit

    exit status: 0 done, 1 refused by the bank, 2 usage error, 3 no answer (the outcome may be unknown)
    """;

var servers = Environment.GetEnvironmentVariable("BANK_SERVERS") ?? "http://127.0.0.1:7001,http://127.0.0.1:7002,http://127.0.0.1:7003";
string? configPath = null;
var timeoutMs = 15_000;
var command = new List<string>();
for (int i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--servers" when i + 1 < args.Length:
            servers = args[++i];
            break;
        case "--config" when i + 1 < args.Length:
            configPath = args[++i];
            break;
        case "--timeout-ms" when i + 1 < args.Length && int.TryParse(args[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out var t) && t > 0:
            timeoutMs = t;
            i++;
            break;
        case "--help" or "-h":
            Console.Out.WriteLine(Usage);
            return 0;
        default:
            if (args[i].StartsWith("--", StringComparison.Ordinal))
            {
                Console.Error.WriteLine($"atm: bad option {args[i]}\n{Usage}");
                return 2;
            }
            command.Add(args[i]);
            break;
    }
}

List<Uri> urls;
try
{
    urls = configPath is not null
        ? [.. ClusterConfig.Load(configPath).Addresses.Select(a => a.HttpUri)]
        : [.. servers.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(s => new Uri(s))];
}
catch (Exception e) when (e is ConfigException or UriFormatException)
{
    Console.Error.WriteLine($"atm: {e.Message}");
    return 2;
}
if (urls.Count == 0)
{
    Console.Error.WriteLine("atm: no servers given");
    return 2;
}

using var client = new BankClient(urls, new BankClientOptions { Timeout = TimeSpan.FromMilliseconds(timeoutMs) });
var atm = new Atm(client, Console.Out, Console.Error);
if (command.Count > 0)
{
    var code = await atm.RunAsync(command);
    await client.CloseSessionAsync();
    return code;
}

Console.Out.WriteLine("Bank teller ATM. Commands: credit ACCOUNT AMOUNT, debit ACCOUNT AMOUNT, balance ACCOUNT, stats, help, quit.");
while (true)
{
    Console.Out.Write("atm> ");
    var line = Console.In.ReadLine();
    if (line is null) break;
    var words = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
    if (words.Length == 0) continue;
    if (words[0] is "quit" or "exit") break;
    if (words[0] == "help")
    {
        Console.Out.WriteLine(Usage);
        continue;
    }
    await atm.RunAsync(words);
}
await client.CloseSessionAsync();
return 0;

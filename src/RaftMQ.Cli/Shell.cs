using Spectre.Console;

namespace RaftMQ.Cli;

/// <summary>
/// <c>raftmq shell</c>: reads command lines and runs each through the same command tree as the command line, so
/// every command, option and error message is the same. Ctrl-C cancels the running command, not the shell.
/// </summary>
public static class Shell
{
    /// <summary>Most lines kept in the history file.</summary>
    public const int MaxHistory = 1000;

    private static readonly string[] Words =
    [
        "cluster", "up", "down", "status", "kill", "start", "topic", "create", "list", "publish", "consume", "bench", "pop", "demo",
        "help", "history", "exit", "quit", "--count", "--follow", "--clients", "--size", "--duration", "--json", "--watch", "--nodes",
        "--detach", "--topic", "--urls", "--data", "--timeout", "--api-key", "--ca", "--tls", "cert", "--help",
        "configure", "stats", "delete", "receive", "ack", "dlq", "redrive", "--group", "--max", "--lease-ms", "--max-deliveries",
    ];

    public static async Task<int> RunAsync(string? urls, string? data, string? apiKey = null, string? ca = null)
    {
        var historyPath = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".raftmq", "history");
        var history = LoadHistory(historyPath);
        var editor = new LineEditor(history, Words);
        var interactive = editor.IsInteractive;
        if (interactive)
        {
            AnsiConsole.MarkupLine("[bold]RaftMQ shell[/]: every command of [blue]raftmq[/] without the prefix. "
                + "[grey]help[/] lists them, [grey]COMMAND --help[/] explains one, [grey]exit[/] leaves; Ctrl-C stops a running command.");
        }
        // A script (standard input redirected) exits with the code of the last command that failed, 0 if none did.
        var failed = ExitCodes.Ok;
        while (true)
        {
            var line = editor.ReadLine("raftmq> ");
            if (line is null) break;
            line = line.Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            history.Add(line);
            if (history.Count > MaxHistory) history.RemoveRange(0, history.Count - MaxHistory);
            if (!TrySplit(line, out var args))
            {
                Cli.Error("unterminated quote: close it with a matching \"");
                failed = ExitCodes.Usage;
                continue;
            }
            if (args[0] == "raftmq") args.RemoveAt(0);
            if (args.Count == 0) continue;
            switch (args[0])
            {
                case "exit" or "quit":
                    SaveHistory(historyPath, history);
                    return interactive ? ExitCodes.Ok : failed;
                case "help" or "?":
                    args = args.Count > 1 ? [.. args.Skip(1), "--help"] : ["--help"];
                    if (args.Count == 1)
                        Console.Out.WriteLine("In the shell: `history` lists earlier lines, Up/Down recall them, Tab completes words, `exit` leaves.\n");
                    break;
                case "history":
                    for (int i = 0; i < history.Count; i++) Console.Out.WriteLine($"{i + 1,5}  {history[i]}");
                    continue;
                case "shell":
                    Cli.Error("already in the shell");
                    failed = ExitCodes.Usage;
                    continue;
            }
            // The shell's own options go to every command that does not give its own (by any of the option's names).
            if (urls is not null && !Gives(args, "--urls", "--url")) args.AddRange(["--urls", urls]);
            if (data is not null && !Gives(args, "--data")) args.AddRange(["--data", data]);
            if (apiKey is not null && !Gives(args, "--api-key")) args.AddRange(["--api-key", apiKey]);
            if (ca is not null && !Gives(args, "--ca")) args.AddRange(["--ca", ca]);
            var last = await Cli.RunAsync(args, Signals.Renew(), inShell: true).ConfigureAwait(false);
            if (last != ExitCodes.Ok && interactive) AnsiConsole.MarkupLine($"[grey](exit code {last})[/]");
            if (last != ExitCodes.Ok) failed = last;
        }
        SaveHistory(historyPath, history);
        return interactive ? ExitCodes.Ok : failed;
    }

    /// <summary>Whether <paramref name="args"/> give an option by one of <paramref name="names"/> (<c>--urls X</c>, <c>--urls=X</c> or <c>--urls:X</c>).</summary>
    internal static bool Gives(List<string> args, params string[] names) =>
        args.Any(a => names.Any(n => a == n || a.StartsWith(n + "=", StringComparison.Ordinal) || a.StartsWith(n + ":", StringComparison.Ordinal)));

    /// <summary>
    /// Splits a shell line into words (docs/cli.md, "Shell"): whitespace separates words outside double quotes; a
    /// double-quoted part keeps its whitespace and joins the text around it (<c>a"b c"d</c> is one word, <c>ab cd</c>;
    /// <c>""</c> is an empty word); <c>\"</c> is a literal <c>"</c> and <c>\\</c> a literal <c>\</c>, in quotes or
    /// not, and any other backslash is itself. Single quotes are ordinary characters. False, with no words, when a
    /// double quote opens without closing: the one place that decides, so the check and the words cannot disagree.
    /// </summary>
    internal static bool TrySplit(string line, out List<string> words)
    {
        words = [];
        var word = new System.Text.StringBuilder();
        bool inWord = false, quoted = false;
        for (int i = 0; i < line.Length; i++)
        {
            var c = line[i];
            if (c == '\\' && i + 1 < line.Length && line[i + 1] is '"' or '\\')
            {
                word.Append(line[++i]);
                inWord = true;
            }
            else if (c == '"')
            {
                quoted = !quoted;
                inWord = true;
            }
            else if (!quoted && char.IsWhiteSpace(c))
            {
                if (inWord) words.Add(word.ToString());
                word.Clear();
                inWord = false;
            }
            else
            {
                word.Append(c);
                inWord = true;
            }
        }
        if (quoted)
        {
            words = [];
            return false;
        }
        if (inWord) words.Add(word.ToString());
        return true;
    }

    private static List<string> LoadHistory(string path)
    {
        try
        {
            return File.Exists(path) ? [.. File.ReadLines(path).TakeLast(MaxHistory)] : [];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }

    private static void SaveHistory(string path, List<string> history)
    {
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllLines(path, history.TakeLast(MaxHistory));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // History is a convenience; a read-only home must not break the shell.
        }
    }
}

using System.Text;

namespace RaftMQ.Cli;

/// <summary>
/// A small line editor for the shell on a terminal: cursor movement, Home/End, Ctrl-A/E/U/K/W, Up/Down through the
/// history, Tab completion. When input or output is not a terminal it reads plain lines.
/// </summary>
internal sealed class LineEditor(List<string> history, IReadOnlyList<string> words)
{
    /// <summary>Longest line accepted; beyond it keys are ignored (a pasted flood cannot grow it without bound).</summary>
    public const int MaxLineLength = 1 << 16;

    public bool IsInteractive { get; } = !Console.IsInputRedirected && !Console.IsOutputRedirected;

    /// <summary>The next line, or null at the end of input (Ctrl-D on an empty line).</summary>
    public string? ReadLine(string prompt)
    {
        if (!IsInteractive) return Console.In.ReadLine();
        Console.Write(prompt);
        var line = new StringBuilder();
        var pos = 0;
        var recalled = history.Count;
        var pending = "";
        var treatControlC = Console.TreatControlCAsInput;
        Console.TreatControlCAsInput = true;
        try
        {
            while (true)
            {
                var key = Console.ReadKey(intercept: true);
                var ctrl = (key.Modifiers & ConsoleModifiers.Control) != 0;
                switch (key.Key)
                {
                    case ConsoleKey.Enter:
                        Console.WriteLine();
                        return line.ToString();
                    case ConsoleKey.C when ctrl:
                        Console.WriteLine("^C");
                        line.Clear();
                        pos = 0;
                        Console.Write(prompt);
                        continue;
                    case ConsoleKey.D when ctrl:
                        if (line.Length == 0)
                        {
                            Console.WriteLine();
                            return null;
                        }
                        if (pos < line.Length) line.Remove(pos, 1);
                        break;
                    case ConsoleKey.Backspace:
                        if (pos > 0) line.Remove(--pos, 1);
                        break;
                    case ConsoleKey.Delete:
                        if (pos < line.Length) line.Remove(pos, 1);
                        break;
                    case ConsoleKey.LeftArrow:
                    case ConsoleKey.B when ctrl:
                        pos = Math.Max(0, pos - 1);
                        break;
                    case ConsoleKey.RightArrow:
                    case ConsoleKey.F when ctrl:
                        pos = Math.Min(line.Length, pos + 1);
                        break;
                    case ConsoleKey.Home:
                    case ConsoleKey.A when ctrl:
                        pos = 0;
                        break;
                    case ConsoleKey.End:
                    case ConsoleKey.E when ctrl:
                        pos = line.Length;
                        break;
                    case ConsoleKey.U when ctrl:
                        line.Remove(0, pos);
                        pos = 0;
                        break;
                    case ConsoleKey.K when ctrl:
                        line.Remove(pos, line.Length - pos);
                        break;
                    case ConsoleKey.W when ctrl:
                        var start = pos;
                        while (start > 0 && line[start - 1] == ' ') start--;
                        while (start > 0 && line[start - 1] != ' ') start--;
                        line.Remove(start, pos - start);
                        pos = start;
                        break;
                    case ConsoleKey.UpArrow:
                    case ConsoleKey.P when ctrl:
                        if (recalled > 0)
                        {
                            if (recalled == history.Count) pending = line.ToString();
                            recalled--;
                            line.Clear().Append(history[recalled]);
                            pos = line.Length;
                        }
                        break;
                    case ConsoleKey.DownArrow:
                    case ConsoleKey.N when ctrl:
                        if (recalled < history.Count)
                        {
                            recalled++;
                            line.Clear().Append(recalled == history.Count ? pending : history[recalled]);
                            pos = line.Length;
                        }
                        break;
                    case ConsoleKey.Tab:
                        pos = Complete(line, pos, prompt);
                        break;
                    default:
                        if (!char.IsControl(key.KeyChar) && line.Length < MaxLineLength) line.Insert(pos++, key.KeyChar);
                        break;
                }
                Redraw(prompt, line, pos);
            }
        }
        finally
        {
            Console.TreatControlCAsInput = treatControlC;
        }
    }

    private int Complete(StringBuilder line, int pos, string prompt)
    {
        var start = pos;
        while (start > 0 && line[start - 1] != ' ') start--;
        var prefix = line.ToString(start, pos - start);
        var matches = words.Where(w => w.StartsWith(prefix, StringComparison.Ordinal)).ToList();
        if (matches.Count == 1)
        {
            var rest = matches[0][prefix.Length..] + " ";
            line.Insert(pos, rest);
            return pos + rest.Length;
        }
        if (matches.Count > 1)
        {
            Console.WriteLine();
            Console.WriteLine(string.Join("  ", matches));
            Console.Write(prompt);
        }
        return pos;
    }

    private static void Redraw(string prompt, StringBuilder line, int pos)
    {
        // Back to column 0, the prompt and line, clear the rest, then put the cursor where it belongs.
        Console.Write($"\r{prompt}{line}\u001b[K");
        if (line.Length > pos) Console.Write($"\u001b[{line.Length - pos}D");
    }
}

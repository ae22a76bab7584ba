using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;

namespace RaftMQ.Hosting;

/// <summary>
/// A node's log line, one per event: <c>HH:mm:ss.fff level: Category[EventId] message exception</c>, newlines in the
/// message and exception replaced by spaces (the layout of the framework's simple console formatter in single-line
/// mode). Used through <see cref="NodeWebApplication.CreateLoggerFactory"/>, which sets console logging up without a
/// container or configuration binding: that setup alone cost about 60 ms of a node's start (docs/benchmarks.md).
/// </summary>
public sealed class NodeLogFormatter() : ConsoleFormatter(FormatterName)
{
    public const string FormatterName = "raftmq-node";

    public override void Write<TState>(in LogEntry<TState> logEntry, IExternalScopeProvider? scopeProvider, TextWriter textWriter)
    {
        var message = logEntry.Formatter(logEntry.State, logEntry.Exception);
        if (message is null && logEntry.Exception is null) return;
        textWriter.Write(DateTimeOffset.Now.ToString("HH:mm:ss.fff ", System.Globalization.CultureInfo.InvariantCulture));
        textWriter.Write(LevelName(logEntry.LogLevel));
        textWriter.Write(": ");
        textWriter.Write(logEntry.Category);
        textWriter.Write('[');
        textWriter.Write(logEntry.EventId.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
        textWriter.Write(']');
        WriteOnOneLine(textWriter, message);
        WriteOnOneLine(textWriter, logEntry.Exception?.ToString());
        textWriter.Write(Environment.NewLine);
    }

    /// <summary>The framework's four-letter level names, so log readers see the usual lines.</summary>
    public static string LevelName(LogLevel level) => level switch
    {
        LogLevel.Trace => "trce",
        LogLevel.Debug => "dbug",
        LogLevel.Information => "info",
        LogLevel.Warning => "warn",
        LogLevel.Error => "fail",
        LogLevel.Critical => "crit",
        _ => level.ToString(),
    };

    private static void WriteOnOneLine(TextWriter textWriter, string? text)
    {
        if (string.IsNullOrEmpty(text)) return;
        textWriter.Write(' ');
        textWriter.Write(text.Replace(Environment.NewLine, " ", StringComparison.Ordinal));
    }

    /// <summary>Fixed console options, for <see cref="ConsoleLoggerProvider"/>: the named formatter (this one by default), stdout, the default queue bound.</summary>
    internal sealed class FixedOptions(string formatterName = FormatterName) : IOptionsMonitor<ConsoleLoggerOptions>
    {
        public ConsoleLoggerOptions CurrentValue { get; } = new() { FormatterName = formatterName };

        public ConsoleLoggerOptions Get(string? name) => CurrentValue;

        public IDisposable? OnChange(Action<ConsoleLoggerOptions, string?> listener) => null;
    }
}

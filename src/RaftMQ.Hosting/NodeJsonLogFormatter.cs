using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Console;

namespace RaftMQ.Hosting;

/// <summary>How a node writes its log lines (<c>--log-format</c>).</summary>
public enum LogFormat
{
    /// <summary>One line per event: time, level, category, message (<see cref="NodeLogFormatter"/>).</summary>
    Text,

    /// <summary>One JSON object per line, with the message's named values as fields (<see cref="NodeJsonLogFormatter"/>).</summary>
    Json,
}

/// <summary>
/// A node's log event as one JSON object on one line, for log collectors:
/// <c>{"timestamp": ISO 8601 UTC, "level": "Information", "category", "event_id", "message", "state": {named values of
/// the message template}, "exception"}</c> (no <c>exception</c> when there is none).
/// </summary>
public sealed class NodeJsonLogFormatter() : ConsoleFormatter(FormatterName)
{
    public const string FormatterName = "raftmq-node-json";

    public override void Write<TState>(in LogEntry<TState> logEntry, IExternalScopeProvider? scopeProvider, TextWriter textWriter)
    {
        ArgumentNullException.ThrowIfNull(textWriter);
        var message = logEntry.Formatter(logEntry.State, logEntry.Exception);
        if (message is null && logEntry.Exception is null) return;
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("timestamp", DateTimeOffset.UtcNow.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture));
            json.WriteString("level", logEntry.LogLevel.ToString());
            json.WriteString("category", logEntry.Category);
            json.WriteNumber("event_id", logEntry.EventId.Id);
            json.WriteString("message", message);
            if (logEntry.State is IReadOnlyList<KeyValuePair<string, object?>> values)
            {
                json.WriteStartObject("state");
                foreach (var (key, value) in values)
                {
                    if (key == "{OriginalFormat}") continue;
                    WriteValue(json, key, value);
                }
                json.WriteEndObject();
            }
            if (logEntry.Exception is { } e) json.WriteString("exception", e.ToString());
            json.WriteEndObject();
        }
        textWriter.Write(Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length));
        textWriter.Write(Environment.NewLine);
    }

    private static void WriteValue(Utf8JsonWriter json, string key, object? value)
    {
        switch (value)
        {
            case null:
                json.WriteNull(key);
                break;
            case bool b:
                json.WriteBoolean(key, b);
                break;
            case int or long or uint or ulong or short or ushort or byte or sbyte:
                json.WriteNumber(key, Convert.ToDecimal(value, CultureInfo.InvariantCulture));
                break;
            case double d when double.IsFinite(d):
                json.WriteNumber(key, d);
                break;
            default:
                json.WriteString(key, Convert.ToString(value, CultureInfo.InvariantCulture));
                break;
        }
    }
}

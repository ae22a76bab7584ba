using System.Text.Json;

namespace RaftMQ.Client;

/// <summary>
/// A message to publish with <see cref="RaftMQClient.PublishMessagesAsync"/>: any bytes, and optional headers (name:
/// 1 to 64 HTTP token characters, value: text up to 1 KiB as UTF-8; at most 16, 4 KiB together — the cluster checks).
/// </summary>
public sealed record OutgoingMessage(ReadOnlyMemory<byte> Payload, IReadOnlyList<KeyValuePair<string, string>>? Headers = null)
{
    /// <summary>
    /// The message id for <see cref="RaftMQClient.PublishIdempotentAsync"/> (1 to 128 bytes of UTF-8): a repeat of an
    /// id the topic remembers (its dedup window, 1 hour by default) is not stored again.
    /// </summary>
    public string? Id { get; init; }

    /// <summary>
    /// For <see cref="RaftMQClient.PublishToTopicAsync"/>: how long after its publish time the message may first be
    /// delivered (whole milliseconds, up to 24 hours); null or zero for at once.
    /// </summary>
    public TimeSpan? Delay { get; init; }

    /// <summary>A message whose payload is <paramref name="text"/> as UTF-8.</summary>
    public static OutgoingMessage FromText(string text, IReadOnlyList<KeyValuePair<string, string>>? headers = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        return new OutgoingMessage(System.Text.Encoding.UTF8.GetBytes(text), headers);
    }
}

/// <summary>
/// A message popped with <see cref="RaftMQClient.PopMessagesAsync"/>: its <paramref name="Offset"/> in the topic
/// (0, 1, 2, ... in publish order), the publish time the leader stamped (<paramref name="TimestampMs"/>, Unix
/// milliseconds; 0 for a message published through the RRMQ or <c>/v1/messages</c> endpoints, which carry none), its
/// headers in the order they were published, and its payload.
/// </summary>
public sealed record ReceivedMessage(ulong Offset, long TimestampMs, IReadOnlyList<KeyValuePair<string, string>> Headers, byte[] Payload)
{
    /// <summary>The publish time, or null for a message that carries none.</summary>
    public DateTimeOffset? Timestamp => TimestampMs == 0 ? null : DateTimeOffset.FromUnixTimeMilliseconds(TimestampMs);

    /// <summary>The payload as UTF-8 text (invalid sequences become U+FFFD).</summary>
    public string Text => System.Text.Encoding.UTF8.GetString(Payload);
}

/// <summary>What <see cref="RaftMQClient.PublishMessagesAsync"/> published: how many, and the first one's offset.</summary>
public sealed record PublishResult(int Published, ulong FirstOffset);

/// <summary>The JSON of the binary message endpoints (docs/rest-api.md).</summary>
internal static class MessageJson
{
    public static byte[] PublishBody(IReadOnlyList<OutgoingMessage> messages)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteStartArray("messages");
            for (int i = 0; i < messages.Count; i++)
            {
                var m = messages[i] ?? throw new ArgumentException($"message {i} is null", nameof(messages));
                json.WriteStartObject();
                json.WriteBase64String("payload_base64", m.Payload.Span);
                if (m.Headers is { Count: > 0 } headers)
                {
                    json.WriteStartObject("headers");
                    foreach (var (name, value) in headers)
                    {
                        ArgumentNullException.ThrowIfNull(name);
                        ArgumentNullException.ThrowIfNull(value);
                        json.WriteString(name, value);
                    }
                    json.WriteEndObject();
                }
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteEndObject();
        }
        return buffer.ToArray();
    }

    /// <summary>The messages of a pop answer; <see cref="HttpRequestException"/> when the answer is not one.</summary>
    public static IReadOnlyList<ReceivedMessage> Popped(JsonElement messages)
    {
        try
        {
            var list = new List<ReceivedMessage>(messages.GetArrayLength());
            foreach (var m in messages.EnumerateArray())
            {
                var headers = new List<KeyValuePair<string, string>>();
                foreach (var h in m.GetProperty("headers").EnumerateObject()) headers.Add(new(h.Name, h.Value.GetString()!));
                list.Add(new ReceivedMessage(
                    m.GetProperty("offset").GetUInt64(), m.GetProperty("timestamp_ms").GetInt64(), headers,
                    m.GetProperty("payload_base64").GetBytesFromBase64()));
            }
            return list;
        }
        catch (Exception e) when (e is InvalidOperationException or KeyNotFoundException or FormatException)
        {
            throw new HttpRequestException($"the node's pop answer is not a list of messages: {e.Message}", e);
        }
    }
}

using System.Buffers;
using System.Text.Json;
using RaftMQ.Queue;

namespace RaftMQ.Server;

/// <summary>
/// The body of <c>POST /v1/messages</c> (<c>{"topic": "...", "messages": ["...", ...]}</c>) read straight into the
/// bytes of a <see cref="QueueOp.PublishBatch"/> command: one pass checks the fields and measures the messages, a
/// second writes each message's UTF-8 (unescaped) into the command. No string is made per message, so a 1 MB batch
/// costs the command's bytes, not twice them again in UTF-16. Unknown fields are ignored and a repeated field counts
/// its last value, as the JSON serializer's reading of the same body does.
/// </summary>
internal static class BatchPublishBody
{
    /// <summary>The command, or the status code and message to refuse the request with.</summary>
    public readonly record struct Parsed(byte[]? Command, int Count, int Status, string? Error);

    /// <summary>
    /// Parses <paramref name="body"/> (JSON already checked by <see cref="RequestBody.Check"/>); <paramref name="validateTopic"/>
    /// says what is wrong with a topic name, or null.
    /// </summary>
    public static Parsed Parse(ReadOnlySpan<byte> body, QueueLimits limits, Func<string, string?> validateTopic)
    {
        string? topic = null;
        var sawMessages = false;
        var messagesAt = -1; // where the last "messages" array starts in the body
        var count = 0;
        long bytes = 0;
        var sawNull = false;
        var tooLong = -1;
        var reader = new Utf8JsonReader(body, new JsonReaderOptions { MaxDepth = RequestBody.MaxDepth });
        try
        {
            reader.Read();
            if (reader.TokenType == JsonTokenType.Null) return Bad("body must be a JSON object");
            if (reader.TokenType != JsonTokenType.StartObject) return Bad("body is not a valid request: the body must be a JSON object");
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("topic"u8))
                {
                    reader.Read();
                    topic = reader.TokenType switch
                    {
                        JsonTokenType.String => reader.GetString(),
                        JsonTokenType.Null => null,
                        _ => throw new JsonException("\"topic\" must be a string"),
                    };
                }
                else if (reader.ValueTextEquals("messages"u8))
                {
                    reader.Read();
                    count = 0;
                    bytes = 0;
                    sawNull = false;
                    tooLong = -1;
                    if (reader.TokenType == JsonTokenType.Null)
                    {
                        sawMessages = false;
                        continue;
                    }
                    if (reader.TokenType != JsonTokenType.StartArray) throw new JsonException("\"messages\" must be an array of strings");
                    sawMessages = true;
                    messagesAt = (int)reader.TokenStartIndex;
                    while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                    {
                        if (reader.TokenType == JsonTokenType.Null)
                        {
                            sawNull = true;
                        }
                        else if (reader.TokenType == JsonTokenType.String)
                        {
                            var length = Utf8Length(ref reader);
                            if (length > limits.MaxMessageBytes && tooLong < 0) tooLong = count;
                            bytes += length;
                        }
                        else
                        {
                            throw new JsonException($"\"messages\" must hold strings: element {count} is not one");
                        }
                        count++;
                    }
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }
        }
        catch (JsonException e)
        {
            return Bad($"body is not a valid request: {e.Message}");
        }
        var error = topic is null ? "missing field \"topic\""
            : !sawMessages ? "missing field \"messages\""
            : count == 0 ? "\"messages\" must not be empty"
            : sawNull ? "\"messages\" must hold strings, not null"
            : validateTopic(topic);
        if (error is not null) return Bad(error);
        if (count > limits.MaxBatchMessages)
            return new Parsed(null, 0, StatusCodes.Status413PayloadTooLarge, $"more than {limits.MaxBatchMessages} messages in one batch");
        if (tooLong >= 0)
            return new Parsed(null, 0, StatusCodes.Status413PayloadTooLarge, $"message {tooLong} is longer than {limits.MaxMessageBytes} bytes (UTF-8)");
        return new Parsed(Write(body[messagesAt..], topic!, count, bytes), count, StatusCodes.Status200OK, null);
    }

    /// <summary>The second pass: the command's bytes, the messages copied (unescaped) from the array at the start of <paramref name="array"/>.</summary>
    private static byte[] Write(ReadOnlySpan<byte> array, string topic, int count, long messageBytes)
    {
        var command = new byte[QueueCommand.PublishBatchLength(System.Text.Encoding.UTF8.GetByteCount(topic), count, messageBytes)];
        var at = QueueCommand.WritePublishBatchStart(command, topic, count);
        var reader = new Utf8JsonReader(array, new JsonReaderOptions { MaxDepth = RequestBody.MaxDepth });
        reader.Read(); // [
        while (reader.Read() && reader.TokenType == JsonTokenType.String)
        {
            int written;
            if (!reader.ValueIsEscaped)
            {
                reader.ValueSpan.CopyTo(command.AsSpan(at + 4));
                written = reader.ValueSpan.Length;
            }
            else
            {
                // CopyString wants room for the escaped length, which the command does not have for its last message.
                var scratch = ArrayPool<byte>.Shared.Rent(reader.ValueSpan.Length);
                written = reader.CopyString(scratch);
                scratch.AsSpan(0, written).CopyTo(command.AsSpan(at + 4));
                ArrayPool<byte>.Shared.Return(scratch);
            }
            QueueCommand.WriteBatchMessageLength(command.AsSpan(at), written);
            at += 4 + written;
        }
        if (at != command.Length) throw new InvalidOperationException("the batch changed between the two passes");
        return command;
    }

    /// <summary>The UTF-8 length of the string token under <paramref name="reader"/>, unescaped.</summary>
    private static int Utf8Length(ref Utf8JsonReader reader)
    {
        if (!reader.ValueIsEscaped) return reader.ValueSpan.Length; // one span: the reader is over one contiguous body
        // Unescaping never makes a string longer.
        var scratch = ArrayPool<byte>.Shared.Rent(reader.ValueSpan.Length);
        try
        {
            return reader.CopyString(scratch);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(scratch);
        }
    }

    private static Parsed Bad(string error) => new(null, 0, StatusCodes.Status400BadRequest, error);
}

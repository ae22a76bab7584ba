using System.Text.Json;
using System.Text.Unicode;

namespace RaftMQ.Server;

/// <summary>
/// A request's JSON body, read and checked once for every endpoint that takes one: within the size bound, valid
/// UTF-8, well-formed JSON no deeper than <see cref="MaxDepth"/>, and every string and field name decodable to text.
/// The endpoints' own parsers then see only bodies they can read, so nothing in a body reaches them as an
/// exception (a 500): a lone surrogate escape (<c>"\ud800"</c>) is valid JSON syntax but no text, and JSON readers
/// do not check the UTF-8 of strings until a string is decoded (or never, for a field nobody reads).
/// </summary>
internal static class RequestBody
{
    /// <summary>The deepest nesting accepted; the bodies taken are two deep.</summary>
    public const int MaxDepth = 16;

    /// <summary>
    /// Reads the whole body within the size limit and checks it; on failure writes the 4xx and returns null. With
    /// <paramref name="optional"/>, an empty body is returned as empty instead of refused.
    /// </summary>
    public static async Task<byte[]?> ReadAsync(HttpContext ctx, bool optional = false)
    {
        var limit = ServerLimits.MaxRequestBodyBytes;
        if (ctx.Request.ContentLength > limit)
        {
            await RrmqEndpoints.WriteError(ctx, StatusCodes.Status413PayloadTooLarge, $"request body is larger than {limit} bytes");
            return null;
        }
        using var buffer = new MemoryStream();
        try
        {
            await ctx.Request.Body.CopyToAsync(buffer, ctx.RequestAborted);
        }
        catch (BadHttpRequestException e)
        {
            await RrmqEndpoints.WriteError(ctx, e.StatusCode, $"bad request body: {e.Message}");
            return null;
        }
        var body = buffer.ToArray();
        if (optional && body.Length == 0) return body;
        if (Check(body) is { } error)
        {
            await RrmqEndpoints.WriteError(ctx, StatusCodes.Status400BadRequest, error);
            return null;
        }
        return body;
    }

    /// <summary>
    /// <see cref="ReadAsync"/> into a buffer rented from the shared pool instead of a new array: for the bodies that
    /// carry the data (a batch publish is up to 1 MB), so they are not allocated, grown and copied per request.
    /// Dispose the result to return the buffer.
    /// </summary>
    public static async Task<PooledBody?> ReadPooledAsync(HttpContext ctx)
    {
        var limit = ServerLimits.MaxRequestBodyBytes;
        if (ctx.Request.ContentLength > limit)
        {
            await RrmqEndpoints.WriteError(ctx, StatusCodes.Status413PayloadTooLarge, $"request body is larger than {limit} bytes");
            return null;
        }
        var body = new PooledBody((int)(ctx.Request.ContentLength ?? 16 * 1024) + 1);
        try
        {
            while (true)
            {
                if (body.Free == 0)
                {
                    // Past the limit, Kestrel's own bound (the same limit) fails the read below with a 413.
                    body.Grow(Math.Min(body.Capacity * 2, limit + 1));
                }
                var read = await ctx.Request.Body.ReadAsync(body.FreeMemory, ctx.RequestAborted);
                if (read == 0) break;
                body.Advance(read);
                if (body.Span.Length > limit)
                {
                    body.Dispose();
                    await RrmqEndpoints.WriteError(ctx, StatusCodes.Status413PayloadTooLarge, $"request body is larger than {limit} bytes");
                    return null;
                }
            }
        }
        catch (BadHttpRequestException e)
        {
            body.Dispose();
            await RrmqEndpoints.WriteError(ctx, e.StatusCode, $"bad request body: {e.Message}");
            return null;
        }
        catch
        {
            body.Dispose();
            throw;
        }
        if (Check(body.Span) is { } error)
        {
            body.Dispose();
            await RrmqEndpoints.WriteError(ctx, StatusCodes.Status400BadRequest, error);
            return null;
        }
        return body;
    }

    /// <summary>What is wrong with <paramref name="body"/> as JSON text, or null if nothing is.</summary>
    /// <summary>
    /// Why a typed deserialization failed, in the API's terms: a value the serializer could not convert names its field
    /// (its message would name .NET types); a syntax error keeps the reader's message (the position in the text).
    /// </summary>
    public static string Describe(JsonException e) =>
        e.Path is { Length: > 2 } path && path.StartsWith("$.", StringComparison.Ordinal)
            && e.Message.StartsWith("The JSON value could not be converted", StringComparison.Ordinal)
            ? $"field \"{path[2..]}\" has a value of the wrong type, or one out of range for it"
            : e.Message;

    public static string? Check(ReadOnlySpan<byte> body)
    {
        if (!Utf8.IsValid(body)) return "body is not valid UTF-8";
        var reader = new Utf8JsonReader(body, new JsonReaderOptions { MaxDepth = MaxDepth });
        try
        {
            while (reader.Read())
            {
                // Only an escaped string can hold a lone surrogate: the UTF-8 itself was checked above.
                if (reader.TokenType is JsonTokenType.String or JsonTokenType.PropertyName && reader.ValueIsEscaped)
                    _ = reader.GetString();
            }
        }
        catch (JsonException e)
        {
            return $"body is not valid JSON: {e.Message}";
        }
        catch (InvalidOperationException)
        {
            // GetString's only failure on a token of the right type: the escapes do not decode to UTF-16 text.
            return $"body is not valid JSON text: a string at byte {reader.TokenStartIndex} has a \\u escape of a lone surrogate (not a character)";
        }
        return null;
    }
}

/// <summary>A request body in a buffer rented from <see cref="System.Buffers.ArrayPool{T}.Shared"/>; dispose to return it.</summary>
internal sealed class PooledBody : IDisposable
{
    private byte[]? _buffer;
    private int _length;

    public PooledBody(int capacity) => _buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(capacity);

    /// <summary>The bytes read.</summary>
    public ReadOnlySpan<byte> Span => Buffer.AsSpan(0, _length);

    /// <summary>The bytes read.</summary>
    public ReadOnlyMemory<byte> Memory => Buffer.AsMemory(0, _length);

    public int Capacity => Buffer.Length;

    public int Free => Buffer.Length - _length;

    public Memory<byte> FreeMemory => Buffer.AsMemory(_length);

    private byte[] Buffer => _buffer ?? throw new ObjectDisposedException(nameof(PooledBody));

    public void Advance(int count) => _length += count;

    /// <summary>Moves the bytes into a buffer of at least <paramref name="capacity"/> bytes.</summary>
    public void Grow(int capacity)
    {
        var bigger = System.Buffers.ArrayPool<byte>.Shared.Rent(capacity);
        Span.CopyTo(bigger);
        System.Buffers.ArrayPool<byte>.Shared.Return(Buffer);
        _buffer = bigger;
    }

    public void Dispose()
    {
        if (_buffer is { } b) System.Buffers.ArrayPool<byte>.Shared.Return(b);
        _buffer = null;
    }
}

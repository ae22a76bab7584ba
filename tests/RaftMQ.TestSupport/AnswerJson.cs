using System.Text.Encodings.Web;
using System.Text.Json;

namespace RaftMQ.TestSupport;

/// <summary>
/// A body as a node writes it, for tests that compare whole bodies (the RRMQ contract): compact, with only what
/// JSON requires escaped (docs/rest-api.md, "JSON").
/// </summary>
public static class AnswerJson
{
    private static readonly JsonSerializerOptions Options = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static string Of<T>(T value) => JsonSerializer.Serialize(value, Options);
}

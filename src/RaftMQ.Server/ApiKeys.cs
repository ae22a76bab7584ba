using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace RaftMQ.Server;

/// <summary>What a key may do on a topic (docs/security.md, "Client authentication").</summary>
[Flags]
public enum ClientPermission
{
    None = 0,

    /// <summary>Put messages on the topic.</summary>
    Publish = 1,

    /// <summary>Take messages off the topic: pop, receive, ack, nack, extend, peek.</summary>
    Consume = 2,

    /// <summary>Create, configure and delete the topic, its groups and its dead letters' redrive; on <c>*</c>, the cluster too.</summary>
    Admin = 4,
}

/// <summary>
/// The topics a grant covers: <c>*</c> (every topic), <c>prefix*</c> (every topic that starts with prefix) or an exact
/// name. A <c>*</c> anywhere but at the end is refused when the file is read.
/// </summary>
public readonly record struct TopicPattern
{
    private TopicPattern(string text, bool prefix)
    {
        Text = text;
        IsPrefix = prefix;
    }

    /// <summary>The pattern as written.</summary>
    public string Text { get; }

    private bool IsPrefix { get; }

    /// <summary>Whether it covers every topic (<c>*</c>).</summary>
    public bool IsAll => IsPrefix && Text.Length == 1;

    /// <summary>Parses a pattern; null with <paramref name="error"/> when it is not one.</summary>
    public static TopicPattern? Parse(string text, out string? error)
    {
        error = null;
        if (text.Length == 0)
        {
            error = "a topic pattern must not be empty (\"*\" is every topic)";
            return null;
        }
        var star = text.IndexOf('*', StringComparison.Ordinal);
        if (star >= 0 && star != text.Length - 1)
        {
            error = $"topic pattern \"{text}\": only a trailing * is supported (\"*\", \"orders*\")";
            return null;
        }
        return new TopicPattern(text, star >= 0);
    }

    /// <summary>Whether <paramref name="topic"/> is covered (ordinal, case-sensitive, as topic names are).</summary>
    public bool Matches(string topic)
    {
        ArgumentNullException.ThrowIfNull(topic);
        return IsPrefix
            ? topic.StartsWith(Text.AsSpan(0, Text.Length - 1), StringComparison.Ordinal)
            : string.Equals(topic, Text, StringComparison.Ordinal);
    }

    public override string ToString() => Text;
}

/// <summary>One grant of a key: permissions on the topics a pattern covers.</summary>
public sealed record TopicGrant(TopicPattern Topics, ClientPermission Allow);

/// <summary>
/// One API key as the node keeps it: its name (for logs and errors) and the SHA-256 of the key, never the key itself,
/// with its grants.
/// </summary>
public sealed class ApiKey
{
    internal ApiKey(string name, byte[] hash, IReadOnlyList<TopicGrant> grants)
    {
        Name = name;
        Hash = hash;
        Grants = grants;
    }

    public string Name { get; }

    internal byte[] Hash { get; }

    public IReadOnlyList<TopicGrant> Grants { get; }

    /// <summary>
    /// Whether the key holds <paramref name="permission"/> on <paramref name="topic"/>; a null topic asks for it on every
    /// topic (a grant on <c>*</c>), which the cluster-wide operations need. <paramref name="anyOf"/> accepts any one of
    /// the flags in <paramref name="permission"/>.
    /// </summary>
    public bool Allows(ClientPermission permission, string? topic, bool anyOf = false)
    {
        var held = ClientPermission.None;
        foreach (var g in Grants)
        {
            if (topic is null ? g.Topics.IsAll : g.Topics.Matches(topic)) held |= g.Allow;
        }
        return anyOf ? (held & permission) != 0 : (held & permission) == permission;
    }
}

/// <summary>A key file that cannot be used, with what is wrong and where.</summary>
public sealed class ApiKeyFileException(string message) : Exception(message);

/// <summary>
/// The API keys of a key file (<c>--auth-file</c>), parsed and checked as a whole: a file with any error is refused
/// entirely. The format, documented in docs/security.md:
/// <code>
/// {"keys": [
///   {"name": "app1", "key": "long-random-token", "permissions": [{"topics": "orders*", "allow": ["publish", "consume"]}]},
///   {"name": "ops", "key_sha256": "64 hex digits", "permissions": [{"topics": "*", "allow": ["admin"]}]}
/// ]}
/// </code>
/// </summary>
public sealed class ApiKeySet
{
    /// <summary>Largest key file read.</summary>
    public const int MaxFileBytes = 1 << 20;

    /// <summary>Most keys in a file.</summary>
    public const int MaxKeys = 1_000;

    /// <summary>Most grants of one key.</summary>
    public const int MaxGrantsPerKey = 256;

    /// <summary>Longest key name.</summary>
    public const int MaxNameLength = 128;

    /// <summary>Shortest key: guessing one must be hopeless (16 random characters are about 95 bits).</summary>
    public const int MinKeyLength = 16;

    /// <summary>Longest key (and longest Authorization header value looked at, with its scheme).</summary>
    public const int MaxKeyLength = 512;

    private readonly ApiKey[] _keys;

    private ApiKeySet(ApiKey[] keys) => _keys = keys;

    /// <summary>The keys, in file order.</summary>
    public IReadOnlyList<ApiKey> Keys => _keys;

    /// <summary>
    /// The key whose hash is the hash of <paramref name="presented"/>, or null. Every key's hash is compared, in
    /// constant time, whatever matches: the time taken tells nothing about which bytes were right.
    /// </summary>
    public ApiKey? Authenticate(ReadOnlySpan<char> presented)
    {
        if (presented.Length is 0 or > MaxKeyLength) return null;
        Span<byte> utf8 = stackalloc byte[MaxKeyLength * 3];
        var n = Encoding.UTF8.GetBytes(presented, utf8);
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(utf8[..n], hash);
        ApiKey? found = null;
        foreach (var k in _keys)
        {
            if (CryptographicOperations.FixedTimeEquals(hash, k.Hash) && found is null) found = k;
        }
        return found;
    }

    /// <summary>Reads and parses <paramref name="path"/>; throws <see cref="ApiKeyFileException"/> naming the file.</summary>
    public static ApiKeySet Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        byte[] bytes;
        try
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            if (file.Length > MaxFileBytes) throw new ApiKeyFileException($"auth file {path}: larger than {MaxFileBytes} bytes");
            bytes = new byte[file.Length];
            file.ReadExactly(bytes);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ApiKeyFileException($"auth file {path}: cannot read it: {e.Message}");
        }
        return Parse(bytes, path);
    }

    /// <summary>Parses a key file's content; <paramref name="source"/> names it in errors.</summary>
    public static ApiKeySet Parse(ReadOnlySpan<byte> json, string source)
    {
        ArgumentNullException.ThrowIfNull(source);
        if (json.Length > MaxFileBytes) throw new ApiKeyFileException($"auth file {source}: larger than {MaxFileBytes} bytes");
        JsonDocument doc;
        try
        {
            var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = 8, CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = false });
            doc = JsonDocument.ParseValue(ref reader);
        }
        catch (JsonException e)
        {
            throw new ApiKeyFileException($"auth file {source}: not valid JSON: {e.Message}");
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw Bad(source, "", "must be a JSON object {\"keys\": [...]}");
            JsonElement? list = null;
            foreach (var f in root.EnumerateObject())
            {
                if (f.Name != "keys") throw Bad(source, "", $"unknown field \"{f.Name}\" (the file takes \"keys\")");
                list = f.Value;
            }
            if (list is not { ValueKind: JsonValueKind.Array } keys) throw Bad(source, "", "needs \"keys\": an array of keys");
            if (keys.GetArrayLength() > MaxKeys) throw Bad(source, "", $"more than {MaxKeys} keys");
            var result = new List<ApiKey>();
            var names = new HashSet<string>(StringComparer.Ordinal);
            var i = 0;
            foreach (var k in keys.EnumerateArray())
            {
                var key = ParseKey(k, source, $"keys[{i}]");
                if (!names.Add(key.Name)) throw Bad(source, $"keys[{i}]", $"the name \"{key.Name}\" is used by another key too");
                if (result.FirstOrDefault(other => CryptographicOperations.FixedTimeEquals(other.Hash, key.Hash)) is { } twin)
                    throw Bad(source, $"keys[{i}] (\"{key.Name}\")", $"the same key as \"{twin.Name}\": every key must be different");
                result.Add(key);
                i++;
            }
            return new ApiKeySet([.. result]);
        }
    }

    private static ApiKey ParseKey(JsonElement k, string source, string at)
    {
        if (k.ValueKind != JsonValueKind.Object) throw Bad(source, at, "must be an object with \"name\", \"key\" (or \"key_sha256\") and \"permissions\"");
        string? name = null;
        byte[]? hash = null;
        var keyFields = 0;
        JsonElement? permissions = null;
        foreach (var f in k.EnumerateObject())
        {
            switch (f.Name)
            {
                case "name":
                    name = f.Value.ValueKind == JsonValueKind.String ? f.Value.GetString() : throw Bad(source, at, "\"name\" must be a string");
                    break;
                case "key":
                    keyFields++;
                    hash = HashOfKey(f.Value, source, at);
                    break;
                case "key_sha256":
                    keyFields++;
                    hash = f.Value.ValueKind == JsonValueKind.String && f.Value.GetString() is { Length: 64 } hex && IsHex(hex)
                        ? Convert.FromHexString(hex)
                        : throw Bad(source, at, "\"key_sha256\" must be the key's SHA-256 as 64 hex digits (printf %s KEY | sha256sum)");
                    break;
                case "permissions":
                    permissions = f.Value;
                    break;
                default:
                    throw Bad(source, at, $"unknown field \"{f.Name}\" (a key takes \"name\", \"key\" or \"key_sha256\", and \"permissions\")");
            }
        }
        if (string.IsNullOrWhiteSpace(name)) throw Bad(source, at, "needs a \"name\" (not empty)");
        if (name.Length > MaxNameLength || name.Any(char.IsControl)) throw Bad(source, at, $"\"name\" must be at most {MaxNameLength} characters, none of them control characters");
        at = $"{at} (\"{name}\")";
        if (keyFields != 1) throw Bad(source, at, "needs exactly one of \"key\" and \"key_sha256\"");
        if (permissions is not { ValueKind: JsonValueKind.Array } list) throw Bad(source, at, "needs \"permissions\": an array of {\"topics\": ..., \"allow\": [...]}");
        if (list.GetArrayLength() > MaxGrantsPerKey) throw Bad(source, at, $"more than {MaxGrantsPerKey} permissions");
        var grants = new List<TopicGrant>();
        var j = 0;
        foreach (var p in list.EnumerateArray()) grants.AddRange(ParseGrant(p, source, $"{at} permissions[{j++}]"));
        if (grants.Count > MaxGrantsPerKey) throw Bad(source, at, $"more than {MaxGrantsPerKey} topic patterns in its permissions");
        return new ApiKey(name, hash!, grants);
    }

    private static byte[] HashOfKey(JsonElement value, string source, string at)
    {
        if (value.ValueKind != JsonValueKind.String) throw Bad(source, at, "\"key\" must be a string");
        var key = value.GetString()!;
        if (key.Length is < MinKeyLength or > MaxKeyLength)
            throw Bad(source, at, $"\"key\" must be {MinKeyLength} to {MaxKeyLength} characters (make one with: openssl rand -hex 32)");
        if (!key.All(IsTokenChar))
            throw Bad(source, at, "\"key\" may hold only letters, digits and - . _ ~ + / (what a bearer token may carry)");
        return SHA256.HashData(Encoding.UTF8.GetBytes(key));
    }

    private static IEnumerable<TopicGrant> ParseGrant(JsonElement p, string source, string at)
    {
        if (p.ValueKind != JsonValueKind.Object) throw Bad(source, at, "must be an object {\"topics\": \"pattern\" or [...], \"allow\": [...]}");
        var patterns = new List<TopicPattern>();
        var allow = ClientPermission.None;
        bool sawTopics = false, sawAllow = false;
        foreach (var f in p.EnumerateObject())
        {
            switch (f.Name)
            {
                case "topics":
                    sawTopics = true;
                    var texts = f.Value.ValueKind switch
                    {
                        JsonValueKind.String => [f.Value.GetString()!],
                        JsonValueKind.Array when f.Value.EnumerateArray().All(e => e.ValueKind == JsonValueKind.String) =>
                            f.Value.EnumerateArray().Select(e => e.GetString()!).ToList(),
                        _ => throw Bad(source, at, "\"topics\" must be a pattern or an array of patterns (\"*\", \"orders*\", \"orders\")"),
                    };
                    if (texts.Count == 0) throw Bad(source, at, "\"topics\" must not be empty");
                    foreach (var t in texts)
                        patterns.Add(TopicPattern.Parse(t, out var error) ?? throw Bad(source, at, error!));
                    break;
                case "allow":
                    sawAllow = true;
                    if (f.Value.ValueKind != JsonValueKind.Array || f.Value.GetArrayLength() == 0)
                        throw Bad(source, at, "\"allow\" must be a non-empty array of \"publish\", \"consume\", \"admin\"");
                    foreach (var a in f.Value.EnumerateArray())
                    {
                        allow |= a.ValueKind == JsonValueKind.String ? a.GetString() switch
                        {
                            "publish" => ClientPermission.Publish,
                            "consume" => ClientPermission.Consume,
                            "admin" => ClientPermission.Admin,
                            var other => throw Bad(source, at, $"unknown permission \"{other}\" (publish, consume or admin)"),
                        } : throw Bad(source, at, "\"allow\" must hold strings: \"publish\", \"consume\", \"admin\"");
                    }
                    break;
                default:
                    throw Bad(source, at, $"unknown field \"{f.Name}\" (a permission takes \"topics\" and \"allow\")");
            }
        }
        if (!sawTopics || !sawAllow) throw Bad(source, at, "needs both \"topics\" and \"allow\"");
        return patterns.Select(t => new TopicGrant(t, allow));
    }

    private static bool IsHex(string s) => s.All(char.IsAsciiHexDigit);

    /// <summary>RFC 6750's b64token characters (the trailing '=' of base64 included).</summary>
    private static bool IsTokenChar(char c) => char.IsAsciiLetterOrDigit(c) || c is '-' or '.' or '_' or '~' or '+' or '/' or '=';

    private static ApiKeyFileException Bad(string source, string at, string what) =>
        new($"auth file {source}: {(at.Length == 0 ? "" : at + ": ")}{what}");
}

using System.Security.Cryptography;
using System.Text;

namespace RaftMQ.Server.Tests;

/// <summary>The API key file (<c>--auth-file</c>): parsing, what is refused and why, wildcards and key look-up.</summary>
public sealed class ApiKeyFileTests
{
    private const string AppKey = "app1-key-0123456789abcdef";
    private const string OpsKey = "ops-key-0123456789abcdef";

    private static ApiKeySet Parse(string json) => ApiKeySet.Parse(Encoding.UTF8.GetBytes(json), "keys.json");

    private static string Refused(string json) => Should.Throw<ApiKeyFileException>(() => Parse(json)).Message;

    private static string Key(string name, string key, string permissions = """[{"topics": "*", "allow": ["publish"]}]""") =>
        $$"""{"name": "{{name}}", "key": "{{key}}", "permissions": {{permissions}}}""";

    [Fact]
    public void A_valid_file_gives_each_key_its_grants_and_finds_keys_by_their_value()
    {
        var hash = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(OpsKey))).ToLowerInvariant();
        var keys = Parse($$"""
            {"keys": [
              {"name": "app1", "key": "{{AppKey}}", "permissions": [
                {"topics": "orders*", "allow": ["publish", "consume"]},
                {"topics": ["audit", "billing"], "allow": ["publish"]}]},
              {"name": "ops", "key_sha256": "{{hash}}", "permissions": [{"topics": "*", "allow": ["admin"]}]}
            ]}
            """);

        keys.Keys.Select(k => k.Name).ShouldBe(["app1", "ops"]);
        var app = keys.Authenticate(AppKey).ShouldNotBeNull();
        app.Name.ShouldBe("app1");
        app.Allows(ClientPermission.Publish, "orders").ShouldBeTrue();
        app.Allows(ClientPermission.Consume, "orders.eu").ShouldBeTrue();
        app.Allows(ClientPermission.Publish | ClientPermission.Consume, "orders.eu").ShouldBeTrue();
        app.Allows(ClientPermission.Publish, "audit").ShouldBeTrue();
        app.Allows(ClientPermission.Consume, "audit").ShouldBeFalse();
        app.Allows(ClientPermission.Publish | ClientPermission.Consume, "audit").ShouldBeFalse();
        app.Allows(ClientPermission.Publish | ClientPermission.Consume, "audit", anyOf: true).ShouldBeTrue();
        app.Allows(ClientPermission.Admin, "orders").ShouldBeFalse();
        app.Allows(ClientPermission.Publish, "order").ShouldBeFalse();
        app.Allows(ClientPermission.Publish, null).ShouldBeFalse("orders* is not every topic");

        var ops = keys.Authenticate(OpsKey).ShouldNotBeNull("a key given by its SHA-256 is found by its value");
        ops.Name.ShouldBe("ops");
        ops.Allows(ClientPermission.Admin, null).ShouldBeTrue();
        ops.Allows(ClientPermission.Admin, "anything").ShouldBeTrue();
        ops.Allows(ClientPermission.Publish, "anything").ShouldBeFalse("admin does not imply publish");

        keys.Authenticate("").ShouldBeNull();
        keys.Authenticate(AppKey.AsSpan(0, AppKey.Length - 1)).ShouldBeNull();
        keys.Authenticate(AppKey + "x").ShouldBeNull();
        keys.Authenticate(AppKey.ToUpperInvariant()).ShouldBeNull();
        keys.Authenticate(new string('a', ApiKeySet.MaxKeyLength + 1)).ShouldBeNull();
    }

    [Fact]
    public void Comments_are_allowed_and_a_key_may_have_no_permissions()
    {
        var keys = Parse($$"""
            // who may do what
            {"keys": [ /* read-only dashboards get their own key */ {{Key("idle", AppKey, "[]")}}]}
            """);
        var key = keys.Authenticate(AppKey).ShouldNotBeNull();
        key.Allows(ClientPermission.Consume, "anything", anyOf: true).ShouldBeFalse();
    }

    [Fact]
    public void An_empty_key_list_is_valid_and_admits_no_one()
    {
        Parse("""{"keys": []}""").Authenticate(AppKey).ShouldBeNull();
    }

    [Theory]
    [InlineData("*", "", true)]
    [InlineData("*", "anything/at.all", true)]
    [InlineData("orders*", "orders", true)]
    [InlineData("orders*", "orders-eu", true)]
    [InlineData("orders*", "order", false)]
    [InlineData("orders*", "Orders", false)]
    [InlineData("orders*", "my-orders", false)]
    [InlineData("orders", "orders", true)]
    [InlineData("orders", "orders2", false)]
    [InlineData("orders", "order", false)]
    public void Topic_patterns_match_all_a_prefix_or_one_name(string pattern, string topic, bool matches)
    {
        var parsed = TopicPattern.Parse(pattern, out var error).ShouldNotBeNull();
        error.ShouldBeNull();
        parsed.Matches(topic).ShouldBe(matches);
        parsed.IsAll.ShouldBe(pattern == "*");
    }

    [Theory]
    [InlineData("or*ders")]
    [InlineData("*orders")]
    [InlineData("**")]
    [InlineData("")]
    public void A_star_anywhere_but_at_the_end_or_an_empty_pattern_is_refused(string pattern)
    {
        TopicPattern.Parse(pattern, out var error).ShouldBeNull();
        error.ShouldNotBeNull();
        Refused($$"""{"keys": [{{Key("a", AppKey, $$"""[{"topics": "{{pattern}}", "allow": ["publish"]}]""")}}]}""")
            .ShouldContain(pattern.Length == 0 ? "must not be empty" : "only a trailing *");
    }

    [Theory]
    [InlineData("{\"keys\": [", "not valid JSON")]
    [InlineData("[]", "must be a JSON object")]
    [InlineData("{}", "needs \"keys\"")]
    [InlineData("{\"keys\": {}}", "needs \"keys\"")]
    [InlineData("{\"keys\": [], \"extra\": 1}", "unknown field \"extra\"")]
    [InlineData("{\"keys\": [1]}", "keys[0]: must be an object")]
    public void A_file_that_is_not_the_format_is_refused_with_what_is_wrong(string json, string expected)
    {
        var message = Refused(json);
        message.ShouldStartWith("auth file keys.json: ");
        message.ShouldContain(expected);
    }

    [Fact]
    public void Two_keys_with_one_name_are_refused()
    {
        Refused($$"""{"keys": [{{Key("app", AppKey)}}, {{Key("app", OpsKey)}}]}""")
            .ShouldContain("keys[1]: the name \"app\" is used by another key too");
    }

    [Fact]
    public void The_same_key_twice_is_refused_even_when_given_once_as_a_hash()
    {
        Refused($$"""{"keys": [{{Key("a", AppKey)}}, {{Key("b", AppKey)}}]}""")
            .ShouldContain("keys[1] (\"b\"): the same key as \"a\"");
        var hash = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(AppKey)));
        Refused($$"""{"keys": [{{Key("a", AppKey)}}, {"name": "b", "key_sha256": "{{hash}}", "permissions": []}]}""")
            .ShouldContain("the same key as \"a\"");
    }

    [Theory]
    [InlineData("""[{"topics": "*", "allow": ["pubish"]}]""", "unknown permission \"pubish\" (publish, consume or admin)")]
    [InlineData("""[{"topics": "*", "allow": []}]""", "\"allow\" must be a non-empty array")]
    [InlineData("""[{"topics": "*", "allow": [1]}]""", "\"allow\" must hold strings")]
    [InlineData("""[{"topics": "*"}]""", "needs both \"topics\" and \"allow\"")]
    [InlineData("""[{"topics": [], "allow": ["publish"]}]""", "\"topics\" must not be empty")]
    [InlineData("""[{"topics": 5, "allow": ["publish"]}]""", "\"topics\" must be a pattern or an array")]
    [InlineData("""[{"topics": "*", "allow": ["publish"], "deny": ["admin"]}]""", "unknown field \"deny\"")]
    [InlineData("""{"topics": "*"}""", "needs \"permissions\": an array")]
    public void A_bad_permission_is_refused_naming_the_key_and_the_entry(string permissions, string expected)
    {
        var message = Refused($$"""{"keys": [{{Key("app1", AppKey, permissions)}}]}""");
        message.ShouldContain(expected);
        message.ShouldContain("keys[0] (\"app1\")");
    }

    [Theory]
    [InlineData("""{"key": "0123456789abcdef0123", "permissions": []}""", "needs a \"name\"")]
    [InlineData("""{"name": "a", "permissions": []}""", "needs exactly one of \"key\" and \"key_sha256\"")]
    [InlineData("""{"name": "a", "key": "short", "permissions": []}""", "must be 16 to 512 characters")]
    [InlineData("""{"name": "a", "key": "has a space in it, see", "permissions": []}""", "may hold only letters, digits")]
    [InlineData("""{"name": "a", "key_sha256": "abc", "permissions": []}""", "64 hex digits")]
    [InlineData("""{"name": "a", "key": "0123456789abcdef0123", "key_sha256": "0123", "permissions": []}""", "64 hex digits")]
    [InlineData("""{"name": "a", "key": "0123456789abcdef0123", "secret": 1, "permissions": []}""", "unknown field \"secret\"")]
    public void A_bad_key_entry_is_refused(string entry, string expected)
    {
        Refused($$"""{"keys": [{{entry}}]}""").ShouldContain(expected);
    }

    [Fact]
    public void A_missing_or_oversized_file_is_refused_naming_it()
    {
        var dir = Directory.CreateTempSubdirectory("raftmq-keys-").FullName;
        try
        {
            var missing = Path.Combine(dir, "missing.json");
            Should.Throw<ApiKeyFileException>(() => ApiKeySet.Load(missing)).Message.ShouldContain($"auth file {missing}: cannot read it");
            var big = Path.Combine(dir, "big.json");
            File.WriteAllText(big, "{\"keys\": []}" + new string(' ', ApiKeySet.MaxFileBytes));
            Should.Throw<ApiKeyFileException>(() => ApiKeySet.Load(big)).Message.ShouldContain($"larger than {ApiKeySet.MaxFileBytes} bytes");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}

/// <summary>The node options of client authentication and the browser checks, as <c>raftmq-node</c> parses them.</summary>
public sealed class AuthSettingsTests
{
    private static readonly Dictionary<string, string> NoEnvironment = [];

    private static NodeSettings Parse(params string[] options) => NodeSettings.Parse(["config.json", "0", .. options], NoEnvironment);

    private static string Refused(params string[] options) =>
        Should.Throw<RaftMQ.Hosting.ConfigException>(() => Parse(options)).Message;

    [Fact]
    public void By_default_no_keys_only_same_origin_pages_and_any_host()
    {
        var s = Parse();
        s.AuthFile.ShouldBeNull();
        s.AuthRrmq.ShouldBeFalse();
        s.AllowedOrigins.ShouldNotBeNull().ShouldBeEmpty();
        s.AllowedHosts.ShouldBeNull();
    }

    [Fact]
    public void The_options_are_parsed_and_normalized_from_the_command_line_and_the_environment()
    {
        var s = Parse("--auth-file", "keys.json", "--auth-rrmq", "--allowed-origins", "https://Console.Example.com, http://10.0.0.5:8080",
            "--allowed-hosts", "queue.example.com,10.0.0.5");
        s.AuthFile.ShouldBe("keys.json");
        s.AuthRrmq.ShouldBeTrue();
        s.AllowedOrigins.ShouldBe(["https://console.example.com:443", "http://10.0.0.5:8080"]);
        s.AllowedHosts.ShouldBe(["queue.example.com", "10.0.0.5"]);
        Parse("--allowed-origins", "*", "--allowed-hosts", "*").ShouldSatisfyAllConditions(
            p => p.AllowedOrigins.ShouldBeNull(),
            p => p.AllowedHosts.ShouldBeNull());

        var env = new Dictionary<string, string> { ["RAFTMQ_AUTH_FILE"] = "env-keys.json", ["RAFTMQ_AUTH_RRMQ"] = "true" };
        var fromEnv = NodeSettings.Parse(["config.json", "0"], env);
        fromEnv.AuthFile.ShouldBe("env-keys.json");
        fromEnv.AuthRrmq.ShouldBeTrue();
    }

    [Theory]
    [InlineData("--auth-rrmq needs --auth-file", "--auth-rrmq")]
    [InlineData("--allowed-origins: 'ftp://x' is not an origin", "--allowed-origins", "ftp://x")]
    [InlineData("--allowed-origins: 'https://x/path' is not an origin", "--allowed-origins", "https://x/path")]
    [InlineData("--allowed-hosts: 'queue.example:80' is not a host name", "--allowed-hosts", "queue.example:80")]
    [InlineData("--allowed-hosts needs at least one host name", "--allowed-hosts", ",")]
    [InlineData("--auth-file needs a file path", "--auth-file", "")]
    public void Bad_values_stop_the_node_naming_the_option(string expected, params string[] options)
    {
        Refused(options).ShouldContain(expected);
    }

    [Fact]
    public void The_help_lists_the_options()
    {
        foreach (var option in new[] { "--auth-file PATH", "--auth-rrmq", "--allowed-origins LIST", "--allowed-hosts LIST" })
            NodeSettings.Usage.ShouldContain(option);
    }
}

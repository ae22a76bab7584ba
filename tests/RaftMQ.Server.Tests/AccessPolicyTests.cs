namespace RaftMQ.Server.Tests;

/// <summary>The permission each endpoint needs (docs/rest-api.md, "Permissions"), and which requests change state.</summary>
public sealed class AccessPolicyTests
{
    private const ClientPermission P = ClientPermission.Publish;
    private const ClientPermission C = ClientPermission.Consume;
    private const ClientPermission A = ClientPermission.Admin;
    private const ClientPermission Any = P | C | A;

    [Theory]
    // Open: health, status, the console's files.
    [InlineData("GET", "/healthz", AccessNeed.Open, ClientPermission.None, null, false)]
    [InlineData("GET", "/readyz", AccessNeed.Open, ClientPermission.None, null, false)]
    [InlineData("GET", "/status", AccessNeed.Open, ClientPermission.None, null, false)]
    [InlineData("GET", "/", AccessNeed.Open, ClientPermission.None, null, false)]
    [InlineData("GET", "/v1/status", AccessNeed.Open, ClientPermission.None, null, false)]
    [InlineData("GET", "/ui", AccessNeed.Open, ClientPermission.None, null, false)]
    [InlineData("GET", "/ui/console.js", AccessNeed.Open, ClientPermission.None, null, false)]
    // RRMQ.
    [InlineData("PUT", "/topic", AccessNeed.BodyTopic, A, null, true)]
    [InlineData("GET", "/topic", AccessNeed.Authenticated, ClientPermission.None, null, true)]
    [InlineData("PUT", "/message", AccessNeed.BodyTopic, P, null, true)]
    [InlineData("GET", "/message/orders", AccessNeed.Topic, C, "orders", true)]
    [InlineData("GET", "/message/a%2Fb?x=1", AccessNeed.Topic, C, "a/b", true)]
    [InlineData("GET", "/message/a/b", AccessNeed.Topic, C, "a/b", true)]
    // Node-wide reads.
    [InlineData("GET", "/metrics", AccessNeed.Authenticated, ClientPermission.None, null, false)]
    [InlineData("GET", "/v1/metrics", AccessNeed.Authenticated, ClientPermission.None, null, false)]
    [InlineData("GET", "/v1/cluster/overview", AccessNeed.Authenticated, ClientPermission.None, null, false)]
    [InlineData("GET", "/v1/cluster/members", AccessNeed.Authenticated, ClientPermission.None, null, false)]
    [InlineData("GET", "/v1/cluster/limits", AccessNeed.Authenticated, ClientPermission.None, null, false)]
    [InlineData("PUT", "/v1/cluster/limits", AccessNeed.Cluster, A, null, false)]
    [InlineData("GET", "/openapi/v1.json", AccessNeed.Authenticated, ClientPermission.None, null, false)]
    // Batches name their topic in the body.
    [InlineData("POST", "/v1/messages", AccessNeed.BodyTopic, P, null, false)]
    [InlineData("POST", "/v1/messages/pop", AccessNeed.BodyTopic, C, null, false)]
    // The cluster.
    [InlineData("POST", "/v1/cluster/members", AccessNeed.Cluster, A, null, false)]
    [InlineData("DELETE", "/v1/cluster/members/3", AccessNeed.Cluster, A, null, false)]
    [InlineData("POST", "/v1/cluster/transfer-leader", AccessNeed.Cluster, A, null, false)]
    // Topics.
    [InlineData("PUT", "/v1/topics/orders", AccessNeed.Topic, A, "orders", false)]
    [InlineData("DELETE", "/v1/topics/orders", AccessNeed.Topic, A, "orders", false)]
    [InlineData("GET", "/v1/topics/orders", AccessNeed.Topic, Any, "orders", false)]
    [InlineData("PUT", "/v1/topics/orders/groups/billing", AccessNeed.Topic, A, "orders", false)]
    [InlineData("DELETE", "/v1/topics/orders/groups/billing", AccessNeed.Topic, A, "orders", false)]
    [InlineData("POST", "/v1/topics/orders/publish", AccessNeed.Topic, P, "orders", false)]
    [InlineData("POST", "/v1/topics/orders/messages", AccessNeed.Topic, P, "orders", false)]
    [InlineData("POST", "/v1/topics/orders/messages/pop", AccessNeed.Topic, C, "orders", false)]
    [InlineData("POST", "/v1/topics/orders/receive", AccessNeed.Topic, C, "orders", false)]
    [InlineData("POST", "/v1/topics/orders/ack", AccessNeed.Topic, C, "orders", false)]
    [InlineData("POST", "/v1/topics/orders/nack", AccessNeed.Topic, C, "orders", false)]
    [InlineData("POST", "/v1/topics/orders/extend", AccessNeed.Topic, C, "orders", false)]
    [InlineData("GET", "/v1/topics/orders/peek?max=5", AccessNeed.Topic, C, "orders", false)]
    [InlineData("POST", "/v1/topics/orders/redrive", AccessNeed.Topic, A, "orders", false)]
    [InlineData("GET", "/v1/topics/orders/dead-letters", AccessNeed.Topic, Any, "orders", false)]
    [InlineData("GET", "/v1/topics/orders/dead-letters/peek", AccessNeed.Topic, C, "orders", false)]
    [InlineData("POST", "/v1/topics/orders/dead-letters/receive", AccessNeed.Topic, C, "orders", false)]
    [InlineData("POST", "/v1/topics/orders/dead-letters/ack", AccessNeed.Topic, C, "orders", false)]
    // Escapes decode as the endpoints decode them; literal parts compare as routing does (any case, a trailing slash).
    [InlineData("POST", "/v1/topics/a%2Fb/publish", AccessNeed.Topic, P, "a/b", false)]
    [InlineData("POST", "/V1/Topics/orders/PUBLISH/", AccessNeed.Topic, P, "orders", false)]
    [InlineData("HEAD", "/v1/topics/orders/peek", AccessNeed.Topic, C, "orders", false)]
    public void Each_endpoint_needs_its_permission(string method, string target, AccessNeed need, ClientPermission permission, string? topic, bool rrmq)
    {
        var rule = AccessPolicy.Classify(method, target);
        rule.Need.ShouldBe(need);
        rule.Permission.ShouldBe(permission);
        rule.TopicName.ShouldBe(topic);
        rule.Rrmq.ShouldBe(rrmq);
        rule.AnyOf.ShouldBe(permission == Any);
    }

    [Theory]
    [InlineData("GET", "/no/such/endpoint")]
    [InlineData("POST", "/status")]
    [InlineData("DELETE", "/topic")]
    [InlineData("POST", "/v1/topics/orders/dead-letters/redrive")]
    [InlineData("POST", "/v1/topics/orders/dead-letters/messages")]
    [InlineData("POST", "/v1/topics/orders/%70ublish")]
    // A malformed escape names no topic (and RequestTarget.Check refuses it before routing).
    [InlineData("POST", "/v1/topics/%zz/publish")]
    [InlineData("PATCH", "/v1/topics/orders")]
    [InlineData("GET", "/v1/topics/orders/receive")]
    [InlineData("PUT", "/v1/topics/orders/groups/a/b")]
    [InlineData("GET", "//v1/metrics")]
    [InlineData("GET", "/openapi/a/b.json")]
    public void Anything_the_table_does_not_know_needs_admin_on_every_topic(string method, string target)
    {
        AccessPolicy.Classify(method, target).ShouldBe(new AccessRule(AccessNeed.Cluster, A));
    }

    [Theory]
    [InlineData("GET", "/v1/topics/orders/peek", false)]
    [InlineData("HEAD", "/topic", false)]
    [InlineData("OPTIONS", "/message", false)]
    [InlineData("GET", "/message/orders", true)]
    [InlineData("PUT", "/message", true)]
    [InlineData("POST", "/v1/topics/orders/receive", true)]
    [InlineData("DELETE", "/v1/cluster/members/2", true)]
    public void Requests_that_change_state_include_the_RRMQ_pop(string method, string target, bool changes)
    {
        AccessPolicy.IsStateChanging(method, target).ShouldBe(changes);
    }

    [Theory]
    [InlineData("https://Console.Example.com", "https://console.example.com:443")]
    [InlineData("http://10.0.0.5:8080", "http://10.0.0.5:8080")]
    [InlineData("http://[::1]:8567", "http://::1:8567")]
    [InlineData("https://console.example.com/", null)]
    [InlineData("https://console.example.com/path", null)]
    [InlineData("ftp://console.example.com", null)]
    [InlineData("console.example.com", null)]
    [InlineData("null", null)]
    public void Origins_are_compared_as_scheme_host_and_port(string origin, string? normal)
    {
        RequestGuard.NormalizeOrigin(origin).ShouldBe(normal);
    }
}

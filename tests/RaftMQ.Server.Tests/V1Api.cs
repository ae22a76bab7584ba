using System.Net;
using System.Text.Json.Nodes;

namespace RaftMQ.Server.Tests;

/// <summary>Calls of the v1 topic API for the process tests: paths, and answers checked for their status and success.</summary>
internal static class V1Api
{
    /// <summary><c>/v1/topics/{topic}</c>, or <c>/v1/topics/{topic}/{action}</c>.</summary>
    public static string Path(string topic, string action = "") =>
        $"/v1/topics/{Uri.EscapeDataString(topic)}{(action.Length == 0 ? "" : "/" + action)}";

    /// <summary>Sends a request that must be answered <paramref name="expected"/> with <c>"success": true</c>; the answer's JSON.</summary>
    public static async Task<JsonObject> Ok(TestCluster cluster, int node, HttpMethod method, string path, string? body = null, HttpStatusCode expected = HttpStatusCode.OK)
    {
        var (status, text) = await cluster.SendAsync(node, method, path, body);
        status.ShouldBe(expected, $"{method} {path} {body}: {text}");
        var json = JsonNode.Parse(text)!.AsObject();
        json["success"]!.GetValue<bool>().ShouldBeTrue();
        return json;
    }

    /// <summary>Sends a request that must be refused with <paramref name="expected"/> and <c>"success": false</c>; the error it gives.</summary>
    public static async Task<string> Refused(TestCluster cluster, int node, HttpMethod method, string path, string? body, HttpStatusCode expected)
    {
        var (status, text) = await cluster.SendAsync(node, method, path, body);
        status.ShouldBe(expected, $"{method} {path} {body}: {text}");
        var json = JsonNode.Parse(text)!.AsObject();
        json["success"]!.GetValue<bool>().ShouldBeFalse();
        return json["error"]?.GetValue<string>() ?? "";
    }

    /// <summary>A POST that may meet a node paused or dying: a failed connection or a timeout is a status 0.</summary>
    public static async Task<(HttpStatusCode Status, string Body)> TryPostAsync(TestCluster cluster, int node, string path, string body)
    {
        try
        {
            return await cluster.SendAsync(node, HttpMethod.Post, path, body);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return (0, e.Message);
        }
    }

    /// <summary>The <c>messages</c> of a receive's or a peek's answer.</summary>
    public static JsonArray Messages(JsonObject json) => json["messages"]!.AsArray();
}

using System.Net;

namespace RaftMQ.Client;

/// <summary>Base of every error the client reports about the cluster (not about its own arguments).</summary>
public abstract class RaftMQException : Exception
{
    /// <summary>Creates the exception.</summary>
    protected RaftMQException(string message, Exception? inner = null)
        : base(message, inner)
    {
    }
}

/// <summary>
/// The operation was <b>not</b> applied: no node could be reached, or no leader was available, within the
/// operation timeout. Safe to retry later.
/// </summary>
public sealed class ClusterUnavailableException : RaftMQException
{
    /// <summary>Creates the exception.</summary>
    public ClusterUnavailableException(string reason, string message, Exception? inner = null)
        : base(message, inner) => Reason = reason;

    /// <summary>
    /// Why, as a short code: <c>unreachable</c> (no node answered), <c>tls-required</c> (every node answered that it
    /// speaks HTTPS only: the URLs say http://; not retried), or the node's <c>X-RaftMQ-Error</c> code
    /// (<c>no-leader</c>, <c>overloaded</c>, <c>stopped</c>, <c>not-leader</c>).
    /// </summary>
    public string Reason { get; }
}

/// <summary>
/// A publish or pop may or may not have been applied: the request reached the cluster but the answer was lost (the
/// connection dropped after sending, the attempt timed out, or the node itself reported <c>outcome-unknown</c>).
/// The client never retries such a command, because a retry could publish a message twice or pop two messages.
/// The caller decides, for example by making messages idempotent or by checking the topic.
/// </summary>
public sealed class OutcomeUnknownException : RaftMQException
{
    /// <summary>Creates the exception.</summary>
    public OutcomeUnknownException(string operation, string message, Exception? inner = null)
        : base(message, inner) => Operation = operation;

    /// <summary>The operation whose outcome is unknown: <c>publish</c> or <c>pop</c>.</summary>
    public string Operation { get; }
}

/// <summary>A publish or a batch pop named a topic that does not exist (HTTP 404). Nothing was applied.</summary>
public sealed class TopicNotFoundException : RaftMQException
{
    /// <summary>Creates the exception.</summary>
    public TopicNotFoundException(string topic)
        : base($"topic '{topic}' does not exist") => Topic = topic;

    /// <summary>The topic that was named.</summary>
    public string Topic { get; }
}

/// <summary>
/// The cluster refused the request and applied nothing: it is malformed (400), too large (413) or the queue is full
/// (507). Retrying the same request gives the same answer.
/// </summary>
public sealed class RequestRejectedException : RaftMQException
{
    /// <summary>Creates the exception.</summary>
    public RequestRejectedException(HttpStatusCode statusCode, string? serverError)
        : base($"the cluster rejected the request ({(int)statusCode} {statusCode}){(serverError is null ? "" : ": " + serverError)}")
    {
        StatusCode = statusCode;
        ServerError = serverError;
    }

    /// <summary>The HTTP status code.</summary>
    public HttpStatusCode StatusCode { get; }

    /// <summary>
    /// The node's explanation (the <c>error</c> field of the body), if it gave one; for a 507 without one (the RRMQ
    /// endpoints give none), what a 507 means.
    /// </summary>
    public string? ServerError { get; }
}

/// <summary>
/// The node refused the request's credentials (HTTP 401): no API key was given and the node requires one, or the key
/// given is not one of the node's (<see cref="RaftMQClientOptions.ApiKey"/>). Nothing was applied; retrying with the
/// same key gives the same answer.
/// </summary>
public sealed class AuthenticationFailedException : RaftMQException
{
    /// <summary>Creates the exception.</summary>
    public AuthenticationFailedException(string operation, bool keyGiven, string? serverError)
        : base($"{operation}: the node requires a valid API key (401){(keyGiven ? ": the key given was refused" : ": none was given")}"
            + (serverError is null ? "" : $"; the node says: {serverError}")) => ServerError = serverError;

    /// <summary>The node's explanation, if it gave one.</summary>
    public string? ServerError { get; }
}

/// <summary>
/// The API key is valid but lacks the permission the request needs (HTTP 403): publish, consume or admin on the topic,
/// or admin on every topic for cluster operations. Also a request refused for its Origin or Host. Nothing was applied.
/// </summary>
public sealed class PermissionDeniedException : RaftMQException
{
    /// <summary>Creates the exception.</summary>
    public PermissionDeniedException(string operation, string? serverError)
        : base($"{operation}: permission denied (403){(serverError is null ? "" : ": " + serverError)}") => ServerError = serverError;

    /// <summary>The node's explanation (for a key: which permission on which topic it lacks), if it gave one.</summary>
    public string? ServerError { get; }
}

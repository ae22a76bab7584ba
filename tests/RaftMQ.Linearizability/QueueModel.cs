using System.Collections.Immutable;

namespace RaftMQ.Linearizability;

/// <summary>What a client did to one FIFO queue (topic).</summary>
public enum QueueOpKind
{
    Publish,
    Pop,
}

/// <summary>A queue operation: a publish of <see cref="Message"/>, or a pop.</summary>
public sealed record QueueInput(QueueOpKind Kind, string? Message);

/// <summary>The answer: a publish's success, a pop's message (or null when the queue was empty), or unknown.</summary>
public sealed record QueueOutput(bool Known, string? Message)
{
    public static readonly QueueOutput Unknown = new(false, null);

    public static readonly QueueOutput Ok = new(true, null);

    public static QueueOutput Popped(string? message) => new(true, message);
}

/// <summary>
/// The sequential specification of one RaftMQ topic: publish appends, pop removes and returns the oldest message,
/// or nothing when empty. An operation with an unknown outcome is allowed to have done what it asked.
/// </summary>
public sealed class QueueModel : IModel<string, QueueInput, QueueOutput>
{
    // The state is the queue's content as one string (messages joined by a separator), so it hashes by value.
    private const char Separator = '\u001f';

    public string Initial => "";

    public bool Step(string state, QueueInput input, QueueOutput output, out string next)
    {
        var items = state.Length == 0 ? ImmutableList<string>.Empty : ImmutableList.CreateRange(state.Split(Separator));
        switch (input.Kind)
        {
            case QueueOpKind.Publish:
                next = string.Join(Separator, items.Add(input.Message!));
                return true;
            default:
                if (items.IsEmpty)
                {
                    next = state;
                    return !output.Known || output.Message is null;
                }
                next = string.Join(Separator, items.RemoveAt(0));
                return !output.Known || output.Message == items[0];
        }
    }
}

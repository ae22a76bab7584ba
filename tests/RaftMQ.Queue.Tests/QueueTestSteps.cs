using System.Text;

namespace RaftMQ.Queue.Tests;

/// <summary>The small steps the queue tests share (<c>using static</c>).</summary>
internal static class QueueTestSteps
{
    /// <summary>Applies <paramref name="c"/> as if committed at index 1 and returns its result.</summary>
    public static QueueResult Apply(QueueStateMachine sm, QueueCommand c) => (QueueResult)sm.Apply(1, c.Encode())!;

    public static QueueMessage Msg(string text) => new(Encoding.UTF8.GetBytes(text));

    public static string Text(QueueMessage m) => Encoding.UTF8.GetString(m.Payload.Span);

    public static Receipt ReceiptOf(QueueMessage m) => new(m.Offset, m.DeliveryCount);
}

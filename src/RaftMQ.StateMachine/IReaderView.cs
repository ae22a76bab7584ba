namespace RaftMQ.StateMachine;

/// <summary>
/// A state machine that keeps a view of itself for readers on other threads (metrics), which must not wait for the
/// node's loop. The runtime calls <see cref="PublishReaderView"/> on its loop thread after every iteration (after
/// applying whatever committed); the state machine decides when the view is due and builds it there, as an immutable
/// object it publishes for the readers. It must be quick when nothing is due; like <see cref="IStateMachine.Apply"/>,
/// it throws only for a local fault (a corrupt file), which stops the node.
/// </summary>
public interface IReaderView
{
    /// <summary>Called on the loop with this node's wall clock; builds and publishes the view when it is due.</summary>
    void PublishReaderView(DateTimeOffset now);
}

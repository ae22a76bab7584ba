namespace RaftMQ.Linearizability;

/// <summary>One client operation as observed: when it was called, when it returned, what it asked and what it got.</summary>
/// <param name="Client">Which client issued it (a client's operations never overlap).</param>
/// <param name="Input">The request.</param>
/// <param name="Output">The response; for an operation whose outcome is unknown, whatever the model accepts for "unknown".</param>
/// <param name="Call">When the request was sent.</param>
/// <param name="Return">When the response arrived; <see cref="long.MaxValue"/> when it never did (outcome unknown:
/// the operation may take effect at any time after its call, or never — which is the same as taking effect last).</param>
public sealed record Operation<TInput, TOutput>(int Client, TInput Input, TOutput Output, long Call, long Return);

/// <summary>A sequential specification: the state an object starts in and what each operation may do to it.</summary>
public interface IModel<TState, TInput, TOutput>
    where TState : notnull
{
    TState Initial { get; }

    /// <summary>Whether <paramref name="output"/> is a legal answer to <paramref name="input"/> in <paramref name="state"/>, and the state after.</summary>
    bool Step(TState state, TInput input, TOutput output, out TState next);
}

/// <summary>The verdict, with a linearization when there is one.</summary>
public sealed record CheckResult<TInput, TOutput>(bool IsLinearizable, IReadOnlyList<Operation<TInput, TOutput>>? Order, bool TimedOut);

/// <summary>
/// Decides whether a concurrent history is linearizable (Herlihy and Wing): whether its operations can be put in one
/// order that respects real time (an operation that returned before another was called comes first) and that the
/// sequential model accepts. The search is Wing and Gong's, with Lowe's memoisation of (linearized set, state)
/// pairs already explored; it is exponential in the worst case, so it takes a step budget.
/// </summary>
public static class LinearizabilityChecker
{
    public static CheckResult<TInput, TOutput> Check<TState, TInput, TOutput>(
        IModel<TState, TInput, TOutput> model, IReadOnlyList<Operation<TInput, TOutput>> history, long maxSteps = 50_000_000)
        where TState : notnull
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(history);
        var n = history.Count;
        if (n == 0) return new CheckResult<TInput, TOutput>(true, [], false);

        // Events in time order: calls before returns at the same instant, so touching intervals count as concurrent.
        var events = new List<(long Time, bool IsReturn, int Op)>(2 * n);
        for (int i = 0; i < n; i++)
        {
            if (history[i].Return < history[i].Call) throw new ArgumentException($"operation {i} returns before it is called");
            events.Add((history[i].Call, false, i));
            events.Add((history[i].Return, true, i));
        }
        events.Sort((a, b) => a.Time != b.Time ? a.Time.CompareTo(b.Time) : a.IsReturn.CompareTo(b.IsReturn));

        // A doubly linked list of the events not yet linearized; a call node knows its return node.
        var next = new int[2 * n + 1];
        var prev = new int[2 * n + 1];
        var op = new int[2 * n + 1];
        var isReturn = new bool[2 * n + 1];
        var returnNode = new int[n];
        const int head = 0;
        for (int k = 0; k < events.Count; k++)
        {
            var node = k + 1;
            op[node] = events[k].Op;
            isReturn[node] = events[k].IsReturn;
            if (events[k].IsReturn) returnNode[events[k].Op] = node;
            prev[node] = k;
            next[k] = node;
        }
        next[events.Count] = -1;

        var linearized = new System.Collections.BitArray(n);
        var cache = new HashSet<(string Set, TState State)>();
        var stack = new Stack<(int CallNode, TState StateBefore)>();
        var state = model.Initial;
        var entry = next[head];
        long steps = 0;

        void Lift(int callNode)
        {
            next[prev[callNode]] = next[callNode];
            if (next[callNode] >= 0) prev[next[callNode]] = prev[callNode];
            var r = returnNode[op[callNode]];
            next[prev[r]] = next[r];
            if (next[r] >= 0) prev[next[r]] = prev[r];
        }

        void Unlift(int callNode)
        {
            var r = returnNode[op[callNode]];
            if (next[r] >= 0) prev[next[r]] = r;
            next[prev[r]] = r;
            if (next[callNode] >= 0) prev[next[callNode]] = callNode;
            next[prev[callNode]] = callNode;
        }

        while (next[head] >= 0)
        {
            if (++steps > maxSteps) return new CheckResult<TInput, TOutput>(false, null, true);
            if (entry >= 0 && !isReturn[entry])
            {
                // Try to linearize this pending call now.
                var o = history[op[entry]];
                if (model.Step(state, o.Input, o.Output, out var after))
                {
                    linearized[op[entry]] = true;
                    var key = (Key(linearized), after);
                    if (cache.Add(key))
                    {
                        stack.Push((entry, state));
                        state = after;
                        Lift(entry);
                        entry = next[head];
                        continue;
                    }
                    linearized[op[entry]] = false;
                }
                entry = next[entry];
                continue;
            }

            // A return was reached with its call still pending (or the list ended): backtrack.
            if (stack.Count == 0) return new CheckResult<TInput, TOutput>(false, null, false);
            var (callNode, before) = stack.Pop();
            linearized[op[callNode]] = false;
            state = before;
            Unlift(callNode);
            entry = next[callNode];
        }

        var order = stack.Reverse().Select(s => history[op[s.CallNode]]).ToList();
        return new CheckResult<TInput, TOutput>(true, order, false);
    }

    private static string Key(System.Collections.BitArray bits)
    {
        var words = new int[(bits.Length + 31) / 32];
        bits.CopyTo(words, 0);
        return string.Join(',', words);
    }
}

using System.CommandLine;
using System.Globalization;
using RaftMQ.Client;
using Spectre.Console;

namespace RaftMQ.Cli;

// cluster members | add | remove, and `cluster up --nodes N` on a running local cluster (docs/cli.md, docs/membership.md).
public static partial class Cli
{
    /// <summary>How long `cluster up` waits for a new node to become a voter.</summary>
    private static readonly TimeSpan PromotionTimeout = TimeSpan.FromSeconds(60);

    private static IEnumerable<Command> MembershipCommands()
    {
        var members = new Command("members", Describe(
            "List the cluster's members as the leader confirms them: node number, voter or learner, HTTP address, peer port.",
            "cluster members", "cluster members --urls http://10.0.0.1:8567"));
        members.SetAction(Guard(async (r, ct) =>
        {
            var (urls, _) = Target(r);
            using var client = NewClient(urls, r);
            var m = await client.GetMembersAsync(ct).ConfigureAwait(false);
            AnsiConsole.Write(MembersTable(m));
            Console.Out.WriteLine($"cluster {m.ClusterId}: {m.Members.Count(x => x.IsVoter)} voter(s), {m.Members.Count(x => !x.IsVoter)} learner(s)"
                + (m.Leader is int l ? $", node {l} leads" : ", no leader known")
                + (m.Committed == false ? $"; this configuration is not committed yet (log entry {m.ConfigurationIndex})" : ""));
            return ExitCodes.Ok;
        }));

        var url = new Argument<string>("URL")
        {
            Description = "The new node's HTTP address, e.g. http://10.0.0.4:8567; without a scheme (10.0.0.4:8567) it takes the cluster's: "
                + "https:// when the URLs the command talks to are all https://, else http://",
        };
        var peerPort = new Option<int?>("--peer-port") { Description = "The new node's peer (internal) port (default: its HTTP port + 1000)" };
        var number = new Option<int?>("--node") { Description = "The node number to give it (default: one above the highest member)" };
        var add = new Command("add", Describe(
            "Add a node to the cluster as a learner; the leader promotes it to voter once it has caught up. Start the node "
            + "itself with `raftmq-node --join MEMBER_URL --address IP:PORT[:PEER_PORT]` and the cluster's secret (docs/membership.md). "
            + "A URL without a scheme is https:// when the cluster's URLs (--urls, $RAFTMQ_URLS or the local cluster) are all https://, else http://.",
            "cluster add http://10.0.0.4:8567", "cluster add http://10.0.0.4:8567 --peer-port 9568", "cluster add 10.0.0.4:8567"))
        { url, peerPort, number };
        add.SetAction(Guard(async (r, ct) =>
        {
            var text = r.GetValue(url)!;
            // Checked before the cluster is looked for: a bad URL is the arguments' fault, whatever the cluster.
            var schemeless = !text.Contains("://", StringComparison.Ordinal);
            if (!Uri.TryCreate(schemeless ? "http://" + text : text, UriKind.Absolute, out var node) || node.Scheme is not ("http" or "https") || node.Host.Length == 0)
                throw new CliException($"'{text}' is not a node URL (expected e.g. http://10.0.0.4:8567, or https:// for a TLS cluster)", ExitCodes.Usage);
            var (urls, _) = Target(r);
            // No scheme given: the cluster's, so that a TLS cluster's new member is added at https:// (it refuses http://).
            if (schemeless && urls.All(u => u.Scheme == Uri.UriSchemeHttps)) node = new Uri("https://" + text);
            using var client = NewClient(urls, r);
            var m = await client.AddMemberAsync(node, r.GetValue(peerPort), r.GetValue(number), ct).ConfigureAwait(false);
            Console.Out.WriteLine($"added node {m.Node} at {NodeUrl.Format(node)} as a learner; it becomes a voter once it has caught up");
            AnsiConsole.Write(MembersTable(m));
            return ExitCodes.Ok;
        }));

        var removeNode = new Argument<int>("NODE") { Description = "The member's number (the `node` column of `cluster members`)" };
        var remove = new Command("remove", Describe(
            "Remove a member (the leader included: it hands leadership over and steps down). Then stop its process; "
            + "a removed node never rejoins with the same data. On the local cluster the node is stopped too. When the answer "
            + "is lost (a timeout, 503 outcome-unknown), the members are read to tell whether the node was removed; a node still "
            + "listed is read again once the leader has committed its log (the removal may still be committing), up to --timeout.",
            "cluster remove 3"))
        { removeNode };
        remove.SetAction(Guard(async (r, ct) =>
        {
            var n = r.GetValue(removeNode);
            if (n < 0) throw new CliException("NODE must be a node number (0, 1, ...)", ExitCodes.Usage);
            var (urls, local) = Target(r);
            using var client = NewClient(urls, r);
            var (m, wasMember) = await RemoveAndConfirmAsync(client, n, TimeSpan.FromSeconds(r.GetValue(Timeout)), ct).ConfigureAwait(false);
            if (!wasMember)
            {
                // Nothing to remove; a local node the cluster no longer counts (an earlier removal whose answer was
                // lost) is recorded as removed all the same.
                if (local is not null && n < local.File.Nodes.Count && !local.File.Nodes[n].Removed) await ForgetLocalAsync(local, n).ConfigureAwait(false);
                throw new CliException($"node {n} is not a member of the cluster (its members: {string.Join(", ", m.Members.Select(x => x.Node))})");
            }
            Console.Out.WriteLine($"removed node {n} from the cluster");
            if (local is not null && n < local.File.Nodes.Count) await ForgetLocalAsync(local, n).ConfigureAwait(false);
            AnsiConsole.Write(MembersTable(m));
            return ExitCodes.Ok;
        }));
        return [members, add, remove];
    }

    /// <summary>Stops local node <paramref name="n"/>, which is no member any more, and says what became of it.</summary>
    private static async Task ForgetLocalAsync(LocalCluster local, int n)
    {
        var last = n == local.File.Nodes.Count - 1;
        await local.ForgetAsync(n).ConfigureAwait(false);
        Console.Out.WriteLine(last
            ? $"stopped node {n} and deleted its data and log"
            : $"stopped node {n} and deleted its data and log; the local cluster records it as removed (neither `cluster up` nor `cluster start` starts it again)");
    }

    /// <summary>
    /// Removes member <paramref name="n"/> and returns the members after it, and whether it was a member at all (a
    /// <c>404</c>: the members it returns then are the cluster's, read). When the answer is lost (the connection dropped,
    /// a timeout, a <c>503 outcome-unknown</c>), the change may or may not be in force: the members, read from the
    /// leader, tell which, rather than a blind failure. A member still listed then may be one whose removal is still
    /// committing (appended by the leader, not yet in the log of the node that answered the read): it is read again
    /// once the leader has committed and applied every entry its log held after that read, which settles it (waiting
    /// up to <paramref name="settle"/>).
    /// </summary>
    private static async Task<(ClusterMembers Members, bool WasMember)> RemoveAndConfirmAsync(RaftMQClient client, int n, TimeSpan settle, CancellationToken ct)
    {
        try
        {
            return (await client.RemoveMemberAsync(n, ct).ConfigureAwait(false), true);
        }
        catch (RequestRejectedException e) when (e.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
            var now = await client.GetMembersAsync(ct).ConfigureAwait(false);
            if (now.Members.Any(x => x.Node == n)) throw;
            return (now, false);
        }
        catch (OutcomeUnknownException e)
        {
            Console.Error.WriteLine($"the answer to removing node {n} was lost ({e.Message}); reading the members to see whether it was removed");
            ClusterMembers now;
            try
            {
                now = await ReadMembersAsync(client, settle, ct).ConfigureAwait(false);
                if (now.Members.Any(x => x.Node == n))
                {
                    Console.Error.WriteLine($"node {n} is still listed; waiting until the leader has committed what its log holds, in case the removal is still committing");
                    if (await LeaderCommittedAsync(client, settle, ct).ConfigureAwait(false) is { } unsettled)
                    {
                        throw new CliException(
                            $"node {n} is still listed as a member, but the removal may still be committing: {unsettled}; check with: {Name} cluster members",
                            ExitCodes.OutcomeUnknown);
                    }
                    now = await ReadMembersAsync(client, settle, ct).ConfigureAwait(false);
                }
            }
            catch (RaftMQException again)
            {
                throw new CliException(
                    $"node {n} may or may not have been removed, and the members could not be read ({again.Message}); check with: {Name} cluster members",
                    ExitCodes.OutcomeUnknown);
            }
            if (now.Members.Any(x => x.Node == n))
                throw new CliException($"node {n} is still a member: the removal did not take effect; run it again: {Name} cluster remove {n}");
            return (now, true);
        }
    }

    /// <summary>
    /// The members, read again while the cluster has no leader, up to <paramref name="within"/> (--timeout): the
    /// client's own retries end after a few seconds (<c>MaxRetries</c>), sooner than the election that a lost removal
    /// may need (the leader steps down when the configuration it appended has no quorum up).
    /// </summary>
    private static async Task<ClusterMembers> ReadMembersAsync(RaftMQClient client, TimeSpan within, CancellationToken ct)
    {
        var start = System.Diagnostics.Stopwatch.GetTimestamp();
        while (true)
        {
            try
            {
                return await client.GetMembersAsync(ct).ConfigureAwait(false);
            }
            catch (ClusterUnavailableException) when (System.Diagnostics.Stopwatch.GetElapsedTime(start) < within)
            {
                // No leader yet, or no node answered: ask again (each call backs off between its own attempts).
            }
        }
    }

    /// <summary>
    /// Waits until the leader has committed and applied every entry its log held when first seen (<c>last_index</c> of
    /// its <c>GET /v1/status</c>; a new leader's, if leadership moves meanwhile: an entry not in the new leader's log is
    /// lost with its term). Returns null once it has, or what it last saw at <paramref name="timeout"/>.
    /// </summary>
    private static async Task<string?> LeaderCommittedAsync(RaftMQClient client, TimeSpan timeout, CancellationToken ct)
    {
        var start = System.Diagnostics.Stopwatch.GetTimestamp();
        ulong term = 0, target = 0;
        var seen = "no leader answered";
        while (true)
        {
            var probes = await client.GetClusterStatusAsync(ct).ConfigureAwait(false);
            var leader = probes.Where(p => p.Status is { IsLeader: true }).Select(p => p.Status!).MaxBy(s => s.Term);
            if (leader is not null)
            {
                if (leader.Term != term) (term, target) = (leader.Term, leader.LastIndex);
                if (leader.CommitIndex >= target && leader.AppliedIndex >= target) return null;
                seen = $"node {leader.Node} leads and has committed up to index {leader.CommitIndex} (applied {leader.AppliedIndex}), short of index {target}, the end of its log";
            }
            var left = timeout - System.Diagnostics.Stopwatch.GetElapsedTime(start);
            if (left <= TimeSpan.Zero) return $"after {timeout.TotalSeconds:0.#} s, {seen}";
            await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(50, left.TotalMilliseconds)), ct).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Refuses to start node <paramref name="n"/> when the cluster (some of its nodes run) says it is no member: an
    /// earlier removal went through although its answer was lost. A cluster that does not answer in time (no leader
    /// without this node) does not stop the start.
    /// </summary>
    private static async Task RefuseNonMemberAsync(LocalCluster local, int n, ParseResult r, CancellationToken ct)
    {
        var options = ClientOptions(local.Urls, r);
        options.OperationTimeout = TimeSpan.FromSeconds(Math.Min(3, options.OperationTimeout.TotalSeconds));
        using var client = new RaftMQClient(options);
        ClusterMembers m;
        try
        {
            m = await client.GetMembersAsync(ct).ConfigureAwait(false);
        }
        catch (RaftMQException)
        {
            return;
        }
        if (m.Members.Any(x => x.Node == n)) return;
        local.MarkRemoved(n);
        throw new CliException($"node {n} is not a member of the cluster (its members: {string.Join(", ", m.Members.Select(x => x.Node))}); it was removed, and a removed node does not rejoin with its data");
    }

    /// <summary>Grows or shrinks a running local cluster to <paramref name="size"/> nodes, one membership change at a time.</summary>
    private static async Task<int> ResizeAsync(LocalCluster local, int size, ParseResult r, CancellationToken ct)
    {
        if (size is < 1 or > LocalCluster.MaxNodes) throw new CliException($"--nodes must be between 1 and {LocalCluster.MaxNodes}", ExitCodes.Usage);
        var options = ClientOptions(local.Urls, r);
        using var client = new RaftMQClient(options);
        local.JoinApiKey = options.ApiKey; // adding a member needs an admin key when the nodes require keys
        // Listing the members needs the same permission as adding one: a cluster that would refuse the new node
        // refuses this first, before a node is started for nothing.
        if (local.Members.Count < size) await client.GetMembersAsync(ct).ConfigureAwait(false);
        while (local.Members.Count < size)
        {
            var index = local.File.Nodes.Count;
            var leader = await client.FindLeaderAsync(ct).ConfigureAwait(false);
            local.StartJoiningNode(index, leader);
            Console.Out.WriteLine($"node {index} joining at {local.File.Nodes[index].Url} ...");
            try
            {
                await WaitForVoterAsync(local, client, index, ct).ConfigureAwait(false);
            }
            catch (CliException) when (!local.IsRunning(index) && !local.HasJoined(index))
            {
                // Refused before the cluster named it a member (it stores its identity only then): forget it, so
                // that the same command can be run again (with a key, say).
                await local.DropLastNodeAsync().ConfigureAwait(false);
                throw;
            }
            Console.Out.WriteLine($"node {index} is a voter");
        }
        while (local.Members.Count > size)
        {
            var index = local.Members[^1].Index;
            // A node the cluster no longer counts (an earlier removal whose answer was lost) is stopped and deleted all the same.
            var (_, wasMember) = await RemoveAndConfirmAsync(client, index, options.OperationTimeout, ct).ConfigureAwait(false);
            await local.ForgetAsync(index).ConfigureAwait(false);
            Console.Out.WriteLine(wasMember
                ? $"node {index} removed and stopped; its data and log deleted"
                : $"node {index} was no member any more; stopped, its data and log deleted");
        }
        // Done, as for a cluster started afresh, when every node answers and one leads: a node that has just become a
        // voter may still be starting its HTTP listener, or answer slowly on a busy machine.
        using var view = NewClient(local.Urls, r);
        var snapshot = await ClusterView.WithMembersAsync(view, local, await WaitForLeaderAsync(local, view, ct, runningOnly: true).ConfigureAwait(false), ct).ConfigureAwait(false);
        AnsiConsole.Write(ClusterView.Render(snapshot, local));
        Console.Out.WriteLine(ClusterView.Summary(snapshot.Probes));
        return ExitCodes.Ok;
    }

    /// <summary>Polls the members until node <paramref name="index"/> votes; fails fast when its process exits.</summary>
    private static async Task WaitForVoterAsync(LocalCluster local, RaftMQClient client, int index, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + PromotionTimeout;
        while (true)
        {
            if (!local.IsRunning(index))
                throw new CliException($"node {index} exited while joining; the end of its log ({local.File.Nodes[index].Log}):\n{local.LogTail(index)}");
            try
            {
                var m = await client.GetMembersAsync(ct).ConfigureAwait(false);
                if (m.Members.Any(x => x.Node == index && x.IsVoter)) return;
            }
            catch (ClusterUnavailableException)
            {
                // An election; ask again.
            }
            if (DateTime.UtcNow > deadline)
                throw new CliException($"node {index} did not become a voter within {PromotionTimeout.TotalSeconds:0} s; its log: {local.File.Nodes[index].Log}");
            await Task.Delay(50, ct).ConfigureAwait(false);
        }
    }

    private static Table MembersTable(ClusterMembers m)
    {
        var table = new Table().Border(TableBorder.Rounded);
        table.AddColumn(new TableColumn("node").RightAligned());
        table.AddColumn("role");
        table.AddColumn("url");
        table.AddColumn(new TableColumn("peer port").RightAligned());
        foreach (var x in m.Members)
        {
            table.AddRow(
                x.Node.ToString(CultureInfo.InvariantCulture) + (m.Leader == x.Node ? " *" : ""),
                x.IsVoter ? "voter" : "[yellow]learner[/]",
                Markup.Escape(x.Url is { } u ? NodeUrl.Format(u) : "?"),
                x.PeerPort.ToString(CultureInfo.InvariantCulture));
        }
        return table;
    }
}

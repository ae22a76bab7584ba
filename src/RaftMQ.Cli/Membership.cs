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
                + (m.Leader is int l ? $", node {l} leads" : ", no leader known"));
            return ExitCodes.Ok;
        }));

        var url = new Argument<string>("URL") { Description = "The new node's HTTP address, e.g. http://10.0.0.4:8567" };
        var peerPort = new Option<int?>("--peer-port") { Description = "The new node's peer (internal) port (default: its HTTP port + 1000)" };
        var number = new Option<int?>("--node") { Description = "The node number to give it (default: one above the highest member)" };
        var add = new Command("add", Describe(
            "Add a node to the cluster as a learner; the leader promotes it to voter once it has caught up. Start the node "
            + "itself with `raftmq-node --join MEMBER_URL --address IP:PORT[:PEER_PORT]` and the cluster's secret (docs/membership.md).",
            "cluster add http://10.0.0.4:8567", "cluster add http://10.0.0.4:8567 --peer-port 9568"))
        { url, peerPort, number };
        add.SetAction(Guard(async (r, ct) =>
        {
            var text = r.GetValue(url)!;
            if (!Uri.TryCreate(text.Contains("://", StringComparison.Ordinal) ? text : "http://" + text, UriKind.Absolute, out var node) || node.Scheme is not ("http" or "https"))
                throw new CliException($"'{text}' is not a node URL (expected e.g. http://10.0.0.4:8567, or https:// for a TLS cluster)", ExitCodes.Usage);
            var (urls, _) = Target(r);
            using var client = NewClient(urls, r);
            var m = await client.AddMemberAsync(node, r.GetValue(peerPort), r.GetValue(number), ct).ConfigureAwait(false);
            Console.Out.WriteLine($"added node {m.Node} at {node.GetLeftPart(UriPartial.Authority)} as a learner; it becomes a voter once it has caught up");
            AnsiConsole.Write(MembersTable(m));
            return ExitCodes.Ok;
        }));

        var removeNode = new Argument<int>("NODE") { Description = "The member's number (the `node` column of `cluster members`)" };
        var remove = new Command("remove", Describe(
            "Remove a member (the leader included: it hands leadership over and steps down). Then stop its process; "
            + "a removed node never rejoins with the same data. On the local cluster the node is stopped too.",
            "cluster remove 3"))
        { removeNode };
        remove.SetAction(Guard(async (r, ct) =>
        {
            var n = r.GetValue(removeNode);
            if (n < 0) throw new CliException("NODE must be a node number (0, 1, ...)", ExitCodes.Usage);
            var (urls, local) = Target(r);
            using var client = NewClient(urls, r);
            var m = await client.RemoveMemberAsync(n, ct).ConfigureAwait(false);
            Console.Out.WriteLine($"removed node {n} from the cluster");
            if (local is not null && n < local.File.Nodes.Count)
            {
                if (n == local.File.Nodes.Count - 1)
                {
                    await local.DropLastNodeAsync().ConfigureAwait(false);
                    Console.Out.WriteLine($"stopped node {n} and deleted its data");
                }
                else if (local.IsRunning(n))
                {
                    Posix.Signal(local.File.Nodes[n].Pid, Posix.SigTerm);
                    Console.Out.WriteLine($"stopped node {n} (its entry stays in the local cluster's list; `cluster down` forgets it)");
                }
            }
            AnsiConsole.Write(MembersTable(m));
            return ExitCodes.Ok;
        }));
        return [members, add, remove];
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
        if (local.File.Nodes.Count < size) await client.GetMembersAsync(ct).ConfigureAwait(false);
        while (local.File.Nodes.Count < size)
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
        while (local.File.Nodes.Count > size)
        {
            var index = local.File.Nodes.Count - 1;
            await client.RemoveMemberAsync(index, ct).ConfigureAwait(false);
            await local.DropLastNodeAsync().ConfigureAwait(false);
            Console.Out.WriteLine($"node {index} removed and stopped");
        }
        // Done, as for a cluster started afresh, when every node answers and one leads: a node that has just become a
        // voter may still be starting its HTTP listener, or answer slowly on a busy machine.
        using var view = NewClient(local.Urls, r);
        var probes = await WaitForLeaderAsync(local, view, ct, runningOnly: true).ConfigureAwait(false);
        AnsiConsole.Write(ClusterView.Render(probes, local));
        Console.Out.WriteLine(ClusterView.Summary(probes));
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
                Markup.Escape(x.Url?.ToString().TrimEnd('/') ?? "?"),
                x.PeerPort.ToString(CultureInfo.InvariantCulture));
        }
        return table;
    }
}

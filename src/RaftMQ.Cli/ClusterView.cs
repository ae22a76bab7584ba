using System.Globalization;
using RaftMQ.Client;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace RaftMQ.Cli;

/// <summary>
/// What the cluster table shows: each node's answer (<see cref="Probes"/>) and, for a local cluster, the members the
/// leader lists (<see cref="Members"/>, null when they could not be read, <see cref="MembersNote"/> saying why).
/// </summary>
public sealed record ClusterSnapshot(IReadOnlyList<NodeProbe> Probes, IReadOnlyList<ClusterMember>? Members = null, string? MembersNote = null);

/// <summary>The cluster table (node, URL, role, term, commit index, ...), once or live.</summary>
public static class ClusterView
{
    /// <summary>How often the live view asks the nodes.</summary>
    public static readonly TimeSpan RefreshPeriod = TimeSpan.FromMilliseconds(500);

    /// <summary>How long the view waits for the members, and for a member outside the local cluster to answer its status.</summary>
    private static readonly TimeSpan MembersTimeout = TimeSpan.FromSeconds(2);

    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(1);

    /// <summary>The status of every node the client knows and, for a local cluster, of every member the leader lists.</summary>
    public static async Task<ClusterSnapshot> ReadAsync(RaftMQClient client, LocalCluster? local, CancellationToken ct) =>
        await WithMembersAsync(client, local, await client.GetClusterStatusAsync(ct).ConfigureAwait(false), ct).ConfigureAwait(false);

    /// <summary>
    /// For a local cluster, adds to <paramref name="probes"/> every member the leader lists that the cluster file does
    /// not hold as a member (one that joined by hand: <c>raftmq-node --join</c>, <c>cluster add</c>), at the URL the
    /// members list gives, and asks it for its status. The members are read only when a node that answered knows a
    /// leader (without one they cannot be), within <see cref="MembersTimeout"/>; when they cannot be read the view is
    /// the local cluster's nodes alone, with a note saying why.
    /// </summary>
    public static async Task<ClusterSnapshot> WithMembersAsync(RaftMQClient client, LocalCluster? local, IReadOnlyList<NodeProbe> probes, CancellationToken ct)
    {
        if (local is null || !probes.Any(p => p.Status is { } s && (s.IsLeader || s.Leader is not null))) return new(probes);
        ClusterMembers members;
        using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct))
        {
            timeout.CancelAfter(MembersTimeout);
            try
            {
                members = await client.GetMembersAsync(timeout.Token).ConfigureAwait(false);
            }
            catch (RaftMQException e)
            {
                return new(probes, null, $"the members could not be read ({e.Message}); members the local cluster does not manage are not listed");
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                return new(probes, null, $"the members could not be read (no answer within {MembersTimeout.TotalSeconds:0} s); members the local cluster does not manage are not listed");
            }
        }
        var missing = members.Members
            .Where(m => m.Url is { } u && !probes.Any(p => SameNode(p.Url, u)))
            .OrderBy(m => m.Node)
            .Select(m => ProbeAsync(client, m.Url!, ct));
        return new([.. probes, .. await Task.WhenAll(missing).ConfigureAwait(false)], members.Members);
    }

    private static async Task<NodeProbe> ProbeAsync(RaftMQClient client, Uri url, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(ProbeTimeout);
        try
        {
            return new NodeProbe(url, await client.GetNodeStatusAsync(url, timeout.Token).ConfigureAwait(false), null);
        }
        catch (HttpRequestException e)
        {
            return new NodeProbe(url, null, e.Message);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return new NodeProbe(url, null, $"no answer within {ProbeTimeout.TotalSeconds:0.#} s");
        }
    }

    private static bool SameNode(Uri a, Uri b) =>
        string.Equals(a.Host, b.Host, StringComparison.OrdinalIgnoreCase) && a.Port == b.Port;

    /// <summary>
    /// Whether the node at <paramref name="url"/> is no member of <paramref name="local"/>'s cluster file: a member
    /// that joined by hand, which <c>cluster start</c>, <c>kill</c> and <c>down</c> do not act on.
    /// </summary>
    private static bool External(LocalCluster local, Uri url) => local.NodeAt(url) is not { Removed: false };

    public static IRenderable Render(IReadOnlyList<NodeProbe> probes, LocalCluster? local) => Render(new ClusterSnapshot(probes), local);

    public static IRenderable Render(ClusterSnapshot snapshot, LocalCluster? local)
    {
        var table = new Table().Border(TableBorder.Rounded);
        table.AddColumn("node");
        table.AddColumn("URL");
        if (local is not null) table.AddColumn(new TableColumn("pid").RightAligned());
        table.AddColumn("role");
        table.AddColumn(new TableColumn("term").RightAligned());
        table.AddColumn(new TableColumn("leader").RightAligned());
        table.AddColumn(new TableColumn("commit index").RightAligned());
        table.AddColumn(new TableColumn("applied").RightAligned());
        var anyExternal = false;
        foreach (var p in snapshot.Probes)
        {
            var s = p.Status;
            var external = local is not null && External(local, p.Url);
            var node = external ? null : local?.NodeAt(p.Url);
            var member = snapshot.Members?.FirstOrDefault(m => m.Url is { } u && SameNode(u, p.Url));
            var number = s?.Node ?? member?.Node ?? node?.Index;
            var row = new List<string>
            {
                number?.ToString(CultureInfo.InvariantCulture) ?? "?",
                Markup.Escape(NodeUrl.Format(p.Url)),
            };
            if (local is not null)
            {
                anyExternal |= external;
                row.Add(external ? "[yellow]external[/]"
                    : node is not null && local.IsRunning(node.Index) ? node.Pid.ToString(CultureInfo.InvariantCulture) : "[red]-[/]");
            }
            if (s is null)
            {
                row.AddRange(["[red]down[/]", "", "", "", ""]);
            }
            else
            {
                var role = s.Role switch
                {
                    "Leader" => "[green bold]Leader[/]",
                    "Follower" => "Follower",
                    _ => $"[yellow]{Markup.Escape(s.Role)}[/]",
                };
                row.AddRange([
                    role, s.Term.ToString(CultureInfo.InvariantCulture),
                    s.Leader?.ToString(CultureInfo.InvariantCulture) ?? "-",
                    s.CommitIndex.ToString(CultureInfo.InvariantCulture), s.AppliedIndex.ToString(CultureInfo.InvariantCulture),
                ]);
            }
            table.AddRow(row.ToArray());
        }
        if (!anyExternal) return table;
        return new Rows(table, new Text(
            $"external: a member the local cluster does not manage (not in its {LocalCluster.ClusterFileName}); cluster start, kill and down do not act on it"));
    }

    /// <summary>
    /// One line that says who leads, for output that is not a terminal: the leader of the newest term any node that
    /// answered is in, as that node itself says (it leads) or, when it is not among the nodes asked, as the nodes
    /// in that term report it (<c>leader</c>, <c>leader_url</c>), as the client finds the leader.
    /// </summary>
    public static string Summary(IReadOnlyList<NodeProbe> probes)
    {
        var up = probes.Count(p => p.Status is not null);
        var answered = probes.Where(p => p.Status is not null).Select(p => p.Status!).ToList();
        var term = answered.Count == 0 ? 0 : answered.Max(s => s.Term);
        var current = answered.Where(s => s.Term == term).ToList();
        int? node = null;
        Uri? url = null;
        if (current.FirstOrDefault(s => s.IsLeader) is { } self) (node, url) = (self.Node, self.Url);
        else if (current.FirstOrDefault(s => s.Leader is not null) is { } follower) (node, url) = (follower.Leader, follower.LeaderUrl);
        var nodesUp = $"({up} of {probes.Count} nodes up)";
        if (node is null) return $"no leader {nodesUp}";
        return url is null
            ? $"leader: node {node}, term {term} {nodesUp}"
            : $"leader: node {node} ({NodeUrl.Format(url)}), term {term} {nodesUp}";
    }

    /// <summary>
    /// Redraws the table every <see cref="RefreshPeriod"/> until cancelled. On a terminal it is a live view; otherwise
    /// one line is printed each time the leader, term or the number of nodes up changes.
    /// </summary>
    public static async Task WatchAsync(RaftMQClient client, LocalCluster? local, string footer, CancellationToken cancellationToken)
    {
        if (!Cli.Interactive)
        {
            var last = "";
            while (!cancellationToken.IsCancellationRequested)
            {
                var snapshot = await ReadAsync(client, local, cancellationToken).ConfigureAwait(false);
                var line = Summary(snapshot.Probes);
                if (line != last) Console.Out.WriteLine($"{DateTime.Now:HH:mm:ss} {line}");
                last = line;
                await Task.Delay(RefreshPeriod, cancellationToken).ConfigureAwait(false);
            }
            return;
        }
        var first = await ReadAsync(client, local, cancellationToken).ConfigureAwait(false);
        await AnsiConsole.Live(Compose(first, local, footer)).AutoClear(false).StartAsync(async ctx =>
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                await Task.Delay(RefreshPeriod, cancellationToken).ConfigureAwait(false);
                var snapshot = await ReadAsync(client, local, cancellationToken).ConfigureAwait(false);
                ctx.UpdateTarget(Compose(snapshot, local, footer));
            }
        }).ConfigureAwait(false);
    }

    private static Rows Compose(ClusterSnapshot snapshot, LocalCluster? local, string footer) =>
        new(
            Render(snapshot, local),
            new Markup($"[grey]{DateTime.Now:HH:mm:ss}  {Markup.Escape(Summary(snapshot.Probes))}[/]"),
            new Markup($"[grey]{Markup.Escape(snapshot.MembersNote is { } note ? $"note: {note}\n{footer}" : footer)}[/]"));
}

using System.Globalization;
using RaftMQ.Client;
using Spectre.Console;

namespace RaftMQ.Cli;

/// <summary>The cluster table (node, URL, role, term, commit index, ...), once or live.</summary>
public static class ClusterView
{
    /// <summary>How often the live view asks the nodes.</summary>
    public static readonly TimeSpan RefreshPeriod = TimeSpan.FromMilliseconds(500);

    public static Table Render(IReadOnlyList<NodeProbe> probes, LocalCluster? local)
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
        for (int i = 0; i < probes.Count; i++)
        {
            var p = probes[i];
            var s = p.Status;
            var node = local?.NodeAt(p.Url);
            var row = new List<string>
            {
                s is null ? (node is null ? "?" : node.Index.ToString(CultureInfo.InvariantCulture)) : s.Node.ToString(CultureInfo.InvariantCulture),
                Markup.Escape(p.Url.ToString().TrimEnd('/')),
            };
            if (local is not null)
                row.Add(node is not null && local.IsRunning(node.Index) ? node.Pid.ToString(CultureInfo.InvariantCulture) : "[red]-[/]");
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
        return table;
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
            : $"leader: node {node} ({url.ToString().TrimEnd('/')}), term {term} {nodesUp}";
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
                var probes = await client.GetClusterStatusAsync(cancellationToken).ConfigureAwait(false);
                var line = Summary(probes);
                if (line != last) Console.Out.WriteLine($"{DateTime.Now:HH:mm:ss} {line}");
                last = line;
                await Task.Delay(RefreshPeriod, cancellationToken).ConfigureAwait(false);
            }
            return;
        }
        var first = await client.GetClusterStatusAsync(cancellationToken).ConfigureAwait(false);
        await AnsiConsole.Live(Compose(first, local, footer)).AutoClear(false).StartAsync(async ctx =>
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                await Task.Delay(RefreshPeriod, cancellationToken).ConfigureAwait(false);
                var probes = await client.GetClusterStatusAsync(cancellationToken).ConfigureAwait(false);
                ctx.UpdateTarget(Compose(probes, local, footer));
            }
        }).ConfigureAwait(false);
    }

    private static Rows Compose(IReadOnlyList<NodeProbe> probes, LocalCluster? local, string footer) =>
        new(Render(probes, local), new Markup($"[grey]{DateTime.Now:HH:mm:ss}  {Markup.Escape(Summary(probes))}[/]"), new Markup($"[grey]{Markup.Escape(footer)}[/]"));
}

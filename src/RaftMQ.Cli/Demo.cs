using System.CommandLine;
using Spectre.Console;

namespace RaftMQ.Cli;

/// <summary><c>raftmq demo</c>: a running cluster and a message in and out, then what to try next.</summary>
public static class Demo
{
    public const string Topic = "demo";

    public static async Task<int> RunAsync(ParseResult r, string dir, CancellationToken ct)
    {
        var local = LocalCluster.Load(dir);
        if (local is { AnyRunning: true })
        {
            AnsiConsole.MarkupLine($"[bold]Using the local cluster already running in {Markup.Escape(local.Directory)}[/]");
        }
        else
        {
            // The cluster recorded here (stopped by `cluster down`) starts again as it was; else a new one of 3 nodes.
            var size = local?.Members.Count ?? 3;
            AnsiConsole.MarkupLine($"[bold]Starting a local {size}-node cluster[/] (nodes run in the background)");
            var code = await Cli.ClusterUpAsync(dir, size, detach: true, fresh: false, r, ct).ConfigureAwait(false);
            if (code != ExitCodes.Ok) return code;
            local = LocalCluster.Load(dir)!;
        }

        using var client = Cli.NewClient(local.Urls, r);
        var leader = await client.FindLeaderAsync(ct).ConfigureAwait(false);
        var leaderNode = local.File.Nodes.FirstOrDefault(n => new Uri(n.Url).Authority == leader.Authority);
        await client.CreateTopicAsync(Topic, ct).ConfigureAwait(false);
        // The pops below are an atomic receive and ack on the group default: if it was deleted (`group delete demo
        // default`), create it again, at the tail.
        await client.CreateGroupAsync(Topic, "default", RaftMQ.Client.GroupStartPosition.Latest, ct).ConfigureAwait(false);
        // Leftovers of an earlier demo would come out first; clear them (bounded) so the output reads straight.
        for (int i = 0; i < 10_000 && await client.PopAsync(Topic, ct).ConfigureAwait(false) is not null; i++)
        {
        }

        AnsiConsole.WriteLine();
        string[] messages = ["hello, RaftMQ", $"sent at {DateTime.Now:HH:mm:ss}", "third and last"];
        foreach (var m in messages)
        {
            await client.PublishAsync(Topic, m, ct).ConfigureAwait(false);
            AnsiConsole.MarkupLine($"  published [green]→[/] {Topic}: {Markup.Escape(m)}");
        }
        for (int i = 0; i < messages.Length; i++)
        {
            var m = await client.PopAsync(Topic, ct).ConfigureAwait(false)
                ?? throw new CliException($"topic '{Topic}' ran empty after {i} of {messages.Length} messages");
            AnsiConsole.MarkupLine($"  consumed  [blue]←[/] {Topic}: {Markup.Escape(m)}");
        }

        var n = Cli.Name;
        var data = LocalCluster.DataArg(local.Directory);
        var leaderIndex = leaderNode?.Index ?? 0;
        AnsiConsole.WriteLine();
        AnsiConsole.MarkupLine($"Each message was committed by a majority of the nodes before it was acknowledged. The leader is node {leaderIndex} ({Markup.Escape(NodeUrl.Format(leader))}).");
        AnsiConsole.WriteLine();
        AnsiConsole.MarkupLine("[bold]Try next:[/]");
        var steps = new (string Command, string What)[]
        {
            ($"{n} shell{data}", "interactive prompt: topic create, publish, consume, ... (type help)"),
            ($"{n} cluster status --watch{data}", "live view of the nodes; leave it running and, in another terminal:"),
            ($"{n} cluster kill {leaderIndex}{data}", "kill the leader: the view shows a new one elected within a second"),
            ($"{n} cluster start {leaderIndex}{data}", "bring it back: it rejoins as a follower and catches up"),
            ($"{n} bench publish --clients 16 --duration 10{data}", "load test: throughput and latency percentiles"),
            ($"{n} cluster down{data}", "stop the cluster"),
        };
        var width = steps.Max(s => s.Command.Length);
        foreach (var (command, what) in steps) AnsiConsole.MarkupLine($"  [blue]{Markup.Escape(command.PadRight(width))}[/]  [grey]{Markup.Escape(what)}[/]");
        return ExitCodes.Ok;
    }
}

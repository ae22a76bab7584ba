using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using System.Globalization;
using RaftMQ.Client;
using Spectre.Console;

namespace RaftMQ.Cli;

/// <summary>The <c>raftmq</c> command tree and what each command does.</summary>
public static partial class Cli
{
    /// <summary>How the user invoked us (set by bin/raftmq), so every hint can be pasted as is.</summary>
    public static string Name { get; } = Environment.GetEnvironmentVariable("RAFTMQ_INVOKED_AS") is { Length: > 0 } n ? n : "raftmq";

    public static bool Interactive => !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;

    /// <summary>
    /// When the output is a pipe or a file (scripts, tests), tables are plain text and wide enough not to wrap.
    /// </summary>
    public static void ConfigureConsole()
    {
        if (!Console.IsOutputRedirected && Environment.GetEnvironmentVariable("NO_COLOR") is null) return;
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = Console.IsOutputRedirected ? InteractionSupport.No : InteractionSupport.Detect,
            Out = new AnsiConsoleOutput(Console.Out),
        });
        if (Console.IsOutputRedirected) console.Profile.Width = 160;
        AnsiConsole.Console = console;
    }

    private static readonly Option<string?> Urls = new("--urls", "--url")
    {
        Description = "Comma-separated node URLs, one or more (default: $RAFTMQ_URLS, else the local cluster started by `cluster up`)",
        Recursive = true,
    };

    private static readonly Option<string?> Data = new("--data")
    {
        Description = "Directory of the local cluster: config, node data, logs (default: $RAFTMQ_DATA, else ~/.raftmq/cluster)",
        Recursive = true,
    };

    private static readonly Option<string?> ApiKey = new("--api-key")
    {
        Description = "API key for nodes started with --auth-file, sent as Authorization: Bearer KEY (default: $RAFTMQ_API_KEY)",
        Recursive = true,
    };

    private static readonly Option<string?> Ca = new("--ca")
    {
        Description = "CA certificate (PEM) that issued the nodes' HTTPS certificates, trusted for these connections only (default: $RAFTMQ_CA, else the local cluster's from `cluster up --tls`)",
        Recursive = true,
    };

    private static readonly Option<double> Timeout = new("--timeout")
    {
        Description = "Seconds an operation may take, retries included",
        DefaultValueFactory = _ => 15,
        Recursive = true,
    };

    /// <summary>Parses and runs one command line; returns the exit code. The shell calls this for each line.</summary>
    public static async Task<int> RunAsync(IReadOnlyList<string> args, CancellationToken cancellationToken, bool inShell = false)
    {
        var root = Build(inShell);
        // No command at all: show what there is, rather than an error.
        var result = root.Parse(args.Count == 0 ? ["--help"] : args);
        // --help wins over a missing argument, so `raftmq publish --help` explains rather than complains.
        if (result.Errors.Count > 0 && result.Action is not HelpWithExamples)
        {
            foreach (var e in result.Errors) Error(e.Message);
            var command = string.Join(' ', result.CommandResult.Command == root ? [] : CommandPath(result.CommandResult.Command));
            Console.Error.WriteLine($"run `{Name} {command}{(command.Length > 0 ? " " : "")}--help` for usage");
            return ExitCodes.Usage;
        }
        var config = new InvocationConfiguration { ProcessTerminationTimeout = null, EnableDefaultExceptionHandler = false };
        return await result.InvokeAsync(config, cancellationToken).ConfigureAwait(false);
    }

    private static IEnumerable<string> CommandPath(Command command)
    {
        var names = new List<string>();
        for (var c = command; c is not null and not RootCommand; c = c.Parents.OfType<Command>().FirstOrDefault()) names.Insert(0, c.Name);
        return names;
    }

    public static RootCommand Build(bool inShell = false)
    {
        var root = new RootCommand(Describe(
            "RaftMQ: a replicated message queue on Raft. Start a local cluster, manage topics, publish, consume and benchmark.",
            "cluster up --detach", "publish orders \"hello\"", "consume orders"))
        {
            Urls, Data, Timeout, ApiKey, Ca,
        };
        root.Add(ClusterCommand());
        root.Add(TopicCommand());
        root.Add(PublishCommand(inShell));
        root.Add(ConsumeCommand());
        root.Add(GroupCommand());
        root.Add(ReceiveCommand());
        root.Add(AckCommand());
        root.Add(DlqCommand());
        root.Add(BenchCommand());
        root.Add(CertCommand());
        if (!inShell) root.Add(ShellCommand());
        root.Add(DemoCommand());
        NumericValues.Install(root);
        AddExamplesToHelp(root);
        return root;
    }

    /// <summary>Examples per command description, shown at the end of that command's --help.</summary>
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, string[]> s_examples = new();

    private static string Describe(string text, params string[] examples)
    {
        s_examples[text] = examples;
        return text;
    }

    private static void AddExamplesToHelp(RootCommand root)
    {
        foreach (var help in root.Options.OfType<HelpOption>())
        {
            if (help.Action is HelpAction action) help.Action = new HelpWithExamples(action);
        }
    }

    /// <summary>The standard help, then the command's examples.</summary>
    private sealed class HelpWithExamples(HelpAction inner) : SynchronousCommandLineAction
    {
        public override int Invoke(ParseResult parseResult)
        {
            var code = inner.Invoke(parseResult);
            var command = parseResult.CommandResult.Command;
            if (command.Description is { } d && s_examples.TryGetValue(d, out var examples) && examples.Length > 0)
            {
                var output = parseResult.InvocationConfiguration.Output;
                output.WriteLine(examples.Length == 1 ? "Example:" : "Examples:");
                foreach (var e in examples) output.WriteLine($"  {Name} {e}");
                output.WriteLine();
            }
            return code;
        }
    }

    // ---- cluster -------------------------------------------------------------------------------------------------

    private static Command ClusterCommand()
    {
        var cluster = new Command("cluster", Describe("Start, inspect, resize and stop a cluster, and change its members.", "cluster up", "cluster status", "cluster down"));

        var nodes = new Option<int?>("--nodes", "-n") { Description = "Number of nodes (1-15; default: as many as the cluster recorded in --data has, else 3)" };
        var detach = new Option<bool>("--detach", "-d") { Description = "Leave the nodes running in the background and return" };
        var fresh = new Option<bool>("--fresh") { Description = "Start from empty node data and new ports" };
        var authFile = new Option<string?>("--auth-file")
        {
            Description = "Start every node with this API key file (raftmq-node --auth-file): clients then need --api-key or $RAFTMQ_API_KEY",
        };
        var authRrmq = new Option<bool>("--auth-rrmq")
        {
            Description = "With --auth-file: the RRMQ endpoints (PUT/GET /topic, PUT/GET /message) need a key too (raftmq-node --auth-rrmq)",
        };
        var tls = new Option<bool>("--tls")
        {
            Description = "TLS everywhere: make a CA and node certificates in DATA/tls (kept for later starts), serve HTTPS and run mutual TLS between the nodes; the CLI trusts that CA for this cluster",
        };
        var up = new Command("up", Describe(
            "Start a local cluster: writes a config with free ports, starts the nodes, waits for a leader, then shows a live "
            + "view until Ctrl-C, which stops the nodes. Node data is kept in --data for the next `cluster up`. On a running "
            + "local cluster, --nodes grows it (new nodes join and are promoted once caught up) or shrinks it (the last "
            + "nodes are removed from the membership, then stopped), one node at a time, while it serves.",
            "cluster up", "cluster up --nodes 5 --detach", "cluster up --data /tmp/mq --fresh", "cluster up --nodes 5   (on a running 3-node cluster)",
            "cluster up --detach --auth-file keys.json", "cluster up --detach --tls"))
        { nodes, detach, fresh, authFile, authRrmq, tls };
        up.SetAction(Guard((r, ct) => ClusterUpAsync(
            DataDir(r), r.GetValue(nodes) ?? LocalCluster.Load(DataDir(r))?.Members.Count ?? 3, r.GetValue(detach), r.GetValue(fresh), r, ct, r.GetValue(authFile), r.GetValue(tls), r.GetValue(authRrmq))));

        var down = new Command("down", Describe(
            "Stop the local cluster started with `cluster up --detach` (SIGTERM, then SIGKILL after 5 s). Its record (DATA/cluster.json) "
            + "stays, so the next `cluster up` starts the same nodes again, with their data.", "cluster down"));
        down.SetAction(Guard(async (r, ct) =>
        {
            var dir = DataDir(r);
            var local = LocalCluster.Load(dir);
            if (local is null)
            {
                Console.Out.WriteLine($"no cluster is recorded in {dir}; nothing to stop");
                return ExitCodes.Ok;
            }
            var stopped = await local.StopAsync().ConfigureAwait(false);
            Console.Out.WriteLine($"stopped {stopped} node(s)");
            return ExitCodes.Ok;
        }));

        var watch = new Option<bool>("--watch", "-w") { Description = "Keep the view updated until Ctrl-C" };
        var status = new Command("status", Describe(
            "Show every node: URL, role, term, leader, commit and applied index. Of the local cluster, also every other member "
            + "the leader lists (one added by hand), marked external: the local cluster does not start or stop it.",
            "cluster status", "cluster status --watch", "cluster status --urls http://10.0.0.1:8567,http://10.0.0.2:8567"))
        { watch };
        status.SetAction(Guard(async (r, ct) =>
        {
            var (urls, local) = Target(r);
            using var client = NewClient(urls, r);
            if (r.GetValue(watch))
            {
                await IgnoreCancel(ClusterView.WatchAsync(client, local, "Ctrl-C to quit", ct)).ConfigureAwait(false);
                return ExitCodes.Ok;
            }
            var snapshot = await ClusterView.ReadAsync(client, local, ct).ConfigureAwait(false);
            var probes = snapshot.Probes;
            AnsiConsole.Write(ClusterView.Render(snapshot, local));
            Console.Out.WriteLine(ClusterView.Summary(probes));
            if (snapshot.MembersNote is { } note) Console.Error.WriteLine($"note: {note}");
            if (probes.All(p => p.Status is null)) throw new CliException(NoneReachable(probes));
            return ExitCodes.Ok;
        }));

        var index = new Argument<int>("NODE") { Description = "The node's index (the `node` column)" };
        var kill = new Command("kill", Describe("Kill one node of the local cluster with SIGKILL, as in a crash.", "cluster kill 0")) { index };
        kill.SetAction(Guard(async (r, ct) =>
        {
            var local = RequireLocal(r);
            var i = r.GetValue(index);
            await local.KillNodeAsync(i);
            Console.Out.WriteLine($"killed node {i} (pid {local.File.Nodes[i].Pid}); bring it back with: {Name} cluster start {i}{LocalCluster.DataArg(local.Directory)}");
            return ExitCodes.Ok;
        }));
        var startIndex = new Argument<int>("NODE") { Description = "The node's index (the `node` column)" };
        var start = new Command("start", Describe(
            "Start a stopped node of the local cluster again; it catches up from the leader. A node removed from the cluster is refused.",
            "cluster start 0")) { startIndex };
        start.SetAction(Guard(async (r, ct) =>
        {
            var local = RequireLocal(r);
            var i = r.GetValue(startIndex);
            if (i >= 0 && i < local.File.Nodes.Count && !local.File.Nodes[i].Removed && !local.IsRunning(i) && local.AnyRunning)
                await RefuseNonMemberAsync(local, i, r, ct).ConfigureAwait(false);
            local.StartNode(i);
            Console.Out.WriteLine($"started node {i} (pid {local.File.Nodes[i].Pid})");
            return ExitCodes.Ok;
        }));

        var target = new Argument<int?>("NODE")
        {
            Description = "The index of the node to hand leadership to (the `node` column); omitted: the node whose log is the most up to date",
            Arity = ArgumentArity.ZeroOrOne,
        };
        var transfer = new Command("transfer-leader", Describe(
            "Hand leadership to another node and wait until it leads (e.g. before stopping the leader for maintenance). "
            + "Writes made meanwhile are not lost: they wait for the new leader.",
            "cluster transfer-leader", "cluster transfer-leader 2"))
        { target };
        transfer.SetAction(Guard(async (r, ct) =>
        {
            var to = r.GetValue(target);
            if (to < 0) throw new CliException("NODE must be a node index (0, 1, ...)", ExitCodes.Usage);
            var (urls, _) = Target(r);
            using var client = NewClient(urls, r);
            LeadershipTransfer done;
            try
            {
                done = await client.TransferLeaderAsync(to, ct).ConfigureAwait(false);
            }
            catch (RequestRejectedException e) when (e.StatusCode == System.Net.HttpStatusCode.BadRequest)
            {
                // The one 400 that is about the cluster's state, not the arguments: the node already leads, or is no voter.
                throw new CliException(e.Message, ExitCodes.Failure);
            }
            Console.Out.WriteLine($"node {done.Leader} leads (term {done.Term})");
            return ExitCodes.Ok;
        }));

        var limitBytes = new Option<long?>("--max-bytes") { Description = "Most bytes waiting in all topics (payload, headers and 28 bytes a message), 1 to 1 TiB" }.Within(1);
        var limitMessages = new Option<long?>("--max-messages") { Description = "Most messages waiting in all topics" }.Within(1);
        var limitTopicBytes = new Option<long?>("--max-topic-bytes") { Description = "Most bytes waiting in one topic" }.Within(1);
        var limitTopicMessages = new Option<long?>("--max-topic-messages") { Description = "Most messages waiting in one topic" }.Within(1);
        var limits = new Command("limits", Describe(
            "Show the queue-wide bounds on waiting messages and what they count now (bytes, messages), one name and value a line; "
            + "with options, change them first. "
            + "The change goes through the log, so every node applies it; lowering a bound removes nothing (publishes are refused "
            + "(507) until consumption brings the queue below it).",
            "cluster limits", "cluster limits --max-bytes 4294967296 --max-topic-bytes 4294967296"))
        { limitBytes, limitMessages, limitTopicBytes, limitTopicMessages };
        limits.SetAction(Guard(async (r, ct) =>
        {
            var (bytes, messages, topicBytes, topicMessages) = (r.GetValue(limitBytes), r.GetValue(limitMessages), r.GetValue(limitTopicBytes), r.GetValue(limitTopicMessages));
            var (urls, _) = Target(r);
            using var client = NewClient(urls, r);
            var change = bytes is not null || messages is not null || topicBytes is not null || topicMessages is not null;
            var l = change
                ? await client.SetLimitsAsync(bytes, messages, topicBytes, topicMessages, ct).ConfigureAwait(false)
                : await client.GetLimitsAsync(ct).ConfigureAwait(false);
            // One "name<TAB>value" line each, named as in the HTTP API, for scripts.
            foreach (var (name, value) in new[]
            {
                ("max_bytes", l.MaxBytes), ("max_messages", l.MaxMessages), ("max_topic_bytes", l.MaxTopicBytes),
                ("max_topic_messages", l.MaxTopicMessages), ("bytes", l.Bytes), ("messages", l.Messages),
            })
            {
                Console.Out.WriteLine($"{name}\t{value.ToString(CultureInfo.InvariantCulture)}");
            }
            return ExitCodes.Ok;
        }));

        cluster.Add(up);
        cluster.Add(down);
        cluster.Add(status);
        cluster.Add(kill);
        cluster.Add(start);
        cluster.Add(transfer);
        cluster.Add(limits);
        foreach (var c in MembershipCommands()) cluster.Add(c);
        return cluster;
    }

    internal static async Task<int> ClusterUpAsync(
        string dir, int size, bool detach, bool fresh, ParseResult r, CancellationToken ct, string? authFile = null, bool tls = false, bool authRrmq = false)
    {
        if (!fresh && LocalCluster.Load(dir) is { AnyRunning: true } running && running.Members.Count != size)
        {
            if (authFile is not null && running.File.AuthFile != Path.GetFullPath(authFile))
                throw new CliException($"the running cluster was started with {(running.File.AuthFile is { } f ? "--auth-file " + f : "no --auth-file")}; its new nodes take the same", ExitCodes.Usage);
            if (authRrmq && !running.File.AuthRrmq)
                throw new CliException("the running cluster was started without --auth-rrmq; its new nodes take the same", ExitCodes.Usage);
            if (tls && running.File.Ca is null)
                throw new CliException("the running cluster runs without TLS; its new nodes would too (stop it to restart it with --tls)", ExitCodes.Usage);
            return await ResizeAsync(running, size, r, ct).ConfigureAwait(false);
        }
        var binary = LocalCluster.FindNodeBinary();
        var local = LocalCluster.Start(dir, size, binary, fresh, [], authFile, tls, authRrmq);
        try
        {
            using var client = NewClient(local.Urls, r);
            var snapshot = await ClusterView.WithMembersAsync(client, local, await WaitForLeaderAsync(local, client, ct).ConfigureAwait(false), ct).ConfigureAwait(false);
            AnsiConsole.Write(ClusterView.Render(snapshot, local));
            Console.Out.WriteLine(ClusterView.Summary(snapshot.Probes));
            if (detach)
            {
                var data = LocalCluster.DataArg(local.Directory);
                Console.Out.WriteLine($"The cluster runs in the background (config, data and logs in {local.Directory}).");
                Console.Out.WriteLine($"  {Name} cluster status --watch{data}   live view");
                Console.Out.WriteLine($"  {Name} cluster down{data}             stop it");
                return ExitCodes.Ok;
            }
            await IgnoreCancel(ClusterView.WatchAsync(client, local, "Ctrl-C stops the cluster", ct)).ConfigureAwait(false);
        }
        catch (Exception)
        {
            // A cluster that failed to start, or whose view failed, is stopped rather than left half-running.
            await local.StopAsync().ConfigureAwait(false);
            throw;
        }
        var stopped = await local.StopAsync().ConfigureAwait(false);
        Console.Out.WriteLine($"stopped {stopped} node(s)");
        return ExitCodes.Ok;
    }

    /// <summary>How long `cluster up` waits for every node of a local cluster to answer and one to lead.</summary>
    private static readonly TimeSpan ClusterReadyTimeout = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Polls the nodes until every one answers and one is leader; fails fast if a node process exits. With
    /// <paramref name="runningOnly"/>, nodes stopped on purpose before (`cluster remove` of a node in the middle, `cluster
    /// kill`) are left out.
    /// </summary>
    private static async Task<IReadOnlyList<NodeProbe>> WaitForLeaderAsync(LocalCluster local, RaftMQClient client, CancellationToken ct, bool runningOnly = false)
    {
        var expected = local.Members.Where(n => !runningOnly || local.IsRunning(n.Index)).Select(n => n.Index).ToHashSet();
        var deadline = DateTime.UtcNow + ClusterReadyTimeout;
        while (true)
        {
            foreach (var n in local.Members)
            {
                if (expected.Contains(n.Index) && !local.IsRunning(n.Index))
                    throw new CliException($"node {n.Index} exited while starting; the end of its log ({n.Log}):\n{local.LogTail(n.Index)}");
            }
            var probes = await client.GetClusterStatusAsync(ct).ConfigureAwait(false);
            if (probes.Where(p => local.NodeAt(p.Url) is { } n && expected.Contains(n.Index)).All(p => p.Status is not null)
                && probes.Any(p => p.Status is { IsLeader: true })) return probes;
            if (DateTime.UtcNow > deadline)
                throw new CliException($"the cluster was not ready within {ClusterReadyTimeout.TotalSeconds:0} s ({ClusterView.Summary(probes)}); node logs are in {local.Directory}");
            await Task.Delay(50, ct).ConfigureAwait(false);
        }
    }

    // ---- topics, publish, consume --------------------------------------------------------------------------------

    private static Command TopicCommand()
    {
        var topic = new Command("topic", Describe("Create, list, configure, inspect and delete topics.", "topic create orders", "topic list", "topic stats orders"));
        var name = new Argument<string>("TOPIC") { Description = "Topic name (1-255 bytes of UTF-8)" };
        var create = new Command("create", Describe("Create a topic. Creating an existing topic is not an error.", "topic create orders")) { name };
        create.SetAction(Guard(async (r, ct) =>
        {
            var (urls, _) = Target(r);
            using var client = NewClient(urls, r);
            var t = r.GetValue(name)!;
            var created = await client.CreateTopicAsync(t, ct).ConfigureAwait(false);
            Console.Out.WriteLine(created ? $"created topic '{t}'" : $"topic '{t}' already exists");
            return ExitCodes.Ok;
        }));
        var list = new Command("list", Describe("List the topics, one per line, in creation order.", "topic list"));
        list.SetAction(Guard(async (r, ct) =>
        {
            var (urls, _) = Target(r);
            using var client = NewClient(urls, r);
            var topics = await client.ListTopicsAsync(ct).ConfigureAwait(false);
            foreach (var t in topics) Console.Out.WriteLine(t);
            if (topics.Count == 0) Console.Error.WriteLine($"no topics yet; create one with: {Name} topic create NAME");
            return ExitCodes.Ok;
        }));
        topic.Add(create);
        topic.Add(list);
        AddTopicSettings(topic);
        return topic;
    }

    private static Command PublishCommand(bool inShell = false)
    {
        var topic = new Argument<string>("TOPIC") { Description = "The topic to publish to" };
        var message = new Argument<string?>("MESSAGE") { Description = "The message; without it, every line of standard input is one message", Arity = ArgumentArity.ZeroOrOne };
        var id = new Option<string?>("--id") { Description = "A message id (one MESSAGE only): a repeat within the topic's dedup window is not stored again, so the command may be retried safely" };
        var delayMs = new Option<long?>("--delay-ms") { Description = "Deliver the message (one MESSAGE only) no sooner than this many ms after it is published (up to 86400000)" }.Within(0, NumericValues.MaxMilliseconds);
        var publish = new Command("publish", Describe(
            "Publish a message, or one message per line of standard input. Returns once each is committed.",
            "publish orders \"order 42\"", "publish orders \"order 42\" --id order-42", "publish orders \"reminder\" --delay-ms 60000", "publish orders < orders.txt")) { topic, message, id, delayMs };
        publish.SetAction(Guard(async (r, ct) =>
        {
            // The shell's standard input holds its commands (a script's next lines): they are not messages.
            if (inShell && r.GetValue(message) is null)
                throw new CliException("publish needs a MESSAGE in the shell, e.g. publish orders \"order 42\"", ExitCodes.Usage);
            var (urls, _) = Target(r);
            using var client = NewClient(urls, r);
            var t = r.GetValue(topic)!;
            var messageId = r.GetValue(id);
            var delay = r.GetValue(delayMs);
            if (messageId is not null || delay is not null)
            {
                if (r.GetValue(message) is not { } text) throw new CliException("--id and --delay-ms take one MESSAGE argument, not standard input", ExitCodes.Usage);
                if (messageId is { Length: 0 }) throw new CliException("--id must not be empty", ExitCodes.Usage);
                var outgoing = OutgoingMessage.FromText(text) with { Id = messageId, Delay = delay is { } d ? TimeSpan.FromMilliseconds(d) : null };
                var result = await client.PublishToTopicAsync(t, [outgoing], ct).ConfigureAwait(false);
                Console.Out.WriteLine(result.Duplicates == 0
                    ? $"published 1 message to '{t}' at offset {result.Offsets[0]}"
                    : $"id '{messageId}' was published to '{t}' already, at offset {result.Offsets[0]}: not stored again");
                return ExitCodes.Ok;
            }
            if (r.GetValue(message) is { } m)
            {
                await client.PublishAsync(t, m, ct).ConfigureAwait(false);
                Console.Out.WriteLine($"published 1 message to '{t}'");
                return ExitCodes.Ok;
            }
            if (!Console.IsInputRedirected) Console.Error.WriteLine("reading messages from standard input, one per line (Ctrl-D to end)");
            // Lines go out in batches, one request at a time, in order (RaftMQPublisher); the publisher stops at the
            // first failure, so every line after the failed batch is certainly not published.
            long n = 0;
            var inFlight = new Queue<(Task Done, long Line)>();
            await using (var publisher = new RaftMQPublisher(client, t))
            {
                long read = 0;
                while (await Console.In.ReadLineAsync(ct).ConfigureAwait(false) is { } line)
                {
                    Task done;
                    try
                    {
                        done = await publisher.EnqueueAsync(line, ct).ConfigureAwait(false);
                    }
                    catch (PublisherFaultedException)
                    {
                        break; // the failure is reported below, from the failed line's own task
                    }
                    inFlight.Enqueue((done, ++read));
                    while (inFlight.TryPeek(out var front) && front.Done.IsCompletedSuccessfully)
                    {
                        inFlight.Dequeue();
                        n++;
                    }
                    if (inFlight.TryPeek(out var first) && first.Done.IsFaulted) break;
                }
            }
            foreach (var (done, line) in inFlight)
            {
                try
                {
                    await done.ConfigureAwait(false);
                    n++;
                }
                catch (OutcomeUnknownException e)
                {
                    throw new CliException($"{e.Message}\n{n} message(s) before it were published; the batch from line {line} may or may not have been, and no later line was", ExitCodes.OutcomeUnknown);
                }
                catch (RaftMQException)
                {
                    Console.Error.WriteLine($"{n} message(s) were published before the error; none from line {line} on");
                    throw;
                }
                catch (ArgumentException)
                {
                    // The client refuses a batch over the request bound before sending it; a batch holds at most
                    // 128 KiB of lines, so only one line, alone in its batch, can be that large.
                    throw new CliException(
                        $"line {line} is too large to publish: one message must fit a {RaftMQClient.MaxRequestBytes / 1024 / 1024} MiB request (as JSON)\n"
                        + $"{n} message(s) were published before it; none from line {line} on");
                }
            }
            Console.Out.WriteLine($"published {n} message(s) to '{t}'");
            return ExitCodes.Ok;
        }));
        return publish;
    }

    private static Command ConsumeCommand()
    {
        var topic = new Argument<string>("TOPIC") { Description = "The topic to consume from" };
        var count = new Option<long?>("--count", "-c") { Description = "Stop after this many messages (default: all waiting ones)" }.Within(1);
        var follow = new Option<bool>("--follow", "-f") { Description = "Keep waiting for new messages (until --count or Ctrl-C)" };
        var group = new Option<string?>("--group", "-g") { Description = "Receive as a consumer of this group and ack each message after printing it (at least once)" };
        var consume = new Command("consume", Describe(
            "Pop messages (oldest first) and print each on its own line. Every printed message is removed from the topic. "
            + "With --group, receive each with a lease and ack it once printed: a crash before the ack leaves it to be delivered again.",
            "consume orders", "consume orders --count 1", "consume orders --follow", "consume orders --group billing")) { topic, count, follow, group };
        consume.SetAction(Guard(async (r, ct) =>
        {
            var (urls, _) = Target(r);
            using var client = NewClient(urls, r);
            var t = r.GetValue(topic)!;
            var max = r.GetValue(count);
            if (r.GetValue(group) is { } g) return await ConsumeGroupAsync(client, t, g, max, r.GetValue(follow), ct).ConfigureAwait(false);
            var following = r.GetValue(follow);
            long got = 0;
            var idle = TimeSpan.FromMilliseconds(20);
            var checkedTopic = false;
            while (max is null || got < max)
            {
                string? m;
                try
                {
                    m = await client.PopAsync(t, ct).ConfigureAwait(false);
                }
                catch (OutcomeUnknownException e)
                {
                    throw new CliException($"{e.Message}\n{got} message(s) were consumed before; one more may have been removed", ExitCodes.OutcomeUnknown);
                }
                if (m is not null)
                {
                    Console.Out.WriteLine(m);
                    got++;
                    idle = TimeSpan.FromMilliseconds(20);
                    continue;
                }
                if (!checkedTopic)
                {
                    // 404 means empty or unknown: tell them apart once, so a typo is not a silent wait.
                    if (!(await client.ListTopicsAsync(ct).ConfigureAwait(false)).Contains(t))
                        throw new CliException($"topic '{t}' does not exist; create it with: {Name} topic create {t}");
                    checkedTopic = true;
                }
                if (!following) break;
                // Polling (the REST API has no blocking pop): back off while the topic stays empty.
                await Task.Delay(idle, ct).ConfigureAwait(false);
                idle = TimeSpan.FromMilliseconds(Math.Min(idle.TotalMilliseconds * 2, 500));
            }
            if (got == 0 && !following) Console.Error.WriteLine($"topic '{t}' is empty");
            return ExitCodes.Ok;
        }));
        return consume;
    }

    // ---- bench ---------------------------------------------------------------------------------------------------

    private static Command BenchCommand()
    {
        var bench = new Command("bench", Describe(
            "Load generator: N concurrent clients publish, pop, or receive and ack; prints throughput and latency percentiles.",
            "bench publish --clients 16 --size 100 --duration 10", "bench publish --clients 16 --duration 10 --batch 64",
            "bench pop --clients 4 --count 20000 --json", "bench receive --clients 16 --max 10 --count 50000"));
        foreach (var op in new[] { "publish", "pop", "receive" })
        {
            var clients = new Option<int>("--clients") { Description = "Concurrent clients (1-1024)", DefaultValueFactory = _ => 4 };
            var size = new Option<int>("--size") { Description = "Message size in bytes (0-65536)", DefaultValueFactory = _ => 100 };
            var count = new Option<long?>("--count") { Description = "Messages in total (default 10,000 unless --duration is given)" };
            var duration = new Option<double?>("--duration") { Description = "Run for this many seconds instead of a count" };
            var topic = new Option<string?>("--topic") { Description = "Topic to use (default: a new bench-* topic)" };
            var prefill = new Option<long>("--prefill") { Description = "With --duration: messages published first (not measured)", DefaultValueFactory = _ => 20_000 };
            var json = new Option<bool>("--json") { Description = "Print the result as JSON (no progress bar)" };
            var batch = new Option<int>("--batch")
            {
                Description = $"Messages per request (1-{Bench.MaxBatch}); 1 uses the RRMQ API, more the /v1 batch endpoints",
                DefaultValueFactory = _ => 1,
            };
            var max = new Option<int>("--max")
            {
                Description = $"Messages per receive (1-{Bench.MaxBatch}); all it got are acked by the client's next receive (or, with --separate-ack, one ack request)",
                DefaultValueFactory = _ => 1,
            };
            var separateAck = new Option<bool>("--separate-ack")
            {
                Description = "Ack each batch with an ack request of its own right after its receive (two requests and two log entries a batch), "
                    + "instead of with the client's next receive",
            };
            var lease = new Option<int>("--lease-ms") { Description = "Lease of each receive, in milliseconds", DefaultValueFactory = _ => 30_000 };
            var group = new Option<string>("--group") { Description = "Consumer group the clients share (created if missing)", DefaultValueFactory = _ => "default" };
            var cmd = new Command(op, op switch
            {
                "publish" => Describe("Measure publish: each operation is one committed request of --batch messages.", "bench publish --clients 1 --count 2000",
                    "bench publish --clients 16 --size 100 --duration 10", "bench publish --clients 16 --duration 10 --batch 64"),
                "pop" => Describe("Measure pop: fills a topic (not measured, in batches of --batch), then pops it, up to --batch messages a request.",
                    "bench pop --clients 4 --count 20000", "bench pop --clients 4 --count 100000 --batch 100"),
                _ => Describe(
                    "Measure at-least-once consumption: fills a topic (not measured), then each client receives up to --max messages with a "
                    + "lease (POST /v1/topics/T/receive), again and again, each receive carrying the acks of the client's previous batch "
                    + "(\"ack\": one request and one log entry per batch), and acks its last batch with POST /v1/topics/T/ack. With "
                    + "--separate-ack each receive is followed by an ack request of its own instead. "
                    + "msg/s counts acked messages; latency is per message, from sending its receive to its ack's answer.",
                    "bench receive --clients 16 --max 1 --count 20000", "bench receive --clients 16 --max 100 --count 200000 --json",
                    "bench receive --clients 16 --max 10 --count 50000 --separate-ack"),
            })
            { clients, size, count, duration, topic, json };
            if (op == "receive")
            {
                cmd.Add(max);
                cmd.Add(lease);
                cmd.Add(group);
                cmd.Add(separateAck);
            }
            else
            {
                cmd.Add(batch);
            }
            if (op != "publish") cmd.Add(prefill);
            cmd.SetAction(Guard(async (r, ct) =>
            {
                var c = r.GetValue(clients);
                var s = r.GetValue(size);
                var n = r.GetValue(count);
                var d = r.GetValue(duration);
                if (c is < 1 or > 1024) throw new CliException("--clients must be between 1 and 1024", ExitCodes.Usage);
                if (s is < 0 or > 65536) throw new CliException("--size must be between 0 and 65536 bytes", ExitCodes.Usage);
                if (n is not null && d is not null) throw new CliException("give --count or --duration, not both", ExitCodes.Usage);
                if (n is <= 0) throw new CliException("--count must be positive", ExitCodes.Usage);
                if (d is <= 0 or > 3600) throw new CliException("--duration must be between 0 and 3600 seconds", ExitCodes.Usage);
                if (n is null && d is null) n = 10_000;
                var b = op == "receive" ? r.GetValue(max) : r.GetValue(batch);
                var batchName = op == "receive" ? "--max" : "--batch";
                if (b is < 1 or > Bench.MaxBatch) throw new CliException($"{batchName} must be between 1 and {Bench.MaxBatch}", ExitCodes.Usage);
                var leaseMs = op == "receive" ? r.GetValue(lease) : 30_000;
                if (leaseMs is < 1 or > 43_200_000) throw new CliException("--lease-ms must be between 1 and 43,200,000 (12 h)", ExitCodes.Usage);
                var groupName = op == "receive" ? r.GetValue(group) ?? "default" : "default";
                if (groupName.Length == 0) throw new CliException("--group must not be empty", ExitCodes.Usage);
                // A batch publish is one request body, bounded at 1 MiB: each message costs its bytes plus quotes and a comma.
                if (op != "receive" && b > 1 && (long)b * (s + 3) + 1024 > RaftMQClient.MaxRequestBytes)
                    throw new CliException("--batch x --size must fit a 1 MiB request (batch x (size + 3) + 1 KiB)", ExitCodes.Usage);
                var p = op != "publish" ? r.GetValue(prefill) : 0;
                if (op != "publish" && p <= 0) throw new CliException("--prefill must be positive", ExitCodes.Usage);
                var settings = new BenchSettings(op, c, s, n, d is null ? null : TimeSpan.FromSeconds(d.Value),
                    r.GetValue(topic) ?? $"bench-{Guid.NewGuid().ToString("N")[..8]}", p, b, leaseMs, groupName, op == "receive" && r.GetValue(separateAck));
                var (urls, _) = Target(r);
                var options = ClientOptions(urls, r);
                options.MaxConnectionsPerNode = Math.Max(options.MaxConnectionsPerNode, c);
                using var client = new RaftMQClient(options);
                var asJson = r.GetValue(json);
                var result = await Bench.RunAsync(client, settings, showProgress: !asJson && Interactive, ct).ConfigureAwait(false);
                if (asJson)
                {
                    Console.Out.WriteLine(Bench.Json(result));
                }
                else
                {
                    AnsiConsole.Write(Bench.Table(result));
                    foreach (var (name, part) in result.Parts)
                    {
                        Console.Out.WriteLine(FormattableString.Invariant(
                            $"{name} requests: {part.Count:N0}, mean {part.SumMicros / Math.Max(1, part.Count) / 1000:0.00} ms, p50 {part.Percentile(0.5) / 1000:0.00} ms, p99 {part.Percentile(0.99) / 1000:0.00} ms"));
                    }
                    Console.Out.WriteLine($"topic '{settings.Topic}'" + (result.Errors.Count == 0 ? "" : "; errors: " + string.Join(", ", result.Errors.Select(e => $"{e.Key} {e.Value}"))));
                }
                return result.ErrorCount == 0 ? ExitCodes.Ok : ExitCodes.Failure;
            }));
            bench.Add(cmd);
        }
        return bench;
    }

    // ---- shell and demo ------------------------------------------------------------------------------------------

    private static Command ShellCommand()
    {
        var shell = new Command("shell", Describe(
            "An interactive prompt for every raftmq command (without the `raftmq` prefix), with line editing, history and help. "
            + "With standard input redirected it runs a script, one command a line, and exits with the code of the last command that failed (0 if none did).",
            "shell", "shell --urls http://127.0.0.1:8567"));
        shell.SetAction(Guard((r, ct) => Shell.RunAsync(r.GetValue(Urls), r.GetValue(Data), r.GetValue(ApiKey), r.GetValue(Ca))));
        return shell;
    }

    private static Command DemoCommand()
    {
        var demo = new Command("demo", Describe(
            "Start the local cluster in the background (the one recorded in --data, else 3 nodes; or use the running one), send a few messages through it, "
            + "and show what to try next.", "demo"));
        demo.SetAction(Guard((r, ct) => Demo.RunAsync(r, DataDir(r), ct)));
        return demo;
    }

    // ---- shared --------------------------------------------------------------------------------------------------

    internal static string DataDir(ParseResult r) => r.GetValue(Data) ?? LocalCluster.DefaultDirectory;

    private static LocalCluster RequireLocal(ParseResult r)
    {
        var dir = DataDir(r);
        return LocalCluster.Load(dir) ?? throw new CliException($"no local cluster is recorded in {dir}; start one with: {Name} cluster up --detach");
    }

    /// <summary>The nodes to talk to: --urls, else $RAFTMQ_URLS, else the running local cluster.</summary>
    internal static (IReadOnlyList<Uri> Urls, LocalCluster? Local) Target(ParseResult r)
    {
        var given = r.GetValue(Urls) ?? Environment.GetEnvironmentVariable("RAFTMQ_URLS");
        if (!string.IsNullOrWhiteSpace(given)) return (ParseUrls(given), null);
        var dir = DataDir(r);
        var local = LocalCluster.Load(dir);
        if (local is null || !local.AnyRunning)
        {
            throw new CliException(
                $"no cluster to talk to: no --urls given and no local cluster is running in {dir}\n"
                + $"start one with `{Name} cluster up --detach`, or pass --urls http://HOST:PORT,...");
        }
        return (local.Urls, local);
    }

    internal static IReadOnlyList<Uri> ParseUrls(string text)
    {
        var urls = new List<Uri>();
        foreach (var part in text.Split([',', ' '], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var candidate = part.Contains("://", StringComparison.Ordinal) ? part : "http://" + part;
            if (!Uri.TryCreate(candidate, UriKind.Absolute, out var uri) || (uri.Scheme != "http" && uri.Scheme != "https") || uri.Host.Length == 0)
                throw new CliException($"'{part}' is not a node URL (expected e.g. http://127.0.0.1:8567)", ExitCodes.Usage);
            urls.Add(uri);
        }
        return urls.Count > 0 ? urls : throw new CliException("--urls is empty", ExitCodes.Usage);
    }

    internal static RaftMQClientOptions ClientOptions(IReadOnlyList<Uri> urls, ParseResult r)
    {
        var seconds = r.GetValue(Timeout);
        if (seconds is <= 0 or > 86_400) throw new CliException("--timeout must be between 0 and 86400 seconds", ExitCodes.Usage);
        var key = r.GetValue(ApiKey) ?? Environment.GetEnvironmentVariable("RAFTMQ_API_KEY");
        var options = new RaftMQClientOptions
        {
            OperationTimeout = TimeSpan.FromSeconds(seconds),
            ApiKey = string.IsNullOrWhiteSpace(key) ? null : key.Trim(),
            CaCertificate = TrustedCa(r, urls),
        };
        foreach (var u in urls) options.Nodes.Add(u);
        return options;
    }

    internal static RaftMQClient NewClient(IReadOnlyList<Uri> urls, ParseResult r) => new(ClientOptions(urls, r));

    /// <summary>Each node with why it did not answer (a refused connection, a timeout, a node that speaks HTTPS only).</summary>
    private static string NoneReachable(IReadOnlyList<NodeProbe> probes) =>
        "no node answered: " + string.Join("; ", probes.Select(p =>
        {
            var url = NodeUrl.Format(p.Url);
            var why = p.Error ?? "no answer"; // the client's messages name the node the same way (RaftMQClient.MemberUrl)
            return why.StartsWith(url, StringComparison.Ordinal) ? why : $"{url}: {why}";
        }));

    private static async Task IgnoreCancel(Task task)
    {
        try
        {
            await task.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // The normal end of a view that runs until Ctrl-C.
        }
    }

    /// <summary>Turns every failure a user can cause into a one-line message and an exit code.</summary>
    private static Func<ParseResult, CancellationToken, Task<int>> Guard(Func<ParseResult, CancellationToken, Task<int>> action) =>
        async (r, ct) =>
        {
            try
            {
                return await action(r, ct).ConfigureAwait(false);
            }
            catch (CliException e)
            {
                Error(e.Message);
                return e.ExitCode;
            }
            catch (OutcomeUnknownException e)
            {
                Error($"{e.Message}\ncheck before retrying: the {e.Operation} may have been applied");
                return ExitCodes.OutcomeUnknown;
            }
            catch (TopicNotFoundException e)
            {
                Error($"{e.Message}; create it with: {Name} topic create {e.Topic}");
                return ExitCodes.Failure;
            }
            catch (ClusterUnavailableException e)
            {
                Error(e.Reason switch
                {
                    "unreachable" => $"cannot reach the cluster: {e.Message}",
                    "no-leader" => $"the cluster has no leader (is a majority of its nodes running?): {e.Message}",
                    _ => $"the cluster is unavailable: {e.Message}",
                });
                return ExitCodes.Failure;
            }
            catch (AuthenticationFailedException e)
            {
                Error($"{e.Message}\npass the key with --api-key KEY or $RAFTMQ_API_KEY");
                return ExitCodes.AccessDenied;
            }
            catch (PermissionDeniedException e)
            {
                Error(e.Message);
                return ExitCodes.AccessDenied;
            }
            catch (RequestRejectedException e)
            {
                // 400: the request itself was invalid (a value out of the cluster's range, a bad name), so it is the
                // arguments' fault and nothing changed; 409, 413, 507: refused for the cluster's state or the size.
                Error(e.Message);
                return e.StatusCode == System.Net.HttpStatusCode.BadRequest ? ExitCodes.Usage : ExitCodes.Failure;
            }
            catch (ArgumentException e)
            {
                Error(e.Message);
                return ExitCodes.Usage;
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                Console.Error.WriteLine("interrupted");
                return ExitCodes.Interrupted;
            }
        };

    internal static void Error(string message) => Console.Error.WriteLine($"{Name}: error: {message}");

}

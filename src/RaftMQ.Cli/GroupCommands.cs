using System.CommandLine;
using System.Globalization;
using RaftMQ.Client;

namespace RaftMQ.Cli;

/// <summary>The at-least-once verbs: topic configure|stats|delete, group create|delete, receive, ack, dlq list|redrive, consume --group.</summary>
public static partial class Cli
{
    private static void AddTopicSettings(Command topic)
    {
        var name = new Argument<string>("TOPIC") { Description = "Topic name" };
        var maxDeliveries = new Option<int?>("--max-deliveries") { Description = "Deliveries after which a message is dead-lettered (default 20 for a new topic)" };
        var dedupWindow = new Option<long?>("--dedup-window-ms") { Description = "How long message ids are remembered for idempotent publishing, in ms (default 3600000 for a new topic; 0: none)" }.Within(0, NumericValues.MaxMilliseconds);
        var maxMessages = new Option<long?>("--max-messages") { Description = "Most messages retained (not yet acked by every group); 0: unlimited (the default)" }.Within(0);
        var maxBytes = new Option<long?>("--max-bytes") { Description = "Most bytes retained (payload, headers and 28 bytes a message); 0: unlimited (the default)" }.Within(0);
        var maxAge = new Option<long?>("--max-age-ms") { Description = "Age in ms at which a message expires; 0: never (the default)" }.Within(0, NumericValues.MaxMilliseconds);
        var overflow = new Option<string?>("--overflow") { Description = "At max-messages or max-bytes: reject-publish (the default) or drop-oldest" };
        var expire = new Option<string?>("--expire") { Description = "What becomes of an expired message: dead-letter (the default) or drop" };
        var configure = new Command("configure", Describe(
            "Create a topic or change its settings.", "topic configure orders --max-deliveries 5", "topic configure orders --dedup-window-ms 86400000",
            "topic configure events --max-messages 100000 --overflow drop-oldest", "topic configure orders --max-age-ms 3600000 --expire dead-letter"))
            { name, maxDeliveries, dedupWindow, maxMessages, maxBytes, maxAge, overflow, expire };
        configure.SetAction(Guard(async (r, ct) =>
        {
            var (urls, _) = Target(r);
            using var client = NewClient(urls, r);
            var t = r.GetValue(name)!;
            var window = r.GetValue(dedupWindow);
            var age = r.GetValue(maxAge);
            var settings = new TopicSettings
            {
                MaxDeliveries = r.GetValue(maxDeliveries), DedupWindow = window is { } ms ? TimeSpan.FromMilliseconds(ms) : null,
                MaxMessages = r.GetValue(maxMessages), MaxBytes = r.GetValue(maxBytes), MaxAge = age is { } a ? TimeSpan.FromMilliseconds(a) : null,
                Overflow = r.GetValue(overflow) switch
                {
                    null => null,
                    "reject-publish" => TopicOverflow.RejectPublish,
                    "drop-oldest" => TopicOverflow.DropOldest,
                    var other => throw new CliException($"--overflow must be reject-publish or drop-oldest, not '{other}'", ExitCodes.Usage),
                },
                Expire = r.GetValue(expire) switch
                {
                    null => null,
                    "dead-letter" => TopicExpiry.DeadLetter,
                    "drop" => TopicExpiry.Drop,
                    var other => throw new CliException($"--expire must be dead-letter or drop, not '{other}'", ExitCodes.Usage),
                },
            };
            var created = await client.ConfigureTopicAsync(t, settings, ct).ConfigureAwait(false);
            Console.Out.WriteLine(created ? $"created topic '{t}'" : $"configured topic '{t}'");
            return ExitCodes.Ok;
        }));
        var statsName = new Argument<string>("TOPIC") { Description = "Topic name" };
        var stats = new Command("stats", Describe(
            "Show a topic's counts and each consumer group's ready, leased, delayed and unacked messages.", "topic stats orders")) { statsName };
        stats.SetAction(Guard(async (r, ct) =>
        {
            var (urls, _) = Target(r);
            using var client = NewClient(urls, r);
            var s = await client.GetTopicStatsAsync(r.GetValue(statsName)!, cancellationToken: ct).ConfigureAwait(false);
            Console.Out.WriteLine($"topic {s.Topic}: offsets [{s.Head}, {s.Tail}), {s.Messages} retained ({s.Bytes} bytes), max_deliveries {s.MaxDeliveries}, "
                + $"{s.DeadLettered} dead-lettered, {s.PublishedTotal} published");
            Console.Out.WriteLine($"retention: max_messages {Limit(s.MaxMessages)}, max_bytes {Limit(s.MaxBytes)}, max_age_ms {Limit(s.MaxAgeMs)}, "
                + $"overflow {s.Overflow}, expire {s.Expire}; {s.OverflowDroppedTotal} dropped by overflow, {s.ExpiredTotal} expired");
            Console.Out.WriteLine("group\tready\tleased\tdelayed\tunacked\toldest_age_ms\tacked_total\tdead_lettered_total");
            foreach (var g in s.Groups)
            {
                Console.Out.WriteLine(string.Join('\t', g.Group, g.Ready, g.Leased, g.Delayed, g.Unacked,
                    g.OldestAgeMs?.ToString(CultureInfo.InvariantCulture) ?? "-", g.AckedTotal, g.DeadLetteredTotal));
            }
            // The delivery-count histogram of each group's unacked messages, one line a group: "0" never delivered.
            foreach (var g in s.Groups.Where(g => g.DeliveryCounts.Count > 0))
            {
                Console.Out.WriteLine($"deliveries of {g.Group}'s unacked messages: "
                    + string.Join(' ', g.DeliveryCounts.Select(c => $"{c.Key}:{c.Value}")));
            }
            return ExitCodes.Ok;
        }));
        var deleteName = new Argument<string>("TOPIC") { Description = "Topic name" };
        var delete = new Command("delete", Describe("Delete a topic with its groups and dead letters.", "topic delete orders")) { deleteName };
        delete.SetAction(Guard(async (r, ct) =>
        {
            var (urls, _) = Target(r);
            using var client = NewClient(urls, r);
            var t = r.GetValue(deleteName)!;
            await client.DeleteTopicAsync(t, ct).ConfigureAwait(false);
            Console.Out.WriteLine($"deleted topic '{t}'");
            return ExitCodes.Ok;
        }));
        static string Limit(long value) => value == 0 ? "unlimited" : value.ToString(CultureInfo.InvariantCulture);
        topic.Add(configure);
        topic.Add(stats);
        topic.Add(delete);
    }

    private static Command GroupCommand()
    {
        var command = new Command("group", Describe(
            "Create and delete a topic's consumer groups. Every group gets every message; a topic keeps each message until every group is done with it.",
            "group create orders billing", "group delete orders default"));
        var createTopic = new Argument<string>("TOPIC") { Description = "Topic name" };
        var createGroup = new Argument<string>("GROUP") { Description = "Group name (1-64 letters, digits, '-', '_', '.')" };
        var start = new Option<string>("--start") { Description = "Where the group starts: earliest (every retained message) or latest (new ones only)", DefaultValueFactory = _ => "earliest" };
        var create = new Command("create", Describe("Create a consumer group; creating an existing one changes nothing.", "group create orders billing --start latest"))
            { createTopic, createGroup, start };
        create.SetAction(Guard(async (r, ct) =>
        {
            var position = r.GetValue(start) switch
            {
                "earliest" => GroupStartPosition.Earliest,
                "latest" => GroupStartPosition.Latest,
                var other => throw new CliException($"--start must be earliest or latest, not '{other}'", ExitCodes.Usage),
            };
            var (urls, _) = Target(r);
            using var client = NewClient(urls, r);
            var (t, g) = (r.GetValue(createTopic)!, r.GetValue(createGroup)!);
            var created = await client.CreateGroupAsync(t, g, position, ct).ConfigureAwait(false);
            Console.Out.WriteLine(created ? $"created group '{g}' of topic '{t}'" : $"group '{g}' of topic '{t}' exists (unchanged)");
            return ExitCodes.Ok;
        }));
        var deleteTopic = new Argument<string>("TOPIC") { Description = "Topic name" };
        var deleteGroup = new Argument<string>("GROUP") { Description = "Group name" };
        var delete = new Command("delete", Describe(
            "Delete a consumer group: its leases end and what only it still held goes. A topic keeps at least one group. Deleting 'default' ends the RRMQ pops on the topic until it is created again.",
            "group delete orders default")) { deleteTopic, deleteGroup };
        delete.SetAction(Guard(async (r, ct) =>
        {
            var (urls, _) = Target(r);
            using var client = NewClient(urls, r);
            var (t, g) = (r.GetValue(deleteTopic)!, r.GetValue(deleteGroup)!);
            if (!await client.DeleteGroupAsync(t, g, ct).ConfigureAwait(false))
                throw new CliException($"topic '{t}' has no group '{g}'", ExitCodes.Failure);
            Console.Out.WriteLine($"deleted group '{g}' of topic '{t}'");
            return ExitCodes.Ok;
        }));
        command.Add(create);
        command.Add(delete);
        return command;
    }

    /// <summary>
    /// A value for a tab-separated column before the last: a backslash, tab, line feed or carriage return in it is
    /// written <c>\\</c>, <c>\t</c>, <c>\n</c>, <c>\r</c>, so that it never moves the columns after it or starts a line.
    /// </summary>
    internal static string Column(string value)
    {
        if (value.AsSpan().IndexOfAny("\\\t\n\r") < 0) return value;
        var escaped = new System.Text.StringBuilder(value.Length + 8);
        foreach (var c in value)
        {
            _ = c switch
            {
                '\\' => escaped.Append(@"\\"),
                '\t' => escaped.Append(@"\t"),
                '\n' => escaped.Append(@"\n"),
                '\r' => escaped.Append(@"\r"),
                _ => escaped.Append(c),
            };
        }
        return escaped.ToString();
    }

    /// <summary>
    /// Runs a call on <paramref name="group"/> of <paramref name="topic"/>; the cluster's 404 for a missing group (a
    /// missing topic is <see cref="TopicNotFoundException"/>) becomes an error naming both and the verb that creates it.
    /// </summary>
    private static async Task<T> InGroup<T>(string topic, string group, Func<Task<T>> call)
    {
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (RequestRejectedException e) when (e.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
            throw new CliException($"topic '{topic}' has no group '{group}'; create it with: {Name} group create {topic} {group}");
        }
    }

    private static Option<string> GroupOption() =>
        new("--group", "-g") { Description = "Consumer group", DefaultValueFactory = _ => "default" };

    private static Command ReceiveCommand()
    {
        var topic = new Argument<string>("TOPIC") { Description = "The topic to receive from" };
        var group = GroupOption();
        var max = new Option<int>("--max", "-n") { Description = "Most messages to lease", DefaultValueFactory = _ => 1 }.Within(1);
        var lease = new Option<long>("--lease-ms") { Description = "Lease: the messages are delivered again unless acked within it", DefaultValueFactory = _ => 30_000 }.Within(1, NumericValues.MaxMilliseconds);
        var waitMs = new Option<long>("--wait-ms") { Description = "When nothing is ready, wait up to this long (at most 20000 ms) for messages", DefaultValueFactory = _ => 0 }.Within(0, NumericValues.MaxMilliseconds);
        var receive = new Command("receive", Describe(
            "Lease messages without removing them; prints RECEIPT, OFFSET, DELIVERY_COUNT and the body, tab-separated, one line each. "
            + "Ack them with `ack TOPIC RECEIPT...` before the lease ends.",
            "receive orders", "receive orders --group billing --max 10 --lease-ms 60000", "receive orders --wait-ms 20000")) { topic, group, max, lease, waitMs };
        receive.SetAction(Guard(async (r, ct) =>
        {
            var (urls, _) = Target(r);
            using var client = NewClient(urls, r);
            var t = r.GetValue(topic)!;
            var got = await InGroup(t, r.GetValue(group)!, () => client.ReceiveAsync(t, r.GetValue(group)!, r.GetValue(max), TimeSpan.FromMilliseconds(r.GetValue(lease)),
                TimeSpan.FromMilliseconds(r.GetValue(waitMs)), cancellationToken: ct)).ConfigureAwait(false);
            foreach (var d in got) Console.Out.WriteLine($"{d.Receipt}\t{d.Offset}\t{d.DeliveryCount}\t{d.Text}");
            if (got.Count == 0) Console.Error.WriteLine($"no message ready in '{t}' for group '{r.GetValue(group)}'");
            return ExitCodes.Ok;
        }));
        return receive;
    }

    private static Command AckCommand()
    {
        var topic = new Argument<string>("TOPIC") { Description = "The topic the messages came from" };
        var receipts = new Argument<string[]>("RECEIPT") { Description = "Receipts printed by receive", Arity = ArgumentArity.OneOrMore };
        var group = GroupOption();
        var ack = new Command("ack", Describe(
            "Ack received messages by their receipts. Exits 1 when a receipt is stale (its lease ended and the message went to another consumer, or it was acked already), "
            + "or when the topic or the group does not exist.",
            "ack orders r0-1-f041c189e9a304f0", "ack orders r3-2-9b1d0c6e2f7a4b58 --group billing")) { topic, receipts, group };
        ack.SetAction(Guard(async (r, ct) =>
        {
            var (urls, _) = Target(r);
            using var client = NewClient(urls, r);
            var (t, g) = (r.GetValue(topic)!, r.GetValue(group)!);
            var result = await InGroup(t, g, () => client.AckAsync(t, r.GetValue(receipts)!, g, cancellationToken: ct)).ConfigureAwait(false);
            if (result.Applied == 0 && result.Stale.Count > 0)
            {
                // Receipts of the tagless form of earlier builds are answered stale without the topic and group being
                // looked up: tell a missing one apart (a missing topic throws on, exit 1).
                var stats = await client.GetTopicStatsAsync(t, cancellationToken: ct).ConfigureAwait(false);
                if (!stats.Groups.Any(x => x.Group == g)) throw new CliException($"topic '{t}' has no group '{g}'; nothing was acked");
            }
            Console.Out.WriteLine($"acked {result.Applied}");
            foreach (var s in result.Stale) Console.Error.WriteLine($"stale receipt {s}: not acked (delivered again since, or acked already)");
            return result.Stale.Count == 0 ? ExitCodes.Ok : ExitCodes.Failure;
        }));
        return ack;
    }

    private static Command DlqCommand()
    {
        var dlq = new Command("dlq", Describe("Inspect and redrive a topic's dead letters.", "dlq list orders", "dlq redrive orders"));
        var topic = new Argument<string>("TOPIC") { Description = "The topic whose dead letters to show" };
        var max = new Option<int>("--max", "-n") { Description = "Most dead letters to show", DefaultValueFactory = _ => 100 }.Within(1);
        var list = new Command("list", Describe(
            "Show dead letters without removing them: offset, delivery count, last error and body, tab-separated.", "dlq list orders")) { topic, max };
        list.SetAction(Guard(async (r, ct) =>
        {
            var (urls, _) = Target(r);
            using var client = NewClient(urls, r);
            var t = r.GetValue(topic)!;
            IReadOnlyList<ReceivedMessage> letters;
            try
            {
                letters = await client.PeekAsync(t, max: r.GetValue(max), deadLetters: true, cancellationToken: ct).ConfigureAwait(false);
            }
            catch (TopicNotFoundException)
            {
                // Nodes built before 200 [] for a topic that never dead-lettered answer 404 for it as for a missing
                // topic: the topic's own stats tell them apart (a missing topic throws on, exit 1).
                await client.GetTopicStatsAsync(t, cancellationToken: ct).ConfigureAwait(false);
                letters = [];
            }
            foreach (var m in letters)
            {
                string Header(string name) => m.Headers.FirstOrDefault(h => h.Key == name).Value ?? "-";
                Console.Out.WriteLine($"{Header("raftmq-original-offset")}\t{Header("raftmq-delivery-count")}\t{Column(Header("raftmq-last-error"))}\t{m.Text}");
            }
            if (letters.Count == 0) Console.Error.WriteLine($"no dead letters in '{t}'");
            return ExitCodes.Ok;
        }));
        var redriveTopic = new Argument<string>("TOPIC") { Description = "The topic whose dead letters to move back" };
        var redriveMax = new Option<int>("--max", "-n") { Description = "Most dead letters to move", DefaultValueFactory = _ => 100 }.Within(1);
        var redrive = new Command("redrive", Describe("Move dead letters back to the end of their topic.", "dlq redrive orders")) { redriveTopic, redriveMax };
        redrive.SetAction(Guard(async (r, ct) =>
        {
            var (urls, _) = Target(r);
            using var client = NewClient(urls, r);
            var t = r.GetValue(redriveTopic)!;
            int n;
            try
            {
                n = await client.RedriveAsync(t, r.GetValue(redriveMax), ct).ConfigureAwait(false);
            }
            catch (OutcomeUnknownException e)
            {
                throw new CliException($"{e.Message}\nsome dead letters may have been moved", ExitCodes.OutcomeUnknown);
            }
            Console.Out.WriteLine($"redrove {n} message(s) to '{t}'");
            return ExitCodes.Ok;
        }));
        dlq.Add(list);
        dlq.Add(redrive);
        return dlq;
    }

    /// <summary>How long each receive of <c>consume --group --follow</c> waits on the server for a message (at most the server's 20 s).</summary>
    private static readonly TimeSpan FollowWait = TimeSpan.FromSeconds(10);

    /// <summary>
    /// <c>consume --group</c>: receive with a lease, print, then ack what was printed. Ctrl-C ends it as any command
    /// (exit 130): what was acked stays acked, and leased messages not acked come back when their lease ends.
    /// </summary>
    private static async Task<int> ConsumeGroupAsync(RaftMQClient client, string topic, string group, long? max, bool following, CancellationToken ct)
    {
        long got = 0;
        while (max is null || got < max)
        {
            var want = (int)Math.Min(100, max is null ? 100 : max.Value - got);
            // --follow long-polls: the server holds the receive until a message is ready or FollowWait is over.
            var batch = await InGroup(topic, group, () => client.ReceiveAsync(topic, group, want, TimeSpan.FromSeconds(30), following ? FollowWait : TimeSpan.Zero, cancellationToken: ct))
                .ConfigureAwait(false);
            if (batch.Count > 0)
            {
                foreach (var d in batch) Console.Out.WriteLine(d.Text);
                await Console.Out.FlushAsync(ct).ConfigureAwait(false);
                var acked = await client.AckAsync(topic, [.. batch.Select(d => d.Receipt)], group, cancellationToken: ct).ConfigureAwait(false);
                foreach (var s in acked.Stale) Console.Error.WriteLine($"stale receipt {s}: its lease ended before the ack; the message will be delivered again");
                got += batch.Count;
                continue;
            }
            if (!following) break;
        }
        if (got == 0 && !following) Console.Error.WriteLine($"no message ready in '{topic}' for group '{group}'");
        return ExitCodes.Ok;
    }
}

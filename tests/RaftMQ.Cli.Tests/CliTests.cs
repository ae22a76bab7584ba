using System.Security.Cryptography.X509Certificates;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;

namespace RaftMQ.Cli.Tests;

/// <summary>Commands without a cluster: help, argument errors, no cluster to talk to.</summary>
public sealed class CliUsageTests
{
    [Theory]
    [InlineData("")]
    [InlineData("cluster")]
    [InlineData("cluster up")]
    [InlineData("cluster down")]
    [InlineData("cluster status")]
    [InlineData("cluster kill")]
    [InlineData("cluster start")]
    [InlineData("cluster transfer-leader")]
    [InlineData("cluster limits")]
    [InlineData("cluster members")]
    [InlineData("cluster add")]
    [InlineData("cluster remove")]
    [InlineData("topic create")]
    [InlineData("topic list")]
    [InlineData("publish")]
    [InlineData("consume")]
    [InlineData("bench publish")]
    [InlineData("bench pop")]
    [InlineData("bench receive")]
    [InlineData("shell")]
    [InlineData("demo")]
    [InlineData("topic configure")]
    [InlineData("topic stats")]
    [InlineData("topic delete")]
    [InlineData("group")]
    [InlineData("group create")]
    [InlineData("group delete")]
    [InlineData("receive")]
    [InlineData("ack")]
    [InlineData("dlq")]
    [InlineData("dlq list")]
    [InlineData("dlq redrive")]
    [InlineData("cert")]
    [InlineData("cert ca")]
    [InlineData("cert node")]
    [InlineData("cert client")]
    public async Task Every_command_has_help_with_an_example(string command)
    {
        await using var env = new CliEnvironment();
        var r = await env.RunAsync([.. command.Split(' ', StringSplitOptions.RemoveEmptyEntries), "--help"]);
        r.ExitCode.ShouldBe(0, r.ToString());
        r.Stdout.ShouldContain("Usage:");
        r.Stdout.ShouldContain($"raftmq {command}".Trim());
        r.Stdout.ShouldContain("Example");
    }

    [Theory]
    [InlineData("frobnicate", "frobnicate")]
    [InlineData("publish", "TOPIC")]
    [InlineData("bench publish --clients 0 --urls http://127.0.0.1:1", "--clients")]
    [InlineData("bench publish --count 5 --duration 1 --urls http://127.0.0.1:1", "not both")]
    [InlineData("bench publish --batch 0 --urls http://127.0.0.1:1", "--batch")]
    [InlineData("bench pop --batch 1001 --urls http://127.0.0.1:1", "--batch")]
    [InlineData("bench publish --batch 100 --size 20000 --urls http://127.0.0.1:1", "1 MiB")]
    [InlineData("bench receive --max 0 --urls http://127.0.0.1:1", "--max")]
    [InlineData("bench receive --lease-ms 0 --urls http://127.0.0.1:1", "--lease-ms")]
    [InlineData("topic list --urls ftp://example", "not a node URL")]
    [InlineData("cluster up --nodes 99", "--nodes")]
    [InlineData("consume t --count x", "x")]
    [InlineData("cluster transfer-leader x --urls http://127.0.0.1:1", "'x'")]
    [InlineData("cluster transfer-leader -1 --urls http://127.0.0.1:1", "NODE must be a node index")]
    [InlineData("cluster remove -1 --urls http://127.0.0.1:1", "NODE must be a node number")]
    [InlineData("cluster limits --max-bytes 0 --urls http://127.0.0.1:1", "at least 1")]
    [InlineData("cluster add ftp://10.0.0.4:8567 --urls http://127.0.0.1:1", "not a node URL")]
    [InlineData("cert ca --days 0", "--days")]
    [InlineData("cert node ../escape", "NAME must be")]
    [InlineData("topic list --urls https://127.0.0.1:1 --ca /nonexistent/ca.pem", "--ca: cannot read /nonexistent/ca.pem")]
    // Every numeric option and argument is parsed and bounded in one place, which names the option in words.
    [InlineData("dlq list t --max 0 --urls http://127.0.0.1:1", "--max must be at least 1")]
    [InlineData("dlq redrive t --max 0 --urls http://127.0.0.1:1", "--max must be at least 1")]
    [InlineData("publish t x --delay-ms abc --urls http://127.0.0.1:1", "--delay-ms must be a whole number, not 'abc'")]
    [InlineData("publish t x --delay-ms -1 --urls http://127.0.0.1:1", "--delay-ms must be at least 0")]
    [InlineData("publish t x --delay-ms 99999999999999999999 --urls http://127.0.0.1:1", "--delay-ms must be at most")]
    [InlineData("receive t --max 0 --urls http://127.0.0.1:1", "--max must be at least 1")]
    [InlineData("receive t --max 3000000000 --urls http://127.0.0.1:1", "--max must be at most 2147483647")]
    [InlineData("receive t --lease-ms 1.5 --urls http://127.0.0.1:1", "--lease-ms must be a whole number, not '1.5'")]
    [InlineData("topic configure t --max-age-ms -5 --urls http://127.0.0.1:1", "--max-age-ms must be at least 0")]
    [InlineData("topic list --timeout soon --urls http://127.0.0.1:1", "--timeout must be a number, not 'soon'")]
    [InlineData("cluster kill zero", "NODE must be a whole number, not 'zero'")]
    public async Task Bad_arguments_exit_with_2_and_say_what_is_wrong(string args, string expected)
    {
        await using var env = new CliEnvironment();
        var r = await env.RunAsync(args.Split(' '));
        r.ExitCode.ShouldBe(2, r.ToString());
        r.Stderr.ShouldContain(expected);
        // In the tool's words, not the parser's or the client's about .NET types and parameters.
        r.Stderr.ShouldNotContain("System.", Case.Sensitive, r.ToString());
        r.Stderr.ShouldNotContain("(Parameter", Case.Sensitive, r.ToString());
    }

    [Fact]
    public async Task Without_a_cluster_commands_fail_with_1_and_say_how_to_get_one()
    {
        await using var env = new CliEnvironment();
        var none = await env.RunAsync("topic", "list");
        none.ExitCode.ShouldBe(1, none.ToString());
        none.Stderr.ShouldContain("no cluster to talk to");
        none.Stderr.ShouldContain("raftmq cluster up --detach");

        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        var unreachable = await env.RunAsync("publish", "t", "m", "--urls", $"127.0.0.1:{port}", "--timeout", "2");
        unreachable.ExitCode.ShouldBe(1, unreachable.ToString());
        unreachable.Stderr.ShouldContain("cannot reach the cluster");
        unreachable.Stderr.ShouldContain($"127.0.0.1:{port}");

        var down = await env.RunAsync("cluster", "down");
        down.ExitCode.ShouldBe(0, down.ToString());
        down.Stdout.ShouldContain("nothing to stop");
    }

    [Fact]
    public async Task A_shell_script_refuses_publish_without_a_message_and_an_unterminated_quote_and_exits_with_its_last_failure()
    {
        await using var env = new CliEnvironment();
        // Each failure is reported and the script goes on; it exits with the code of the last command that failed
        // (1: no cluster to talk to), not with the last command's (cluster down: 0).
        var r = await env.RunWithInputAsync("publish orders \"no end\npublish orders\ntopic list\ncluster down\n", "shell");
        r.ExitCode.ShouldBe(1, r.ToString());
        r.Stderr.ShouldContain("raftmq: error: unterminated quote", Case.Sensitive, r.ToString());
        // Without a MESSAGE, publish would take the script's next lines as messages.
        r.Stderr.ShouldContain("raftmq: error: publish needs a MESSAGE in the shell", Case.Sensitive, r.ToString());
        r.Stderr.ShouldContain("no cluster to talk to", Case.Sensitive, r.ToString());
        r.Stdout.ShouldContain("nothing to stop", Case.Sensitive, r.ToString());
        r.Stderr.ShouldNotContain("   at ", Case.Sensitive, r.ToString());

        var usage = await env.RunWithInputAsync("cluster down\npublish orders\n", "shell");
        usage.ExitCode.ShouldBe(2, usage.ToString());
        var fine = await env.RunWithInputAsync("cluster down\nexit\n", "shell");
        fine.ExitCode.ShouldBe(0, fine.ToString());
    }
}

/// <summary>Commands against local clusters the tool starts itself; every test checks that no node survives.</summary>
[Collection(CliClusters.Name)]
public sealed class CliClusterTests
{
    [Fact]
    public async Task Receive_ack_dead_letters_and_redrive_from_the_command_line()
    {
        await using var env = new CliEnvironment();
        var up = await env.RunAsync("cluster", "up", "--detach");
        up.ExitCode.ShouldBe(0, up.ToString());
        (await env.RunAsync("topic", "configure", "jobs", "--max-deliveries", "1")).Stdout.ShouldBe("created topic 'jobs'\n");
        (await env.RunAsync("publish", "jobs", "a")).ExitCode.ShouldBe(0);
        (await env.RunAsync("publish", "jobs", "b")).ExitCode.ShouldBe(0);

        var received = await env.RunAsync("receive", "jobs", "--lease-ms", "60000");
        var receipt = received.Stdout.Split('\t')[0];
        receipt.ShouldStartWith("r0-1-"); // the receipt names the group too
        received.Stdout.ShouldBe($"{receipt}\t0\t1\ta\n", received.ToString());
        (await env.RunAsync("ack", "jobs", receipt)).Stdout.ShouldBe("acked 1\n");
        var stale = await env.RunAsync("ack", "jobs", receipt);
        (stale.ExitCode, stale.Stdout).ShouldBe((1, "acked 0\n"), stale.ToString());
        stale.Stderr.ShouldContain($"stale receipt {receipt}");
        var bad = await env.RunAsync("ack", "jobs", "nonsense");
        bad.ExitCode.ShouldBe(2, bad.ToString()); // the cluster's 400: an argument is wrong
        bad.Stderr.ShouldContain("is not a receipt");
        (await env.RunAsync("consume", "jobs", "--group", "default")).Stdout.ShouldBe("b\n");

        // A message whose only delivery's lease ends is dead-lettered (max_deliveries 1) by the next receive.
        (await env.RunAsync("publish", "jobs", "poison")).ExitCode.ShouldBe(0);
        (await env.RunAsync("receive", "jobs", "--lease-ms", "1")).Stdout.ShouldMatch("^r2-1-[0-9a-f]{16}\t2\t1\tpoison");
        (await Eventually.TrueAsync(async () =>
        {
            (await env.RunAsync("receive", "jobs")).ExitCode.ShouldBe(0);
            return (await env.RunAsync("topic", "stats", "jobs")).Stdout.Contains("1 dead-lettered", StringComparison.Ordinal);
        }, TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(100))).ShouldBeTrue();
        (await env.RunAsync("dlq", "list", "jobs")).Stdout.ShouldBe("2\t1\t-\tpoison\n");
        (await env.RunAsync("dlq", "redrive", "jobs")).Stdout.ShouldBe("redrove 1 message(s) to 'jobs'\n");
        (await env.RunAsync("consume", "jobs", "--group", "default")).Stdout.ShouldBe("poison\n");
        var stats = await env.RunAsync("topic", "stats", "jobs");
        stats.Stdout.ShouldContain("0 dead-lettered");
        stats.Stdout.ShouldContain("default\t0\t0\t0\t0\t-\t");

        // The queue-wide bounds: read, changed through the log, enforced.
        var limits = await env.RunAsync("cluster", "limits");
        limits.Stdout.ShouldStartWith("max_bytes\t1073741824\nmax_messages\t20000000\nmax_topic_bytes\t1073741824\nmax_topic_messages\t10000000\n", Case.Sensitive, limits.ToString());
        (await env.RunAsync("cluster", "limits", "--max-topic-messages", "1")).Stdout.ShouldContain("max_topic_messages\t1\n");
        (await env.RunAsync("topic", "create", "capped")).ExitCode.ShouldBe(0);
        (await env.RunAsync("publish", "capped", "x")).ExitCode.ShouldBe(0);
        var full = await env.RunAsync("publish", "capped", "y");
        full.ExitCode.ShouldNotBe(0, full.ToString());
        full.Stderr.ShouldContain("the queue is full");
        full.Stderr.ShouldContain("/v1/cluster/limits");
        (await env.RunAsync("consume", "capped", "--group", "default")).Stdout.ShouldBe("x\n");
        (await env.RunAsync("cluster", "limits", "--max-topic-messages", "10000000")).ExitCode.ShouldBe(0);

        // An id makes a publish safe to repeat: the second is recognised and not stored.
        (await env.RunAsync("topic", "configure", "jobs", "--dedup-window-ms", "600000")).Stdout.ShouldBe("configured topic 'jobs'\n");
        (await env.RunAsync("publish", "jobs", "once", "--id", "job-7")).Stdout.ShouldBe("published 1 message to 'jobs' at offset 4\n");
        (await env.RunAsync("publish", "jobs", "once", "--id", "job-7")).Stdout.ShouldBe("id 'job-7' was published to 'jobs' already, at offset 4: not stored again\n");
        (await env.RunAsync("consume", "jobs", "--group", "default")).Stdout.ShouldBe("once\n");
        (await env.RunAsync("publish", "jobs", "later", "--delay-ms", "3600000")).Stdout.ShouldBe("published 1 message to 'jobs' at offset 5\n");
        var delayedStats = (await env.RunAsync("topic", "stats", "jobs")).Stdout;
        delayedStats.ShouldContain("default\t0\t0\t1\t1\t");
        delayedStats.ShouldContain("deliveries of default's unacked messages: 0:1 1:0 2:0 3:0 4:0 5-9:0 10-19:0 20-49:0 50-99:0 100+:0\n");
        var waited = await env.RunAsync("receive", "jobs", "--wait-ms", "300"); // only a delayed message: nothing within the wait
        (waited.ExitCode, waited.Stdout).ShouldBe((0, ""), waited.ToString());
        // consume --group --follow long-polls: a message published while it waits is printed and acked; --count 1 ends it.
        await using (var following = CliProcess.Start(env, "consume", "jobs", "--group", "default", "--follow", "--count", "1"))
        {
            (await env.RunAsync("publish", "jobs", "awaited")).ExitCode.ShouldBe(0);
            (await following.WaitForExitAsync(TimeSpan.FromSeconds(30))).ShouldBe(0, following.Stderr);
            following.Stdout.ShouldBe("awaited\n");
        }
        (await env.RunAsync("topic", "stats", "jobs")).Stdout.ShouldContain("default\t0\t0\t1\t1\t");
        var noMessage = await env.RunAsync("publish", "jobs", "--id", "x");
        (noMessage.ExitCode, noMessage.Stderr.Contains("--id and --delay-ms take one MESSAGE", StringComparison.Ordinal)).ShouldBe((2, true), noMessage.ToString());

        // Retention: at max-messages 1 with drop-oldest, a publish drops the delayed message, and stats say so.
        (await env.RunAsync("topic", "configure", "jobs", "--max-messages", "1", "--overflow", "drop-oldest", "--max-age-ms", "3600000"))
            .Stdout.ShouldBe("configured topic 'jobs'\n");
        (await env.RunAsync("publish", "jobs", "newer")).ExitCode.ShouldBe(0);
        (await env.RunAsync("topic", "stats", "jobs")).Stdout.ShouldContain(
            "retention: max_messages 1, max_bytes unlimited, max_age_ms 3600000, overflow drop-oldest, expire dead-letter; 1 dropped by overflow, 0 expired\n");
        var sideways = await env.RunAsync("topic", "configure", "jobs", "--overflow", "sideways");
        (sideways.ExitCode, sideways.Stderr.Contains("--overflow must be reject-publish or drop-oldest", StringComparison.Ordinal)).ShouldBe((2, true), sideways.ToString());
        var tooOld = await env.RunAsync("topic", "configure", "jobs", "--max-age-ms", "31536000001");
        (tooOld.ExitCode, tooOld.Stderr.Contains("\"max_age_ms\" must be an integer between 0 and 31536000000", StringComparison.Ordinal)).ShouldBe((2, true), tooOld.ToString());

        // Groups: created, created again (unchanged), deleted, and the last one refused.
        (await env.RunAsync("group", "create", "jobs", "audit", "--start", "latest")).Stdout.ShouldBe("created group 'audit' of topic 'jobs'\n");
        (await env.RunAsync("group", "create", "jobs", "audit")).Stdout.ShouldBe("group 'audit' of topic 'jobs' exists (unchanged)\n");
        (await env.RunAsync("group", "delete", "jobs", "default")).Stdout.ShouldBe("deleted group 'default' of topic 'jobs'\n");
        var missing = await env.RunAsync("group", "delete", "jobs", "default");
        (missing.ExitCode, missing.Stderr.Contains("topic 'jobs' has no group 'default'", StringComparison.Ordinal)).ShouldBe((1, true), missing.ToString());
        var last = await env.RunAsync("group", "delete", "jobs", "audit");
        (last.ExitCode, last.Stderr.Contains("last", StringComparison.Ordinal)).ShouldBe((1, true), last.ToString());
        var badStart = await env.RunAsync("group", "create", "jobs", "x", "--start", "middle");
        (badStart.ExitCode, badStart.Stderr.Contains("--start must be earliest or latest", StringComparison.Ordinal)).ShouldBe((2, true), badStart.ToString());

        (await env.RunAsync("topic", "delete", "jobs")).Stdout.ShouldBe("deleted topic 'jobs'\n");
        var gone = await env.RunAsync("topic", "stats", "jobs");
        gone.ExitCode.ShouldBe(1, gone.ToString());
        (await env.RunAsync("cluster", "down")).ExitCode.ShouldBe(0);
    }

    [Fact]
    public async Task Demo_then_every_command_then_cluster_down_leaves_no_process()
    {
        await using var env = new CliEnvironment();
        var demo = await env.RunAsync("demo");
        demo.ExitCode.ShouldBe(0, demo.ToString());
        demo.Stdout.ShouldContain("Leader");
        demo.Stdout.ShouldContain("consumed  ← demo: hello, RaftMQ");
        demo.Stdout.ShouldContain("raftmq cluster kill");
        var pids = env.RecordedPids();
        pids.Count.ShouldBe(3);
        pids.ShouldAllBe(p => CliEnvironment.IsAlive(p));

        var again = await env.RunAsync("cluster", "up", "--detach");
        again.ExitCode.ShouldBe(1, again.ToString());
        again.Stderr.ShouldContain("already running");

        (await env.RunAsync("topic", "create", "orders")).Stdout.ShouldContain("created topic 'orders'");
        (await env.RunAsync("topic", "create", "orders")).Stdout.ShouldContain("already exists");
        (await env.RunAsync("topic", "list")).Stdout.ShouldBe("demo\norders\n");
        (await env.RunAsync("publish", "orders", "first")).ExitCode.ShouldBe(0);
        var piped = await env.RunWithInputAsync("second\nthird\n", "publish", "orders");
        piped.Stdout.ShouldContain("published 2 message(s)", customMessage: piped.ToString());
        var one = await env.RunAsync("consume", "orders", "--count", "1");
        one.Stdout.ShouldBe("first\n", one.ToString());
        (await env.RunAsync("consume", "orders")).Stdout.ShouldBe("second\nthird\n");
        // Piped lines go out in batches, in order; a failure names the first line that was not published.
        var many = string.Concat(Enumerable.Range(0, 2000).Select(i => $"line {i}\n"));
        var bulk = await env.RunWithInputAsync(many, "publish", "orders");
        bulk.Stdout.ShouldContain("published 2000 message(s)", customMessage: bulk.ToString());
        (await env.RunAsync("consume", "orders")).Stdout.ShouldBe(many);
        var refused = await env.RunWithInputAsync("a\nb\n", "publish", "no-such-topic");
        refused.ExitCode.ShouldNotBe(0, refused.ToString());
        refused.Stderr.ShouldContain("0 message(s) were published before the error; none from line 1 on", customMessage: refused.ToString());
        var empty = await env.RunAsync("consume", "orders");
        (empty.ExitCode, empty.Stdout).ShouldBe((0, ""));
        empty.Stderr.ShouldContain("is empty");

        var missing = await env.RunAsync("consume", "nope");
        missing.ExitCode.ShouldBe(1, missing.ToString());
        missing.Stderr.ShouldContain("topic 'nope' does not exist");
        (await env.RunAsync("publish", "nope", "x")).ExitCode.ShouldBe(1);

        var bench = await env.RunAsync("bench", "publish", "--clients", "4", "--count", "200", "--size", "16", "--json");
        bench.ExitCode.ShouldBe(0, bench.ToString());
        using (var json = JsonDocument.Parse(bench.Stdout))
        {
            json.RootElement.GetProperty("ops").GetInt64().ShouldBe(200);
            json.RootElement.GetProperty("errors").GetInt64().ShouldBe(0);
            var latency = json.RootElement.GetProperty("latency_ms");
            latency.GetProperty("p50").GetDouble().ShouldBeGreaterThan(0);
            latency.GetProperty("p99").GetDouble().ShouldBeLessThanOrEqualTo(latency.GetProperty("max").GetDouble());
        }
        var pop = await env.RunAsync("bench", "pop", "--clients", "2", "--count", "100");
        pop.ExitCode.ShouldBe(0, pop.ToString());
        pop.Stdout.ShouldContain("p99 ms");

        // Batches: --count is in messages, the last request of each client carries what is left.
        var batch = await env.RunAsync("bench", "publish", "--clients", "3", "--count", "1000", "--size", "16", "--batch", "64", "--json");
        batch.ExitCode.ShouldBe(0, batch.ToString());
        using (var json = JsonDocument.Parse(batch.Stdout))
        {
            json.RootElement.GetProperty("batch").GetInt32().ShouldBe(64);
            json.RootElement.GetProperty("messages").GetInt64().ShouldBe(1000);
            json.RootElement.GetProperty("requests").GetInt64().ShouldBe(16); // 15 full batches and one of 40
            json.RootElement.GetProperty("ops").GetInt64().ShouldBe(16);
            json.RootElement.GetProperty("messages_per_second").GetDouble()
                .ShouldBeGreaterThan(json.RootElement.GetProperty("requests_per_second").GetDouble());
        }
        var batchPop = await env.RunAsync("bench", "pop", "--clients", "2", "--count", "500", "--batch", "50", "--json");
        batchPop.ExitCode.ShouldBe(0, batchPop.ToString());
        using (var json = JsonDocument.Parse(batchPop.Stdout))
        {
            json.RootElement.GetProperty("messages").GetInt64().ShouldBe(500);
            json.RootElement.GetProperty("requests").GetInt64().ShouldBe(10);
        }
        // A run that drains the topic: each client ends on a pop that found it empty, and that request counts too.
        var drained = await env.RunAsync("bench", "pop", "--clients", "2", "--duration", "120", "--prefill", "100", "--size", "16", "--topic", "drained", "--json");
        drained.ExitCode.ShouldBe(0, drained.ToString());
        using (var json = JsonDocument.Parse(drained.Stdout))
        {
            json.RootElement.GetProperty("messages").GetInt64().ShouldBe(100);
            json.RootElement.GetProperty("errors").GetInt64().ShouldBe(0);
            json.RootElement.GetProperty("requests").GetInt64().ShouldBe(102, drained.Stdout);
            json.RootElement.GetProperty("ops").GetInt64().ShouldBe(102, drained.Stdout);
        }

        // Receive + ack: every message is received with a lease and acked; latency is per message. 300 messages in
        // receives of up to 7: at least 43 receives, more only if a receive came back short. By default each receive
        // carries the acks of the client's previous batch, and each client acks its last batch with one plain ack;
        // with --separate-ack every receive is followed by an ack request of its own.
        foreach (var (topic, separate) in new[] { ("acked", false), ("acked-apart", true) })
        {
            string[] args = ["bench", "receive", "--clients", "3", "--count", "300", "--size", "16", "--max", "7", "--topic", topic, "--json"];
            var receive = await env.RunAsync(separate ? [.. args, "--separate-ack"] : args);
            receive.ExitCode.ShouldBe(0, receive.ToString());
            using (var json = JsonDocument.Parse(receive.Stdout))
            {
                json.RootElement.GetProperty("operation").GetString().ShouldBe("receive");
                json.RootElement.GetProperty("messages").GetInt64().ShouldBe(300);
                json.RootElement.GetProperty("errors").GetInt64().ShouldBe(0);
                json.RootElement.GetProperty("max").GetInt32().ShouldBe(7);
                json.RootElement.GetProperty("ack").GetString().ShouldBe(separate ? "separate" : "next-receive");
                json.RootElement.GetProperty("latency_per").GetString().ShouldBe("message");
                json.RootElement.GetProperty("latency_ms").GetProperty("p50").GetDouble().ShouldBeGreaterThan(0);
                // The receives and the acks, timed on their own.
                var parts = json.RootElement.GetProperty("requests_ms");
                var receives = parts.GetProperty("receive").GetProperty("count").GetInt64();
                var acks = parts.GetProperty("ack").GetProperty("count").GetInt64();
                receives.ShouldBeGreaterThanOrEqualTo(43);
                parts.GetProperty("receive").GetProperty("p50").GetDouble().ShouldBeGreaterThan(0);
                // Every request counts, receives and acks alike.
                json.RootElement.GetProperty("requests").GetInt64().ShouldBe(receives + acks, receive.Stdout);
                json.RootElement.GetProperty("ops").GetInt64().ShouldBe(receives + acks, receive.Stdout);
                if (separate)
                {
                    acks.ShouldBeGreaterThanOrEqualTo(43);
                }
                else
                {
                    acks.ShouldBeInRange(1, 3, "one plain ack per client, of its last batch");
                }
            }
            // Nothing is left behind: every message was acked, none is leased or ready.
            var acked = await env.RunAsync("topic", "stats", topic);
            acked.ExitCode.ShouldBe(0, acked.ToString());
            // group, ready, leased, delayed, unacked, oldest_age_ms, acked_total, dead_lettered_total
            acked.Stdout.Split('\n').ShouldContain("default\t0\t0\t0\t0\t-\t300\t0", customMessage: acked.ToString());
        }

        var shell = await env.RunWithInputAsync("topic create sh\npublish sh \"two words\"\npublish sh \"say \\\"hi there \\\\o/\"\nconsume sh\nbogus\nexit\n", "shell");
        shell.ExitCode.ShouldBe(2, shell.ToString()); // a script exits with the code of its last failed command
        shell.Stdout.ShouldContain("two words\n");
        shell.Stdout.ShouldContain("say \"hi there \\o/\n", Case.Sensitive, shell.ToString()); // an escaped quote neither opens nor ends one
        shell.Stderr.ShouldContain("'bogus'");
        var clean = await env.RunWithInputAsync("publish sh again\nconsume sh\n", "shell");
        (clean.ExitCode, clean.Stdout.Contains("again\n", StringComparison.Ordinal)).ShouldBe((0, true), clean.ToString());

        var status = await env.RunAsync("cluster", "status");
        status.ExitCode.ShouldBe(0, status.ToString());
        status.Stdout.ShouldContain("Leader");
        var leader = int.Parse(status.Stdout.Split("leader: node ")[1].Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);

        // Leadership moves to the node named, then to whichever is the most up to date; a node that does not exist is refused.
        var named = (leader + 1) % 3;
        var transfer = await env.RunAsync("cluster", "transfer-leader", $"{named}");
        transfer.ExitCode.ShouldBe(0, transfer.ToString());
        transfer.Stdout.ShouldStartWith($"node {named} leads (term ");
        (await env.RunAsync("cluster", "status")).Stdout.ShouldContain($"leader: node {named} ");
        var anyOther = await env.RunAsync("cluster", "transfer-leader");
        anyOther.ExitCode.ShouldBe(0, anyOther.ToString());
        anyOther.Stdout.ShouldNotStartWith($"node {named} ");
        leader = int.Parse(anyOther.Stdout.Split("node ")[1].Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
        var unknown = await env.RunAsync("cluster", "transfer-leader", "9");
        unknown.ExitCode.ShouldBe(1, unknown.ToString());
        unknown.Stderr.ShouldContain("no node 9");

        (await env.RunAsync("cluster", "kill", $"{leader}")).ExitCode.ShouldBe(0);
        (await Eventually.TrueAsync(
            async () =>
            {
                var s = await env.RunAsync("cluster", "status");
                return s.Stdout.Contains("2 of 3 nodes up", StringComparison.Ordinal) && !s.Stdout.Contains($"leader: node {leader} ", StringComparison.Ordinal)
                    && s.Stdout.Contains("leader: node", StringComparison.Ordinal);
            },
            TimeSpan.FromSeconds(30))).ShouldBeTrue("a new leader is elected after the kill");
        (await env.RunAsync("cluster", "start", $"{leader}")).ExitCode.ShouldBe(0);
        var restarted = env.RecordedPids();

        var down = await env.RunAsync("cluster", "down");
        down.ExitCode.ShouldBe(0, down.ToString());
        down.Stdout.ShouldContain("stopped 3 node(s)");
        pids.Concat(restarted).ShouldAllBe(p => !CliEnvironment.IsAlive(p));
        env.RecordedPids().ShouldAllBe(p => !CliEnvironment.IsAlive(p)); // the record stays, for the next `cluster up`
        (await env.RunAsync("topic", "list")).ExitCode.ShouldBe(1);
    }

    [Fact]
    public async Task Cluster_up_grows_and_shrinks_a_running_cluster_and_members_add_remove_say_what_they_did()
    {
        await using var env = new CliEnvironment();
        var up = await env.RunAsync("cluster", "up", "--detach");
        up.ExitCode.ShouldBe(0, up.ToString());
        (await env.RunAsync("topic", "create", "kept")).ExitCode.ShouldBe(0);
        (await env.RunAsync("publish", "kept", "before")).ExitCode.ShouldBe(0);

        var grow = await env.RunAsync("cluster", "up", "--nodes", "5");
        grow.ExitCode.ShouldBe(0, grow.ToString());
        grow.Stdout.ShouldContain("node 3 is a voter");
        grow.Stdout.ShouldContain("node 4 is a voter");
        grow.Stdout.ShouldContain("5 of 5 nodes up", Case.Sensitive, grow.ToString());
        env.RecordedPids().Count.ShouldBe(5);
        var members = await env.RunAsync("cluster", "members");
        members.ExitCode.ShouldBe(0, members.ToString());
        members.Stdout.ShouldContain("5 voter(s), 0 learner(s)");

        var twice = await env.RunAsync("cluster", "add", grow.Stdout.Split("node 4 joining at ")[1].Split(' ')[0]);
        twice.ExitCode.ShouldBe(1, twice.ToString());
        twice.Stderr.ShouldContain("already node 4");
        var unknown = await env.RunAsync("cluster", "remove", "9");
        unknown.ExitCode.ShouldBe(1, unknown.ToString());
        unknown.Stderr.ShouldContain("node 9 is not a member");

        var pids = env.RecordedPids();
        var shrink = await env.RunAsync("cluster", "up", "--nodes", "3");
        shrink.ExitCode.ShouldBe(0, shrink.ToString());
        shrink.Stdout.ShouldContain("node 4 removed and stopped");
        shrink.Stdout.ShouldContain("node 3 removed and stopped");
        pids.Skip(3).ShouldAllBe(p => !CliEnvironment.IsAlive(p));
        (await env.RunAsync("cluster", "members")).Stdout.ShouldContain("3 voter(s), 0 learner(s)");
        (await env.RunAsync("consume", "kept")).Stdout.ShouldBe("before\n");
        // A removed node leaves neither its data nor its log.
        foreach (var gone in new[] { 3, 4 }) LeftNothing(env, gone);

        // Grown again, node 3 is a new node: empty data, and a log of its own (one start in it, not the removed node 3's).
        var regrow = await env.RunAsync("cluster", "up", "--nodes", "4");
        regrow.ExitCode.ShouldBe(0, regrow.ToString());
        regrow.Stdout.ShouldContain("node 3 is a voter");
        File.ReadAllText(Path.Combine(env.Data, "node-3.log")).Split("started by").Length.ShouldBe(2, "one start of one node");

        // A node removed from the middle stays in the record, marked removed, and leaves nothing either.
        var remove = await env.RunAsync("cluster", "remove", "2");
        remove.ExitCode.ShouldBe(0, remove.ToString());
        remove.Stdout.ShouldContain("removed node 2 from the cluster");
        remove.Stdout.ShouldContain("stopped node 2 and deleted its data and log; the local cluster records it as removed");
        LeftNothing(env, 2);
        (await env.RunAsync("cluster", "members")).Stdout.ShouldContain("3 voter(s), 0 learner(s)");
        var down = await env.RunAsync("cluster", "down");
        down.ExitCode.ShouldBe(0, down.ToString());
        down.Stdout.ShouldContain("stopped 3 node(s)");
        pids.ShouldAllBe(p => !CliEnvironment.IsAlive(p));
    }

    /// <summary>Local node <paramref name="index"/>, removed, left neither its data directory nor its log.</summary>
    private static void LeftNothing(CliEnvironment env, int index)
    {
        Directory.Exists(Path.Combine(env.Data, $"node-{index}")).ShouldBeFalse($"node {index}'s data directory");
        File.Exists(Path.Combine(env.Data, $"node-{index}.log")).ShouldBeFalse($"node {index}'s log");
    }

    /// <summary>The URLs of the local cluster's nodes, by index, from its cluster file.</summary>
    private static string[] NodeUrls(CliEnvironment env)
    {
        using var file = JsonDocument.Parse(File.ReadAllText(Path.Combine(env.Data, "cluster.json")));
        return [.. file.RootElement.GetProperty("nodes").EnumerateArray().Select(n => n.GetProperty("url").GetString()!.TrimEnd('/'))];
    }

    [Fact]
    public async Task Cluster_status_of_followers_only_names_the_leader_they_report()
    {
        await using var env = new CliEnvironment();
        var up = await env.RunAsync("cluster", "up", "--detach");
        up.ExitCode.ShouldBe(0, up.ToString());
        var urls = NodeUrls(env);
        var all = await env.RunAsync("cluster", "status");
        all.ExitCode.ShouldBe(0, all.ToString());
        var leader = int.Parse(all.Stdout.Split("leader: node ")[1].Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
        var followers = Enumerable.Range(0, urls.Length).Where(i => i != leader).Select(i => urls[i]).ToArray();

        // Neither URL given is the leader's: the followers name it (node and URL) in the newest term.
        var two = await env.RunAsync("cluster", "status", "--urls", string.Join(',', followers));
        two.ExitCode.ShouldBe(0, two.ToString());
        two.Stdout.ShouldNotContain("Leader", Case.Sensitive, two.ToString());
        two.Stdout.ShouldContain($"leader: node {leader} ({urls[leader]}), term ", Case.Sensitive, two.ToString());
        two.Stdout.ShouldContain("(2 of 2 nodes up)", Case.Sensitive, two.ToString());
        var one = await env.RunAsync("cluster", "status", "--urls", followers[0]);
        one.ExitCode.ShouldBe(0, one.ToString());
        one.Stdout.ShouldContain($"leader: node {leader} ({urls[leader]}), term ", Case.Sensitive, one.ToString());
        one.Stdout.ShouldContain("(1 of 1 nodes up)", Case.Sensitive, one.ToString());
        (await env.RunAsync("cluster", "down")).ExitCode.ShouldBe(0);
    }

    [Fact]
    public async Task Cluster_status_of_a_local_cluster_lists_a_member_added_by_hand_marked_external_up_or_down()
    {
        await using var env = new CliEnvironment();
        var up = await env.RunAsync("cluster", "up", "--detach");
        up.ExitCode.ShouldBe(0, up.ToString());
        var urls = NodeUrls(env);
        string binary;
        using (var file = JsonDocument.Parse(File.ReadAllText(Path.Combine(env.Data, "cluster.json"))))
            binary = file.RootElement.GetProperty("node_binary").GetString()!;

        // Added as an operator adds a node of another machine: `cluster add`, then the node itself with --join.
        var ports = RaftMQ.TestSupport.TestCluster.FreePorts(2);
        var url = $"http://127.0.0.1:{ports[0]}";
        var add = await env.RunAsync("cluster", "add", $"127.0.0.1:{ports[0]}", "--peer-port", $"{ports[1]}");
        add.ExitCode.ShouldBe(0, add.ToString());
        add.Stdout.ShouldContain($"added node 3 at {url} as a learner", Case.Sensitive, add.ToString());
        await using (var node = HandStartedNode.Start(binary, env.Root,
            "--join", urls[0], "--address", $"127.0.0.1:{ports[0]}:{ports[1]}", "--data-dir", Path.Combine(env.Root, "by-hand"),
            "--cluster-secret-file", Path.Combine(env.Data, "config.json.secret")))
        {
            (await Eventually.TrueAsync(async () => (await env.RunAsync("cluster", "members")).Stdout.Contains("4 voter(s)", StringComparison.Ordinal),
                TimeSpan.FromSeconds(60), TimeSpan.FromMilliseconds(200))).ShouldBeTrue(node.Output);

            var status = await env.RunAsync("cluster", "status");
            status.ExitCode.ShouldBe(0, status.ToString());
            status.Stdout.ShouldContain("(4 of 4 nodes up)", Case.Sensitive, status.ToString());
            var row = status.Stdout.Split('\n').Single(l => l.Contains(url + " ", StringComparison.Ordinal));
            row.ShouldMatch(@"^\W*3\s", status.ToString());
            row.ShouldContain("external", Case.Sensitive, status.ToString());
            row.ShouldNotContain("down", Case.Sensitive, status.ToString());
            status.Stdout.Split('\n').Count(l => l.Contains("external", StringComparison.Ordinal)).ShouldBe(2, status.ToString()); // the row and the note
            status.Stdout.ShouldContain("external: a member the local cluster does not manage (not in its cluster.json)", Case.Sensitive, status.ToString());
            foreach (var local in urls) status.Stdout.Split('\n').Single(l => l.Contains(local + " ", StringComparison.Ordinal)).ShouldNotContain("external");
        }

        // Stopped, it is still a member: listed at the URL the members give, down (3 of the 4 voters still elect a leader).
        CliResult? down = null;
        (await Eventually.TrueAsync(
            async () => (down = await env.RunAsync("cluster", "status")).Stdout.Contains("(3 of 4 nodes up)", StringComparison.Ordinal),
            TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(200))).ShouldBeTrue(down?.ToString());
        var downRow = down!.Stdout.Split('\n').Single(l => l.Contains(url + " ", StringComparison.Ordinal));
        downRow.ShouldMatch(@"^\W*3\s", down.ToString());
        downRow.ShouldContain("external", Case.Sensitive, down.ToString());
        downRow.ShouldContain("down", Case.Sensitive, down.ToString());

        // The local cluster's commands act on its own nodes only.
        var stopped = await env.RunAsync("cluster", "down");
        stopped.ExitCode.ShouldBe(0, stopped.ToString());
        stopped.Stdout.ShouldContain("stopped 3 node(s)");
    }

    [Fact]
    public async Task Dlq_list_of_a_missing_topic_exits_1_and_of_a_topic_without_dead_letters_0()
    {
        await using var env = new CliEnvironment();
        var up = await env.RunAsync("cluster", "up", "--detach", "--nodes", "1");
        up.ExitCode.ShouldBe(0, up.ToString());
        var missing = await env.RunAsync("dlq", "list", "nope");
        missing.ExitCode.ShouldBe(1, missing.ToString());
        missing.Stderr.ShouldContain("raftmq: error: topic 'nope' does not exist", Case.Sensitive, missing.ToString());
        missing.Stdout.ShouldBeEmpty();

        (await env.RunAsync("topic", "create", "quiet")).ExitCode.ShouldBe(0);
        var none = await env.RunAsync("dlq", "list", "quiet");
        (none.ExitCode, none.Stdout).ShouldBe((0, ""), none.ToString());
        none.Stderr.ShouldContain("no dead letters in 'quiet'");
        (await env.RunAsync("cluster", "down")).ExitCode.ShouldBe(0);
    }

    [Fact]
    public async Task Ack_on_a_missing_topic_or_group_says_so_and_a_line_too_large_to_publish_is_named()
    {
        await using var env = new CliEnvironment();
        var up = await env.RunAsync("cluster", "up", "--detach", "--nodes", "1");
        up.ExitCode.ShouldBe(0, up.ToString());
        (await env.RunAsync("topic", "create", "jobs")).ExitCode.ShouldBe(0);
        (await env.RunAsync("publish", "jobs", "a")).ExitCode.ShouldBe(0);
        var receipt = (await env.RunAsync("receive", "jobs")).Stdout.Split('\t')[0];
        receipt.ShouldStartWith("r0-");

        // A missing topic or group: the tool says which.
        var noTopic = await env.RunAsync("ack", "nope", receipt);
        noTopic.ExitCode.ShouldBe(1, noTopic.ToString());
        noTopic.Stderr.ShouldContain("topic 'nope' does not exist", Case.Sensitive, noTopic.ToString());
        noTopic.Stdout.ShouldBeEmpty();
        var noGroup = await env.RunAsync("ack", "jobs", receipt, "--group", "billing");
        noGroup.ExitCode.ShouldBe(1, noGroup.ToString());
        noGroup.Stderr.ShouldContain("topic 'jobs' has no group 'billing'", Case.Sensitive, noGroup.ToString());
        var receiveNoGroup = await env.RunAsync("receive", "jobs", "--group", "billing");
        receiveNoGroup.ExitCode.ShouldBe(1, receiveNoGroup.ToString());
        receiveNoGroup.Stderr.ShouldContain("topic 'jobs' has no group 'billing'; create it with: raftmq group create jobs billing", Case.Sensitive, receiveNoGroup.ToString());
        var consumeNoGroup = await env.RunAsync("consume", "jobs", "--group", "billing");
        consumeNoGroup.ExitCode.ShouldBe(1, consumeNoGroup.ToString());
        consumeNoGroup.Stderr.ShouldContain("has no group 'billing'", Case.Sensitive, consumeNoGroup.ToString());
        (await env.RunAsync("ack", "jobs", receipt)).Stdout.ShouldBe("acked 1\n");
        var stale = await env.RunAsync("ack", "jobs", receipt);
        (stale.ExitCode, stale.Stdout).ShouldBe((1, "acked 0\n"), stale.ToString());
        stale.Stderr.ShouldContain($"stale receipt {receipt}");

        // One message per line of standard input: a line too large for a request is named, with what went before it.
        var huge = new string('x', 1_100_000);
        var tooLarge = await env.RunWithInputAsync($"first\n{huge}\nthird\n", "publish", "jobs");
        tooLarge.ExitCode.ShouldBe(1, tooLarge.ToString()[..Math.Min(2000, tooLarge.ToString().Length)]);
        tooLarge.Stderr.ShouldContain("line 2 is too large to publish", Case.Sensitive, tooLarge.Stderr);
        tooLarge.Stderr.ShouldContain("1 message(s) were published before it; none from line 2 on", Case.Sensitive, tooLarge.Stderr);
        tooLarge.Stderr.ShouldNotContain("(Parameter", Case.Sensitive, tooLarge.Stderr);
        (await env.RunAsync("consume", "jobs", "--group", "default")).Stdout.ShouldBe("first\n");
        (await env.RunAsync("cluster", "down")).ExitCode.ShouldBe(0);
    }

    [Fact]
    public async Task Cluster_down_keeps_the_record_so_up_restarts_a_grown_cluster_and_removed_nodes_stay_out()
    {
        await using var env = new CliEnvironment();
        var up = await env.RunAsync("cluster", "up", "--detach");
        up.ExitCode.ShouldBe(0, up.ToString());
        (await env.RunAsync("topic", "create", "kept")).ExitCode.ShouldBe(0);
        (await env.RunAsync("publish", "kept", "before")).ExitCode.ShouldBe(0);
        var grow = await env.RunAsync("cluster", "up", "--nodes", "6");
        grow.ExitCode.ShouldBe(0, grow.ToString());
        var grown = env.RecordedPids();
        grown.Count.ShouldBe(6);

        // Down keeps the record; up without --nodes starts the same six nodes, with their data.
        var down = await env.RunAsync("cluster", "down");
        down.ExitCode.ShouldBe(0, down.ToString());
        down.Stdout.ShouldContain("stopped 6 node(s)");
        grown.ShouldAllBe(p => !CliEnvironment.IsAlive(p));
        File.Exists(Path.Combine(env.Data, "cluster.json")).ShouldBeTrue();
        var again = await env.RunAsync("cluster", "up", "--detach");
        again.ExitCode.ShouldBe(0, again.ToString());
        again.Stdout.ShouldContain("(6 of 6 nodes up)", Case.Sensitive, again.ToString());
        (await env.RunAsync("cluster", "members")).Stdout.ShouldContain("6 voter(s), 0 learner(s)");
        (await env.RunAsync("consume", "kept")).Stdout.ShouldBe("before\n");

        // A node removed from the middle is recorded as removed: status counts the members only, start refuses it.
        var urls = NodeUrls(env);
        var removed = await env.RunAsync("cluster", "remove", "1");
        removed.ExitCode.ShouldBe(0, removed.ToString());
        removed.Stdout.ShouldContain("records it as removed");
        LeftNothing(env, 1);
        var status = await env.RunAsync("cluster", "status");
        status.ExitCode.ShouldBe(0, status.ToString());
        status.Stdout.ShouldContain("(5 of 5 nodes up)", Case.Sensitive, status.ToString());
        status.Stdout.ShouldNotContain(urls[1], Case.Sensitive, status.ToString());
        var start = await env.RunAsync("cluster", "start", "1");
        start.ExitCode.ShouldBe(1, start.ToString());
        start.Stderr.ShouldContain("node 1 was removed from the cluster", Case.Sensitive, start.ToString());
        var twice = await env.RunAsync("cluster", "remove", "1");
        twice.ExitCode.ShouldBe(1, twice.ToString());
        twice.Stderr.ShouldContain("node 1 is not a member of the cluster (its members: 0, 2, 3, 4, 5)", Case.Sensitive, twice.ToString());

        // A node removed behind the local cluster's back (through --urls, which the local record does not follow) is
        // refused by start all the same: the cluster does not list it. From then on the record says so.
        var elsewhere = await env.RunAsync("cluster", "remove", "5", "--urls", urls[0]);
        elsewhere.ExitCode.ShouldBe(0, elsewhere.ToString());
        var pid5 = env.RecordedPids()[5];
        (await env.RunAsync("cluster", "kill", "5")).ExitCode.ShouldBe(0);
        CliEnvironment.IsAlive(pid5).ShouldBeFalse("cluster kill returns once the process is gone");
        var notMember = await env.RunAsync("cluster", "start", "5");
        notMember.ExitCode.ShouldBe(1, notMember.ToString());
        notMember.Stderr.ShouldContain("node 5 is not a member of the cluster (its members: 0, 2, 3, 4)", Case.Sensitive, notMember.ToString());
        (await env.RunAsync("cluster", "start", "5")).Stderr.ShouldContain("node 5 was removed from the cluster");
        LeftNothing(env, 5);

        // Shrinking counts the members only: node 4, the last member, goes; nodes 0, 2 and 3 are left.
        var shrink = await env.RunAsync("cluster", "up", "--nodes", "3");
        shrink.ExitCode.ShouldBe(0, shrink.ToString());
        shrink.Stdout.ShouldContain("node 4 removed and stopped");
        shrink.Stdout.ShouldContain("(3 of 3 nodes up)", Case.Sensitive, shrink.ToString());

        // A removal whose answer is lost: with one follower down, the configuration without the other cannot commit,
        // the leader answers 503 outcome-unknown, and the tool reads the members until they tell what happened. The
        // node being removed stops meanwhile; once the first follower is back, the leader commits the change.
        status = await env.RunAsync("cluster", "status");
        var leader = int.Parse(status.Stdout.Split("leader: node ")[1].Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
        var followers = new[] { 0, 2, 3 }.Where(i => i != leader).ToArray();
        followers.Length.ShouldBe(2, status.ToString());
        var (stopped, target) = (followers[0], followers[1]);
        (await env.RunAsync("cluster", "kill", $"{stopped}")).ExitCode.ShouldBe(0);
        await using (var remove = CliProcess.Start(env, "cluster", "remove", $"{target}", "--timeout", "60"))
        {
            (await remove.WaitForErrorAsync($"the answer to removing node {target} was lost", TimeSpan.FromSeconds(60))).ShouldBeTrue(remove.Stderr);
            // Not checked: had the members already told, the tool would have stopped the node itself.
            await env.RunAsync("cluster", "kill", $"{target}");
            var back = await env.RunAsync("cluster", "start", $"{stopped}");
            back.ExitCode.ShouldBe(0, back.ToString());
            (await remove.WaitForExitAsync(TimeSpan.FromSeconds(90))).ShouldBe(0, $"{remove.Stdout}\n{remove.Stderr}");
            remove.Stdout.ShouldContain($"removed node {target} from the cluster");
            remove.Stderr.ShouldContain($"the answer to removing node {target} was lost", Case.Sensitive, remove.Stderr);
            remove.Stderr.ShouldContain("outcome-unknown", Case.Sensitive, remove.Stderr);
        }
        (await env.RunAsync("cluster", "members")).Stdout.ShouldContain("2 voter(s), 0 learner(s)");
        var restart = await env.RunAsync("cluster", "start", $"{target}");
        restart.ExitCode.ShouldBe(1, restart.ToString());
        restart.Stderr.ShouldContain($"node {target} was removed from the cluster", Case.Sensitive, restart.ToString());

        var last = await env.RunAsync("cluster", "down");
        last.ExitCode.ShouldBe(0, last.ToString());
        env.RecordedPids().ShouldAllBe(p => !CliEnvironment.IsAlive(p));

        // Another size than the recorded members' (two) starts a new cluster, although config.json still lists three
        // nodes: its ports and node data are not the members' any more (node 1 among them was removed).
        var other = await env.RunAsync("cluster", "up", "--detach", "--nodes", "3");
        other.ExitCode.ShouldBe(0, other.ToString());
        other.Stdout.ShouldContain("(3 of 3 nodes up)", Case.Sensitive, other.ToString());
        (await env.RunAsync("cluster", "members")).Stdout.ShouldContain("3 voter(s), 0 learner(s)");
        (await env.RunAsync("topic", "list")).Stdout.ShouldNotContain("kept");
        File.ReadAllText(Path.Combine(env.Data, "node-1.log")).Split("started by").Length.ShouldBe(2, "the new node 1's log is its own");
        (await env.RunAsync("cluster", "down")).ExitCode.ShouldBe(0);
    }

    [Fact]
    public async Task A_request_the_cluster_refuses_as_invalid_exits_2_with_its_reason_and_one_refused_for_its_state_1()
    {
        await using var env = new CliEnvironment();
        var up = await env.RunAsync("cluster", "up", "--detach", "--nodes", "1");
        up.ExitCode.ShouldBe(0, up.ToString());
        (await env.RunAsync("topic", "create", "t")).ExitCode.ShouldBe(0);
        foreach (var (args, reason) in new (string[], string)[]
        {
            (["receive", "t", "--wait-ms", "20001"], "\"wait_ms\" must be an integer between 0 and 20000"),
            (["publish", "t", "x", "--delay-ms", "86400001"], "\"delay_ms\" must be an integer between 0 and 86400000"),
            (["topic", "configure", "t", "--max-deliveries", "0"], "\"max_deliveries\" must be an integer between 1 and"),
            (["dlq", "redrive", "t", "--max", "5000"], "\"max\" must be an integer between 1 and"),
            (["group", "create", "t", "bad!"], "group name"),
            (["cluster", "limits", "--max-bytes", "99999999999999"], "\"max_bytes\" must be an integer between 1 and"),
        })
        {
            var r = await env.RunAsync(args);
            r.ExitCode.ShouldBe(2, r.ToString());
            r.Stderr.ShouldContain("(400 BadRequest)", Case.Sensitive, r.ToString());
            r.Stderr.ShouldContain(reason, Case.Sensitive, r.ToString());
        }
        // Nothing changed: no message was published, the group was not made.
        (await env.RunAsync("topic", "stats", "t")).Stdout.ShouldContain("0 published");
        // The cluster's state, not the arguments: the leader cannot take over from itself (a 400 too), the last group.
        var self = await env.RunAsync("cluster", "transfer-leader", "0");
        self.ExitCode.ShouldBe(1, self.ToString());
        self.Stderr.ShouldContain("node 0 already leads");
        var last = await env.RunAsync("group", "delete", "t", "default");
        last.ExitCode.ShouldBe(1, last.ToString());
        (await env.RunAsync("cluster", "down")).ExitCode.ShouldBe(0);
    }

    [Fact]
    public async Task Ctrl_c_ends_consume_follow_with_130_and_what_was_acked_stays_acked()
    {
        await using var env = new CliEnvironment();
        var up = await env.RunAsync("cluster", "up", "--detach", "--nodes", "1");
        up.ExitCode.ShouldBe(0, up.ToString());
        (await env.RunAsync("topic", "create", "orders2")).ExitCode.ShouldBe(0);

        // Popping: the message is printed, then the tool polls for more until Ctrl-C.
        (await env.RunAsync("publish", "orders2", "popped")).ExitCode.ShouldBe(0);
        await using (var follow = CliProcess.Start(env, "consume", "orders2", "--follow"))
        {
            (await follow.WaitForOutputAsync("popped\n", TimeSpan.FromSeconds(30))).ShouldBeTrue(follow.Stderr);
            await follow.SignalAsync("INT");
            (await follow.WaitForExitAsync(TimeSpan.FromSeconds(20))).ShouldBe(130, $"{follow.Stdout}\n{follow.Stderr}");
            follow.Stdout.ShouldBe("popped\n");
            follow.Stderr.ShouldContain("interrupted");
        }

        // As a group: the message is printed and acked; Ctrl-C during the next long poll leaves it acked.
        await using (var follow = CliProcess.Start(env, "consume", "orders2", "--group", "default", "--follow"))
        {
            (await env.RunAsync("publish", "orders2", "acked")).ExitCode.ShouldBe(0);
            (await follow.WaitForOutputAsync("acked\n", TimeSpan.FromSeconds(30))).ShouldBeTrue(follow.Stderr);
            // group, ready, leased, delayed, unacked, oldest_age_ms, acked_total (the pop above acked one too)
            (await Eventually.TrueAsync(
                async () => (await env.RunAsync("topic", "stats", "orders2")).Stdout.Contains("default\t0\t0\t0\t0\t-\t2\t", StringComparison.Ordinal),
                TimeSpan.FromSeconds(30))).ShouldBeTrue("the printed message is acked");
            await follow.SignalAsync("INT");
            (await follow.WaitForExitAsync(TimeSpan.FromSeconds(20))).ShouldBe(130, $"{follow.Stdout}\n{follow.Stderr}");
            follow.Stdout.ShouldBe("acked\n");
        }
        (await env.RunAsync("topic", "stats", "orders2")).Stdout.ShouldContain("default\t0\t0\t0\t0\t-\t2\t");
        (await env.RunAsync("cluster", "down")).ExitCode.ShouldBe(0);
    }

    [Fact]
    public async Task Cluster_up_in_the_foreground_shows_the_nodes_and_stops_them_on_ctrl_c()
    {
        await using var env = new CliEnvironment();
        await using var up = CliProcess.Start(env, "cluster", "up", "--nodes", "3");
        (await up.WaitForOutputAsync("leader: node", TimeSpan.FromSeconds(40))).ShouldBeTrue($"{up.Stdout}\n{up.Stderr}");
        up.Stdout.ShouldContain("commit index");
        var pids = env.RecordedPids();
        pids.Count.ShouldBe(3);
        pids.ShouldAllBe(p => CliEnvironment.IsAlive(p));

        await up.SignalAsync("INT");
        (await up.WaitForExitAsync(TimeSpan.FromSeconds(20))).ShouldBe(0, up.Stderr);
        up.Stdout.ShouldContain("stopped 3 node(s)");
        pids.ShouldAllBe(p => !CliEnvironment.IsAlive(p));
        env.RecordedPids().ShouldAllBe(p => !CliEnvironment.IsAlive(p));
    }

    /// <summary>A key file in <paramref name="env"/> with one key allowed everything on every topic.</summary>
    private static (string Key, string Path) OperatorKeys(CliEnvironment env)
    {
        const string key = "operator-0123456789abcdef";
        var path = Path.Combine(env.Root, "keys.json");
        File.WriteAllText(path, $$"""{"keys": [{"name": "operator", "key": "{{key}}", "permissions": [{"topics": "*", "allow": ["publish", "consume", "admin"]}]}]}""");
        return (key, path);
    }

    [Fact]
    public async Task Cluster_up_with_an_auth_file_starts_every_node_with_it_also_on_restart_and_commands_need_the_key()
    {
        await using var env = new CliEnvironment();
        var (key, keys) = OperatorKeys(env);
        var up = await env.RunAsync("cluster", "up", "--detach", "--nodes", "1", "--auth-file", keys);
        up.ExitCode.ShouldBe(0, up.ToString());

        var denied = await env.RunAsync("topic", "configure", "jobs");
        denied.ExitCode.ShouldBe(4, denied.ToString());
        denied.Stderr.ShouldContain("--api-key");
        denied.Stderr.ShouldNotContain("RaftMQClientOptions"); // a CLI user is told the CLI's option, not the library's
        (await env.RunAsync("topic", "configure", "jobs", "--api-key", key)).ExitCode.ShouldBe(0);

        // A node started again by the tool takes the key file again.
        (await env.RunAsync("cluster", "kill", "0")).ExitCode.ShouldBe(0);
        (await env.RunAsync("cluster", "start", "0")).ExitCode.ShouldBe(0);
        CliResult? again = null;
        (await Eventually.TrueAsync(async () => (again = await env.RunAsync("topic", "stats", "jobs")).ExitCode != 1, TimeSpan.FromSeconds(60)))
            .ShouldBeTrue($"the restarted node never answered: {again}");
        again!.ExitCode.ShouldBe(4, again.ToString());
        var stats = await env.RunAsync("topic", "stats", "jobs", "--api-key", key);
        stats.ExitCode.ShouldBe(0, stats.ToString());

        // Growing it needs the key, which the node that joins sends with its request; without it nothing starts.
        var refused = await env.RunAsync("cluster", "up", "--nodes", "2");
        refused.ExitCode.ShouldBe(4, refused.ToString());
        refused.Stderr.ShouldContain("--api-key");
        refused.Stdout.ShouldNotContain("joining");
        var grown = await env.RunAsync("cluster", "up", "--nodes", "2", "--api-key", key);
        grown.ExitCode.ShouldBe(0, grown.ToString());
        grown.Stdout.ShouldContain("node 1 is a voter");

        (await env.RunAsync("cluster", "up", "--nodes", "2", "--auth-file", Path.Combine(env.Root, "other.json"))).ExitCode.ShouldBe(2);
        (await env.RunAsync("cluster", "down")).ExitCode.ShouldBe(0);
        var missing = await env.RunAsync("cluster", "up", "--detach", "--auth-file", Path.Combine(env.Root, "missing.json"));
        missing.ExitCode.ShouldBe(2, missing.ToString());
        missing.Stderr.ShouldContain("missing.json: no such file");
    }

    [Fact]
    public async Task Cluster_up_with_auth_rrmq_requires_keys_on_the_rrmq_endpoints_too()
    {
        await using var env = new CliEnvironment();
        var (key, keys) = OperatorKeys(env);
        var alone = await env.RunAsync("cluster", "up", "--detach", "--nodes", "1", "--auth-rrmq");
        alone.ExitCode.ShouldBe(2, alone.ToString());
        alone.Stderr.ShouldContain("--auth-file");

        var up = await env.RunAsync("cluster", "up", "--detach", "--nodes", "1", "--auth-file", keys, "--auth-rrmq");
        up.ExitCode.ShouldBe(0, up.ToString());
        var file = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(env.Data, "cluster.json")))!;
        file["auth_rrmq"]!.GetValue<bool>().ShouldBeTrue();
        var url = new Uri(file["nodes"]![0]!["url"]!.GetValue<string>());
        using var http = new HttpClient();
        (await http.GetAsync(new Uri(url, "/message/jobs"))).StatusCode.ShouldBe(System.Net.HttpStatusCode.Unauthorized);
        using var withKey = new HttpRequestMessage(HttpMethod.Get, new Uri(url, "/message/jobs"));
        withKey.Headers.Authorization = new("Bearer", key);
        (await http.SendAsync(withKey)).StatusCode.ShouldNotBe(System.Net.HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task Cluster_up_keeps_the_generated_peer_secret_across_restarts_and_fresh_makes_a_new_one()
    {
        await using var env = new CliEnvironment();
        var shared = Path.Combine(env.Data, "config.json.secret");

        async Task<string> UpAndServeAsync(params string[] extra)
        {
            var up = await env.RunAsync(["cluster", "up", "--detach", "--nodes", "3", .. extra]);
            up.ExitCode.ShouldBe(0, up.ToString());
            // Published through the leader and committed by a majority: the nodes authenticated each other.
            var topic = "t" + Guid.NewGuid().ToString("N")[..8];
            var created = await env.RunAsync("topic", "create", topic);
            created.ExitCode.ShouldBe(0, created.ToString());
            (await env.RunAsync("publish", topic, "x")).ExitCode.ShouldBe(0);
            var secret = File.ReadAllText(shared).Trim();
            for (int i = 0; i < 3; i++)
                File.ReadAllText(Path.Combine(env.Data, $"node-{i}", "cluster-secret")).Trim().ShouldBe(secret, $"node {i}'s copy");
            var down = await env.RunAsync("cluster", "down");
            down.ExitCode.ShouldBe(0, down.ToString());
            return secret;
        }

        var first = await UpAndServeAsync();
        (await UpAndServeAsync()).ShouldBe(first, "a restarted cluster keeps its secret");
        (await UpAndServeAsync("--fresh")).ShouldNotBe(first, "a fresh cluster gets a new secret");
    }
}

/// <summary><c>raftmq cert</c> and <c>cluster up --tls</c>: real certificates, real TLS nodes, the CLI trusting the cluster's CA.</summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class CertTests
{
    [Fact]
    public async Task Cert_makes_a_CA_node_and_client_certificates_that_validate_with_owner_only_keys()
    {
        await using var env = new CliEnvironment();
        var dir = Path.Combine(env.Root, "certs");
        var none = await env.RunAsync("cert", "node", "n0", "--dir", dir);
        none.ExitCode.ShouldBe(1, none.ToString());
        none.Stderr.ShouldContain("raftmq cert ca --dir");

        (await env.RunAsync("cert", "ca", "--dir", dir)).ExitCode.ShouldBe(0);
        var node = await env.RunAsync("cert", "node", "n0", "--host", "10.0.0.1", "--host", "mq.example.com", "--dir", dir);
        node.ExitCode.ShouldBe(0, node.ToString());
        (await env.RunAsync("cert", "client", "app", "--dir", dir)).ExitCode.ShouldBe(0);
        var again = await env.RunAsync("cert", "ca", "--dir", dir);
        again.ExitCode.ShouldBe(1, again.ToString());
        again.Stderr.ShouldContain("already exists");
        var badHost = await env.RunAsync("cert", "node", "n1", "--host", "not a host", "--dir", dir);
        badHost.ExitCode.ShouldBe(2, badHost.ToString());

        foreach (var key in new[] { "ca.key", "n0.key", "app.key" })
            File.GetUnixFileMode(Path.Combine(dir, key)).ShouldBe(UnixFileMode.UserRead | UnixFileMode.UserWrite, key);
        using var ca = X509Certificate2.CreateFromPemFile(Path.Combine(dir, "ca.pem"), Path.Combine(dir, "ca.key"));
        using var n0 = X509Certificate2.CreateFromPemFile(Path.Combine(dir, "n0.pem"), Path.Combine(dir, "n0.key"));
        using var app = X509Certificate2.CreateFromPemFile(Path.Combine(dir, "app.pem"), Path.Combine(dir, "app.key"));
        ca.Extensions.OfType<X509BasicConstraintsExtension>().Single().CertificateAuthority.ShouldBeTrue();
        n0.GetECDsaPublicKey()!.KeySize.ShouldBe(256);
        var names = n0.Extensions.OfType<X509SubjectAlternativeNameExtension>().Single();
        names.EnumerateIPAddresses().ShouldContain(IPAddress.Parse("10.0.0.1"));
        names.EnumerateDnsNames().ShouldContain("mq.example.com");

        Chains(n0, ca, "1.3.6.1.5.5.7.3.1").ShouldBeTrue("a node certificate serves TLS");
        Chains(n0, ca, "1.3.6.1.5.5.7.3.2").ShouldBeTrue("a node certificate is a TLS client of its peers");
        Chains(app, ca, "1.3.6.1.5.5.7.3.2").ShouldBeTrue("a client certificate is a TLS client");
        Chains(app, ca, "1.3.6.1.5.5.7.3.1").ShouldBeFalse("a client certificate cannot serve as a node");
        using (var otherCa = System.Security.Cryptography.ECDsa.Create())
        {
            var request = new CertificateRequest("CN=other", otherCa, System.Security.Cryptography.HashAlgorithmName.SHA256);
            request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
            using var other = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddDays(1));
            Chains(n0, other, "1.3.6.1.5.5.7.3.1").ShouldBeFalse("only the issuing CA vouches for it");
        }
    }

    private static bool Chains(X509Certificate2 leaf, X509Certificate2 root, string usage)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(root);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.ApplicationPolicy.Add(new System.Security.Cryptography.Oid(usage));
        return chain.Build(leaf);
    }
}

[Collection(CliClusters.Name)]
public sealed class TlsClusterCliTests
{
    [Fact]
    public async Task Cluster_up_tls_serves_https_between_mutual_TLS_nodes_and_the_CLI_trusts_its_CA()
    {
        await using var env = new CliEnvironment();
        // TLS everywhere and per-topic permissions: an operator key for everything, an app key that may only publish to "secure".
        const string operatorKey = "operator-0123456789abcdef";
        const string appKey = "app-0123456789abcdef0123";
        var keys = Path.Combine(env.Root, "keys.json");
        File.WriteAllText(keys, $$"""
            {"keys": [
              {"name": "operator", "key": "{{operatorKey}}", "permissions": [{"topics": "*", "allow": ["publish", "consume", "admin"]}]},
              {"name": "app", "key": "{{appKey}}", "permissions": [{"topics": "secure", "allow": ["publish"]}]}]}
            """);
        var up = await env.RunAsync("cluster", "up", "--detach", "--tls", "--nodes", "3", "--auth-file", keys);
        up.ExitCode.ShouldBe(0, up.ToString());
        up.Stdout.ShouldContain("https://127.0.0.1:");
        using (var file = JsonDocument.Parse(File.ReadAllText(Path.Combine(env.Data, "cluster.json"))))
        {
            file.RootElement.GetProperty("ca").GetString().ShouldBe(Path.Combine(env.Data, "tls", "ca.pem"));
            file.RootElement.GetProperty("nodes").EnumerateArray().ShouldAllBe(n => n.GetProperty("url").GetString()!.StartsWith("https://", StringComparison.Ordinal));
        }
        File.ReadAllText(Path.Combine(env.Data, "node-0.log")).ShouldContain("mutual TLS between peers");

        // Without a key the nodes refuse (the /v1 API; the RRMQ endpoints stay open without --auth-rrmq), over TLS as without it.
        var keyless = await env.RunAsync("topic", "configure", "secure");
        keyless.ExitCode.ShouldBe(4, keyless.ToString());

        // Every command finds the CA in the cluster file; the key comes from the environment.
        env.Variables["RAFTMQ_API_KEY"] = operatorKey;
        (await env.RunAsync("topic", "create", "secure")).ExitCode.ShouldBe(0);
        var published = await env.RunAsync("publish", "secure", "over tls");
        published.ExitCode.ShouldBe(0, published.ToString());
        var consumed = await env.RunAsync("consume", "secure", "--count", "1");
        consumed.ExitCode.ShouldBe(0, consumed.ToString());
        consumed.Stdout.Trim().ShouldBe("over tls");
        (await env.RunAsync("publish", "secure", "from the app", "--api-key", appKey)).ExitCode.ShouldBe(0);
        var notAllowed = await env.RunAsync("receive", "secure", "--api-key", appKey);
        notAllowed.ExitCode.ShouldBe(4, notAllowed.ToString());
        notAllowed.Stderr.ShouldContain("consume");

        // Another cluster's URLs (--urls) take the CA from --ca or $RAFTMQ_CA, never from the local cluster file.
        string url;
        using (var file = JsonDocument.Parse(File.ReadAllText(Path.Combine(env.Data, "cluster.json"))))
            url = file.RootElement.GetProperty("nodes")[1].GetProperty("url").GetString()!.Replace("127.0.0.1", "localhost", StringComparison.Ordinal);
        var untrusted = await env.RunAsync("topic", "list", "--urls", url, "--timeout", "3");
        untrusted.ExitCode.ShouldBe(1, untrusted.ToString());
        untrusted.Stderr.ShouldContain("TLS handshake failed");
        untrusted.Stderr.ShouldContain("--ca FILE");
        var ca = Path.Combine(env.Data, "tls", "ca.pem");
        var withCa = await env.RunAsync("topic", "list", "--urls", url, "--ca", ca);
        withCa.ExitCode.ShouldBe(0, withCa.ToString());
        withCa.Stdout.ShouldContain("secure");
        env.Variables["RAFTMQ_CA"] = ca;
        var fromEnvironment = await env.RunAsync("publish", "secure", "again", "--urls", url);
        fromEnvironment.ExitCode.ShouldBe(0, fromEnvironment.ToString());
        env.Variables.Remove("RAFTMQ_CA");

        // A plain http:// URL to the TLS port fails with the node's own explanation, at once: no retry can fix a URL.
        var httpUrl = url.Replace("https://", "http://", StringComparison.Ordinal);
        var plain = await env.RunAsync("topic", "list", "--urls", httpUrl);
        plain.ExitCode.ShouldNotBe(0, plain.ToString());
        plain.Stderr.ShouldContain("speaks HTTPS only");
        plain.Stderr.ShouldNotContain("attempts", customMessage: plain.ToString());
        plain.Stderr.ShouldNotContain("did not complete", customMessage: plain.ToString());
        var plainStatus = await env.RunAsync("cluster", "status", "--urls", httpUrl);
        plainStatus.ExitCode.ShouldNotBe(0, plainStatus.ToString());
        plainStatus.Stderr.ShouldContain("speaks HTTPS only");

        (await env.RunAsync("cluster", "down")).ExitCode.ShouldBe(0);
    }

    [Fact]
    public async Task Cluster_up_tls_grows_by_a_node_that_gets_a_certificate_of_the_CA_and_joins_over_https()
    {
        await using var env = new CliEnvironment();
        var up = await env.RunAsync("cluster", "up", "--detach", "--tls", "--nodes", "1");
        up.ExitCode.ShouldBe(0, up.ToString());
        var grown = await env.RunAsync("cluster", "up", "--nodes", "2");
        grown.ExitCode.ShouldBe(0, grown.ToString());
        grown.Stdout.ShouldContain("node 1 is a voter");
        File.Exists(Path.Combine(env.Data, "tls", "node-1.pem")).ShouldBeTrue();
        var members = await env.RunAsync("cluster", "members");
        members.ExitCode.ShouldBe(0, members.ToString());
        members.Stdout.ShouldContain("2 voter(s)");

        // An address without a scheme, for a cluster whose URLs are https://: the node is added at https://.
        var port = RaftMQ.TestSupport.TestCluster.FreePorts(1)[0];
        var added = await env.RunAsync("cluster", "add", $"127.0.0.1:{port}");
        added.ExitCode.ShouldBe(0, added.ToString());
        added.Stdout.ShouldContain($"added node 2 at https://127.0.0.1:{port} as a learner", Case.Sensitive, added.ToString());
        (await env.RunAsync("cluster", "members")).Stdout.ShouldContain($"https://127.0.0.1:{port} ");
        (await env.RunAsync("cluster", "remove", "2")).ExitCode.ShouldBe(0);
        (await env.RunAsync("cluster", "down")).ExitCode.ShouldBe(0);
    }
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class CliClusters
{
    public const string Name = "CLI clusters";
}

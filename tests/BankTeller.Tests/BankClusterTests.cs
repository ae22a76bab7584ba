using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using BankTeller.Atm;

namespace BankTeller.Tests;

[CollectionDefinition(nameof(RealProcesses), DisableParallelization = true)]
public sealed class RealProcesses;

/// <summary>The sample as a person runs it: real server processes, the start script, the ATM program.</summary>
[Collection(nameof(RealProcesses))]
public sealed class BankClusterTests
{
    [Fact]
    public async Task The_start_script_brings_up_three_servers_and_the_atm_one_shot_commands_work()
    {
        await using var cluster = new BankCluster(3); // only for its ports and config: the script starts the servers
        var script = Path.Combine(Built.SampleDirectory, "bank-cluster.sh");
        var env = new Dictionary<string, string> { ["BANK_CONFIGURATION"] = Built.Configuration };
        try
        {
            var start = await Run.ProgramAsync("bash", [script, "start", cluster.Directory], env: env);
            start.ExitCode.ShouldBe(0, start.Output);
            start.Output.ShouldContain("node 2 started");

            var credit = await Run.AtmAsync(cluster, "credit", "alice", "10.50");
            credit.ExitCode.ShouldBe(Atm.Atm.Done, credit.Output);
            credit.Output.ShouldContain("ok: alice balance 10.50");

            var overdraw = await Run.AtmAsync(cluster, "debit", "alice", "20");
            overdraw.ExitCode.ShouldBe(Atm.Atm.Refused, overdraw.Output);
            overdraw.Output.ShouldContain("insufficient funds");

            var negative = await Run.AtmAsync(cluster, "debit", "alice", "-1");
            negative.ExitCode.ShouldBe(Atm.Atm.Refused, negative.Output);
            (await Run.AtmAsync(cluster, "credit", "alice", "ten")).ExitCode.ShouldBe(Atm.Atm.UsageError);

            var debit = await Run.AtmAsync(cluster, "debit", "alice", "0.50");
            debit.Output.ShouldContain("ok: alice balance 10.00");
            var balance = await Run.AtmAsync(cluster, "balance", "alice");
            balance.ExitCode.ShouldBe(0, balance.Output);
            balance.Output.ShouldContain("alice balance 10.00");

            var stats = await Run.AtmAsync(cluster, "stats");
            stats.ExitCode.ShouldBe(0, stats.Output);
            stats.Output.Split('\n').Count(l => l.Contains("commit_index", StringComparison.Ordinal)).ShouldBe(3, stats.Output);
            stats.Output.Split('\n').Count(l => l.Contains(": Leader term", StringComparison.Ordinal)).ShouldBe(1, stats.Output);

            // The interactive prompt: one session for the whole conversation.
            var session = await Run.ProgramAsync("dotnet", [Built.AtmDll, "--servers", cluster.ServerList], stdin: "credit bob 5\ndebit bob 6\nbalance bob\nquit\n");
            session.ExitCode.ShouldBe(0, session.Output);
            session.Output.ShouldContain("ok: bob balance 5.00");
            session.Output.ShouldContain("refused: insufficient funds");
            session.Output.ShouldContain("bob balance 5.00");
        }
        finally
        {
            var stop = await Run.ProgramAsync("bash", [script, "stop", cluster.Directory], env: env);
            stop.ExitCode.ShouldBe(0, stop.Output);
        }
        var status = await Run.ProgramAsync("bash", [script, "status", cluster.Directory], env: env);
        status.Output.Split('\n').Count(l => l.EndsWith("stopped", StringComparison.Ordinal)).ShouldBe(3, status.Output);
    }

    [Fact]
    public async Task A_resent_debit_with_the_same_key_is_applied_once_and_gets_the_same_answer()
    {
        await using var cluster = new BankCluster(3);
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderAsync();
        var http = cluster.Http;
        var root = cluster.Urls[leader];
        var session = JsonNode.Parse(await (await http.PostAsync(new Uri(root, "/sessions"), null)).Content.ReadAsStringAsync())!["session"]!.GetValue<ulong>();

        async Task<(HttpStatusCode, string)> Post(string path, string json)
        {
            using var response = await http.PostAsync(new Uri(root, path), new StringContent(json, Encoding.UTF8, "application/json"));
            return (response.StatusCode, await response.Content.ReadAsStringAsync());
        }

        (await Post("/accounts/carol/credit", $$"""{"amount": 100, "session": {{session}}, "sequence": 1}""")).Item1.ShouldBe(HttpStatusCode.OK);
        var debit = $$"""{"amount": 30.25, "session": {{session}}, "sequence": 2}""";
        var first = await Post("/accounts/carol/debit", debit);
        var resent = await Post("/accounts/carol/debit", debit); // as after a dropped connection
        first.Item1.ShouldBe(HttpStatusCode.OK);
        resent.ShouldBe(first);
        JsonNode.Parse(first.Item2)!["balance"]!.GetValue<decimal>().ShouldBe(69.75m);

        // A follower does not apply writes: it names the leader.
        var follower = (leader + 1) % cluster.Size;
        using var redirected = await http.PostAsync(
            new Uri(cluster.Urls[follower], "/accounts/carol/debit"),
            new StringContent($$"""{"amount": 1, "session": {{session}}, "sequence": 3}""", Encoding.UTF8, "application/json"));
        redirected.StatusCode.ShouldBe(HttpStatusCode.TemporaryRedirect);
        redirected.Headers.Location!.Port.ShouldBe(cluster.HttpPorts[leader]);

        // Reads are linearizable on every node, so each sees the one debit.
        for (int i = 0; i < cluster.Size; i++)
            JsonNode.Parse(await http.GetStringAsync(new Uri(cluster.Urls[i], "/accounts/carol")))!["balance"]!.GetValue<decimal>().ShouldBe(69.75m);

        // Bad input gets a clear 400, not a crash.
        (await Post("/accounts/carol/debit", "{not json")).Item1.ShouldBe(HttpStatusCode.BadRequest);
        (await Post("/accounts/carol/debit", """{"amount": 1}""")).Item1.ShouldBe(HttpStatusCode.BadRequest);
        (await Post("/accounts/bad%20name/credit", $$"""{"amount": 1, "session": {{session}}, "sequence": 4}""")).Item1.ShouldBe(HttpStatusCode.BadRequest);
        (await Post("/accounts/carol/debit", $$"""{"amount": 1, "session": 999999, "sequence": 1}""")).Item1.ShouldBe(HttpStatusCode.Conflict);
    }

    [Fact]
    public async Task Killing_the_leader_in_a_stream_of_debits_loses_nothing_and_applies_nothing_twice()
    {
        await using var cluster = new BankCluster(3);
        await cluster.StartAllAsync();
        const decimal Opening = 300m; // less than the 60 debits ask for: the last ones are refused
        using var client = new BankClient(cluster.Urls, new BankClientOptions { Timeout = TimeSpan.FromSeconds(20), AttemptTimeout = TimeSpan.FromSeconds(2) });
        (await client.CreditAsync("dave", Opening)).Ok.ShouldBeTrue();

        var leader = await cluster.WaitForLeaderAsync();
        const int Debits = 60;
        var ok = 0m;
        var refused = 0;
        for (int i = 0; i < Debits; i++)
        {
            if (i == Debits / 3) await cluster.KillAsync(leader); // mid-stream, with no warning
            var r = await client.DebitAsync("dave", 7.5m);
            if (r.Ok) ok += 7.5m;
            else
            {
                r.Code.ShouldBe(BankTeller.Protocol.ErrorCodes.InsufficientFunds, r.Error);
                refused++;
            }
        }
        var newLeader = await cluster.WaitForLeaderAsync(not: leader);
        newLeader.ShouldNotBe(leader);

        // Every debit was answered; the balance is the opening minus exactly the acknowledged ones, on every live node.
        var expected = Opening - ok;
        expected.ShouldBeGreaterThanOrEqualTo(0m);
        (await client.BalanceAsync("dave")).ShouldBe(expected);
        for (int i = 0; i < cluster.Size; i++)
        {
            if (!cluster.IsRunning(i)) continue;
            JsonNode.Parse(await cluster.Http.GetStringAsync(new Uri(cluster.Urls[i], "/accounts/dave")))!["balance"]!.GetValue<decimal>().ShouldBe(expected);
        }
        (ok / 7.5m + refused).ShouldBe(Debits);
    }
}

using System.Diagnostics;
using System.Net;
using System.Text.Json;
using PuppeteerSharp;

namespace RaftMQ.Operations.Tests;

/// <summary>The web console at /ui in a real headless Chromium, against a real three-node cluster.</summary>
public sealed class WebConsoleTests
{
    /// <summary>How long a busy machine may take to start the browser and render the first poll.</summary>
    private static readonly int LoadTimeoutMs = 30_000;

    [ChromiumFact]
    public async Task The_console_shows_the_nodes_and_leader_a_killed_node_as_down_within_two_seconds_and_topic_depths()
    {
        await using var cluster = TestCluster.Create(3);
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderAsync();
        var serving = Enumerable.Range(0, 3).First(i => i != leader);
        var victim = Enumerable.Range(0, 3).First(i => i != leader && i != serving);
        (await cluster.CreateTopicAsync(leader, "orders")).Status.ShouldBe(HttpStatusCode.Created);

        await using var browser = await Chromium.LaunchAsync();
        await using var page = await browser.NewPageAsync();
        var errors = new List<string>();
        var console = new List<string>();
        page.PageError += (_, e) => errors.Add(e.Message);
        page.Console += (_, e) => console.Add(e.Message.Text);
        (await page.GoToAsync(cluster.Url(serving, "/ui").ToString(), LoadTimeoutMs))!.Status.ShouldBe(HttpStatusCode.OK);

        // Three nodes, up, one of them marked as the leader — the one the nodes themselves name (an election may have
        // happened since the cluster started, so the page is compared with the nodes' answers, not an earlier one).
        // The page redraws every poll, and on a busy machine a peer's answer may miss its timeout in one of them (that
        // member then shows as down for a poll): what one drawing shows is read in the same evaluation that waits for it.
        string? shown = null;
        await WhatThePageShowsOnFailure(page, console, async () =>
        {
            var drawn = await page.WaitForFunctionAsync(
                "() => { const leaders = document.querySelectorAll('#members tr[data-role=\"Leader\"]');"
                + " return document.querySelectorAll('#members tbody tr').length === 3 && document.querySelectorAll('#members tr[data-up=\"true\"]').length === 3"
                + " && leaders.length === 1 && document.querySelector('#summary').dataset.leader === leaders[0].dataset.node && leaders[0].dataset.node; }",
                new WaitForFunctionOptions { Timeout = LoadTimeoutMs });
            shown = await drawn.JsonValueAsync<string>();
        });
        var shownLeader = int.Parse(shown!, System.Globalization.CultureInfo.InvariantCulture);
        (await cluster.WaitForLeaderAsync()).ShouldBe(shownLeader);

        // Messages published through the API show in the topic's depth.
        for (int i = 0; i < 3; i++) (await cluster.PublishAsync(leader, "orders", $"m{i}")).Status.ShouldBe(HttpStatusCode.OK);
        await WhatThePageShowsOnFailure(page, console, () => page.WaitForFunctionAsync(
            "() => document.querySelector('#topic-table tr[data-topic=\"orders\"] td.ready')?.textContent === '3'",
            new WaitForFunctionOptions { Timeout = LoadTimeoutMs }));

        // ... and so does one published with the page's own form; the pop form takes the oldest.
        await page.TypeAsync("#publish-form input[name=topic]", "orders");
        await page.TypeAsync("#publish-form input[name=message]", "from the console");
        await ActivateAsync(page, "#publish-form button");
        await page.WaitForFunctionAsync(
            "() => document.querySelector('#topic-table tr[data-topic=\"orders\"] td.ready')?.textContent === '4'",
            new WaitForFunctionOptions { Timeout = LoadTimeoutMs });
        await page.TypeAsync("#pop-form input[name=topic]", "orders");
        await ActivateAsync(page, "#pop-form button");
        await page.WaitForFunctionAsync("() => document.querySelector('#result').textContent.includes('\"message\":\"m0\"')",
            new WaitForFunctionOptions { Timeout = LoadTimeoutMs });

        // A message dead-lettered through the API shows as one dead letter of the chosen topic; the Redrive button
        // moves it back, where the group sees it ready again.
        (await cluster.SendAsync(leader, HttpMethod.Put, "/v1/topics/jobs", "{\"max_deliveries\": 1}")).Status.ShouldBe(HttpStatusCode.Created);
        (await cluster.PublishAsync(leader, "jobs", "doomed")).Status.ShouldBe(HttpStatusCode.OK);
        var received = await cluster.SendAsync(leader, HttpMethod.Post, "/v1/topics/jobs/receive", "{\"lease_ms\": 2000}");
        received.Status.ShouldBe(HttpStatusCode.OK);
        var receipt = JsonDocument.Parse(received.Body).RootElement.GetProperty("messages")[0].GetProperty("receipt").GetString();
        var nacked = await cluster.SendAsync(leader, HttpMethod.Post, "/v1/topics/jobs/nack",
            $"{{\"group\": \"default\", \"receipts\": [\"{receipt}\"], \"error\": \"cannot process\"}}");
        nacked.Status.ShouldBe(HttpStatusCode.OK);
        JsonDocument.Parse(nacked.Body).RootElement.GetProperty("nacked").GetInt32().ShouldBe(1);
        await WhatThePageShowsOnFailure(page, console, () => page.WaitForFunctionAsync(
            "() => [...document.querySelectorAll('#detail-topic option')].some(o => o.value === 'jobs')",
            new WaitForFunctionOptions { Timeout = LoadTimeoutMs }));
        await page.SelectAsync("#detail-topic", "jobs");
        await WhatThePageShowsOnFailure(page, console, () => page.WaitForFunctionAsync(
            "() => document.querySelector('#detail-body').dataset.topic === 'jobs' && document.querySelector('#dead-letters')?.dataset.count === '1'"
            + " && document.querySelector('#groups tr[data-group=\"default\"] td.ready')?.textContent === '0'"
            + " && document.querySelector('#groups tr[data-group=\"default\"] td.unacked')?.textContent === '0'"
            + " && document.querySelector('#groups tr[data-group=\"default\"] td.dead-lettered')?.textContent === '1'"
            + " && !document.querySelector('#redrive').disabled",
            new WaitForFunctionOptions { Timeout = LoadTimeoutMs }));
        await ActivateAsync(page, "#redrive");
        await WhatThePageShowsOnFailure(page, console, () => page.WaitForFunctionAsync(
            "() => document.querySelector('#detail-body').dataset.topic === 'jobs' && document.querySelector('#dead-letters')?.dataset.count === '0'"
            + " && document.querySelector('#groups tr[data-group=\"default\"] td.ready')?.textContent === '1'"
            + " && document.querySelector('#groups tr[data-group=\"default\"] td.deliveries')?.textContent === '—'" // redriven: a new message, never delivered
            + " && document.querySelector('#result').textContent.includes('\"redriven\":1')",
            new WaitForFunctionOptions { Timeout = LoadTimeoutMs }));
        var back = await cluster.PopAsync(leader, "jobs");
        back.Status.ShouldBe(HttpStatusCode.OK);
        back.Body.ShouldContain("doomed");

        // The latency chart differences this node's /metrics between two scrapes: publishes this node answers after
        // its first scrape show as a sample with a mean.
        await WhatThePageShowsOnFailure(page, console, () => page.WaitForFunctionAsync(
            "() => document.querySelector('#latency-last').dataset.count !== undefined", new WaitForFunctionOptions { Timeout = LoadTimeoutMs }));
        for (int i = 0; i < 5; i++) (await cluster.PublishAsync(serving, "orders", $"timed{i}")).Status.ShouldBe(HttpStatusCode.OK);
        await WhatThePageShowsOnFailure(page, console, () => page.WaitForFunctionAsync(
            "() => Number(document.querySelector('#latency-chart').dataset.samples) >= 1", new WaitForFunctionOptions { Timeout = LoadTimeoutMs }));

        // Every member has a Remove button; adding a member with a bad URL shows the server's refusal, as the node
        // answers it to anyone.
        (await page.QuerySelectorAllAsync("#members tbody tr button.remove")).Length.ShouldBe(3);
        var refusal = await cluster.SendAsync(serving, HttpMethod.Post, "/v1/cluster/members", "{\"url\": \"not-a-url\"}");
        refusal.Status.ShouldBe(HttpStatusCode.BadRequest);
        await page.TypeAsync("#add-member-form input[name=url]", "not-a-url");
        await ActivateAsync(page, "#add-member-form button");
        await WhatThePageShowsOnFailure(page, console, () => page.WaitForFunctionAsync(
            "(body) => document.querySelector('#result').textContent === 'POST /v1/cluster/members → 400\\n' + body",
            new WaitForFunctionOptions { Timeout = LoadTimeoutMs }, refusal.Body));
        (await cluster.SendAsync(leader, HttpMethod.Get, "/v1/cluster/members")).Body.ShouldNotContain("not-a-url");

        // A killed node shows as down within 2 s of its death.
        await cluster.Node(victim).KillAsync();
        var sinceKill = Stopwatch.StartNew();
        await WhatThePageShowsOnFailure(page, console, () => page.WaitForSelectorAsync(
            $"#members tr[data-node=\"{victim}\"][data-up=\"false\"]", new WaitForSelectorOptions { Timeout = 2_000 }));
        sinceKill.Elapsed.ShouldBeLessThan(TimeSpan.FromSeconds(2));
        // The two others stay up (waited for, not read once: a busy machine may miss a peer's answer in one poll).
        await WhatThePageShowsOnFailure(page, console, () => page.WaitForFunctionAsync(
            "() => document.querySelectorAll('#members tr[data-up=\"true\"]').length === 2", new WaitForFunctionOptions { Timeout = LoadTimeoutMs }));

        errors.ShouldBeEmpty("the page's script raised no errors");
    }

    [ChromiumFact]
    public async Task A_click_on_Remove_and_yes_to_the_confirm_dialog_takes_a_member_out_of_the_cluster_and_off_the_page()
    {
        // Elections only when a node is really gone, as in the membership tests: the test names nodes by their role.
        await using var cluster = TestCluster.CreateGrowable(3, 1, "--request-timeout-ms", "8000", "--election-timeout-ms", "1000", "--heartbeat-ms", "100");
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderAsync();
        cluster.StartJoining(3, leader);
        (await Eventually.TrueAsync(async () => (await MembersAsync(cluster, leader)) is { } m
                && m.Select(x => x.Node).Order().SequenceEqual([0, 1, 2, 3]) && m.All(x => x.Role == "voter"), MembershipProgress))
            .ShouldBeTrue("node 3 joined as a voter");
        // Membership changes go to the leader (a follower's answer only names it): the page is the leader's, and the
        // member removed one of the others, the node that joined when it is not the leader.
        leader = await cluster.WaitForLeaderAsync();
        var serving = leader;
        var victim = new[] { 3, 2, 1, 0 }.First(i => i != leader);

        await using var browser = await Chromium.LaunchAsync();
        await using var page = await browser.NewPageAsync();
        var errors = new List<string>();
        var console = new List<string>();
        var dialogs = new List<string>();
        page.PageError += (_, e) => errors.Add(e.Message);
        page.Console += (_, e) => console.Add(e.Message.Text);
        page.Dialog += async (_, e) =>
        {
            dialogs.Add($"{e.Dialog.DialogType}: {e.Dialog.Message}");
            await e.Dialog.Accept();
        };
        (await page.GoToAsync(cluster.Url(serving, "/ui").ToString(), LoadTimeoutMs))!.Status.ShouldBe(HttpStatusCode.OK);
        await WhatThePageShowsOnFailure(page, console, () => page.WaitForFunctionAsync(
            "() => document.querySelectorAll('#members tr[data-up=\"true\"]').length === 4",
            new WaitForFunctionOptions { Timeout = LoadTimeoutMs }));

        await ActivateAsync(page, $"#members tr[data-node=\"{victim}\"] button.remove");
        await WhatThePageShowsOnFailure(page, console, () => page.WaitForFunctionAsync(
            "(node) => document.querySelectorAll('#members tbody tr').length === 3 && !document.querySelector(`#members tr[data-node=\"${node}\"]`)",
            new WaitForFunctionOptions { Timeout = LoadTimeoutMs }, victim));
        dialogs.ShouldHaveSingleItem().ShouldStartWith($"Confirm: Remove node {victim} (");
        (await page.EvaluateExpressionAsync<string>("document.querySelector('#result').textContent"))
            .ShouldStartWith($"DELETE /v1/cluster/members/{victim} → 200");
        var members = await MembersAsync(cluster, leader);
        members.ShouldNotBeNull();
        members.Select(m => m.Node).Order().ShouldBe(Enumerable.Range(0, 4).Where(i => i != victim), "GET /v1/cluster/members no longer lists it");
        await cluster.Node(victim).TerminateAsync(TimeSpan.FromSeconds(10));

        errors.ShouldBeEmpty("the page's script raised no errors");
    }

    [ChromiumFact]
    public async Task With_an_auth_file_the_console_asks_for_a_key_and_then_shows_every_node_and_sends_it_with_its_forms()
    {
        const string key = "console-0123456789abcdef01";
        var dir = TestCluster.NewDirectory();
        Directory.CreateDirectory(dir);
        var keys = Path.Combine(dir, "keys.json");
        File.WriteAllText(keys, $$"""{"keys": [{"name": "operator", "key": "{{key}}", "permissions": [{"topics": "*", "allow": ["publish", "consume", "admin"]}]}]}""");
        await using var cluster = TestCluster.CreateIn(dir, 3, "--auth-file", keys, "--auth-rrmq");
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderAsync();
        var serving = Enumerable.Range(0, 3).First(i => i != leader);

        await using var browser = await Chromium.LaunchAsync();
        await using var page = await browser.NewPageAsync();
        var errors = new List<string>();
        var console = new List<string>();
        page.PageError += (_, e) => errors.Add(e.Message);
        page.Console += (_, e) => console.Add(e.Message.Text);
        (await page.GoToAsync(cluster.Url(serving, "/ui").ToString(), LoadTimeoutMs))!.Status.ShouldBe(HttpStatusCode.OK);

        // Without a key the overview is refused, and the page says so.
        await WhatThePageShowsOnFailure(page, console, () => page.WaitForFunctionAsync(
            "() => document.querySelector('#summary').textContent.includes('HTTP 401') && document.querySelector('#api-key').classList.contains('down')",
            new WaitForFunctionOptions { Timeout = LoadTimeoutMs }));

        // With the key typed in, every node shows as up: the serving node passes the key on to the peers it asks.
        await page.TypeAsync("#api-key", key);
        await page.Keyboard.PressAsync("Tab");
        await WhatThePageShowsOnFailure(page, console, () => page.WaitForFunctionAsync(
            "() => document.querySelectorAll('#members tr[data-up=\"true\"]').length === 3",
            new WaitForFunctionOptions { Timeout = LoadTimeoutMs }));

        // The forms send it too (the RRMQ endpoints need it here: --auth-rrmq).
        await page.TypeAsync("#create-form input[name=topic]", "orders");
        await ActivateAsync(page, "#create-form button");
        await WhatThePageShowsOnFailure(page, console, () => page.WaitForFunctionAsync(
            "() => document.querySelector('#result').textContent.startsWith('PUT /topic → 201')", new WaitForFunctionOptions { Timeout = LoadTimeoutMs }));
        await page.TypeAsync("#publish-form input[name=topic]", "orders");
        await page.TypeAsync("#publish-form input[name=message]", "from the console");
        await ActivateAsync(page, "#publish-form button");
        await WhatThePageShowsOnFailure(page, console, () => page.WaitForFunctionAsync(
            "() => document.querySelector('#result').textContent.startsWith('PUT /message → 200')", new WaitForFunctionOptions { Timeout = LoadTimeoutMs }));
        (await cluster.PopAsync(leader, "orders")).Status.ShouldBe(HttpStatusCode.Unauthorized, "the RRMQ pop needs a key here");
        await page.TypeAsync("#pop-form input[name=topic]", "orders");
        await ActivateAsync(page, "#pop-form button");
        await WhatThePageShowsOnFailure(page, console, () => page.WaitForFunctionAsync(
            "() => document.querySelector('#result').textContent.includes('\"message\":\"from the console\"')",
            new WaitForFunctionOptions { Timeout = LoadTimeoutMs }));

        errors.ShouldBeEmpty("the page's script raised no errors");
    }

    /// <summary>How long a membership change may take on a busy machine.</summary>
    private static readonly TimeSpan MembershipProgress = TimeSpan.FromSeconds(30);

    private sealed record Member(int Node, string Role);

    /// <summary>The members node <paramref name="via"/> lists (null when it does not answer 200).</summary>
    private static async Task<List<Member>?> MembersAsync(TestCluster cluster, int via)
    {
        try
        {
            var (status, body) = await cluster.SendAsync(via, HttpMethod.Get, "/v1/cluster/members");
            if (status != HttpStatusCode.OK) return null;
            using var doc = JsonDocument.Parse(body);
            return [.. doc.RootElement.GetProperty("members").EnumerateArray().Select(m => new Member(m.GetProperty("node").GetInt32(), m.GetProperty("role").GetString()!))];
        }
        catch (HttpRequestException)
        {
            return null;
        }
    }

    /// <summary>
    /// Activates a button as a keyboard user does: focus, then Enter. The page redraws every 500 ms and its sections
    /// change height as topics, results and figures come and go; a mouse click goes to coordinates computed a moment
    /// before it is sent, so on a busy machine it can land beside a button that has just moved, and nothing happens.
    /// Focus and key presses go to the element itself, wherever it is by then.
    /// </summary>
    private static async Task ActivateAsync(IPage page, string selector)
    {
        await page.FocusAsync(selector);
        await page.Keyboard.PressAsync("Enter");
    }

    /// <summary>Runs a wait; when it times out, fails with what the page shows and logged, to tell why.</summary>
    private static async Task WhatThePageShowsOnFailure(IPage page, List<string> console, Func<Task> wait)
    {
        try
        {
            await wait();
        }
        catch (WaitTaskTimeoutException e)
        {
            var shown = await page.EvaluateExpressionAsync<string>(
                "document.querySelector('#summary').textContent + '\\n' + document.querySelector('#members').outerHTML + '\\n' + document.querySelector('#topic-table').outerHTML"
                + " + '\\n' + document.querySelector('#details').outerHTML + '\\n' + document.querySelector('#result').textContent"
                + " + '\\nform fields: ' + [...document.querySelectorAll('form input')].map(i => i.closest('form').id + ' ' + i.name + '=' + JSON.stringify(i.value)).join(', ')"
                + " + '\\nfocused: ' + (document.activeElement ? document.activeElement.outerHTML.slice(0, 200) : 'nothing')");
            throw new ShouldAssertException($"{e.Message}\nthe page shows:\n{shown}\nits console:\n{string.Join('\n', console)}", e);
        }
    }
}

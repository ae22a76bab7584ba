namespace RaftMQ.Cli.Tests;

/// <summary>
/// <c>raftmq cluster remove</c> when the answer to the removal is lost (<c>503 outcome-unknown</c>), against one
/// scripted node that leads: a real cluster cannot be made to lose that answer, nor to hold a removal between its
/// append and its commit, on demand.
/// </summary>
public sealed class ClusterRemoveTests
{
    [Fact]
    public async Task A_removal_still_committing_after_a_lost_answer_is_waited_for_and_reported_as_done()
    {
        // The removal is at index 11 of the leader's log, committed only at the third status read after the DELETE:
        // the members read right after the lost answer still lists node 1.
        await using var node = new ScriptedLeader(appended: true, commitAtStatusRead: 3);
        await using var env = new CliEnvironment();
        var r = await env.RunAsync("cluster", "remove", "1", "--urls", node.Url);
        r.ExitCode.ShouldBe(0, r.ToString());
        r.Stderr.ShouldContain("the answer to removing node 1 was lost", Case.Sensitive, r.ToString());
        r.Stdout.ShouldContain("removed node 1 from the cluster", Case.Sensitive, r.ToString());
        node.ListedAfterDelete.ShouldBeGreaterThan(0, "the first read after the lost answer still listed node 1");
    }

    [Fact]
    public async Task A_removal_that_did_not_take_effect_is_reported_once_the_leader_has_committed_its_log()
    {
        // Nothing was appended: the leader's log is committed, and node 1 stays.
        await using var node = new ScriptedLeader(appended: false, commitAtStatusRead: 0);
        await using var env = new CliEnvironment();
        var r = await env.RunAsync("cluster", "remove", "1", "--urls", node.Url);
        r.ExitCode.ShouldBe(1, r.ToString());
        r.Stderr.ShouldContain("node 1 is still a member: the removal did not take effect; run it again", Case.Sensitive, r.ToString());
    }

    [Fact]
    public async Task A_removal_that_does_not_settle_within_the_timeout_is_an_unknown_outcome()
    {
        // Appended, never committed: after --timeout the tool says it cannot tell, rather than "run it again".
        await using var node = new ScriptedLeader(appended: true, commitAtStatusRead: null);
        await using var env = new CliEnvironment();
        var r = await env.RunAsync("cluster", "remove", "1", "--urls", node.Url, "--timeout", "2");
        r.ExitCode.ShouldBe(3, r.ToString());
        r.Stderr.ShouldContain("node 1 is still listed as a member, but the removal may still be committing", Case.Sensitive, r.ToString());
        r.Stderr.ShouldContain("short of index 11", Case.Sensitive, r.ToString());
        r.Stderr.ShouldNotContain("run it again", Case.Sensitive, r.ToString());
    }

    [Fact]
    public async Task A_lost_removal_is_read_back_through_an_election_longer_than_the_clients_own_retries()
    {
        // After the lost answer the node has no leader for 13 members reads (the client gives up after 11 attempts,
        // a few seconds), then answers, with node 1 gone: the tool keeps asking within --timeout and reports the removal.
        await using var node = new ScriptedLeader(appended: true, commitAtStatusRead: 0, membersReadsWithoutLeader: 13);
        await using var env = new CliEnvironment();
        var r = await env.RunAsync("cluster", "remove", "1", "--urls", node.Url, "--timeout", "45");
        r.ExitCode.ShouldBe(0, r.ToString());
        r.Stdout.ShouldContain("removed node 1 from the cluster", Case.Sensitive, r.ToString());
        node.MembersReadsWithoutLeader.ShouldBe(0, "every read without a leader was asked again");
    }

    /// <summary>
    /// Node 0 of a two-node cluster, leading in term 1 with a log of 10 entries, all committed. A DELETE of node 1 is
    /// answered <c>503 outcome-unknown</c>; with <paramref name="appended"/> the removal is entry 11, committed at the
    /// <paramref name="commitAtStatusRead"/>-th <c>GET /v1/status</c> after the DELETE (never when null), and node 1
    /// leaves the members once it is. The first <paramref name="membersReadsWithoutLeader"/> members reads after the
    /// DELETE are answered <c>503 no-leader</c>, as in an election.
    /// </summary>
    private sealed class ScriptedLeader : IAsyncDisposable
    {
        private readonly ScriptedNode _node;
        private readonly bool _appended;
        private readonly int? _commitAt;
        private readonly Lock _gate = new();
        private bool _deleted;
        private int _statusReads;
        private int _listedAfterDelete;
        private int _withoutLeader;

        public ScriptedLeader(bool appended, int? commitAtStatusRead, int membersReadsWithoutLeader = 0)
        {
            _appended = appended;
            _commitAt = commitAtStatusRead;
            _withoutLeader = membersReadsWithoutLeader;
            _node = new ScriptedNode((_, request) => Answer(request.Method, request.Path));
        }

        public string Url => _node.Url;

        /// <summary>Members reads still to be answered <c>503 no-leader</c>.</summary>
        public int MembersReadsWithoutLeader
        {
            get
            {
                lock (_gate) return _withoutLeader;
            }
        }

        /// <summary>Members reads after the DELETE that still listed node 1.</summary>
        public int ListedAfterDelete
        {
            get
            {
                lock (_gate) return _listedAfterDelete;
            }
        }

        private (ulong Commit, ulong Last, bool Removed) State()
        {
            var last = _deleted && _appended ? 11UL : 10UL;
            var commit = last == 11 && _commitAt is { } at && _statusReads >= at ? 11UL : 10UL;
            return (commit, last, last == 11 && commit == 11);
        }

        private (int Status, string Body, string? Code) Answer(string method, string path)
        {
            lock (_gate)
            {
                switch (method, path)
                {
                    case ("GET", "/v1/status"):
                        if (_deleted) _statusReads++;
                        var (commit, last, _) = State();
                        return (200, $$"""{"service":"raftmq","node":0,"cluster_id":"scripted","ready":true,"role":"Leader","term":1,"leader":0,"leader_url":"{{Url}}","commit_index":{{commit}},"applied_index":{{commit}},"last_index":{{last}}}""", null);
                    case ("GET", "/v1/cluster/members") when _deleted && _withoutLeader > 0:
                        _withoutLeader--;
                        return (503, """{"success":false,"error":"no leader elected yet"}""", "no-leader");
                    case ("GET", "/v1/cluster/members"):
                        var removed = State().Removed;
                        if (_deleted && !removed) _listedAfterDelete++;
                        var one = removed ? "" : """,{"node":1,"role":"voter","url":"http://127.0.0.1:9","peer_port":1009}""";
                        return (200, $$"""{"success":true,"cluster_id":"scripted","leader":0,"leader_url":"{{Url}}","members":[{"node":0,"role":"voter","url":"{{Url}}","peer_port":1}{{one}}]}""", null);
                    case ("DELETE", "/v1/cluster/members/1"):
                        _deleted = true;
                        return (503, """{"success":false,"error":"timed out waiting for the change to commit; it may or may not be in force (see GET /v1/cluster/members)"}""", "outcome-unknown");
                    default:
                        return (404, """{"success":false,"error":"not scripted"}""", null);
                }
            }
        }

        public ValueTask DisposeAsync() => _node.DisposeAsync();
    }
}

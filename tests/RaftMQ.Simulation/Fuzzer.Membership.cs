using RaftMQ.Raft;
using RaftMQ.Runtime;

namespace RaftMQ.Simulation;

/// <summary>What the membership changes of one fuzzed schedule did.</summary>
/// <param name="Asked">Changes asked of a node (refused ones included).</param>
/// <param name="LearnersAdded">Committed changes that added a learner.</param>
/// <param name="Promoted">Committed changes that made a learner a voter (by the leader on its own, or asked).</param>
/// <param name="VotersRemoved">Committed changes that removed a voter.</param>
/// <param name="LearnersRemoved">Committed changes that removed a learner.</param>
/// <param name="LeaderSelfRemovals">Removals of the leader itself that the leader accepted.</param>
/// <param name="Wiped">Nodes whose disk was wiped (they were replaced, or at least removed).</param>
/// <param name="InFlightRefusals">Changes refused because another was not committed yet (each checked).</param>
/// <param name="MisuseRefusals">Changes refused as misuse: the last voter, an existing member, an unknown id, id 0, a voter promoted.</param>
/// <param name="NotLeaderRefusals">Changes refused by a node that does not lead (each with the leader it knows as a hint).</param>
/// <param name="JoinedFromSnapshot">Joined nodes that caught up from a snapshot.</param>
/// <param name="FinalVoters">Voters of the final configuration.</param>
/// <param name="Statuses">How many calls got each status, by (kind, status).</param>
public sealed record MembershipOutcome(
    int Asked, int LearnersAdded, int Promoted, int VotersRemoved, int LearnersRemoved, int LeaderSelfRemovals, int Wiped,
    int InFlightRefusals, int MisuseRefusals, int NotLeaderRefusals, int JoinedFromSnapshot, int FinalVoters,
    IReadOnlyDictionary<(MembershipChangeKind Kind, MembershipStatus Status), int> Statuses);

public static partial class Fuzzer
{
    /// <summary>
    /// The membership part of a schedule: now and then (between the faults) one change is asked of the leader — add a
    /// spare as a learner (it joins empty and catches up from the log or a snapshot, then the leader promotes it), promote
    /// a learner, remove a learner, a voter or the leader itself, wipe a member's disk for good (it is then removed and,
    /// in time, replaced by a spare) — often at once followed by a second change, which must be refused while the
    /// first is not committed, and now and then a misuse (the last voter, an existing member, an unknown id, id 0,
    /// promoting a voter, a node that does not lead). The status every call gets is checked against what it must be,
    /// worked out from the leader's log and the checker's own record of its configuration, before the call.
    /// Never drives the configuration below one voter (the core refuses it; that refusal is asked for and checked),
    /// and keeps the cluster able to recover: while a wiped member is in the configuration, no live voter is removed.
    /// </summary>
    private sealed class MembershipSchedule(ulong seed)
    {
        private readonly SplitMix64 _rng = new(seed ^ 0xBB67AE8584CAA73BUL);
        private int _asked, _selfRemovals, _wiped, _inFlight, _misuse, _notLeader;

        // What DecommissionRemoved has read of the committed log: how far, the latest configuration, every member.
        private int _committedScanned;
        private ClusterConfiguration? _latestCommitted;
        private readonly HashSet<ulong> _everMember = [];
        private bool _owed; // an action came due while nobody led

        /// <summary>Node ids of the pool: three to five spares beyond the first configuration.</summary>
        public int PoolFor(int nodes) => nodes + 3 + _rng.Next(3);

        /// <summary>
        /// Whether leaders promote caught-up learners on their own (two schedules in three); otherwise learners stay
        /// learners until promoted by a call, or removed.
        /// </summary>
        public bool AutoPromote { get; } = new SplitMix64(seed ^ 0x3C6EF372FE94F82BUL).Next(3) != 0;

        /// <summary>One chance of a membership action, after the schedule's fault of this round.</summary>
        public void Step(SimCluster sim)
        {
            // The operator shuts a removed node down some time after its removal committed (docs/membership.md); until
            // then it runs on, possibly never having heard of its removal.
            if (_rng.Next(100) < 15) DecommissionRemoved(sim);
            if (!_owed && _rng.Next(100) >= 30) return;
            var leader = sim.Leader;
            if (leader is null)
            {
                // Nobody leads: whoever is asked now and then must say so; the operator tries again once a node leads.
                _owed = true;
                var up = sim.Nodes.Where(x => x.IsUp).ToList();
                if (up.Count > 0 && _rng.Next(8) == 0) Ask(sim, up[_rng.Next(up.Count)].Id, RandomKind(), RandomTarget(sim, null));
                return;
            }
            _owed = false;
            var id = leader.Id;
            var configuration = sim.Checker.ConfigurationOf(id);
            var wipedMember = configuration.Voters.Concat(configuration.Learners).FirstOrDefault(sim.IsRetired);
            var roll = _rng.Next(100);
            SimMembershipChange? first = null;
            if (wipedMember != 0 && roll < 50)
            {
                first = Ask(sim, id, MembershipChangeKind.RemoveMember, wipedMember); // the replacement's second half
            }
            else if (roll < 35)
            {
                // A spare never used (a removed node never comes back with its data, docs/membership.md), or else a member.
                var spares = sim.UnusedSpares.ToList();
                first = Ask(sim, id, MembershipChangeKind.AddLearner, spares.Count > 0 ? spares[_rng.Next(spares.Count)] : RandomMember(configuration));
            }
            else if (roll < 45)
            {
                var learners = configuration.Learners;
                if (learners.Count > 0) first = Ask(sim, id, MembershipChangeKind.PromoteLearner, learners[_rng.Next(learners.Count)]);
            }
            else if (roll < 70)
            {
                var target = RemovalTarget(sim, configuration, id, wipedMember);
                if (target != 0) first = Ask(sim, id, MembershipChangeKind.RemoveMember, target);
            }
            else if (roll < 78)
            {
                MaybeWipe(sim, configuration, id, wipedMember);
            }
            else if (roll < 90)
            {
                Misuse(sim, configuration, id);
            }
            else
            {
                var up = sim.Nodes.Where(x => x.IsUp && x.Id != id).ToList();
                if (up.Count > 0) Ask(sim, up[_rng.Next(up.Count)].Id, RandomKind(), RandomTarget(sim, configuration)); // a follower, or a stale leader
            }
            // Often a second change at once: refused while the first is not committed (a single voter commits at once).
            if (first is { IsAccepted: true } && _rng.Next(2) == 0 && leader.IsUp)
                Ask(sim, id, RandomKind(), RandomTarget(sim, sim.Checker.ConfigurationOf(id)));
        }

        /// <summary>
        /// After the faults: removes wiped members (retrying through elections), then shuts down every node that is
        /// not a member of the final configuration.
        /// </summary>
        public void Settle(SimCluster sim)
        {
            DecommissionRemoved(sim);
            var deadline = sim.Now + ConvergeTimeoutMs;
            while (true)
            {
                // A removal that commits while the cluster settles is followed by its shutdown too: a removed node
                // that never learned of its removal would otherwise campaign against the cluster for ever when
                // neither pre-vote nor check-quorum is on (docs/membership.md).
                var converged = sim.RunUntil(
                    () =>
                    {
                        DecommissionRemoved(sim);
                        return Converged(sim, out _);
                    },
                    Math.Max(0, deadline - sim.Now));
                if (!converged)
                    throw sim.Failure($"the healed cluster did not converge within {ConvergeTimeoutMs} virtual ms (membership settling)");
                var leader = sim.Leader!;
                var configuration = sim.Checker.ConfigurationOf(leader.Id);
                var wiped = configuration.Voters.Concat(configuration.Learners).FirstOrDefault(sim.IsRetired);
                if (wiped == 0) break;
                Ask(sim, leader.Id, MembershipChangeKind.RemoveMember, wiped);
                sim.RunFor(1);
            }
            var final = sim.Checker.ConfigurationOf(sim.Leader!.Id);
            foreach (var node in sim.Nodes)
                if (node.IsUp && !final.IsMember(node.Id)) sim.Decommission(node.Id);
        }

        /// <summary>
        /// Stops for good every node that a committed configuration had and the latest committed one (the last
        /// configuration entry any node applied) no longer has: the removed nodes.
        /// </summary>
        private void DecommissionRemoved(SimCluster sim)
        {
            _latestCommitted ??= sim.InitialConfiguration(1);
            if (_everMember.Count == 0) _everMember.UnionWith(_latestCommitted.Voters);
            var committed = sim.Checker.Committed;
            if (_committedScanned == committed.Count) return;
            for (; _committedScanned < committed.Count; _committedScanned++)
            {
                var e = committed[_committedScanned];
                if (e.Type != EntryType.Configuration) continue;
                _latestCommitted = ClusterConfiguration.Decode(e.Data.Span);
                _everMember.UnionWith(_latestCommitted.Voters);
                _everMember.UnionWith(_latestCommitted.Learners);
            }
            foreach (var id in _everMember)
                if (!_latestCommitted.IsMember(id) && !sim.IsRetired(id)) sim.Decommission(id);
        }

        public MembershipOutcome Outcome(SimCluster sim)
        {
            int added = 0, promoted = 0, votersRemoved = 0, learnersRemoved = 0;
            var previous = sim.InitialConfiguration(1);
            foreach (var e in sim.Checker.Committed)
            {
                if (e.Type != EntryType.Configuration) continue;
                var next = ClusterConfiguration.Decode(e.Data.Span);
                added += next.Learners.Count(l => !previous.IsMember(l));
                promoted += next.Voters.Count(v => previous.IsLearner(v));
                votersRemoved += previous.Voters.Count(v => !next.IsMember(v));
                learnersRemoved += previous.Learners.Count(l => !next.IsMember(l));
                previous = next;
            }
            var joinedFromSnapshot = sim.Nodes.Count(x => sim.HasJoined(x.Id) && x.SnapshotsInstalled > 0);
            return new MembershipOutcome(_asked, added, promoted, votersRemoved, learnersRemoved, _selfRemovals, _wiped, _inFlight, _misuse, _notLeader,
                joinedFromSnapshot, previous.Voters.Count,
                sim.MembershipChanges.GroupBy(c => (c.Kind, c.Result.Status)).ToDictionary(g => g.Key, g => g.Count()));
        }

        // A member to remove: the leader itself now and then, else a learner or another voter. While a wiped member is
        // in the configuration only it may go, or a learner: removing a live voter could leave the wiped one a majority.
        private ulong RemovalTarget(SimCluster sim, ClusterConfiguration configuration, ulong leader, ulong wipedMember)
        {
            var learners = configuration.Learners;
            if (wipedMember != 0) return learners.Count > 0 && _rng.Next(2) == 0 ? learners[_rng.Next(learners.Count)] : wipedMember;
            var pick = _rng.Next(4);
            if (pick == 0) return leader;
            if (pick == 1 && learners.Count > 0) return learners[_rng.Next(learners.Count)];
            var others = configuration.Voters.Where(v => v != leader).ToList();
            return others.Count > 0 ? others[_rng.Next(others.Count)] : leader;
        }

        // Wipes a member (a follower, or now and then the leader) when the rest can still form a majority for good:
        // at least three voters, none wiped yet, no change in flight on the leader, and every configuration a node's
        // log holds keeps a majority of live voters without it. A node runs on the latest configuration in its log,
        // committed or not, so an uncommitted change left on a node by an earlier leader counts too (seed 7010760:
        // n3 held "remove n2" from its own term, then the next leader, n1, was wiped; n3, needing n1, could not win,
        // and n2, needing n3, could not win against n3's longer log).
        private void MaybeWipe(SimCluster sim, ClusterConfiguration configuration, ulong leader, ulong wipedMember)
        {
            if (wipedMember != 0 || configuration.Voters.Count < 3 || ChangeInFlight(sim.Node(leader).Raft!)) return;
            var members = configuration.Voters.Concat(configuration.Learners)
                .Where(m => (_rng.Next(4) == 0 || m != leader) && LeavesEveryConfigurationAMajority(sim, m)).ToList();
            if (members.Count == 0) return;
            var victim = members[_rng.Next(members.Count)];
            // Another wiped node may still be in a configuration some lagging node runs on; keep it to one at a time.
            sim.Wipe(victim);
            _wiped++;
        }

        private static bool LeavesEveryConfigurationAMajority(SimCluster sim, ulong victim)
        {
            foreach (var node in sim.Nodes)
            {
                if (sim.IsRetired(node.Id)) continue;
                var voters = sim.Checker.ConfigurationOf(node.Id).Voters;
                if (!voters.Contains(victim)) continue;
                var live = voters.Count(v => v != victim && !sim.IsRetired(v));
                if (2 * live <= voters.Count) return false;
            }
            return true;
        }

        private void Misuse(SimCluster sim, ClusterConfiguration configuration, ulong leader)
        {
            switch (_rng.Next(5))
            {
                case 0:
                    Ask(sim, leader, MembershipChangeKind.AddLearner, RandomMember(configuration)); // already a member
                    break;
                case 1:
                    Ask(sim, leader, MembershipChangeKind.RemoveMember, 40 + (ulong)_rng.Next(20)); // never a member
                    break;
                case 2:
                    Ask(sim, leader, (MembershipChangeKind)_rng.Next(3), 0); // id 0
                    break;
                case 3:
                    Ask(sim, leader, MembershipChangeKind.PromoteLearner, configuration.Voters[_rng.Next(configuration.Voters.Count)]);
                    break;
                default:
                    // The last voter, when there is one; otherwise a follower asked to change anything.
                    if (configuration.Voters.Count == 1) Ask(sim, leader, MembershipChangeKind.RemoveMember, configuration.Voters[0]);
                    else if (sim.Nodes.FirstOrDefault(x => x.IsUp && x.Id != leader) is { } follower)
                        Ask(sim, follower.Id, RandomKind(), RandomTarget(sim, configuration));
                    break;
            }
        }

        /// <summary>Asks <paramref name="node"/> for a change and checks the status against what it must be.</summary>
        private SimMembershipChange? Ask(SimCluster sim, ulong node, MembershipChangeKind kind, ulong target)
        {
            var expected = Expected(sim, node, kind, target);
            // A live voter removed while a wiped member is in the configuration could leave no live majority.
            var configuration = LogConfiguration(sim, node);
            if (kind == MembershipChangeKind.RemoveMember && configuration.IsVoter(target) && !sim.IsRetired(target)
                && configuration.Voters.Concat(configuration.Learners).Any(sim.IsRetired) && expected.Contains(MembershipStatus.Accepted))
            {
                return null; // not asked: the schedule keeps the cluster recoverable
            }
            _asked++;
            var change = kind switch
            {
                MembershipChangeKind.AddLearner => sim.AddLearner(target, node),
                MembershipChangeKind.PromoteLearner => sim.PromoteLearner(target, node),
                _ => sim.RemoveMember(target, node),
            };
            var status = change.Result.Status;
            if (!expected.Contains(status))
                throw sim.Failure($"{change}: expected {string.Join(" or ", expected)} (configuration {configuration})");
            if (change.IsAccepted)
            {
                // The leader now runs on the new configuration: its core's, from the entry in its log (the checker
                // reads the same entry from the leader's log at its next commit, persisted or not yet).
                var next = kind switch
                {
                    MembershipChangeKind.AddLearner => configuration.WithLearner(target),
                    MembershipChangeKind.PromoteLearner => configuration.WithVoter(target),
                    _ => configuration.Without(target),
                };
                if (sim.Node(node) is { IsUp: true, Raft: { } core } && !core.Configuration.Equals(next))
                    throw sim.Failure($"{change}: the leader runs on {core.Configuration}, not {next}");
                if (kind == MembershipChangeKind.RemoveMember && target == node) _selfRemovals++;
            }
            else if (status == MembershipStatus.ChangeInProgress)
            {
                _inFlight++;
            }
            else if (status is MembershipStatus.LastVoter or MembershipStatus.AlreadyMember or MembershipStatus.UnknownMember
                or MembershipStatus.InvalidId or MembershipStatus.NotLearner)
            {
                _misuse++;
            }
            else if (status == MembershipStatus.NotLeader)
            {
                _notLeader++;
            }
            return change;
        }

        /// <summary>
        /// The statuses a call may get, in the core's documented order of refusals (docs/membership.md), from the
        /// node's log and the checker's record of its configuration.
        /// </summary>
        private static MembershipStatus[] Expected(SimCluster sim, ulong id, MembershipChangeKind kind, ulong target)
        {
            if (sim.Node(id).Raft is not { Role: Role.Leader } raft) return [MembershipStatus.NotLeader];
            if (target == 0) return [MembershipStatus.InvalidId];
            if (raft.LeadTransferee != 0) return [MembershipStatus.Transferring];
            if (ChangeInFlight(raft)) return [MembershipStatus.ChangeInProgress];
            var commitTerm = raft.TryGetEntry(raft.CommitIndex, out var c) ? c.Term : sim.Node(id).Storage.Snapshot.Term;
            if (commitTerm != raft.Term) return [MembershipStatus.NotCommittedInTerm];
            var configuration = LogConfiguration(sim, id);
            return kind switch
            {
                MembershipChangeKind.AddLearner => configuration.IsMember(target) ? [MembershipStatus.AlreadyMember] : [MembershipStatus.Accepted],
                MembershipChangeKind.PromoteLearner => configuration.IsVoter(target) ? [MembershipStatus.NotLearner]
                    : !configuration.IsLearner(target) ? [MembershipStatus.UnknownMember]
                    : [MembershipStatus.Accepted, MembershipStatus.NotCaughtUp],
                _ => !configuration.IsMember(target) ? [MembershipStatus.UnknownMember]
                    : configuration.IsVoter(target) && configuration.Voters.Count == 1 ? [MembershipStatus.LastVoter]
                    : [MembershipStatus.Accepted],
            };
        }

        /// <summary>
        /// The configuration of <paramref name="id"/>'s log as it is now, read from the log itself: its latest
        /// configuration entry, persisted or not (a leader appends before its own fsync ends, and a quorum of followers
        /// may commit the entry first, after which the next change is allowed); the checker's record, which follows
        /// what the node persisted, when the log holds no such entry past its snapshot.
        /// </summary>
        private static ClusterConfiguration LogConfiguration(SimCluster sim, ulong id)
        {
            if (sim.Node(id).Raft is { } raft)
            {
                for (var i = raft.LastIndex; i > 0 && raft.TryGetEntry(i, out var e); i--)
                    if (e.Type == EntryType.Configuration) return ClusterConfiguration.Decode(e.Data.Span);
            }
            return sim.Checker.ConfigurationOf(id);
        }

        /// <summary>Whether the leader's log holds a configuration entry past its commit index (read from the log itself).</summary>
        private static bool ChangeInFlight(RaftNode raft)
        {
            for (var i = raft.CommitIndex + 1; i <= raft.LastIndex; i++)
                if (raft.TryGetEntry(i, out var e) && e.Type == EntryType.Configuration) return true;
            return false;
        }

        private MembershipChangeKind RandomKind() => (MembershipChangeKind)_rng.Next(3);

        private ulong RandomMember(ClusterConfiguration configuration)
        {
            var members = configuration.Voters.Concat(configuration.Learners).ToList();
            return members[_rng.Next(members.Count)];
        }

        // Any id of the pool (member or not), or one the configuration names.
        private ulong RandomTarget(SimCluster sim, ClusterConfiguration? configuration) =>
            configuration is not null && _rng.Next(2) == 0 ? RandomMember(configuration) : (ulong)_rng.Next(sim.Nodes.Count) + 1;
    }
}

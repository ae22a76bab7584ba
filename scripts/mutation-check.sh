#!/usr/bin/env bash
# The mutation check: builds the simulator's test suite once per deliberate safety bug (a `#if MUTATION_<NAME>` block
# in the production code, switched on with -p:Mutation=<Name>) and shows that the suite FAILS for every one of them.
# A mutation the suite does not catch makes the script exit 1. Not part of ./test.sh: it takes a few minutes per
# mutation. Each mutation is built in its own copy of the working tree under $RAFTMQ_MUTATION_DIR (default
# /tmp/raftmq-mutations), so the checkout itself is never modified.
#   scripts/mutation-check.sh                       every mutation
#   scripts/mutation-check.sh ReuseReadContexts      one of them
set -uo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
root=$(pwd)
work=${RAFTMQ_MUTATION_DIR:-/tmp/raftmq-mutations}

# name: what the bug breaks (each is a #if block in the file named).
declare -A mutations=(
  [ReadWithoutRound]="src/RaftMQ.Raft: a leader serves a read without the heartbeat round that confirms it still leads (§6.4)"
  [SendBeforePersist]="src/RaftMQ.Runtime/NodeDriver.cs: votes and acknowledgements are sent before they are durable (§5.2, thesis §10.2.1)"
  [CommitPreviousTerm]="src/RaftMQ.Raft: a leader counts replicas of previous-term entries towards commit (§5.4.2, Figure 8)"
  [ReuseReadContexts]="src/RaftMQ.Runtime/NodeDriver.cs: every run of a node numbers its reads from 1 (a late answer confirms a new read)"
  [CountRemoved]="src/RaftMQ.Raft/ProgressTracker.cs: members being removed (the leader too, once it removed itself) still count towards commit"
)
names=("$@")
[ ${#names[@]} -eq 0 ] && names=(ReadWithoutRound SendBeforePersist CommitPreviousTerm ReuseReadContexts CountRemoved)

survived=0
for name in "${names[@]}"; do
  [ -n "${mutations[$name]:-}" ] || { echo "unknown mutation $name (known: ${!mutations[*]})" >&2; exit 2; }
  grep -rq "MUTATION_${name^^}" src || { echo "$name: no #if MUTATION_${name^^} block in src/" >&2; exit 2; }
  copy="$work/$name"
  rm -rf "$copy" && mkdir -p "$copy"
  (git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$copy") || exit 2
  echo "== $name: ${mutations[$name]}"
  log="$work/$name.log"
  if ! (cd "$copy" && dotnet build tests/RaftMQ.Simulation.Tests -c Release -nologo -clp:ErrorsOnly -p:Mutation="$name") >"$log" 2>&1; then
    echo "   build failed, see $log" >&2; exit 2
  fi
  (cd "$copy" && dotnet test tests/RaftMQ.Simulation.Tests -c Release --no-build --nologo) >>"$log" 2>&1
  status=$?
  summary=$(grep -E '(Passed|Failed)!' "$log" | tail -n 1)
  if [ $status -ne 0 ]; then
    echo "   caught: $summary"
    grep -m 3 -E 'invariant violated|SimulationFailedException :|Error Message' -A1 "$log" | sed 's/^/   /' | head -n 4
  else
    echo "   NOT CAUGHT: $summary"
    survived=$((survived + 1))
  fi
done
echo
if [ $survived -gt 0 ]; then echo "$survived mutation(s) survived the simulator's suite"; exit 1; fi
echo "every mutation was caught by the simulator's suite"

#!/usr/bin/env bash
# Builds everything and runs every test project, one after another (the real-cluster tests start node processes
# and should not compete for the CPU with the simulator's fuzzing), then prints one total line.
#   ./test.sh                      the default suite (what CI runs)
#   RAFTMQ_SOAK=1 ./test.sh        also the long randomized and soak runs
#   ./test.sh --filter NAME        extra arguments go to every `dotnet test`
set -uo pipefail
cd "$(dirname "$0")"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dotnet build RaftMQ.slnx -c Release -nologo -clp:ErrorsOnly || exit 1
passed=0 failed=0 skipped=0 status=0
for project in tests/*/*.Tests.csproj; do
  log=$(mktemp)
  dotnet test "$project" -c Release --no-build --nologo "$@" 2>&1 | tee "$log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
  summary=$(grep -E '(Passed|Failed)!' "$log" | tail -n 1)
  rm -f "$log"
  if [ -z "$summary" ]; then echo "no test summary from $project" >&2; status=1; continue; fi
  count() { echo "$summary" | sed -nE "s/.*$1: *([0-9]+).*/\1/p"; }
  passed=$((passed + $(count Passed))) failed=$((failed + $(count Failed))) skipped=$((skipped + $(count Skipped)))
done
echo
echo "$passed passed, $failed failed, $skipped skipped"
exit $status

#!/usr/bin/env bash
# Mutation testing of the consensus core (src/RaftMQ.Raft) with Stryker.NET, driven by tests/RaftMQ.Raft.Tests and
# configured by tests/RaftMQ.Raft.Tests/stryker-config.json. Not part of ./test.sh (it takes several minutes on two
# cores); run it by hand after changing the core or its tests. See docs/testing.md for the recorded score.
#   scripts/mutation.sh                    the full run; prints the score, HTML and JSON reports in artifacts/mutation/
#   scripts/mutation.sh --concurrency 1    extra arguments go to `dotnet stryker`
# Do not build or test tests/RaftMQ.Raft.Tests while it runs: Stryker swaps the core's assembly in that project's bin.
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dotnet tool restore >/dev/null
out="$PWD/artifacts/mutation/$(date +%Y%m%d-%H%M%S)"
cd tests/RaftMQ.Raft.Tests
dotnet stryker --config-file stryker-config.json --output "$out" "$@"
echo "reports: $out/reports/mutation-report.html and mutation-report.json"

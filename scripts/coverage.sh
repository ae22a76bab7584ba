#!/usr/bin/env bash
# Line and branch coverage of the consensus core (RaftMQ.Raft), the node driver (src/RaftMQ.Runtime/NodeDriver.cs) and
# the storage (RaftMQ.Storage), measured with coverlet over the Raft unit tests, the simulation tests without the fuzz
# sweep, and the storage tests, merged with ReportGenerator. See docs/testing.md for the figures and what is excluded.
#   scripts/coverage.sh        prints one line per assembly; HTML in artifacts/coverage/html/index.html
# Debug builds (the default run uses Release; coverage of Debug code maps one-to-one to the source).
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
out=artifacts/coverage
rm -rf "$out"
mkdir -p "$out"
dotnet tool restore >/dev/null

measure() {
  local name=$1 project=$2
  shift 2
  dotnet test "$project" -c Debug --nologo --settings scripts/coverage.runsettings \
    --collect:"XPlat Code Coverage" --results-directory "$out/raw/$name" "$@"
}
measure raft tests/RaftMQ.Raft.Tests
# The 10,000-schedule fuzz sweep adds hours under instrumentation and little coverage; every other simulation test runs.
# PreserveCompilationContext lets coverlet resolve the ASP.NET Core assemblies RaftMQ.Runtime references (logging
# abstractions); without it coverlet skips the module ("Unable to instrument module", seen with --diag).
measure simulation tests/RaftMQ.Simulation.Tests -p:PreserveCompilationContext=true \
  --filter "FullyQualifiedName!~RaftMQ.Simulation.Tests.Fuzz"
measure storage tests/RaftMQ.Storage.Tests

# Of RaftMQ.Runtime only the driver's file is measured: the rest (RaftRuntime, hosting) is exercised by the real-process
# tests, which coverlet cannot follow into the node processes.
dotnet reportgenerator -reports:"$out/raw/**/coverage.cobertura.xml" -targetdir:"$out/html" \
  -reporttypes:"Html;TextSummary;JsonSummary" \
  -filefilters:"+*/src/RaftMQ.Raft/*;+*/src/RaftMQ.Storage/*;+*/src/RaftMQ.Runtime/NodeDriver.cs" >/dev/null

echo
jq -r '.coverage.assemblies[] | [.name, .coverage, .coveredlines, .coverablelines, .branchcoverage, .coveredbranches, .totalbranches]
  | "\(.[0]): lines \(.[1])% (\(.[2])/\(.[3])), branches \(.[4])% (\(.[5])/\(.[6]))"' "$out/html/Summary.json"
echo "report: $out/html/index.html (text: $out/html/Summary.txt)"

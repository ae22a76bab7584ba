#!/usr/bin/env bash
# What a node's loop spends building the group counters of a topic with delayed messages while they fall due, with
# no command on the topic between the builds (docs/benchmarks.md, "Group counters and delayed messages").
# Usage: benchmarks/group-counters.sh DELAYED GROUPS SPREAD_MS
#   benchmarks/group-counters.sh 1000000 16 20   # the most delayed messages of a topic, 17 groups, 50,000 a second
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet build benchmarks/RaftMQ.GroupCounters -c Release -nologo -clp:ErrorsOnly >&2
exec dotnet benchmarks/RaftMQ.GroupCounters/bin/Release/net10.0/RaftMQ.GroupCounters.dll "$@"

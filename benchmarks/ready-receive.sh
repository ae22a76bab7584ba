#!/usr/bin/env bash
# What a receive costs the applying loop when a group's lowest in-flight messages were nacked with a delay and ready
# ones lie above them (docs/benchmarks.md, "Receives past delayed redeliveries").
# Usage: benchmarks/ready-receive.sh DELAYED READY [MAX]
#   benchmarks/ready-receive.sh 50000 50000 1000   # half of a group's in-flight bound delayed, half ready
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet build benchmarks/RaftMQ.ReadyReceive -c Release -nologo -clp:ErrorsOnly >&2
exec dotnet benchmarks/RaftMQ.ReadyReceive/bin/Release/net10.0/RaftMQ.ReadyReceive.dll "$@"

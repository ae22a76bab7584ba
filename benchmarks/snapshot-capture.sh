#!/usr/bin/env bash
# What a node's loop spends capturing the queue's state for a snapshot (docs/benchmarks.md, "Snapshot capture").
# Usage: benchmarks/snapshot-capture.sh TOPICS IDS_PER_TOPIC ROUNDS [DELAYED_PER_TOPIC [LEASED_PER_TOPIC [leased|mixed]]]
#   benchmarks/snapshot-capture.sh 10000 0 15      # the most topics, one message each
#   benchmarks/snapshot-capture.sh 10 100000 15    # the node-wide most deduplication ids (1,000,000)
#   benchmarks/snapshot-capture.sh 1 0 15 1000000  # the most delayed messages of a topic
#   benchmarks/snapshot-capture.sh 1 0 15 0 100000 # the most leased messages of a group
#   benchmarks/snapshot-capture.sh 1 0 9 0 100000 mixed # the same, then half acked and a quarter nacked
# With LEASED_PER_TOPIC > 0 it also times applying receives and acks of that many messages (another topic).
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet build benchmarks/RaftMQ.SnapshotCapture -c Release -nologo -clp:ErrorsOnly >&2
exec dotnet benchmarks/RaftMQ.SnapshotCapture/bin/Release/net10.0/RaftMQ.SnapshotCapture.dll "$@"

#!/usr/bin/env bash
# The queue-backlog benchmark (docs/benchmarks.md, "Queue backlog"): a local 3-node cluster filled with MESSAGES
# waiting messages of SIZE bytes over TOPICS topics through POST /v1/messages (16 clients, batches of 1,000), while a
# probe publishes one small message every 10 ms to another topic. Prints one JSON line: fill rate, peak RSS per node,
# probe p50/p99/max, terms before and after (leader changes), disk per node, and the time a follower restarted after
# kill -9 takes to serve its first linearizable read (GET /topic).
#   usage: benchmarks/queue-backlog.sh [MESSAGES] [SIZE] [TOPICS]      (defaults 2000000 100 1)
#   build first: dotnet build -c Release RaftMQ.slnx   (-p:CompositeNode=false is enough: the R2R node is used then)
#   env: CLIENTS (16), BATCH (1000), NODE (the node binary; default the built one), NODE_ARGS (extra node options),
#        KEEP=1 keeps the data directory
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
node="${NODE:-$root/src/RaftMQ.Server/bin/Release/node/RaftMQ.Server}"
[ -x "$node" ] || node="$root/src/RaftMQ.Server/bin/Release/net10.0/RaftMQ.Server"
[ -x "$node" ] || { echo "build the node first: dotnet build -c Release RaftMQ.slnx" >&2; exit 1; }
tool="$root/benchmarks/RaftMQ.QueueBacklog/bin/Release/net10.0/RaftMQ.QueueBacklog.dll"
dotnet build -c Release -v q --nologo "$root/benchmarks/RaftMQ.QueueBacklog" > /dev/null
dir=$(mktemp -d "${TMPDIR:-/tmp}/raftmq-backlog.XXXXXX")
keep=(); [ "${KEEP:-0}" = 1 ] && keep=(--keep) && echo "data in $dir" >&2
echo "node: $node" >&2
exec dotnet "$tool" --node "$node" --dir "$dir" --messages "${1:-2000000}" --size "${2:-100}" --topics "${3:-1}" \
  --clients "${CLIENTS:-16}" --batch "${BATCH:-1000}" --node-args "${NODE_ARGS:-}" "${keep[@]}"

#!/usr/bin/env bash
# What HTTP/1.1 alone costs (docs/benchmarks.md, "What HTTP/1.1 alone costs"): ../shared/bench/run-peers.sh with NATS
# and, as its rrmq target, RaftMQ.HttpFloor — the node's own web host answering the load generator's four RRMQ
# requests from constants, with no queue, consensus or disk behind them. Its rate is the most any RaftMQ node could
# answer through the REST API on this machine with these clients; its CPU per request is printed when it stops.
#   usage: benchmarks/http-floor.sh          env: CLIENTS ("1 16"), BENCH_TMP (/tmp/mq-bench), TARGETS (nats)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export BENCH_TMP="${BENCH_TMP:-/tmp/mq-bench}"
floor="$BENCH_TMP/http-floor"
dotnet publish -c Release --nologo -v q -o "$floor" "$root/benchmarks/RaftMQ.HttpFloor" > /dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
pid="$floor/pid"
export RRMQ_UP="setsid '$floor/RaftMQ.HttpFloor' $port > '$floor/out.log' 2>&1 & echo \$! > '$pid';
  for i in \$(seq 100); do curl -sf http://127.0.0.1:$port/status > /dev/null && exit 0; sleep 0.1; done; exit 1"
export RRMQ_DOWN="kill \$(cat '$pid'); while kill -0 \$(cat '$pid') 2> /dev/null; do sleep 0.1; done; cat '$floor/out.log' >&2"
CLIENTS="${CLIENTS:-1 16}" TARGETS="${TARGETS:-nats}" COUNT_rrmq_1="${COUNT_rrmq_1:-40000}" COUNT_rrmq_16="${COUNT_rrmq_16:-150000}" \
  RRMQ_URLS="http://127.0.0.1:$port" "$root/../shared/bench/run-peers.sh"

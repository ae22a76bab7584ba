#!/usr/bin/env bash
# The floors under RaftMQ's single-message requests (docs/benchmarks.md, "What HTTP/1.1 alone costs" and "What
# replication alone costs"): ../shared/bench/run-peers.sh with NATS and, as its rrmq target, RaftMQ.HttpFloor — the
# node's own web host answering the load generator's four RRMQ requests from constants. With REPLICATE=1 every
# publish and pop is first sent to two follower processes, appended and fsynced on this one and on one of them, by
# one thread a batch at a time (no consensus, no queue): what a replicated, fsynced answer costs at the least. The
# rate is the most any RaftMQ node could answer through the REST API on this machine with these clients; each
# process's CPU per request (or per batch) is printed when it stops.
#   usage: benchmarks/http-floor.sh   env: CLIENTS ("1 16"), BENCH_TMP (/tmp/mq-bench), TARGETS (nats), REPLICATE (0)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export BENCH_TMP="${BENCH_TMP:-/tmp/mq-bench}"
floor="$BENCH_TMP/http-floor"
dotnet publish -c Release --nologo -v q -o "$floor" "$root/benchmarks/RaftMQ.HttpFloor" > /dev/null
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
exe="$floor/RaftMQ.HttpFloor"
pids="$floor/pids"
logs="'$floor/out.log'"
start="setsid '$exe' $port > '$floor/out.log' 2>&1 & echo \$! > '$pids';"
if [ "${REPLICATE:-0}" = 1 ]; then
  f1=$(free_port); f2=$(free_port)
  start="rm -rf '$floor/data'; : > '$pids';
    for f in 1:$f1 2:$f2; do setsid '$exe' --follower '$floor/data/f'\${f%%:*} \${f#*:} > '$floor/f'\${f%%:*}.log 2>&1 & echo \$! >> '$pids'; done;
    for f in $f1 $f2; do for i in \$(seq 100); do (echo > /dev/tcp/127.0.0.1/\$f) 2> /dev/null && break; sleep 0.1; done; done;
    setsid '$exe' $port --replicate '$floor/data/leader' $f1 $f2 > '$floor/out.log' 2>&1 & echo \$! >> '$pids';"
  logs="'$floor/out.log' '$floor/f1.log' '$floor/f2.log'"
fi
export RRMQ_UP="$start
  for i in \$(seq 100); do curl -sf http://127.0.0.1:$port/status > /dev/null && exit 0; sleep 0.1; done; exit 1"
export RRMQ_DOWN="for p in \$(tac '$pids'); do kill \$p; while kill -0 \$p 2> /dev/null; do sleep 0.1; done; done; cat $logs >&2"
CLIENTS="${CLIENTS:-1 16}" TARGETS="${TARGETS:-nats}" COUNT_rrmq_1="${COUNT_rrmq_1:-40000}" COUNT_rrmq_16="${COUNT_rrmq_16:-150000}" \
  RRMQ_URLS="http://127.0.0.1:$port" "$root/../shared/bench/run-peers.sh"

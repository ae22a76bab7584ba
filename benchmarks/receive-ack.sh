#!/usr/bin/env bash
# The at-least-once benchmark (docs/benchmarks.md, "Receive and ack (at-least-once)"): receive + ack throughput and
# latency with CLIENTS consumers sharing one queue, one message at a time and in batches, side by side in one run with
# RabbitMQ quorum queues and NATS JetStream pull consumers (the harness in ../shared/bench: its peers/*.sh clusters and
# its loadgen), then a local 3-node RaftMQ cluster (`raftmq bench receive`). Prints one table with msg/s, p50/p99 and
# RaftMQ's ratio to each peer at the same per-consumer window; writes the rows to $RESULTS/receive-ack-<date>.jsonl.
#
# For every system and window W (1, then BATCH): a fresh queue is filled with COUNT messages (not measured), then
# CLIENTS consumers take them all, each with at most W unacked:
#   rabbitmq  basic.consume, prefetch W, manual acks, every message acked on its own (loadgen rabbitmq consume)
#   nats      durable pull consumer, explicit acks, pull requests of W messages (loadgen nats consume)
#   raftmq    POST /v1/topics/T/receive max=W with a lease, carrying the receipts of the client's previous batch in "ack"
#             (one request and one log entry a batch; each client's last batch: one POST /v1/topics/T/ack);
#             RECEIVE_ARGS=--separate-ack: the receive, then one POST /v1/topics/T/ack of all its receipts
#
#   usage: benchmarks/receive-ack.sh
#   build first: dotnet build -c Release RaftMQ.slnx   (bin/raftmq and bin/raftmq-node use the Release build)
#   needs: rabbitmq-server, nats-server, jq (apt-get install -y rabbitmq-server nats-server jq), the .NET 10 SDK
#   env: RECEIVE_ARGS (more arguments of `raftmq bench receive`, e.g. --separate-ack), CLIENTS (16), BATCH (10: the batch windows besides 1, e.g. "10 100"; 0 = 1 only), SIZE (100), SYSTEMS ("rabbitmq nats raftmq"),
#        COUNT_<system>_<window> messages per measured run (defaults below keep each run at roughly 5-30 s here),
#        BENCH_DIR (the harness, default ../shared/bench next to this repository), BENCH_TMP (/tmp/mq-bench-receive-ack),
#        RESULTS ($BENCH_TMP/results), TIMEOUT (180 s per loadgen run), CLI (the raftmq that consumes from RaftMQ: bin/raftmq,
#        the native CLI where the build made one; src/RaftMQ.Cli/bin/Release/net10.0/raftmq for the JIT one)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_DIR=${BENCH_DIR:-$root/../shared/bench}
CLIENTS=${CLIENTS:-16}
BATCH=${BATCH:-10}
SIZE=${SIZE:-100}
SYSTEMS=${SYSTEMS:-"rabbitmq nats raftmq"}
TIMEOUT=${TIMEOUT:-180}
BENCH_TMP=${BENCH_TMP:-/tmp/mq-bench-receive-ack}; export BENCH_TMP
RESULTS=${RESULTS:-$BENCH_TMP/results}
OUT=$RESULTS/receive-ack-$(date -u +%Y%m%d-%H%M%S).jsonl
windows=(1); for b in $BATCH; do [ "$b" -gt 1 ] && windows+=("$b"); done

[ -x "$BENCH_DIR/peers/rabbitmq-cluster.sh" ] || { echo "no harness at $BENCH_DIR (set BENCH_DIR)" >&2; exit 1; }
[[ " $SYSTEMS " != *" raftmq "* ]] || { [ -x "$root/src/RaftMQ.Server/bin/Release/node/RaftMQ.Server" ] && [ -x "$root/src/RaftMQ.Cli/bin/Release/net10.0/raftmq" ]; } \
  || { echo "build RaftMQ first: dotnet build -c Release $root/RaftMQ.slnx" >&2; exit 1; }
command -v jq > /dev/null || { echo "jq is needed" >&2; exit 1; }

count_for() { # count_for SYSTEM WINDOW -> messages per measured run
  local var="COUNT_$1_$2"
  if [ -n "${!var:-}" ]; then echo "${!var}"; return; fi
  case "$1:$2" in
    rabbitmq:1) echo 15000 ;;   # about 0.8-3k msg/s on the shared 2-core machine
    rabbitmq:*) echo 30000 ;;   # about 2-5k msg/s with a window of 10
    nats:1) echo 60000 ;;       # about 3-15k msg/s
    nats:*) echo 200000 ;;      # about 20k msg/s with a window of 10
    raftmq:1) echo 10000 ;;     # about 0.4-2k msg/s
    raftmq:10) echo 60000 ;;    # about 4k msg/s
    raftmq:*) echo 150000 ;;
  esac
}

log() { echo "== $(date -u +%H:%M:%S) $*" >&2; }

mkdir -p "$RESULTS"
: > "$OUT"
raftmq_data="$BENCH_TMP/raftmq"
cli=${CLI:-$root/bin/raftmq}
UP_NOW=""
cleanup() {
  case "$UP_NOW" in
    rabbitmq) "$BENCH_DIR/peers/rabbitmq-cluster.sh" down || true ;;
    nats) "$BENCH_DIR/peers/nats-cluster.sh" down || true ;;
    raftmq) "$root/bin/raftmq" cluster down --data "$raftmq_data" || true ;;
  esac
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# One result row: system window count seconds msgs/s p50 p99 errors.
row() {
  jq -cn --arg system "$1" --argjson window "$2" --argjson count "$3" --argjson seconds "$4" --argjson mps "$5" \
    --argjson p50 "$6" --argjson p99 "$7" --argjson errors "$8" --argjson clients "$CLIENTS" --argjson size "$SIZE" \
    '{system: $system, clients: $clients, window: $window, size: $size, count: $count, seconds: $seconds,
      msgs_per_s: $mps, p50_ms: $p50, p99_ms: $p99, errors: $errors}' | tee -a "$OUT" >&2
}

peer() { # peer rabbitmq|nats: fresh cluster, warm-up, then per window: fill (publish) + measured consume
  local target=$1 script ports w n line
  script="$BENCH_DIR/peers/$target-cluster.sh"
  UP_NOW=$target
  # The harness's start-up has reported a NATS server "died during start-up" with an empty log, three times, each
  # right after the RabbitMQ cluster stopped. Likely cause: its liveness check reads /proc/PID/cmdline of the PID of
  # `setsid nats-server … &`, which until the forked shell has exec'd still reads as the harness script and so does not
  # match "nats-server" (../shared is not ours to change). One more try instead of a run without NATS.
  up_ports() { "$script" up | sed -n 's/^[A-Z]* ports: //p'; }
  ports=$(up_ports) || true
  if [ -z "$ports" ]; then
    log "$target did not start; stopping what started and trying once more"
    "$script" down || true
    ports=$(up_ports)
  fi
  log "$target up on $ports; warm-up (not recorded)"
  "${LOADGEN[@]}" "$target" publish --ports "$ports" --clients 4 --size "$SIZE" --count 2000 --timeout "$TIMEOUT" > /dev/null
  "${LOADGEN[@]}" "$target" consume --ports "$ports" --clients 4 --count 2000 --timeout "$TIMEOUT" > /dev/null
  for w in "${windows[@]}"; do
    n=$(count_for "$target" "$w")
    log "$target: fill $n messages (not measured)"
    "${LOADGEN[@]}" "$target" publish --ports "$ports" --clients "$CLIENTS" --inflight 16 --size "$SIZE" --count "$n" \
      --timeout "$TIMEOUT" > /dev/null
    log "$target consume: clients=$CLIENTS window=$w count=$n"
    if line=$("${LOADGEN[@]}" "$target" consume --ports "$ports" --clients "$CLIENTS" --inflight "$w" --count "$n" \
      --timeout "$TIMEOUT"); then :; else log "$target consume window=$w did not complete"; fi
    [ -n "$line" ] && row "$target" "$w" "$(jq .count <<< "$line")" "$(jq .seconds <<< "$line")" "$(jq .msgs_per_s <<< "$line")" \
      "$(jq .p50_ms <<< "$line")" "$(jq .p99_ms <<< "$line")" "$(jq .errors <<< "$line")"
  done
  "$script" down
  UP_NOW=""
}

raftmq() { # fresh 3-node cluster (Release node), warm-up, then per window: bench receive (fills, then receives + acks)
  local w n j
  UP_NOW=raftmq
  "$root/bin/raftmq" cluster up --detach --fresh --data "$raftmq_data" >&2
  log "raftmq up; warm-up (not recorded)"
  "$cli" bench receive --data "$raftmq_data" --clients 4 --count 2000 --size "$SIZE" --json > /dev/null
  for w in "${windows[@]}"; do
    n=$(count_for raftmq "$w")
    log "raftmq receive+ack: clients=$CLIENTS max=$w count=$n (fills $n first, not measured)"
    # shellcheck disable=SC2086 # RECEIVE_ARGS is a list of arguments
    if j=$("$cli" bench receive --data "$raftmq_data" --clients "$CLIENTS" --max "$w" --count "$n" --size "$SIZE" \
      --timeout 30 --json ${RECEIVE_ARGS:-}); then :; else log "raftmq max=$w had errors"; fi
    [ -n "$j" ] && row raftmq "$w" "$(jq .messages <<< "$j")" "$(jq .seconds <<< "$j")" "$(jq .messages_per_second <<< "$j")" \
      "$(jq .latency_ms.p50 <<< "$j")" "$(jq .latency_ms.p99 <<< "$j")" "$(jq .errors <<< "$j")"
  done
  "$root/bin/raftmq" cluster down --data "$raftmq_data" >&2
  UP_NOW=""
}

if [[ " $SYSTEMS " == *" rabbitmq "* || " $SYSTEMS " == *" nats "* ]]; then
  log "building loadgen (a scratch copy of $BENCH_DIR/loadgen)"
  mkdir -p "$BENCH_TMP/loadgen"
  cp "$BENCH_DIR"/loadgen/*.cs "$BENCH_DIR"/loadgen/*.csproj "$BENCH_TMP/loadgen/"
  dotnet build "$BENCH_TMP/loadgen" -c Release --nologo -v q -clp:NoSummary >&2
  LOADGEN=(dotnet "$BENCH_TMP/loadgen/bin/Release/net10.0/loadgen.dll")
fi
log "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for s in $SYSTEMS; do
  case $s in
    rabbitmq | nats) peer "$s" ;;
    raftmq) raftmq ;;
    *) echo "unknown system $s" >&2; exit 2 ;;
  esac
done
log "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
log "results: $OUT"

# The table: every row, and RaftMQ's msg/s over each peer's at the same window.
jq -rs '
  (map(select(.system == "raftmq")) | map({key: (.window | tostring), value: .msgs_per_s}) | from_entries) as $r
  | ["system", "clients", "window", "count", "seconds", "msg/s", "p50 ms", "p99 ms", "errors", "raftmq / this"],
    (.[] | [.system, .clients, .window, .count, .seconds, .msgs_per_s, .p50_ms, .p99_ms, .errors,
            (if $r[.window | tostring] and .system != "raftmq" and .msgs_per_s > 0
             then ($r[.window | tostring] / .msgs_per_s * 100 | round / 100 | tostring) + "x" else "" end)])
  | @tsv' "$OUT" | column -t -s $'\t'

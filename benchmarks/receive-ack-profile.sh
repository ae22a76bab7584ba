#!/usr/bin/env bash
# Where a receive + ack pair goes (docs/benchmarks.md, "Receive and ack (at-least-once)"): on a fresh local 3-node
# cluster (Release build), runs `raftmq bench receive` with 16 clients for --max 1 and --max 10 and reads, before and
# after each run, every node's CPU time (user + system, /proc/PID/stat) and its /v1/metrics counters (proposals, log
# entries persisted, log fsyncs). Prints per acked message: log entries, fsyncs on each node and CPU ms on each node,
# and the client-side latency of the receive and of the ack requests on their own.
# A bench run fills its topic first (COUNT/1000 batch requests); that fill is measured alone with `bench publish
# --batch 1000` of the same count and its CPU subtracted.
#   usage: benchmarks/receive-ack-profile.sh [ROUNDS]   (default 2)
#   env: COUNT_1 (10000), COUNT_10 (30000), CLIENTS (16)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
raftmq="$root/bin/raftmq"
rounds=${1:-2}
clients=${CLIENTS:-16}
data=$(mktemp -d "${TMPDIR:-/tmp}/raftmq-receive-profile.XXXXXX")
"$raftmq" cluster up --detach --fresh --data "$data" > /dev/null
trap '"$raftmq" cluster down --data "$data" > /dev/null; rm -rf "$data"' EXIT
sleep 1
status=$("$raftmq" cluster status --data "$data")
# The node table's rows: │ index │ URL │ pid │ role │ ...
mapfile -t urls < <(awk -F'│' '/│ *[0-9]+ *│ *http:/ {gsub(/ /,"",$3); print $3}' <<< "$status")
mapfile -t pids < <(awk -F'│' '/│ *[0-9]+ *│ *http:/ {gsub(/ /,"",$4); print $4}' <<< "$status")
mapfile -t roles < <(awk -F'│' '/│ *[0-9]+ *│ *http:/ {gsub(/ /,"",$5); print $5}' <<< "$status")
hz=$(getconf CLK_TCK)

# snapshot: per node "cpu_ticks proposals entries syncs", nodes separated by spaces
snapshot() {
  local i
  for i in "${!pids[@]}"; do
    printf '%s %s\n' "$(awk '{print $14 + $15}' "/proc/${pids[$i]}/stat")" \
      "$(curl -s "${urls[$i]}/v1/metrics" | jq -r '.runtime | "\(.proposals) \(.entries_persisted) \(.log_syncs)"')"
  done | paste -sd' '
}
# delta BEFORE AFTER FIELD(0-3) NODE -> after - before
delta() { local -a a=($1) b=($2); echo $(( b[$4 * 4 + $3] - a[$4 * 4 + $3] )); }

"$raftmq" bench receive --data "$data" --clients 4 --count 2000 --json > /dev/null   # warm-up
printf 'nodes: %s\n' "$(for i in "${!roles[@]}"; do printf '%s ' "$i=${roles[$i]}"; done)"
for round in $(seq "$rounds"); do
  for max in 1 10; do
    var="COUNT_$max"; n=${!var:-$([ "$max" = 1 ] && echo 10000 || echo 30000)}
    s0=$(snapshot)
    "$raftmq" bench publish --data "$data" --clients "$clients" --batch 1000 --count "$n" --json > /dev/null
    s1=$(snapshot)
    out=$("$raftmq" bench receive --data "$data" --clients "$clients" --max "$max" --count "$n" --json)
    s2=$(snapshot)
    line="round $round max=$max: $(jq -r '"\(.messages) msgs, \(.messages_per_second) msg/s, pair p50 \(.latency_ms.p50) ms; receive p50 \(.requests_ms.receive.p50) ms, ack p50 \(.requests_ms.ack.p50) ms"' <<< "$out")"
    per=""
    for i in "${!pids[@]}"; do
      fill_cpu=$(delta "$s0" "$s1" 0 "$i"); cpu=$(( $(delta "$s1" "$s2" 0 "$i") - fill_cpu ))
      per+=$(awk -v c="$cpu" -v hz="$hz" -v n="$n" -v e="$(delta "$s1" "$s2" 2 "$i")" -v f="$(delta "$s1" "$s2" 3 "$i")" -v r="${roles[$i]}" \
        'BEGIN { printf "\n    node %s: %.2f entries, %.2f fsyncs, %.3f CPU ms per message", r, e / n, f / n, c / hz * 1000 / n }')
    done
    echo "$line$per"
  done
done

#!/usr/bin/env bash
# Failover time of a local 3-node cluster: kill -9 the leader, then time until the first write succeeds through a
# surviving node. Repeats KILLS times (default 20), restarting the killed node between rounds, and prints the
# times with their median, p90 and maximum.
#   usage: benchmarks/failover.sh [KILLS]        (build first: dotnet build -c Release RaftMQ.slnx)
#   env: NODE (the node binary; default bin/raftmq-node), QUIET=1 (kill the leader only once the whole cluster is
#        quiet, docs/runtime.md "A quiet cluster"), LOAD=n (n clients publish without pause to random nodes all the
#        while, and what their writes got back is counted: benchmarks/write-outcomes.py), and any RAFTMQ_ node
#        setting, e.g. RAFTMQ_HEARTBEAT_MS
set -euo pipefail
kills=${1:-20}
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
node="${NODE:-$root/bin/raftmq-node}"
name=failover
# shellcheck source=local-cluster.sh
source "$root/benchmarks/local-cluster.sh"
for i in 0 1 2; do start "$i"; done
l=$(leader)
curl -s -XPUT "http://127.0.0.1:${http[$l]}/topic" -d '{"topic":"failover"}' > /dev/null
load=0
if [ "${LOAD:-0}" -gt 0 ]; then
  python3 "$root/benchmarks/write-outcomes.py" failover "${http[0]},${http[1]},${http[2]}" "$LOAD" > "$dir/outcomes" &
  load=$!
fi
times=()
for k in $(seq 1 "$kills"); do
  l=$(leader)
  curl -s -XPUT "http://127.0.0.1:${http[$l]}/message" -d '{"topic":"failover","message":"warm"}' > /dev/null
  if [ "${QUIET:-0}" = 1 ]; then
    for i in 0 1 2; do
      until curl -s -m 1 "http://127.0.0.1:${http[$i]}/v1/metrics" 2>/dev/null | grep -q '"quiesced":true'; do sleep 0.05; done
    done
  fi
  t0=$(now_ms)
  kill -9 "${pids[$l]}"; wait "${pids[$l]}" 2>/dev/null || true; pids[$l]=0
  others=(); for i in 0 1 2; do [ "$i" != "$l" ] && others+=("$i"); done
  n=0
  until curl -s -m 1 -XPUT "http://127.0.0.1:${http[${others[$((n % 2))]}]}/message" \
          -d '{"topic":"failover","message":"after"}' 2>/dev/null | grep -q '"success":true'; do n=$((n + 1)); done
  t=$(( $(now_ms) - t0 )); times+=("$t"); echo "kill $k: node $l, first write after $t ms"
  start "$l"
  until curl -s -m 0.5 "http://127.0.0.1:${http[$l]}/status" 2>/dev/null | grep -q '"Follower"'; do :; done
done
sorted=($(printf '%s\n' "${times[@]}" | sort -n))
c=${#sorted[@]}
echo "failover over $c kills: median ${sorted[$(( (c - 1) / 2 ))]} ms, p90 ${sorted[$(( (c * 9 + 9) / 10 - 1 ))]} ms, max ${sorted[$((c - 1))]} ms"
if [ "$load" != 0 ]; then kill -TERM "$load"; wait "$load" || true; cat "$dir/outcomes"; fi

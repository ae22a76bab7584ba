#!/usr/bin/env bash
# Leadership transfer time of a local 3-node cluster: ask the leader to hand leadership to the next node
# (POST /v1/cluster/transfer-leader {"to": N}), then publish through that node; the time runs from sending the
# request until the publish is acknowledged (the new leader accepts writes). Both requests go in one curl process
# and are timed by curl. Repeats ROUNDS times (default 20) and prints the times with their median, p90 and maximum.
#   usage: benchmarks/transfer-leader.sh [ROUNDS]
#   NODE=path/to/node-binary overrides the node (default bin/raftmq-node; build first).
set -euo pipefail
rounds=${1:-20}
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
node="${NODE:-$root/bin/raftmq-node}"
name=transfer
# shellcheck source=local-cluster.sh
source "$root/benchmarks/local-cluster.sh"
ms() { awk -v s="$1" 'BEGIN { printf "%.1f", s * 1000 }'; }
for i in 0 1 2; do start "$i"; done
l=$(leader)
curl -s -XPUT "http://127.0.0.1:${http[$l]}/topic" -d '{"topic":"transfer"}' > /dev/null
times=()
for k in $(seq 1 "$rounds"); do
  l=$(leader)
  # A write first, so that every node is up to date and the connections are open.
  curl -s -XPUT "http://127.0.0.1:${http[$l]}/message" -d '{"topic":"transfer","message":"warm"}' > /dev/null
  to=$(( (l + 1) % 3 ))
  out=$(curl -s -o /dev/null -m 10 -w '%{http_code} %{time_total}\n' -XPOST "http://127.0.0.1:${http[$l]}/v1/cluster/transfer-leader" \
          -d "{\"to\": $to}" \
        --next -s -o /dev/null -m 10 -w '%{http_code} %{time_total}\n' -XPUT "http://127.0.0.1:${http[$to]}/message" \
          -d '{"topic":"transfer","message":"after"}')
  read -r c1 t1 c2 t2 <<< "$(echo $out)"
  [ "$c1" = 200 ] || { echo "round $k: the transfer from node $l to node $to answered $c1" >&2; exit 1; }
  [ "$c2" = 200 ] || { echo "round $k: the write on node $to answered $c2" >&2; exit 1; }
  t=$(awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.1f", (a + b) * 1000 }')
  times+=("$t")
  echo "round $k: node $l -> node $to: transfer $(ms "$t1") ms, then a write $(ms "$t2") ms: $t ms"
done
sorted=($(printf '%s\n' "${times[@]}" | sort -g))
c=${#sorted[@]}
echo "leadership transfer over $c rounds (request to acknowledged write): median ${sorted[$(( (c - 1) / 2 ))]} ms, p90 ${sorted[$(( (c * 9 + 9) / 10 - 1 ))]} ms, max ${sorted[$((c - 1))]} ms"

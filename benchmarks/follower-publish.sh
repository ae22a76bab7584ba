#!/usr/bin/env bash
# Publishing through a follower against publishing to the leader: a local 3-node cluster, then `raftmq bench publish`
# (16 clients, one 100-byte message per request, each waiting for its answer) against the leader alone and against one
# follower alone, ROUNDS times each, alternating, on the same topic. A follower forwards each publish to the leader over
# the peer link (docs/runtime.md, "Forwarding"). Prints msg/s and p50/p99 per run and the ratio of the medians.
#   usage: benchmarks/follower-publish.sh [ROUNDS] [COUNT]     (default 3 20000)
#   NODE=path/to/node-binary overrides the node (default bin/raftmq-node); CLI= the raftmq tool (default bin/raftmq).
set -euo pipefail
rounds=${1:-3}
count=${2:-20000}
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
node="${NODE:-$root/bin/raftmq-node}"
cli="${CLI:-$root/bin/raftmq}"
name=follower
# shellcheck source=local-cluster.sh
source "$root/benchmarks/local-cluster.sh"
for i in 0 1 2; do start "$i"; done
l=$(leader)
f=$(( (l + 1) % 3 ))
curl -sf -XPUT "http://127.0.0.1:${http[$l]}/topic" -d '{"topic":"fp"}' > /dev/null
field() { grep -o "\"$1\": *[0-9.]*" | head -1 | sed 's/.*: *//'; }
run() { # run TARGET-INDEX -> "msg/s p50 p99"
  local out
  out=$("$cli" bench publish --urls "http://127.0.0.1:${http[$1]}" --topic fp --clients 16 --size 100 --count "$count" --json)
  echo "$(echo "$out" | field ops_per_second) $(echo "$out" | field p50) $(echo "$out" | field p99)"
}
run "$l" > /dev/null # warm-up: JIT, connections
leader_rates=(); follower_rates=()
for r in $(seq 1 "$rounds"); do
  read -r a p50a p99a <<< "$(run "$l")"; leader_rates+=("$a")
  read -r b p50b p99b <<< "$(run "$f")"; follower_rates+=("$b")
  echo "round $r: leader $a msg/s (p50 $p50a ms, p99 $p99a ms); follower $b msg/s (p50 $p50b ms, p99 $p99b ms)"
  [ "$(leader)" = "$l" ] || echo "  (the leader changed during the round)"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ml=$(median "${leader_rates[@]}"); mf=$(median "${follower_rates[@]}")
echo "median: leader $ml msg/s, follower $mf msg/s; publishing through the follower costs $(awk -v a="$ml" -v b="$mf" 'BEGIN { printf "%.2f", a / b }')x"

#!/usr/bin/env bash
# An idle 3-node cluster: CPU (user + system, from /proc/PID/stat) and RSS of each node over a quiet window after the
# leader is elected and has committed one write, and the node processes' voluntary context switches (wake-ups).
#   usage: benchmarks/idle.sh [SECONDS] [NODE_BINARY]     (default 30 s and bin/raftmq-node)
#   env: SETTLE (seconds between the first write and the window, default 2), and any RAFTMQ_ node setting
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds=${1:-30}
node=${2:-$root/bin/raftmq-node}
name=idle
. "$root/benchmarks/local-cluster.sh"
for i in 0 1 2; do start "$i"; done
l=$(leader)
curl -s -m 5 -X PUT "http://127.0.0.1:${http[$l]}/topic" -d '{"topic":"idle"}' > /dev/null
sleep "${SETTLE:-2}" # let start-up work (JIT, the first snapshot timers) settle before the window
hz=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
switches() { awk '/^voluntary_ctxt_switches/ {v=$2} /^nonvoluntary_ctxt_switches/ {n=$2} END {print v + n}' "$1/status"; }
declare -a c0 s0
for i in 0 1 2; do
  c0[$i]=$(cpu "${pids[$i]}")
  s0[$i]=0
  for t in /proc/"${pids[$i]}"/task/*; do s0[$i]=$(( s0[$i] + $(switches "$t") )); done
done
sleep "$seconds"
echo "idle ${seconds} s, 3 nodes, leader node $l, load average $(cut -d' ' -f1 /proc/loadavg), node $node"
for i in 0 1 2; do
  c1=$(cpu "${pids[$i]}")
  s1=0
  for t in /proc/"${pids[$i]}"/task/*; do s1=$(( s1 + $(switches "$t") )); done
  rss=$(awk '/^VmRSS/ {print int($2 / 1024)}' "/proc/${pids[$i]}/status")
  awk -v i="$i" -v l="$l" -v c=$(( c1 - c0[$i] )) -v hz="$hz" -v s="$seconds" -v w=$(( s1 - s0[$i] )) -v rss="$rss" 'BEGIN {
    printf "node %d%s: CPU %.2f%% of a core, %.0f context switches/s, RSS %d MB\n", i, (i == l ? " (leader)" : ""), 100 * c / hz / s, w / s, rss }'
done

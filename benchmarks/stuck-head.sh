#!/usr/bin/env bash
# Disk under a steady publish/consume load while one message at the head is never finished (docs/queue-store.md,
# "Compaction"). A local 3-node cluster; on topic "steady" one message is published and received with a 12 h lease
# and never acked, so the topic's head stays on it. Then ROUNDS rounds of `raftmq bench receive` on that topic (each
# publishes COUNT messages of SIZE bytes and receives and acks them with 16 clients, up to 100 per receive), so at
# most COUNT messages wait at any time. Every tenth round (and the last) it prints the bytes the topic counts
# (everything from the stuck head to the tail) and each node's disk: its whole data directory (du -sb, each file
# once) and its queue/, wal/ and snapshots/ parts (a file linked into two of them counts in both).
#   usage: benchmarks/stuck-head.sh [ROUNDS] [COUNT] [SIZE]      (default 80 10000 1024: 800 MB through the topic)
#   NODE=path/to/node-binary overrides the node (default bin/raftmq-node); CLI= the raftmq tool (default bin/raftmq).
set -euo pipefail
rounds=${1:-80}
count=${2:-10000}
size=${3:-1024}
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
node="${NODE:-$root/bin/raftmq-node}"
cli="${CLI:-$root/bin/raftmq}"
name=stuck
# shellcheck source=local-cluster.sh
source "$root/benchmarks/local-cluster.sh"
for i in 0 1 2; do start "$i"; done
l=$(leader)
urls="http://127.0.0.1:${http[0]},http://127.0.0.1:${http[1]},http://127.0.0.1:${http[2]}"
base="http://127.0.0.1:${http[$l]}"
curl -sf -XPUT "$base/topic" -d '{"topic":"steady"}' > /dev/null
curl -sf -XPOST "$base/v1/topics/steady/publish" -d '{"messages":[{"body":"stuck"}]}' > /dev/null
curl -sf -XPOST "$base/v1/topics/steady/receive" -d '{"max":1,"lease_ms":43200000}' | grep -q '"body":"stuck"' \
  || { echo "could not lease the stuck message" >&2; exit 1; }
mb() { awk -v b="$1" 'BEGIN { printf "%.0f", b / 1048576 }'; }
part() { [ -d "$1" ] && du -sb "$1" | cut -f1 || echo 0; }
echo "round, messages through, topic counts MB, per node: data MB (queue / wal / snapshots)"
peak=0
for r in $(seq 1 "$rounds"); do
  "$cli" bench receive --urls "$urls" --topic steady --clients 16 --max 100 --count "$count" --size "$size" --json > "$dir/bench-$r.json"
  for i in 0 1 2; do t=$(part "$(echo "$dir"/raftmq-data/*/node-"$i")"); [ "$t" -gt "$peak" ] && peak=$t; done
  [ $((r % 10)) = 0 ] || [ "$r" = "$rounds" ] || continue
  l=$(leader)
  counted=$(curl -sf "http://127.0.0.1:${http[$l]}/v1/topics/steady" | sed -E 's/.*"bytes":([0-9]+).*/\1/')
  line="round $r, $((r * count)), $(mb "$counted"),"
  for i in 0 1 2; do
    d=$(echo "$dir"/raftmq-data/*/node-"$i")
    line="$line node $i: $(mb "$(part "$d")") ($(mb "$(part "$d/queue")") / $(mb "$(part "$d/wal")") / $(mb "$(part "$d/snapshots")"))"
  done
  echo "$line"
done
rate=$(grep -o '"messages_per_second": *[0-9.]*' "$dir/bench-$rounds.json" | head -1 | sed 's/.*: *//')
echo "largest data directory after any round: $(mb "$peak") MB; last round: $rate msg/s received and acked"

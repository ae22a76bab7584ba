#!/usr/bin/env bash
# Write availability while the membership changes: a local 3-node cluster with one writer publishing one message
# after another (each waits for its acknowledgement), through the members in turn (a follower forwards to the
# leader). Each round adds a node (raftmq-node --join; it gets the log and is promoted; the step ends when it is a
# voter), then removes a node (DELETE /v1/cluster/members/N on the leader, then stops it): the node just added on
# odd rounds, the leader itself on even rounds. For each change it reports the longest time between two
# acknowledged writes while the change ran, next to the same figure over the quiet second before the round.
#   usage: benchmarks/membership.sh [ROUNDS]      (default 6)
#   NODE=path/to/node-binary overrides the node (default bin/raftmq-node; build first).
set -euo pipefail
rounds=${1:-6}
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
node="${NODE:-$root/bin/raftmq-node}"
name=membership
# shellcheck source=local-cluster.sh
source "$root/benchmarks/local-cluster.sh"; trap - EXIT; echo "DIR $dir"
declare -A port pid
for i in 0 1 2; do start "$i"; port[$i]=${http[$i]}; pid[$i]=${pids[$i]}; done
ports="$dir/ports"; echo "${http[*]}" > "$ports"
set_ports() { echo "${port[*]}" > "$ports.tmp" && mv "$ports.tmp" "$ports"; }
leader_of() {
  local deadline=$(( $(now_ms) + 10000 ))
  while [ "$(now_ms)" -lt "$deadline" ]; do
    for n in "${!port[@]}"; do
      curl -s -m 0.5 "http://127.0.0.1:${port[$n]}/status" 2>/dev/null | grep -q '"Leader"' && { echo "$n"; return; }
    done
  done
  echo "no leader within 10 s" >&2; exit 1
}
l=$(leader_of)
curl -s -XPUT "http://127.0.0.1:${port[$l]}/topic" -d '{"topic":"m"}' > /dev/null
acks="$dir/acks"; : > "$acks"
(
  set +e
  k=0
  while :; do
    read -r -a targets < "$ports"
    [ "${#targets[@]}" -gt 0 ] || continue
    target=${targets[$(( k % ${#targets[@]} ))]}
    s0=$(now_ms); out=$(curl -s -m 5 -w ' %{http_code}' -XPUT "http://127.0.0.1:$target/message" -d '{"topic":"m","message":"x"}' 2>&1); e0=$(now_ms); echo "$s0 $e0 $target $out" >> "$dir/reqs"
    if echo "$out" | grep -q '"success":true'; then
      now_ms >> "$acks"
    fi
    k=$(( k + 1 ))
  done
) & writer=$!
trap 'kill $writer 2>/dev/null || true; for p in "${pid[@]}"; do [ "$p" != 0 ] && { kill -9 "$p"; wait "$p"; } 2>/dev/null || true; done; ' EXIT
# The longest gap between consecutive acknowledgements that ends within [from, to].
gap() { awk -v a="$1" -v b="$2" '{ if ($1 >= a && $1 <= b && p > 0 && $1 - p > g) g = $1 - p; p = $1 } END { print g + 0 }' "$acks"; }
wait_voter() {
  local deadline=$(( $(now_ms) + 60000 ))
  until curl -s -m 5 "http://127.0.0.1:${port[$2]}/v1/cluster/members" | grep -q "\"node\":$1,\"role\":\"voter\""; do
    [ "$(now_ms)" -lt "$deadline" ] || { echo "node $1 did not become a voter" >&2; exit 1; }
  done
}
sleep 1
for r in $(seq 1 "$rounds"); do
  q0=$(now_ms); sleep 1; q1=$(now_ms)
  l=$(leader_of)
  n=$(( 2 + r )); p=$(( base + 10 * r ))
  t0=$(now_ms)
  (cd "$dir" && exec "$node" --join "http://127.0.0.1:${port[$l]}" --address "127.0.0.1:$p:$((p + 1))" --node "$n" \
     --data-dir "joined-$n" --cluster-secret-file config.json.secret >> "node$n.log" 2>&1) & pid[$n]=$!
  port[$n]=$p
  wait_voter "$n" "$l"
  t1=$(now_ms)
  set_ports
  sleep 0.3
  if [ $(( r % 2 )) = 0 ]; then victim=$l; else victim=$n; fi
  t2=$(now_ms)
  code=$(curl -s -o /dev/null -w '%{http_code}' -m 10 -XDELETE "http://127.0.0.1:${port[$l]}/v1/cluster/members/$victim")
  [ "$code" = 200 ] || { echo "round $r: removing node $victim answered $code" >&2; exit 1; }
  unset "port[$victim]"; set_ports
  kill -9 "${pid[$victim]}"; wait "${pid[$victim]}" 2>/dev/null || true; unset "pid[$victim]"
  l2=$(leader_of)
  sleep 0.5
  t3=$(now_ms)
  what=$([ "$victim" = "$l" ] && echo "the leader, node $victim" || echo "node $victim")
  echo "round $r: add node $n: $((t1 - t0)) ms to voter, longest write gap $(gap "$t0" "$t1") ms; remove $what: longest write gap $(gap "$t2" "$t3") ms (leader now node $l2); quiet second before: $(gap "$q0" "$q1") ms"
done
echo "acknowledged writes: $(wc -l < "$acks")"

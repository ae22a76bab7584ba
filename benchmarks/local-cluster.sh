# Sourced by the shell benchmarks: a 3-node cluster of real node processes on free loopback ports, in a temporary
# directory that goes (with the nodes) when the script exits. Set `node` (the node binary) and `name` first.
#   start I      launch node I (appends to node I.log in the directory)
#   leader       print the index of the node that reports Leader (waits up to 10 s)
#   now_ms       milliseconds since the epoch
# The node runs in the cluster's directory: make a relative path to it absolute first.
case "$node" in /*) ;; *) node="$PWD/$node" ;; esac
dir=$(mktemp -d "/tmp/raftmq-$name.XXXXXX")
base=$(( 20000 + RANDOM % 20000 ))
http=($base $((base + 2)) $((base + 4)))
printf '{"addresses":[{"ip":"127.0.0.1","port":%d,"internal_port":%d},{"ip":"127.0.0.1","port":%d,"internal_port":%d},{"ip":"127.0.0.1","port":%d,"internal_port":%d}]}\n' \
  "${http[0]}" $((http[0] + 1)) "${http[1]}" $((http[1] + 1)) "${http[2]}" $((http[2] + 1)) > "$dir/config.json"
pids=(0 0 0)
cleanup() {
  for p in "${pids[@]}"; do [ "$p" != 0 ] && { kill -9 "$p"; wait "$p"; } 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT
start() { (cd "$dir" && exec "$node" config.json "$1" >> "node$1.log" 2>&1) & pids[$1]=$!; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
leader() {
  local deadline=$(( $(now_ms) + 10000 ))
  while [ "$(now_ms)" -lt "$deadline" ]; do
    for i in 0 1 2; do
      curl -s -m 0.5 "http://127.0.0.1:${http[$i]}/status" 2>/dev/null | grep -q '"Leader"' && { echo "$i"; return; }
    done
  done
  echo "no leader within 10 s" >&2; exit 1
}

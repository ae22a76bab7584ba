#!/usr/bin/env bash
# One request's path through the cluster, system call by system call (docs/benchmarks.md, "One request's path,
# traced"): starts a fresh local 3-node cluster of NODE_BINARY, runs `raftmq bench publish --clients 1`, records the
# nodes' socket, file and fsync system calls for 0.4 s with `perf trace`, and prints the timelines of COUNT requests:
# each line is milliseconds since the leader read the request, the call's duration, the node (L, F1, F2), the thread
# and the call. perf's own overhead stretches every call a little; read the order and the gaps, not the totals.
#   usage: benchmarks/trace-request.sh [NODE_BINARY] [COUNT]   (defaults: the built node, 3; needs perf, run as root)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
raftmq="$root/bin/raftmq"
node=${1:-}
count=${2:-3}
data=$(mktemp -d "${TMPDIR:-/tmp}/raftmq-trace.XXXXXX")
if [ -n "$node" ]; then export RAFTMQ_NODE_BINARY="$node"; fi
"$raftmq" cluster up --detach --fresh --data "$data" > /dev/null
trap '"$raftmq" cluster down --data "$data" > /dev/null; rm -rf "$data"' EXIT

# Node PIDs with their roles, the leader first.
python3 - "$data/cluster.json" > "$data/nodes" <<'PY'
import json, sys, urllib.request
nodes = [(n["pid"], json.load(urllib.request.urlopen(n["url"] + "/v1/metrics", timeout=5))["role"])
         for n in json.load(open(sys.argv[1]))["nodes"]]
for pid, role in sorted(nodes, key=lambda n: n[1] != "Leader"):
    print(pid, role)
PY
"$raftmq" bench publish --data "$data" --clients 1 --size 100 --duration 8 > /dev/null 2>&1 &
bench=$!
sleep 3
perf trace -p "$(cut -d' ' -f1 "$data/nodes" | paste -sd,)" -o "$data/trace" \
  -e 'sendto,recvfrom,sendmsg,recvmsg,read,write,pwrite64,pwritev,fsync,fdatasync' -- sleep 0.4 2> /dev/null
python3 - "$data/nodes" "$data/trace" "$count" <<'PY'
import os, re, sys
pids = [l.split()[0] for l in open(sys.argv[1])]  # the leader first
who = {}
for i, pid in enumerate(pids):
    for tid in os.listdir(f"/proc/{pid}/task"):
        who[tid] = "L" if i == 0 else f"F{i}"
rows = []
for line in open(sys.argv[2]):
    m = re.match(r"\s*([\d.]+) \(\s*([\d.]*)\s*(?:ms)?\): (.+?)/(\d+) (.*)$", line.rstrip())
    if m and float(m.group(1)) < 1e6:  # perf prints a wrapped negative time for calls begun before it started
        rows.append((float(m.group(1)), m.group(2), who.get(m.group(4), "?"), m.group(3)[:14], m.group(5)[:96]))
rows.sort()
def returned(row):
    r = re.search(r"= (\d+)$", row[4])
    return int(r.group(1)) if r else -1
# A request starts where the leader reads an HTTP request: a recvfrom of a client connection (4 KiB reads) of over 100 bytes.
starts = [r for r in rows if r[2] == "L" and "recvfrom" in r[4] and "size: 4096" in r[4] and returned(r) > 100]
print(f"{len(starts)} requests in the trace; the first {sys.argv[3]} after the third:")
for s in starts[3:3 + int(sys.argv[3])]:
    end = next((r[0] for r in rows if r[0] > s[0] and r[2] == "L" and "sendto" in r[4] and "fd: %s," % re.search(r"fd: (\d+)", s[4]).group(1) in r[4]), s[0] + 3)
    print("----")
    for r in rows:
        if s[0] <= r[0] <= end and "EAGAIN" not in r[4]:
            print("%7.3f %6s %-2s %-14s %s" % (r[0] - s[0], r[1], r[2], r[3], r[4]))
PY
wait $bench || true

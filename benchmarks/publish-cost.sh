#!/usr/bin/env bash
# What one single-message publish costs the cluster (docs/benchmarks.md, "What a publish costs, and what was tried"):
# starts a fresh local 3-node cluster of NODE_BINARY, measures it idle for IDLE seconds, then runs
# `raftmq bench publish --clients CLIENTS --size 100` for SECONDS after a 3 s warm-up, and reads every node's CPU time
# (user + system, /proc/PID/stat), its threads' context switches and CPU time (/proc/PID/task/*) and its /v1/metrics
# counters before and after each window. Prints, per node idle: % of a core and switches/s; and for the run:
# publishes/s, latency, per publish summed over the three nodes: CPU ms, thread switches, peer messages sent, log
# fsyncs and loop iterations; and per node the thread groups (by name) that switched at least once a publish.
#   usage: benchmarks/publish-cost.sh [NODE_BINARY] [SECONDS] [IDLE]   (defaults: the built node, 10, 15)
#   env: CLIENTS (16)
# Run two builds alternately (A B A B) and compare pairs: single runs move by 15 % on this machine.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
raftmq="$root/bin/raftmq"
node=${1:-}
seconds=${2:-10}
idle=${3:-15}
clients=${CLIENTS:-16}
data=$(mktemp -d "${TMPDIR:-/tmp}/raftmq-publish-cost.XXXXXX")
if [ -n "$node" ]; then export RAFTMQ_NODE_BINARY="$node"; fi
"$raftmq" cluster up --detach --fresh --data "$data" > /dev/null
trap '"$raftmq" cluster down --data "$data" > /dev/null; rm -rf "$data"' EXIT

# One JSON object per call: per node index, its role, CPU ticks, thread switches and runtime counters.
snapshot() {
  python3 - "$data/cluster.json" <<'PY'
import glob, json, sys, urllib.request
out = {}
for n in json.load(open(sys.argv[1]))["nodes"]:
    pid = n["pid"]
    m = json.load(urllib.request.urlopen(n["url"] + "/v1/metrics", timeout=5))
    stat = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    switches, threads = 0, {}
    for task in glob.glob(f"/proc/{pid}/task/*"):
        try:
            sw = sum(int(l.split()[1]) for l in open(task + "/status") if "ctxt_switches" in l)
            tstat = open(task + "/stat").read().rsplit(")", 1)[1].split()
            group = open(task + "/comm").read().strip().split(":")[0].rstrip("-0123456789")
        except OSError:
            continue  # the thread ended meanwhile
        switches += sw
        t = threads.setdefault(group, [0, 0])
        t[0] += sw
        t[1] += int(tstat[11]) + int(tstat[12])
    out[n["index"]] = {"role": m["role"], "cpu": int(stat[11]) + int(stat[12]), "switches": switches, "threads": threads, **m["runtime"]}
print(json.dumps(out))
PY
}

sleep 3 # start-up work (JIT, first timers) settles
before=$(snapshot); sleep "$idle"; after=$(snapshot)
python3 - "$before" "$after" "$idle" "$(getconf CLK_TCK)" <<'PY'
import json, sys
a, b, secs, hz = json.loads(sys.argv[1]), json.loads(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
print("idle %g s: " % secs + ", ".join("node %s (%s) %.2f%% of a core, %d switches/s" % (
    i, b[i]["role"].lower(), 100.0 * (b[i]["cpu"] - a[i]["cpu"]) / hz / secs, (b[i]["switches"] - a[i]["switches"]) / secs)
    for i in sorted(b)))
PY

"$raftmq" bench publish --data "$data" --clients "$clients" --size 100 --duration 3 > /dev/null 2>&1
before=$(snapshot)
result=$("$raftmq" bench publish --data "$data" --clients "$clients" --size 100 --duration "$seconds" --json)
after=$(snapshot)
python3 - "$before" "$after" "$result" "$(getconf CLK_TCK)" "$clients" <<'PY'
import json, sys
a, b, r, hz = json.loads(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3]), int(sys.argv[4])
n = r["ops"]
def per(key, scale=1.0): return sum(b[i][key] - a[i][key] for i in b) * scale / n
lat = r["latency_ms"]
print("publish, %s clients: %.0f/s, p50 %.2f ms, p99 %.2f ms" % (sys.argv[5], r["ops_per_second"], lat["p50"], lat["p99"]))
print("per publish over 3 nodes: %.3f ms CPU, %.1f thread switches, %.2f peer messages, %.2f log fsyncs, %.2f loop iterations" % (
    per("cpu", 1000.0 / hz), per("switches"), per("messages_sent"), per("log_syncs"), per("loop_iterations")))
for i in sorted(b):
    groups = []
    for name, (sw, cpu) in sorted(b[i]["threads"].items()):
        before = a[i]["threads"].get(name, [0, 0])
        if sw - before[0] >= n:
            groups.append("%s %.1f switches, %.3f ms" % (name, (sw - before[0]) / n, (cpu - before[1]) * 1000.0 / hz / n))
    print("node %s (%s), per publish: %s" % (i, b[i]["role"].lower(), "; ".join(groups)))
PY

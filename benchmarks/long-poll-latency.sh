#!/usr/bin/env bash
# How soon a waiting receive (long polling, docs/rest-api.md) answers a message published meanwhile, on the leader and
# on a follower: a local 3-node cluster, then ROUNDS rounds alternating leader and follower, each of COUNT messages.
# For each message a receive (`wait_ms` 5000) is sent to the node measured; once that node reports it waiting
# (`http.waiting_receives` in GET /v1/metrics), one message is published to the leader and the time from the
# publish's answer to the receive's answer is taken. A receive held on a follower wakes only when that follower
# applies the publish, so this shows how late followers learn commits.
#   usage: benchmarks/long-poll-latency.sh [ROUNDS] [COUNT]     (default 2 25)
#   NODE=path/to/node-binary overrides the node (default bin/raftmq-node).
set -euo pipefail
rounds=${1:-2}
count=${2:-25}
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
node="${NODE:-$root/bin/raftmq-node}"
name=long-poll
# shellcheck source=local-cluster.sh
source "$root/benchmarks/local-cluster.sh"
for i in 0 1 2; do start "$i"; done
l=$(leader)
f=$(( (l + 1) % 3 ))
curl -sf -XPUT "http://127.0.0.1:${http[$l]}/v1/topics/lp" -d '{}' > /dev/null
python3 - "${http[$l]}" "${http[$f]}" "$rounds" "$count" <<'PY'
import http.client, json, statistics, sys, threading, time
leader, follower, rounds, count = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])

def call(port, method, path, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request(method, path, None if body is None else json.dumps(body), {"Content-Type": "application/json"})
    r = c.getresponse(); data = r.read(); c.close()
    if r.status != 200: raise SystemExit(f"{method} {path} on {port}: {r.status} {data[:200]!r}")
    return json.loads(data)

def waiting(port):
    return call(port, "GET", "/v1/metrics")["http"]["waiting_receives"]

def one(port, i):
    got = {}
    def receive():
        got["answer"] = call(port, "POST", "/v1/topics/lp/receive", {"group": "default", "max": 1, "lease_ms": 30000, "wait_ms": 5000})
        got["at"] = time.perf_counter()
    t = threading.Thread(target=receive); t.start()
    deadline = time.monotonic() + 5
    while waiting(port) < 1:
        if time.monotonic() > deadline: raise SystemExit(f"the receive on {port} never waited")
    call(leader, "POST", "/v1/topics/lp/publish", {"messages": [{"body": f"m{i}"}]})
    published = time.perf_counter()
    t.join()
    messages = got["answer"]["messages"]
    if len(messages) != 1: raise SystemExit(f"expected one message, got {got['answer']}")
    call(port, "POST", "/v1/topics/lp/ack", {"group": "default", "receipts": [messages[0]["receipt"]]})
    return (got["at"] - published) * 1000

for r in range(1, rounds + 1):
    for label, port in (("leader", leader), ("follower", follower)):
        ms = sorted(one(port, i) for i in range(count))
        print(f"round {r} {label:8} receive answered {statistics.median(ms):.2f} ms (median) after the publish's answer, "
              f"p90 {ms[int(len(ms) * 0.9)]:.2f} ms, max {ms[-1]:.2f} ms ({count} messages)")
PY

#!/usr/bin/env python3
"""Publishes without pause from CLIENTS threads, each request to a random node of PORTS, and counts what the writes
got back, until it is sent SIGTERM or SIGINT: then prints one line per outcome (docs/benchmarks.md, "Writes during
failovers"). benchmarks/failover.sh runs it with LOAD=n while it kills leaders.

Outcomes: `200` (applied), `<status> <X-RaftMQ-Error>` for an error answer (e.g. `503 outcome-unknown`: the write
may or may not have been applied; `503 no-leader`: certainly not applied), `refused` (the node's port is closed: its
process is gone), `timeout` (no answer within TIMEOUT seconds), `error <kind>` for any other failure. DETAIL=1 splits
the 503s by their error text (numbers masked).
  usage: benchmarks/write-outcomes.py TOPIC PORT[,PORT...] [CLIENTS] [TIMEOUT]   (defaults: 4 clients, 5 s)
"""
import collections
import http.client
import json
import os
import random
import re
import signal
import sys
import threading

topic, ports = sys.argv[1], [int(p) for p in sys.argv[2].split(",")]
clients = int(sys.argv[3]) if len(sys.argv) > 3 else 4
timeout = float(sys.argv[4]) if len(sys.argv) > 4 else 5.0
counts = collections.Counter()
DETAIL = os.environ.get("DETAIL") == "1"
lock = threading.Lock()
stop = threading.Event()


def client(seed):
    rng = random.Random(seed)
    connections = {}
    n = 0
    while not stop.is_set():
        port = rng.choice(ports)
        body = json.dumps({"topic": topic, "message": f"c{seed}-{n}"})
        n += 1
        try:
            c = connections.get(port) or http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
            connections[port] = c
            c.request("PUT", "/message", body, {"Content-Type": "application/json"})
            r = c.getresponse()
            text = r.read()
            outcome = "200" if r.status == 200 else f"{r.status} {r.getheader('X-RaftMQ-Error') or '-'}"
            if r.status == 503 and DETAIL:
                outcome += ": " + re.sub(r"\d+", "N", json.loads(text).get("error", ""))
        except ConnectionRefusedError:
            outcome = "refused"
        except TimeoutError:
            outcome = "timeout"
        except OSError as e:
            outcome = f"error {type(e).__name__}"
        except http.client.HTTPException as e:
            outcome = f"error {type(e).__name__}"
        if outcome != "200":
            connections.pop(port, None)
        with lock:
            counts[outcome] += 1


def finish(*_):
    stop.set()


signal.signal(signal.SIGTERM, finish)
signal.signal(signal.SIGINT, finish)
threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
for t in threads:
    t.start()
stop.wait()
for t in threads:
    t.join(timeout + 1)
total = sum(counts.values())
for outcome, n in sorted(counts.items(), key=lambda kv: -kv[1]):
    print(f"writes: {outcome}: {n} ({100.0 * n / max(total, 1):.2f}%)")
print(f"writes: total {total}")

#!/usr/bin/env bash
# Node start-up time: milliseconds from launching `bin/raftmq-node config.json 0` (fresh data directory) until its
# HTTP port first answers `GET /status`, then SIGTERM and the time the node takes to exit. Repeats RUNS times and
# prints every run and the medians.
#   usage: benchmarks/startup.sh [--runs N] [--cluster 1|3] [--node PATH]... [--staggered N] [--load]
#     --runs N       runs per node binary (default 9)
#     --cluster 3    a 3-node config whose two peers are down (default 1: a one-node cluster)
#     --node PATH    the launcher to time (default bin/raftmq-node); give it twice or more to compare builds, runs
#                    are then interleaved (A B A B ...) so load from other work on the machine hits both alike
#     --staggered N  instead: each run launches the N nodes of an N-node cluster one after another, as test harnesses
#                    do (docs/benchmarks.md, "Node start-up"); a node must answer within 2 s of its launch, then the
#                    next is launched; prints each node's time and whether every node of every run made it
#     --load         while running, keep both cores busy (two spinning processes) and the disk too (a third that
#                    writes and fsyncs 4 MiB at a time)
#   (build first: dotnet build -c Release RaftMQ.slnx)
# The timer is a small python3 process that is already running when it launches the node and polls with raw
# sockets every 0.5 ms, so neither a poller's own start-up nor a curl per attempt is counted.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runs=9 cluster=1 nodes=() staggered=0 load=0
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --cluster) cluster=$2; shift 2 ;;
    --staggered) staggered=$2; shift 2 ;;
    --load) load=1; shift ;;
    --node) nodes+=("$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"); shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "startup.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ ${#nodes[@]} -gt 0 ] || nodes=("$root/bin/raftmq-node")
command -v python3 >/dev/null || { echo "startup.sh: needs python3" >&2; exit 1; }
exec python3 - "$runs" "$cluster" "$staggered" "$load" "${nodes[@]}" <<'PY'
import json, os, random, shutil, signal, socket, statistics, subprocess, sys, tempfile, time

runs, cluster, staggered, load_on, nodes = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1", sys.argv[5:]
if cluster not in (1, 3): sys.exit("startup.sh: --cluster must be 1 or 3")
if staggered: cluster = staggered
REQUEST = b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
DEADLINE_S = 10.0

def free_port_base():
    # Two ports per node (HTTP, peer), all currently free.
    while True:
        # Below the kernel's ephemeral range, so a connect attempt cannot be handed the target port as its own.
        base = random.randrange(20000, 32000, 2)
        try:
            held = []
            for p in range(base, base + 2 * cluster):
                s = socket.socket(); s.bind(("127.0.0.1", p)); held.append(s)
            return base
        except OSError:
            pass
        finally:
            for s in held: s.close()

def first_answer(port, proc, t0):
    """ns from t0 to the first bytes of an HTTP response from port, or None if the node exited or timed out."""
    while time.perf_counter_ns() - t0 < DEADLINE_S * 1e9:
        if proc.poll() is not None: return None
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            s.connect(("127.0.0.1", port))
        except ConnectionRefusedError:
            s.close(); time.sleep(0.0005); continue
        if s.getsockname() == s.getpeername():  # TCP self-connect: nobody is listening yet
            s.close(); continue
        try:
            s.settimeout(DEADLINE_S)
            s.sendall(REQUEST)
            data = s.recv(256)
            if data.startswith(b"HTTP/1.1 200"): return time.perf_counter_ns() - t0
            if not data: continue
            raise SystemExit(f"startup.sh: unexpected answer {data[:60]!r}")
        except (ConnectionResetError, socket.timeout):
            continue
        finally:
            s.close()
    return None

def cpu_ms(pid):
    """CPU time all the process's threads have used so far (schedstat: ns on the CPU), or nan."""
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f: total += int(f.read().split()[0])
    except OSError:
        return float("nan")
    return total / 1e6

def run_once(node):
    work = tempfile.mkdtemp(prefix="raftmq-startup.")
    try:
        base = free_port_base()
        addresses = [{"ip": "127.0.0.1", "port": base + 2 * i, "internal_port": base + 2 * i + 1} for i in range(cluster)]
        with open(os.path.join(work, "config.json"), "w") as f: json.dump({"addresses": addresses}, f)
        log = open(os.path.join(work, "node.log"), "wb")
        t0 = time.perf_counter_ns()
        proc = subprocess.Popen([node, "config.json", "0"], cwd=work, stdout=log, stderr=subprocess.STDOUT)
        answered = first_answer(base, proc, t0)
        cpu = cpu_ms(proc.pid)
        t1 = time.perf_counter_ns()
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill(); proc.wait(); code = "killed after 10 s"
        stop_ms = (time.perf_counter_ns() - t1) / 1e6
        log.close()
        if answered is None or code != 0:
            sys.stdout.write(open(os.path.join(work, "node.log"), errors="replace").read())
            sys.exit(f"startup.sh: {node}: " + ("no answer within 10 s" if answered is None else f"exit code {code} after SIGTERM"))
        return answered / 1e6, cpu, stop_ms
    finally:
        shutil.rmtree(work, ignore_errors=True)

def stop(procs):
    for p in procs: p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill(); p.wait()

def staggered_once(node):
    """Launches the nodes of a `cluster`-node cluster one after another; returns each node's first answer (ms) or None."""
    work = tempfile.mkdtemp(prefix="raftmq-startup.")
    procs, times = [], []
    try:
        base = free_port_base()
        addresses = [{"ip": "127.0.0.1", "port": base + 2 * i, "internal_port": base + 2 * i + 1} for i in range(cluster)]
        with open(os.path.join(work, "config.json"), "w") as f: json.dump({"addresses": addresses}, f)
        for i in range(cluster):
            log = open(os.path.join(work, f"node-{i}.log"), "wb")
            t0 = time.perf_counter_ns()
            proc = subprocess.Popen([node, "config.json", str(i)], cwd=work, stdout=log, stderr=subprocess.STDOUT)
            procs.append(proc)
            answered = first_answer(base + 2 * i, proc, t0)
            times.append(None if answered is None or answered > HARNESS_S * 1e9 else answered / 1e6)
            if times[-1] is None:
                sys.stdout.write(f"node {i} did not answer within {HARNESS_S:.0f} s; its log:\n")
                sys.stdout.write(open(os.path.join(work, f"node-{i}.log"), errors="replace").read()[-3000:])
                break
        return times
    finally:
        stop(procs)
        shutil.rmtree(work, ignore_errors=True)

load_procs = []
if load_on:
    spin = "while True: pass"
    write = ("import os,tempfile\nd=tempfile.mkdtemp(prefix='raftmq-load.')\np=os.path.join(d,'f')\nb=os.urandom(4<<20)\n"
             "while True:\n f=os.open(p,os.O_WRONLY|os.O_CREAT|os.O_TRUNC)\n os.write(f,b); os.fsync(f); os.close(f)")
    load_procs = [subprocess.Popen([sys.executable, "-c", c]) for c in (spin, spin, write)]
    time.sleep(1)
load = os.getloadavg()[0]
if staggered:
    HARNESS_S = 2.0
    print(f"{runs} runs per node binary: the {cluster} nodes of a cluster launched one after another, each to answer "
          f"within {HARNESS_S:.0f} s; {'with' if load_on else 'without'} background load; load average {load:.2f}", flush=True)
    try:
        for n in nodes:
            failed = 0
            worst = []
            for r in range(runs):
                times = staggered_once(n)
                ok = len(times) == cluster and all(t is not None for t in times)
                failed += not ok
                worst.append(max((t for t in times if t is not None), default=float("nan")))
                print(f"  run {r + 1}: " + ", ".join("-" if t is None else f"{t:.0f}" for t in times) + " ms" + ("" if ok else "  FAILED"), flush=True)
            print(f"{n}: {runs - failed} of {runs} runs started every node in time; slowest node per run: median "
                  f"{statistics.median(worst):.0f} ms, max {max(worst):.0f} ms; load average now {os.getloadavg()[0]:.2f}")
    finally:
        for p in load_procs: p.kill()
    sys.exit(0)
print(f"{runs} runs per node, {'one-node cluster' if cluster == 1 else '3-node cluster, peers down'}; load average {load:.2f}", flush=True)
results = {n: [] for n in nodes}
for r in range(runs):
    for n in nodes:
        results[n].append(run_once(n))
for n in nodes:
    up = [u for u, _, _ in results[n]]; cpu = [c for _, c, _ in results[n]]; down = [d for _, _, d in results[n]]
    print(f"{n}")
    print(f"  first answer (ms): {', '.join(f'{u:.0f}' for u in up)}   median {statistics.median(up):.0f} ms")
    print(f"  CPU used by then (ms, all threads): {', '.join(f'{c:.0f}' for c in cpu)}   median {statistics.median(cpu):.0f} ms")
    print(f"  exit after SIGTERM (ms): median {statistics.median(down):.0f}, max {max(down):.0f}")
PY

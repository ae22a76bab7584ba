#!/usr/bin/env python3
"""What a log append's fsync costs on this disk, the way the node's log writes (docs/benchmarks.md, "Reserved log blocks").

PROCS processes at once (a local cluster's nodes share one disk), each in its own file in DIR, append RECORD-byte
records, each followed by a flush, in four ways:
  grow+fsync         the file grows with each record, fsync (the log before reserved blocks)
  grow+fdatasync     the same with fdatasync (the length still changes, so the journal still commits)
  reserved+fdatasync the file's blocks reserved first (posix_fallocate), then fdatasync (the log now)
  zeroed+fdatasync   the file written with zeros first, then fdatasync
Prints each way's median time a record and the machine's CPU a record (all cores, from /proc/stat), per round.
  usage: benchmarks/fsync-cost.py [DIR] [RECORDS] [PROCS] [ROUNDS]   (defaults: /work, 2000, 3, 2)
"""
import multiprocessing
import os
import statistics
import sys
import time

RECORD = 200
WAYS = ["grow+fsync", "grow+fdatasync", "reserved+fdatasync", "zeroed+fdatasync"]


def busy_ticks():
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:8]]
    return sum(fields) - fields[3] - fields[4]  # all but idle and iowait


def worker(way, path, records, start, out):
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        size = records * RECORD + 4096
        if way == "reserved+fdatasync":
            os.posix_fallocate(fd, 0, size)
            os.fsync(fd)
        elif way == "zeroed+fdatasync":
            os.pwrite(fd, bytes(size), 0)
            os.fsync(fd)
        record = b"x" * RECORD
        flush = os.fsync if way == "grow+fsync" else os.fdatasync
        start.wait()
        times = []
        for i in range(records):
            t = time.perf_counter()
            os.pwrite(fd, record, i * RECORD)
            flush(fd)
            times.append(time.perf_counter() - t)
        out.put(statistics.median(times))
    finally:
        os.close(fd)
        os.unlink(path)


def run(way, directory, records, procs):
    start = multiprocessing.Barrier(procs + 1)
    out = multiprocessing.Queue()
    ps = [multiprocessing.Process(target=worker, args=(way, os.path.join(directory, f"fsync-cost.{os.getpid()}.{k}"), records, start, out))
          for k in range(procs)]
    for p in ps:
        p.start()
    start.wait()
    ticks = busy_ticks()
    medians = [out.get() for _ in ps]
    ticks = busy_ticks() - ticks
    for p in ps:
        p.join()
    hz = os.sysconf("SC_CLK_TCK")
    return statistics.median(medians) * 1000, ticks / hz * 1000 / (records * procs)


def main():
    directory = sys.argv[1] if len(sys.argv) > 1 else "/work"
    records = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    procs = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    print(f"{procs} processes at once, {records} records of {RECORD} bytes each, in {directory}")
    for r in range(1, rounds + 1):
        for way in WAYS:
            median, cpu = run(way, directory, records, procs)
            print(f"round {r}  {way:<20} median {median:.3f} ms a record, machine CPU {cpu:.3f} ms a record")


if __name__ == "__main__":
    main()

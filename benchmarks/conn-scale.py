#!/usr/bin/env python3
"""Connection scale of an echo server (issue 9): time to open N connections one after
another, server memory per idle connection, and server memory after they all close.

    python3 benchmarks/conn-scale.py --pid PID --addr 127.0.0.1:7000 [--count 10000]

The server must already listen at ADDR; PID is its process id (its VmRSS is read from
/proc). Prints one JSON object. The connections send nothing: they are idle clients.
"""
import argparse
import json
import resource
import socket
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def settle(pid, seconds=1.0):
    """Waits until the server's RSS stops moving (or `seconds` pass), then returns it."""
    end = time.time() + seconds
    last = rss_kib(pid)
    while time.time() < end:
        time.sleep(0.1)
        now = rss_kib(pid)
        if now == last:
            break
        last = now
    return last


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--addr", default="127.0.0.1:7000")
    ap.add_argument("--count", type=int, default=10000)
    args = ap.parse_args()
    host, port = args.addr.rsplit(":", 1)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.count + 64
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    # Warm up: one connection, echoed once, so that lazily created state exists.
    with socket.create_connection((host, int(port))) as s:
        s.sendall(b"x")
        s.recv(1)
    empty = settle(args.pid)
    socks = []
    t0 = time.perf_counter()
    for _ in range(args.count):
        socks.append(socket.create_connection((host, int(port))))
    connect_s = time.perf_counter() - t0
    time.sleep(0.5)
    loaded = settle(args.pid, 3.0)
    for s in socks:
        s.close()
    socks.clear()
    time.sleep(0.5)
    after = settle(args.pid, 3.0)
    print(json.dumps({
        "count": args.count,
        "connect_seconds": round(connect_s, 3),
        "rss_empty_kib": empty,
        "rss_loaded_kib": loaded,
        "kib_per_idle_connection": round((loaded - empty) / args.count, 3),
        "rss_after_close_kib": after,
    }))


if __name__ == "__main__":
    main()

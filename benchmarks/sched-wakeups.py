#!/usr/bin/env python3
"""Where an echo server's wake-ups of its clients land, from a `perf sched record` trace.

Measures the scheduler effect that decides the co-located cells of run-peers.sh (server
and client sharing the same CPUs): when the server's send wakes a blocked client thread on
the server's own CPU and the client preempts the server at once, server and client
ping-pong on one CPU with cheap local switches; when the wake-up lands on the other CPU,
every message pays a cross-CPU wake-up (an IPI, a VM exit on a virtual machine) and cold
caches. The same server code can settle in either pattern, so this is reported beside the
rates instead of being inferred from them.

Usage (server and client already running, e.g. under benchmarks/run-peers.sh's commands):

    perf sched record -o sched.data -- sleep 0.3
    benchmarks/sched-wakeups.py sched.data --server cport-serve   # thread-name prefix
    benchmarks/sched-wakeups.py sched.data --server mio-

Prints, over the trace: wake-ups of client threads (thread name `--client`, default
`peers`) by server threads, the share that landed on the waker's CPU, and how often a
server thread was preempted (switched out while runnable) against how often it blocked.
Then every context switch by class, per client wake-up: who left the CPU (`server`,
`client`, `idle`, `other`), whether it was still runnable (`R`, preempted) or blocked
(`S`), and who took the CPU. `server R -> client` is a client preempting the server as it
is woken; `client S -> client` is one client handing the CPU to another.
"""

import argparse
import collections
import re
import subprocess
import sys

LINE = re.compile(r"\s*(\S.*?)\s+(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+sched:(\w+):\s*(.*)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("trace", help="perf.data written by `perf sched record`")
    ap.add_argument("--server", required=True, help="thread-name prefix of the server's threads")
    ap.add_argument("--client", default="peers", help="thread name of the client's threads")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()

    try:
        out = subprocess.run(
            ["perf", "script", "-i", args.trace, "-F", "comm,tid,cpu,time,event,trace"],
            capture_output=True, text=True, check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"sched-wakeups: cannot read {args.trace} with perf script: {e}", file=sys.stderr)
        return 1

    def role(comm: str) -> str:
        if comm.startswith(args.server):
            return "server"
        if comm.startswith("swapper"):
            return "idle"
        return "client" if comm == args.client else "other"

    switches = collections.Counter()

    same = remote = preempted = blocked = 0
    first = last = None
    for line in out.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        comm, _tid, cpu, t, event, rest = m.groups()
        first = first if first is not None else float(t)
        last = float(t)
        if event == "sched_waking" and role(comm) == "server":
            target = re.search(r"target_cpu=(\d+)", rest)
            wakee = re.search(r"comm=(\S+)", rest)
            if target and wakee and role(wakee.group(1)) == "client":
                if int(target.group(1)) == int(cpu):
                    same += 1
                else:
                    remote += 1
        elif event == "sched_switch":
            # Thread names may hold spaces: each ends where the next field begins.
            prev = re.search(r"prev_comm=(.*?) prev_pid=", rest)
            state = re.search(r"prev_state=(\S+)", rest)
            nxt = re.search(r"next_comm=(.*?) next_pid=", rest)
            if not (prev and state):
                continue
            runnable = state.group(1).startswith("R")
            if role(prev.group(1)) == "server":
                if runnable:
                    preempted += 1
                else:
                    blocked += 1
            if nxt:
                switches[f"{role(prev.group(1))} {'R' if runnable else 'S'} -> {role(nxt.group(1))}"] += 1

    woken = same + remote
    report = collections.OrderedDict(
        seconds=round((last or 0) - (first or 0), 3),
        client_wakeups=woken,
        same_cpu_share=round(same / woken, 3) if woken else None,
        server_preempted=preempted,
        server_blocked=blocked,
        preempted_per_wakeup=round(preempted / woken, 3) if woken else None,
        switches_per_wakeup=round(sum(switches.values()) / woken, 3) if woken else None,
    )
    for k, v in switches.most_common():
        if woken and v / woken >= 0.005:
            report[k] = round(v / woken, 3)
    if args.json:
        import json

        print(json.dumps(report))
    else:
        for k, v in report.items():
            print(f"{k:>22}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

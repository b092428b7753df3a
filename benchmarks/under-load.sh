#!/usr/bin/env bash
# Echo servers side by side under `cport load` (50 connections, 64-byte messages, 2 load
# workers), servers and load sharing CPUS (default 0,1), alternated A B A B for ROUNDS
# rounds of SECS seconds, a fresh server process each run.
#
#   benchmarks/under-load.sh ROUNDS SECS 'label=server command with PORT' ...
#
# PORT (a whole word) in each command is replaced by a free port number; a command may
# start with VAR=value words, set for that server only. For each run it prints the
# load's msgs/s, the server's and the load's CPU per message (utime+stime from /proc over
# the middle of the run, through `peers sample`), and the machine's busy fraction; with
# STAT=1 also the server's system calls, context switches and migrations per message
# (`perf stat`). Then the median rate of each label and its ratio to the first label's.
# LOAD_ARGS: extra `cport load` flags (e.g. --pin).
# Binaries: target/release/{cport,peers} (build them first with
# `cargo build --release -p cport -p peers`), or CPORT=/path and PEERS=/path.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=$1 secs=$2
shift 2
cpus=${CPUS:-0,1}
cport=${CPORT:-target/release/cport}
peers=${PEERS:-target/release/peers}
out=$(mktemp -d)
sp=
trap '[ -n "$sp" ] && kill "$sp" 2>/dev/null; rm -rf "$out"' EXIT
# Below the ephemeral range (32768 and up), where a port can still be held by an earlier
# run's connection.
port=$((20000 + RANDOM % 10000))
for _ in $(seq "$rounds"); do
  for spec in "$@"; do
    name=${spec%%=*} cmd=${spec#*=}
    port=$((port + 1))
    # PORT as a whole word only: COMPLETION_PORT_BACKEND in a command stays as it is.
    # shellcheck disable=SC2001
    cmd=$(sed "s/\bPORT\b/$port/g" <<<"$cmd")
    # shellcheck disable=SC2086
    taskset -c "$cpus" env $cmd >/dev/null 2>&1 &
    sp=$!
    sleep 0.5
    # shellcheck disable=SC2086
    taskset -c "$cpus" "$cport" load --addr "127.0.0.1:$port" --connections 50 --size 64 \
      --duration "$((secs + 1))s" --workers 2 ${LOAD_ARGS:-} --json >"$out/load.json" 2>/dev/null &
    lp=$!
    stp=
    if [ -n "${STAT:-}" ]; then
      (sleep 1; perf stat -x, -o "$out/stat" -e raw_syscalls:sys_enter,context-switches,cpu-migrations \
        -p "$sp" -- sleep 1) &
      stp=$!
    fi
    "$peers" sample --pid "$sp" --pid "$lp" --delay 0.5 --seconds "$((secs - 1))" >"$out/sample.json"
    [ -n "$stp" ] && wait "$stp"
    wait "$lp"
    python3 - "$name" "$out" <<'PY' | tee -a "$out/rows"
import json, os, sys
name, out = sys.argv[1:]
d = json.load(open(f"{out}/load.json"))
s = json.load(open(f"{out}/sample.json"))
r = d["msgs_per_sec"]
srv, load = list(s["cpu_s"].values())
n = r * s["seconds"]
line = f"{name:12s} {r:9.0f} msgs/s  server {srv * 1e6 / n:5.2f} us/msg  load {load * 1e6 / n:5.2f} us/msg  busy {s['busy']:.2f}"
if os.environ.get("STAT"):
    st = {}
    for l in open(f"{out}/stat"):
        f = l.split(",")
        if len(f) > 3 and f[0].isdigit():
            st[f[2]] = int(f[0])
    line += "  syscalls/msg %.2f  cs/msg %.3f  migrations/s %d" % (
        st["raw_syscalls:sys_enter"] / r, st["context-switches"] / r, st["cpu-migrations"])
print(line)
PY
    kill "$sp"
    wait "$sp" 2>/dev/null || true
    sp=
  done
done
python3 - "$out/rows" <<'PY'
import statistics, sys
rates = {}
for l in open(sys.argv[1]):
    f = l.split()
    rates.setdefault(f[0], []).append(float(f[1]))
first = None
for k, v in rates.items():
    m = statistics.median(v)
    first = first or m
    print(f"median {k:12s} {m:9.0f} msgs/s  {m / first:.2f}x {next(iter(rates))}")
PY

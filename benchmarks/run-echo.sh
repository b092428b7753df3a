#!/usr/bin/env bash
# cport load against cport serve on this machine: msgs/s and latency for 64 B and 4 KiB
# messages at 1, 50 and 500 connections, with the server's CPU time per message (read by
# the server from /proc/self/stat and printed in its exit summary).
#
# The server and the load generator each run one worker thread; they are not pinned: on
# this VM a cross-CPU wake-up costs tens of microseconds, and pinning them apart made
# every message pay one (5k msgs/s on one connection instead of 29k). The server's CPU
# time is its own either way (it reads its own /proc/self/stat). Each cell is run ROUNDS
# times, alternating the default server (every echo sent through the port) and an eager
# one (--eager: echo sent directly when the socket takes it), A B A B; the table reports
# medians.
#
#   bash benchmarks/run-echo.sh            # full matrix, 5 s per run, 3 rounds
#   SECONDS_PER_RUN=2 ROUNDS=1 bash benchmarks/run-echo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
ROUNDS=${ROUNDS:-3}
PORT=${PORT:-7300}
cargo build --release -q -p cport
bin=target/release/cport
out=$(mktemp -d)

run_one() { # mode size conns round
  local mode=$1 size=$2 conns=$3 round=$4 extra=()
  [ "$mode" = eager ] && extra=(--eager)
  "$bin" serve --addr 127.0.0.1:$PORT --workers 1 --concurrency 1 "${extra[@]}" \
    2>"$out/srv-$mode-$size-$conns-$round.txt" >/dev/null &  # its summary is on stderr
  local srv=$!
  for _ in $(seq 50); do (echo >/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.05; done
  "$bin" load --addr 127.0.0.1:$PORT --connections "$conns" --size "$size" \
    --duration "${SECONDS_PER_RUN}s" --workers 1 --json >"$out/load-$mode-$size-$conns-$round.json"
  kill -TERM "$srv"
  wait "$srv"
}

for size in 64 4096; do
  for conns in 1 50 500; do
    for round in $(seq "$ROUNDS"); do
      for mode in eager port; do
        run_one "$mode" "$size" "$conns" "$round"
      done
    done
  done
done

stamp=$(date -u +%Y-%m-%d-%H%M)
table=benchmarks/results/echo-$stamp.txt
{
echo "# benchmarks/run-echo.sh SECONDS_PER_RUN=$SECONDS_PER_RUN ROUNDS=$ROUNDS at $(git rev-parse --short HEAD), $(nproc) CPUs, $(uname -r)"
python3 - "$out" "$ROUNDS" <<'PY'
import json, re, statistics, sys, glob, os
out, rounds = sys.argv[1], int(sys.argv[2])
def cell(mode, size, conns):
    rows = []
    for r in range(1, rounds + 1):
        load = json.load(open(f"{out}/load-{mode}-{size}-{conns}-{r}.json"))
        srv = open(f"{out}/srv-{mode}-{size}-{conns}-{r}.txt").read()
        m = re.search(r"([\d.]+) us/msg", srv)
        us = float(m.group(1)) if m else float("nan")
        errs = load["errors"]
        rows.append((load["msgs_per_sec"], load["latency_us"]["p50"], load["latency_us"]["p99"], us, errs))
    med = lambda i: statistics.median(r[i] for r in rows)
    return med(0), med(1), med(2), med(3), sum(r[4] for r in rows)
print("| size | conns | server | msgs/s | p50 us | p99 us | server CPU us/msg | msgs per server core-second | errors |")
print("|---:|---:|---|---:|---:|---:|---:|---:|---:|")
for size in (64, 4096):
    for conns in (1, 50, 500):
        for mode in ("port", "eager"):
            rate, p50, p99, us, errs = cell(mode, size, conns)
            per_core = 1e6 / us if us == us and us > 0 else float("nan")
            print(f"| {size} | {conns} | {mode} | {rate:,.0f} | {p50} | {p99} | {us:.2f} | {per_core:,.0f} | {errs} |")
PY
} | tee "$table"
echo "raw results: $out; table: $table"
if python3 -c 'import matplotlib' 2>/dev/null; then
  python3 benchmarks/plot_echo.py "$table" docs/echo.png && echo "plot: docs/echo.png"
else
  echo "(pip install matplotlib to redraw docs/echo.png)"
fi

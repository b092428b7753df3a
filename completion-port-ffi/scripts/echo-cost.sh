#!/usr/bin/env bash
# What one echoed message costs the C echo server (examples/echo_server.cpp on libiocp)
# and `cport serve`, both with 2 workers and concurrency 2, driven by the peers' blocking
# client (benchmarks/peers: one thread per connection, strict ping-pong, 50 connections,
# 64-byte messages), all pinned to CPUS (default 0,1). For each run: msgs/s, server CPU
# per message (utime + stime from /proc), and, while perf is there, the server's system
# calls and context switches per message over 1.5 s of the run. Servers alternate, a
# fresh process per run, ROUNDS rounds (default 3).
#
# Usage: completion-port-ffi/scripts/echo-cost.sh [rounds] [label=path-to-echo_server ...]
# The C echo server is built from this checkout ("C"); extra labelled binaries (older
# builds, say) run beside it, which is how the comparison in docs/benchmarks.md ("The C
# echo server") was made. For humans: not called by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
shift || true
cpus=${CPUS:-0,1}
cargo build --release -q -p cport -p completion-port-ffi -p benchmarks
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
bin=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$bin"' EXIT
c++ -O2 -std=c++17 -I completion-port-ffi/include/compat completion-port-ffi/examples/echo_server.cpp \
  "$target/release/libiocp.a" -lpthread -ldl -lm -o "$bin/echo_server"
servers=("C=$bin/echo_server" "$@")
perf_ok=0
command -v perf >/dev/null && perf stat -e context-switches -- true >/dev/null 2>&1 && perf_ok=1

# run LABEL COMMAND...: one run; PORT in the command is replaced by a free port.
run() {
  local label=$1
  shift
  local port=$((7100 + RANDOM % 800))
  local cmd=("${@//PORT/$port}")
  taskset -c "$cpus" "${cmd[@]}" >/dev/null 2>&1 &
  pid=$!
  sleep 0.4
  local stats=$bin/stats perfpid=
  if [ "$perf_ok" = 1 ]; then
    (sleep 1.0; perf stat -x, -o "$stats" -e raw_syscalls:sys_enter,context-switches -p "$pid" -- sleep 1.5) &
    perfpid=$!
  fi
  local out
  out=$(taskset -c "$cpus" "$target/release/peers" client --addr "127.0.0.1:$port" --conns 50 --size 64 \
    --seconds 3 --server-pid "$pid" --json)
  [ -n "$perfpid" ] && wait "$perfpid"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  pid=
  python3 - "$label" "$out" "$stats" "$perf_ok" <<'PY'
import json, sys
label, out, stats, perf_ok = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4] == "1"
rate = out["msgs_per_sec"]
line = f"{label:18s} {rate / 1e3:7.1f}k msgs/s  server {out['server_us_per_msg']:5.2f} us/msg"
if perf_ok:
    counts = {}
    for row in open(stats):
        f = row.strip().split(",")
        if len(f) > 2 and f[0].isdigit():
            counts[f[2]] = int(f[0])
    n = rate * 1.5
    line += f"  syscalls/msg {counts.get('raw_syscalls:sys_enter', 0) / n:5.2f}"
    line += f"  switches/msg {counts.get('context-switches', 0) / n:5.3f}"
print(line)
PY
}

echo "== $(nproc) CPUs, kernel $(uname -r), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
for _ in $(seq "$rounds"); do
  run serve "$target/release/cport" serve --addr 127.0.0.1:PORT --workers 2 --concurrency 2
  for s in "${servers[@]}"; do
    run "${s%%=*}" "${s#*=}" PORT 0
  done
done

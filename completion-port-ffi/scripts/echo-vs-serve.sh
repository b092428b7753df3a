#!/usr/bin/env bash
# The C echo server (examples/echo_server.cpp on libiocp) against `cport serve`, both with
# 2 workers and concurrency 2, each driven by `cport load` (50 connections, 64-byte
# messages, 4 s), alternated for ROUNDS rounds (default 3): A B A B, a fresh server process
# each run, the servers pinned to CPUS (default 0,1) with taskset (SERVE_ARGS: extra flags for
# cport serve, e.g. --eager). Prints msgs/s per run
# and the ratio of the medians. Figures from a shared machine are noisy: compare medians.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
cpus=${CPUS:-0,1}
cargo build --release -q -p cport -p completion-port-ffi
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
bin=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$bin"' EXIT
c++ -O2 -std=c++17 -I completion-port-ffi/include/compat completion-port-ffi/examples/echo_server.cpp \
  "$target/release/libiocp.a" -lpthread -ldl -lm -o "$bin/echo_server"
load() {
  "$target/release/cport" load --addr "127.0.0.1:$1" --connections 50 --duration 4s --workers 2 --json |
    python3 -c 'import json,sys; print(round(json.load(sys.stdin)["msgs_per_sec"]))'
}
serve=() c=()
for _ in $(seq "$rounds"); do
  # shellcheck disable=SC2086
  taskset -c "$cpus" "$target/release/cport" serve --addr 127.0.0.1:7101 --workers 2 --concurrency 2 ${SERVE_ARGS:-} 2>/dev/null & pid=$!
  sleep 0.5
  serve+=("$(load 7101)")
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  taskset -c "$cpus" "$bin/echo_server" 7102 0 >/dev/null & pid=$!
  sleep 0.5
  c+=("$(load 7102)")
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
done
echo "cport serve msgs/s: ${serve[*]}"
echo "C echo (libiocp) msgs/s: ${c[*]}"
python3 -c 'import statistics,sys; s=[int(x) for x in sys.argv[1].split()]; c=[int(x) for x in sys.argv[2].split()]; print("ratio of medians (C / cport serve): %.2f" % (statistics.median(c)/statistics.median(s)))' "${serve[*]}" "${c[*]}"

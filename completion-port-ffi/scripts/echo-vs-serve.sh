#!/usr/bin/env bash
# The C echo server (examples/echo_server.cpp on libiocp) against `cport serve`, both with
# 2 workers and concurrency 2, each driven by `cport load` (50 connections, 64-byte
# messages, 4 s), alternated for ROUNDS rounds (default 3): A B A B, a fresh server process
# each run, servers and load on CPUS (default 0,1) (SERVE_ARGS: extra flags for cport
# serve, e.g. --eager). The runs are benchmarks/under-load.sh's: it prints msgs/s and the
# CPU per message of the server and the load for every run, then the median rate of each
# server and the C server's ratio to `cport serve`. Figures from a shared machine are
# noisy: compare medians.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
cargo build --release -q -p cport -p completion-port-ffi -p peers
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
c++ -O2 -std=c++17 -I completion-port-ffi/include/compat completion-port-ffi/examples/echo_server.cpp \
  "$target/release/libiocp.a" -lpthread -ldl -lm -o "$bin/echo_server"
# 3: under-load.sh runs the load for one second more than this and samples the middle.
CPORT="$target/release/cport" PEERS="$target/release/peers" benchmarks/under-load.sh "$rounds" 3 \
  "cport-serve=$target/release/cport serve --addr 127.0.0.1:PORT --workers 2 --concurrency 2 ${SERVE_ARGS:-}" \
  "c-echo=$bin/echo_server PORT 0"

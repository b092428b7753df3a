#!/usr/bin/env bash
# Two or more cport builds A/B, with server and client on separate CPUs: `cport serve` with
# one worker pinned to CPU 0, the peers' blocking client (50 connections, 64 B, 4 s) pinned
# to CPU 1, builds alternated A B A B for ROUNDS rounds, a fresh server each run. Prints
# msgs/s and the server's CPU per message for every run. Separated, the scheduler's
# wake-up patterns (docs/benchmarks.md, "Why the co-located cells favour mio") stay out of
# the figures, which then move with the server's own cost per message.
#
#   benchmarks/separated-ab.sh ROUNDS label=path/to/cport ...
#
# Environment: BACKEND (epoll or uring, default epoll), ARGS (extra `cport serve` flags,
# default --eager; ARGS=" " for none), PEERS (default target/release/peers).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=$1
shift
peers=${PEERS:-target/release/peers}
sp=
trap '[ -n "$sp" ] && kill "$sp" 2>/dev/null' EXIT
for _ in $(seq "$rounds"); do
  for spec in "$@"; do
    name=${spec%%=*} bin=${spec#*=}
    port=$((20000 + RANDOM % 10000)) # below the ephemeral range (32768 and up)
    # shellcheck disable=SC2086
    COMPLETION_PORT_BACKEND=${BACKEND:-epoll} taskset -c 0 "$bin" serve --addr "127.0.0.1:$port" \
      --workers 1 --concurrency 1 ${ARGS:---eager} >/dev/null 2>&1 &
    sp=$!
    sleep 0.4
    taskset -c 1 "$peers" client --addr "127.0.0.1:$port" --conns 50 --size 64 --seconds 4 \
      --server-pid "$sp" --json |
      python3 -c "import json,sys; d=json.load(sys.stdin); print('%-12s %9.0f msgs/s  server %.3f us/msg' % (sys.argv[1], d['msgs_per_sec'], d['server_us_per_msg']))" "$name"
    kill "$sp"
    wait "$sp" 2>/dev/null || true
    sp=
  done
done

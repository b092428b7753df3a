#!/usr/bin/env bash
# Where the wake-ups go (docs/benchmarks.md, "Why the co-located cells favour mio"): each
# server with ONE thread, the blocking ping-pong client (64 B x 50 connections), first
# sharing both CPUs (taskset 0,1 for both: the co-located cells of run-peers.sh), then
# separated (server on CPU 0, client on CPU 1). Co-located runs also record 0.3 s of
# `perf sched` and report, through benchmarks/sched-wakeups.py, the share of the server's
# wake-ups of its clients that landed on the server's own CPU and how often the server was
# preempted per wake-up. Servers alternate; a fresh server per run.
#
#   benchmarks/run-sched.sh [ROUNDS]      # default 2 rounds, about 2 minutes
#
# Needs: release builds of cport and peers (cargo build --release -p cport -p benchmarks),
# perf (linux-perf), python3, taskset. Environment: CPORT_BIN, PEERS_BIN, SECONDS_PER_RUN [4],
# SERVERS [cport-uring cport-uring-eager cport-epoll cport-epoll-eager mio monoio] (the
# -eager variants run `cport serve --eager`).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-2}
CPORT_BIN=${CPORT_BIN:-target/release/cport}
PEERS_BIN=${PEERS_BIN:-target/release/peers}
SECS=${SECONDS_PER_RUN:-4}
SERVERS=${SERVERS:-cport-uring cport-uring-eager cport-epoll cport-epoll-eager mio monoio}
for tool in perf python3 taskset; do
  command -v $tool >/dev/null || { echo "run-sched.sh: $tool is needed" >&2; exit 1; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
port=7600

# start NAME CPUS: starts server NAME pinned to CPUS on $port; sets SP and COMM.
start() {
  case $1 in
    cport-uring|cport-epoll|cport-uring-eager|cport-epoll-eager)
      local backend=${1#cport-} flags=()
      [[ $backend == *-eager ]] && flags=(--eager)
      COMPLETION_PORT_BACKEND=${backend%-eager} taskset -c "$2" "$CPORT_BIN" serve --addr 127.0.0.1:$port --workers 1 \
        "${flags[@]}" >/dev/null 2>&1 & COMM=cport-serve ;;
    mio) taskset -c "$2" "$PEERS_BIN" mio --port $port --threads 1 >/dev/null 2>&1 & COMM=mio- ;;
    monoio) taskset -c "$2" "$PEERS_BIN" monoio --port $port --threads 1 >/dev/null 2>&1 & COMM=monoio ;;
    *) echo "run-sched.sh: unknown server $1" >&2; exit 2 ;;
  esac
  SP=$!
  for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && return; sleep 0.05; done
  echo "run-sched.sh: $1 did not start" >&2; exit 1
}

printf '%-12s %-10s %9s %8s %8s %9s %10s\n' server placement msgs/s srv_us cl_us same_cpu preempt/wk
for r in $(seq "$ROUNDS"); do
  for placement in co-located separated; do
    for s in $SERVERS; do
      port=$((port + 1))
      if [ $placement = co-located ]; then scpu=0,1; ccpu=0,1; else scpu=0; ccpu=1; fi
      start $s $scpu
      taskset -c $ccpu "$PEERS_BIN" client --addr 127.0.0.1:$port --conns 50 --size 64 --seconds "$SECS" \
        --server-pid $SP --json >"$tmp/client.json" &
      CL=$!
      share=- ; pre=-
      if [ $placement = co-located ]; then
        sleep 1.5
        perf sched record -o "$tmp/sched.data" -- sleep 0.3 >/dev/null 2>&1 || true
      fi
      wait $CL
      kill $SP; wait $SP 2>/dev/null || true
      if [ $placement = co-located ] && [ -s "$tmp/sched.data" ]; then
        read -r share pre < <(benchmarks/sched-wakeups.py "$tmp/sched.data" --server $COMM --json |
          python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["same_cpu_share"], d["preempted_per_wakeup"])')
      fi
      python3 - "$tmp/client.json" "$s" "$placement" "$share" "$pre" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(f"{sys.argv[2]:<12} {sys.argv[3]:<10} {d['msgs_per_sec']:>9.0f} {d['server_us_per_msg']:>8.2f} "
      f"{d['client_us_per_msg']:>8.2f} {sys.argv[4]:>9} {sys.argv[5]:>10}")
PY
    done
  done
done

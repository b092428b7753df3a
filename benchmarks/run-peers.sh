#!/usr/bin/env bash
# Echo servers side by side (issue 9): cport serve against tokio, monoio, compio, mio and
# std thread-per-connection peers (benchmarks/peers), all driven by the same blocking
# ping-pong client (one thread per connection, write N bytes, read N back, clock started
# after every connection is up).
#
# Matrix: {64 B x 50 conns, 64 B x 500 conns, 4 KiB x 50 conns} x servers, every server with
# THREADS worker threads. Within a cell the servers alternate (A B C ... A B C ...), each
# run on a fresh server process. Per run the client reports msgs/s over the window, the
# server's CPU time (utime + stime from /proc/PID/stat) per message, and the busy fraction
# of the CPUs (/proc/stat). One extra cell runs `cport load` against the mio server next
# to the blocking client (alternated), and reports both rates and each client's CPU/msg.
# The report (medians over the runs, ratios to the best peer's rate and to the lowest
# peer CPU/msg) goes to benchmarks/results/peers-<UTC stamp>.md, every run to
# peers-<stamp>.jsonl next to it, and a plot to $PLOT (docs/peers.png).
#
#   benchmarks/run-peers.sh                       # full matrix: 5 runs of 8 s per cell (~17 min)
#   benchmarks/run-peers.sh --runs 1 --seconds 1  # smoke
#   CPORT_BIN=/path/to/new/cport benchmarks/run-peers.sh
#
# Flags: --runs N, --seconds S, --servers a,b,... (names: cport tokio monoio compio mio
# threads), --cells 64x50,64x500,4096x50, --no-load (skip the cport load cell),
# --no-build, --no-plot. Server names beyond the peers: cport-ports (cport serve --ports
# THREADS, one completion port per worker), cport-eager (serve --eager), cport-epoll
# (the epoll backend), cport-defer (serve --defer: a worker's submissions go to the
# kernel with its next wait), cport-bN (serve --batch N), and their combinations
# (cport-ports-eager, cport-ports-defer-b256, ...). Environment
# (defaults in brackets):
#   CPORT_BIN [target/release/cport]   the cport binary whose `serve` and `load` are measured
#   PEERS_BIN [target/release/peers]   the peer servers and the blocking client
#   (setting either one skips `cargo build` for it; --no-build skips both)
#   CPORT_SERVE_ARGS []                extra flags for `cport serve`
#   THREADS [2]                        worker threads of every server (and of cport load)
#   SERVER_CPUS [0,1] CLIENT_CPUS [0,1]  taskset CPU lists of the server and the clients
#   BUSY_CPUS [SERVER_CPUS+CLIENT_CPUS] CPUs whose busy fraction is reported
#   WARMUP [0.5]                       seconds of ping-pong before each window
#   PORT_BASE [7400]                   ports PORT_BASE.. are used in turn
#   RESULTS [benchmarks/results]  PLOT [docs/peers.png]
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-5}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-8}
SERVERS=${SERVERS:-cport,tokio,monoio,compio,mio,threads}
CELLS=${CELLS:-64x50,64x500,4096x50}
LOAD_CELL=${LOAD_CELL:-1}
BUILD=1
DO_PLOT=1
while [ $# -gt 0 ]; do
  case $1 in
    --runs) RUNS=$2; shift 2 ;;
    --seconds) SECONDS_PER_RUN=$2; shift 2 ;;
    --servers) SERVERS=$2; shift 2 ;;
    --cells) CELLS=$2; shift 2 ;;
    --no-load) LOAD_CELL=0; shift ;;
    --no-build) BUILD=0; shift ;;
    --no-plot) DO_PLOT=0; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "run-peers.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

THREADS=${THREADS:-2}
SERVER_CPUS=${SERVER_CPUS:-0,1}
CLIENT_CPUS=${CLIENT_CPUS:-0,1}
WARMUP=${WARMUP:-0.5}
PORT_BASE=${PORT_BASE:-7400}
RESULTS=${RESULTS:-benchmarks/results}
PLOT=${PLOT:-docs/peers.png}
CPORT_SERVE_ARGS=${CPORT_SERVE_ARGS:-}

command -v python3 >/dev/null || { echo "run-peers.sh: python3 is needed (to record and report)" >&2; exit 1; }
command -v taskset >/dev/null || { echo "run-peers.sh: taskset (util-linux) is needed" >&2; exit 1; }

# "0-3,8" -> "0,1,2,3,8" (the client and `peers sample` take plain lists).
expand_cpus() {
  local out=() part
  IFS=, read -ra parts <<<"$1"
  for part in "${parts[@]}"; do
    if [[ $part == *-* ]]; then out+=($(seq "${part%-*}" "${part#*-}")); else out+=("$part"); fi
  done
  printf '%s\n' "${out[@]}" | sort -nu | paste -sd, -
}
BUSY_CPUS=$(expand_cpus "${BUSY_CPUS:-$SERVER_CPUS,$CLIENT_CPUS}")

to_build=()
if [ -z "${CPORT_BIN:-}" ]; then to_build+=(-p cport); CPORT_BIN=target/release/cport; fi
if [ -z "${PEERS_BIN:-}" ]; then to_build+=(-p peers); PEERS_BIN=target/release/peers; fi
if [ "$BUILD" = 1 ] && [ ${#to_build[@]} -gt 0 ]; then
  cargo build --release -q "${to_build[@]}"
fi
for b in "$CPORT_BIN" "$PEERS_BIN"; do
  [ -x "$b" ] || { echo "run-peers.sh: $b is not an executable (build it or set CPORT_BIN / PEERS_BIN)" >&2; exit 1; }
done

raw=$(mktemp -d /tmp/run-peers.XXXXXX)
stamp=$(date -u +%Y-%m-%d-%H%M)
mkdir -p "$RESULTS"
report=$RESULTS/peers-$stamp.md
jsonl=$RESULTS/peers-$stamp.jsonl
srv_pid=
cleanup() { [ -n "$srv_pid" ] && kill -KILL "$srv_pid" 2>/dev/null; true; }
trap cleanup EXIT

port_n=0
next_port() { port=$((PORT_BASE + port_n % 500)); port_n=$((port_n + 1)); }

# Starts server $1 on a fresh port, pinned to SERVER_CPUS; sets srv_pid and port.
start_server() {
  local name=$1 log=$2
  next_port
  case $name in
    cport|cport-*)
      # Name parts after "cport": -ports (one completion port per worker thread), -epoll
      # (the epoll backend), -eager (serve --eager), -defer (serve --defer), -bN (serve
      # --batch N), in any combination.
      local layout=() backend=${COMPLETION_PORT_BACKEND:-auto} part
      for part in $(tr '-' ' ' <<<"${name#cport}"); do
        case $part in
          ports) layout+=(--ports "$THREADS") ;;
          epoll) backend=epoll ;;
          eager) layout+=(--eager) ;;
          defer) layout+=(--defer) ;;
          b[0-9]*) layout+=(--batch "${part#b}") ;;
          *) echo "run-peers.sh: unknown cport variant $name" >&2; exit 2 ;;
        esac
      done
      # shellcheck disable=SC2086
      COMPLETION_PORT_BACKEND=$backend taskset -c "$SERVER_CPUS" "$CPORT_BIN" serve --addr "127.0.0.1:$port" \
        --workers "$THREADS" "${layout[@]}" $CPORT_SERVE_ARGS >"$log" 2>&1 & ;;
    tokio|monoio|compio|mio|threads)
      taskset -c "$SERVER_CPUS" "$PEERS_BIN" "$name" --port "$port" --threads "$THREADS" >"$log" 2>&1 & ;;
    *) echo "run-peers.sh: unknown server $name" >&2; exit 2 ;;
  esac
  srv_pid=$!
  for _ in $(seq 200); do
    grep -q "listening on" "$log" && return 0
    kill -0 "$srv_pid" 2>/dev/null || break
    sleep 0.05
  done
  echo "run-peers.sh: $name did not start:" >&2; cat "$log" >&2; exit 1
}

stop_server() {
  kill -TERM "$srv_pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$srv_pid" 2>/dev/null || break; sleep 0.05; done
  kill -KILL "$srv_pid" 2>/dev/null || true
  wait "$srv_pid" 2>/dev/null || true
  srv_pid=
}

# One blocking-client run against the running server; its JSON goes to $1.
blocking_client() {
  local size=$1 conns=$2 out=$3
  taskset -c "$CLIENT_CPUS" "$PEERS_BIN" client --addr "127.0.0.1:$port" --conns "$conns" --size "$size" \
    --seconds "$SECONDS_PER_RUN" --warmup "$WARMUP" --server-pid "$srv_pid" --cpus "$BUSY_CPUS" --json >"$out" \
    || echo "run-peers.sh: client reported errors ($out)" >&2
}

# Adds the run's metadata to the client's JSON line.
record() { # file server size conns run client group(matrix|load)
  python3 - "$@" >>"$jsonl" <<'PY'
import json, sys
path, server, size, conns, run, client, group = sys.argv[1:]
try:
    d = json.load(open(path))
except Exception as e:  # the client died before printing
    d = {"errors": 1, "first_error": f"no report: {e}"}
d.update(server=server, cell=f"{size}x{conns}", size=int(size), conns=int(conns), run=int(run), client=client, group=group)
print(json.dumps(d))
PY
}

IFS=, read -ra servers <<<"$SERVERS"
IFS=, read -ra cells <<<"$CELLS"
runs_total=$(( ${#cells[@]} * ${#servers[@]} * RUNS + (LOAD_CELL == 1 ? 3 * RUNS : 0) ))
echo "run-peers.sh: $runs_total runs of ${SECONDS_PER_RUN}s (+${WARMUP}s warm-up); server on CPUs $SERVER_CPUS, client on $CLIENT_CPUS; raw output in $raw"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
t_start=$(date +%s)
: >"$jsonl"
n=0
for cell in "${cells[@]}"; do
  size=${cell%x*}; conns=${cell#*x}
  for run in $(seq "$RUNS"); do
    for server in "${servers[@]}"; do
      n=$((n + 1))
      f=$raw/$cell-$server-$run
      start_server "$server" "$f.log"
      blocking_client "$size" "$conns" "$f.json"
      stop_server
      record "$f.json" "$server" "$size" "$conns" "$run" blocking matrix
      printf '[%d/%d] %s %s run %s: %s\n' "$n" "$runs_total" "$cell" "$server" "$run" \
        "$(python3 benchmarks/peers_report.py --line "$f.json")"
    done
  done
done

if [ "$LOAD_CELL" = 1 ]; then
  # cport load against the mio server, next to the blocking client: 64 B x 50, alternated.
  # cport-load: one port shared by the workers; cport-load-ports: a port per worker.
  for run in $(seq "$RUNS"); do
    for client in blocking cport-load cport-load-ports; do
      n=$((n + 1))
      f=$raw/load-$client-$run
      start_server mio "$f.log"
      if [ "$client" = blocking ]; then
        blocking_client 64 50 "$f.json"
      else
        # cport load runs WARMUP + window + 0.5 s; its CPU and the server's are sampled over
        # the window (after its connections are up and the warm-up has passed).
        dur=$(python3 -c "print($WARMUP + $SECONDS_PER_RUN + 0.5)")
        ports=1
        [ "$client" = cport-load-ports ] && ports=$THREADS
        taskset -c "$CLIENT_CPUS" "$CPORT_BIN" load --addr "127.0.0.1:$port" --connections 50 --size 64 \
          --duration "${dur}s" --workers "$THREADS" --ports "$ports" --json >"$f.load.json" 2>"$f.load.err" &
        load_pid=$!
        taskset -c "$CLIENT_CPUS" "$PEERS_BIN" sample --pid "$srv_pid" --pid "$load_pid" --delay "$WARMUP" \
          --seconds "$SECONDS_PER_RUN" --cpus "$BUSY_CPUS" >"$f.sample.json" || true
        wait "$load_pid" || echo "run-peers.sh: cport load reported errors ($f.load.err)" >&2
        python3 - "$f.load.json" "$f.sample.json" "$srv_pid" "$load_pid" >"$f.json" <<'PY' || true
import json, sys
load, sample = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
srv, cl = sample["cpu_s"][sys.argv[3]], sample["cpu_s"][sys.argv[4]]
rate = load["msgs_per_sec"]
msgs = rate * sample["seconds"]
print(json.dumps(dict(msgs_per_sec=rate, server_us_per_msg=srv * 1e6 / msgs, client_us_per_msg=cl * 1e6 / msgs,
                      server_cpu_s=srv, client_cpu_s=cl, busy=sample["busy"], busy_cpus=sample.get("busy_cpus"),
                      errors=load["errors"], seconds=sample["seconds"], cport_load=load)))
PY
      fi
      stop_server
      record "$f.json" mio 64 50 "$run" "$client" load
      printf '[%d/%d] load cell, %s run %s: %s\n' "$n" "$runs_total" "$client" "$run" \
        "$(python3 benchmarks/peers_report.py --line "$f.json")"
    done
  done
fi
t_end=$(date +%s)
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# Every version of crate $1 in Cargo.lock ("0.5.10/0.6.1" when several are locked).
lockv() { awk -v n="$1" '$0 == "name = \"" n "\"" { getline; gsub(/version = |"/, ""); print }' Cargo.lock | paste -sd/ -; }
{
  echo "# Echo against peers (benchmarks/run-peers.sh)"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'), matrix took $((t_end - t_start)) s"
  echo "- command: RUNS=$RUNS SECONDS_PER_RUN=$SECONDS_PER_RUN WARMUP=$WARMUP THREADS=$THREADS SERVER_CPUS=$SERVER_CPUS CLIENT_CPUS=$CLIENT_CPUS SERVERS=$SERVERS CELLS=$CELLS benchmarks/run-peers.sh"
  echo "- machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), nproc $(nproc), kernel $(uname -r)"
  echo "- load average (1, 5, 15 min) before: $load_before; after: $load_after (the matrix's own threads count in it)"
  if commit=$(git rev-parse --short HEAD 2>/dev/null); then
    echo "- commit: $commit$(git diff --quiet HEAD -- . 2>/dev/null || echo ' (working tree modified)')"
  else
    echo "- commit: unknown (no git repository here)"
  fi
  echo "- $(rustc --version 2>/dev/null || echo 'rustc: not on PATH')"
  echo "- crates (Cargo.lock): tokio $(lockv tokio), monoio $(lockv monoio), compio $(lockv compio), mio $(lockv mio), socket2 $(lockv socket2), io-uring $(lockv io-uring)"
  echo "- binaries: cport = $CPORT_BIN ($(sha256sum "$CPORT_BIN" | cut -c1-12)), peers = $PEERS_BIN ($(sha256sum "$PEERS_BIN" | cut -c1-12))"
  echo
  python3 benchmarks/peers_report.py "$jsonl"
} >"$report"
cat "$report"
echo "report: $report; every run: $jsonl; raw output: $raw"
if [ "$DO_PLOT" = 1 ]; then
  python3 benchmarks/peers_report.py "$jsonl" --plot "$PLOT" || echo "(no plot: see the message above)"
fi

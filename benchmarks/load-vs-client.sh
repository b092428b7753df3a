#!/usr/bin/env bash
# `cport load` against the blocking client (`peers client`), each driving mio's echo
# server (`peers mio`, 2 threads): 50 connections, 64-byte messages, SECS seconds, server
# and client sharing CPUS (default 0,1), alternated A B A B for ROUNDS rounds, a fresh
# server each run. Issue 9's measure of the load generator: it should drive the server at
# least as hard as the blocking client.
#
#   benchmarks/load-vs-client.sh ROUNDS SECS 'label=cport load flags' ...
#
# e.g. benchmarks/load-vs-client.sh 5 4 'load=' 'pin=--pin' 'affine=--affine'.
# The label `client-affine` (no flags) runs the blocking client with `--affine` (each
# thread pinned to the CPU its replies arrive on).
# Prints each run's rate and the client's and the server's CPU time per message, then
# each label's medians and its rate's ratio to the blocking client's.
# Binaries: target/release/{cport,peers} (CPORT=..., PEERS=... to override).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=$1 secs=$2
shift 2
cpus=${CPUS:-0,1}
cport=${CPORT:-target/release/cport}
peers=${PEERS:-target/release/peers}
out=$(mktemp)
sp=
trap '[ -n "$sp" ] && kill "$sp" 2>/dev/null; rm -f "$out" "$out.load" "$out.sample"' EXIT
# Below the ephemeral range (32768 and up), where a port can still be held by an earlier
# run's connection.
port=$((20000 + RANDOM % 10000))
# The blocking client's report: rate, its CPU and the server's per message.
client_line() {
  python3 -c 'import json,sys; d=json.load(sys.stdin); print(round(d["msgs_per_sec"]), round(d["client_us_per_msg"], 2), round(d["server_us_per_msg"], 2))'
}
for _ in $(seq "$rounds"); do
  for spec in "client=" "$@"; do
    name=${spec%%=*} flags=${spec#*=}
    port=$((port + 1))
    taskset -c "$cpus" "$peers" mio --port "$port" --threads 2 >/dev/null 2>&1 &
    sp=$!
    sleep 0.3
    if [ "$name" = client ] || [ "$name" = client-affine ]; then
      extra=
      [ "$name" = client-affine ] && extra=--affine
      # shellcheck disable=SC2086
      r=$(taskset -c "$cpus" "$peers" client --addr "127.0.0.1:$port" --conns 50 --size 64 \
        --seconds "$secs" --server-pid "$sp" $extra --json | client_line)
    else
      # The load runs a second longer than the window `peers sample` measures, in its middle.
      # shellcheck disable=SC2086
      taskset -c "$cpus" "$cport" load --addr "127.0.0.1:$port" --connections 50 --size 64 \
        --duration "$((secs + 1))s" --workers 2 $flags --json >"$out.load" 2>/dev/null &
      lp=$!
      "$peers" sample --pid "$lp" --pid "$sp" --delay 0.5 --seconds "$((secs - 1))" >"$out.sample"
      wait "$lp"
      r=$(python3 - "$out.load" "$out.sample" "$lp" "$sp" <<'PY'
import json, sys
load, sample = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
rate = load["msgs_per_sec"]
cpu = sample["cpu_s"]
n = rate * sample["seconds"]
print(round(rate), round(cpu[sys.argv[3]] * 1e6 / n, 2), round(cpu[sys.argv[4]] * 1e6 / n, 2))
PY
)
    fi
    kill "$sp"
    wait "$sp" 2>/dev/null || true
    sp=
    echo "$name $r" | tee -a "$out"
  done
done
python3 - "$out" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    name, r, c, s = line.split()
    runs.setdefault(name, []).append((float(r), float(c), float(s)))
client = statistics.median(r for r, _, _ in runs["client"])
for name, v in runs.items():
    m = statistics.median(r for r, _, _ in v)
    c = statistics.median(c for _, c, _ in v)
    s = statistics.median(s for _, _, s in v)
    print(f"median {name:13s} {m:9.0f} msgs/s  {m / client:.2f}x client  client {c:.2f} us/msg  "
          f"server {s:.2f} us/msg  runs {[round(r / 1000) for r, _, _ in v]}k")
PY

#!/usr/bin/env bash
# `cport load` against the blocking client (`peers client`), each driving mio's echo
# server (`peers mio`, 2 threads): 50 connections, 64-byte messages, SECS seconds, server
# and client sharing CPUS (default 0,1), alternated A B A B for ROUNDS rounds, a fresh
# server each run. Issue 9's measure of the load generator: it should drive the server at
# least as hard as the blocking client.
#
#   benchmarks/load-vs-client.sh ROUNDS SECS 'label=cport load flags' ...
#
# e.g. benchmarks/load-vs-client.sh 5 4 'load=' 'pin=--pin' 'pin-p2=--pin --ports 2'.
# Prints each run's rate, then each label's median and its ratio to the blocking client's.
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
trap '[ -n "$sp" ] && kill "$sp" 2>/dev/null; rm -f "$out"' EXIT
# Below the ephemeral range (32768 and up), where a port can still be held by an earlier
# run's connection.
port=$((20000 + RANDOM % 10000))
rate() { python3 -c 'import json,sys; print(round(json.load(sys.stdin)["msgs_per_sec"]))'; }
for _ in $(seq "$rounds"); do
  for spec in "client=" "$@"; do
    name=${spec%%=*} flags=${spec#*=}
    port=$((port + 1))
    taskset -c "$cpus" "$peers" mio --port "$port" --threads 2 >/dev/null 2>&1 &
    sp=$!
    sleep 0.3
    if [ "$name" = client ]; then
      r=$(taskset -c "$cpus" "$peers" client --addr "127.0.0.1:$port" --conns 50 --size 64 \
        --seconds "$secs" --server-pid "$sp" --json | rate)
    else
      # shellcheck disable=SC2086
      r=$(taskset -c "$cpus" "$cport" load --addr "127.0.0.1:$port" --connections 50 --size 64 \
        --duration "${secs}s" --workers 2 $flags --json 2>/dev/null | rate)
    fi
    kill "$sp"
    wait "$sp" 2>/dev/null || true
    sp=
    echo "$name $r" | tee -a "$out"
  done
done
python3 - "$out" <<'PY'
import statistics, sys
rates = {}
for line in open(sys.argv[1]):
    name, r = line.split()
    rates.setdefault(name, []).append(float(r))
client = statistics.median(rates["client"])
for name, v in rates.items():
    m = statistics.median(v)
    print(f"median {name:10s} {m:9.0f} msgs/s  {m / client:.2f}x client  runs {[round(x / 1000) for x in v]}k")
PY

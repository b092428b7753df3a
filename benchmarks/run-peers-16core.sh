#!/usr/bin/env bash
# The peers matrix (benchmarks/run-peers.sh) on a bigger machine (the 16-core device
# machine that some sessions are lent), with prebuilt binaries: no cargo runs there.
# The server is pinned to 4 CPUs with 4 worker threads, the clients to the other CPUs,
# and the busy fraction is that of the server's CPUs.
#
# Two steps:
#
# 1. Here (where cargo is), build and pack stripped binaries into target/peers-bin/
#    (about 4 MB; an ignored path, so it must be carried to the device machine):
#
#        benchmarks/run-peers-16core.sh --pack
#
# 2. There, in one call (the `run` tool, carrying target/peers-bin; an estimated 6-7 minutes with
#    the defaults, 3 runs of 5 s per cell):
#
#        benchmarks/run-peers-16core.sh
#
#    run as: run(command="benchmarks/run-peers-16core.sh", carry=["target/peers-bin"],
#    timeout_s=600). Results (the Markdown report and every run as JSON lines) go to $OUT
#    when it is set (the device machine's folder that comes back), else to
#    benchmarks/results/. No plot there (no matplotlib); draw it here afterwards with
#    `python3 benchmarks/peers_report.py <jsonl> --plot docs/peers-16core.png`.
#
# Environment: anything run-peers.sh reads (RUNS, SECONDS_PER_RUN, CELLS, SERVERS, ...);
# defaults here: RUNS=3, SECONDS_PER_RUN=5, THREADS=4, SERVER_CPUS=0-3, CLIENT_CPUS=4-(nproc-1),
# BUSY_CPUS=SERVER_CPUS, SERVERS=cport,cport-eager,cport-ports-eager,cport-epoll-ports-eager,
# monoio,compio,mio (cport serve as shipped, with --eager on the shared port, and with
# --eager on a port per worker on io_uring and on epoll; tokio and thread-per-connection
# left out to stay within one call). BIN_DIR [target/peers-bin] holds `cport` and `peers`.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN_DIR=${BIN_DIR:-target/peers-bin}

if [ "${1:-}" = --pack ]; then
  cargo build --release -q -p cport -p peers
  mkdir -p "$BIN_DIR"
  for b in cport peers; do
    strip -o "$BIN_DIR/$b" "target/release/$b" 2>/dev/null || cp "target/release/$b" "$BIN_DIR/$b"
  done
  ls -la "$BIN_DIR"
  exit 0
fi

cpus=$(nproc)
if [ "$cpus" -lt 6 ]; then
  echo "run-peers-16core.sh: $cpus CPUs; this script is for a machine with many (use run-peers.sh here)" >&2
  exit 1
fi
for b in cport peers; do
  [ -x "$BIN_DIR/$b" ] || { echo "run-peers-16core.sh: $BIN_DIR/$b is missing: run '$0 --pack' where cargo is, and carry $BIN_DIR" >&2; exit 1; }
done
export CPORT_BIN=$BIN_DIR/cport PEERS_BIN=$BIN_DIR/peers
export RUNS=${RUNS:-3} SECONDS_PER_RUN=${SECONDS_PER_RUN:-5} THREADS=${THREADS:-4}
export SERVERS=${SERVERS:-cport,cport-eager,cport-ports-eager,cport-epoll-ports-eager,monoio,compio,mio}
export SERVER_CPUS=${SERVER_CPUS:-0-3} CLIENT_CPUS=${CLIENT_CPUS:-4-$((cpus - 1))}
export BUSY_CPUS=${BUSY_CPUS:-$SERVER_CPUS}
export RESULTS=${RESULTS:-${OUT:-benchmarks/results}}
export PEERS_NO_PIP=1
mkdir -p "$RESULTS"
{
  echo "== lscpu"; lscpu
  echo "== free -m"; free -m
} >"$RESULTS/machine-$(date -u +%Y-%m-%d-%H%M).txt" 2>&1 || true
exec bash benchmarks/run-peers.sh --no-build --no-plot

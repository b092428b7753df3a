#!/usr/bin/env bash
# The comparative I/O benchmarks of issue 4, recorded in benchmarks/results/:
#   randread  4 KiB random reads from a page-cached 1 GiB file, depth 1 and 32:
#             completion-port vs fio (io_uring engine), same process run, alternating
#   pingpong  64-byte TCP ping-pong on 127.0.0.1: completion-port vs raw io_uring
# For humans: not called by .ci/run (timings on shared CI machines mean little).
#
# Usage: benchmarks/run-io.sh
# Environment (all optional):
#   BENCH_SECONDS  seconds per measurement (default 5)
#   BENCH_ROUNDS   rounds per variant, medians over these (default 3)
#   BENCH_FILE     the 1 GiB test file (default /tmp/cport-bench-1g; created once)
# Output goes to the terminal and to benchmarks/results/io-<UTC date and time>.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${BENCH_SECONDS:-5}"
rounds="${BENCH_ROUNDS:-3}"
file="${BENCH_FILE:-/tmp/cport-bench-1g}"

if ! command -v fio >/dev/null 2>&1; then
    sudo=""
    [[ "$(id -u)" -ne 0 ]] && sudo="sudo"
    echo "== installing fio"
    $sudo apt-get install -y fio || { $sudo apt-get update && $sudo apt-get install -y fio; }
fi

cargo build --release -p benchmarks

mkdir -p benchmarks/results
out="benchmarks/results/io-$(date -u +%Y-%m-%d-%H%M).txt"
{
    echo "== date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    if [[ -n "$(git status --porcelain -- completion-port 2>/dev/null)" ]]; then
        commit="$commit (completion-port/ has uncommitted changes: $(git status --porcelain -- completion-port | wc -l) files)"
    fi
    echo "== commit: $commit"
    echo "== machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p' | head -1), kernel $(uname -r)"
    echo "== $(rustc --version)"
    echo "== $(fio --version)"
    echo "== load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "== command: target/release/randread --file $file --seconds $secs --rounds $rounds"
    target/release/randread --file "$file" --seconds "$secs" --rounds "$rounds"
    echo
    echo "== command: target/release/pingpong --seconds $secs --rounds $rounds"
    target/release/pingpong --seconds "$secs" --rounds "$rounds"
    echo
    echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
} 2>&1 | tee "$out"
echo "== written to $out"

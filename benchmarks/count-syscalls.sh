#!/usr/bin/env bash
# System calls and context switches per operation for every variant of randread and
# pingpong (the evidence behind benchmarks/results/issue4.md). Uses `perf stat` with the
# syscall tracepoints (they slow the runs: rates printed here are not the benchmark's).
# For humans: not called by .ci/run. Needs perf and the binaries (run-io.sh builds them).
#
# Usage: benchmarks/count-syscalls.sh [seconds per run, default 1]
# Output goes to the terminal and to benchmarks/results/syscalls-<UTC date and time>.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-1}"
file="${BENCH_FILE:-/tmp/cport-bench-1g}"
events=syscalls:sys_enter_io_uring_enter,raw_syscalls:sys_enter,context-switches
cargo build --release -p benchmarks
out="benchmarks/results/syscalls-$(date -u +%Y-%m-%d-%H%M).txt"

# perf stat's count of one event in the CSV file $1.
count() { awk -F, -v e="$2" '$3 == e { print $1 }' "$1"; }

# Runs "$@" under perf stat; prints ops, enters/op, syscalls/op, switches/op.
# $1: label, $2: regex picking the binary's one result line, then the command.
measure() {
    local label="$1" what="$2"
    shift 2
    local stats
    stats="$(mktemp)"
    local line
    line="$(perf stat -x, -o "$stats" -e "$events" -- "$@" | grep -E "$what" | head -1)"
    # The op count is the number inside the parentheses: "(123 reads, ..." / "(123 round trips, ...".
    local ops
    ops="$(sed -E 's/.*\(([0-9]+) .*/\1/' <<<"$line")"
    local enters sys cs
    enters="$(count "$stats" syscalls:sys_enter_io_uring_enter)"
    sys="$(count "$stats" raw_syscalls:sys_enter)"
    cs="$(count "$stats" context-switches)"
    rm -f "$stats"
    awk -v l="$label" -v o="$ops" -v e="$enters" -v s="$sys" -v c="$cs" \
        'BEGIN { printf "%-30s %10d ops %8.3f io_uring_enter/op %8.3f syscalls/op %8.3f switches/op\n", l, o, e / o, s / o, c / o }'
}

{
    echo "== $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, kernel $(uname -r), $(fio --version)"
    echo "== randread (${secs} s each; the counts include the page-cache warm-up's few read calls)"
    for d in 1 32; do
        for v in port port-nobatch fio fio-batch fio-batchmax; do
            [[ "$d" == 1 && "$v" == fio-batch* ]] && continue
            measure "randread depth=$d $v" "round=1 $v " \
                target/release/randread --file "$file" --seconds "$secs" --rounds 1 --depths "$d" --variants "$v"
        done
    done
    echo "== pingpong (${secs} s each; both sides together, per round trip)"
    for v in port port-nobatch raw raw-dt; do
        measure "pingpong $v" "round=1 $v " target/release/pingpong --seconds "$secs" --rounds 1 --variants "$v"
    done
} 2>&1 | tee "$out"
echo "== written to $out"

#!/usr/bin/env bash
# The port-core microbenchmarks recorded in docs/benchmarks.md ("Port core (issue 3)").
# For humans: not called by .ci/run (timings on shared CI machines mean little).
#
# Usage: ci/bench-port.sh [--pinned]
#   (no argument)  the whole bench, as recorded in the docs' main table
#   --pinned       also the ping_pong group with the process pinned to CPU 0 (taskset),
#                  which removes cross-CPU wake-up latency from the comparison
# Output is also written to target/bench-port.txt (and target/bench-port-pinned.txt).
# Criterion's medians are in target/criterion/<group>/<name>/new/estimates.json.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== machine: $(nproc) CPUs, kernel $(uname -r), $(rustc --version)"
echo "== commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
mkdir -p target
cargo bench -p completion-port --bench port 2>&1 | tee target/bench-port.txt

if [[ "${1:-}" == "--pinned" ]]; then
    cargo bench -p completion-port --bench port --no-run
    taskset -c 0 cargo bench -p completion-port --bench port -- ping_pong 2>&1 \
        | tee target/bench-port-pinned.txt
fi

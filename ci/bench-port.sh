#!/usr/bin/env bash
# The port-core microbenchmarks recorded in docs/benchmarks.md ("Port core (issue 3)").
# For humans: not called by .ci/run (timings on shared CI machines mean little).
#
# Usage: ci/bench-port.sh [criterion filter]
# Takes about 2 minutes on a 2-CPU machine. Output is also written to target/bench-port.txt;
# criterion's medians are in target/criterion/<group>/<name>/new/estimates.json.
# The ping-pong groups pin threads themselves (`_same_cpu`, `_cross_cpu`); do not run this
# under taskset.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== machine: $(nproc) CPUs, kernel $(uname -r), $(rustc --version)"
echo "== commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
mkdir -p target
cargo bench -p benchmarks --bench port -- "$@" 2>&1 | tee target/bench-port.txt

#!/usr/bin/env bash
# loom model tests of the port core (completion-port/tests/loom.rs): hand-off, LIFO
# release, concurrency accounting, close and drain, explored over every interleaving
# within the bounds below. Runnable by hand from anywhere in the repository.
set -euo pipefail
cd "$(dirname "$0")/.."

# A separate target directory: `--cfg loom` changes RUSTFLAGS, which would otherwise
# invalidate the normal build cache on every switch.
export CARGO_TARGET_DIR=target/loom
export RUSTFLAGS="--cfg loom"

# Exploration bounds, pinned so that every run checks the same space:
# - LOOM_MAX_PREEMPTIONS=2: explore every interleaving with at most two forced thread
#   switches (plus all the switches where a thread blocks or yields). Bugs in small
#   concurrent protocols almost always show within two preemptions (loom's and
#   crossbeam's guidance); 3 multiplies the run time for little more coverage.
# - LOOM_MAX_BRANCHES=1000 (loom's default, pinned here): the most scheduling decisions
#   in one execution before loom fails it. The spin-until-parked loops of the LIFO and
#   close tests stay far below it; hitting it means a livelock.
export LOOM_MAX_PREEMPTIONS=2
export LOOM_MAX_BRANCHES=1000
# Keep the library's debug_assert!s (the waiter-stack and running-count invariants) live
# in the optimized build that runs the models.
export CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS=true
export CARGO_PROFILE_RELEASE_OVERFLOW_CHECKS=true

cargo test -p completion-port --test loom --release -- "$@"

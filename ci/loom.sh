#!/usr/bin/env bash
# loom model tests of the port core (completion-port/tests/loom.rs): hand-off, LIFO
# release, concurrency accounting, close and drain, and the poller protocol with I/O
# attached (against the model kernel of completion-port/src/sys/fake.rs, which exists
# only under --cfg loom), and the epoll backend's wake protocol (eventfd + `notified`
# flag, completion-port/src/sys/epoll/wake.rs, with a model eventfd; `wake_*`, one of
# them a negative model that must fail), explored over every interleaving within the
# bounds below.
# Runnable by hand from anywhere in the repository; arguments go to the test harness
# (a test name filter, or --include-ignored to run the models that are ignored until a
# bug they found is fixed).
set -euo pipefail
cd "$(dirname "$0")/.."

# A separate target directory: `--cfg loom` changes RUSTFLAGS, which would otherwise
# invalidate the normal build cache on every switch.
export CARGO_TARGET_DIR=target/loom
export RUSTFLAGS="--cfg loom"

# Exploration bounds, pinned so that every run checks the same space:
# - LOOM_MAX_PREEMPTIONS=2: explore every interleaving with at most two forced thread
#   switches (plus every switch where a thread blocks or yields). Bugs in small
#   concurrent protocols almost always show within two preemptions (loom's guidance).
#   On the 2-core dev machine the whole suite explores in about a second at 2, about 25 s
#   at 3 and about 3 minutes at 4 (all pass); for a deeper run by hand:
#   LOOM_MAX_PREEMPTIONS=4 bash ci/loom.sh. CI never sets it, so CI runs with 2.
# - LOOM_MAX_BRANCHES=1000 (loom's default, pinned here): the most scheduling decisions
#   in one execution before loom fails it. The spin-until-parked loops (until_waiting,
#   until_running) stay far below it; hitting it means a livelock.
# The test file's own bounds: at most 3 threads besides main and 3 packets per model.
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-2}"
export LOOM_MAX_BRANCHES=1000
# Keep the library's debug_assert!s (the waiter-stack and running-count invariants) live
# in the optimized build that runs the models.
export CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS=true
export CARGO_PROFILE_RELEASE_OVERFLOW_CHECKS=true

cargo test -p completion-port --test loom --release -- "$@"

#!/usr/bin/env bash
# Runs the port's concurrency tests (completion-port/tests/it/stress.rs and port.rs: many
# posters and getters, hand-off, LIFO release, concurrency accounting, close and drain) and
# 64 programs of the fuzz interpreter (fuzz.rs: I/O, cancels, getter threads, drains racing
# them) and deferred submission (lifecycle.rs, `h9_*`: a sentry thread submitting while
# workers push) under ThreadSanitizer: data races and lock-order problems. Arguments
# replace the default test filter (`stress:: port:: fuzz:: lifecycle::h9_`).
#
# Needs the nightly toolchain with its rust-src component: TSan must see every atomic and
# lock in the program, std's included, so std is rebuilt instrumented (-Zbuild-std);
# against the prebuilt std it reports races inside std's own synchronisation. Without
# nightly this prints why and exits 0; rust-src is added if missing.
#
# No suppressions: none is needed. (Completions synchronise partly through the kernel,
# which TSan cannot see; the io-uring crate's atomic ring indices and the operations'
# reference counts give it the happens-before edges it needs, and the runs are clean.)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "SKIPPED: ci/tsan.sh needs the nightly toolchain (rustup toolchain install nightly); none is installed"
  exit 0
fi
if ! rustup component list --toolchain nightly --installed 2>/dev/null | grep -q '^rust-src'; then
  rustup component add rust-src --toolchain nightly
fi

export CARGO_TARGET_DIR=target/tsan
# completion_port_tsan: the io_uring backend shows ThreadSanitizer the SQE-to-CQE hand-over
# the kernel makes (see `tsan_handoff` in completion-port/src/sys/uring/mod.rs).
export RUSTFLAGS="-Zsanitizer=thread --cfg completion_port_tsan"
export RUSTDOCFLAGS="-Zsanitizer=thread"
# halt_on_error: the first race fails the run, with both stacks printed.
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1${TSAN_OPTIONS:+ $TSAN_OPTIONS}"
target=x86_64-unknown-linux-gnu

export PROPTEST_CASES="${PROPTEST_CASES:-64}"
if [ $# -eq 0 ]; then set -- stress:: port:: fuzz:: lifecycle::h9_; fi
cargo +nightly test -Zbuild-std --target "$target" -p completion-port --test it -- "$@"

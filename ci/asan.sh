#!/usr/bin/env bash
# Runs the library's integration suite (completion-port/tests/it, the fuzz interpreter's
# proptest run included) and the cport CLI tests under AddressSanitizer: use after free,
# double free, buffer overflows and leaks (LeakSanitizer) in the unsafe `sys/` layer and
# everything above it. Arguments go to the suite's test harness (a name filter).
#
# Needs the nightly toolchain (-Zsanitizer); without it this prints why and exits 0. On
# x86_64 Linux, ASan works against the prebuilt std (no -Zbuild-std); `--target` keeps the
# sanitizer away from build scripts and proc-macros, and a separate target directory keeps
# these flags from invalidating the normal build.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "SKIPPED: ci/asan.sh needs the nightly toolchain (rustup toolchain install nightly); none is installed"
  exit 0
fi

export CARGO_TARGET_DIR=target/asan
export RUSTFLAGS="-Zsanitizer=address"
export RUSTDOCFLAGS="-Zsanitizer=address"
# detect_leaks: the suite's shutdown tests promise no leak (docs/semantics.md P10).
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:allocator_may_return_null=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
target=x86_64-unknown-linux-gnu

echo "== ASan: completion-port integration suite"
cargo +nightly test -p completion-port --test it --target "$target" -- "$@"
if [ "${ASAN_CLI:-1}" = 0 ]; then
  echo "== ASan: cport CLI tests not run (ASAN_CLI=0; cport has no unsafe code of its own)"
  exit 0
fi
echo "== ASan: cport CLI tests"
# Skipped: the server's RSS must come back after a storm, but ASan holds freed memory in its
# quarantine (to catch use after free) and never returns it, so that test measures ASan.
cargo +nightly test -p cport --target "$target" -- --skip serve_survives_storms_with_bounded_memory

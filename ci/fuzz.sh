#!/usr/bin/env bash
# Runs the libFuzzer target fuzz/fuzz_targets/ops.rs (random programs of associate, submit,
# cancel, handle drop, post, get, close, drain and port drop, checked for exactly-once
# delivery, bounded completion and no hang by completion-port/tests/it/fuzz_interp.rs) for a
# bounded time, under AddressSanitizer (cargo-fuzz's default).
#
#   bash ci/fuzz.sh            # 90 s (FUZZ_SECONDS overrides), then exit 0 if nothing broke
#   bash ci/fuzz.sh -runs=1000 # extra arguments go to libFuzzer
#
# A failing input lands in fuzz/artifacts/ops/; replay it with
#   cargo +nightly fuzz run ops fuzz/artifacts/ops/<file>
# and decode it into the program it runs with `cargo +nightly fuzz fmt ops <file>` (or the
# watchdog's report, which prints the program). The corpus grows in fuzz/corpus/ops
# (ignored by git), so repeated runs by hand go deeper.
#
# Needs the nightly toolchain (libFuzzer's instrumentation and -Zsanitizer); without it
# this prints why and exits 0. cargo-fuzz is installed from crates.io if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "SKIPPED: ci/fuzz.sh needs the nightly toolchain (rustup toolchain install nightly); none is installed"
  exit 0
fi
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz

seconds="${FUZZ_SECONDS:-90}"
mkdir -p fuzz/corpus/ops
# -max_len/-len_control=0: programs of up to ~200 steps from the first input (libFuzzer
#   otherwise starts at a few bytes, one or two steps, and grows slowly).
# -timeout: one input may run this long; the interpreter's own watchdog aborts a hang at 10 s.
# -malloc_limit_mb: a buffer one byte over the kernel's limit (4 GiB + 1, never touched) is
#   part of the grammar; it is refused at submission. -rss_limit_mb bounds real use.
cargo +nightly fuzz run ops -- \
  -max_total_time="$seconds" -max_len=2048 -len_control=0 -timeout=30 \
  -rss_limit_mb=4096 -malloc_limit_mb=8192 -print_final_stats=1 "$@"
echo "ci/fuzz.sh: no failure in ${seconds} s"

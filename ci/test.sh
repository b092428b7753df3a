#!/usr/bin/env bash
# The project's checks, in the order a reviewer would run them. Runnable by hand from
# anywhere in the repository; `.ci/run` calls it.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

echo "== cargo doc (broken links and other rustdoc warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --document-private-items

echo "== the README's test command"
# Keep this line identical to the one in README.md.
cargo test --workspace

echo "== valgrind: shutdown with I/O in flight leaks nothing"
bash ci/valgrind.sh

echo "== loom model tests"
bash ci/loom.sh
